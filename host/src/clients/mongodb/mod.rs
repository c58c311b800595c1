//! The MongoDB client pieces shared by the `mongodb` source and sink: the
//! connection (official driver), error messages that name the fix, and the
//! BSON ⇄ JSON mapping.

pub mod client;
pub mod errors;
pub mod mapping;
pub mod tls;

use crate::connector::ConfigIssue;

/// Checks a MongoDB connection string's scheme (shared with the sink).
pub fn check_uri(uri: &str) -> Result<(), ConfigIssue> {
    if uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://") {
        Ok(())
    } else {
        Err(ConfigIssue::at("uri", format!(
                "`{}` is not a MongoDB connection string; expected mongodb://host:port/… or mongodb+srv://…",
                errors::redact(uri)
            )))
    }
}
