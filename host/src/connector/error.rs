//! What a connector should do about a failure, whichever client raised it.
//! Each client classifies its own errors into this one type, so the retry
//! loops and dead-letter routing around them are written once.

/// A failure, by what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorClass {
    /// Transient (connection lost, deadlock, leader election): retry the
    /// same request later with backoff.
    #[error("{0}")]
    Retry(String),
    /// The target refused this data for good (constraint, bad value, too
    /// large): dead-letter the events concerned, with this reason.
    #[error("{0}")]
    Rejected(String),
    /// Nothing to retry (permissions, credentials, missing target): stop.
    #[error("{0}")]
    Fatal(String),
}

impl ErrorClass {
    /// The message, whatever the class.
    pub fn message(&self) -> &str {
        match self {
            ErrorClass::Retry(m) | ErrorClass::Rejected(m) | ErrorClass::Fatal(m) => m,
        }
    }

    /// True for [`ErrorClass::Retry`].
    pub fn is_retry(&self) -> bool {
        matches!(self, ErrorClass::Retry(_))
    }
}
