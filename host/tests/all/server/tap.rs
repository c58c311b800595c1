//! The server's live tap (`GET /v1/pipelines/NAME/tap`, Server-Sent Events)
//! and `sluice --server URL tap`: what a stage sends on, filtered, capped,
//! bounded, and only ever the caller's own pipeline's.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{tenant, token, wasm, write_config, Server, ADMIN};
use crate::support::sluice;

/// A datagen of `kind` at `rate` events/s through a passthrough stage `copy`
/// into `NAME.jsonl`.
fn generating(name: &str, kind: &str, rate: u64) -> Option<Vec<u8>> {
    Some(
        format!(
            "name: {name}\ncheckpoint_interval_ms: 200\nsources:\n  gen: {{type: datagen, kind: {kind}, rate: {rate}}}\nstages:\n  copy: {{plugin: pass, inputs: [gen]}}\nsinks:\n  out: {{type: file, path: {name}.jsonl, inputs: [copy]}}\n"
        )
        .into_bytes(),
    )
}

/// An open tap stream.
struct Tap {
    lines: Box<dyn BufRead + Send>,
}

/// (event name, `""` for a tapped event; its data).
type Event = (String, Value);

impl Tap {
    /// Opens `path`; a refusal is (status, JSON body).
    fn open(s: &Server, token: &str, path: &str) -> Result<Tap, (u16, Value)> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .new_agent();
        let resp = agent
            .get(format!("{}{path}", s.url))
            .header("Authorization", format!("Bearer {token}"))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = resp.status().as_u16();
        if status != 200 {
            let text = resp.into_body().read_to_string().expect("error body");
            return Err((status, serde_json::from_str(&text).expect("a JSON error")));
        }
        assert_eq!(
            resp.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        Ok(Tap {
            lines: Box::new(BufReader::new(resp.into_body().into_reader())),
        })
    }

    /// The next event, `None` once the stream ended.
    fn next(&mut self) -> Option<Event> {
        let (mut event, mut data) = (String::new(), String::new());
        loop {
            let mut line = String::new();
            if self.lines.read_line(&mut line).expect("read the stream") == 0 {
                return None;
            }
            let line = line.trim_end_matches('\n');
            if let Some(v) = line.strip_prefix("event: ") {
                event = v.to_string();
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = v.to_string();
            } else if line.is_empty() && !data.is_empty() {
                let v = serde_json::from_str(&data).expect("JSON data");
                return Some((event, v));
            }
        }
    }

    /// Tapped events until `n` of them or the stream's end (which is then
    /// the last, as `("end", data)`).
    fn take(&mut self, n: usize) -> Vec<Event> {
        let mut got: Vec<Event> = Vec::new();
        while got.iter().filter(|(e, _)| e.is_empty()).count() < n {
            match self.next() {
                Some((e, v)) if e.is_empty() || e == "end" => {
                    let end = e == "end";
                    got.push((e, v));
                    if end {
                        break;
                    }
                }
                Some(_) => {}
                None => break,
            }
        }
        got
    }
}

fn tap_path(pipeline: &str, query: &str) -> String {
    format!("/v1/pipelines/{pipeline}/tap?{query}")
}

fn refused(s: &Server, token: &str, path: &str) -> (u16, String) {
    match Tap::open(s, token, path) {
        Ok(_) => panic!("{path}: opened, expected a refusal"),
        Err((status, v)) => (status, v["error"].as_str().unwrap_or_default().to_string()),
    }
}

/// Two tenants, each with a pipeline `gen` whose stage is `copy`, and acme
/// with a second one, `twin`, also with a stage `copy`: acme's `gen` makes
/// people (numeric ids), its `twin` and zeta's `gen` make customers
/// (string ids), so an event tells which pipeline it came from.
#[test]
fn a_tap_shows_only_its_own_pipelines_stage_output_filtered_capped_and_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(
        dir.path(),
        "[tap]\nmax_rate = 5\nmax_per_tenant = 2\nmax_total = 3\nmax_seconds = 4\n",
    );
    let s = Server::start(dir.path());
    let acme = tenant(&s, "acme", "deploy");
    let zeta = tenant(&s, "zeta", "deploy");
    let reader = token(&s, "acme", "read", ADMIN);
    for (t, name, kind) in [
        (&acme, "gen", "people"),
        (&acme, "twin", "customers"),
        (&zeta, "gen", "customers"),
    ] {
        s.ok(
            "POST",
            "/v1/plugins?name=pass",
            Some(t),
            Some(wasm("passthrough")),
        );
        s.ok(
            "POST",
            "/v1/pipelines",
            Some(t),
            generating(name, kind, 200),
        );
    }
    for (t, name) in [(&acme, "gen"), (&acme, "twin"), (&zeta, "gen")] {
        s.wait_for(t, name, "flowing", |v| {
            v["status"]["events_out"].as_u64() > Some(0)
        });
    }

    // Refusals, each naming what is wrong.
    let (code, e) = refused(&s, &acme, &tap_path("gen", "component=nope"));
    assert_eq!(
        (code, e.as_str()),
        (
            400,
            "`nope` is not a source or stage of pipeline `gen`; its sources and stages: gen, copy"
        )
    );
    let (code, e) = refused(&s, &acme, &tap_path("gen", ""));
    assert_eq!(
        (code, e.as_str()),
        (
            400,
            "`component` is required; its sources and stages: gen, copy"
        )
    );
    let (code, e) = refused(
        &s,
        &acme,
        &tap_path("gen", "component=copy&filter=id%20%3E"),
    );
    assert_eq!(
        (code, e.as_str()),
        (400, "filter: expected a value after '>' at column 5")
    );
    let (code, e) = refused(&s, &acme, &tap_path("gen", "component=copy&rate=0"));
    assert_eq!((code, e.as_str()), (400, "`rate` is at least 1"));
    // Another tenant's pipeline is not there, as on every other route.
    let (code, e) = refused(&s, &zeta, &tap_path("twin", "component=copy"));
    assert_eq!((code, e.as_str()), (404, "no pipeline `twin`"));
    assert_eq!(
        s.call("GET", "/v1/pipelines/twin", Some(&zeta), None).0,
        404
    );
    let (code, _) = refused(&s, ADMIN, &tap_path("gen", "component=copy"));
    assert_eq!(code, 403, "the operator's token taps no tenant's pipeline");

    // A read token taps acme's `gen`: people only, never `twin`'s or
    // zeta's customers, though all three stages are called `copy`; even
    // ids only under the filter; the rate cut to the server's 5 a second;
    // the stream ends by itself after `max_seconds`.
    let started = Instant::now();
    let mut even = Tap::open(
        &s,
        &reader,
        &tap_path(
            "gen",
            "component=copy&filter=id%20%25%202%20%3D%200&rate=1000",
        ),
    )
    .expect("tap opens");
    let (kind, open) = even.next().expect("the open event");
    assert_eq!(kind, "open");
    assert_eq!(
        open,
        serde_json::json!({"pipeline": "gen", "component": "copy", "rate": 5, "max_seconds": 4})
    );
    let got = even.take(usize::MAX);
    let elapsed = started.elapsed();
    let (last, end) = got.last().expect("events and an end");
    assert_eq!(last, "end", "{got:?}");
    assert_eq!(end["reason"], "time_limit");
    let tapped: Vec<&Value> = got
        .iter()
        .filter(|(e, _)| e.is_empty())
        .map(|(_, v)| v)
        .collect();
    // Windows of one second from the subscription: at most 5 in each.
    let windows = elapsed.as_secs() + 1;
    assert!(
        tapped.len() >= 10 && tapped.len() as u64 <= 5 * windows,
        "{} events in {elapsed:?}",
        tapped.len()
    );
    for v in &tapped {
        assert_eq!(v["component"], "copy");
        let id = v["value"]["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("not a person: {v}"));
        assert_eq!(id % 2, 0, "{v}");
        assert_eq!(v["key"], id.to_string(), "{v}");
        assert!(v["value"]["job"].is_string(), "{v}");
    }

    // Bounds: two taps for acme, the third refused; zeta's first is the
    // server's third, its second refused for the server's bound.
    let mut a1 = Tap::open(&s, &acme, &tap_path("twin", "component=copy")).expect("tap");
    let mut a2 = Tap::open(&s, &acme, &tap_path("gen", "component=gen")).expect("tap");
    let (code, e) = refused(&s, &acme, &tap_path("gen", "component=copy"));
    assert_eq!(
        (code, e.as_str()),
        (
            429,
            "over `tap.max_per_tenant`: 2 taps of this tenant are open already; close one or try again later"
        )
    );
    let mut z1 = Tap::open(&s, &zeta, &tap_path("gen", "component=copy")).expect("tap");
    let (code, e) = refused(&s, &zeta, &tap_path("gen", "component=gen"));
    assert_eq!(
        (code, e.as_str()),
        (
            429,
            "over `tap.max_total`: 3 taps on this server are open already; close one or try again later"
        )
    );
    // zeta's `gen.copy` sends customers, acme's `twin.copy` too, but its
    // own: the ids of each match its own output file after the stop.
    let zeta_events = z1.take(5);
    let twin_events = a1.take(5);
    for t in [&zeta, &acme] {
        let name = if t == &zeta { "gen" } else { "twin" };
        s.ok("POST", &format!("/v1/pipelines/{name}/stop"), Some(t), None);
    }
    // The stop ends the stream with its reason.
    let rest = a1.take(usize::MAX);
    let end = rest.last().map(|(e, v)| (e.as_str(), v["reason"].clone()));
    assert!(
        matches!(end, Some(("end", ref r)) if r == "stopped" || r == "time_limit"),
        "{rest:?}"
    );
    for (tenant, name, events) in [
        ("zeta", "gen", &zeta_events),
        ("acme", "twin", &twin_events),
    ] {
        let out = std::fs::read_to_string(
            dir.path()
                .join(format!("data/tenants/{tenant}/files/{name}.jsonl")),
        )
        .expect("output");
        let written: HashMap<String, Value> = out
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("a JSON line");
                (v["id"].as_str().expect("a customer's id").to_string(), v)
            })
            .collect();
        let tapped: Vec<&Value> = events
            .iter()
            .filter(|(e, _)| e.is_empty())
            .map(|(_, v)| v)
            .collect();
        assert_eq!(tapped.len(), 5, "{events:?}");
        for v in tapped {
            let id = v["value"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("not a customer: {v}"));
            assert_eq!(v["key"], id, "{v}");
            assert_eq!(Some(&v["value"]), written.get(id), "{tenant}/{name}: {v}");
        }
    }
    // A pipeline that does not run has nothing to tap.
    let (code, e) = refused(&s, &acme, &tap_path("twin", "component=copy"));
    assert_eq!(
        (code, e.as_str()),
        (409, "pipeline `twin` is not running; start it to tap it")
    );

    // acme's other tap ends at its time limit, freeing its slot for the CLI.
    let rest = a2.take(usize::MAX);
    assert_eq!(rest.last().map(|(e, _)| e.as_str()), Some("end"));

    // The CLI: the same JSON lines as a local tap.
    let out = sluice()
        .args(["--server", &s.url, "tap", "gen.copy", "--limit", "3"])
        .args(["--filter", "id % 2 = 1"])
        .env("SLUICE_TOKEN", &reader)
        .output()
        .expect("sluice tap");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for v in &lines {
        assert_eq!(v["component"], "copy");
        assert_eq!(v["value"]["id"].as_u64().map(|id| id % 2), Some(1), "{v}");
    }
    let bad = sluice()
        .args(["--server", &s.url, "tap", "gen.nope"])
        .env("SLUICE_TOKEN", &reader)
        .output()
        .expect("sluice tap");
    assert!(!bad.status.success());
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr).trim(),
        "error: 400: `nope` is not a source or stage of pipeline `gen`; its sources and stages: gen, copy"
    );

    // A client that goes away frees its slot: the server finds out at its
    // next write (events flow here), with no `end` to read.
    // The CLI's tap above went away too: its slot frees at the server's
    // next write, so the first taps here wait for it.
    let open_when_free = |component: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match Tap::open(&s, &acme, &tap_path("gen", component)) {
                Ok(t) => break t,
                Err((429, _)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(e) => panic!("the slot of a client gone was not freed: {e:?}"),
            }
        }
    };
    let mut held = open_when_free("component=copy");
    let gone = open_when_free("component=gen");
    assert_eq!(
        refused(&s, &acme, &tap_path("gen", "component=copy")).0,
        429
    );
    drop(gone);
    let mut again = open_when_free("component=gen");
    assert_eq!(again.take(1).len(), 1);
    assert_eq!(held.take(1).len(), 1);
    s.terminate();
}
