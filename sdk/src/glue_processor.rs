//! Wasm-side glue for the `processor` world (feature `processor`): the
//! contract's state, tables and timers imports behind the SDK's [`Host`]
//! trait, and the `stateful` export behind [`Processor`].

use std::cell::RefCell;

use crate::abi::{
    encode_keys, encode_keys_with, encode_keys_with_fields, RowFields, Rows, MAX_LOOKUP_FIELDS,
    MAX_LOOKUP_KEYS, WITH_TABLES,
};
use crate::glue::{from_wit, install_panic_hook, output_to_wit, wit::sluice::plugin::types as t};
use crate::processor::{run_processor, run_timers};
use crate::{Host, Params, Processor};

/// Bindings for the processor world; `types` and `log` are shared with the
/// transform bindings.
#[allow(missing_docs)]
pub mod pwit {
    wit_bindgen::generate!({
        path: "../wit",
        world: "processor",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "::sluice_sdk::glue_processor::pwit",
        runtime_path: "::sluice_sdk::glue::wit_bindgen::rt",
        with: {
            "sluice:plugin/types@0.2.0": crate::glue::wit::sluice::plugin::types,
            "sluice:plugin/log@0.2.0": crate::glue::wit::sluice::plugin::log,
        },
    });
}

use pwit::exports::sluice::plugin::stateful as exported;
use pwit::sluice::plugin::{state, tables, timers};

/// The host's imports.
struct WasmHost;

impl Host for WasmHost {
    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        state::get(key)
    }
    fn put(&mut self, key: &[u8], value: &[u8], ttl_ms: Option<u64>) {
        state::put(key, value, ttl_ms)
    }
    fn delete(&mut self, key: &[u8]) {
        state::delete(key)
    }
    fn scan(&mut self, prefix: &[u8], limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        state::scan(prefix, limit)
    }
    fn lookup(&mut self, table: &str, key: &[u8]) -> Option<Vec<u8>> {
        tables::lookup(table, key)
    }
    fn lookup_many(&mut self, table: &str, keys: &[&[u8]]) -> Rows {
        let mut rows = Rows::default();
        for chunk in keys.chunks(MAX_LOOKUP_KEYS) {
            // Rows come with their field tables, so a plugin reading them
            // through `JsonParser::parse_with_table` skips the scan; tables
            // can take a call past the host's row-bytes bound, so without
            // them next.
            let answered =
                tables::lookup_many(table, &encode_keys_with(WITH_TABLES, chunk.iter().copied()))
                    .is_ok_and(|answer| rows.extend_from_answer_with_tables(answer, chunk.len()))
                    || tables::lookup_many(table, &encode_keys(chunk.iter().copied()))
                        .is_ok_and(|answer| rows.extend_from_answer(&answer, chunk.len()));
            if !answered {
                // Past the host's row-bytes bound (huge rows): one call per
                // key still answers, only slower.
                for k in chunk {
                    rows.push(tables::lookup(table, k).as_deref());
                }
            }
        }
        rows
    }
    fn lookup_fields(&mut self, table: &str, names: &[&str], keys: &[&[u8]]) -> RowFields {
        let mut fields = RowFields::new(names.len());
        for chunk in keys.chunks(MAX_LOOKUP_KEYS) {
            // A host that does not know the option, or rows past its
            // row-bytes bound, leave the projection to the plugin.
            let answered = names.len() <= MAX_LOOKUP_FIELDS
                && tables::lookup_many(
                    table,
                    &encode_keys_with_fields(names, chunk.iter().copied()),
                )
                .is_ok_and(|answer| fields.extend_from_answer(answer, chunk.len()));
            if !answered {
                fields.extend_from_rows(&self.lookup_many(table, chunk), names);
            }
        }
        fields
    }
    fn register_timer(&mut self, key: &[u8], at_ms: i64) {
        timers::register(key, at_ms)
    }
    fn cancel_timer(&mut self, key: &[u8], at_ms: i64) {
        timers::cancel(key, at_ms)
    }
    fn watermark(&mut self) -> i64 {
        timers::watermark()
    }
}

/// A processor instance behind a WIT resource handle.
pub struct ProcessorResource<P> {
    inner: RefCell<P>,
}

impl<P: Processor + 'static> exported::GuestProcessor for ProcessorResource<P> {
    fn create(params: Vec<t::Param>) -> Result<exported::Processor, String> {
        install_panic_hook();
        let params = Params::new(params.into_iter().map(|p| (p.name, p.value)));
        let inner = P::new(&params)?;
        Ok(exported::Processor::new(ProcessorResource {
            inner: RefCell::new(inner),
        }))
    }

    fn process(&self, input: t::Batch) -> Result<t::Output, t::CallError> {
        let input = from_wit(input);
        let mut inner = self.inner.borrow_mut();
        output_to_wit(run_processor(&mut *inner, &mut WasmHost, &input))
    }

    fn on_timers(&self, fired: Vec<exported::FiredTimer>) -> Result<t::Output, t::CallError> {
        let fired: Vec<(Vec<u8>, i64)> = fired.into_iter().map(|f| (f.key, f.at_ms)).collect();
        let mut inner = self.inner.borrow_mut();
        output_to_wit(run_timers(&mut *inner, &mut WasmHost, &fired))
    }
}
