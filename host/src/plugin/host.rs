//! What the host gives a plugin instance: logging, and for processors their
//! state and tables. Memory is capped by the store's limiter (`limiter.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::bindings::processor::sluice::plugin::{state, tables, timers};
use super::bindings::sluice::plugin::log;
use super::guest_log::GuestLog;
use crate::state::KeyedState;

/// What a processor instance may reach: its stage's keyed state and the
/// tables granted to the stage. Both live outside the instance, so a
/// replaced instance (after a trap) sees the same state.
pub struct ProcessorContext {
    /// The stage's keyed state and timers.
    pub state: Arc<Mutex<KeyedState>>,
    /// Tables the stage was granted, by name.
    pub tables: HashMap<String, crate::state::Table>,
}

/// Per-instance host state.
pub struct HostState {
    /// Set for processors.
    pub processor: Option<ProcessorContext>,
    /// Set for connectors granted `http`.
    pub net: Option<super::net::Net>,
    /// The pipeline's user-defined functions, for transforms that import
    /// `udfs` (each function in its own store).
    pub udfs: Option<super::udf::UdfCalls>,
    log: GuestLog,
}

impl HostState {
    /// State for an instance of `plugin` in `stage`.
    pub fn new(stage: &str, plugin: &str) -> Self {
        Self {
            processor: None,
            net: None,
            udfs: None,
            log: GuestLog::new(stage, plugin),
        }
    }

    /// Forgets the previous call's error log line and resets its log budget.
    pub fn begin_call(&mut self) {
        self.log.begin_call();
    }

    /// The last error the plugin logged in this call (e.g. its panic message).
    pub fn last_error(&self) -> Option<&str> {
        self.log.last_error()
    }
}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) {
        self.log.log(level, &message);
    }
}

impl crate::event::abi::sluice::plugin::types::Host for HostState {}

impl HostState {
    fn with_state<T>(&mut self, default: T, f: impl FnOnce(&mut KeyedState) -> T) -> T {
        match &self.processor {
            Some(p) => match p.state.lock() {
                Ok(mut s) => f(&mut s),
                Err(poisoned) => f(&mut poisoned.into_inner()),
            },
            None => default,
        }
    }
}

impl state::Host for HostState {
    fn get(&mut self, key: Vec<u8>) -> Option<Vec<u8>> {
        self.with_state(None, |s| s.get(&key))
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>, ttl_ms: Option<u64>) {
        self.with_state((), |s| s.put(key, value, ttl_ms))
    }

    fn delete(&mut self, key: Vec<u8>) {
        self.with_state((), |s| s.delete(key))
    }

    fn scan(&mut self, prefix: Vec<u8>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.with_state(Vec::new(), |s| s.scan(&prefix, limit as usize))
    }
}

impl timers::Host for HostState {
    fn register(&mut self, key: Vec<u8>, at_ms: i64) {
        self.with_state((), |s| s.register(key, at_ms))
    }

    fn cancel(&mut self, key: Vec<u8>, at_ms: i64) {
        self.with_state((), |s| s.cancel(key, at_ms))
    }

    fn watermark(&mut self) -> i64 {
        self.with_state(i64::MIN, KeyedState::watermark_for_plugin)
    }
}

impl tables::Host for HostState {
    fn lookup(&mut self, table: String, key: Vec<u8>) -> Option<Vec<u8>> {
        // Grants are checked when the pipeline is validated; an unknown name
        // here can only come from a plugin asking for a table it was not
        // given, and it sees nothing.
        self.processor
            .as_ref()
            .and_then(|p| p.tables.get(&table))
            .and_then(|t| t.get(&key))
    }
}

/// Contract 0.2.0's imports: the same host, reached through 0.2.0's types.
mod v2_imports {
    use super::HostState;
    use crate::plugin::bindings::v2::processor::sluice::plugin::{state, tables, timers};
    use crate::plugin::bindings::v2::sluice::plugin::{log, types};
    use crate::plugin::bindings::{self, processor::sluice::plugin as v1};

    impl types::Host for HostState {}

    impl crate::plugin::bindings::v2::sluice::plugin::udfs::Host for HostState {
        fn call(&mut self, name: String, args: Vec<u8>) -> Result<Vec<u8>, String> {
            match &mut self.udfs {
                Some(udfs) => udfs.call(&name, &args),
                None => Err(format!(
                    "no user-defined function `{name}`: the pipeline registers none"
                )),
            }
        }
    }

    impl log::Host for HostState {
        fn log(&mut self, level: log::Level, message: String) {
            let level = match level {
                log::Level::Trace => bindings::Level::Trace,
                log::Level::Debug => bindings::Level::Debug,
                log::Level::Info => bindings::Level::Info,
                log::Level::Warn => bindings::Level::Warn,
                log::Level::Error => bindings::Level::Error,
            };
            self.log.log(level, &message);
        }
    }

    impl state::Host for HostState {
        fn get(&mut self, key: Vec<u8>) -> Option<Vec<u8>> {
            v1::state::Host::get(self, key)
        }
        fn put(&mut self, key: Vec<u8>, value: Vec<u8>, ttl_ms: Option<u64>) {
            v1::state::Host::put(self, key, value, ttl_ms)
        }
        fn delete(&mut self, key: Vec<u8>) {
            v1::state::Host::delete(self, key)
        }
        fn scan(&mut self, prefix: Vec<u8>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
            v1::state::Host::scan(self, prefix, limit)
        }
    }

    impl timers::Host for HostState {
        fn register(&mut self, key: Vec<u8>, at_ms: i64) {
            v1::timers::Host::register(self, key, at_ms)
        }
        fn cancel(&mut self, key: Vec<u8>, at_ms: i64) {
            v1::timers::Host::cancel(self, key, at_ms)
        }
        fn watermark(&mut self) -> i64 {
            v1::timers::Host::watermark(self)
        }
    }

    impl tables::Host for HostState {
        fn lookup(&mut self, table: String, key: Vec<u8>) -> Option<Vec<u8>> {
            v1::tables::Host::lookup(self, table, key)
        }
        fn lookup_many(&mut self, table: String, keys: Vec<u8>) -> Result<Vec<u8>, String> {
            let table = self.processor.as_ref().and_then(|p| p.tables.get(&table));
            crate::plugin::lookup_many::answer(table, &keys)
        }
    }
}
