//! Validation messages in a data engineer's words: serde's type names
//! (`u64`, `map`, `sequence`) become "a whole number", "a mapping", "a
//! list", and a misspelled name gets a "did you mean".

/// The closest of `candidates` to `word`, if one is close enough to be a
/// likely typo (`projekt` → `project`, `shpe` → `shape`).
pub fn closest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .filter(|c| !c.is_empty() && *c != word)
        .map(|c| (strsim::jaro_winkler(&lower, &c.to_ascii_lowercase()), c))
        // 0.8 keeps one- and two-letter slips and drops unrelated words.
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// ` Did you mean `x`?` or nothing.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    closest(word, candidates)
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

/// `; text`, or `; did you mean `x`? Text` when `word` looks like a typo of
/// one of `candidates`.
pub fn with_hint<'a, I>(word: &str, candidates: I, text: &str) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    after(&did_you_mean(word, candidates), text)
}

/// For serde's "unknown field `x`, expected ..." the known field `x` is
/// probably a typo of.
pub fn unknown_field_fix(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("unknown field ")?;
    let (name, expected) = split_name(rest);
    let known = backticked(expected);
    closest(name, known.iter().map(String::as_str)).map(str::to_string)
}

/// Rewrites one of serde's messages. Messages that are not serde's (a
/// connector's own checks) pass through unchanged.
pub fn serde_message(msg: &str) -> String {
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        let (name, expected) = split_name(rest);
        let known = backticked(expected);
        let hint = did_you_mean(name, known.iter().map(String::as_str));
        return if known.is_empty() {
            format!("unknown field `{name}`; this section takes no fields here{hint}")
        } else {
            format!(
                "unknown field `{name}`{}",
                after(&hint, &format!("fields here: {}", known.join(", ")))
            )
        };
    }
    if let Some(rest) = msg.strip_prefix("unknown variant ") {
        let (name, expected) = split_name(rest);
        let known = backticked(expected);
        let hint = did_you_mean(name, known.iter().map(String::as_str));
        let list = known
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ");
        return format!(
            "unknown value `{name}`{}",
            after(&hint, &format!("expected one of {list}"))
        );
    }
    for (prefix, verb) in [("invalid type: ", "found"), ("invalid value: ", "found")] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            if let Some((found, expected)) = rest.rsplit_once(", expected ") {
                return format!(
                    "{verb} {}, expected {}",
                    found_words(found),
                    expected_words(expected)
                );
            }
        }
    }
    if let Some(rest) = msg.strip_prefix("missing field ") {
        return format!("missing field {rest} (it is required)");
    }
    msg.to_string()
}

/// `hint` then `text`: "; text" alone, or "; did you mean `x`? Text".
fn after(hint: &str, text: &str) -> String {
    if hint.is_empty() {
        return format!("; {text}");
    }
    let mut chars = text.chars();
    let capital: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    format!("{hint} {capital}")
}

/// "`name`, expected ..." → ("name", "expected ...").
fn split_name(rest: &str) -> (&str, &str) {
    let rest = rest.strip_prefix('`').unwrap_or(rest);
    match rest.split_once('`') {
        Some((name, tail)) => (name, tail),
        None => (rest, ""),
    }
}

/// The backticked names in serde's "expected one of `a`, `b`".
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// serde's description of a value that was found.
fn found_words(found: &str) -> String {
    let strip = |s: &str, p: &str| s.strip_prefix(p).map(|v| v.trim_matches('`').to_string());
    if let Some(v) = found.strip_prefix("string ") {
        return format!("the text {v}");
    }
    for p in ["integer ", "floating point "] {
        if let Some(v) = strip(found, p) {
            return format!("the number {v}");
        }
    }
    if let Some(v) = strip(found, "boolean ") {
        return v;
    }
    match found {
        "map" => "a mapping".into(),
        "sequence" => "a list".into(),
        "null" | "unit value" => "an empty value".into(),
        other => other.to_string(),
    }
}

/// serde's description of what was expected.
fn expected_words(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number (0 or more)".into(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" => "true or false".into(),
        "a string" | "a borrowed string" | "a character" | "path string" => "text".into(),
        "a sequence" => "a list".into(),
        "a map" => "a mapping".into(),
        e if e.starts_with("struct ") => "a mapping of fields".into(),
        e if e.starts_with("a sequence") => e.replacen("a sequence", "a list", 1),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_the_closest_name_and_unrelated_words_none() {
        let plugins = ["filter", "project", "mask", "unwrap"];
        assert_eq!(closest("projekt", plugins), Some("project"));
        assert_eq!(closest("fliter", plugins), Some("filter"));
        assert_eq!(closest("shpe", ["shape", "count"]), Some("shape"));
        assert_eq!(closest("zzzzzz", plugins), None);
    }

    #[test]
    fn rust_type_names_become_plain_words() {
        assert_eq!(
            serde_message("invalid type: string \"ten\", expected u64"),
            "found the text \"ten\", expected a whole number (0 or more)"
        );
        assert_eq!(
            serde_message("invalid type: map, expected a sequence"),
            "found a mapping, expected a list"
        );
        assert_eq!(
            serde_message("invalid value: integer `-3`, expected usize"),
            "found the number -3, expected a whole number (0 or more)"
        );
        assert_eq!(
            serde_message("invalid type: integer `5`, expected a string"),
            "found the number 5, expected text"
        );
    }

    #[test]
    fn unknown_fields_and_values_suggest_the_closest_name() {
        assert_eq!(
            serde_message("unknown field `pth`, expected `path` or `key_field`"),
            "unknown field `pth`; did you mean `path`? Fields here: path, key_field"
        );
        assert_eq!(
            serde_message("unknown variant `skp`, expected one of `dead-letter`, `skip`, `fail`"),
            "unknown value `skp`; did you mean `skip`? Expected one of `dead-letter`, `skip`, `fail`"
        );
        assert_eq!(
            serde_message("unknown field `x`, there are no fields"),
            "unknown field `x`; this section takes no fields here"
        );
    }

    #[test]
    fn other_messages_pass_through() {
        assert_eq!(serde_message("must be https"), "must be https");
    }
}
