//! JSON checks shared by sources, sinks and formats.

/// Checks that bytes are one JSON value, without building it.
///
/// serde_json's `IgnoredAny` rather than the SDK's scanner: on ASCII they
/// cost the same (measured 2026-12-03), and the scanner's UTF-8 check of
/// every string added about 0.7 µs to each Unicode-heavy 575-byte event.
/// So broken UTF-8 inside a string passes here and is refused by the first
/// stage that reads the value.
pub fn check_json(bytes: &[u8]) -> Result<(), String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
