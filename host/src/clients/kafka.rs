//! Kafka client pieces shared by the `kafka` source and sink.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use rdkafka::client::{Client, ClientContext};

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
