//! Kafka client pieces shared by the `kafka` source and sink.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use rdkafka::client::{Client, ClientContext};
use rdkafka::consumer::ConsumerGroupMetadata;

use super::kafka_diagnose::{timeout_hint, Refusals};
use super::kafka_security::KafkaSecurity;

/// A client context that collects what librdkafka says about refused
/// handshakes and logins (see [`Refusals`]).
pub trait Refusing {
    /// The refusals seen so far.
    fn refusals(&self) -> &Refusals;
}

/// Waits, bounded by `timeout_ms`, until the brokers answer a metadata
/// request, so a wrong address fails at start with a clear message rather
/// than as silence. A refused TLS handshake or SASL login fails at once,
/// with its cause and fix, instead of being retried until the timeout.
/// `component` names the source or sink in the logs. `serve` polls the
/// client once without waiting: the rdkafka crate delivers librdkafka's log
/// lines and errors, which say why a connection was refused, only on poll.
pub fn wait_for_brokers<C: ClientContext + Refusing>(
    client: &Client<C>,
    brokers: &str,
    timeout_ms: u64,
    component: &str,
    security: &KafkaSecurity,
    serve: &dyn Fn(),
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match client.fetch_metadata(None, Duration::from_secs(2)) {
            Ok(_) => return Ok(()),
            Err(e) => {
                serve();
                if let Some(why) = client.context().refusals().verdict(security) {
                    bail!("{why}");
                }
                if Instant::now() >= deadline {
                    bail!(
                        "cannot reach the Kafka brokers `{brokers}` after {attempt} attempts in {timeout_ms} ms: {e}. {}",
                        timeout_hint(security)
                    );
                }
                tracing::warn!(
                    component,
                    attempt,
                    "kafka: brokers `{brokers}` not reachable yet: {e}"
                );
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

/// Client errors, logged at most once per kind per window.
///
/// While a broker is down, librdkafka reports the same transport error on
/// every reconnect attempt of every connection, for as long as the outage
/// lasts. Logging each would let one dead cluster flood the host's log; one
/// line per kind of error per window, with a count of what was held back,
/// keeps the news and bounds the bytes.
pub struct ErrorLog {
    window: Duration,
    seen: Mutex<HashMap<String, Seen>>,
}

struct Seen {
    logged_at: Instant,
    held_back: u64,
}

/// Distinct kinds of error remembered at once; past it, new kinds are held
/// back until old ones age out, so the map itself stays bounded.
const MAX_ERROR_KINDS: usize = 64;

impl ErrorLog {
    /// Logs each kind at most once per `window`.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The line to log for an error of `kind` (the error without its
    /// per-attempt details) with `detail`, or `None` to hold it back.
    pub fn admit(&self, kind: &str, detail: &str, now: Instant) -> Option<String> {
        let mut seen = match self.seen.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        if let Some(s) = seen.get_mut(kind) {
            if now.saturating_duration_since(s.logged_at) < self.window {
                s.held_back += 1;
                return None;
            }
            let held_back = std::mem::take(&mut s.held_back);
            s.logged_at = now;
            return Some(if held_back == 0 {
                format!("{kind}: {detail}")
            } else {
                format!(
                    "{kind}: {detail} (and {held_back} more like it in the last {} s)",
                    self.window.as_secs()
                )
            });
        }
        if seen.len() >= MAX_ERROR_KINDS {
            let window = self.window;
            seen.retain(|_, s| now.saturating_duration_since(s.logged_at) < window);
            if seen.len() >= MAX_ERROR_KINDS {
                return None;
            }
        }
        seen.insert(
            kind.to_string(),
            Seen {
                logged_at: now,
                held_back: 0,
            },
        );
        Some(format!("{kind}: {detail}"))
    }
}

/// How often one kind of Kafka client error may reach the log.
pub const ERROR_LOG_WINDOW: Duration = Duration::from_secs(30);

/// What a `kafka` source hands to an exactly-once `kafka` sink at a barrier:
/// the offsets to commit inside the sink's transaction, and the consumer's
/// group membership, which the broker checks so that a member that lost
/// its partitions in a rebalance cannot commit them (KIP-447).
pub struct GroupProgress {
    /// The source's name, for messages.
    pub source: String,
    /// The consumer group's id, for messages.
    pub group_id: String,
    /// Membership at the barrier; `None` before the consumer joined.
    pub group: Option<ConsumerGroupMetadata>,
    /// (topic, partition, next offset to read) of every partition read.
    pub offsets: Vec<(String, i32, i64)>,
    /// Partitions taken away by a rebalance after records of theirs were
    /// read in the transaction this handoff closes: their new owner reads
    /// them again, so the transaction must not commit.
    pub revoked: Vec<(String, i32)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broker_outage_logs_one_line_per_kind_per_window_with_a_count() {
        let log = ErrorLog::new(Duration::from_secs(30));
        let t0 = Instant::now();
        let kind = "Global error: BrokerTransportFailure";
        let lines: Vec<String> = (0..10_000u64)
            .filter_map(|i| log.admit(kind, &format!("attempt {i}"), t0 + Duration::from_millis(i)))
            .collect();
        assert_eq!(lines, vec![format!("{kind}: attempt 0")]);
        let later = log.admit(kind, "attempt 10000", t0 + Duration::from_secs(31));
        assert_eq!(
            later.as_deref(),
            Some("Global error: BrokerTransportFailure: attempt 10000 (and 9999 more like it in the last 30 s)")
        );
        assert_eq!(log.admit("Other", "x", t0).as_deref(), Some("Other: x"));
    }

    #[test]
    fn endless_distinct_kinds_stay_bounded() {
        let log = ErrorLog::new(Duration::from_secs(30));
        let t0 = Instant::now();
        let logged = (0..100_000)
            .filter(|i| log.admit(&format!("kind {i}"), "d", t0).is_some())
            .count();
        assert_eq!(logged, MAX_ERROR_KINDS);
        let seen = log.seen.lock().map(|s| s.len()).unwrap_or_default();
        assert_eq!(seen, MAX_ERROR_KINDS);
        assert!(log
            .admit("kind new", "d", t0 + Duration::from_secs(31))
            .is_some());
    }
}
