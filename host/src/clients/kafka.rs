//! Kafka client pieces shared by the `kafka` source and sink.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use rdkafka::client::{Client, ClientContext};
use rdkafka::consumer::ConsumerGroupMetadata;

/// Waits, bounded by `timeout_ms`, until the brokers answer a metadata
/// request, so a wrong address fails at start with a clear message rather
/// than as silence. `component` names the source or sink in the logs.
pub fn wait_for_brokers<C: ClientContext>(
    client: &Client<C>,
    brokers: &str,
    timeout_ms: u64,
    component: &str,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match client.fetch_metadata(None, Duration::from_secs(2)) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => bail!(
                "cannot reach the Kafka brokers `{brokers}` after {attempt} attempts in {timeout_ms} ms: {e}. Check `brokers` and that the broker is running"
            ),
            Err(e) => {
                tracing::warn!(component, attempt, "kafka: brokers `{brokers}` not reachable yet: {e}");
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

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
