//! Wasm-side glue for user-defined functions (feature `udf`): the `udf`
//! world's `scalar` export behind [`crate::export_udf!`].

/// Bindings for the `udf` world; `types` and `log` are shared with the
/// transform bindings.
#[allow(missing_docs)]
pub mod uwit {
    wit_bindgen::generate!({
        path: "../wit",
        world: "udf",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "::sluice_sdk::glue_udf::uwit",
        runtime_path: "::sluice_sdk::glue::wit_bindgen::rt",
        with: {
            "sluice:plugin/types@0.2.0": crate::glue::wit::sluice::plugin::types,
            "sluice:plugin/log@0.2.0": crate::glue::wit::sluice::plugin::log,
        },
    });
}

/// One call: a panic reaches the host's log before the trap.
pub fn call(f: crate::udf::UdfFn, args: &[u8]) -> Result<Vec<u8>, String> {
    crate::glue::install_panic_hook();
    crate::udf::run_udf(f, args)
}
