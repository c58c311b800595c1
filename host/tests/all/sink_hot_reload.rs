//! `run --watch` swaps a custom (`type: wasm`) sink's connector whose file
//! changes at a checkpoint boundary, with no event lost or repeated, and
//! refuses broken builds while the old one keeps running.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;

/// One POST the endpoint received: the sink build's tag, the position its
/// instance was opened at, and the ids of the events in the body.
#[derive(Debug, Clone)]
struct Post {
    build: String,
    opened_at: String,
    ids: Vec<u64>,
}

/// A tiny HTTP/1.1 endpoint on 127.0.0.1:0 that answers 200 to every POST
/// and records it, in the order received.
struct Endpoint {
    addr: SocketAddr,
    posts: Arc<Mutex<Vec<Post>>>,
}

impl Endpoint {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let posts: Arc<Mutex<Vec<Post>>> = Arc::default();
        let seen = posts.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &seen);
                });
            }
        });
        Self { addr, posts }
    }

    fn posts(&self) -> Vec<Post> {
        self.posts.lock().expect("lock").clone()
    }

    /// Events received from the build tagged `build`.
    fn events_from(&self, build: &str) -> usize {
        self.posts()
            .iter()
            .filter(|p| p.build == build)
            .map(|p| p.ids.len())
            .sum()
    }
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<Post>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                headers.insert(n.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let length = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let values: Vec<serde_json::Value> =
            serde_json::from_slice(&body).expect("the sink posts a JSON array");
        let ids = values
            .iter()
            .map(|v| {
                v["id"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .expect("numeric id")
            })
            .collect();
        let header = |n: &str| headers.get(n).cloned().unwrap_or_default();
        seen.lock().expect("lock").push(Post {
            build: header("x-build"),
            opened_at: header("x-opened-at"),
            ids,
        });
        writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")?;
        writer.flush()?;
    }
}

/// The run's log lines so far, read from its stderr as they come.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn follow(&self, stderr: impl Read + Send + 'static) {
        let lines = self.0.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().expect("lock").push(line);
            }
        });
    }

    fn matching(&self, needle: &str) -> Vec<String> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }

    fn text(&self) -> String {
        self.0.lock().expect("lock").join("\n")
    }
}

/// Waits until `fact` holds (checked every 10 ms), failing after 60 s with
/// `what` and the run's log.
fn wait_for(what: &str, log: &Log, fact: impl Fn() -> bool) {
    let started = Instant::now();
    while !fact() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "gave up after 60 s waiting for {what}; log:\n{}",
            log.text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Replaces `target` atomically, as a build tool would.
fn replace(target: &Path, contents: &[u8]) {
    let tmp = target.with_extension("wasm.new");
    std::fs::write(&tmp, contents).expect("write new build");
    std::fs::rename(&tmp, target).expect("swap file");
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read build")
}

#[test]
fn watch_swaps_a_changed_sink_connector_at_a_checkpoint_without_loss_and_refuses_broken_builds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = Endpoint::start();
    let wasm = dir.path().join("sink.wasm");
    std::fs::copy(guest("conn-sink-tagged-a"), &wasm).expect("copy build a");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "name: hot-sink\ncheckpoint_interval_ms: 100\nbatch_size: 50\nsources:\n  gen: {{type: datagen, kind: customers, rate: 2000}}\nsinks:\n  out:\n    type: wasm\n    plugin: {}\n    params: {{url: \"http://{}/in\"}}\n    grants: {{http: [\"{}\"]}}\n    inputs: [gen]\n",
            q(&wasm),
            endpoint.addr,
            endpoint.addr
        ),
    );
    let mut child = sluice()
        .arg("run")
        .arg("--watch")
        .arg(&pipeline)
        .arg("--no-progress")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let log = Log::default();
    log.follow(child.stderr.take().expect("stderr"));
    let still_running = |build: &str, from: usize| {
        wait_for(&format!("more events from build {build}"), &log, || {
            endpoint.events_from(build) >= from + 100
        })
    };
    still_running("a", 100);

    // Broken builds: each is refused with a log line, and build a goes on.
    replace(&wasm, &read(&guest("conn-sink-tagged-trap-open")));
    wait_for("the build that traps in open to be refused", &log, || {
        !log.matching("was refused").is_empty()
    });
    still_running("a", endpoint.events_from("a"));

    replace(&wasm, b"this is not a wasm component");
    wait_for("the file that is no component to be refused", &log, || {
        log.matching("not reloading").len() == 1
    });
    still_running("a", endpoint.events_from("a"));

    replace(&wasm, &read(&guest("misbehave")));
    wait_for("the transform (wrong world) to be refused", &log, || {
        log.matching("not reloading").len() == 2
    });
    let refusals = log.matching("not reloading");
    assert!(
        refusals[1]
            .contains("implements the `transform` world, but a `wasm` sink needs the `sink` world"),
        "the refusal names both worlds and what needs it: {}",
        refusals[1]
    );
    still_running("a", endpoint.events_from("a"));

    // A good build: swapped at the next checkpoint boundary.
    replace(&wasm, &read(&guest("conn-sink-tagged-b")));
    wait_for("the swap", &log, || !log.matching("hot-swapped").is_empty());
    still_running("b", 0);

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("wait");
    assert!(
        status.success(),
        "graceful stop exits 0; log:\n{}",
        log.text()
    );

    let posts = endpoint.posts();
    assert!(
        posts.iter().all(|p| p.build == "a" || p.build == "b"),
        "only builds a and b ever wrote"
    );
    // Every event arrived exactly once: datagen numbers them from 0.
    let mut ids: Vec<u64> = posts.iter().flat_map(|p| p.ids.clone()).collect();
    let total = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), total, "no event arrived twice");
    assert_eq!(
        ids.last().map(|m| m + 1),
        Some(total as u64),
        "no event is missing: ids 0..{total}"
    );
    // Build a wrote everything before the swap, build b everything after,
    // in order.
    let first_b = posts
        .iter()
        .position(|p| p.build == "b")
        .expect("build b wrote");
    assert!(
        posts[first_b..].iter().all(|p| p.build == "b"),
        "after the swap only build b writes"
    );
    let before: Vec<u64> = posts[..first_b]
        .iter()
        .flat_map(|p| p.ids.clone())
        .collect();
    let after_min = posts[first_b..]
        .iter()
        .flat_map(|p| p.ids.iter().copied())
        .min()
        .expect("b wrote events");
    assert!(
        before.iter().all(|&id| id < after_min),
        "build a wrote the events before the swap"
    );
    // The new instance was opened at the old one's flushed position: the
    // number of events build a wrote.
    let a_count = before.len();
    assert!(
        posts[first_b..]
            .iter()
            .all(|p| p.opened_at == a_count.to_string()),
        "build b opened at position {a_count}: {:?}",
        posts[first_b].opened_at
    );
    let swap = &log.matching("hot-swapped")[0];
    assert!(
        swap.contains(&format!("position \\\"{a_count}\\\""))
            || swap.contains(&format!("position \"{a_count}\"")),
        "the swap names the position: {swap}"
    );
}
