//! The text a connector configuration is fingerprinted by in checkpoints:
//! its `Debug` form with credentials left out, so that rotating a password
//! does not count as a changed source or sink, while a new path, topic,
//! table or slot does.

/// Field names whose values are credentials.
const SECRET_WORDS: [&str; 4] = ["password", "secret", "token", "credential"];

/// `debug` (a `{:?}` rendering) with the values of credential fields and the
/// passwords in URLs (`scheme://user:PASSWORD@host`) replaced by `<redacted>`.
pub fn redacted(debug: &str) -> String {
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug;
    while let Some(i) = rest.find(": ") {
        let (head, tail) = rest.split_at(i + 2);
        out.push_str(head);
        rest = tail;
        let field: String = head[..i]
            .chars()
            .rev()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let field = field.to_ascii_lowercase();
        // `field` is reversed; the words are searched reversed too.
        if SECRET_WORDS
            .iter()
            .any(|w| field.contains(&w.chars().rev().collect::<String>()))
        {
            out.push_str("<redacted>");
            rest = &rest[value_end(rest)..];
        }
    }
    out.push_str(rest);
    without_url_passwords(&out)
}

/// Where the `Debug` value at the start of `text` ends: at the first `,` or
/// closing bracket outside strings and nested brackets.
fn value_end(text: &str) -> usize {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' if depth == 0 => return i,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => return i,
            _ => {}
        }
    }
    text.len()
}

/// `scheme://user:secret@host` → `scheme://user:<redacted>@host`.
fn without_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let authority_end = tail
            .find(['/', '"', ' ', '?', '#'])
            .unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..=colon]);
                out.push_str("<redacted>");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_left_out_and_everything_else_kept() {
        let debug = r#"Config { url: "postgres://app:s3cr,et@db:5432/shop", slot: "sluice_shop", password: Some("p\"w, x"), secret_access_key: None, key_field: Some("id") }"#;
        let r = redacted(debug);
        assert_eq!(
            r,
            r#"Config { url: "postgres://app:<redacted>@db:5432/shop", slot: "sluice_shop", password: <redacted>, secret_access_key: <redacted>, key_field: Some("id") }"#
        );
        // A rotated password gives the same text; a new slot does not.
        assert_eq!(r, redacted(&debug.replace("s3cr,et", "other")));
        assert_eq!(r, redacted(&debug.replace(r#"p\"w, x"#, "new")));
        assert_ne!(r, redacted(&debug.replace("sluice_shop", "sluice_other")));
        assert_eq!(redacted("http://host:9200/x"), "http://host:9200/x");
    }
}
