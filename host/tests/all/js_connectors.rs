//! Custom connectors written in JavaScript: the `search-bulk-js` example,
//! built with `sluice plugin build` (componentize-js and esbuild, installed by
//! `scripts/toolchains/js.sh`; a missing toolchain fails the test), runs as a
//! `type: wasm` sink against an Elasticsearch-like `_bulk` endpoint the test
//! starts on 127.0.0.1; `plugin new --kind source|sink --lang js` scaffolds
//! connectors whose own tests pass and that build; `package.json`'s
//! `sluice.world` picks the world.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::support::*;
use crate::wasm_connectors::{paginated_api, query, Reply, Server};

/// `sluice plugin build DIR`; returns the component path (the last stdout line).
fn build(dir: &Path) -> PathBuf {
    let out = run_ok(sluice().args(["plugin", "build"]).arg(dir));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = PathBuf::from(stdout.lines().last().expect("the component's path").trim());
    assert!(path.is_file(), "not a file: {}", path.display());
    path
}

/// The example, built once for every test here.
fn search_bulk_js() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        build(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/connectors/search-bulk-js"))
    })
}

/// The SDK's resolve hook, so `node --test` finds `@sluice/plugin` without npm.
fn register_js() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/js/register.js")
}

/// Ids past 2^53, where a double would round: they must arrive exactly.
const BASE_ID: u64 = 9_007_199_254_740_993;

/// The input line of event `i`: canonical JSON (sorted keys, compact), so
/// what the endpoint receives can be compared byte for byte. Where `bad(i)`,
/// `total` is a string the endpoint's mapping refuses.
fn doc(i: u64, bad: bool) -> String {
    if bad {
        format!("{{\"id\":{},\"total\":\"n/a\"}}", BASE_ID + i)
    } else {
        format!("{{\"id\":{},\"total\":{i}}}", BASE_ID + i)
    }
}

/// A file source of `n` documents into the bulk sink at `url`, granted `grant`.
fn pipeline(dir: &Path, n: u64, bad: impl Fn(u64) -> bool, url: &str, grant: &str) -> PathBuf {
    let text: String = (0..n).map(|i| doc(i, bad(i)) + "\n").collect();
    std::fs::write(dir.join("in.jsonl"), text).expect("write input");
    write_pipeline(
        dir,
        &format!(
            "name: bulk\nbatch_size: 16\ncheckpoint_interval_ms: 50\nsources:\n  in: {{type: file, path: in.jsonl}}\nsinks:\n  search:\n    type: wasm\n    inputs: [in]\n    plugin: {}\n    params: {{url: {url:?}, index: orders, id_field: id}}\n    grants: {{http: [{grant:?}]}}\n    initial_backoff_ms: 10\n    max_backoff_ms: 50\n",
            q(search_bulk_js()),
        ),
    )
}

/// An Elasticsearch-like `_bulk` endpoint: stores each indexed document's
/// exact bytes under its `_id`, refuses (per item, status 400) a document
/// whose `total` is not a number, and answers the first request 503.
fn bulk_endpoint(stored: Arc<Mutex<BTreeMap<String, String>>>) -> Server {
    Server::start(move |req, n| {
        if n == 0 {
            return Reply::Status(503, b"no master".to_vec());
        }
        assert_eq!(req.target, "/_bulk");
        let body = String::from_utf8(req.body.clone()).expect("UTF-8");
        let lines: Vec<&str> = body.lines().collect();
        let mut items = Vec::new();
        let mut errors = false;
        for pair in lines.chunks(2) {
            let action: serde_json::Value = serde_json::from_str(pair[0]).expect("action");
            let id = action["index"]["_id"].as_str().expect("_id").to_string();
            assert_eq!(action["index"]["_index"], "orders");
            let source: serde_json::Value = serde_json::from_str(pair[1]).expect("document");
            if source["total"].is_number() {
                stored
                    .lock()
                    .expect("lock")
                    .insert(id.clone(), pair[1].to_string());
                items.push(serde_json::json!({"index": {"_id": id, "status": 201}}));
            } else {
                errors = true;
                items.push(serde_json::json!({"index": {"_id": id, "status": 400, "error": {
                    "type": "document_parsing_exception",
                    "reason": "[1:40] failed to parse field [total] of type [long]",
                    "caused_by": {"type": "illegal_argument_exception", "reason": "For input string: \"n/a\""}
                }}}));
            }
        }
        let answer = serde_json::json!({"took": 1, "errors": errors, "items": items});
        Reply::Status(200, answer.to_string().into_bytes())
    })
}

#[test]
fn js_bulk_sink_indexes_every_document_exactly_through_a_503_and_dead_letters_refused_items() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = |i: u64| i % 9 == 4;
    let stored: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let search = bulk_endpoint(stored.clone());
    let out = run_ok(
        sluice()
            .arg("run")
            .arg(pipeline(
                dir.path(),
                100,
                bad,
                &search.url(""),
                &search.host_port(),
            ))
            .arg("--no-progress"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HTTP 503: no master"), "{stderr}");
    let expected: BTreeMap<String, String> = (0..100)
        .filter(|i| !bad(*i))
        .map(|i| ((BASE_ID + i).to_string(), doc(i, false)))
        .collect();
    assert_eq!(
        *stored.lock().expect("lock"),
        expected,
        "every good document indexed under its exact 64-bit id, byte for byte"
    );
    let dead = json_lines(&dir.path().join(".sluice/bulk/dead-letters.jsonl"));
    let dead_ids: Vec<u64> = dead
        .iter()
        .map(|d| d["value"]["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(
        dead_ids,
        (0..100)
            .filter(|i| bad(*i))
            .map(|i| BASE_ID + i)
            .collect::<Vec<_>>(),
        "one dead letter per refused item, nothing else"
    );
    for d in &dead {
        assert_eq!(
            d["headers"]["sluice.error.message"],
            "document_parsing_exception: [1:40] failed to parse field [total] of type [long]; caused by: For input string: \"n/a\" (status 400)",
            "{d}"
        );
        assert_eq!(d["headers"]["sluice.error.kind"], "sink", "{d}");
    }
}

#[test]
fn js_bulk_sink_refuses_a_host_outside_the_grant_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let search = Server::start(|_, _| Reply::Status(200, b"{}".to_vec()));
    let stderr = run_failing(
        sluice()
            .arg("run")
            .arg(pipeline(
                dir.path(),
                5,
                |_| false,
                &search.url(""),
                "127.0.0.1:1",
            ))
            .arg("--no-progress"),
    );
    assert!(
        stderr.contains(&format!(
            "denied: {} is not in this connector's grant (grants.http: [127.0.0.1:1])",
            search.host_port()
        )),
        "{stderr}"
    );
    assert!(
        search.requests().is_empty(),
        "nothing may reach an ungranted host"
    );
}

#[test]
fn js_example_unit_tests_pass_with_the_native_harness() {
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/connectors/search-bulk-js");
    let out = run_ok(
        std::process::Command::new("node")
            .arg("--import")
            .arg(register_js())
            .args(["--test", "test/"])
            .current_dir(&example),
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("\n# pass 5\n# fail 0\n"), "{report}");
}

/// `tsc` from PATH, else from the toolchain directory `scripts/toolchains/js.sh` fills.
fn tsc() -> std::process::Command {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join("tsc").is_file()));
    if on_path {
        return std::process::Command::new("tsc");
    }
    let tools = std::env::var("SLUICE_TOOLS").unwrap_or_else(|_| {
        format!(
            "{}/.cache/sluice-tools",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    std::process::Command::new(format!("{tools}/js/node_modules/.bin/tsc"))
}

#[test]
fn js_and_ts_scaffolded_sources_and_sinks_pass_their_tests_and_build_into_connectors() {
    let root = tempfile::tempdir().expect("tempdir");
    for lang in ["js", "ts"] {
        for kind in ["source", "sink"] {
            let name = format!("{lang}-{kind}");
            run_ok(
                sluice()
                    .current_dir(root.path())
                    .args(["plugin", "new", "--kind", kind, "--lang", lang, &name]),
            );
            let project = root.path().join(&name);
            if lang == "ts" {
                // The TypeScript scaffold's tests run on the tsc output in dist/.
                run_ok(tsc().args(["-p", "."]).current_dir(&project));
            }
            // The scaffold's own native tests pass as generated.
            let unit = run_ok(
                std::process::Command::new("node")
                    .arg("--import")
                    .arg(register_js())
                    .args(["--test", "test/"])
                    .current_dir(&project),
            );
            let report = String::from_utf8_lossy(&unit.stdout);
            assert!(
                report.contains("\n# pass 2\n# fail 0\n"),
                "{name}: {report}"
            );
            let wasm = build(&project);
            let out = run_ok(sluice().arg("plugin").arg("inspect").arg(&wasm));
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains(&format!("world:     sluice:plugin:{kind}")),
                "{name}: {text}"
            );
            assert!(text.contains("contract:  0.2.0"), "{name}: {text}");
            assert!(text.contains("grants:    asks for http"), "{name}: {text}");
            if kind == "source" {
                let dir = root.path().join(format!("{name}-run"));
                std::fs::create_dir(&dir).expect("mkdir");
                scaffolded_source_reads_a_paginated_api_and_resumes_from_its_cursor(&dir, &wasm);
            }
        }
    }
}

/// The scaffolded source pages through the API the tests share with http-poll
/// until it is caught up, then ends (`stop_when_caught_up`); a second run
/// resumes from the checkpointed cursor and reads nothing twice.
fn scaffolded_source_reads_a_paginated_api_and_resumes_from_its_cursor(dir: &Path, wasm: &Path) {
    let api = paginated_api(45, std::time::Duration::ZERO);
    let pipeline = write_pipeline(
        dir,
        &format!(
            "name: jssource
batch_size: 20
sources:
  api:
    type: wasm
    plugin: {}
    params: {{url: {:?}, stop_when_caught_up: true}}
    grants: {{http: [{:?}]}}
sinks:
  out: {{type: file, path: out.jsonl, inputs: [api]}}
",
            q(wasm),
            api.url("/items"),
            api.host_port()
        ),
    );
    let ids = || -> Vec<i64> {
        json_lines(&dir.join("out.jsonl"))
            .iter()
            .map(|v| v["id"].as_i64().expect("id"))
            .collect()
    };
    run_ok(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    assert_eq!(
        ids(),
        (0..45).collect::<Vec<_>>(),
        "every item, once, in order"
    );
    let before = api.requests().len();
    run_ok(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    let rerun: Vec<String> = api.requests()[before..]
        .iter()
        .map(|r| r.target.clone())
        .collect();
    assert_eq!(
        rerun,
        ["/items?cursor=45&limit=20"],
        "the rerun starts at the checkpointed cursor"
    );
    assert_eq!(ids(), (0..45).collect::<Vec<_>>(), "nothing read twice");
}

#[test]
fn js_build_refuses_an_unknown_world_naming_the_file_and_the_field() {
    let root = tempfile::tempdir().expect("tempdir");
    let project = root.path().join("writerish");
    std::fs::create_dir_all(project.join("src")).expect("mkdir");
    std::fs::write(
        project.join("package.json"),
        r#"{"name": "writerish", "type": "module", "sluice": {"world": "writer"}}"#,
    )
    .expect("write package.json");
    std::fs::write(project.join("src/index.js"), "export {};\n").expect("write index.js");
    let stderr = run_failing(sluice().args(["plugin", "build"]).arg(&project));
    assert!(
        stderr.contains(&format!(
            "{}: `sluice.world`: expected \"transform\", \"source\" or \"sink\", found \"writer\"",
            project.join("package.json").display()
        )),
        "{stderr}"
    );
}

/// A JS sink whose `write` throws (a bug, not `Retry`): the SDK logs the
/// exception, the instance traps, and the host reopens the sink at its last
/// flush and writes the batches since again: nothing is lost.
#[test]
fn a_js_sink_that_throws_is_logged_and_reopened_at_its_last_flush() {
    let root = tempfile::tempdir().expect("tempdir");
    let project = root.path().join("crashy-js");
    std::fs::create_dir_all(project.join("src")).expect("mkdir");
    std::fs::write(
        project.join("package.json"),
        r#"{"name": "crashy-js", "version": "0.1.0", "type": "module", "sluice": {"world": "sink"}}"#,
    )
    .expect("write package.json");
    std::fs::write(
        project.join("src/index.js"),
        r#"import { http, Retry, Sink } from "@sluice/plugin";

export class Crashy extends Sink {
  constructor(params) {
    super(params);
    this.url = params.required("url");
  }

  write(events) {
    const resp = http.post(this.url, `[${events.map((e) => e.text()).join(",")}]`);
    if (resp.status === 418) throw new TypeError(resp.text());
    if (resp.status !== 200) throw new Retry(`HTTP ${resp.status}`);
  }

  flush() {
    return "";
  }
}
"#,
    )
    .expect("write index.js");
    let wasm = build(&project);

    let dir = tempfile::tempdir().expect("tempdir");
    let text: String = (0..200).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    std::fs::write(dir.path().join("in.jsonl"), text).expect("write input");
    let received: Arc<Mutex<Vec<i64>>> = Arc::default();
    let got = received.clone();
    let crashed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = Server::start(move |req, _| {
        let body: serde_json::Value = serde_json::from_slice(&req.body).expect("a JSON array");
        let batch: Vec<i64> = body
            .as_array()
            .expect("an array")
            .iter()
            .map(|v| v["n"].as_i64().expect("n"))
            .collect();
        // The batch holding 120 crashes the sink, once.
        if batch.contains(&120) && !crashed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Reply::Status(418, b"the server told this sink to crash".to_vec());
        }
        got.lock().expect("lock").extend(batch);
        Reply::Status(200, b"{}".to_vec())
    });
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "name: jscrash\nbatch_size: 25\ncheckpoint_interval_ms: 50\nsources:\n  in: {{type: file, path: in.jsonl}}\nsinks:\n  out:\n    type: wasm\n    inputs: [in]\n    plugin: {}\n    params: {{url: {:?}}}\n    grants: {{http: [{:?}]}}\n    initial_backoff_ms: 10\n",
            q(&wasm),
            server.url("/in"),
            server.host_port()
        ),
    );
    let out = run_ok(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("plugin threw TypeError: the server told this sink to crash (at ")
            && stderr.contains("reopening the connector at its last flush"),
        "{stderr}"
    );
    let mut got = received.lock().expect("lock").clone();
    got.sort_unstable();
    got.dedup();
    assert_eq!(
        got,
        (0..200).collect::<Vec<_>>(),
        "every event delivered at least once"
    );
}

/// A bounded JS source emitting 64-bit ids and timestamps past 2^53 as
/// BigInts, and a malformed input every fifth item: the events arrive with
/// every digit, each malformed input is dead-lettered with the source's
/// reason, and `commit` is told the final position once it is durable.
#[test]
fn a_js_source_keeps_64_bit_values_reports_malformed_inputs_and_is_told_its_commits() {
    let root = tempfile::tempdir().expect("tempdir");
    let project = root.path().join("bigints-js");
    std::fs::create_dir_all(project.join("src")).expect("mkdir");
    std::fs::write(
        project.join("package.json"),
        r#"{"name": "bigints-js", "version": "0.1.0", "type": "module", "sluice": {"world": "source"}}"#,
    )
    .expect("write package.json");
    std::fs::write(
        project.join("src/index.js"),
        r#"import { http, positionText, Source } from "@sluice/plugin";

export class BigInts extends Source {
  constructor(params, position) {
    super(params, position);
    params.only(["commits", "n"]);
    this.commits = params.required("commits");
    this.n = Number(params.required("n"));
    this.next = Number(positionText(position) ?? "0");
  }

  poll(maxEvents, out) {
    while (out.length < maxEvents && this.next < this.n) {
      const i = this.next++;
      if (i % 5 === 3) {
        out.malformed(`{"id":${i}`, `item ${i} is truncated`);
        continue;
      }
      out.emitJson({ id: 9223372036854775807n - BigInt(i), i }, { key: `k${i}`, timestampMs: 9007199254740993n + BigInt(i) });
    }
    out.position = String(this.next);
    out.caughtUp = this.next === this.n;
    out.done = out.caughtUp;
  }

  commit(position) {
    http.post(this.commits, position);
  }
}
"#,
    )
    .expect("write index.js");
    let wasm = build(&project);

    let commits = Server::start(|_, _| Reply::Status(200, b"{}".to_vec()));
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "name: bigints\nbatch_size: 7\ncheckpoint_interval_ms: 50\nsources:\n  nums:\n    type: wasm\n    plugin: {}\n    params: {{commits: {:?}, n: 30}}\n    grants: {{http: [{:?}]}}\nsinks:\n  out: {{type: file, path: out.jsonl, inputs: [nums]}}\n",
            q(&wasm),
            commits.url("/commit"),
            commits.host_port()
        ),
    );
    run_ok(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    let good: Vec<u64> = (0..30).filter(|i| i % 5 != 3).collect();
    let out = std::fs::read_to_string(dir.path().join("out.jsonl")).expect("out.jsonl");
    let values: Vec<String> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON");
            format!("{}|{}", v["id"], v["i"])
        })
        .collect();
    assert_eq!(
        values,
        good.iter()
            .map(|i| format!("{}|{i}", 9_223_372_036_854_775_807 - i))
            .collect::<Vec<_>>(),
        "every id exact to the last digit"
    );
    let dead = json_lines(&dir.path().join(".sluice/bigints/dead-letters.jsonl"));
    let reasons: Vec<(String, String)> = dead
        .iter()
        .map(|d| {
            (
                d["headers"]["sluice.error.kind"]
                    .as_str()
                    .expect("kind")
                    .to_string(),
                d["headers"]["sluice.error.message"]
                    .as_str()
                    .expect("message")
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        (0..30)
            .filter(|i| i % 5 == 3)
            .map(|i| ("malformed".to_string(), format!("item {i} is truncated")))
            .collect::<Vec<_>>()
    );
    let committed: Vec<String> = commits
        .requests()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(
        committed.last().map(String::as_str),
        Some("30"),
        "the last commit is the final position: {committed:?}"
    );
}

/// The example against the search service `scripts/services/search.sh`
/// starts (osmem-server: the OpenSearch REST API, `_bulk` with real mapping
/// errors): documents land under their exact 64-bit ids, and each one the
/// index mapping refuses is dead-lettered with the server's own reason.
#[test]
fn js_bulk_sink_against_the_search_service_dead_letters_what_the_mapping_refuses() {
    use crate::elasticsearch::{count, es_url, http, index_name};
    let index = index_name("jsbulk");
    let (status, body) = http(
        "PUT",
        &format!("/{index}"),
        Some(
            r#"{"mappings":{"properties":{"id":{"type":"unsigned_long"},"total":{"type":"long"}}}}"#,
        ),
    );
    assert_eq!(status, 200, "{body}");
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = |i: u64| i % 10 == 7;
    let url = es_url();
    let grant = url.trim_start_matches("http://").to_string();
    let pipeline = pipeline(dir.path(), 40, bad, &url, &grant);
    // The helper indexes into `orders`; this test's index is its own.
    let text = std::fs::read_to_string(&pipeline).expect("pipeline");
    std::fs::write(
        &pipeline,
        text.replace("index: orders", &format!("index: {index}")),
    )
    .expect("pipeline");
    run_ok(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    http("POST", &format!("/{index}/_refresh"), None);
    assert_eq!(count(&index), 36, "every good document, once");
    let (status, got) = http("GET", &format!("/{index}/_doc/{}", BASE_ID + 39), None);
    assert_eq!(status, 200, "{got}");
    assert_eq!(
        got["_source"].to_string(),
        doc(39, false),
        "the document as sent, its id exact"
    );
    let dead = json_lines(&dir.path().join(".sluice/bulk/dead-letters.jsonl"));
    let messages: Vec<&str> = dead
        .iter()
        .map(|d| {
            d["headers"]["sluice.error.message"]
                .as_str()
                .expect("message")
        })
        .collect();
    let expected: Vec<String> = (0..40)
        .filter(|i| bad(*i))
        .map(|i| {
            format!(
                "mapper_parsing_exception: failed to parse field [total] of type [long] in document with id '{}'. Preview of field's value: 'n/a'; caused by: For input string: \"n/a\" (status 400)",
                BASE_ID + i
            )
        })
        .collect();
    assert_eq!(messages, expected);
}

/// The scaffolded JS source, killed with SIGKILL mid-read, resumes from the
/// cursor of its last checkpoint: nothing lost, nothing read twice.
#[test]
fn a_js_source_resumes_from_its_checkpointed_cursor_after_kill_9() {
    const N: usize = 3000;
    let root = tempfile::tempdir().expect("tempdir");
    run_ok(sluice().current_dir(root.path()).args([
        "plugin",
        "new",
        "--kind",
        "source",
        "--lang",
        "js",
        "killed-js",
    ]));
    let wasm = build(&root.path().join("killed-js"));
    // 150 pages of 20 at 10 ms each: the run lasts seconds, so the kill
    // lands mid-way.
    let api = paginated_api(N, std::time::Duration::from_millis(10));
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "name: jspoll\ncheckpoint_interval_ms: 50\nbatch_size: 20\nsources:\n  api:\n    type: wasm\n    plugin: {}\n    params: {{url: {:?}, stop_when_caught_up: true}}\n    grants: {{http: [{:?}]}}\nsinks:\n  out: {{type: file, path: out.jsonl, inputs: [api]}}\n",
            q(&wasm),
            api.url("/items"),
            api.host_port()
        ),
    );
    let out = dir.path().join("out.jsonl");
    let checkpoint = dir.path().join(".sluice/jspoll/checkpoint.json");
    let mut child = sluice()
        .arg("run")
        .arg(&pipeline)
        .arg("--no-progress")
        .spawn()
        .expect("spawn");
    let started = std::time::Instant::now();
    let written = || std::fs::read_to_string(&out).map_or(0, |t| t.lines().count());
    while !(checkpoint.exists() && written() >= 200) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "no checkpoint after 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    assert!(!status.success(), "the first run must have been killed");
    let partial = lines(&out).len();
    assert!(partial < N, "killed before the end ({partial} lines)");
    let before = api.requests().len();

    run_ok(sluice().arg("run").arg(&pipeline).arg("--no-progress"));
    let rerun = &api.requests()[before..];
    let first = query(&rerun[0].target, "cursor").unwrap_or("");
    assert!(
        !first.is_empty() && first != "0",
        "the rerun started at cursor `{first}`"
    );
    let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
    for v in json_lines(&out) {
        *seen.entry(v["id"].as_i64().expect("id")).or_default() += 1;
    }
    assert_eq!(
        seen.values().filter(|c| **c > 1).count(),
        0,
        "no item twice"
    );
    assert_eq!(
        seen.len(),
        N,
        "every item (killed at {partial} lines, resumed at cursor {first})"
    );
}
