//! A tenant's user-defined functions: a `udf` component is uploaded like any
//! plugin and named in `udfs:`; a UDF given by path is refused, as a
//! stage's plugin is, before anything is loaded.

use serde_json::Value;

use super::{tenant, write_config, Server};
use crate::support::guest;

#[test]
fn a_tenant_udf_names_an_uploaded_plugin_and_a_path_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(
        dir.path(),
        "[defaults]\nconnectors = [\"datagen\", \"file\"]\n",
    );
    let s = Server::start(dir.path());
    let acme = tenant(&s, "acme", "deploy");
    let up = s.ok(
        "POST",
        "/v1/plugins?name=haversine",
        Some(&acme),
        Some(std::fs::read(guest("haversine")).expect("haversine.wasm")),
    );
    assert_eq!(up["world"], "udf", "{up}");
    let validate = |udf_plugin: &str| -> (u16, Value) {
        let file = format!(
            "name: p\nudfs:\n  haversine_km: {{plugin: {udf_plugin}}}\nsources:\n  gen: {{type: datagen, kind: people, count: 1}}\nstages:\n  d:\n    plugin: project\n    inputs: [gen]\n    params: {{set: {{km: \"haversine_km(0, 0, 0, 1)\"}}}}\nsinks:\n  out: {{type: file, path: out.jsonl, inputs: [d]}}\n"
        );
        s.call("POST", "/v1/validate", Some(&acme), Some(file.into_bytes()))
    };
    let (code, v) = validate("haversine");
    assert_eq!(code, 200, "{v}");
    let path = guest("haversine").display().to_string();
    let (code, v) = validate(&path);
    assert_eq!(code, 400, "{v}");
    let diags: Vec<&str> = v["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(diags.len(), 1, "{v}");
    assert!(
        diags[0].ends_with(&format!(
            "udfs.haversine_km.plugin: `{path}` is not allowed on a server: name an uploaded plugin (NAME or sha256:HEX) or a built-in one, not a path"
        )),
        "{v}"
    );
    s.terminate();
}
