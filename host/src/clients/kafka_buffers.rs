//! What a Kafka client may buffer in the host's memory, from its
//! librdkafka properties: the bound a pipeline's footprint counts and the
//! operator's `client_buffer_mb` ceiling caps.
//!
//! librdkafka's defaults suit one process doing one job (a producer may
//! queue 1 GiB) and its maxima are larger still (a consumer's prefetch
//! queue up to 2 GiB). On a host shared by tenants, a pipeline file's
//! `properties:` would otherwise raise memory no limit counts.

use crate::connector::ConfigIssue;

/// A librdkafka property that sizes a buffer.
struct Sizing {
    key: &'static str,
    /// Bytes per unit of the property's value.
    unit: u64,
    /// The value when the property is not set, in units.
    default: u64,
    /// librdkafka's largest accepted value, in units.
    max: u64,
}

/// The consumer's prefetch queue (librdkafka's default: 64 MiB). librdkafka
/// applies it to the consumer's one queue, whatever the partitions.
const PREFETCH: Sizing = Sizing {
    key: "queued.max.messages.kbytes",
    unit: 1024,
    default: 65_536,
    max: 2_097_151,
};

/// One fetch response, which may overshoot the prefetch queue's bound
/// (librdkafka's default: 50 MiB).
const FETCH: Sizing = Sizing {
    key: "fetch.max.bytes",
    unit: 1,
    default: 52_428_800,
    max: 2_147_483_135,
};

/// The largest record batch a broker may send in one fetch: librdkafka
/// raises an unset `fetch.max.bytes` to it, and refuses a set one below it.
const MESSAGE_MAX: Sizing = Sizing {
    key: "message.max.bytes",
    unit: 1,
    default: 1_000_000,
    max: 1_000_000_000,
};

/// The producer's queue of records not yet acknowledged.
const PRODUCER_QUEUE: Sizing = Sizing {
    key: "queue.buffering.max.kbytes",
    unit: 1024,
    default: PRODUCER_QUEUE_KBYTES,
    max: 2_147_483_647,
};

/// What the `kafka` sink sets `queue.buffering.max.kbytes` to unless
/// `properties:` says otherwise: 64 MiB, where librdkafka's default is
/// 1 GiB. A full queue makes the sink wait for acknowledgements, not fail.
pub const PRODUCER_QUEUE_KBYTES: u64 = 65_536;

impl Sizing {
    /// The property's value in bytes; a value librdkafka would refuse or
    /// that is not a whole number is refused here, naming the property.
    fn bytes(
        &self,
        properties: &std::collections::BTreeMap<String, String>,
    ) -> Result<u64, ConfigIssue> {
        let units = match properties.get(self.key) {
            None => self.default,
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=self.max).contains(n))
                .ok_or_else(|| {
                    let unit = if self.unit == 1 { "bytes" } else { "KiB" };
                    ConfigIssue::at(
                        &format!("properties.{}", self.key),
                        format!(
                            "`{v}` is not a whole number from 1 to {} ({unit}); it sizes a buffer in this host's memory",
                            self.max
                        ),
                    )
                })?,
        };
        Ok(units.saturating_mul(self.unit))
    }
}

/// The most a consumer with these properties holds: its prefetch queue,
/// one fetch response beyond it, and `held` bytes the source keeps itself.
/// With several brokers a fetch may be in flight from each; the bound
/// counts one.
pub fn consumer_bytes(
    properties: &std::collections::BTreeMap<String, String>,
    held: u64,
) -> Result<u64, ConfigIssue> {
    // One fetch is at least `message.max.bytes`, whatever `fetch.max.bytes`
    // says (librdkafka raises an unset one to it).
    let fetch = FETCH.bytes(properties)?.max(MESSAGE_MAX.bytes(properties)?);
    Ok(PREFETCH
        .bytes(properties)?
        .saturating_add(fetch)
        .saturating_add(held))
}

/// The most a producer with these properties queues.
pub fn producer_bytes(
    properties: &std::collections::BTreeMap<String, String>,
) -> Result<u64, ConfigIssue> {
    PRODUCER_QUEUE.bytes(properties)
}

/// Under `state: changelog`: the most partitions one member's stages may
/// hold state for, each with its own transactional producer.
pub const CHANGELOG_PARTITIONS: usize = 32;
/// Under `state: changelog`: each partition's producer's queue (a publish
/// larger than this waits for acknowledgements as it goes).
pub const CHANGELOG_QUEUE_KBYTES: u64 = 4 * 1024;
/// Under `state: changelog`: the largest record, an entry's key and value
/// (Kafka's default message size; the topic is created with it).
pub const CHANGELOG_RECORD_BYTES: usize = 1 << 20;
/// Under `state: changelog`: what reading a partition's state back buffers
/// (its fetch queue and one fetch, two records' worth).
pub const CHANGELOG_READ_BYTES: u64 = 4 * (CHANGELOG_RECORD_BYTES as u64);

/// What a `kafka` source with `state: changelog` adds to its bound: the
/// producers of the most partitions a member may hold, and one restore.
pub fn changelog_bytes() -> u64 {
    (CHANGELOG_PARTITIONS as u64) * CHANGELOG_QUEUE_KBYTES * 1024 + CHANGELOG_READ_BYTES
}

/// What a consumer's bound is made of, for messages.
pub const CONSUMER_PARTS: &str =
    "`queued.max.messages.kbytes` + the larger of `fetch.max.bytes` and `message.max.bytes` + 64 MiB of records held in time order";

/// The same under `state: changelog`.
pub const CHANGELOG_CONSUMER_PARTS: &str =
    "`queued.max.messages.kbytes` + the larger of `fetch.max.bytes` and `message.max.bytes` + 64 MiB of records held in time order + 4 MiB for each of the 32 partitions whose state a member may hold (`state: changelog`) + 4 MiB to read one back";

/// What a producer's bound is made of, for messages.
pub const PRODUCER_PARTS: &str = "`queue.buffering.max.kbytes`";

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn unset_properties_give_the_defaults_and_set_ones_count() {
        let none = props(&[]);
        assert_eq!(consumer_bytes(&none, 7), Ok((64 << 20) + 52_428_800 + 7));
        assert_eq!(producer_bytes(&none), Ok(64 << 20));
        let set = props(&[
            ("queued.max.messages.kbytes", "1024"),
            ("fetch.max.bytes", "2000000"),
            ("queue.buffering.max.kbytes", " 2048 "),
        ]);
        assert_eq!(consumer_bytes(&set, 0), Ok((1 << 20) + 2_000_000));
        // A fetch below one record batch (`message.max.bytes`, 1,000,000 by
        // default) is counted as one batch.
        let small = props(&[
            ("queued.max.messages.kbytes", "1024"),
            ("fetch.max.bytes", "1000"),
        ]);
        assert_eq!(consumer_bytes(&small, 0), Ok((1 << 20) + 1_000_000));
        assert_eq!(producer_bytes(&set), Ok(2 << 20));
        // librdkafka's largest values are accepted here; the operator's
        // ceiling, not this module, refuses them.
        // A record batch as large as `message.max.bytes` makes a fetch that
        // large, `fetch.max.bytes` unset or not.
        let wide = props(&[("message.max.bytes", "1000000000")]);
        assert_eq!(consumer_bytes(&wide, 0), Ok((64 << 20) + 1_000_000_000));
        let greedy = props(&[("queued.max.messages.kbytes", "2097151")]);
        assert_eq!(
            consumer_bytes(&greedy, 0),
            Ok(2_097_151 * 1024 + 52_428_800)
        );
    }

    #[test]
    fn values_that_are_not_a_size_are_refused_naming_the_property() {
        for (key, bad) in [
            ("queued.max.messages.kbytes", "lots"),
            ("queued.max.messages.kbytes", "0"),
            ("queued.max.messages.kbytes", "2097152"),
            ("fetch.max.bytes", "-1"),
            ("fetch.max.bytes", "1.5"),
        ] {
            let e = consumer_bytes(&props(&[(key, bad)]), 0).expect_err(&format!("{key}: {bad}"));
            assert_eq!(e.field, format!("properties.{key}"));
            assert!(
                e.message
                    .contains(&format!("`{bad}` is not a whole number")),
                "{}",
                e.message
            );
        }
        let e = producer_bytes(&props(&[("queue.buffering.max.kbytes", "1e9")])).expect_err("1e9");
        assert!(
            e.message.contains("from 1 to 2147483647 (KiB)"),
            "{}",
            e.message
        );
    }
}
