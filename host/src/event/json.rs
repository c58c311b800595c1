//! JSON checks shared by sources, sinks and formats.

/// Checks that bytes are one JSON value, without building it.
///
/// It accepts exactly what serde_json's `IgnoredAny` accepts, the check
/// sources have always made: broken UTF-8 inside a string, a lone surrogate
/// and nesting past 128 pass here and are refused by the first stage that
/// reads the value. The SDK's scanner without its UTF-8 check
/// (`sluice_sdk::json::check_syntax`) decides first because it is cheaper
/// (`sluice-bench scan`) and accepts a subset of what `IgnoredAny` does
/// (stricter on surrogates and depth, never looser: tested in the SDK and
/// by the `json_view` fuzz check); only a value it refuses goes on to
/// serde_json, which decides, and names the reason.
pub fn check_json(bytes: &[u8]) -> Result<(), String> {
    if sluice_sdk::json::check_syntax(bytes).is_ok() {
        return Ok(());
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::check_json;

    fn ignored_any(bytes: &[u8]) -> Result<(), String> {
        serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_and_refuses_what_ignored_any_does_with_its_reasons() {
        let deep = format!("{}1{}", "[".repeat(300), "]".repeat(300));
        let inputs: Vec<&[u8]> = vec![
            br#"{"a":1,"b":[true,null,"x"],"c":{"d":-1.5e3}}"#,
            b"  7  ",
            br#"{"big":1e400}"#,
            // Broken UTF-8 in a string: check_syntax takes it, as
            // IgnoredAny does. check_syntax refuses the next two;
            // IgnoredAny takes them.
            b"{\"a\":\"\xff\"}",
            br#"{"a":"\ud800"}"#,
            deep.as_bytes(),
            // Both refuse these: the reason is serde_json's.
            br#"{"a":"#,
            b"{\"a\":\"\x01\"}",
            br#"{"a":1}x"#,
            br#"{"a":01}"#,
            b"",
        ];
        for input in inputs {
            assert_eq!(
                check_json(input),
                ignored_any(input),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        assert!(sluice_sdk::json::check_syntax(br#"{"a":"\ud800"}"#).is_err());
    }
}
