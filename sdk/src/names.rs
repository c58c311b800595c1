//! Field names inside list parameters (`group_by: region, tier`,
//! `aggregates: sum(price) as total`, `fields: order_id, table.name as n`).
//!
//! Those lists split on `,`, `.`, `(` and ` as `, so a name holding one of
//! them, or with spaces at its ends, is written between backquotes, a doubled
//! backquote standing for one: `` `my region` ``, `` `a,b` ``, `` `it``s` ``.
//! That is how the expression language quotes field names too, so a SQL
//! compiler can quote a name once for both. A name without backquotes is
//! taken as written (trimmed), as before.

/// Byte offsets in `text` where `pat` starts outside backquotes.
fn outside<'t>(text: &'t str, pat: &'t str) -> impl Iterator<Item = usize> + 't {
    let mut quoted = false;
    text.char_indices().filter_map(move |(i, c)| {
        if c == '`' {
            // A doubled backquote inside a name toggles twice: no change.
            quoted = !quoted;
            return None;
        }
        (!quoted && text[i..].starts_with(pat)).then_some(i)
    })
}

/// Splits `text` on `sep` outside backquotes, trimming each part and
/// leaving out empty ones.
pub fn split(text: &str, sep: char) -> Vec<&str> {
    let mut buf = [0; 4];
    let sep = &*sep.encode_utf8(&mut buf);
    let mut parts = Vec::new();
    let mut start = 0;
    for i in outside(text, sep).collect::<Vec<_>>() {
        parts.push(&text[start..i]);
        start = i + sep.len();
    }
    parts.push(&text[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// Splits `text` at the first `pat` outside backquotes.
pub fn split_once<'t>(text: &'t str, pat: &str) -> Option<(&'t str, &'t str)> {
    let i = outside(text, pat).next()?;
    Some((&text[..i], &text[i + pat.len()..]))
}

/// A name as written in a list: `` `...` `` unquoted (```` `` ```` is one
/// backquote), else the trimmed text. Errors say what is wrong with it.
pub fn name(text: &str) -> Result<String, String> {
    let text = text.trim();
    let Some(rest) = text.strip_prefix('`') else {
        return Ok(text.to_string());
    };
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if c != '`' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('`') => out.push('`'),
            None => return Ok(out),
            Some(_) => {
                return Err(format!(
                "`{text}`: text after a closing backquote (write a backquote inside a name as two)"
            ))
            }
        }
    }
    Err(format!("`{text}`: the backquote is not closed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_names_hold_the_separators_and_plain_names_are_as_written() {
        assert_eq!(
            split("a, `b, c`, `d``e`,, f g ", ','),
            vec!["a", "`b, c`", "`d``e`", "f g"]
        );
        assert_eq!(
            split_once("sum(`x as y`) as `t (1)`", " as "),
            Some(("sum(`x as y`)", "`t (1)`"))
        );
        assert_eq!(split_once("table.`a.b`", "."), Some(("table", "`a.b`")));
        assert_eq!(split_once("`a.b`", "."), None);
        assert_eq!(name(" `my region` ").as_deref(), Ok("my region"));
        assert_eq!(name("`it``s`").as_deref(), Ok("it`s"));
        assert_eq!(name("plain name").as_deref(), Ok("plain name"));
        assert!(name("`open").is_err());
        assert!(name("`a`b").is_err());
    }
}
