//! User-defined functions (UDFs): scalar functions written as plugins of the
//! `udf` world and called by name from expressions (`filter`'s `where`,
//! `project`'s `set`) and SQL.
//!
//! Writing one: a function from the arguments (JSON values) to the result,
//! exported with [`crate::export_udf!`] (needs the SDK's `udf` feature for
//! the Wasm build). Return `Err` for input it cannot handle: the event whose
//! expression called it is dead-lettered with that reason.
//!
//! ```
//! use serde_json::{json, Value};
//!
//! /// `initials('Ada Lovelace')` is `"AL"`.
//! fn initials(args: &[Value]) -> Result<Value, String> {
//!     let [Value::String(name)] = args else {
//!         return Err("initials(name) takes one string".into());
//!     };
//!     Ok(Value::String(name.split_whitespace().filter_map(|w| w.chars().next()).collect()))
//! }
//! sluice_sdk::export_udf!(initials);
//!
//! // Natively, `run_udf` is exactly what the Wasm export runs.
//! let out = sluice_sdk::udf::run_udf(initials, br#"["Ada Lovelace"]"#).unwrap();
//! assert_eq!(out, br#""AL""#);
//! ```
//!
//! Calling one: [`call`] reaches the host's `udfs` import (the built-in
//! expression plugins do this). Natively there is no host: functions
//! registered on the thread with [`register_native`] stand in, so the
//! expression language unit-tests its UDF calls.

use serde_json::Value;

/// The signature of a UDF: arguments in, one value out.
pub type UdfFn = fn(&[Value]) -> Result<Value, String>;

/// Runs `f` on `args` (a JSON array, as the host sends it) and returns the
/// result as JSON text. This is the whole body of the Wasm export.
pub fn run_udf(f: UdfFn, args: &[u8]) -> Result<Vec<u8>, String> {
    let args: Vec<Value> = serde_json::from_slice(args)
        .map_err(|e| format!("the arguments are not a JSON array: {e}"))?;
    let out = f(&args)?;
    serde_json::to_vec(&out).map_err(|e| format!("the result cannot be written as JSON: {e}"))
}

/// Calls the pipeline's UDF `name` with `args` (a JSON array); the result is
/// one JSON value as text. The error says what failed (an unknown name, the
/// function's own error, a trap or a breached limit).
pub fn call(name: &str, args: &[u8]) -> Result<Vec<u8>, String> {
    #[cfg(target_arch = "wasm32")]
    {
        crate::glue::wit::sluice::plugin::udfs::call(name, args)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let f = NATIVE.with(|n| {
            n.borrow()
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, f)| *f)
        });
        match f {
            Some(f) => run_udf(f, args),
            None => Err(format!("no user-defined function `{name}` is registered")),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
thread_local! {
    static NATIVE: std::cell::RefCell<Vec<(String, UdfFn)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Native builds: makes `f` answer [`call`]s of `name` on this thread (a
/// stand-in for the host, for unit tests).
#[cfg(not(target_arch = "wasm32"))]
pub fn register_native(name: &str, f: UdfFn) {
    NATIVE.with(|n| n.borrow_mut().push((name.to_string(), f)));
}

/// Exports a function `fn(&[serde_json::Value]) -> Result<serde_json::Value,
/// String>` as the `sluice:plugin/scalar` interface (the `udf` world).
/// Needs the SDK's `udf` feature. On non-Wasm targets it expands to nothing.
#[macro_export]
macro_rules! export_udf {
    ($f:path) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct SluiceUdfComponent;
            impl $crate::glue_udf::uwit::exports::sluice::plugin::scalar::Guest
                for SluiceUdfComponent
            {
                fn describe() -> $crate::glue::wit::sluice::plugin::types::PluginInfo {
                    $crate::glue::info(
                        env!("CARGO_PKG_NAME"),
                        env!("CARGO_PKG_VERSION"),
                        env!("CARGO_PKG_DESCRIPTION"),
                    )
                }
                fn call(args: ::std::vec::Vec<u8>) -> Result<::std::vec::Vec<u8>, String> {
                    $crate::glue_udf::call($f, &args)
                }
            }
    $crate::glue_udf::uwit::export!(SluiceUdfComponent with_types_in $crate::glue_udf::uwit);
        };
    };
}
