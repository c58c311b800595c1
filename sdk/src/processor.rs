//! Stateful processors: joins, aggregations and windows over state the host
//! keeps (and checkpoints) for the stage.
//!
//! ```
//! use sluice_sdk::{Emitter, Event, EventError, Host, Params, Processor};
//!
//! /// Counts events per key and emits the running count.
//! pub struct Count;
//!
//! impl Processor for Count {
//!     fn new(_: &Params) -> Result<Self, String> { Ok(Count) }
//!
//!     fn process(&mut self, e: &Event<'_>, out: &mut Emitter<'_>, host: &mut dyn Host)
//!         -> Result<(), EventError> {
//!         let key = e.key().unwrap_or_default();
//!         let n = host.get(key).map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap_or([0; 8]))) + 1;
//!         host.put(key, &n.to_le_bytes(), None);
//!         out.json(&serde_json::json!({"count": n}));
//!         Ok(())
//!     }
//! }
//!
//! let out = sluice_sdk::testing::run_processor::<Count>(&[], &[(Some("a"), "{}"), (Some("a"), "{}")], 0).unwrap();
//! assert_eq!(out.values(), vec![r#"{"count":1}"#, r#"{"count":2}"#]);
//! ```

use crate::abi::{CallError, RawBatch, RawOutput, RowFields, Rows};
use crate::{run_events, Emitter, Event, EventError, Params};

/// What the host offers a processor: keyed state scoped to the stage
/// (checkpointed with the source positions), read-only tables the pipeline
/// grants, and event-time timers. In a component these are the contract's
/// imports; in native tests, [`crate::testing::MemoryHost`].
pub trait Host {
    /// The value stored under `key`.
    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>>;
    /// Stores `value` under `key`; with `ttl_ms` it expires that long after
    /// the watermark.
    fn put(&mut self, key: &[u8], value: &[u8], ttl_ms: Option<u64>);
    /// Deletes `key`.
    fn delete(&mut self, key: &[u8]);
    /// Entries whose key starts with `prefix`, in key order, at most `limit`.
    fn scan(&mut self, prefix: &[u8], limit: u32) -> Vec<(Vec<u8>, Vec<u8>)>;
    /// The latest value for `key` in table `table` (granted in the pipeline file).
    fn lookup(&mut self, table: &str, key: &[u8]) -> Option<Vec<u8>>;
    /// The latest values for many keys of `table`, in order: in a component,
    /// one host call and two bulk copies however many keys (chunked at the
    /// host's bound), where [`Host::lookup`] costs a call per key. Look up a
    /// whole batch in [`Processor::prepare`].
    fn lookup_many(&mut self, table: &str, keys: &[&[u8]]) -> Rows {
        let mut rows = Rows::default();
        for k in keys {
            rows.push(self.lookup(table, k).as_deref());
        }
        rows
    }
    /// [`Host::lookup_many`] projected on `names`: per key, no row, the
    /// named top-level fields' values of an object row (the last occurrence
    /// of each, as [`crate::json::JsonView::get`] finds it), or the bytes of
    /// a row that is not an object. In a component the host finds the
    /// fields natively and sends only their values, which spares the plugin
    /// each row's field table and the search through it.
    fn lookup_fields(&mut self, table: &str, names: &[&str], keys: &[&[u8]]) -> RowFields {
        let mut fields = RowFields::new(names.len());
        fields.extend_from_rows(&self.lookup_many(table, keys), names);
        fields
    }
    /// Calls [`Processor::on_timer`] with `key` once the watermark reaches `at_ms`.
    fn register_timer(&mut self, key: &[u8], at_ms: i64);
    /// Cancels a timer.
    fn cancel_timer(&mut self, key: &[u8], at_ms: i64);
    /// The stage's event-time watermark (ms since the epoch).
    fn watermark(&mut self) -> i64;
}

/// A stateful processor: 0..n outputs per input event, and per fired timer.
pub trait Processor: Sized {
    /// Builds the processor from the stage's parameters; an error fails the deployment.
    fn new(params: &Params) -> Result<Self, String>;

    /// Called once per input batch, before [`Processor::process`] sees its
    /// events: the place for work that is cheaper for many events at once,
    /// such as fetching every event's table row with one
    /// [`Host::lookup_many`] (then [`Event::index`] finds an event's row).
    /// An error fails the whole call.
    fn prepare(&mut self, _events: &[Event<'_>], _host: &mut dyn Host) -> Result<(), CallError> {
        Ok(())
    }

    /// Processes one event. [`Event::stream`] names the input it came from.
    fn process(
        &mut self,
        event: &Event<'_>,
        out: &mut Emitter<'_>,
        host: &mut dyn Host,
    ) -> Result<(), EventError>;

    /// A timer fired: `timer.key()` is its key and `timer.timestamp_ms()` its
    /// time. Outputs default to that key and time.
    fn on_timer(
        &mut self,
        _timer: &Event<'_>,
        _out: &mut Emitter<'_>,
        _host: &mut dyn Host,
    ) -> Result<(), EventError> {
        Ok(())
    }
}

/// Runs `processor` over one batch (shared by the Wasm glue and the stub host).
pub fn run_processor<P: Processor>(
    processor: &mut P,
    host: &mut dyn Host,
    input: &RawBatch,
) -> Result<RawOutput, CallError> {
    let events: Vec<Event<'_>> = input
        .events
        .iter()
        .enumerate()
        .map(|(i, raw)| Event {
            batch: input,
            raw,
            index: u32::try_from(i).unwrap_or(u32::MAX),
        })
        .collect();
    processor.prepare(&events, host)?;
    run_events(input, |e, out| processor.process(e, out, host))
}

/// Delivers fired timers `(key, at_ms)`: each becomes an input event (key,
/// no value, timestamp `at_ms`) whose index is the timer's.
pub fn run_timers<P: Processor>(
    processor: &mut P,
    host: &mut dyn Host,
    fired: &[(Vec<u8>, i64)],
) -> Result<RawOutput, CallError> {
    let mut input = RawBatch::default();
    for (key, at) in fired {
        input.push_event(Some(key), None, &[], *at, 0);
    }
    run_events(&input, |e, out| processor.on_timer(e, out, host))
}

/// Shorthand for a rejection from an error that is not the event's fault.
pub fn fatal(reason: impl std::fmt::Display) -> EventError {
    EventError::Fatal(reason.to_string())
}
