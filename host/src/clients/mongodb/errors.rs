//! Driver errors turned into messages that name the problem and the fix
//! (shared by the `mongodb` source and sink).

use mongodb::error::{Error, ErrorKind, WriteFailure};

/// The connection string with any password replaced by `***`.
pub fn redact(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let creds = &rest[..at];
            let user = creds.split_once(':').map_or(creds, |(u, _)| u);
            format!("{scheme}://{user}:***@{}", &rest[at + 1..])
        }
        None => uri.to_string(),
    }
}

/// The server error code, if the server answered with one.
pub fn code(e: &Error) -> Option<i32> {
    match e.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => Some(w.code),
        _ => None,
    }
}

/// The server's message (or the driver's, for client-side failures).
pub fn message(e: &Error) -> String {
    match e.kind.as_ref() {
        ErrorKind::Command(c) => format!("{} ({}): {}", c.code_name, c.code, c.message),
        _ => e.to_string(),
    }
}

/// Transient: the server is unreachable, stepping down or restarting; the
/// same request may succeed later.
pub fn is_transient(e: &Error) -> bool {
    if e.contains_label("RetryableWriteError")
        || e.contains_label("TransientTransactionError")
        || e.contains_label("ResumableChangeStreamError")
    {
        return true;
    }
    match e.kind.as_ref() {
        ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::ServerSelection { .. } => true,
        // NotWritablePrimary, NotPrimaryNoSecondaryOk, PrimarySteppedDown,
        // ShutdownInProgress, InterruptedAtShutdown, HostUnreachable, ...
        _ => code(e).is_some_and(|c| {
            matches!(
                c,
                6 | 7 | 89 | 91 | 189 | 262 | 9001 | 10107 | 11600 | 11602 | 13435 | 13436
            )
        }),
    }
}

/// Why a change stream could not start or continue, in the user's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamProblem {
    /// The checkpointed resume token is no longer in the oplog.
    HistoryLost,
    /// The deployment has no change streams (a standalone `mongod`).
    Unsupported,
    /// Anything else.
    Other,
}

/// Classifies a change stream failure by server code and message.
pub fn stream_problem(code: Option<i32>, message: &str) -> StreamProblem {
    let m = message.to_ascii_lowercase();
    match code {
        // ChangeStreamHistoryLost; CappedPositionLost (before 4.4);
        // ChangeStreamFatalError with a token that is gone.
        Some(286) | Some(136) => StreamProblem::HistoryLost,
        Some(280) if m.contains("resume") => StreamProblem::HistoryLost,
        // "The $changeStream stage is only supported on replica sets".
        Some(40573) => StreamProblem::Unsupported,
        _ if m.contains("only supported on replica sets")
            || m.contains("unrecognized pipeline stage name: '$changestream'") =>
        {
            StreamProblem::Unsupported
        }
        _ if m.contains("resume point may no longer be in the oplog")
            || m.contains("changestreamhistorylost") =>
        {
            StreamProblem::HistoryLost
        }
        _ => StreamProblem::Other,
    }
}

/// An error for a failure to reach or use the server at `uri`, with the fix.
pub fn connect_error(e: &Error, uri: &str, timeout_ms: u64) -> anyhow::Error {
    let uri = redact(uri);
    match e.kind.as_ref() {
        ErrorKind::Authentication { message, .. } => anyhow::anyhow!(
            "MongoDB at {uri} refused the credentials: {message}. Check the user name and password in `uri` and `authSource` (the database the user was created in, usually `admin`)"
        ),
        ErrorKind::Command(c) if c.code == 18 => anyhow::anyhow!(
            "MongoDB at {uri} refused the credentials (AuthenticationFailed: {}). Check the user name and password in `uri` and `authSource`",
            c.message
        ),
        ErrorKind::Command(c) if c.code == 13 => anyhow::anyhow!(
            "MongoDB at {uri} refused the operation (Unauthorized: {}). Grant the user the `read` role (and `changeStream` / `find` privileges) on the database, or `readWrite` for a sink",
            c.message
        ),
        ErrorKind::ServerSelection { message, .. } => match tls_cause(message) {
            Some(cause) => anyhow::anyhow!("{cause} (MongoDB at {uri}: {message})"),
            None => anyhow::anyhow!(
                "cannot reach MongoDB at {uri} within {timeout_ms} ms: {message}. Check the host and port, that the server runs and accepts connections from here; for a single member of a replica set that advertises other host names, add `directConnection=true` to the URI{}",
                // What a TLS-only port does to a plaintext hello.
                if message.contains("unexpected end of file") {
                    ". The server closed the connection at once, as a server that requires TLS does with a plaintext client: if it does, set `tls: {mode: verify-full, ca_file: <the server's CA>}`"
                } else {
                    ""
                }
            ),
        },
        ErrorKind::DnsResolve { message, .. } => anyhow::anyhow!(
            "cannot resolve the host in {uri}: {message}. Check the host name (and, for mongodb+srv://, its SRV records)"
        ),
        ErrorKind::InvalidTlsConfig { message, .. } => {
            anyhow::anyhow!("TLS settings for {uri} are invalid: {message}")
        }
        _ => anyhow::anyhow!("MongoDB at {uri}: {}", message(e)),
    }
}

/// A refused TLS handshake named, with its fix, from the text of a server
/// selection failure. The driver keeps each server's last error as text (the
/// rustls error's Debug or Display form) in that message, so the text is all
/// there is to go by.
fn tls_cause(message: &str) -> Option<String> {
    let has = |words: &[&str]| words.iter().any(|w| message.contains(w));
    Some(if has(&["UnknownIssuer", "BadSignature"]) {
        "the TLS certificate of the MongoDB server is not signed by a trusted CA. Fix: set `tls.ca_file` (or `tlsCAFile` in `uri`) to the CA certificate that issued the server's certificate".into()
    } else if has(&["NotValidForName", "not valid for name"]) {
        "the TLS certificate of the MongoDB server is not valid for the host name in `uri`. Fix: connect by a name the certificate lists (the MongoDB driver cannot verify another name, so `tls.server_name` is not available)".into()
    } else if has(&["ExpiredContext", "(Expired)", "certificate expired"]) {
        "the TLS certificate of the MongoDB server has expired. Fix: renew the server's certificate (and check this machine's clock)".into()
    } else if has(&[
        "CertificateRequired",
        "alert: BadCertificate",
        "(BadCertificate)",
    ]) {
        "the MongoDB server refused the TLS handshake; it may want a client certificate it trusts. Fix: set `tls.cert_file` and `tls.key_file` (one PEM file with both)".into()
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_refusals_in_a_selection_failure_are_named() {
        let m = "Server selection timeout: No available servers. Topology: { Type: Unknown, Servers: [ { Address: db:27018, Type: Unknown, Error: Kind: I/O error: invalid peer certificate: UnknownIssuer, labels: {} } ] }";
        assert!(tls_cause(m).is_some_and(|c| c.contains("not signed by a trusted CA")));
        assert!(tls_cause("I/O error: received corrupt message").is_none());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("mongodb://app:s3cret@db:27017/?authSource=admin"),
            "mongodb://app:***@db:27017/?authSource=admin"
        );
        assert_eq!(
            redact("mongodb://db:27017/?directConnection=true"),
            "mongodb://db:27017/?directConnection=true"
        );
    }

    #[test]
    fn stream_problems_are_recognised_by_code_and_message() {
        assert_eq!(
            stream_problem(Some(286), "Resume of change stream was not possible"),
            StreamProblem::HistoryLost
        );
        assert_eq!(
            stream_problem(
                Some(280),
                "cannot resume stream; the resume token was not found"
            ),
            StreamProblem::HistoryLost
        );
        assert_eq!(
            stream_problem(
                Some(40573),
                "The $changeStream stage is only supported on replica sets"
            ),
            StreamProblem::Unsupported
        );
        assert_eq!(
            stream_problem(
                None,
                "The $changeStream stage is only supported on replica sets"
            ),
            StreamProblem::Unsupported
        );
        assert_eq!(stream_problem(Some(11000), "dup"), StreamProblem::Other);
    }
}
