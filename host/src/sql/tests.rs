//! Compiler tests: each construct's `--explain` structure, the reference
//! files against the YAML examples, and errors with positions and
//! suggestions.

use std::path::Path;

use serde_json::{json, Value};

use super::compile;

/// YAML text as JSON (strings stay strings, as the loader reads them).
fn to_json(y: &yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml;
    match y {
        Yaml::String(s) => json!(s),
        Yaml::Integer(i) => json!(i),
        Yaml::Real(r) => json!(r.parse::<f64>().unwrap_or(0.0)),
        Yaml::Boolean(b) => json!(b),
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) => s.clone(),
                        other => format!("{other:?}"),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

fn yaml(text: &str) -> Value {
    let docs = yaml_rust2::YamlLoader::load_from_str(text).expect("valid YAML");
    to_json(&docs[0])
}

fn explain(sql: &str) -> Value {
    match compile(sql, "t", None, "t.sql", None) {
        Ok(c) => yaml(&c.yaml),
        Err(e) => panic!("{}", e.render("t.sql")),
    }
}

fn errors(sql: &str) -> Vec<super::SqlError> {
    match compile(sql, "t", None, "t.sql", None) {
        Ok(c) => panic!("expected errors, compiled:\n{}", c.yaml),
        Err(e) => e.0,
    }
}

fn repo(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A JDBC source of `public.events` whose topic is `events`, and a file of
/// statements after it, ending with an S3 sink of `out_topics`.
fn with_io(body: &str, out_topics: &str) -> String {
    format!(
        "CREATE SOURCE CONNECTOR src WITH ('connector.class' = 'io.confluent.connect.jdbc.JdbcSourceConnector',
           'connection.url' = 'jdbc:postgresql://db:5432/app', 'connection.user' = 'u',
           'mode' = 'incrementing', 'incrementing.column.name' = 'id', 'table.whitelist' = 'public.events');
         CREATE STREAM events WITH (kafka_topic = 'events', value_format = 'json', timestamp = 'at');
         {body}
         CREATE SINK CONNECTOR out WITH ('connector.class' = 'io.confluent.connect.s3.S3SinkConnector',
           's3.bucket.name' = 'b', 'topics' = '{out_topics}');"
    )
}

#[test]
fn the_logistics_file_compiles_to_the_yaml_example_in_substance() {
    let sql = explain(&repo("tests/fixtures/seed-logistics/ksql/logistics.sql"));
    let example = yaml(&repo("examples/logistics/pipeline.yaml"));
    // The same stages with the same plugins.
    for (name, plugin) in [
        ("customers", "unwrap"),
        ("orders", "unwrap"),
        ("shipments", "unwrap"),
        ("enriched_orders", "lookup-join"),
        ("shipped_orders", "window-join"),
    ] {
        assert_eq!(sql["stages"][name]["plugin"], json!(plugin), "{name}");
        assert_eq!(example["stages"][name]["plugin"], json!(plugin), "{name}");
    }
    assert_eq!(
        sql["stages"].as_object().map(|m| m.len()),
        example["stages"].as_object().map(|m| m.len())
    );
    // The joins: the same inputs, tables, event time and parameters, but
    // for what the YAML adds beyond the SQL (`right_id`, a document id
    // choice) and `join`, which the SQL states and the YAML leaves default.
    for name in ["enriched_orders", "shipped_orders"] {
        let (s, e) = (&sql["stages"][name], &example["stages"][name]);
        for key in ["inputs", "tables", "event_time"] {
            assert_eq!(s[key], e[key], "{name}.{key}");
        }
        let mut sp = s["params"].clone();
        let mut ep = e["params"].clone();
        for p in [&mut sp, &mut ep] {
            if let Some(m) = p.as_object_mut() {
                m.remove("right_id");
                m.remove("join");
            }
        }
        assert_eq!(sp, ep, "{name}.params");
    }
    assert_eq!(
        sql["stages"]["enriched_orders"]["params"]["join"],
        json!("left")
    );
    assert_eq!(
        sql["stages"]["shipped_orders"]["params"]["join"],
        json!("inner")
    );
    assert_eq!(sql["tables"], example["tables"]);
    // Each unwrap reads a source of the same type capturing the same table.
    for name in ["customers", "orders", "shipments"] {
        let src = |v: &Value| {
            let input = v["stages"][name]["inputs"][0]
                .as_str()
                .unwrap_or("")
                .to_string();
            let s = v["sources"][input.as_str()].clone();
            let what = if s["type"] == json!("mongodb") {
                s["collections"]["include"].clone()
            } else {
                json!(s["tables"][0]
                    .as_str()
                    .map(|t| t.trim_start_matches("public.")))
            };
            (s["type"].clone(), what, s["name"].clone())
        };
        let got = src(&sql);
        assert_eq!(got.0, src(&example).0, "{name}");
        assert_eq!(
            got.1,
            if name == "customers" {
                json!("customers")
            } else {
                json!([name])
            }
        );
        assert_eq!(got.2, src(&example).2, "{name}: the logical server name");
    }
    let sink = |v: &Value| {
        let (_, s) = v["sinks"]
            .as_object()
            .and_then(|m| m.iter().next())
            .map(|(k, v)| (k.clone(), v.clone()))
            .unwrap_or_default();
        (s["type"].clone(), s["inputs"].clone())
    };
    assert_eq!(sink(&sql), sink(&example));
}

#[test]
fn the_youth_file_compiles_to_the_yaml_example_in_substance() {
    let sql = explain(&repo("tests/fixtures/seed-logistics/ksql/youth.sql"));
    let example = yaml(&repo("examples/youth/pipeline.yaml"));
    // WHERE: the same condition, in the stage that also projects the
    // SQL's columns (one stage where the YAML has a filter).
    assert_eq!(
        sql["stages"]["jovens"]["params"]["where"],
        example["stages"]["jovens"]["params"]["where"]
    );
    assert_eq!(sql["stages"]["jovens"]["plugin"], json!("project"));
    assert_eq!(sql["stages"]["jovens_where"], json!(null));
    // CASE WHEN: the same computed category.
    assert_eq!(
        sql["stages"]["idadeclass"]["params"]["set"]["idadecat"],
        example["stages"]["classified"]["params"]["set"]["idadecat"]
    );
    // The window: same kind, size and grouping; the event time is the
    // polled row's `dt_update`, which the JDBC source makes the event
    // timestamp, where the YAML (reading a file) names the field.
    let (s, e) = (&sql["stages"]["idadecont"], &example["stages"]["idadecont"]);
    assert_eq!(s["plugin"], e["plugin"]);
    for key in ["window", "size_ms", "group_by"] {
        assert_eq!(s["params"][key], e["params"][key], "{key}");
    }
    assert_eq!(s["inputs"], json!(["idadeclass"]));
    assert_eq!(
        s["event_time"]["lateness_ms"],
        e["event_time"]["lateness_ms"]
    );
    assert_eq!(s["params"]["aggregates"], json!("count as contagem"));
    assert_eq!(s["params"]["emit"], json!("update"), "EMIT CHANGES");
    let src = &sql["sources"]["customers_poll"];
    assert_eq!(src["type"], json!("postgres-poll"));
    assert_eq!(src["timestamp_column"], json!("dt_update"));
    assert_eq!(src["stream_prefix"], json!("postgres-"));
    for topic in ["jovens", "idadecont"] {
        let sink = &sql["sinks"][format!("lake_writer_{topic}").as_str()];
        assert_eq!(sink["inputs"], json!([topic]));
        assert_eq!(sink["prefix"], json!(format!("topics/{topic}")));
        assert_eq!(
            (
                sink["flush_size"].clone(),
                sink["rotate_interval_ms"].clone(),
                sink["format"].clone()
            ),
            (json!(5), json!(6000), json!("json"))
        );
    }
}

#[test]
fn a_filter_alone_is_one_stage_named_after_the_stream() {
    let p = explain(&with_io(
        "CREATE STREAM big AS SELECT * FROM events WHERE amount > 10 AND kind IN ('a', 'b') EMIT CHANGES;",
        "big",
    ));
    assert_eq!(
        p["stages"]["big"],
        json!({"plugin": "filter", "inputs": ["src"], "params": {"where": "(amount > 10) and (kind in ('a', 'b'))"}})
    );
    assert_eq!(p["stages"].as_object().map(|m| m.len()), Some(1));
    assert_eq!(p["sinks"]["out"]["inputs"], json!(["big"]));
}

#[test]
fn projections_select_rename_and_compute() {
    let p = explain(&with_io(
        "CREATE STREAM shaped AS SELECT e.id, name AS who, UCASE(kind) AS kind_uc, amount * 2 AS twice, at FROM events e;",
        "shaped",
    ));
    assert_eq!(
        p["stages"]["shaped"]["params"],
        json!({
            "select": ["id", "name", "at"],
            "rename": {"name": "who"},
            "set": {"kind_uc": "upper(kind)", "twice": "amount * 2"}
        })
    );
    // One field under two names is computed, not renamed.
    let p = explain(&with_io(
        "CREATE STREAM two AS SELECT id, id AS id2 FROM events;",
        "two",
    ));
    assert_eq!(
        p["stages"]["two"]["params"],
        json!({"select": ["id"], "set": {"id2": "id"}})
    );
}

#[test]
fn tables_joins_and_windows_map_to_their_plugins() {
    let p = explain(&with_io(
        "CREATE TABLE latest AS SELECT id, LATEST_BY_OFFSET(name) AS nm FROM events GROUP BY id;
         CREATE STREAM j AS SELECT e.id, e.at, l.nm AS n FROM events e INNER JOIN latest l ON e.id = l.id;
         CREATE STREAM k AS SELECT id, at, name FROM events;
         CREATE STREAM ww AS SELECT e.id, at, k.name AS kname FROM events e LEFT JOIN k WITHIN 2 HOURS GRACE PERIOD 5 MINUTES ON e.id = k.id;
         CREATE TABLE counts AS SELECT kind, COUNT(*), SUM(amount) AS total FROM events WINDOW HOPPING (SIZE 1 MINUTE, ADVANCE BY 10 SECONDS, GRACE PERIOD 1 SECOND) GROUP BY kind EMIT FINAL;
         CREATE TABLE sessions AS SELECT kind, MAX(amount) FROM events WINDOW SESSION (5 MINUTES) GROUP BY kind;",
        "j,ww,counts,sessions",
    ));
    assert_eq!(
        p["tables"]["latest"],
        json!({"input": "src", "key_field": "id"})
    );
    assert_eq!(
        p["stages"]["j"]["params"],
        json!({"table": "latest", "on": "id", "join": "inner", "fields": "id, at, table.name as n"})
    );
    assert_eq!(p["stages"]["j"]["tables"], json!(["latest"]));
    let ww = &p["stages"]["ww"];
    assert_eq!(ww["inputs"], json!(["src", "k"]));
    assert_eq!(
        ww["event_time"],
        json!({"field": "at", "lateness_ms": 300000})
    );
    assert_eq!(
        ww["params"],
        json!({"left": "src", "right": "k", "key": "id", "within_ms": 7200000, "join": "left", "fields": "id, at, right.name as kname"})
    );
    let c = &p["stages"]["counts"];
    assert_eq!(c["event_time"], json!({"field": "at", "lateness_ms": 1000}));
    assert_eq!(
        c["params"],
        json!({"window": "hopping", "size_ms": 60000, "advance_ms": 10000, "group_by": "kind", "aggregates": "count, sum(amount) as total", "emit": "close"})
    );
    assert_eq!(
        p["stages"]["sessions"]["params"],
        json!({"window": "session", "gap_ms": 300000, "group_by": "kind", "aggregates": "max(amount)", "emit": "update"})
    );
    for t in ["j", "ww", "counts", "sessions"] {
        assert_eq!(
            p["sinks"][format!("out_{t}").as_str()]["inputs"],
            json!([t])
        );
    }
}

#[test]
fn a_projection_only_a_table_join_reads_is_fused_into_it() {
    let table =
        "CREATE TABLE latest AS SELECT id, LATEST_BY_OFFSET(name) AS nm FROM events GROUP BY id;";
    let join = "CREATE STREAM j AS SELECT s.id, s.big, s.kind, l.nm AS n FROM shaped s INNER JOIN latest l ON s.id = l.id;";
    let shaped =
        "CREATE STREAM shaped AS SELECT id, kind, amount * 2 AS big FROM events WHERE kind != 'x';";
    let p = explain(&with_io(&format!("{table} {shaped} {join}"), "j"));
    // One stage: the projection's input, `where` and `set` moved into the join.
    assert!(p["stages"].get("shaped").is_none(), "{p:#}");
    assert_eq!(p["stages"]["j"]["inputs"], json!(["src"]));
    assert_eq!(
        p["stages"]["j"]["params"],
        json!({"table": "latest", "on": "id", "join": "inner", "where": "kind != 'x'",
               "set": {"big": "amount * 2"}, "fields": "id, big, kind, table.name as n"})
    );
    let c = compile(
        &with_io(&format!("{table} {shaped} {join}"), "j"),
        "t",
        None,
        "t.sql",
        None,
    )
    .expect("compiles");
    assert!(
        c.yaml
            .contains("line 5's CREATE STREAM shaped (fused: the join is its only reader)"),
        "{}",
        c.yaml
    );

    // Kept apart: where the fused stage could differ, or another reads it.
    let apart = |body: String, out: &str, why: &str| {
        let p = explain(&with_io(&body, out));
        assert_eq!(
            p["stages"]["shaped"]["plugin"],
            json!("project"),
            "{why}: {p:#}"
        );
        assert_eq!(p["stages"]["j"]["inputs"], json!(["shaped"]), "{why}");
    };
    apart(
        format!("{table} {shaped} {join}"),
        "j,shaped",
        "a sink reads it too",
    );
    apart(
        format!(
            "{table} {shaped} {join} CREATE STREAM again AS SELECT id FROM shaped WHERE big > 1;"
        ),
        "j,again",
        "another stream reads it",
    );
    apart(
        format!("{table} CREATE STREAM shaped AS SELECT id, kind, amount AS big FROM events WHERE kind != 'x'; {join}"),
        "j",
        "a rename",
    );
    apart(
        format!("{table} CREATE STREAM shaped AS SELECT id, kind, big FROM events; {join}"),
        "j",
        "neither `where` nor `set`: project would reject what is not an object",
    );
    apart(
        format!(
            "{table} CREATE STREAM shaped AS SELECT kind, amount * 2 AS big, id * 1 AS id FROM events; {join}"
        ),
        "j",
        "the key is computed",
    );
    apart(
        format!(
            "{table} CREATE STREAM shaped AS SELECT id, kind, amount * 2 AS big FROM events PARTITION BY kind; {join}"
        ),
        "j",
        "a new event key",
    );
    apart(
        format!("CREATE FUNCTION twice AS 'twice.wasm'; {table} {shaped} {join}"),
        "j",
        "lookup-join cannot call functions",
    );
}

#[test]
fn windows_count_columns_and_group_by_several_columns() {
    let p = explain(&with_io(
        "CREATE TABLE c AS SELECT region, tier, COUNT(*) AS n, COUNT(email) AS emails, COUNT(phone) FROM events WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY region, tier EMIT CHANGES;
         CREATE STREAM r AS SELECT region, tier, emails, count_phone FROM c WHERE n > 1;",
        "r",
    ));
    assert_eq!(
        p["stages"]["c"]["params"],
        json!({"window": "tumbling", "size_ms": 10000, "group_by": "region, tier", "aggregates": "count as n, count(email) as emails, count(phone)", "emit": "update"})
    );
    // The group columns and the aggregates are the window's known columns.
    assert_eq!(
        p["stages"]["r"]["params"],
        json!({"where": "n > 1", "select": ["region", "tier", "emails", "count_phone"]})
    );
    let errs = located(&with_io(
        "CREATE TABLE c AS SELECT region, tier, COUNT(*) FROM events WINDOW TUMBLING (SIZE 1 SECOND) GROUP BY region, tier, region;
         CREATE TABLE d AS SELECT region, COUNT(*) FROM events WINDOW TUMBLING (SIZE 1 SECOND) GROUP BY region, LCASE(tier);
         CREATE TABLE e AS SELECT region, other, COUNT(*) FROM events WINDOW TUMBLING (SIZE 1 SECOND) GROUP BY region, tier;
         CREATE TABLE f AS SELECT region, COUNT(a, b), COUNT(DISTINCT) FROM events WINDOW TUMBLING (SIZE 1 SECOND) GROUP BY region;",
        "events",
    ));
    let messages: Vec<&str> = errs.iter().map(|e| e.3.as_str()).collect();
    for needle in [
        "`region` is already in the GROUP BY",
        "grouping by expressions is not supported yet",
        "`other` must be the GROUP BY column or inside an aggregate",
        "COUNT takes * or one column",
    ] {
        assert!(
            messages.iter().any(|m| m.contains(needle)),
            "{needle}: {errs:?}"
        );
    }
}

#[test]
fn casts_compile_to_the_expression_languages_conversions() {
    let p = explain(&with_io(
        "CREATE STREAM x AS SELECT id, CAST(amount AS INT) AS a, CAST(amount AS BIGINT) AS b, CAST(price AS DOUBLE) AS d, CAST(flag AS BOOLEAN) AS f, CAST(id AS VARCHAR) AS s FROM events WHERE CAST(amount AS INTEGER) > 10;",
        "x",
    ));
    assert_eq!(
        p["stages"]["x"]["params"]["where"],
        json!("to_int(amount) > 10")
    );
    assert_eq!(
        p["stages"]["x"]["params"]["set"],
        json!({"a": "to_int(amount)", "b": "to_bigint(amount)", "d": "to_double(price)", "f": "to_boolean(flag)", "s": "case when id is null then null else concat(id) end"})
    );
}

#[test]
fn like_filters_with_an_escape_character_and_a_bad_escape_is_refused_where_written() {
    let p = explain(&with_io(
        "CREATE STREAM x AS SELECT * FROM events WHERE name LIKE 'A%' OR name NOT LIKE '_b%';",
        "x",
    ));
    assert_eq!(
        p["stages"]["x"]["params"],
        json!({"where": "(like(name, 'A%')) or (not like(name, '_b%'))"})
    );
    let p = explain(&with_io(
        "CREATE STREAM x AS SELECT * FROM events WHERE name LIKE '100!%%' ESCAPE '!' AND code NOT LIKE 'a''_%' ESCAPE '''';",
        "x",
    ));
    assert_eq!(
        p["stages"]["x"]["params"],
        json!({"where": "(like(name, '100!%%', '!')) and (not like(code, 'a''_%', ''''))"})
    );
    for bad in ["'!!'", "''", "name"] {
        let errs = located(&with_io(
            &format!("CREATE STREAM x AS SELECT * FROM events WHERE name LIKE 'A!%' ESCAPE {bad};"),
            "x",
        ));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].0, errs[0].1), (5, 79), "{bad}: {errs:?}");
        assert!(
            errs[0]
                .3
                .contains("expected one character in quotes after ESCAPE"),
            "{errs:?}"
        );
    }
}

#[test]
fn sink_connectors_map_their_properties() {
    let p = explain(&with_io(
        "CREATE SINK CONNECTOR es WITH ('connector.class' = 'io.confluent.connect.elasticsearch.ElasticsearchSinkConnector',
            'connection.url' = '${ES_URL:-http://127.0.0.1:9200}', 'topics' = 'events', 'key.ignore' = 'false', 'batch.size' = '${BATCH}');
         CREATE SINK CONNECTOR db WITH ('connector.class' = 'io.confluent.connect.jdbc.JdbcSinkConnector',
            'connection.url' = 'jdbc:postgresql://h:5432/d?user=u&password=${PW}', 'topics' = 'events',
            'insert.mode' = 'upsert', 'pk.mode' = 'record_value', 'pk.fields' = 'id', 'auto.create' = 'true');",
        "events",
    ));
    assert_eq!(
        p["sinks"]["es"],
        json!({"type": "elasticsearch", "inputs": ["src"], "url": "${ES_URL:-http://127.0.0.1:9200}", "index": "events", "id": "key", "max_events": "${BATCH}"})
    );
    assert_eq!(
        p["sinks"]["db"],
        json!({"type": "postgres", "inputs": ["src"], "url": "postgres://u:${PW}@h:5432/d", "table": "events", "mode": "upsert",
               "key_fields": ["id"], "auto_create": true, "auto_evolve": false, "delete_on_tombstone": false})
    );
    assert_eq!(p["sinks"]["out"]["type"], json!("s3"));
}

#[test]
fn identifiers_are_case_insensitive() {
    let p = explain(&with_io(
        "CREATE STREAM Loud AS SELECT ID, Name FROM EVENTS WHERE Amount > 1;",
        "loud",
    ));
    assert_eq!(
        p["stages"]["loud"]["params"]["select"],
        json!(["id", "name"])
    );
    assert_eq!(p["stages"]["loud"]["params"]["where"], json!("amount > 1"));
}

/// (line, column, suggestion) of each error.
fn located(sql: &str) -> Vec<(usize, usize, Option<String>, String)> {
    errors(sql)
        .into_iter()
        .map(|e| (e.at.line, e.at.col, e.suggestion, e.message))
        .collect()
}

#[test]
fn unknown_names_get_their_position_and_the_closest_known_name() {
    let errs = located(&with_io("CREATE STREAM x AS SELECT id FROM evnets;", "x"));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!((errs[0].0, errs[0].1), (5, 44));
    assert_eq!(errs[0].2.as_deref(), Some("events"));
    // Columns of a stream whose columns are known.
    let errs = located(&with_io(
        "CREATE STREAM a AS SELECT id, name FROM events;\nCREATE STREAM b AS SELECT nmae FROM a;",
        "b",
    ));
    assert_eq!((errs[0].0, errs[0].1), (6, 27), "{errs:?}");
    assert_eq!(errs[0].2.as_deref(), Some("name"));
    assert!(errs[0].3.contains("has no column `nmae`"), "{errs:?}");
    // A sink's topic.
    let errs = located(&with_io("", "evnts"));
    assert_eq!(errs[0].2.as_deref(), Some("events"), "{errs:?}");
}

#[test]
fn unknown_connector_classes_and_properties_name_what_is_supported() {
    let errs = located(
        "CREATE SOURCE CONNECTOR s WITH ('connector.class' = 'io.debezium.connector.postgresql.PostgresConector',
            'database.hostname' = 'h');",
    );
    assert_eq!((errs[0].0, errs[0].1), (1, 53));
    assert_eq!(
        errs[0].2.as_deref(),
        Some("io.debezium.connector.postgresql.PostgresConnector")
    );
    assert!(errs[0].3.contains("supported: io.debezium"), "{errs:?}");
    let errs = located(&with_io(
        "CREATE SINK CONNECTOR es WITH ('connector.class' = 'io.confluent.connect.elasticsearch.ElasticsearchSinkConnector',
            'connection.url' = 'http://h:9200', 'topics' = 'events', 'key.ignor' = 'true', 'frobnicate' = '1');",
        "events",
    ));
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!((errs[0].0, errs[0].1), (6, 70));
    assert_eq!(errs[0].2.as_deref(), Some("key.ignore"));
    assert!(
        errs[1].3.starts_with("unknown property `frobnicate`"),
        "{errs:?}"
    );
    assert!(
        errs[1].3.contains("connection.url"),
        "lists what is supported: {errs:?}"
    );
    assert_eq!(errs[1].2, None);
}

#[test]
fn constructs_that_cannot_run_are_refused_with_the_reason() {
    for (sql, needle) in [
        ("CREATE STREAM k AS SELECT id, at FROM events;\nCREATE STREAM x AS SELECT e.id FROM events e JOIN k ON e.id = k.id;", "needs WITHIN"),
        ("CREATE TABLE t AS SELECT kind, COUNT(*) FROM events GROUP BY kind;", "without WINDOW"),
        ("CREATE TABLE t AS SELECT id, LATEST_BY_OFFSET(name) AS name FROM events GROUP BY id;\nCREATE STREAM x AS SELECT e.id FROM events e LEFT JOIN t ON e.kind = t.name;", "keyed by `id`"),
        ("CREATE STREAM a AS SELECT id FROM events;\nCREATE TABLE t AS SELECT id, COUNT(*) FROM a WINDOW TUMBLING (SIZE 1 SECOND) GROUP BY id;", "left `at` out"),
        ("CREATE STREAM x WITH (kafka_topic = 'nope') ;", "written by no connector"),
        ("CREATE STREAM x WITH (kafka_topic = 'events', timestamp_format = 'dd/MM/yyyy');", "timestamp_format"),
        ("CREATE TABLE t AS SELECT kind, COUNT(*) FROM events WINDOW TUMBLING (SIZE 1 SECOND) GROUP BY kind PARTITION BY kind;", "PARTITION BY is supported on CREATE STREAM"),
    ] {
        let errs = located(&with_io(sql, "events"));
        assert!(errs.iter().any(|e| e.3.contains(needle)), "{sql}: {errs:?}");
        assert!(errs.iter().all(|e| e.0 > 0 && e.1 > 0), "{errs:?}");
    }
}

#[test]
fn every_error_of_a_file_is_reported_without_cascades() {
    // `a` fails, and the statements and sink reading it report nothing more.
    let errs = located(&with_io(
        "CREATE STREAM a AS SELECT id FROM evnts;\nCREATE STREAM b AS SELECT id FROM a;\nCREATE STREAM c AS SELECT LOWR(name) AS n FROM events;",
        "a,b",
    ));
    let got: Vec<(usize, Option<&str>)> = errs.iter().map(|e| (e.0, e.2.as_deref())).collect();
    assert_eq!(
        got,
        vec![(5, Some("events")), (7, Some("lower"))],
        "{errs:?}"
    );
}

const FILE_SESSION: &str = "CREATE SOURCE CONNECTOR a WITH ('connector.class' = 'org.apache.kafka.connect.file.FileStreamSourceConnector', 'file' = 'a.jsonl', 'topic' = 'a');
CREATE SOURCE CONNECTOR b WITH ('connector.class' = 'org.apache.kafka.connect.file.FileStreamSourceConnector', 'file' = 'b.jsonl', 'topic' = 'b');
CREATE STREAM sa WITH (kafka_topic = 'a');
CREATE STREAM sb WITH (kafka_topic = 'b');
CREATE STREAM wide AS SELECT * FROM sa WHERE x > 1 EMIT CHANGES;
CREATE STREAM other AS SELECT * FROM sb WHERE y > 1 EMIT CHANGES;
";

#[test]
fn a_probe_keeps_only_what_its_stream_reads_and_prints_it_as_envelopes() {
    let probe = super::Probe::Relation(super::ast::Ident {
        name: "wide".into(),
        at: super::Pos { line: 1, col: 1 },
    });
    let (plan, catalog) =
        super::compile_session(FILE_SESSION, "s", None, Some(probe)).expect("compiles");
    let names = |l: &[super::plan::Entry]| l.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&plan.sources), ["a"]);
    assert_eq!(names(&plan.stages), ["wide"]);
    assert_eq!(names(&plan.sinks), [super::PROBE_SINK]);
    let y = yaml(&plan.to_yaml(""));
    assert_eq!(y["sinks"][super::PROBE_SINK]["inputs"], json!(["wide"]));
    assert_eq!(y["sinks"][super::PROBE_SINK]["format"], json!("envelope"));
    assert_eq!(
        y["sources"]["a"],
        json!({"type": "file", "path": "a.jsonl"})
    );
    // The catalog still lists the whole session.
    let rels: Vec<&str> = catalog.relations.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(rels, ["sa", "sb", "wide", "other"]);
    assert_eq!(catalog.topics, ["a", "b", "other", "wide"]);
}

#[test]
fn a_session_needs_no_sink_but_a_file_does_and_a_table_cannot_be_queried() {
    assert!(super::compile_session(FILE_SESSION, "s", None, None).is_ok());
    let e = super::compile(FILE_SESSION, "s", None, "f.sql", None).expect_err("no sink");
    assert!(e.0[0].message.contains("no CREATE SINK CONNECTOR"), "{e:?}");
    let text = format!(
        "{FILE_SESSION}CREATE TABLE t AS SELECT x, LATEST_BY_OFFSET(y) AS y FROM sa GROUP BY x;\n"
    );
    let probe = super::Probe::Relation(super::ast::Ident {
        name: "t".into(),
        at: super::Pos { line: 9, col: 3 },
    });
    let e = super::compile_session(&text, "s", None, Some(probe)).expect_err("a table");
    assert!(e.0[0].message.contains("is a table"), "{e:?}");
    assert_eq!(e.0[0].at.line, 9);
}

#[test]
fn filestream_connectors_map_to_file_and_refuse_unknown_properties() {
    let text = format!("{FILE_SESSION}CREATE SINK CONNECTOR out WITH ('connector.class' = 'org.apache.kafka.connect.file.FileStreamSinkConnector', 'file' = 'out.jsonl', 'topics' = 'wide,other');\n");
    let y = explain(&text);
    assert_eq!(y["sinks"]["out"]["type"], json!("file"));
    assert_eq!(y["sinks"]["out"]["inputs"], json!(["wide", "other"]));
    let bad = FILE_SESSION.replace("'topic' = 'a'", "'topic' = 'a', 'fiel' = 'x'");
    let e = super::compile_session(&bad, "s", None, None).expect_err("unknown property");
    assert!(e.0[0].message.contains("`fiel`"), "{e:?}");
}

#[test]
fn names_that_need_quoting_reach_each_plugin_in_the_form_it_reads() {
    let p = explain(&with_io(
        "CREATE TABLE c AS SELECT `my region`, COUNT(`unit price`), SUM(`unit price`) AS `total, eur`, MAX(`it``s`) FROM events WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY `my region`;
         CREATE TABLE d AS SELECT `my region`, `a,b`, COUNT(*) FROM events WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY `my region`, `a,b`;
         CREATE TABLE latest AS SELECT `my id`, LATEST_BY_OFFSET(name) AS nm FROM events GROUP BY `my id`;
         CREATE STREAM j AS SELECT e.`my id`, l.nm AS `the name` FROM events e LEFT JOIN latest l ON e.`my id` = l.`my id`;
         CREATE STREAM k AS SELECT `my id`, at FROM events;
         CREATE STREAM ww AS SELECT e.`my id`, k.at AS `k at` FROM events e JOIN k WITHIN 1 HOUR ON e.`my id` = k.`my id`;
         CREATE STREAM r AS SELECT `count_unit price`, `total, eur`, `max_it``s` FROM c;",
        "c,d,j,ww,r",
    ));
    // Lists quote as the expression language does; default names are the
    // plugin's, from the unquoted field.
    assert_eq!(
        p["stages"]["c"]["params"],
        json!({"window": "tumbling", "size_ms": 10000, "group_by": "`my region`",
               "aggregates": "count(`unit price`), sum(`unit price`) as `total, eur`, max(`it``s`)", "emit": "update"})
    );
    assert_eq!(
        p["stages"]["d"]["params"]["group_by"],
        json!("`my region`, `a,b`")
    );
    assert_eq!(
        p["tables"]["latest"],
        json!({"input": "src", "key_field": "my id"})
    );
    // A single field is read as written.
    assert_eq!(
        p["stages"]["j"]["params"],
        json!({"table": "latest", "on": "my id", "join": "left", "fields": "`my id`, table.name as `the name`"})
    );
    assert_eq!(
        p["stages"]["ww"]["params"],
        json!({"left": "src", "right": "k", "key": "my id", "within_ms": 3600000, "join": "inner", "fields": "`my id`, right.at as `k at`"})
    );
    assert_eq!(
        p["stages"]["r"]["params"],
        json!({"select": ["`count_unit price`", "`total, eur`", "`max_it``s`"]})
    );
}

#[test]
fn having_filters_the_window_results_after_the_window_stage() {
    let p = explain(&with_io(
        "CREATE TABLE c AS SELECT kind, COUNT(*) AS n, SUM(amount) FROM events
           WINDOW TUMBLING (SIZE 10 SECONDS) WHERE amount > 0 GROUP BY kind
           HAVING COUNT(*) > 1 AND n < 10 AND sum_amount >= 5 AND WINDOWEND - WINDOWSTART = 10000 EMIT CHANGES;",
        "c",
    ));
    assert_eq!(
        p["stages"]["c_where"]["params"],
        json!({"where": "amount > 0"})
    );
    assert_eq!(
        p["stages"]["c_window"],
        json!({"plugin": "window-aggregate", "inputs": ["c_where"],
               "event_time": {"field": "at", "lateness_ms": 0},
               "params": {"window": "tumbling", "size_ms": 10000, "group_by": "kind",
                          "aggregates": "count as n, sum(amount)", "emit": "update"}})
    );
    assert_eq!(
        p["stages"]["c"],
        json!({"plugin": "filter", "inputs": ["c_window"],
               "params": {"where": "(((n > 1) and (n < 10)) and (sum_amount >= 5)) and ((window_end - window_start) = 10000)"}})
    );
    assert_eq!(p["sinks"]["out"]["inputs"], json!(["c"]));
    // One GROUP BY column is only the results' `key`, as text: HAVING reads
    // its value as the events had it, computed and then dropped.
    let p = explain(&with_io(
        "CREATE TABLE c AS SELECT tier, COUNT(*) FROM events WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY tier HAVING tier = 1;",
        "c",
    ));
    assert_eq!(
        p["stages"]["c_window"]["params"]["aggregates"],
        json!("count, latest(tier) as ksql_having_0")
    );
    assert_eq!(
        p["stages"]["c"],
        json!({"plugin": "project", "inputs": ["c_window"],
               "params": {"where": "ksql_having_0 = 1", "drop": ["ksql_having_0"]}})
    );
}

#[test]
fn having_computes_aggregates_it_alone_reads_and_drops_them() {
    let p = explain(&with_io(
        "CREATE TABLE c AS SELECT region, tier, WINDOWSTART AS ws, WINDOWEND, MAX(amount) AS top FROM events
           WINDOW HOPPING (SIZE 10 SECONDS, ADVANCE BY 5 SECONDS) GROUP BY region, tier
           HAVING COUNT(*) > 1 OR AVG(amount) > 2.5 OR tier = 1 EMIT FINAL;
         CREATE STREAM r AS SELECT region, ws, window_end, top FROM c;",
        "r",
    ));
    assert_eq!(
        p["stages"]["c_window"]["params"],
        json!({"window": "hopping", "size_ms": 10000, "advance_ms": 5000, "group_by": "region, tier",
               "aggregates": "max(amount) as top, count as ksql_having_0, avg(amount) as ksql_having_1", "emit": "close"})
    );
    // Several GROUP BY columns are columns of the results. HAVING is the
    // `where` of the stage that drops what only it read: one stage.
    assert_eq!(
        p["stages"]["c"],
        json!({"plugin": "project", "inputs": ["c_window"],
               "params": {"where": "((ksql_having_0 > 1) or (ksql_having_1 > 2.5)) or (tier = 1)",
                          "set": {"ws": "window_start"}, "drop": ["ksql_having_0", "ksql_having_1"]}})
    );
    assert_eq!(p["stages"]["c_having"], json!(null));
    assert_eq!(
        p["stages"]["r"]["params"],
        json!({"select": ["region", "ws", "window_end", "top"]})
    );
}

#[test]
fn having_and_window_bounds_are_refused_where_they_cannot_run() {
    let errs = located(&with_io(
        "CREATE TABLE a AS SELECT kind, COUNT(*) AS total FROM events WINDOW TUMBLING (SIZE 1 SECOND) GROUP BY kind HAVING totl > 1;
CREATE STREAM b AS SELECT id FROM events WHERE WINDOWSTART > 0;
CREATE STREAM c AS SELECT id, WINDOWEND FROM events;
CREATE TABLE d AS SELECT kind, COUNT(*) FROM events WINDOW TUMBLING (SIZE 1 SECOND) WHERE windowstart > 0 GROUP BY kind;
CREATE TABLE e AS SELECT id, LATEST_BY_OFFSET(name) FROM events GROUP BY id HAVING id > 1;
CREATE STREAM f AS SELECT id FROM events HAVING COUNT(*) > 1;
CREATE TABLE g AS SELECT kind, SUM(WINDOWSTART) FROM events WINDOW TUMBLING (SIZE 1 SECOND) GROUP BY kind;
CREATE TABLE h AS SELECT kind, COUNT(*) FROM events WINDOW TUMBLING (SIZE 1 SECOND) GROUP BY kind HAVING LOWER(kind) = 'a' AND SUM(amount, 2) > 1;",
        "events",
    ));
    let bound = "is only available in the select list and HAVING of a windowed aggregate";
    let having = "HAVING is supported on windowed aggregates only";
    let got: Vec<(usize, usize, Option<&str>, bool)> = errs
        .iter()
        .map(|e| {
            (
                e.0,
                e.1,
                e.2.as_deref(),
                e.3.contains(bound) || e.3.contains(having),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (5, 124, Some("total"), false),
            (6, 48, None, true),
            (7, 31, None, true),
            (8, 91, None, true),
            (9, 84, None, true),
            (10, 49, None, true),
            (11, 36, None, true),
            (12, 128, None, false),
        ],
        "{errs:?}"
    );
    assert!(
        errs[0]
            .3
            .contains("HAVING reads the window's results, which have no column `totl`"),
        "{errs:?}"
    );
    assert!(
        errs[1].3.starts_with("WINDOWSTART is only available"),
        "{errs:?}"
    );
    assert!(errs[7].3.contains("SUM takes one column"), "{errs:?}");
}

#[test]
fn partition_by_re_keys_in_the_project_stage_that_applies_where() {
    let p = explain(&with_io(
        "CREATE STREAM a AS SELECT id, name FROM events WHERE amount > 0 PARTITION BY LCASE(`my region`) || '/' || kind;
         CREATE STREAM b AS SELECT * FROM events PARTITION BY id;",
        "a,b",
    ));
    assert_eq!(
        p["stages"]["a"],
        json!({"plugin": "project", "inputs": ["src"],
               "params": {"where": "amount > 0", "select": ["id", "name"], "key": "(lower(`my region`) || '/') || kind"}})
    );
    assert_eq!(
        p["stages"]["b"],
        json!({"plugin": "project", "inputs": ["src"], "params": {"key": "id"}})
    );
    let errs = located(&with_io(
        "CREATE STREAM a AS SELECT id FROM events PARTITION BY WINDOWSTART;
CREATE STREAM k AS SELECT id, at FROM events;
CREATE STREAM j AS SELECT e.id FROM events e JOIN k WITHIN 1 HOUR ON e.id = k.id PARTITION BY e.id;",
        "a",
    ));
    let got: Vec<(usize, usize)> = errs.iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(got, vec![(5, 64), (7, 95)], "{errs:?}");
    assert!(
        errs[0].3.starts_with("WINDOWSTART is only available"),
        "{errs:?}"
    );
    assert!(
        errs[1]
            .3
            .starts_with("PARTITION BY is supported on CREATE STREAM"),
        "{errs:?}"
    );
}

#[test]
fn create_function_becomes_a_udfs_entry_callable_in_where_and_select() {
    let p = explain(&with_io(
        "CREATE FUNCTION Mask_Email AS 'udfs/mask.wasm';
         CREATE STREAM masked AS SELECT id, MASK_EMAIL(email) AS email FROM events
           WHERE mask_email(email) IS NOT NULL;",
        "masked",
    ));
    assert_eq!(
        p["udfs"],
        json!({"mask_email": {"plugin": "udfs/mask.wasm"}})
    );
    assert_eq!(
        p["stages"]["masked"]["params"],
        json!({"where": "mask_email(email) is not null", "select": ["id"], "set": {"email": "mask_email(email)"}})
    );
    // A function defined below the statement that calls it is known too.
    let p = explain(&with_io(
        "CREATE STREAM m AS SELECT id, f(email) AS e FROM events;
         CREATE FUNCTION f AS 'mask';",
        "m",
    ));
    assert_eq!(p["udfs"], json!({"f": {"plugin": "mask"}}));
}

#[test]
fn create_function_errors_say_where_and_suggest_the_udf() {
    let errs = located(&with_io(
        "CREATE FUNCTION mask_email AS 'mask.wasm';
CREATE STREAM m AS SELECT mask_emial(email) AS e FROM events;",
        "m",
    ));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!((errs[0].0, errs[0].1), (6, 27), "{errs:?}");
    assert_eq!(errs[0].2.as_deref(), Some("mask_email"));
    assert!(
        errs[0]
            .3
            .ends_with("user-defined (CREATE FUNCTION): MASK_EMAIL"),
        "{errs:?}"
    );
    // Without CREATE FUNCTION the message says how to add one.
    let errs = located(&with_io(
        "CREATE STREAM m AS SELECT mask_email(email) AS e FROM events;",
        "m",
    ));
    assert!(
        errs[0]
            .3
            .ends_with("(add one with CREATE FUNCTION name AS 'plugin.wasm')"),
        "{errs:?}"
    );
    // The plugin must be a quoted string; a name is defined once and may
    // not shadow a built-in.
    let errs = located(&with_io(
        "CREATE FUNCTION f AS mask;
CREATE FUNCTION g AS 'a.wasm';
CREATE FUNCTION G AS 'b.wasm';
CREATE FUNCTION ucase AS 'c.wasm';",
        "events",
    ));
    let got: Vec<(usize, usize, &str)> = errs.iter().map(|e| (e.0, e.1, e.3.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (5, 31, "expected the function's plugin as a quoted string (`'path/to/udf.wasm'` or a plugin name), found `mask`"),
        ]
    );
    let errs = located(&with_io(
        "CREATE FUNCTION g AS 'a.wasm';
CREATE FUNCTION G AS 'b.wasm';
CREATE FUNCTION ucase AS 'c.wasm';",
        "events",
    ));
    let got: Vec<(usize, usize, &str)> = errs.iter().map(|e| (e.0, e.1, e.3.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (
                6,
                17,
                "function `G` is defined twice (names are case-insensitive)"
            ),
            (
                7,
                17,
                "`UCASE` is a built-in function; give the user-defined function another name"
            ),
        ]
    );
}

/// A file whose second statement reads the first's stream, and a sink
/// connector that reads the second's.
const TWO_STATEMENTS: &str = "CREATE SOURCE CONNECTOR src WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSourceConnector',
  'file' = 'orders.jsonl', 'topic' = 'orders');
CREATE STREAM orders WITH (kafka_topic = 'orders', value_format = 'JSON');
CREATE STREAM priced WITH (kafka_topic = 'priced_orders', value_format = 'JSON') AS
  SELECT id, amount * 2 AS doubled FROM orders WHERE region != 'x';
CREATE STREAM big AS SELECT id FROM priced WHERE doubled > 20;
CREATE STREAM unread AS SELECT * FROM priced WHERE doubled < 0;
CREATE SINK CONNECTOR out WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSinkConnector',
  'file' = 'out.jsonl', 'topics' = 'big');
";

#[test]
fn with_kafka_each_stream_is_written_to_its_topic_and_read_back_from_it() {
    let c = compile(
        TWO_STATEMENTS,
        "two",
        None,
        "two.sql",
        Some(&kafka_link("${BROKERS}", None)),
    )
    .unwrap_or_else(|e| panic!("{}", e.render("two.sql")));
    let expected = r#"# Compiled by `sluice sql` from two.sql.
# `sluice run` and `sluice validate` read this file as they read any pipeline file.
name: two
sources:
  # line 1: CREATE SOURCE CONNECTOR src (topic orders)
  src:
    type: file
    path: orders.jsonl
  # line 5: reads topic priced_orders of CREATE STREAM priced
  priced_from_kafka:
    type: kafka
    brokers: "${BROKERS}"
    topics: [priced_orders]
    group_id: sluice-two
    format: json
    properties:
      allow.auto.create.topics: "true"
  # line 7: reads topic big of CREATE STREAM big
  big_from_kafka:
    type: kafka
    brokers: "${BROKERS}"
    topics: [big]
    group_id: sluice-two
    format: json
    properties:
      allow.auto.create.topics: "true"
stages:
  # line 5: CREATE STREAM priced
  priced:
    plugin: project
    inputs: [src]
    params:
      where: "region != 'x'"
      select: [id]
      set:
        doubled: "amount * 2"
  # line 7: CREATE STREAM big
  big:
    plugin: project
    inputs: [priced_from_kafka]
    params:
      where: "doubled > 20"
      select: [id]
  # line 8: WHERE of unread
  unread:
    plugin: filter
    inputs: [priced_from_kafka]
    params:
      where: "doubled < 0"
sinks:
  # line 5: CREATE STREAM priced writes topic priced_orders
  priced_to_kafka:
    type: kafka
    inputs: [priced]
    brokers: "${BROKERS}"
    topic: priced_orders
    format: json
  # line 7: CREATE STREAM big writes topic big
  big_to_kafka:
    type: kafka
    inputs: [big]
    brokers: "${BROKERS}"
    topic: big
    format: json
  # line 8: CREATE STREAM unread writes topic unread
  unread_to_kafka:
    type: kafka
    inputs: [unread]
    brokers: "${BROKERS}"
    topic: unread
    format: json
  # line 9: CREATE SINK CONNECTOR out (topics big)
  out:
    type: file
    inputs: [big_from_kafka]
    path: out.jsonl
"#;
    assert_eq!(c.yaml, expected, "got:\n{}", c.yaml);
    // Without Kafka the same file keeps every topic in the process.
    let y = explain(TWO_STATEMENTS);
    assert_eq!(y["stages"]["big"]["inputs"], json!(["priced"]));
    assert_eq!(y["sinks"]["out"]["inputs"], json!(["big"]));
    assert_eq!(y["sinks"].as_object().map(|m| m.len()), Some(1), "{y:#}");
}

fn kafka_link(brokers: &str, registry: Option<&str>) -> crate::sql::KafkaLink {
    crate::sql::KafkaLink {
        brokers: brokers.into(),
        schema_registry: registry.map(str::to_string),
    }
}

#[test]
fn with_kafka_avro_between_statements_needs_a_registry_and_other_formats_are_an_error_at_their_value(
) {
    let text = TWO_STATEMENTS.replace(
        "kafka_topic = 'priced_orders', value_format = 'JSON'",
        "kafka_topic = 'priced_orders', value_format = 'AVRO'",
    );
    let e = compile(
        &text,
        "two",
        None,
        "two.sql",
        Some(&kafka_link("127.0.0.1:9092", None)),
    )
    .expect_err("AVRO between statements without a registry");
    assert_eq!(e.0.len(), 1, "{e:?}");
    assert_eq!((e.0[0].at.line, e.0[0].at.col), (5, 74));
    assert_eq!(
        e.0[0].message,
        "value_format AVRO over Kafka needs a Schema Registry for the topic `priced_orders`'s schema: add --schema-registry URL (`sluice registry` runs one), or use 'JSON'"
    );
    // With one, the topic is Avro on both sides, its schema registered.
    let link = kafka_link("127.0.0.1:9092", Some("http://127.0.0.1:8081"));
    let c = compile(&text, "two", None, "two.sql", Some(&link))
        .unwrap_or_else(|e| panic!("{}", e.render("two.sql")));
    let y = yaml(&c.yaml);
    for side in [
        &y["sinks"]["priced_to_kafka"],
        &y["sources"]["priced_from_kafka"],
    ] {
        assert_eq!(side["format"], json!("avro"), "{y:#}");
        assert_eq!(
            side["schema_registry"],
            json!("http://127.0.0.1:8081"),
            "{y:#}"
        );
    }
    let text = text.replace("value_format = 'AVRO'", "value_format = 'PROTOBUF'");
    let e = compile(&text, "two", None, "two.sql", Some(&link)).expect_err("PROTOBUF");
    assert_eq!(
        e.0[0].message,
        "value_format `PROTOBUF` between statements over Kafka is not supported; use 'JSON', or 'AVRO' with --schema-registry URL"
    );
    // Without Kafka the format has no effect, so it is accepted.
    assert!(compile(&text, "two", None, "two.sql", None).is_ok());
}

#[test]
fn with_kafka_tables_load_from_the_statement_in_the_process_and_streams_read_the_topic() {
    let text = "CREATE SOURCE CONNECTOR src WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSourceConnector',
  'file' = 'orders.jsonl', 'topic' = 'orders');
CREATE SOURCE CONNECTOR people WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSourceConnector',
  'file' = 'people.jsonl', 'topic' = 'people_raw');
CREATE STREAM orders WITH (kafka_topic = 'orders');
CREATE STREAM people_raw WITH (kafka_topic = 'people_raw');
CREATE STREAM people AS SELECT id, name FROM people_raw WHERE id IS NOT NULL;
CREATE TABLE people_by_id WITH (kafka_topic = 'people', key = 'id');
CREATE TABLE latest AS SELECT id, LATEST_BY_OFFSET(name) AS name FROM people GROUP BY id;
CREATE STREAM named AS SELECT o.id, p.name FROM orders o LEFT JOIN people_by_id p ON o.id = p.id;
CREATE STREAM again AS SELECT id, name FROM people WHERE name IS NOT NULL;
CREATE STREAM copy AS SELECT * FROM people;
CREATE TABLE copy_by_id WITH (kafka_topic = 'copy', key = 'id');
CREATE SINK CONNECTOR out WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSinkConnector',
  'file' = 'out.jsonl', 'topics' = 'named,again');
";
    let c = compile(
        text,
        "k",
        None,
        "k.sql",
        Some(&kafka_link("127.0.0.1:9092", None)),
    )
    .unwrap_or_else(|e| panic!("{}", e.render("k.sql")));
    let y = yaml(&c.yaml);
    assert_eq!(y["tables"]["people_by_id"]["input"], json!("people"));
    assert_eq!(y["tables"]["latest"]["input"], json!("people"));
    // A copy has no stage: it is written from the topic it copies, and a
    // table over it loads from the statement that stream comes from.
    assert_eq!(
        y["sinks"]["copy_to_kafka"]["inputs"],
        json!(["people_from_kafka"])
    );
    assert_eq!(y["tables"]["copy_by_id"]["input"], json!("people"));
    assert_eq!(y["stages"]["again"]["inputs"], json!(["people_from_kafka"]));
    assert_eq!(y["sinks"]["people_to_kafka"]["inputs"], json!(["people"]));
    assert_eq!(
        y["sinks"]["out"]["inputs"],
        json!(["named_from_kafka", "again_from_kafka"])
    );
}
