//! The `mongodb` sink over TLS with SCRAM-SHA-256 and `authSource`, against
//! FerretDB 1.24.2 (`scripts/services/ferretdb.sh`).
//!
//! FerretDB is an independent implementation of the MongoDB wire protocol
//! (Go, over SQLite here), NOT MongoDB: what these tests show is that the
//! driver's TLS (rustls), certificate checks, SCRAM exchange and
//! `authSource` work against a second server implementation with its own TLS
//! stack (Go's crypto/tls) and user store, and how refusals read. FerretDB
//! has no change streams, so the `mongodb` source runs a snapshot only
//! (`snapshot: initial_only`). Its certificate names `localhost` only, and
//! user `sluice` exists in database `sluice_app` only.

use std::path::{Path, PathBuf};
use std::process::Output;

use mongodb::bson::Document;
use mongodb::sync::Client;

use crate::server_cert::other_ca;
use crate::support::*;

const USER: &str = "sluice";
const PASSWORD: &str = "sluice-ferret-secret";
const DATABASE: &str = "sluice_app";

/// The URL `ferretdb.sh start` printed: TLS, the CA file, user and password.
fn full_url() -> String {
    service("SLUICE_FERRETDB_URL", "ferretdb")
}

/// The value of `name=` in the URL's query.
fn param(name: &str) -> String {
    let url = full_url();
    url.split(['?', '&'])
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {url}"))
        .to_string()
}

fn tls_port() -> String {
    let url = full_url();
    let after = url
        .split("@localhost:")
        .nth(1)
        .expect("@localhost: in the URL");
    after.split('/').next().expect("port").to_string()
}

fn ca() -> PathBuf {
    PathBuf::from(param("tlsCAFile"))
}

/// A URI without password or TLS parameters: the `tls:` block and
/// `password_file` add those.
fn uri(host: &str, auth_source: &str) -> String {
    format!(
        "mongodb://{USER}@{host}:{}/?authSource={auth_source}&authMechanism=SCRAM-SHA-256&directConnection=true",
        tls_port()
    )
}

/// A pipeline in a fresh directory under `dir`: five datagen people into
/// `collection` through the `mongodb` sink.
fn pipeline(dir: &Path, name: &str, uri: &str, collection: &str, access: &str) -> PathBuf {
    let sub = dir.join(name);
    std::fs::create_dir(&sub).expect("mkdir");
    std::fs::write(sub.join("password"), format!("{PASSWORD}\n")).expect("write");
    write_pipeline(
        &sub,
        &format!(
            "name: {name}\nsources:\n  gen: {{type: datagen, kind: people, count: 5}}\nsinks:\n  db:\n    type: mongodb\n    inputs: [gen]\n    uri: {}\n    database: {DATABASE}\n    collection: {collection}\n    max_retries: 0\n    connect_timeout_ms: 3000\n{access}",
            serde_json::to_string(uri).expect("json")
        ),
    )
}

fn tls_block(ca: &Path) -> String {
    format!(
        "    tls:\n      mode: verify-full\n      ca_file: {}\n",
        q(ca)
    )
}

fn run(p: &Path) -> (Output, String) {
    let out = sluice()
        .arg("run")
        .arg(p)
        .arg("--no-progress")
        .env("RUST_LOG", "debug")
        .output()
        .expect("sluice runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{n}", std::process::id())
}

#[test]
fn mongodb_sink_and_source_snapshot_over_verify_full_with_scram_and_auth_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let collection = unique("people");
    let access = format!("{}    password_file: password\n", tls_block(&ca()));
    let p = pipeline(
        dir.path(),
        "ok",
        &uri("localhost", DATABASE),
        &collection,
        &access,
    );
    let (out, text) = run(&p);
    assert!(out.status.success(), "{text}");
    // RUST_LOG=debug: whatever the host and the driver log at that level.
    assert!(text.contains("wrote 5"), "{text}");
    assert!(
        !text.contains(PASSWORD),
        "the password is in the output: {text}"
    );

    // Read back with the driver over the URL the service printed (TLS,
    // the CA, SCRAM with authSource).
    let client = Client::with_uri_str(full_url()).expect("client");
    let n = client
        .database(DATABASE)
        .collection::<Document>(&collection)
        .count_documents(Document::new())
        .run()
        .expect("count over TLS");
    assert_eq!(n, 5);

    // The source reads them back over the same TLS and SCRAM settings: a
    // snapshot only (`initial_only`), since FerretDB has no change streams.
    let sub = dir.path().join("source");
    std::fs::create_dir(&sub).expect("mkdir");
    std::fs::write(sub.join("password"), format!("{PASSWORD}\n")).expect("write");
    let out = sub.join("out.jsonl");
    let p = write_pipeline(&sub, &source_pipeline(&collection, &access, &out));
    let (o, text) = run(&p);
    assert!(o.status.success(), "{text}");
    assert!(
        !text.contains(PASSWORD),
        "the password is in the output: {text}"
    );
    assert_eq!(json_lines(&out).len(), 5, "{text}");
}

/// A `mongodb` source snapshotting `collection` into file `out`.
fn source_pipeline(collection: &str, access: &str, out: &Path) -> String {
    format!(
        "name: src\nsources:\n  m:\n    type: mongodb\n    uri: {}\n    database: {DATABASE}\n    collections: {{include: [{collection}]}}\n    snapshot: initial_only\n    connect_timeout_ms: 3000\n{access}sinks:\n  out: {{type: file, path: {}, inputs: [m]}}\n",
        serde_json::to_string(&uri("localhost", DATABASE)).expect("json"),
        q(out)
    )
}

#[test]
fn mongodb_tls_and_scram_refusals_name_the_cause_and_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let other = other_ca(dir.path());
    let with_password = |tls: &str| format!("{tls}    password_file: password\n");
    let cases = [
        (
            "wrong-ca",
            uri("localhost", DATABASE),
            with_password(&tls_block(&other)),
            &["is not signed by a trusted CA", "Fix: set `tls.ca_file`"][..],
        ),
        (
            "wrong-host",
            uri("127.0.0.1", DATABASE),
            with_password(&tls_block(&ca())),
            &["is not valid for the host name", "Fix: connect by a name the certificate lists"][..],
        ),
        (
            "wrong-password",
            format!(
                "mongodb://{USER}:not-the-password-7@localhost:{}/?authSource={DATABASE}&authMechanism=SCRAM-SHA-256&directConnection=true",
                tls_port()
            ),
            tls_block(&ca()),
            &["refused the credentials", "authSource"][..],
        ),
        (
            // The user exists in sluice_app only; admin does not know it.
            "wrong-auth-source",
            uri("localhost", "admin"),
            with_password(&tls_block(&ca())),
            &["refused the credentials", "authSource"][..],
        ),
        (
            // The TLS port, spoken to in plaintext: no answer it can use.
            "plaintext-on-tls",
            uri("localhost", DATABASE),
            "    tls:\n      mode: disable\n    password_file: password\n".to_string(),
            &["as a server that requires TLS does", "mode: verify-full"][..],
        ),
    ];
    // The source's connection: the same refusal, read the same way.
    let sub = dir.path().join("source-wrong-ca");
    std::fs::create_dir(&sub).expect("mkdir");
    std::fs::write(sub.join("password"), format!("{PASSWORD}\n")).expect("write");
    let p = write_pipeline(
        &sub,
        &source_pipeline(
            "any",
            &with_password(&tls_block(&other)),
            &sub.join("out.jsonl"),
        ),
    );
    let (out, text) = run(&p);
    assert!(!out.status.success(), "source, wrong CA: {text}");
    assert!(
        text.contains("is not signed by a trusted CA"),
        "source, wrong CA: {text}"
    );
    for (name, uri, access, words) in cases {
        let p = pipeline(dir.path(), name, &uri, &unique("refused"), &access);
        let (out, text) = run(&p);
        assert!(!out.status.success(), "{name}: expected a refusal: {text}");
        for w in words {
            assert!(text.contains(w), "{name}: no `{w}` in: {text}");
        }
        for secret in [PASSWORD, "not-the-password-7"] {
            assert!(!text.contains(secret), "{name}: a password in: {text}");
        }
    }
}
