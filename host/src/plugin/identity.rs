//! How the host names a plugin in logs, errors, dead letters and `plugin
//! inspect`: by what it knows (the file it loaded and a prefix of the file's
//! SHA-256) first, and only then by what the plugin says about itself in
//! `describe()`, which any plugin can fake (one claiming to be
//! `sluice-plugin-mask` is not thereby the built-in mask).

use std::path::Path;

use super::bindings::PluginInfo;
use super::guest_log::escape_bounded;

/// Longest self-described name or version shown.
const MAX_CLAIM_BYTES: usize = 128;

/// `file (claims "name@version", sha256 1a2b3c4d)`.
pub fn label(path: &Path, sha256: &[u8; 32], info: &PluginInfo) -> String {
    let file = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (file, _) = escape_bounded(&file, MAX_CLAIM_BYTES);
    format!(
        "{file} (claims \"{}@{}\", sha256 {})",
        claim(&info.name),
        claim(&info.version),
        hex::encode(&sha256[..4])
    )
}

/// A self-described field, escaped so it can neither end the quotes nor the
/// line, and cut.
pub fn claim(text: &str) -> String {
    escape_bounded(text, MAX_CLAIM_BYTES).0.replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_label_leads_with_what_the_host_knows() {
        let info = PluginInfo {
            name: "sluice-plugin-mask".into(),
            version: "0.1.0".into(),
            description: String::new(),
        };
        let l = label(Path::new("/x/loud.wasm"), &[0xab; 32], &info);
        assert_eq!(
            l,
            "loud (claims \"sluice-plugin-mask@0.1.0\", sha256 abababab)"
        );
    }

    #[test]
    fn a_claim_cannot_break_out_of_its_quotes_or_line() {
        let info = PluginInfo {
            name: "mask\", sha256 00000000)\nINFO fake".into(),
            version: "1".repeat(1000),
            description: String::new(),
        };
        let l = label(Path::new("evil.wasm"), &[0; 32], &info);
        assert!(!l.contains('\n'));
        assert!(l.contains("mask\\\", sha256 00000000)\\nINFO fake@"), "{l}");
        assert!(l.len() < 400, "{}", l.len());
        assert!(l.starts_with("evil (claims "));
    }
}
