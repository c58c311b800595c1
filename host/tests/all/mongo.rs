//! The `mongodb` source and sink against a MongoDB-wire server: nx-27017
//! (PyPI), an *emulation* of MongoDB over SQLite with emulated change
//! streams, started by `scripts/services/mongo.sh` (the test script does it
//! and exports `SLUICE_MONGO_URL`). No real `mongod` can be installed on these
//! machines. The client is real: the official `mongodb` crate, here and in
//! `sluice`. Every test uses its own database (the seed test uses the seeds'
//! `logistics`, which only it touches).
//!
//! Where the emulation differs from MongoDB's documented change events, the
//! tests say so and assert what the production path makes of its output:
//! - a replace is reported as `update` (MongoDB says `replace`; both become
//!   Debezium `op: u` with the new document, so the output is the same);
//! - no `updateDescription` on updates (with `updateLookup` the production
//!   path's `after` is what the tests check; the documented shape is covered
//!   by unit tests in `sources/mongodb/event.rs`);
//! - `documentKey._id` comes back as a string (`"3"` for `3`); keys are the
//!   `_id` as text, so both give the key `3`;
//! - `clusterTime` is a date, not a BSON Timestamp (`source.ord` is absent);
//! - deletes carry `fullDocument` (ignored: MongoDB never sends it, `after`
//!   stays null);
//! - change-stream `fullDocument`s encode ObjectIds, dates and binaries in an
//!   internal form, and Decimal128 cannot be stored at all, so the BSON→JSON
//!   mapping is checked on the snapshot path (plain `find`), where the
//!   emulation returns real BSON; decimals are covered by unit tests.
//! - `sort: {_id: 1}` orders numbers as text, so resuming an interrupted
//!   snapshot after the last `_id` (correct on MongoDB, where sort and `$gt`
//!   agree) is not exercised here: the SIGKILL test kills during streaming.

use std::path::Path;
use std::process::Child;

use std::time::{Duration, Instant};

use mongodb::bson::{doc, Bson, Document};
use mongodb::sync::{Client, Database};
use serde_json::{json, Value};

use crate::support::*;

fn mongo_url() -> String {
    service("SLUICE_MONGO_URL", "mongo")
}

fn client() -> Client {
    Client::with_uri_str(mongo_url()).expect("mongodb client")
}

fn unique_db(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// Documents of a small collection, sorted by `_id` (a plain `find` command:
/// the emulation's non-zero cursor ids are int32, which the driver's typed
/// cursors refuse; small results come in the first batch).
fn find_all(db: &Database, coll: &str) -> Vec<Document> {
    let reply = db
        .run_command(doc! {"find": coll, "filter": {}, "sort": {"_id": 1}, "batchSize": 1000})
        .run()
        .expect("find");
    let cursor = reply.get_document("cursor").expect("cursor");
    cursor
        .get_array("firstBatch")
        .expect("firstBatch")
        .iter()
        .filter_map(|b| b.as_document().cloned())
        .collect()
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The complete lines written so far, as JSON (the file is read while the run
/// appends to it, so a last line still being written is left out).
fn json_lines_so_far(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn line_count(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// A running `sluice run`, killed if a test fails before stopping it.
struct Running(Option<Child>);

impl Running {
    fn sigkill(&mut self) {
        if let Some(mut child) = self.0.take() {
            child.kill().expect("SIGKILL");
            let _ = child.wait();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.sigkill();
    }
}

/// Starts `sluice run`; its output goes to `<pipeline>.log` (a file, not a
/// pipe nobody drains, which could block it).
fn spawn(pipeline: &Path) -> Running {
    let log = std::fs::File::create(pipeline.with_extension("log")).expect("log file");
    let log2 = log.try_clone().expect("log file");
    Running(Some(
        sluice()
            .arg("run")
            .arg(pipeline)
            .arg("--no-progress")
            .stdout(log)
            .stderr(log2)
            .spawn()
            .expect("spawn sluice"),
    ))
}

/// SIGTERM: drain, checkpoint, exit 0.
fn stop(mut running: Running, pipeline: &Path) {
    let Some(mut child) = running.0.take() else {
        return;
    };
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("wait");
    assert!(
        status.success(),
        "graceful stop exits 0: {}",
        std::fs::read_to_string(pipeline.with_extension("log")).unwrap_or_default()
    );
}

/// Key as text whatever the envelope made of it (a number-like key is
/// written as a JSON number).
fn key(e: &Value) -> Option<String> {
    match &e["key"] {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The `after` document of a change event envelope (Debezium sends it as
/// JSON text).
fn after(e: &Value) -> Value {
    match &e["value"]["after"] {
        Value::String(s) => serde_json::from_str(s).expect("after is JSON text"),
        other => other.clone(),
    }
}

fn op(e: &Value) -> String {
    match &e["value"] {
        Value::Null => "tombstone".into(),
        v => v["op"].as_str().unwrap_or("?").into(),
    }
}

fn source_yaml(name: &str, db: &str, extra: &str) -> String {
    format!(
        "  {name}:\n    type: mongodb\n    uri: \"{}\"\n    database: {db}\n    poll_ms: 200\n{extra}",
        mongo_url()
    )
}

#[test]
fn snapshot_then_insert_update_replace_delete_become_change_events() {
    let client = client();
    let dbname = unique_db("cs");
    let db = client.database(&dbname);
    let orders = db.collection::<Document>("orders");
    orders
        .insert_many([
            doc! {"_id": 1, "order_id": "1", "price": 10.5, "tags": ["a", "b"]},
            doc! {"_id": 2, "order_id": "2", "price": 20, "nested": {"x": {"y": 1}}},
        ])
        .run()
        .expect("seed");
    // Another collection, excluded: it must not show up.
    db.collection::<Document>("audit")
        .insert_one(doc! {"_id": 1, "skip": true})
        .run()
        .expect("seed audit");

    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "name: cs\ncheckpoint_interval_ms: 100\nsources:\n{}sinks:\n  out: {{type: file, format: envelope, path: {}, inputs: [m]}}\n",
            source_yaml("m", &dbname, "    name: shop\n    collections: {exclude: [audit]}\n"),
            q(&out)
        ),
    );
    let child = spawn(&p);
    wait_until("the snapshot", Duration::from_secs(30), || {
        line_count(&out) >= 2
    });
    orders
        .insert_one(doc! {"_id": 3, "order_id": "3", "price": 1.5})
        .run()
        .expect("insert");
    orders
        .update_one(doc! {"_id": 3}, doc! {"$set": {"price": 2.5}})
        .run()
        .expect("update");
    orders
        .replace_one(
            doc! {"_id": 3},
            doc! {"order_id": "3", "price": 99, "note": "replaced"},
        )
        .run()
        .expect("replace");
    orders.delete_one(doc! {"_id": 3}).run().expect("delete");
    db.collection::<Document>("audit")
        .insert_one(doc! {"_id": 2, "skip": true})
        .run()
        .expect("audit insert");
    // A marker written after the excluded insert: once it is out, the
    // pipeline has read past that insert, so its absence means something.
    orders
        .insert_one(doc! {"_id": 5, "order_id": "marker"})
        .run()
        .expect("marker");
    wait_until(
        "the changes and the marker",
        Duration::from_secs(30),
        || {
            json_lines_so_far(&out)
                .iter()
                .any(|e| key(e).as_deref() == Some("5"))
        },
    );
    stop(child, &p);

    let events = json_lines(&out);
    let ops: Vec<String> = events.iter().map(op).collect();
    // The emulation reports the replace as an update; MongoDB reports
    // `replace`: both are Debezium `u` with the whole new document.
    assert_eq!(
        ops,
        ["r", "r", "c", "u", "u", "d", "tombstone", "c"],
        "{events:#?}"
    );
    let keys: Vec<Option<String>> = events.iter().map(key).collect();
    let k = |s: &str| Some(s.to_string());
    assert_eq!(
        keys,
        [
            k("1"),
            k("2"),
            k("3"),
            k("3"),
            k("3"),
            k("3"),
            k("3"),
            k("5")
        ]
    );
    assert_eq!(
        after(&events[0]),
        json!({"_id": 1, "order_id": "1", "price": 10.5, "tags": ["a", "b"]})
    );
    assert_eq!(
        after(&events[1]),
        json!({"_id": 2, "order_id": "2", "price": 20, "nested": {"x": {"y": 1}}})
    );
    assert_eq!(
        after(&events[2]),
        json!({"_id": 3, "order_id": "3", "price": 1.5})
    );
    // `updateLookup`: the document as it is after the update.
    assert_eq!(
        after(&events[3]),
        json!({"_id": 3, "order_id": "3", "price": 2.5})
    );
    let replaced = after(&events[4]);
    assert_eq!(replaced["price"], 99);
    assert_eq!(replaced["note"], "replaced");
    assert_eq!(replaced["_id"], 3);
    // A delete has no `after` (the emulation's extra fullDocument is ignored).
    assert_eq!(events[5]["value"]["after"], Value::Null);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e["headers"]["sluice.topic"],
            format!("shop.{dbname}.orders"),
            "event {i}"
        );
        if i == 6 {
            continue;
        }
        let source = &e["value"]["source"];
        assert_eq!(source["connector"], "mongodb");
        assert_eq!(source["name"], "shop");
        assert_eq!(source["db"], dbname.as_str());
        assert_eq!(source["collection"], "orders");
        assert_eq!(
            source["snapshot"],
            if i == 0 {
                "true"
            } else if i == 1 {
                "last"
            } else {
                "false"
            }
        );
        assert!(source["ts_ms"]
            .as_i64()
            .is_some_and(|t| t > 1_600_000_000_000));
        assert!(e["value"]["ts_ms"].as_i64().is_some());
    }
    // A restart resumes after the checkpointed token: nothing new, nothing again.
    let before = line_count(&out);
    let child = spawn(&p);
    // The rerun has restored the checkpoint (and with it the resume token):
    // what is inserted from here on comes after that token.
    wait_until("the rerun to restore", Duration::from_secs(30), || {
        std::fs::read_to_string(p.with_extension("log"))
            .unwrap_or_default()
            .contains("resuming from checkpoint")
    });
    orders
        .insert_one(doc! {"_id": 4, "order_id": "4"})
        .run()
        .expect("insert after restart");
    wait_until("the event after restart", Duration::from_secs(30), || {
        line_count(&out) > before
    });
    // Change events come in order: a replay of checkpointed events would have
    // come before the new one, so no wait for stragglers is needed.
    stop(child, &p);
    let events = json_lines(&out);
    assert_eq!(events.len(), before + 1, "{:#?}", &events[before..]);
    assert_eq!(op(&events[before]), "c");
    assert_eq!(key(&events[before]).as_deref(), Some("4"));
}

#[test]
fn bson_types_map_to_relaxed_extended_json() {
    let client = client();
    let dbname = unique_db("types");
    let db = client.database(&dbname);
    let oid = mongodb::bson::oid::ObjectId::parse_str("65a1b2c3d4e5f60718293a4b").expect("oid");
    db.collection::<Document>("things")
        .insert_one(doc! {
            "_id": oid,
            "at": mongodb::bson::DateTime::from_millis(1_585_912_800_000),
            "bin": mongodb::bson::Binary { subtype: mongodb::bson::spec::BinarySubtype::Generic, bytes: vec![0xab, 0xcd] },
            "big": 1_i64 << 40,
            "f": 0.25,
            "nested": {"list": [1, {"deep": [true, Bson::Null]}]},
        })
        .run()
        .expect("insert");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "sources:\n{}sinks:\n  out: {{type: file, format: envelope, path: {}, inputs: [m]}}\n",
            source_yaml("m", &dbname, "    snapshot: initial_only\n"),
            q(&out)
        ),
    );
    run_ok(sluice().arg("run").arg(&p).arg("--no-progress"));
    let events = json_lines(&out);
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(key(&events[0]).as_deref(), Some("65a1b2c3d4e5f60718293a4b"));
    assert_eq!(
        after(&events[0]),
        json!({
            "_id": {"$oid": "65a1b2c3d4e5f60718293a4b"},
            "at": {"$date": "2020-04-03T11:20:00Z"},
            "bin": {"$binary": {"base64": "q80=", "subType": "00"}},
            "big": 1_i64 << 40,
            "f": 0.25,
            "nested": {"list": [1, {"deep": [true, null]}]},
        })
    );
    assert_eq!(
        events[0]["headers"]["sluice.topic"],
        format!("m.{dbname}.things")
    );
}

#[test]
fn sigkill_mid_stream_then_restart_loses_nothing() {
    let client = client();
    let dbname = unique_db("kill");
    let db = client.database(&dbname);
    let coll = db.collection::<Document>("events");
    const SNAPSHOT: i32 = 40;
    const TOTAL: i32 = 400;
    coll.insert_many((0..SNAPSHOT).map(|i| doc! {"_id": i, "n": i}))
        .run()
        .expect("seed");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "name: kill\ncheckpoint_interval_ms: 50\nbatch_size: 16\nsources:\n{}sinks:\n  out: {{type: file, format: envelope, path: {}, inputs: [m]}}\n",
            source_yaml("m", &dbname, ""),
            q(&out)
        ),
    );
    let checkpoint = dir.path().join(".sluice/kill/checkpoint.json");
    let mut child = spawn(&p);
    wait_until("the snapshot", Duration::from_secs(30), || {
        line_count(&out) >= SNAPSHOT as usize
    });
    // A writer keeps inserting, before, during and after the kill.
    let writer = {
        let coll = coll.clone();
        std::thread::spawn(move || {
            for i in SNAPSHOT..TOTAL {
                coll.insert_one(doc! {"_id": i, "n": i})
                    .run()
                    .expect("insert");
                // Pacing, not synchronization: the writes span the kill.
                std::thread::sleep(Duration::from_millis(8));
            }
        })
    };
    wait_until("streaming checkpoints", Duration::from_secs(30), || {
        line_count(&out) >= SNAPSHOT as usize + 60 && checkpoint.is_file()
    });
    child.sigkill();
    let at_kill = line_count(&out);
    assert!(
        at_kill < TOTAL as usize,
        "killed mid-stream ({at_kill} lines)"
    );
    writer.join().expect("writer");

    let child = spawn(&p);
    wait_until("every document", Duration::from_secs(60), || {
        let seen: std::collections::HashSet<String> =
            json_lines_so_far(&out).iter().filter_map(key).collect();
        seen.len() >= TOTAL as usize
    });
    stop(child, &p);

    let events = json_lines(&out);
    let mut counts = std::collections::HashMap::new();
    for e in &events {
        *counts.entry(key(e).expect("key")).or_insert(0) += 1;
    }
    let lost: Vec<i32> = (0..TOTAL)
        .filter(|i| !counts.contains_key(&i.to_string()))
        .collect();
    assert!(lost.is_empty(), "lost after SIGKILL: {lost:?}");
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    eprintln!(
        "{} events for {TOTAL} documents, {duplicates} duplicates (killed at {at_kill} lines)",
        events.len()
    );
    // The restart resumed from the checkpointed token, not from the start:
    // the snapshot is not taken again and nothing is replayed twice (the
    // file sink cuts back to its checkpointed length, so with the token
    // checkpointed alongside, the output is exact).
    let reads = events.iter().filter(|e| op(e) == "r").count();
    assert_eq!(reads, SNAPSHOT as usize);
    assert_eq!(duplicates, 0, "resume replays nothing already checkpointed");
    let creates: Vec<i64> = events
        .iter()
        .filter(|e| op(e) == "c")
        .filter_map(|e| after(e)["n"].as_i64())
        .collect();
    let mut sorted = creates.clone();
    sorted.sort_unstable();
    assert_eq!(creates, sorted, "change events keep the insert order");
}

#[test]
fn sink_inserts_upserts_deletes_and_dead_letters_refused_documents() {
    let client = client();
    let dbname = unique_db("sink");
    let db = client.database(&dbname);
    // insert mode: order 17 already exists, so the server refuses it.
    db.collection::<Document>("orders_ins")
        .insert_one(doc! {"_id": "17", "pre": true})
        .run()
        .expect("pre-seed");
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("orders.jsonl");
    let mut text =
        std::fs::read_to_string(fixture("seed-logistics/orders.jsonl")).expect("fixture");
    text.push_str("[\"not\", \"a document\"]\n");
    std::fs::write(&input, text).expect("input");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "name: ins\nsources:\n  f: {{type: file, path: {}, key_field: order_id}}\nsinks:\n  m:\n    type: mongodb\n    inputs: [f]\n    uri: \"{}\"\n    database: {dbname}\n    collection: orders_ins\n    mode: insert\n",
            q(&input),
            mongo_url()
        ),
    );
    run_ok(sluice().arg("run").arg(&p).arg("--no-progress"));
    let docs = find_all(&db, "orders_ins");
    let ids: Vec<&str> = docs.iter().filter_map(|d| d.get_str("_id").ok()).collect();
    assert_eq!(ids, ["13", "15", "17", "22", "29"]);
    let seventeen = docs
        .iter()
        .find(|d| d.get_str("_id") == Ok("17"))
        .expect("17");
    assert_eq!(
        seventeen.get_bool("pre"),
        Ok(true),
        "insert mode never overwrites"
    );
    let thirteen = docs
        .iter()
        .find(|d| d.get_str("_id") == Ok("13"))
        .expect("13");
    assert_eq!(thirteen.get_f64("price"), Ok(50.5));
    let dead = json_lines(&dir.path().join(".sluice/ins/dead-letters.jsonl"));
    assert_eq!(dead.len(), 2, "{dead:#?}");
    let dup = dead
        .iter()
        .find(|d| key(d).as_deref() == Some("17"))
        .expect("17 dead-lettered");
    let msg = dup["headers"]["sluice.error.message"]
        .as_str()
        .expect("message");
    // The server's own message (the emulation says "UNIQUE constraint
    // failed", MongoDB "E11000 duplicate key error"), with its code.
    assert!(
        msg.contains("code 11000") && msg.contains("orders_ins"),
        "{msg}"
    );
    assert_eq!(dup["headers"]["sluice.error.kind"], "sink");
    let not_doc = dead
        .iter()
        .find(|d| d["value"].is_array())
        .expect("array dead-lettered");
    assert!(not_doc["headers"]["sluice.error.message"]
        .as_str()
        .is_some_and(|m| m.contains("JSON objects")));

    // upsert + delete: replicate a collection through `unwrap`.
    let src = db.collection::<Document>("src");
    src.insert_many([
        doc! {"_id": 1, "v": "one"},
        doc! {"_id": 2, "v": "two"},
        doc! {"_id": 3, "v": "three"},
    ])
    .run()
    .expect("seed src");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "name: rep\ncheckpoint_interval_ms: 100\nsources:\n{}stages:\n  state: {{plugin: {}, inputs: [m]}}\nsinks:\n  copy:\n    type: mongodb\n    inputs: [state]\n    uri: \"{}\"\n    database: {dbname}\n    collection: copy\n",
            source_yaml("m", &dbname, "    collections: {include: [src]}\n"),
            q(&plugin("unwrap")),
            mongo_url()
        ),
    );
    let child = spawn(&p);
    wait_until("the snapshot copy", Duration::from_secs(30), || {
        find_all(&db, "copy").len() == 3
    });
    src.update_one(doc! {"_id": 1}, doc! {"$set": {"v": "uno"}})
        .run()
        .expect("update");
    src.delete_one(doc! {"_id": 2}).run().expect("delete");
    src.insert_one(doc! {"_id": 4, "v": "four"})
        .run()
        .expect("insert");
    wait_until("the changes in the copy", Duration::from_secs(30), || {
        find_all(&db, "copy") == find_all(&db, "src")
    });
    stop(child, &p);
    let copy = find_all(&db, "copy");
    assert_eq!(
        copy,
        vec![
            doc! {"_id": 1, "v": "uno"},
            doc! {"_id": 3, "v": "three"},
            doc! {"_id": 4, "v": "four"},
        ]
    );
    assert!(
        !dir.path().join(".sluice/rep/dead-letters.jsonl").is_file()
            || line_count(&dir.path().join(".sluice/rep/dead-letters.jsonl")) == 0
    );
}

#[test]
fn seed_orders_and_shipments_are_captured_with_the_seed_stream_names() {
    let client = client();
    let db = client.database("logistics");
    let mut expected = std::collections::HashMap::new();
    for coll in ["orders", "shipments"] {
        let c = db.collection::<Document>(coll);
        c.delete_many(doc! {}).run().expect("clear");
        let rows = json_lines(&fixture(&format!("seed-logistics/{coll}.jsonl")));
        let docs: Vec<Document> = rows
            .iter()
            .map(|r| mongodb::bson::to_document(r).expect("row as BSON"))
            .collect();
        c.insert_many(docs).run().expect("load");
        expected.insert(coll, rows);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("changes.jsonl");
    let rows = dir.path().join("rows.jsonl");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "name: seeds\nsources:\n{}stages:\n  state: {{plugin: {}, inputs: [mongo]}}\nsinks:\n  changes: {{type: file, format: envelope, path: {}, inputs: [mongo]}}\n  rows: {{type: file, format: envelope, path: {}, inputs: [state]}}\n",
            source_yaml(
                "mongo",
                "logistics",
                "    name: my-replica-set\n    collections: {include: [orders, shipments]}\n    snapshot: initial_only\n"
            ),
            q(&plugin("unwrap")),
            q(&out),
            q(&rows)
        ),
    );
    run_ok(sluice().arg("run").arg(&p).arg("--no-progress"));
    let events = json_lines(&out);
    let unwrapped = json_lines(&rows);
    assert_eq!(events.len(), 10, "{events:#?}");
    assert_eq!(unwrapped.len(), 10);
    for coll in ["orders", "shipments"] {
        let stream = format!("my-replica-set.logistics.{coll}");
        let mine: Vec<&Value> = events
            .iter()
            .filter(|e| e["headers"]["sluice.topic"] == stream.as_str())
            .collect();
        let mut got: Vec<Value> = mine
            .iter()
            .map(|e| {
                assert_eq!(op(e), "r");
                assert_eq!(e["value"]["source"]["collection"], coll);
                assert_eq!(e["value"]["source"]["db"], "logistics");
                assert_eq!(e["value"]["source"]["name"], "my-replica-set");
                let mut doc = after(e);
                // The key is the generated ObjectId `_id`, as hex.
                let oid = doc["_id"]["$oid"]
                    .as_str()
                    .expect("ObjectId _id")
                    .to_string();
                assert_eq!(key(e), Some(oid));
                doc.as_object_mut().expect("object").remove("_id");
                doc
            })
            .collect();
        let mut want = expected[coll].clone();
        let by_id = |v: &Value| {
            v.get("order_id").map(Value::to_string).unwrap_or_default()
                + &v.get("shipment_id")
                    .map(Value::to_string)
                    .unwrap_or_default()
        };
        got.sort_by_key(by_id);
        want.sort_by_key(by_id);
        // Numbers compare as numbers (the fixture's 50.50 is 50.5).
        assert_eq!(got, want, "{coll}");
    }
    // `unwrap` turns each event into the document state.
    let order_13 = unwrapped
        .iter()
        .find(|e| e["value"]["order_id"] == "13")
        .expect("order 13 unwrapped");
    assert_eq!(order_13["value"]["price"], 50.5);
    assert_eq!(order_13["value"]["currency"], "usd");
    assert!(order_13["value"]["_id"]["$oid"].is_string());
}

#[test]
fn unreachable_server_fails_at_start_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write_pipeline(
        dir.path(),
        "sources:\n  m: {type: mongodb, uri: \"mongodb://127.0.0.1:1/?directConnection=true\", database: shop, connect_timeout_ms: 500}\nsinks:\n  out: {type: stdout, inputs: [m]}\n",
    );
    let started = Instant::now();
    let err = run_failing(sluice().arg("run").arg(&p).arg("--no-progress"));
    assert!(started.elapsed() < Duration::from_secs(20), "bounded");
    assert!(
        err.contains(
            "cannot reach MongoDB at mongodb://127.0.0.1:1/?directConnection=true within 500 ms"
        ) && err.contains("source `m`"),
        "{err}"
    );
    let p = write_pipeline(
        dir.path(),
        "sources:\n  g: {type: datagen, kind: orders, count: 1}\nsinks:\n  m: {type: mongodb, uri: \"mongodb://app:secret@127.0.0.1:1/\", database: shop, collection: o, connect_timeout_ms: 500, inputs: [g]}\n",
    );
    let err = run_failing(sluice().arg("run").arg(&p).arg("--no-progress"));
    assert!(
        err.contains("cannot reach MongoDB at mongodb://app:***@127.0.0.1:1/"),
        "{err}"
    );
    assert!(
        !err.contains("secret"),
        "the password is never printed: {err}"
    );
}

#[test]
fn validate_points_at_bad_mongodb_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write_pipeline(
        dir.path(),
        "sources:\n  m:\n    type: mongodb\n    uri: \"http://db:27017\"\n    database: shop\n    snapshot: sometimes\nsinks:\n  s:\n    type: mongodb\n    inputs: [m]\n    uri: \"mongodb://db\"\n    database: shop\n    collection: \"system.x\"\n",
    );
    let err = run_failing(sluice().arg("validate").arg(&p));
    assert!(err.contains("sources.m.snapshot"), "{err}");
    assert!(err.contains("initial_only"), "{err}");
    assert!(
        err.contains("p.yaml:13:") && err.contains("sinks.s.collection"),
        "{err}"
    );
    let p = write_pipeline(
        dir.path(),
        "sources:\n  m:\n    type: mongodb\n    uri: \"http://db:27017\"\n    database: shop\nsinks:\n  out: {type: stdout, inputs: [m]}\n",
    );
    let err = run_failing(sluice().arg("validate").arg(&p));
    assert!(
        err.contains("p.yaml:4:")
            && err.contains("sources.m.uri")
            && err.contains("not a MongoDB connection string"),
        "{err}"
    );
}

/// Credentials the server does not accept fail at start. The emulation has
/// no users: the driver's SCRAM handshake fails there as it does against a
/// real server given a wrong password (the driver's authentication error).
#[test]
fn refused_credentials_fail_at_start_naming_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = mongo_url().replacen("mongodb://", "mongodb://app:wrong-password@", 1);
    let p = write_pipeline(
        dir.path(),
        &format!(
            "sources:\n  m: {{type: mongodb, uri: \"{uri}\", database: shop, connect_timeout_ms: 2000}}\nsinks:\n  out: {{type: stdout, inputs: [m]}}\n"
        ),
    );
    let err = run_failing(sluice().arg("run").arg(&p).arg("--no-progress"));
    assert!(
        err.contains("refused the credentials") && err.contains("authSource"),
        "{err}"
    );
    assert!(
        !err.contains("wrong-password"),
        "the password is never printed: {err}"
    );
}

#[test]
fn snapshot_never_streams_only_new_changes_of_the_included_collections() {
    let client = client();
    let dbname = unique_db("never");
    let db = client.database(&dbname);
    for coll in ["orders_eu", "orders_us", "customers"] {
        db.collection::<Document>(coll)
            .insert_one(doc! {"_id": "old", "c": coll})
            .run()
            .expect("seed");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "name: never\ncheckpoint_interval_ms: 100\nsources:\n{}sinks:\n  out: {{type: file, format: envelope, path: {}, inputs: [m]}}\n",
            source_yaml(
                "m",
                &dbname,
                "    snapshot: never\n    tombstones_on_delete: false\n    collections: {include: [\"orders_*\"]}\n"
            ),
            q(&out)
        ),
    );
    let child = spawn(&p);
    // `snapshot: never` streams from the point the source opened at. A
    // committed checkpoint is the fact that it has: sources open before the
    // first barrier, and the checkpoint holds their positions.
    let checkpoint = dir.path().join(".sluice/never/checkpoint.json");
    wait_until("the first checkpoint", Duration::from_secs(30), || {
        checkpoint.is_file()
    });
    for coll in ["orders_eu", "orders_us", "customers"] {
        let c = db.collection::<Document>(coll);
        c.insert_one(doc! {"_id": "new", "c": coll})
            .run()
            .expect("insert");
        c.delete_one(doc! {"_id": "old"}).run().expect("delete");
    }
    // Markers after the `customers` writes, in both included collections
    // (each has its own stream, polled in turn): once both are out, the
    // pipeline has polled past those writes.
    for coll in ["orders_eu", "orders_us"] {
        db.collection::<Document>(coll)
            .insert_one(doc! {"_id": "marker"})
            .run()
            .expect("marker");
    }
    wait_until(
        "the changes and both markers",
        Duration::from_secs(30),
        || {
            json_lines_so_far(&out)
                .iter()
                .filter(|e| key(e).as_deref() == Some("marker"))
                .count()
                == 2
        },
    );
    stop(child, &p);
    let events = json_lines(&out);
    let mut seen: Vec<(String, String, Option<String>)> = events
        .iter()
        .filter(|e| key(e).as_deref() != Some("marker"))
        .map(|e| {
            (
                e["headers"]["sluice.topic"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                op(e),
                key(e),
            )
        })
        .collect();
    seen.sort();
    let s = |c: &str| format!("m.{dbname}.{c}");
    assert_eq!(
        seen,
        [
            (s("orders_eu"), "c".to_string(), Some("new".to_string())),
            (s("orders_eu"), "d".to_string(), Some("old".to_string())),
            (s("orders_us"), "c".to_string(), Some("new".to_string())),
            (s("orders_us"), "d".to_string(), Some("old".to_string())),
        ],
        "no snapshot, no tombstones, nothing from `customers`"
    );
}

/// Writes racing the start (token capture, snapshot, switch to streaming):
/// every document shows up, as a snapshot read or a change event or both.
#[test]
fn writes_during_the_snapshot_are_not_lost() {
    let client = client();
    let dbname = unique_db("race");
    let db = client.database(&dbname);
    let coll = db.collection::<Document>("items");
    const SEEDED: i32 = 2000;
    const TOTAL: i32 = 2300;
    coll.insert_many((0..SEEDED).map(|i| doc! {"_id": i}))
        .run()
        .expect("seed");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "checkpoint_interval_ms: 100\nbatch_size: 50\nsources:\n{}sinks:\n  out: {{type: file, format: envelope, path: {}, inputs: [m]}}\n",
            source_yaml("m", &dbname, ""),
            q(&out)
        ),
    );
    let (first_tx, first_written) = std::sync::mpsc::channel();
    let writer = {
        let coll = coll.clone();
        std::thread::spawn(move || {
            for i in SEEDED..TOTAL {
                coll.insert_one(doc! {"_id": i}).run().expect("insert");
                if i == SEEDED {
                    let _ = first_tx.send(());
                }
                // Pacing, not synchronization: the writes must span the
                // start (token capture, snapshot, switch to streaming).
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    // Start once the writer is writing, so the start races its writes.
    first_written
        .recv_timeout(Duration::from_secs(30))
        .expect("the writer's first insert");
    let child = spawn(&p);
    writer.join().expect("writer");
    wait_until("every document", Duration::from_secs(60), || {
        let seen: std::collections::HashSet<String> =
            json_lines_so_far(&out).iter().filter_map(key).collect();
        seen.len() >= TOTAL as usize
    });
    stop(child, &p);
    let events = json_lines(&out);
    let seen: std::collections::HashSet<String> = events.iter().filter_map(key).collect();
    let lost: Vec<i32> = (0..TOTAL)
        .filter(|i| !seen.contains(&i.to_string()))
        .collect();
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert!(events.iter().any(|e| op(e) == "r"));
    assert!(events.iter().any(|e| op(e) == "c"));
}

/// The change stream's lag: milliseconds behind the time of the change last
/// read while a batch is still coming, 0 once a `getMore` comes back empty.
#[test]
fn the_lag_is_the_time_behind_the_last_change_and_zero_once_drained() {
    use sluice::connector::{LagUnit, Progress, Source};
    use sluice::sources::mongodb::{MongoSource, MongoSourceConfig};
    use std::sync::Arc;

    let client = client();
    let dbname = unique_db("lag");
    let db = client.database(&dbname);
    db.collection::<Document>("orders")
        .insert_one(doc! {"_id": 0})
        .run()
        .expect("seed");
    let config: MongoSourceConfig = serde_json::from_value(json!({
        "uri": mongo_url(), "database": dbname, "snapshot": "never", "poll_ms": 100
    }))
    .expect("config");
    let progress = Arc::new(Progress::default());
    let mut source = MongoSource::new(config, "m", progress.clone());
    source.open(None).expect("open");
    let docs: Vec<Document> = (1..=30).map(|i| doc! {"_id": i}).collect();
    db.collection::<Document>("orders")
        .insert_many(docs)
        .run()
        .expect("insert");
    let mut read = 0;
    let mut lags = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while lags.last() != Some(&Some((0, LagUnit::Millis))) || read < 30 {
        let polled = source.poll(10).expect("poll");
        if let Some(batch) = polled.batch {
            read += batch.len();
        }
        lags.push(progress.lag());
        assert!(
            Instant::now() < deadline,
            "read {read} of 30, lags {lags:?}"
        );
    }
    assert_eq!(read, 30);
    // The first page of 9 left changes waiting: the lag is measured from
    // their `clusterTime`. The emulation stamps it when a change is read,
    // not written (a real server stamps the write), so how far behind cannot
    // be checked here: the source's unit test does the arithmetic.
    let first = lags.iter().flatten().next().copied();
    assert!(
        matches!(first, Some((n, LagUnit::Millis)) if n < 60_000),
        "{lags:?}"
    );
    let _ = db.drop().run();
}
