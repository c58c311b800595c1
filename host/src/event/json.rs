//! JSON checks shared by sources, sinks and formats.

/// Checks that bytes are one JSON value, without building it.
///
/// The SDK's validating scanner rather than serde_json's `IgnoredAny`: it is
/// faster (it jumps over plain string bytes eight at a time), and it checks
/// the UTF-8 of every string, which JSON requires and `IgnoredAny` skips, so
/// the host accepts exactly what the plugins' views accept: a value with
/// broken UTF-8 is a dead letter at the source, not at every stage after it.
pub fn check_json(bytes: &[u8]) -> Result<(), String> {
    sluice_sdk::json::check(bytes).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_json_value_with_valid_utf8_passes_and_anything_else_says_where_it_broke() {
        for ok in [
            &b"{\"a\":[1,{\"b\":\"\\u00e9\"}],\"c\":\"\xc3\xa9\"}"[..],
            b" 7 ",
            b"\"x\"",
            b"null",
        ] {
            assert_eq!(check_json(ok), Ok(()), "{:?}", String::from_utf8_lossy(ok));
        }
        for (bad, why) in [
            (&b"{\"a\":\"\xc3\"}"[..], "invalid UTF-8 at byte 6"),
            (b"{\"a\":1", "EOF while parsing an object at byte 6"),
            (b"{\"a\":1} x", "trailing characters at byte 8"),
            (b"", "EOF while parsing a value at byte 0"),
        ] {
            assert_eq!(check_json(bad).expect_err("not JSON"), why);
        }
        // serde_json's IgnoredAny, which this replaced, let broken UTF-8 through.
        assert!(serde_json::from_slice::<serde::de::IgnoredAny>(b"{\"a\":\"\xc3\"}").is_ok());
    }
}
