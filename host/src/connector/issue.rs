//! A configuration problem found by a connector's own checks (what serde
//! cannot express), located so validation can point at the right line.

/// One problem in a connector's configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigIssue {
    /// The field whose line the diagnostic points at.
    pub anchor: String,
    /// The field the message is about (often the anchor itself).
    pub field: String,
    /// What was expected, in the user's words.
    pub message: String,
}

impl ConfigIssue {
    /// A problem with `field`, reported at that field.
    pub fn at(field: &str, message: impl Into<String>) -> Self {
        Self::anchored(field, field, message)
    }

    /// A problem with `field`, reported at `anchor` (e.g. `key_fields` is
    /// missing, so point at the `mode` that requires it).
    pub fn anchored(anchor: &str, field: &str, message: impl Into<String>) -> Self {
        Self {
            anchor: anchor.to_string(),
            field: field.to_string(),
            message: message.into(),
        }
    }
}
