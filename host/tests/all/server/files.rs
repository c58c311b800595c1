//! A tenant's file area through the API and `sluice --server URL files`:
//! an input uploaded, read by a pipeline, its output downloaded; names
//! that would leave the area refused; another tenant sees none of it; the
//! area bounded by `max_file_bytes`, uploads and what file sinks write alike.

use serde_json::Value;

use super::{tenant, write_config, Server};
use crate::support::sluice;

#[test]
fn a_tenant_uploads_inputs_and_downloads_outputs_only_inside_its_own_area() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), "[tenants.acme]\nmax_file_bytes = 200000\n");
    let s = Server::start(dir.path());
    let acme = tenant(&s, "acme", "deploy");
    let zeta = tenant(&s, "zeta", "deploy");

    // In through the CLI, under a folder.
    let local = dir.path().join("orders.jsonl");
    let input: String = (0..100).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    std::fs::write(&local, &input).expect("input");
    let cli = |token: &str, args: &[&str]| {
        sluice()
            .env("SLUICE_TOKEN", token)
            .args(["--server", &s.url, "files"])
            .args(args)
            .output()
            .expect("sluice files")
    };
    let put = cli(
        &acme,
        &["put", local.to_str().expect("utf-8"), "in/orders.jsonl"],
    );
    assert!(put.status.success(), "{put:?}");
    assert!(String::from_utf8_lossy(&put.stdout).contains("stored in/orders.jsonl"));

    let p = "name: copy\nsources:\n  in: {type: file, path: in/orders.jsonl}\nsinks:\n  out: {type: file, path: out/copy.jsonl, inputs: [in]}\n";
    s.ok("POST", "/v1/pipelines", Some(&acme), Some(p.into()));
    s.wait_for(&acme, "copy", "finished", |v| {
        v["status"]["state"] == "finished"
    });

    let listed = s.ok("GET", "/v1/files", Some(&acme), None);
    let paths: Vec<&str> = listed["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(paths, ["in/orders.jsonl", "out/copy.jsonl"], "{listed}");
    assert_eq!(listed["max_file_bytes"], 200000);
    let got = cli(&acme, &["get", "out/copy.jsonl"]);
    assert!(got.status.success(), "{got:?}");
    assert_eq!(String::from_utf8_lossy(&got.stdout).lines().count(), 100);
    let ls = cli(&acme, &["ls"]);
    let ls = String::from_utf8_lossy(&ls.stdout);
    assert!(
        ls.contains("out/copy.jsonl") && ls.contains("of 200000 (max_file_bytes)"),
        "{ls}"
    );

    // Another tenant sees nothing of it.
    let theirs = s.ok("GET", "/v1/files", Some(&zeta), None);
    assert_eq!(theirs["files"], serde_json::json!([]), "{theirs}");
    let (code, _) = s.call("GET", "/v1/files/out/copy.jsonl", Some(&zeta), None);
    assert_eq!(code, 404);

    // Names that would leave the area, hidden in encodings too.
    let secret = dir.path().join("data/secrets.key");
    assert!(
        secret.exists(),
        "the server's key is there to be reached for"
    );
    for bad in [
        "/v1/files/..%2F..%2Fsecrets.key",
        "/v1/files/%2E%2E/%2E%2E/secrets.key",
        "/v1/files/in/..%2F..%2F..%2Fsecrets.key",
        "/v1/files/%2Fetc%2Fpasswd",
        "/v1/files/a%00b",
    ] {
        let (code, v) = s.call("GET", bad, Some(&acme), None);
        assert_eq!(code, 400, "{bad}: {v}");
        let (code, v) = s.call("PUT", bad, Some(&acme), Some(b"x".to_vec()));
        assert_eq!(code, 400, "{bad}: {v}");
        let (code, v) = s.call("DELETE", bad, Some(&acme), None);
        assert_eq!(code, 400, "{bad}: {v}");
    }
    // The longest names are stored (a temporary name must not be longer).
    let long = format!("{}/{}", "d".repeat(255), "f".repeat(255));
    let (code, v) = s.call(
        "PUT",
        &format!("/v1/files/{long}"),
        Some(&acme),
        Some(b"x".to_vec()),
    );
    assert_eq!(code, 201, "{v}");
    s.ok("DELETE", &format!("/v1/files/{long}"), Some(&acme), None);
    // A folder is not a file.
    let (code, _) = s.call("PUT", "/v1/files/out", Some(&acme), Some(b"x".to_vec()));
    assert_eq!(code, 409);
    // A read token lists and downloads but does not change the area.
    let reader = super::token(&s, "acme", "read", super::ADMIN);
    let (code, _) = s.call(
        "PUT",
        "/v1/files/x.jsonl",
        Some(&reader),
        Some(b"x".to_vec()),
    );
    assert_eq!(code, 403);
    let (code, _) = s.call("DELETE", "/v1/files/in/orders.jsonl", Some(&reader), None);
    assert_eq!(code, 403);

    // The quota: 200,000 bytes for uploads and outputs together.
    let used = listed["bytes"].as_u64().expect("bytes");
    let too_big = vec![b'x'; usize::try_from(200_001 - used).expect("small")];
    let (code, v) = s.call("PUT", "/v1/files/big.bin", Some(&acme), Some(too_big));
    assert_eq!(
        (code, v["quota"].as_str()),
        (403, Some("max_file_bytes")),
        "{v}"
    );
    assert_eq!(v["requested"].as_u64(), Some(200_001), "{v}");
    // Replacing a file counts the new size, not both.
    let (code, v) = s.call(
        "PUT",
        "/v1/files/in/orders.jsonl",
        Some(&acme),
        Some(input.clone().into_bytes()),
    );
    assert_eq!(code, 200, "{v}");
    // A pipeline writing past the quota is stopped, naming it.
    let p = "name: flood\nsources:\n  gen: {type: datagen, kind: people}\nsinks:\n  out: {type: file, path: flood.jsonl, inputs: [gen]}\n";
    s.ok("POST", "/v1/pipelines", Some(&acme), Some(p.into()));
    let v = s.wait_for(&acme, "flood", "stopped over its quota", |v| {
        v["status"]["state"] == "failed"
    });
    let error = v["status"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("over quota `max_file_bytes`") && error.contains("DELETE /v1/files/NAME"),
        "{v}"
    );
    // Deleting frees it.
    let rm = cli(&acme, &["rm", "flood.jsonl"]);
    assert!(rm.status.success(), "{rm:?}");
    let (code, _) = s.call("GET", "/v1/files/flood.jsonl", Some(&acme), None);
    assert_eq!(code, 404);
    let listed: Value = s.ok("GET", "/v1/files", Some(&acme), None);
    assert!(listed["bytes"].as_u64() < Some(200_000), "{listed}");
}
