//! The reference logistics pipeline (tests/fixtures/seed-logistics): the
//! joins over the fixture files, and `examples/logistics/` end to end against
//! PostgreSQL (real), the MongoDB-wire emulation and the OpenSearch-API
//! emulation, each giving exactly `expected/shipped_orders.jsonl`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::postgres_cdc::Pg;
use crate::support::*;

/// Expected rows by (order_id, shipment_id); numbers compare as numbers.
pub(crate) fn expected() -> BTreeMap<(String, String), Value> {
    json_lines(&fixture("seed-logistics/expected/shipped_orders.jsonl"))
        .into_iter()
        .map(|v| {
            (
                (
                    v["order_id"].as_str().unwrap_or("").to_string(),
                    v["shipment_id"].as_str().unwrap_or("").to_string(),
                ),
                normalize(&v),
            )
        })
        .collect()
}

/// Numbers as f64 so `50.50` equals `50.5`.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Number(n) => serde_json::json!(n.as_f64()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), normalize(v))).collect())
        }
        other => other.clone(),
    }
}

pub(crate) fn by_pair(rows: &[Value]) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    for v in rows {
        let k = (
            v["order_id"].as_str().unwrap_or("").to_string(),
            v["shipment_id"].as_str().unwrap_or("").to_string(),
        );
        assert!(
            out.insert(k.clone(), normalize(v)).is_none(),
            "pair {k:?} twice"
        );
    }
    out
}

/// The customers of `postgres.sql` as JSON lines.
fn customers_jsonl(path: &Path) {
    let sql = std::fs::read_to_string(fixture("seed-logistics/postgres.sql")).expect("sql");
    let mut out = String::new();
    for line in sql.lines().filter(|l| l.starts_with("INSERT")) {
        let inner = line
            .split("VALUES (")
            .nth(1)
            .and_then(|r| r.strip_suffix(");"))
            .expect("values");
        let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
        out.push_str(&format!(
            "{{\"id\":{},\"name\":{},\"age\":{}}}\n",
            serde_json::json!(parts[0].trim_matches('\'')),
            serde_json::json!(parts[1].trim_matches('\'')),
            parts[2]
        ));
    }
    std::fs::write(path, out).expect("write customers");
}

fn joins(table_input: &str) -> String {
    format!(
        "stages:\n  enriched_orders:\n    plugin: {}\n    inputs: [orders]\n    tables: [customers_by_key]\n    params:\n      table: customers_by_key\n      on: customer_id\n      fields: order_id, price, currency, ts, table.id as customer_id, table.name as customer_name, table.age as customer_age\n  shipped_orders:\n    plugin: {}\n    inputs: [enriched_orders, shipments]\n    event_time: {{field: ts, lateness_ms: 604800000}}\n    params:\n      left: enriched_orders\n      right: shipments\n      key: order_id\n      right_id: shipment_id\n      within_ms: 604800000\n      fields: order_id, right.shipment_id, customer_id, customer_name, customer_age, right.origin, price, currency\ntables:\n  customers_by_key: {{input: {table_input}, key_field: id}}\n",
        q(&plugin("lookup-join")),
        q(&plugin("window-join"))
    )
}

/// The joins over the fixture files, in two arrival orders (shipments
/// first, one event per batch; orders first, big batches): the same result,
/// which is the expected file.
#[test]
fn joins_over_the_fixture_files_give_the_expected_result_in_any_order() {
    for (batch, shipments_first) in [(1, true), (1024, false)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let customers = dir.path().join("customers.jsonl");
        customers_jsonl(&customers);
        let orders = format!(
            "  orders: {{type: file, path: {}}}\n",
            q(&fixture("seed-logistics/orders.jsonl"))
        );
        let shipments = format!(
            "  shipments: {{type: file, path: {}}}\n",
            q(&fixture("seed-logistics/shipments.jsonl"))
        );
        let out = dir.path().join("out.jsonl");
        let p = write_pipeline(
            dir.path(),
            &format!(
                "name: joins\nbatch_size: {batch}\nsources:\n  customers: {{type: file, path: {}}}\n{}{}{}sinks:\n  out: {{type: file, path: {}, format: envelope, inputs: [shipped_orders]}}\n",
                q(&customers),
                if shipments_first { &shipments } else { &orders },
                if shipments_first { &orders } else { &shipments },
                joins("customers"),
                q(&out)
            ),
        );
        run_ok(sluice().arg("run").arg(&p).arg("--no-progress"));
        let lines = json_lines(&out);
        let values: Vec<Value> = lines.iter().map(|l| l["value"].clone()).collect();
        assert_eq!(
            by_pair(&values),
            expected(),
            "batch {batch}, shipments first: {shipments_first}"
        );
        for l in &lines {
            assert_eq!(
                l["key"].as_str(),
                Some(
                    format!(
                        "{}|{}",
                        l["value"]["order_id"].as_str().unwrap_or(""),
                        l["value"]["shipment_id"].as_str().unwrap_or("")
                    )
                    .as_str()
                ),
                "deterministic key"
            );
        }
    }
}

pub(crate) fn es_docs(url: &str, index: &str) -> Vec<Value> {
    let resp = ureq::get(&format!("{url}/{index}/_search?size=100"))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .and_then(|s| serde_json::from_str::<Value>(&s).ok());
    resp.and_then(|v| v["hits"]["hits"].as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .map(|h| h["_source"].clone())
        .collect()
}

/// `examples/logistics/pipeline.yaml` as shipped, against the services.
#[test]
fn logistics_example_end_to_end_gives_the_expected_index() {
    let es = service("SLUICE_ES_URL", "search");
    let mongo = service("SLUICE_MONGO_URL", "mongo");
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() % 1_000_000_000)
        .unwrap_or(0);
    let tag = format!("{}_{n}", std::process::id());

    // PostgreSQL: the fixture's customers table.
    let pg = Pg::fresh("logistics");
    pg.exec(&std::fs::read_to_string(fixture("seed-logistics/postgres.sql")).expect("sql"));

    // MongoDB: orders and shipments, one document per fixture line, with a
    // second client (pymongo from the service's venv) so the load does not
    // go through Sluice.
    let db = format!("logistics_{tag}");
    let python = std::env::var("SLUICE_MONGO_PYTHON").unwrap_or_else(|_| {
        let dir = std::env::var("SLUICE_TOOLS").unwrap_or_else(|_| {
            format!(
                "{}/.cache/sluice-tools",
                std::env::var("HOME").unwrap_or_default()
            )
        });
        format!("{dir}/services/mongo-venv/bin/python")
    });
    let load = Command::new(&python)
        .arg("-c")
        .arg(
            "import json,sys,pymongo\nc=pymongo.MongoClient(sys.argv[1])\nd=c[sys.argv[2]]\nfor coll,path in (('orders',sys.argv[3]),('shipments',sys.argv[4])):\n    d[coll].insert_many([json.loads(l) for l in open(path) if l.strip()])\n",
        )
        .arg(&mongo)
        .arg(&db)
        .arg(fixture("seed-logistics/orders.jsonl"))
        .arg(fixture("seed-logistics/shipments.jsonl"))
        .output()
        .expect("python with pymongo (scripts/services/mongo.sh installs it)");
    assert!(
        load.status.success(),
        "loading MongoDB: {}",
        String::from_utf8_lossy(&load.stderr)
    );

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let index = format!("shipped_orders_{tag}");
    let state = root.join("target/logistics/state/logistics");
    let _ = std::fs::remove_dir_all(&state);
    let log = tempfile::NamedTempFile::new().expect("log");
    let mut child = sluice()
        .arg("run")
        .arg(root.join("examples/logistics/pipeline.yaml"))
        .arg("--no-progress")
        .arg("--plugin-path")
        .arg(target_dir().join("plugins"))
        .env("LOGISTICS_PG_URL", &pg.url)
        .env("LOGISTICS_SLOT", format!("logistics_{tag}"))
        .env("LOGISTICS_MONGO_URL", &mongo)
        .env("LOGISTICS_MONGO_DB", &db)
        .env("LOGISTICS_ES_URL", &es)
        .env("LOGISTICS_INDEX", &index)
        .stdout(Stdio::null())
        .stderr(log.reopen().expect("log"))
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(90);
    let want = expected();
    let docs = loop {
        let _ = ureq::post(&format!("{es}/{index}/_refresh")).send_empty();
        let docs = es_docs(&es, &index);
        if docs.len() >= want.len() {
            break docs;
        }
        if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            panic!(
                "{} of {} documents after 90 s; log:\n{}",
                docs.len(),
                want.len(),
                std::fs::read_to_string(log.path()).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("wait");
    let logged = std::fs::read_to_string(log.path()).unwrap_or_default();
    assert!(exit.success(), "graceful stop: {logged}");
    // Read again after the graceful stop, which drains what was in flight: a
    // wrong extra document would be there now (no settling sleep needed).
    let _ = ureq::post(&format!("{es}/{index}/_refresh")).send_empty();
    let after_stop = es_docs(&es, &index);
    assert_eq!(
        after_stop.len(),
        docs.len(),
        "nothing more after the stop: log:\n{logged}"
    );
    let docs = after_stop;
    assert_eq!(by_pair(&docs), want, "log:\n{logged}");
    assert!(logged.contains("table loaded"), "{logged}");
    pg.drop_slot(&format!("logistics_{tag}"));
}
