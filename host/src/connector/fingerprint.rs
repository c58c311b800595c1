//! The text a connector configuration is fingerprinted by in checkpoints:
//! its `Debug` form without credentials and without the settings that only
//! tune how it runs, so that rotating a password or changing a poll interval
//! does not count as a changed source or sink, while a new path, topic,
//! table or slot does.

/// Field names whose values are credentials.
const SECRET_WORDS: [&str; 4] = ["password", "secret", "token", "credential"];

/// Settings that tune how a connector runs, not what it reads or writes
/// (besides every `*_ms` and `max_*` field).
const TUNING: [&str; 12] = [
    "batch_size",
    "flush_size",
    "part_size_bytes",
    "snapshot_fetch_size",
    "stop_when_idle",
    "rate",
    "heartbeat_query",
    "tls",
    "ca_file",
    "insecure_skip_verify",
    "allow_http",
    "auth",
];

/// Whether field `name`'s value stays out of the fingerprint, and as what.
fn left_out(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    if SECRET_WORDS.iter().any(|w| lower.contains(w)) {
        Some("<redacted>")
    } else if lower.ends_with("_ms")
        || lower.starts_with("max_")
        || TUNING.contains(&lower.as_str())
    {
        Some("<tuning>")
    } else {
        None
    }
}

/// `debug` (a `{:?}` rendering) with the values of credential fields and the
/// passwords in URLs (`scheme://user:PASSWORD@host`) replaced by
/// `<redacted>`, and those of tuning settings by `<tuning>`.
pub fn redacted(debug: &str) -> String {
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug;
    while let Some(i) = rest.find(": ") {
        let (head, tail) = rest.split_at(i + 2);
        out.push_str(head);
        rest = tail;
        let before = &head[..i];
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |p| p + 1);
        if let Some(placeholder) = left_out(&before[start..]) {
            out.push_str(placeholder);
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
        let authority_end = tail.find(['/', '"', ' ', '?', '#']).unwrap_or(tail.len());
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
    fn credentials_and_tuning_are_left_out_and_everything_else_kept() {
        let debug = r#"Config { url: "postgres://app:s3cr,et@db:5432/shop", slot: "sluice_shop", password: Some("p\"w, x"), secret_access_key: None, poll_interval_ms: 100, stop_when_idle: false, key_field: Some("id") }"#;
        let r = redacted(debug);
        assert_eq!(
            r,
            r#"Config { url: "postgres://app:<redacted>@db:5432/shop", slot: "sluice_shop", password: <redacted>, secret_access_key: <redacted>, poll_interval_ms: <tuning>, stop_when_idle: <tuning>, key_field: Some("id") }"#
        );
        assert_eq!(
            r,
            redacted(&debug.replace("stop_when_idle: false", "stop_when_idle: true"))
        );
        // A rotated password gives the same text; a new slot does not.
        assert_eq!(r, redacted(&debug.replace("s3cr,et", "other")));
        assert_eq!(r, redacted(&debug.replace(r#"p\"w, x"#, "new")));
        assert_ne!(r, redacted(&debug.replace("sluice_shop", "sluice_other")));
        assert_eq!(redacted("http://host:9200/x"), "http://host:9200/x");
    }
}
