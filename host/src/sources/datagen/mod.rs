//! `datagen` source: realistic fake records (people, customers, orders,
//! shipments), seeded so two runs with the same seed produce the same data,
//! at a fixed rate or as fast as possible, bounded by `count` or not.

pub mod records;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::connector::Progress;
use crate::connector::{parse_source, SourceConfig, SourceContext, SourceKind};
use crate::connector::{Polled, Source};
use crate::event::BatchBuilder;
use records::{Kind, Rng};

/// Configuration of a `datagen` source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatagenConfig {
    /// What to generate: `people`, `customers`, `orders` or `shipments`.
    pub kind: DatagenKind,
    /// Stop after this many records; unbounded when absent.
    pub count: Option<u64>,
    /// Records per second; as fast as possible when absent.
    pub rate: Option<f64>,
    /// Seed for reproducible data.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_seed() -> u64 {
    42
}

/// Record kinds (validated when the pipeline file is loaded).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DatagenKind {
    /// name, email, phone, birth_date, job, sex, updated_at.
    People,
    /// The seeds' customers: id, name, age.
    Customers,
    /// The seeds' orders.
    Orders,
    /// The seeds' shipments.
    Shipments,
}

impl DatagenKind {
    fn kind(self) -> Kind {
        match self {
            DatagenKind::People => Kind::People,
            DatagenKind::Customers => Kind::Customers,
            DatagenKind::Orders => Kind::Orders,
            DatagenKind::Shipments => Kind::Shipments,
        }
    }
}

/// A running `datagen` source.
pub struct DatagenSource {
    config: DatagenConfig,
    origin: Arc<str>,
    progress: Arc<Progress>,
    seq: u64,
    started: Instant,
    start_seq: u64,
    buf: Vec<u8>,
}

impl DatagenSource {
    /// A generator per `config`.
    pub fn new(config: DatagenConfig, origin: Arc<str>, progress: Arc<Progress>) -> Self {
        Self {
            config,
            origin,
            progress,
            seq: 0,
            started: Instant::now(),
            start_seq: 0,
            buf: Vec::with_capacity(512),
        }
    }
}

/// Each record's generator is seeded from (seed, seq), so resuming at a
/// checkpointed sequence produces exactly the records a full run would.
fn record_rng(seed: u64, seq: u64) -> Rng {
    Rng::new(seed ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

impl Source for DatagenSource {
    fn open(&mut self, position: Option<&Value>) -> Result<()> {
        self.seq = position
            .and_then(|p| p.get("seq"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        self.start_seq = self.seq;
        self.started = Instant::now();
        if let Some(count) = self.config.count {
            self.progress.set_total(count);
        }
        self.progress.set_done(self.seq);
        Ok(())
    }

    fn poll(&mut self, max: usize) -> Result<Polled> {
        let mut n = max as u64;
        if let Some(count) = self.config.count {
            n = n.min(count.saturating_sub(self.seq));
            if n == 0 {
                return Ok(Polled {
                    done: true,
                    ..Polled::default()
                });
            }
        }
        if let Some(rate) = self.config.rate.filter(|r| *r > 0.0) {
            // Pace against the start so rounding never drifts.
            let due = ((self.started.elapsed().as_secs_f64() * rate) as u64)
                .saturating_sub(self.seq - self.start_seq);
            if due == 0 {
                std::thread::sleep(Duration::from_secs_f64((1.0 / rate).min(0.05)));
                return Ok(Polled::default());
            }
            n = n.min(due);
        }
        let mut out = BatchBuilder::new(&self.origin, self.origin.clone(), n as usize);
        let kind = self.config.kind.kind();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        for _ in 0..n {
            let mut rng = record_rng(self.config.seed, self.seq);
            let (key, value) = records::record(kind, &mut rng, self.seq);
            self.buf.clear();
            serde_json::to_writer(&mut self.buf, &value)?;
            out.push(
                key.as_deref().map(str::as_bytes),
                Some(&self.buf),
                &[],
                now_ms,
                self.seq,
            );
            self.seq += 1;
        }
        self.progress.set_done(self.seq);
        let done = self.config.count.is_some_and(|c| self.seq >= c);
        Ok(Polled {
            batch: Some(out.finish()),
            malformed: Vec::new(),
            done,
        })
    }

    fn position(&self) -> Value {
        json!({ "seq": self.seq })
    }

    fn caught_up(&self) -> bool {
        // A bounded generator is a data set: caught up when it is all out.
        self.config.count.is_none()
    }
}

/// The `datagen` source in the connector registry.
pub const KIND: SourceKind = SourceKind {
    name: "datagen",
    summary: "generated records (people, orders, ...), bounded or endless",
    parse: parse_source::<DatagenConfig>,
};

impl SourceConfig for DatagenConfig {
    // Reads or writes local files or streams only.
    fn endpoints(&self) -> crate::connector::endpoint::Reach {
        Some(vec![])
    }

    fn build(&self, cx: SourceContext<'_>) -> Result<Box<dyn Source>> {
        Ok(Box::new(DatagenSource::new(
            self.clone(),
            std::sync::Arc::from(cx.name),
            cx.progress,
        )))
    }
}
