//! The embedded Schema Registry bounds what a client can make it hold, and
//! with a token configured refuses anyone without it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

struct Reg {
    child: Child,
    url: String,
}

impl Drop for Reg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Reg {
    fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// Peak resident memory (VmHWM) of the registry process, in bytes.
    fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc status");
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM line");
        kb * 1024
    }
}

fn start(data: &Path, args: &[&str]) -> Reg {
    let mut child = sluice()
        .args(["registry", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(args)
        .env_remove("SLUICE_REGISTRY_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn registry");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("registry prints its URL");
    let url = line
        .trim()
        .strip_prefix("SLUICE_SCHEMA_REGISTRY_URL=")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Reg { child, url }
}

fn http(method: &str, url: &str, auth: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("Content-Type", "application/vnd.schemaregistry.v1+json");
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let req = req
        .body(body.map(|b| b.to_string()).unwrap_or_default().into_bytes())
        .expect("request");
    let mut resp = agent.run(req).expect("registry answers");
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Sends `head`, then streams `total` bytes of `fill` from another thread
/// (never holding more than one 64 KiB chunk), and returns the status line.
fn stream_request(addr: &str, head: &str, fill: u8, total: u64) -> String {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream
        .set_write_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let head = head.to_string();
    let sender = std::thread::spawn(move || {
        let chunk = vec![fill; 64 * 1024];
        if writer.write_all(head.as_bytes()).is_err() {
            return 0u64;
        }
        let mut sent = 0u64;
        while sent < total {
            if writer.write_all(&chunk).is_err() {
                break;
            }
            sent += chunk.len() as u64;
        }
        sent
    });
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).expect("a status line");
    let mut rest = Vec::new();
    let _ = reader.take(64 * 1024).read_to_end(&mut rest);
    let sent = sender.join().expect("sender");
    assert!(
        sent < total,
        "the server must stop the upload, not read it all ({sent} of {total} bytes sent)"
    );
    status
}

#[test]
fn a_400_mb_body_gets_413_unread_and_the_registry_stays_small() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = start(&dir.path().join("data"), &[]);
    let total: u64 = 400 << 20;

    let status = stream_request(
        reg.addr(),
        &format!("POST /subjects/big-value/versions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {total}\r\n\r\n"),
        b'x',
        total,
    );
    assert!(status.starts_with("HTTP/1.1 413"), "{status:?}");

    // Chunked bodies (no length up front) are refused rather than read.
    let status = stream_request(
        reg.addr(),
        "POST /subjects/big-value/versions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        b'x',
        total,
    );
    assert!(status.starts_with("HTTP/1.1 411"), "{status:?}");

    // A request line that never ends is cut at the head limit.
    let status = stream_request(reg.addr(), "GET /", b'a', total);
    assert!(status.starts_with("HTTP/1.1 431"), "{status:?}");

    let peak = reg.peak_rss();
    eprintln!("registry peak RSS after the uploads: {} KiB", peak >> 10);
    assert!(
        peak < 64 << 20,
        "peak RSS {} MiB after three 400 MB uploads",
        peak >> 20
    );

    // Still serving, and nothing was registered.
    let (s, subjects) = http("GET", &format!("{}/subjects", reg.url), None, None);
    assert_eq!((s, subjects), (200, json!([])));
    // A body under the limit is fine.
    let (s, r) = http(
        "POST",
        &format!("{}/subjects/small-value/versions", reg.url),
        None,
        Some(
            json!({"schema": r#"{"type":"record","name":"s","fields":[{"name":"id","type":"long"}]}"#}),
        ),
    );
    assert_eq!((s, r["id"].as_u64()), (200, Some(1)), "{r}");
}

#[test]
fn the_body_limit_is_configurable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = start(&dir.path().join("data"), &["--max-body-bytes", "64"]);
    let (s, r) = http(
        "POST",
        &format!("{}/subjects/a-value/versions", reg.url),
        None,
        Some(
            json!({"schema": r#"{"type":"record","name":"s","fields":[{"name":"id","type":"long"}]}"#}),
        ),
    );
    assert_eq!((s, r["error_code"].as_u64()), (413, Some(41301)), "{r}");
}

#[test]
fn with_a_token_an_unauthenticated_delete_gets_401_and_deletes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = "t0ken-for-the-registry-test";
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).expect("write token");
    let reg = start(
        &dir.path().join("data"),
        &[
            "--auth-token-file",
            token_file.to_str().expect("utf-8 path"),
        ],
    );
    let u = &reg.url;
    let bearer = format!("Bearer {token}");
    let schema =
        json!({"schema": r#"{"type":"record","name":"s","fields":[{"name":"id","type":"long"}]}"#});

    let (s, _) = http(
        "POST",
        &format!("{u}/subjects/keep-value/versions"),
        None,
        Some(schema.clone()),
    );
    assert_eq!(s, 401, "registering needs the token");
    let (s, r) = http(
        "POST",
        &format!("{u}/subjects/keep-value/versions"),
        Some(&bearer),
        Some(schema),
    );
    assert_eq!((s, r["id"].as_u64()), (200, Some(1)), "{r}");

    for auth in [None, Some("Bearer wrong"), Some("Basic c2x1aWNlOndyb25n")] {
        let (s, r) = http("DELETE", &format!("{u}/subjects/keep-value"), auth, None);
        assert_eq!(
            (s, r["error_code"].as_u64()),
            (401, Some(40101)),
            "{auth:?}: {r}"
        );
    }
    let (s, _) = http("GET", &format!("{u}/subjects"), None, None);
    assert_eq!(s, 401, "reads need the token too by default");
    let (s, subjects) = http("GET", &format!("{u}/subjects"), Some(&bearer), None);
    assert_eq!(
        (s, subjects),
        (200, json!(["keep-value"])),
        "nothing was deleted"
    );

    // Basic auth with the token as password (what Confluent clients send).
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("sluice:{token}"))
    );
    let (s, r) = http(
        "DELETE",
        &format!("{u}/subjects/keep-value"),
        Some(&basic),
        None,
    );
    assert_eq!((s, r), (200, json!([1])));
    let (s, subjects) = http("GET", &format!("{u}/subjects"), Some(&bearer), None);
    assert_eq!((s, subjects), (200, json!([])));
}

#[test]
fn public_reads_open_gets_but_not_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "another-test-token").expect("write token");
    let reg = start(
        &dir.path().join("data"),
        &[
            "--auth-token-file",
            token_file.to_str().expect("utf-8"),
            "--public-reads",
        ],
    );
    let (s, _) = http("GET", &format!("{}/subjects", reg.url), None, None);
    assert_eq!(s, 200);
    let (s, _) = http(
        "PUT",
        &format!("{}/config", reg.url),
        None,
        Some(json!({"compatibility": "NONE"})),
    );
    assert_eq!(s, 401);
}

#[test]
fn without_a_token_only_loopback_is_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stderr = run_failing(
        sluice()
            .args(["registry", "--listen", "0.0.0.0:0", "--data"])
            .arg(dir.path().join("data"))
            .env_remove("SLUICE_REGISTRY_TOKEN"),
    );
    assert!(stderr.contains("refusing to listen on 0.0.0.0"), "{stderr}");
    assert!(stderr.contains("--auth-token-file"), "{stderr}");
}
