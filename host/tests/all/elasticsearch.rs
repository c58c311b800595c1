//! The `elasticsearch` sink against a local server speaking the OpenSearch
//! REST API: osmem-server (PyPI), an in-memory *emulation* of the API, started
//! by `scripts/services/search.sh` (the test script does it and exports
//! `SLUICE_ES_URL`). The HTTP on the wire is real; the server is not
//! Elasticsearch itself. Every test uses its own random index.

use std::time::Duration;

use crate::support::*;

pub(crate) fn es_url() -> String {
    service("SLUICE_ES_URL", "search")
}

pub(crate) fn http(method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let url = format!("{}{path}", es_url());
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(&url)
        .header("Content-Type", "application/json")
        .body(body.unwrap_or("").as_bytes().to_vec())
        .expect("request");
    let mut resp = agent
        .run(req)
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

pub(crate) fn count(index: &str) -> u64 {
    let (status, body) = http("GET", &format!("/{index}/_count"), None);
    assert_eq!(status, 200, "{body}");
    body["count"].as_u64().expect("count")
}

pub(crate) fn index_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos}", std::process::id())
}

#[test]
fn indexes_every_event_and_a_replay_overwrites_instead_of_duplicating() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = index_name("orders");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "sources:\n  orders: {{type: file, path: {}}}\nsinks:\n  es:\n    type: elasticsearch\n    inputs: [orders]\n    url: {}\n    index: {index}\n    id: field\n    id_field: order_id\n",
            q(&fixture("seed-logistics/orders.jsonl")),
            es_url()
        ),
    );
    run_ok(sluice().arg("run").arg(&p).arg("--no-progress"));
    assert_eq!(count(&index), 5);
    let (_, doc) = http("GET", &format!("/{index}/_doc/13"), None);
    assert_eq!(doc["_source"]["currency"], "usd", "{doc}");
    // A replay from scratch (no checkpoint) writes the same ids again.
    std::fs::remove_dir_all(dir.path().join(".sluice")).expect("forget checkpoint");
    run_ok(sluice().arg("run").arg(&p).arg("--no-progress"));
    assert_eq!(count(&index), 5, "a replay must overwrite, not duplicate");
}

#[test]
fn ids_from_source_positions_are_deterministic_across_replays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = index_name("pos");
    let input = dir.path().join("in.jsonl");
    numbered_events(&input, 300);
    let p = write_pipeline(
        dir.path(),
        &format!(
            "batch_size: 64\nsources:\n  in: {{type: file, path: {}}}\nsinks:\n  es: {{type: elasticsearch, inputs: [in], url: {}, index: {index}, max_events: 50}}\n",
            q(&input),
            es_url()
        ),
    );
    run_ok(sluice().arg("run").arg(&p).arg("--no-progress"));
    std::fs::remove_dir_all(dir.path().join(".sluice")).expect("forget checkpoint");
    run_ok(sluice().arg("run").arg(&p).arg("--no-progress"));
    assert_eq!(count(&index), 300);
    let (status, doc) = http("GET", &format!("/{index}/_doc/in-1-0"), None);
    assert_eq!(status, 200, "line 1 has id in-1-0: {doc}");
    assert_eq!(doc["_source"]["n"], 0);
}

#[test]
fn one_bad_document_is_dead_lettered_with_the_reason_and_the_rest_indexed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = index_name("typed");
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"id\":\"1\",\"price\":10}\n{\"id\":\"2\",\"price\":\"not-a-number\"}\n{\"id\":\"3\",\"price\":30}\n[\"not\",\"an\",\"object\"]\n",
    )
    .expect("write");
    let dead = dir.path().join("dead.jsonl");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "sources:\n  in: {{type: file, path: {}}}\nsinks:\n  es:\n    type: elasticsearch\n    inputs: [in]\n    url: {}\n    index: {index}\n    id: field\n    id_field: id\n    create_index: {{mappings: {{properties: {{price: {{type: integer}}}}}}}}\ndead_letter: {{type: file, path: {}, format: envelope}}\n",
            q(&input),
            es_url(),
            q(&dead)
        ),
    );
    let out = run_ok(sluice().arg("run").arg(&p).arg("--no-progress"));
    assert_eq!(count(&index), 2, "the good documents are indexed");
    let letters = json_lines(&dead);
    assert_eq!(letters.len(), 2, "{letters:?}");
    let bad = letters
        .iter()
        .find(|d| d["value"]["id"] == "2")
        .expect("the bad document is dead-lettered");
    assert_eq!(bad["headers"]["sluice.error.kind"], "sink");
    assert_eq!(bad["headers"]["sluice.error.stage"], "es");
    let reason = bad["headers"]["sluice.error.message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("HTTP 400 mapper_parsing_exception") && reason.contains("price"),
        "{reason}"
    );
    let not_object = letters
        .iter()
        .find(|d| d["value"].is_array())
        .expect("the array is dead-lettered");
    assert!(not_object["headers"]["sluice.error.message"]
        .as_str()
        .unwrap_or_default()
        .contains("JSON objects"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sink   `es` in 4, wrote 2, dead-lettered 2"),
        "{stderr}"
    );
}

#[test]
fn tombstones_delete_documents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = index_name("cdc");
    let input = dir.path().join("changes.jsonl");
    std::fs::write(
        &input,
        concat!(
            "{\"id\":\"1\",\"op\":\"c\",\"before\":null,\"after\":{\"id\":\"1\",\"name\":\"fred\"}}\n",
            "{\"id\":\"2\",\"op\":\"c\",\"before\":null,\"after\":{\"id\":\"2\",\"name\":\"sue\"}}\n",
            "{\"id\":\"1\",\"op\":\"d\",\"before\":{\"id\":\"1\",\"name\":\"fred\"},\"after\":null}\n",
        ),
    )
    .expect("write");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "sources:\n  changes: {{type: file, path: {}, key_field: id}}\nstages:\n  rows: {{plugin: {}, inputs: [changes]}}\nsinks:\n  es: {{type: elasticsearch, inputs: [rows], url: {}, index: {index}, id: key}}\n",
            q(&input),
            q(&plugin("unwrap")),
            es_url()
        ),
    );
    run_ok(sluice().arg("run").arg(&p).arg("--no-progress"));
    assert_eq!(count(&index), 1, "the delete removed document 1");
    let (status, _) = http("GET", &format!("/{index}/_doc/1"), None);
    assert_eq!(status, 404);
    let (_, doc) = http("GET", &format!("/{index}/_doc/2"), None);
    assert_eq!(doc["_source"]["name"], "sue");
}

#[test]
fn index_names_come_from_a_date_template_on_event_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = index_name("logs");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "sources:\n  gen: {{type: datagen, kind: shipments, count: 20}}\nsinks:\n  es: {{type: elasticsearch, inputs: [gen], url: {}, index: '{prefix}-%Y.%m.%d'}}\n",
            es_url()
        ),
    );
    run_ok(sluice().arg("run").arg(&p).arg("--no-progress"));
    let today = std::process::Command::new("date")
        .args(["-u", "+%Y.%m.%d"])
        .output()
        .expect("date");
    let today = String::from_utf8_lossy(&today.stdout).trim().to_string();
    // Generated events carry the wall-clock time; a run across midnight UTC
    // could split them over two days.
    let (_, all) = http("GET", &format!("/{prefix}-*/_count"), None);
    assert_eq!(all["count"], 20, "{all}");
    assert!(
        count(&format!("{prefix}-{today}")) > 0,
        "today's index {prefix}-{today} holds the events"
    );
}

#[test]
fn throttled_items_are_retried_with_backoff_until_the_server_accepts_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = index_name("throttle");
    let (status, body) = http("PUT", &format!("/{index}"), Some("{}"));
    assert_eq!(status, 200, "{body}");
    // The real flood-stage block: writes answer 429 until it is lifted.
    let block = |on: bool| {
        let v = if on { "true" } else { "null" };
        let (status, body) = http(
            "PUT",
            &format!("/{index}/_settings"),
            Some(&format!("{{\"index.blocks.read_only_allow_delete\":{v}}}")),
        );
        assert_eq!(status, 200, "{body}");
    };
    block(true);
    let p = write_pipeline(
        dir.path(),
        &format!(
            "sources:\n  gen: {{type: datagen, kind: orders, count: 40}}\nsinks:\n  es: {{type: elasticsearch, inputs: [gen], url: {}, index: {index}, initial_backoff_ms: 50, max_backoff_ms: 400}}\n",
            es_url()
        ),
    );
    let mut child = sluice()
        .arg("run")
        .arg(&p)
        .arg("--no-progress")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = Stderr::drain(&mut child);
    // The fact that the sink has sent its bulk request and been refused: only
    // then does an empty index show that nothing got through.
    let retry = stderr.wait_for_line("throttling", Duration::from_secs(60));
    assert!(
        retry.contains("retrying them in"),
        "retries are reported with their wait: {retry}"
    );
    assert_eq!(
        count(&index),
        0,
        "nothing is written while the server throttles"
    );
    block(false);
    let status = child.wait().expect("wait");
    let stderr = stderr.finish();
    assert!(
        status.success(),
        "a 429 storm slows the pipeline, it does not kill it: {stderr}"
    );
    assert_eq!(count(&index), 40);
}

#[test]
fn an_unreachable_server_fails_the_start_clearly_after_bounded_retries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write_pipeline(
        dir.path(),
        "sources:\n  gen: {type: datagen, kind: orders, count: 1}\nsinks:\n  es: {type: elasticsearch, inputs: [gen], url: 'http://127.0.0.1:9', index: x}\n",
    );
    let err = run_failing(sluice().arg("run").arg(&p).arg("--no-progress"));
    assert!(
        err.contains("cannot reach the search server at http://127.0.0.1:9 after 5 attempts"),
        "{err}"
    );
}

#[test]
fn validate_names_the_missing_id_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write_pipeline(
        dir.path(),
        "sources:\n  gen: {type: datagen, kind: orders, count: 1}\nsinks:\n  es:\n    type: elasticsearch\n    inputs: [gen]\n    url: http://127.0.0.1:9200\n    index: x\n    id: field\n",
    );
    let err = run_failing(sluice().arg("validate").arg(&p));
    assert!(
        err.contains("p.yaml:9:") && err.contains("sinks.es.id_field: required when `id: field`"),
        "{err}"
    );
}

#[test]
fn a_dead_letter_destination_that_refuses_an_event_stops_the_pipeline_instead_of_losing_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"ok\":1}\n{broken json\n").expect("write");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "sources:\n  in: {{type: file, path: {}}}\nsinks:\n  out: {{type: file, path: out.jsonl, inputs: [in]}}\ndead_letter: {{type: elasticsearch, url: {}, index: {}}}\n",
            q(&input),
            es_url(),
            index_name("dlq")
        ),
    );
    let out = sluice()
        .arg("run")
        .arg(&p)
        .arg("--no-progress")
        .output()
        .expect("runs");
    assert!(
        !out.status.success(),
        "the malformed line cannot be indexed, so the run must fail"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the dead-letter destination refused 1 event(s)")
            && err.contains("not valid JSON"),
        "{err}"
    );
}
