//! A hostile user-defined function. `hostile(mode)` does what `mode` says:
//! `trap` panics, `spin` never returns, `alloc` allocates until it is
//! stopped, `huge` returns a 1 MiB string, `badjson` returns bytes that are
//! not JSON, `error` returns an error; anything else is echoed back, so the
//! events around a culprit show the function still works.
//!
//! It implements the export by hand (not `export_udf!`) so it can return
//! what the SDK would never write.

#[cfg(target_arch = "wasm32")]
mod guest {
    use serde_json::Value;
    use sluice_sdk::glue::wit::sluice::plugin::types::PluginInfo;
    use sluice_sdk::glue_udf::uwit::exports::sluice::plugin::scalar::Guest;

    struct Hostile;

    impl Guest for Hostile {
        fn describe() -> PluginInfo {
            sluice_sdk::glue::info("udf-hostile", "0.1.0", "attacks the host")
        }

        fn call(args: Vec<u8>) -> Result<Vec<u8>, String> {
            sluice_sdk::glue::install_panic_hook();
            let args: Vec<Value> = serde_json::from_slice(&args).map_err(|e| e.to_string())?;
            let mode = args.first().and_then(Value::as_str).unwrap_or_default();
            match mode {
                "trap" => panic!("hostile udf asked to trap"),
                "spin" => loop {
                    std::hint::black_box(0u8);
                },
                "alloc" => {
                    let mut hoard: Vec<Vec<u8>> = Vec::new();
                    loop {
                        hoard.push(vec![1u8; 1 << 20]);
                        std::hint::black_box(&hoard);
                    }
                }
                "huge" => {
                    let mut out = vec![b'x'; 1 << 20];
                    out[0] = b'"';
                    if let Some(last) = out.last_mut() {
                        *last = b'"';
                    }
                    Ok(out)
                }
                "badjson" => Ok(b"{not json".to_vec()),
                "error" => Err("refused on purpose".into()),
                other => {
                    serde_json::to_vec(&Value::String(other.to_string())).map_err(|e| e.to_string())
                }
            }
        }
    }

    sluice_sdk::glue_udf::uwit::export!(Hostile with_types_in sluice_sdk::glue_udf::uwit);
}
