//! JSON checks shared by sources, sinks and formats.

/// Checks that bytes are one JSON value, without building it.
pub fn check_json(bytes: &[u8]) -> Result<(), String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
