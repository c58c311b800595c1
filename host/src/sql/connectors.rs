//! `CREATE SOURCE|SINK CONNECTOR` properties mapped onto Sluice connectors:
//! the Kafka Connect and Debezium classes people use, each property either
//! mapped, accepted as meaningless in one process (converters, registry
//! URLs), or refused by name with the list of what is supported.

use super::ast::Prop;
use super::error::{Pos, SqlError};
use super::plan::Y;
use super::props::Props;

const PG_CDC: &str = "io.debezium.connector.postgresql.PostgresConnector";
const MONGO_CDC: &str = "io.debezium.connector.mongodb.MongoDbConnector";
const JDBC_SOURCE: &str = "io.confluent.connect.jdbc.JdbcSourceConnector";
const ES_SINK: &str = "io.confluent.connect.elasticsearch.ElasticsearchSinkConnector";
const S3_SINK: &str = "io.confluent.connect.s3.S3SinkConnector";
const JDBC_SINK: &str = "io.confluent.connect.jdbc.JdbcSinkConnector";
const FILE_SOURCE: &str = "org.apache.kafka.connect.file.FileStreamSourceConnector";
const FILE_SINK: &str = "org.apache.kafka.connect.file.FileStreamSinkConnector";

/// Source classes, for messages.
pub const SOURCE_CLASSES: &[&str] = &[PG_CDC, MONGO_CDC, JDBC_SOURCE, FILE_SOURCE];
/// Sink classes, for messages.
pub const SINK_CLASSES: &[&str] = &[ES_SINK, S3_SINK, JDBC_SINK, FILE_SINK];

const RECORD_STATE: &str = "io.debezium.transforms.ExtractNewRecordState";
const DOCUMENT_STATE: &str = "io.debezium.connector.mongodb.transforms.ExtractNewDocumentState";

/// Properties every connector accepts and Sluice does not need: converters
/// and Schema Registry settings only matter when records cross Kafka.
const ACCEPTED_PREFIXES: &[&str] = &["key.converter", "value.converter", "name", "tasks.max"];

/// One topic a source connector writes: one Sluice source each, so a stream
/// reads exactly its topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    /// The table or collection (names the source when there are several).
    pub part: String,
    /// The Kafka topic name ksqlDB statements refer to.
    pub topic: String,
    /// The source's YAML body (with `type`).
    pub body: Vec<(String, Y)>,
}

/// A source connector, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceConnector {
    /// Its topics.
    pub captures: Vec<Capture>,
    /// `unwrap` parameters when the connector has an unwrap transform.
    pub unwrap: Option<Vec<(String, Y)>>,
}

/// How a sink connector's topics become Sluice sinks.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkConnector {
    /// The topics it reads, where `topics` is written.
    pub topics: Vec<String>,
    /// Where `topics` is written.
    pub topics_at: Pos,
    /// One sink per topic (its index or table is named after the topic),
    /// or one sink reading them all.
    pub per_topic: bool,
    /// The YAML body (with `type`); `{topic}` in string values stands for
    /// the topic of a per-topic sink.
    pub body: Vec<(String, Y)>,
}

fn class<'a>(p: &mut Props<'a>, known: &[&str], role: &str) -> Result<(String, Pos), SqlError> {
    let Some(prop) = p.get("connector.class") else {
        return Err(SqlError::new(
            p.at,
            format!(
                "missing property `connector.class`; supported {role} classes: {}",
                known.join(", ")
            ),
        ));
    };
    if known.contains(&prop.value.as_str()) {
        return Ok((prop.value.clone(), prop.value_at));
    }
    Err(SqlError::new(
        prop.value_at,
        format!(
            "unknown {role} connector class `{}`; supported: {}",
            prop.value,
            known.join(", ")
        ),
    )
    .suggest(&prop.value, known.iter().copied()))
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn s(v: impl Into<String>) -> Y {
    Y::Str(v.into())
}

/// Refuses a Debezium include list written as patterns: Sluice needs the
/// exact names to know the topics when it compiles.
fn no_patterns(p: &Prop) -> Result<(), SqlError> {
    if p.value
        .contains(['*', '+', '[', '(', '\\', '|', '?', '^', '$'])
    {
        return Err(SqlError::new(
            p.value_at,
            format!(
                "`{}` must list names, not patterns: the topics have to be known when the statements compile",
                p.key
            ),
        ));
    }
    Ok(())
}

/// Compiles a `CREATE SOURCE CONNECTOR`.
pub fn source(name: &str, props: &[Prop], at: Pos) -> Result<SourceConnector, Vec<SqlError>> {
    let mut p = Props::new(props, at).map_err(|e| vec![e])?;
    let (class, _) = class(&mut p, SOURCE_CLASSES, "source").map_err(|e| vec![e])?;
    p.accept_prefixed(ACCEPTED_PREFIXES);
    let mut errors = Vec::new();
    let (captures, supported): (Vec<Capture>, &[&str]) = match class.as_str() {
        PG_CDC => (
            postgres_cdc(name, &mut p).unwrap_or_else(|e| {
                errors.push(e);
                Vec::new()
            }),
            PG_CDC_PROPS,
        ),
        MONGO_CDC => (
            mongodb(name, &mut p).unwrap_or_else(|e| {
                errors.push(e);
                Vec::new()
            }),
            MONGO_PROPS,
        ),
        FILE_SOURCE => (
            file_source(&mut p).unwrap_or_else(|e| {
                errors.push(e);
                Vec::new()
            }),
            FILE_SOURCE_PROPS,
        ),
        _ => (
            jdbc_source(&mut p).unwrap_or_else(|e| {
                errors.push(e);
                Vec::new()
            }),
            JDBC_SOURCE_PROPS,
        ),
    };
    let unwrap = match transforms(&mut p, class != JDBC_SOURCE && class != FILE_SOURCE) {
        Ok(u) => u,
        Err(e) => {
            errors.push(e);
            None
        }
    };
    errors.extend(p.leftovers(&format!("`{class}`"), supported));
    if errors.is_empty() {
        Ok(SourceConnector { captures, unwrap })
    } else {
        Err(errors)
    }
}

const PG_CDC_PROPS: &[&str] = &[
    "connector.class",
    "database.hostname",
    "database.port",
    "database.user",
    "database.password",
    "database.dbname",
    "database.server.name",
    "topic.prefix",
    "plugin.name",
    "table.include.list",
    "table.exclude.list",
    "slot.name",
    "publication.name",
    "snapshot.mode",
    "tombstones.on.delete",
    "decimal.handling.mode",
    "heartbeat.interval.ms",
    "transforms",
    "key.converter*",
    "value.converter*",
];

fn postgres_cdc(name: &str, p: &mut Props) -> Result<Vec<Capture>, SqlError> {
    let host = p.required("database.hostname", "the PostgreSQL host")?;
    let port = p.str("database.port").unwrap_or_else(|| "5432".into());
    let user = p.required("database.user", "the replication user")?;
    let password = p.str("database.password");
    let db = p.required("database.dbname", "the database")?;
    let server = p
        .str("topic.prefix")
        .or_else(|| p.str("database.server.name"))
        .unwrap_or_else(|| name.to_string());
    p.choice("plugin.name", &["pgoutput"])?;
    let Some(include) = p.get("table.include.list") else {
        return Err(SqlError::new(
            p.at,
            "missing property `table.include.list`: list the captured tables (`schema.table`, comma-separated), so their topics are known",
        ));
    };
    no_patterns(include)?;
    let tables = list(&include.value);
    if let Some(ex) = p.get("table.exclude.list") {
        return Err(SqlError::new(
            ex.key_at,
            "`table.exclude.list` is not needed: only the tables in `table.include.list` are captured",
        ));
    }
    let url = match &password {
        Some(pw) => format!("postgres://{user}:{pw}@{host}:{port}/{db}"),
        None => format!("postgres://{user}@{host}:{port}/{db}"),
    };
    let slot = p.str("slot.name");
    let publication = p.str("publication.name");
    let snapshot = p
        .choice(
            "snapshot.mode",
            &["initial", "never", "no_data", "initial_only"],
        )?
        .map(|m| if m == "no_data" { "never".into() } else { m });
    // Debezium's default is to follow each delete with a tombstone.
    let tombstones = p.boolean("tombstones.on.delete")?.unwrap_or(true);
    let decimal = p.choice("decimal.handling.mode", &["double", "string"])?;
    let heartbeat = p.number("heartbeat.interval.ms")?;
    let many = tables.len() > 1;
    Ok(tables
        .iter()
        .map(|t| {
            let (schema, bare) = t.split_once('.').unwrap_or(("public", t.as_str()));
            let mut body = vec![
                ("type".to_string(), s("postgres-cdc")),
                ("url".into(), s(url.clone())),
                ("name".into(), s(server.clone())),
                ("tables".into(), Y::List(vec![s(t.clone())])),
            ];
            // One source per table, so each needs its own slot and publication.
            let suffix = |base: &str| {
                if many {
                    format!("{base}_{bare}")
                } else {
                    base.to_string()
                }
            };
            if let Some(slot) = &slot {
                body.push(("slot".into(), s(suffix(slot))));
            }
            if let Some(publication) = &publication {
                body.push(("publication".into(), s(suffix(publication))));
            }
            if let Some(m) = &snapshot {
                body.push(("snapshot".into(), s(m.clone())));
            }
            body.push(("tombstones_on_delete".into(), Y::Bool(tombstones)));
            if let Some(d) = &decimal {
                body.push(("decimal_handling".into(), s(d.clone())));
            }
            if let Some(h) = &heartbeat {
                if h != &super::props::NumberOrVar::Num(0) {
                    body.push(("heartbeat_interval_ms".into(), h.yaml()));
                }
            }
            Capture {
                part: bare.to_string(),
                topic: format!("{server}.{schema}.{bare}"),
                body,
            }
        })
        .collect())
}

const MONGO_PROPS: &[&str] = &[
    "connector.class",
    "mongodb.connection.string",
    "mongodb.hosts",
    "mongodb.user",
    "mongodb.password",
    "mongodb.name",
    "topic.prefix",
    "collection.include.list",
    "snapshot.mode",
    "tombstones.on.delete",
    "capture.mode",
    "transforms",
    "key.converter*",
    "value.converter*",
];

fn mongodb(name: &str, p: &mut Props) -> Result<Vec<Capture>, SqlError> {
    let uri = match (p.str("mongodb.connection.string"), p.str("mongodb.hosts")) {
        (Some(uri), _) => uri,
        (None, Some(hosts)) => {
            // `rs0/h1:27017,h2:27017` (replica set name first) or `h:27017`.
            let (rs, hosts) = match hosts.split_once('/') {
                Some((rs, h)) => (Some(rs.to_string()), h.to_string()),
                None => (None, hosts),
            };
            let auth = match (p.str("mongodb.user"), p.str("mongodb.password")) {
                (Some(u), Some(pw)) => format!("{u}:{pw}@"),
                (Some(u), None) => format!("{u}@"),
                _ => String::new(),
            };
            match rs {
                Some(rs) => format!("mongodb://{auth}{hosts}/?replicaSet={rs}"),
                None => format!("mongodb://{auth}{hosts}/"),
            }
        }
        (None, None) => {
            return Err(SqlError::new(
                p.at,
                "missing property `mongodb.connection.string` (or `mongodb.hosts`)",
            ))
        }
    };
    let server = p
        .str("topic.prefix")
        .or_else(|| p.str("mongodb.name"))
        .unwrap_or_else(|| name.to_string());
    let Some(include) = p.get("collection.include.list") else {
        return Err(SqlError::new(
            p.at,
            "missing property `collection.include.list`: list the captured collections (`database.collection`, comma-separated), so their topics are known",
        ));
    };
    no_patterns(include)?;
    let mut colls = Vec::new();
    for c in list(&include.value) {
        match c.split_once('.') {
            Some((db, coll)) if !db.is_empty() && !coll.is_empty() => {
                colls.push((db.to_string(), coll.to_string()))
            }
            _ => {
                return Err(SqlError::new(
                    include.value_at,
                    format!("`{c}`: expected `database.collection`"),
                ))
            }
        }
    }
    let snapshot = p
        .choice(
            "snapshot.mode",
            &["initial", "never", "no_data", "initial_only", "when_needed"],
        )?
        .map(|m| if m == "no_data" { "never".into() } else { m });
    let tombstones = p.boolean("tombstones.on.delete")?.unwrap_or(true);
    let full = p.choice(
        "capture.mode",
        &["change_streams_update_full", "change_streams"],
    )?;
    Ok(colls
        .into_iter()
        .map(|(db, coll)| {
            let mut body = vec![
                ("type".to_string(), s("mongodb")),
                ("uri".into(), s(uri.clone())),
                ("database".into(), s(db.clone())),
                ("name".into(), s(server.clone())),
                (
                    "collections".into(),
                    Y::Map(vec![("include".into(), Y::List(vec![s(coll.clone())]))]),
                ),
            ];
            if let Some(m) = &snapshot {
                body.push(("snapshot".into(), s(m.clone())));
            }
            if full.as_deref() == Some("change_streams") {
                body.push(("full_document".into(), s("default")));
            }
            body.push(("tombstones_on_delete".into(), Y::Bool(tombstones)));
            Capture {
                part: coll.clone(),
                topic: format!("{server}.{db}.{coll}"),
                body,
            }
        })
        .collect())
}

const JDBC_SOURCE_PROPS: &[&str] = &[
    "connector.class",
    "connection.url",
    "connection.user",
    "connection.password",
    "mode",
    "incrementing.column.name",
    "timestamp.column.name",
    "table.whitelist",
    "table.include.list",
    "topic.prefix",
    "poll.interval.ms",
    "timestamp.delay.interval.ms",
    "key.converter*",
    "value.converter*",
];

/// `jdbc:postgresql://host[:port]/db[?user=..&password=..]` as a
/// `postgres://` URL with the user and password given separately.
fn jdbc_postgres_url(p: &mut Props) -> Result<(String, &'static str), SqlError> {
    let prop = p
        .get("connection.url")
        .ok_or_else(|| SqlError::new(p.at, "missing property `connection.url`"))?;
    let (scheme, kind, rest) = if let Some(r) = prop.value.strip_prefix("jdbc:postgresql://") {
        ("postgres", "postgres", r)
    } else if let Some(r) = prop.value.strip_prefix("jdbc:mysql://") {
        ("mysql", "mysql", r)
    } else if let Some(r) = prop.value.strip_prefix("jdbc:mariadb://") {
        ("mysql", "mysql", r)
    } else {
        return Err(SqlError::new(
            prop.value_at,
            format!(
                "`connection.url` = '{}': expected jdbc:postgresql://host:port/database (or jdbc:mysql:// for sinks)",
                prop.value
            ),
        ));
    };
    let value_at = prop.value_at;
    let (addr, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut user = p.str("connection.user");
    let mut password = p.str("connection.password");
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        match kv.split_once('=') {
            Some(("user", v)) if user.is_none() => user = Some(v.to_string()),
            Some(("password", v)) if password.is_none() => password = Some(v.to_string()),
            _ => {
                return Err(SqlError::new(
                    value_at,
                    format!(
                    "`connection.url` parameter `{kv}` is not supported; only user and password"
                ),
                ))
            }
        }
    }
    let auth = match (user, password) {
        (Some(u), Some(pw)) => format!("{u}:{pw}@"),
        (Some(u), None) => format!("{u}@"),
        _ => String::new(),
    };
    Ok((format!("{scheme}://{auth}{addr}"), kind))
}

const FILE_SOURCE_PROPS: &[&str] = &[
    "connector.class",
    "file",
    "topic",
    "batch.size",
    "key.converter*",
    "value.converter*",
];

/// Kafka Connect's FileStreamSource: one record per line of `file`, into
/// `topic`. Sluice's `file` source reads the lines as JSON, so a line that is
/// not JSON is a dead letter rather than a string record.
fn file_source(p: &mut Props) -> Result<Vec<Capture>, SqlError> {
    let path = p.required("file", "the file whose lines become records")?;
    let topic = p.required("topic", "the topic the lines are written to")?;
    p.number("batch.size")?;
    Ok(vec![Capture {
        part: topic.clone(),
        topic,
        body: vec![("type".to_string(), s("file")), ("path".into(), s(path))],
    }])
}

fn jdbc_source(p: &mut Props) -> Result<Vec<Capture>, SqlError> {
    let (url, kind) = jdbc_postgres_url(p)?;
    if kind != "postgres" {
        return Err(SqlError::new(
            p.at,
            "the JDBC source reads PostgreSQL only (`jdbc:postgresql://`)",
        ));
    }
    let mode = p
        .choice(
            "mode",
            &["incrementing", "timestamp", "timestamp+incrementing"],
        )?
        .ok_or_else(|| {
            SqlError::new(
                p.at,
                "missing property `mode` (incrementing, timestamp or timestamp+incrementing)",
            )
        })?;
    let inc = p.str("incrementing.column.name");
    let ts = p.get("timestamp.column.name").cloned();
    if let Some(ts) = &ts {
        if ts.value.contains(',') {
            return Err(SqlError::new(
                ts.value_at,
                "`timestamp.column.name`: one column is supported",
            ));
        }
    }
    let tables_prop = p
        .get("table.whitelist")
        .or_else(|| p.get("table.include.list"))
        .ok_or_else(|| {
            SqlError::new(
                p.at,
                "missing property `table.whitelist` (or `table.include.list`): list the polled tables",
            )
        })?;
    no_patterns(tables_prop)?;
    let tables = list(&tables_prop.value);
    let prefix = p.str("topic.prefix").unwrap_or_default();
    let poll = p.number("poll.interval.ms")?;
    let delay = p.number("timestamp.delay.interval.ms")?;
    Ok(tables
        .iter()
        .map(|t| {
            let bare = t.rsplit('.').next().unwrap_or(t).to_string();
            let mut body = vec![
                ("type".to_string(), s("postgres-poll")),
                ("url".into(), s(url.clone())),
                ("tables".into(), Y::List(vec![s(t.clone())])),
                ("mode".into(), s(mode.clone())),
            ];
            if mode != "timestamp" {
                if let Some(c) = &inc {
                    body.push(("incrementing_column".into(), s(c.clone())));
                }
            }
            if mode != "incrementing" {
                if let Some(c) = &ts {
                    body.push(("timestamp_column".into(), s(c.value.clone())));
                }
            }
            if !prefix.is_empty() {
                body.push(("stream_prefix".into(), s(prefix.clone())));
            }
            if let Some(n) = &poll {
                body.push(("poll_interval_ms".into(), n.yaml()));
            }
            if let Some(n) = &delay {
                body.push(("timestamp_delay_ms".into(), n.yaml()));
            }
            Capture {
                part: bare.clone(),
                topic: format!("{prefix}{bare}"),
                body,
            }
        })
        .collect())
}

/// `transforms` and `transforms.<name>.*`: the Debezium unwrap transforms
/// become an `unwrap` stage after the source.
fn transforms(p: &mut Props, debezium: bool) -> Result<Option<Vec<(String, Y)>>, SqlError> {
    let Some(t) = p.get("transforms") else {
        return Ok(None);
    };
    let names = list(&t.value);
    if names.len() != 1 {
        return Err(SqlError::new(
            t.value_at,
            "one transform is supported: the Debezium unwrap (ExtractNewRecordState / ExtractNewDocumentState)",
        ));
    }
    let n = &names[0];
    let type_key = format!("transforms.{n}.type");
    let ty = p
        .get(&type_key)
        .ok_or_else(|| SqlError::new(t.value_at, format!("missing property `{type_key}`")))?;
    if ty.value != RECORD_STATE && ty.value != DOCUMENT_STATE {
        return Err(SqlError::new(
            ty.value_at,
            format!(
                "unknown transform `{}`; supported: {RECORD_STATE}, {DOCUMENT_STATE}",
                ty.value
            ),
        )
        .suggest(&ty.value, [RECORD_STATE, DOCUMENT_STATE]));
    }
    if !debezium {
        return Err(SqlError::new(
            ty.value_at,
            "the unwrap transforms apply to Debezium change events only",
        ));
    }
    let mut params = Vec::new();
    // Debezium's defaults: deletes dropped, incoming tombstones dropped.
    let mode = p
        .choice(
            &format!("transforms.{n}.delete.handling.mode"),
            &["drop", "rewrite", "none"],
        )?
        .unwrap_or_else(|| "drop".into());
    let mode = if mode == "none" {
        "tombstone".into()
    } else {
        mode
    };
    params.push(("delete_handling".to_string(), s(mode)));
    let drop = p
        .boolean(&format!("transforms.{n}.drop.tombstones"))?
        .unwrap_or(true);
    params.push(("drop_tombstones".into(), Y::Bool(drop)));
    if let Some(f) = p.str(&format!("transforms.{n}.add.fields")) {
        params.push(("add_fields".into(), s(f)));
    }
    Ok(Some(params))
}

/// Compiles a `CREATE SINK CONNECTOR`.
pub fn sink(props: &[Prop], at: Pos) -> Result<SinkConnector, Vec<SqlError>> {
    let mut p = Props::new(props, at).map_err(|e| vec![e])?;
    let (class, _) = class(&mut p, SINK_CLASSES, "sink").map_err(|e| vec![e])?;
    p.accept_prefixed(ACCEPTED_PREFIXES);
    let topics = match p.get("topics") {
        Some(t) => (list(&t.value), t.value_at),
        None => {
            let mut errs = vec![SqlError::new(
                at,
                "missing property `topics`: the topics (streams) this connector writes out",
            )];
            if let Some(r) = p.get("topics.regex") {
                errs = vec![SqlError::new(
                    r.key_at,
                    "`topics.regex` is not supported; list the topics in `topics`",
                )];
            }
            return Err(errs);
        }
    };
    let (result, supported) = match class.as_str() {
        ES_SINK => (elasticsearch(&mut p), ES_PROPS),
        S3_SINK => (s3(&mut p), S3_PROPS),
        FILE_SINK => (file_sink(&mut p), FILE_SINK_PROPS),
        _ => (jdbc_sink(&mut p), JDBC_SINK_PROPS),
    };
    let mut errors = Vec::new();
    let built = result.map_err(|e| errors.push(e)).ok();
    errors.extend(p.leftovers(&format!("`{class}`"), supported));
    match built {
        Some((per_topic, body)) if errors.is_empty() => Ok(SinkConnector {
            topics: topics.0,
            topics_at: topics.1,
            per_topic,
            body,
        }),
        _ => Err(errors),
    }
}

const FILE_SINK_PROPS: &[&str] = &[
    "connector.class",
    "topics",
    "file",
    "key.converter*",
    "value.converter*",
];

/// Kafka Connect's FileStreamSink: one line per record, here the value as
/// JSON (what the JsonConverter without schemas writes).
fn file_sink(p: &mut Props) -> Result<(bool, Vec<(String, Y)>), SqlError> {
    let path = p.required("file", "the file the records are appended to")?;
    Ok((
        false,
        vec![("type".to_string(), s("file")), ("path".into(), s(path))],
    ))
}

const ES_PROPS: &[&str] = &[
    "connector.class",
    "topics",
    "connection.url",
    "connection.username",
    "connection.password",
    "key.ignore",
    "schema.ignore",
    "type.name",
    "behavior.on.null.values",
    "batch.size",
    "linger.ms",
    "retry.backoff.ms",
    "read.timeout.ms",
    "key.converter*",
    "value.converter*",
];

fn elasticsearch(p: &mut Props) -> Result<(bool, Vec<(String, Y)>), SqlError> {
    let url = p.required("connection.url", "the Elasticsearch URL")?;
    let url = url.split(',').next().unwrap_or_default().trim().to_string();
    let mut body = vec![
        ("type".to_string(), s("elasticsearch")),
        ("url".into(), s(url)),
        // The connector writes each topic to the index of the same name.
        ("index".into(), s("{topic}")),
    ];
    // key.ignore: ids from topic+partition+offset, which is what Sluice's
    // `position` ids are (deterministic across replays); else the key.
    let ignore = p.boolean("key.ignore")?.unwrap_or(false);
    body.push(("id".into(), s(if ignore { "position" } else { "key" })));
    p.boolean("schema.ignore")?;
    p.str("type.name");
    p.choice("behavior.on.null.values", &["delete"])?;
    if let Some(u) = p.str("connection.username") {
        let pw = p.str("connection.password").unwrap_or_default();
        body.push((
            "auth".into(),
            Y::Map(vec![("username".into(), s(u)), ("password".into(), s(pw))]),
        ));
    }
    for (k, y) in [
        ("batch.size", "max_events"),
        ("linger.ms", "max_ms"),
        ("retry.backoff.ms", "initial_backoff_ms"),
        ("read.timeout.ms", "timeout_ms"),
    ] {
        if let Some(n) = p.number(k)? {
            body.push((y.into(), n.yaml()));
        }
    }
    Ok((true, body))
}

const S3_PROPS: &[&str] = &[
    "connector.class",
    "topics",
    "s3.bucket.name",
    "store.url",
    "s3.region",
    "topics.dir",
    "flush.size",
    "rotate.interval.ms",
    "rotate.schedule.interval.ms",
    "format.class",
    "storage.class",
    "partitioner.class",
    "partition.field.name",
    "path.format",
    "partition.duration.ms",
    "locale",
    "timezone",
    "aws.access.key.id",
    "aws.secret.access.key",
    "s3.path.style.access.enabled",
    "s3.part.size",
    "schema.compatibility",
    "key.converter*",
    "value.converter*",
];

fn s3(p: &mut Props) -> Result<(bool, Vec<(String, Y)>), SqlError> {
    let bucket = p.required("s3.bucket.name", "the bucket")?;
    let mut body = vec![("type".to_string(), s("s3")), ("bucket".into(), s(bucket))];
    if let Some(url) = p.str("store.url") {
        body.push(("endpoint".into(), s(url)));
    }
    if let Some(r) = p.str("s3.region") {
        body.push(("region".into(), s(r)));
    }
    // Sluice names objects after the source an event came from, so topics
    // derived from one source would share names: each topic gets its own
    // sink and directory, `<topics.dir>/<topic>/`.
    let dir = p.str("topics.dir").unwrap_or_else(|| "topics".into());
    let prefix = if dir.is_empty() {
        "{topic}".to_string()
    } else {
        format!("{}/{{topic}}", dir.trim_end_matches('/'))
    };
    body.push(("prefix".into(), s(prefix)));
    if let Some(fmt) = p.get("format.class") {
        let f = match fmt.value.as_str() {
            "io.confluent.connect.s3.format.json.JsonFormat" => "json",
            "io.confluent.connect.s3.format.avro.AvroFormat" => "avro",
            "io.confluent.connect.s3.format.parquet.ParquetFormat" => "parquet",
            other => {
                let known = [
                    "io.confluent.connect.s3.format.json.JsonFormat",
                    "io.confluent.connect.s3.format.avro.AvroFormat",
                    "io.confluent.connect.s3.format.parquet.ParquetFormat",
                ];
                return Err(SqlError::new(
                    fmt.value_at,
                    format!(
                        "unknown `format.class` `{other}`; supported: {}",
                        known.join(", ")
                    ),
                )
                .suggest(other, known));
            }
        };
        body.push(("format".into(), s(f)));
    }
    if let Some(st) = p.get("storage.class") {
        if st.value != "io.confluent.connect.s3.storage.S3Storage" {
            return Err(SqlError::new(
                st.value_at,
                "`storage.class`: only io.confluent.connect.s3.storage.S3Storage",
            ));
        }
    }
    if let Some(n) = p.number("flush.size")? {
        body.push(("flush_size".into(), n.yaml()));
    }
    // Sluice rotates by wall clock since an object's first event (Connect's
    // rotate.schedule.interval.ms); rotate.interval.ms maps onto the same.
    let rotate = match p.number("rotate.interval.ms")? {
        Some(n) => Some(n),
        None => p.number("rotate.schedule.interval.ms")?,
    };
    if let Some(n) = rotate {
        body.push(("rotate_interval_ms".into(), n.yaml()));
    }
    if let Some(part) = p.get("partitioner.class") {
        let value_at = part.value_at;
        match part.value.as_str() {
            "io.confluent.connect.storage.partitioner.DefaultPartitioner" => {}
            "io.confluent.connect.storage.partitioner.FieldPartitioner" => {
                let f = p.required("partition.field.name", "the partition field")?;
                body.push(("partitioner".into(), s("field")));
                body.push(("partition_field".into(), s(f)));
            }
            "io.confluent.connect.storage.partitioner.TimeBasedPartitioner" => {
                let f = p.required("path.format", "the directory template")?;
                body.push(("partitioner".into(), s("time")));
                body.push(("path_format".into(), s(java_path_format(&f))));
                p.number("partition.duration.ms")?;
                p.str("locale");
                p.choice("timezone", &["utc"])?;
            }
            other => {
                return Err(SqlError::new(
                    value_at,
                    format!("unknown `partitioner.class` `{other}`; supported: DefaultPartitioner, FieldPartitioner, TimeBasedPartitioner (io.confluent.connect.storage.partitioner)"),
                ))
            }
        }
    }
    if let Some(k) = p.str("aws.access.key.id") {
        body.push(("access_key_id".into(), s(k)));
    }
    if let Some(k) = p.str("aws.secret.access.key") {
        body.push(("secret_access_key".into(), s(k)));
    }
    if let Some(b) = p.boolean("s3.path.style.access.enabled")? {
        body.push(("path_style".into(), Y::Bool(b)));
    }
    if let Some(n) = p.number("s3.part.size")? {
        body.push(("part_size_bytes".into(), n.yaml()));
    }
    p.str("schema.compatibility");
    Ok((true, body))
}

/// Java's `'year'=YYYY/'month'=MM` as Sluice's `year=%Y/month=%m`.
fn java_path_format(f: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    let chars: Vec<char> = f.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            quoted = !quoted;
            i += 1;
            continue;
        }
        if quoted {
            out.push(c);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&d| d == c).count();
        let token = match c {
            'y' | 'Y' => Some("%Y"),
            'M' => Some("%m"),
            'd' => Some("%d"),
            'H' => Some("%H"),
            _ => None,
        };
        match token {
            Some(t) => out.push_str(t),
            None => out.extend(std::iter::repeat_n(c, run)),
        }
        i += run;
    }
    out
}

const JDBC_SINK_PROPS: &[&str] = &[
    "connector.class",
    "topics",
    "connection.url",
    "connection.user",
    "connection.password",
    "insert.mode",
    "pk.mode",
    "pk.fields",
    "auto.create",
    "auto.evolve",
    "delete.enabled",
    "table.name.format",
    "batch.size",
    "key.converter*",
    "value.converter*",
];

fn jdbc_sink(p: &mut Props) -> Result<(bool, Vec<(String, Y)>), SqlError> {
    let (url, kind) = jdbc_postgres_url(p)?;
    let mut body = vec![("type".to_string(), s(kind)), ("url".into(), s(url))];
    // Connect names the table after the topic by default.
    let table = p
        .str("table.name.format")
        .unwrap_or_else(|| "${topic}".into())
        .replace("${topic}", "{topic}");
    body.push(("table".into(), s(table)));
    if let Some(m) = p.choice("insert.mode", &["insert", "upsert"])? {
        body.push(("mode".into(), s(m)));
    }
    p.choice("pk.mode", &["none", "record_value", "record_key"])?;
    if let Some(f) = p.str("pk.fields") {
        body.push((
            "key_fields".into(),
            Y::List(list(&f).into_iter().map(Y::Str).collect()),
        ));
    }
    for (k, y) in [
        ("auto.create", "auto_create"),
        ("auto.evolve", "auto_evolve"),
        ("delete.enabled", "delete_on_tombstone"),
    ] {
        // Connect's defaults are false for all three; Sluice's are true.
        let v = p.boolean(k)?.unwrap_or(false);
        body.push((y.into(), Y::Bool(v)));
    }
    if let Some(n) = p.number("batch.size")? {
        body.push(("batch_size".into(), n.yaml()));
    }
    Ok((true, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_date_templates_become_strftime() {
        assert_eq!(
            java_path_format("'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH"),
            "year=%Y/month=%m/day=%d/hour=%H"
        );
    }
}
