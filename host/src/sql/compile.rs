//! Statements to the pipeline model: streams and tables become the built-in
//! plugins and host tables the YAML examples use, topics that only later
//! statements read stay inside the process. With Kafka configured
//! ([`Options::kafka`]), each stream a `CREATE STREAM ... AS SELECT` makes is
//! written to its topic by a `kafka` sink, and whatever reads it reads that
//! topic through a `kafka` source: the same stages, with Kafka edges.

use std::collections::{BTreeMap, HashSet};

use super::ast::*;
use super::connectors;
use super::error::{Pos, SqlError, SqlErrors};
use super::expr::{self, field};
use super::plan::{Entry, Plan, Y};
use super::props::Props;

/// Where a stream's rows take their event time from.
#[derive(Debug, Clone, PartialEq)]
enum Time {
    /// The event's own timestamp.
    Stamp,
    /// A column of the rows.
    Field(String),
    /// A column that a projection left out.
    Lost(String),
}

/// A stream or table that later statements can name.
#[derive(Debug, Clone)]
struct Rel {
    /// A table (read by lookups only).
    table: bool,
    /// The node producing its rows (a source or stage), or the table's name.
    node: String,
    /// Its columns when known, as users name them, with the field each
    /// reads; `None` when any column may exist (a topic's rows).
    columns: Option<Vec<(String, String)>>,
    /// Its event time.
    time: Time,
    /// A table's key column.
    key: Option<String>,
}

impl Rel {
    fn field_of(&self, col: &str) -> Option<String> {
        match &self.columns {
            None => Some(col.to_string()),
            Some(cols) => cols.iter().find(|(c, _)| c == col).map(|(_, f)| f.clone()),
        }
    }
}

/// A topic: written by a source connector (possibly through an unwrap
/// transform) or by a `CREATE ... AS` statement.
#[derive(Debug, Clone)]
struct Topic {
    /// The node whose output the topic is, once known.
    node: Option<String>,
    /// The source writing it (connector topics).
    source: Option<String>,
    /// The unwrap transform's parameters (connector topics).
    unwrap: Option<Vec<(String, Y)>>,
    /// A table's changelog (not readable as a stream here).
    table: bool,
    /// Where it is defined.
    at: Pos,
}

/// Where the topics between statements live when they are real topics.
#[derive(Debug, Clone, Default)]
pub struct KafkaLink {
    /// Brokers (`host:port[,...]`, or a `${VAR}` filled when the pipeline
    /// loads).
    pub brokers: String,
    /// Schema Registry URL, which `value_format = 'AVRO'` needs.
    pub schema_registry: Option<String>,
}

/// Compiles parsed statements; `name` is the pipeline's name.
pub fn compile(
    stmts: &[Statement],
    name: &str,
    kafka: Option<&KafkaLink>,
) -> Result<Plan, SqlErrors> {
    let opts = Options {
        kafka: kafka.cloned(),
        ..Options::default()
    };
    compile_with(stmts, name, &opts).map(|(plan, _)| plan)
}

/// What an interactive session asks of the compiler besides the statements.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A session may have no sink yet (a file must have one).
    pub sink_optional: bool,
    /// Add a `stdout` sink (envelope format) printing this stream or topic,
    /// and keep only what it needs.
    pub probe: Option<Probe>,
    /// Kafka: the topics of `CREATE STREAM ... AS SELECT` become real
    /// topics between the statements. `None`: they stay in the process.
    pub kafka: Option<KafkaLink>,
}

/// What a push query or `PRINT` prints.
#[derive(Debug, Clone)]
pub enum Probe {
    /// A stream's rows.
    Relation(Ident),
    /// A topic's records, and where the topic is written.
    Topic(String, Pos),
}

/// The name of the sink a probe adds.
pub const PROBE_SINK: &str = "shell_output";

/// Compiles parsed statements, and also returns what they define.
pub fn compile_with(
    stmts: &[Statement],
    name: &str,
    opts: &Options,
) -> Result<(Plan, Catalog), SqlErrors> {
    let mut c = Compiler {
        plan: Plan {
            name: name.to_string(),
            ..Plan::default()
        },
        rels: BTreeMap::new(),
        topics: BTreeMap::new(),
        used: HashSet::new(),
        reserved: HashSet::new(),
        connectors: BTreeMap::new(),
        udfs: Vec::new(),
        errors: Vec::new(),
        kafka: opts.kafka.clone(),
        local: BTreeMap::new(),
    };
    for s in stmts {
        if let Statement::Declare { name, .. } | Statement::CreateAs { name, .. } = s {
            c.reserved.insert(name.name.clone());
        }
    }
    // Functions first: a statement may call one defined further down, as
    // a sink may name a later topic.
    for s in stmts {
        if let Statement::Function {
            name,
            plugin,
            plugin_at,
        } = s
        {
            if let Err(e) = c.function(name, plugin, *plugin_at) {
                c.errors.push(e);
            }
        }
    }
    let mut sinks = Vec::new();
    for s in stmts {
        let result = match s {
            Statement::Connector {
                source: true,
                name,
                props,
            } => c.source_connector(name, props),
            Statement::Connector {
                source: false,
                name,
                props,
            } => {
                // Sinks may name topics of statements further down.
                sinks.push((name, props));
                c.connector_name(name)
            }
            Statement::Declare { table, name, with } => c.declare(*table, name, with),
            Statement::CreateAs {
                table,
                name,
                with,
                query,
            } => c.create_as(*table, name, with, query),
            // Compiled above.
            Statement::Function { .. } => Ok(()),
        };
        if let Err(e) = result {
            c.errors.extend(e);
            c.placeholder(s);
        }
    }
    for (name, props) in sinks {
        if let Err(e) = c.sink_connector(name, props) {
            c.errors.extend(e);
        }
    }
    // A stream's topic that nothing in the file reads is still written to
    // Kafka, but needs no source reading it back.
    c.plan.drop_unread_sources(KAFKA_SOURCE_NOTE);
    if let Some(probe) = &opts.probe {
        match c.probe_node(probe) {
            Ok(node) => {
                let at = match probe {
                    Probe::Relation(id) => id.at,
                    Probe::Topic(_, at) => *at,
                };
                c.used.insert(PROBE_SINK.into());
                c.plan.sinks.push(Compiler::entry(
                    at,
                    "the shell's output".into(),
                    PROBE_SINK.into(),
                    vec![
                        ("type".into(), Y::Str("stdout".into())),
                        ("inputs".into(), Y::List(vec![Y::Str(node)])),
                        ("format".into(), Y::Str("envelope".into())),
                    ],
                ));
                c.plan.keep_only_sink(PROBE_SINK);
            }
            Err(e) => c.errors.push(e),
        }
    }
    // After the probe's sink: a stream it prints is read, so kept.
    c.plan.fuse_projections_into_joins();
    if c.plan.sources.is_empty() && c.errors.is_empty() {
        c.errors.push(SqlError::new(
            Pos { line: 1, col: 1 },
            "no CREATE SOURCE CONNECTOR: a pipeline needs at least one source",
        ));
    }
    if c.plan.sinks.is_empty() && c.errors.is_empty() && !opts.sink_optional {
        c.errors.push(SqlError::new(
            Pos { line: 1, col: 1 },
            "no CREATE SINK CONNECTOR: a pipeline needs at least one sink",
        ));
    }
    if c.errors.is_empty() {
        let catalog = c.catalog(stmts);
        Ok((c.plan, catalog))
    } else {
        Err(SqlErrors(c.errors))
    }
}

/// What the statements define, for `SHOW` and `DESCRIBE`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    /// Streams and tables, in statement order.
    pub relations: Vec<RelationInfo>,
    /// Connectors, in statement order.
    pub connectors: Vec<ConnectorInfo>,
    /// Topics that statements may read (written by a source connector or a
    /// `CREATE STREAM ... AS`), by name.
    pub topics: Vec<String>,
}

/// A stream or table.
#[derive(Debug, Clone, PartialEq)]
pub struct RelationInfo {
    /// Its name.
    pub name: String,
    /// A table rather than a stream.
    pub table: bool,
    /// The topic it reads (declared) or writes (`AS SELECT`).
    pub topic: String,
    /// Its columns, when known (`None`: any column of its topic's rows).
    pub columns: Option<Vec<String>>,
    /// A table's key column.
    pub key: Option<String>,
    /// The statement defining it.
    pub at: Pos,
}

/// A connector.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorInfo {
    /// Its name.
    pub name: String,
    /// A source rather than a sink.
    pub source: bool,
    /// Its `connector.class`.
    pub class: String,
    /// The statement defining it.
    pub at: Pos,
}

type R<T> = Result<T, Vec<SqlError>>;

fn one<T>(e: SqlError) -> R<T> {
    Err(vec![e])
}

struct Compiler {
    plan: Plan,
    rels: BTreeMap<String, Rel>,
    topics: BTreeMap<String, Topic>,
    /// Names taken in the pipeline (sources, stages, tables, sinks).
    used: HashSet<String>,
    /// Stream and table names of the file, kept free for them.
    reserved: HashSet<String>,
    /// Connector names and where they are defined.
    connectors: BTreeMap<String, Pos>,
    /// User-defined functions (`CREATE FUNCTION`), lowercase, in order.
    udfs: Vec<String>,
    errors: Vec<SqlError>,
    /// Kafka, when topics between statements are real topics.
    kafka: Option<KafkaLink>,
    /// With Kafka: the node a `kafka` source reads back from its topic, by
    /// that source. Tables load from the node instead: a topic has no
    /// point at which it is caught up, so stages joining a table fed from
    /// Kafka would not wait for it to load.
    local: BTreeMap<String, String>,
}

/// How the note of a `kafka` source reading a statement's topic begins;
/// such a source is dropped when nothing reads it.
const KAFKA_SOURCE_NOTE: &str = "reads topic";

/// The properties `CREATE STREAM|TABLE` accepts.
const STREAM_PROPS: &[&str] = &[
    "kafka_topic",
    "value_format",
    "key_format",
    "format",
    "timestamp",
    "timestamp_format",
    "key",
    "partitions",
    "replicas",
];

const FORMATS: &[&str] = &[
    "json",
    "json_sr",
    "avro",
    "protobuf",
    "protobuf_nosr",
    "kafka",
];

impl Compiler {
    /// `CREATE FUNCTION name AS 'plugin'`: a `udfs:` entry. The plugin is
    /// a path (relative to the statement file) or the name of a plugin on
    /// the plugin path, as a stage's `plugin:`; the loader checks it, and
    /// its errors point at the quoted text.
    fn function(&mut self, name: &Ident, plugin: &str, plugin_at: Pos) -> Result<(), SqlError> {
        if self.udfs.contains(&name.name) {
            return Err(SqlError::new(
                name.at,
                format!(
                    "function `{}` is defined twice (names are case-insensitive)",
                    name.name.to_uppercase()
                ),
            ));
        }
        if sluice_expr::is_builtin_function(&name.name)
            || expr::is_sql_function(&name.name)
            || expr::AGGREGATES.contains(&name.name.as_str())
        {
            return Err(SqlError::new(
                name.at,
                format!(
                    "`{}` is a built-in function; give the user-defined function another name",
                    name.name.to_uppercase()
                ),
            ));
        }
        if name.name.is_empty()
            || name.name.starts_with(|c: char| c.is_ascii_digit())
            || !name
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(SqlError::new(
                name.at,
                format!(
                    "invalid function name `{}`; expected letters, digits and `_`, not starting with a digit",
                    name.name
                ),
            ));
        }
        self.udfs.push(name.name.clone());
        self.plan.udfs.push(Self::entry(
            plugin_at,
            format!("CREATE FUNCTION {}", name.name.to_uppercase()),
            name.name.clone(),
            vec![("plugin".into(), Y::Str(plugin.to_string()))],
        ));
        Ok(())
    }

    /// The node a probe prints.
    fn probe_node(&mut self, probe: &Probe) -> Result<String, SqlError> {
        match probe {
            Probe::Topic(topic, at) => self.topic_node(topic, None, *at),
            Probe::Relation(id) => match self.rels.get(&id.name) {
                Some(r) if r.table => Err(SqlError::new(
                    id.at,
                    format!(
                        "`{}` is a table: Sluice keeps tables for lookups, so query the stream it is built from",
                        id.name
                    ),
                )),
                Some(r) => Ok(r.node.clone()),
                None => Err(SqlError::new(
                    id.at,
                    format!("unknown stream `{}`", id.name),
                )
                .suggest(&id.name, self.rels.keys().map(String::as_str))),
            },
        }
    }

    fn catalog(&self, stmts: &[Statement]) -> Catalog {
        let mut out = Catalog {
            topics: self
                .topics
                .iter()
                .filter(|(_, t)| !t.table)
                .map(|(n, _)| n.clone())
                .collect(),
            ..Catalog::default()
        };
        for s in stmts {
            match s {
                Statement::Connector {
                    source,
                    name,
                    props,
                } => out.connectors.push(ConnectorInfo {
                    name: name.name.clone(),
                    source: *source,
                    class: props
                        .iter()
                        .find(|p| p.key == "connector.class")
                        .map(|p| p.value.clone())
                        .unwrap_or_default(),
                    at: name.at,
                }),
                Statement::Declare { table, name, with }
                | Statement::CreateAs {
                    table, name, with, ..
                } => {
                    let rel = self.rels.get(&name.name);
                    out.relations.push(RelationInfo {
                        name: name.name.clone(),
                        table: *table,
                        topic: with
                            .iter()
                            .find(|p| p.key == "kafka_topic")
                            .map_or(name.name.clone(), |p| p.value.clone()),
                        columns: rel
                            .and_then(|r| r.columns.as_ref())
                            .map(|c| c.iter().map(|(n, _)| n.clone()).collect()),
                        key: rel.and_then(|r| r.key.clone()),
                        at: name.at,
                    })
                }
                Statement::Function { .. } => {}
            }
        }
        out
    }

    fn valid_name(id: &Ident) -> Result<(), SqlError> {
        if id.name.is_empty()
            || !id
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(SqlError::new(
                id.at,
                format!(
                    "name `{}`: expected letters, digits, `_`, `-` or `.`",
                    id.name
                ),
            ));
        }
        Ok(())
    }

    /// Takes a stream or table name for its node.
    fn claim(&mut self, id: &Ident) -> Result<String, SqlError> {
        Self::valid_name(id)?;
        if !self.used.insert(id.name.clone()) {
            return Err(SqlError::new(
                id.at,
                format!("`{}` is already defined", id.name),
            ));
        }
        Ok(id.name.clone())
    }

    /// A free node name based on `base`.
    fn fresh(&mut self, base: &str) -> String {
        let base: String = base
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "_-.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut name = base.clone();
        let mut n = 2;
        while self.used.contains(&name) || self.reserved.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        self.used.insert(name.clone());
        name
    }

    /// After a failed stream or table statement, its name and topic still
    /// resolve, so statements reading it do not report errors of their own.
    fn placeholder(&mut self, s: &Statement) {
        let (Statement::Declare { table, name, with }
        | Statement::CreateAs {
            table, name, with, ..
        }) = s
        else {
            return;
        };
        let topic = with
            .iter()
            .find(|p| p.key == "kafka_topic")
            .map_or(name.name.clone(), |p| p.value.clone());
        self.rels.entry(name.name.clone()).or_insert(Rel {
            table: *table,
            node: name.name.clone(),
            columns: None,
            time: Time::Stamp,
            key: None,
        });
        if matches!(s, Statement::CreateAs { .. }) {
            self.topics.entry(topic).or_insert(Topic {
                node: Some(name.name.clone()),
                source: None,
                unwrap: None,
                table: *table,
                at: name.at,
            });
        }
    }

    fn connector_name(&mut self, id: &Ident) -> R<()> {
        Self::valid_name(id).map_err(|e| vec![e])?;
        if let Some(prev) = self.connectors.insert(id.name.clone(), id.at) {
            return one(SqlError::new(
                id.at,
                format!(
                    "connector `{}` is already defined at line {}",
                    id.name, prev.line
                ),
            ));
        }
        Ok(())
    }

    fn entry(at: Pos, note: String, name: String, body: Vec<(String, Y)>) -> Entry {
        Entry {
            name,
            at,
            note,
            body,
        }
    }

    fn source_connector(&mut self, id: &Ident, props: &[Prop]) -> R<()> {
        self.connector_name(id)?;
        let conn = connectors::source(&id.name, props, id.at)?;
        let many = conn.captures.len() > 1;
        for cap in conn.captures {
            let base = if many {
                format!("{}_{}", id.name, cap.part)
            } else {
                id.name.clone()
            };
            let node = self.fresh(&base);
            self.plan.sources.push(Self::entry(
                id.at,
                format!("CREATE SOURCE CONNECTOR {} (topic {})", id.name, cap.topic),
                node.clone(),
                cap.body,
            ));
            if let Some(prev) = self.topics.get(&cap.topic) {
                return one(SqlError::new(
                    id.at,
                    format!(
                        "topic `{}` is already written by the statement at line {}",
                        cap.topic, prev.at.line
                    ),
                ));
            }
            self.topics.insert(
                cap.topic,
                Topic {
                    node: None,
                    source: Some(node),
                    unwrap: conn.unwrap.clone(),
                    table: false,
                    at: id.at,
                },
            );
        }
        Ok(())
    }

    /// The node whose output is `topic`; a connector's unwrap stage is
    /// created on first use, named `name` when given.
    fn topic_node(
        &mut self,
        topic: &str,
        name: Option<&Ident>,
        at: Pos,
    ) -> Result<String, SqlError> {
        let Some(t) = self.topics.get(topic).cloned() else {
            let known: Vec<&str> = self.topics.keys().map(String::as_str).collect();
            return Err(SqlError::new(
                at,
                format!(
                    "topic `{topic}` is written by no connector or statement above; without Kafka, Sluice reads only topics its own connectors and statements write (known: {})",
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                ),
            )
            .suggest(topic, known));
        };
        if t.table {
            return Err(SqlError::new(
                at,
                format!("topic `{topic}` is a table's changelog; read the stream the table is built from instead"),
            ));
        }
        if let Some(n) = t.node {
            return Ok(n);
        }
        let source = t.source.unwrap_or_default();
        let node = match t.unwrap {
            None => source,
            Some(params) => {
                let node = match name {
                    Some(id) => self.claim(id)?,
                    None => self.fresh(&format!("{source}_unwrapped")),
                };
                let (at, note) = match name {
                    Some(id) => (
                        id.at,
                        format!(
                            "CREATE STREAM {}: the unwrap transform of topic {topic}",
                            id.name
                        ),
                    ),
                    None => (t.at, format!("the unwrap transform of topic {topic}")),
                };
                self.plan.stages.push(Self::entry(
                    at,
                    note,
                    node.clone(),
                    vec![
                        ("plugin".into(), Y::Str("unwrap".into())),
                        ("inputs".into(), Y::List(vec![Y::Str(source)])),
                        ("params".into(), Y::Map(params)),
                    ],
                ));
                node
            }
        };
        if let Some(t) = self.topics.get_mut(topic) {
            t.node = Some(node.clone());
        }
        Ok(node)
    }

    /// Checks `WITH` of a stream or table; returns (topic, timestamp column).
    fn stream_props(
        &self,
        with: &[Prop],
        at: Pos,
        default_topic: Option<&str>,
    ) -> R<(String, Option<String>)> {
        let mut p = Props::new(with, at).map_err(|e| vec![e])?;
        let mut errors = Vec::new();
        for key in ["value_format", "key_format", "format"] {
            if let Err(e) = p.choice(key, FORMATS) {
                errors.push(e);
            }
        }
        p.str("partitions");
        p.str("replicas");
        p.str("key");
        let topic = match (p.str("kafka_topic"), default_topic) {
            (Some(t), _) => t,
            (None, Some(d)) => d.to_string(),
            (None, None) => {
                errors.push(SqlError::new(
                    at,
                    "missing property `kafka_topic`: the topic this stream reads",
                ));
                String::new()
            }
        };
        let time = p.str("timestamp").map(|t| t.to_lowercase());
        if let Some(f) = p.get("timestamp_format") {
            if !iso_format(&f.value) {
                errors.push(SqlError::new(
                    f.value_at,
                    format!(
                        "timestamp_format '{}' is not supported: event time is read as ISO 8601 (yyyy-MM-dd'T'HH:mm:ss[.SSS][XXX], no zone = UTC) or epoch milliseconds",
                        f.value
                    ),
                ));
            }
        }
        errors.extend(p.leftovers("a stream or table", STREAM_PROPS));
        if errors.is_empty() {
            Ok((topic, time))
        } else {
            Err(errors)
        }
    }

    fn new_rel(&mut self, id: &Ident, rel: Rel) -> R<()> {
        if self.rels.contains_key(&id.name) {
            return one(SqlError::new(
                id.at,
                format!("`{}` is already defined", id.name),
            ));
        }
        self.rels.insert(id.name.clone(), rel);
        Ok(())
    }

    fn declare(&mut self, table: bool, id: &Ident, with: &[Prop]) -> R<()> {
        let (topic, time) = self.stream_props(with, id.at, None)?;
        let key = with
            .iter()
            .find(|p| p.key == "key")
            .map(|p| p.value.to_lowercase());
        let node = self
            .topic_node(&topic, if table { None } else { Some(id) }, id.at)
            .map_err(|e| vec![e])?;
        let time = time.map_or(Time::Stamp, Time::Field);
        if table {
            let name = self.claim(id).map_err(|e| vec![e])?;
            let node = self.local.get(&node).cloned().unwrap_or(node);
            let mut body = vec![("input".to_string(), Y::Str(node))];
            if let Some(k) = &key {
                body.push(("key_field".into(), Y::Str(k.clone())));
            }
            self.plan.tables.push(Self::entry(
                id.at,
                format!("CREATE TABLE {}", id.name),
                name.clone(),
                body,
            ));
            return self.new_rel(
                id,
                Rel {
                    table: true,
                    node: name,
                    columns: None,
                    time,
                    key,
                },
            );
        }
        self.new_rel(
            id,
            Rel {
                table: false,
                node,
                columns: None,
                time,
                key: None,
            },
        )
    }

    fn rel(&self, id: &Ident) -> Result<Rel, SqlError> {
        self.rels.get(&id.name).cloned().ok_or_else(|| {
            SqlError::new(id.at, format!("unknown stream or table `{}`", id.name))
                .suggest(&id.name, self.rels.keys().map(String::as_str))
        })
    }

    fn create_as(&mut self, table: bool, id: &Ident, with: &[Prop], q: &Query) -> R<()> {
        Self::valid_name(id).map_err(|e| vec![e])?;
        if self.rels.contains_key(&id.name) {
            return one(SqlError::new(
                id.at,
                format!("`{}` is already defined", id.name),
            ));
        }
        let (topic, time) = self.stream_props(with, id.at, Some(&id.name))?;
        if let (Some(h), None) = (&q.having, &q.window) {
            return one(SqlError::new(
                h.at,
                "HAVING is supported on windowed aggregates only (CREATE TABLE ... WINDOW ... GROUP BY ... HAVING ...)",
            ));
        }
        if let (Some(p), true) = (&q.partition_by, table || q.join.is_some()) {
            return one(SqlError::new(
                p.at,
                "PARTITION BY is supported on CREATE STREAM ... AS SELECT ... FROM one stream; re-key the stream before joining or aggregating it",
            ));
        }
        let mut rel = match (table, q.window.is_some(), q.join.is_some()) {
            (_, true, true) | (true, false, true) => {
                return one(SqlError::new(
                    q.at,
                    "aggregating a join in one statement is not supported; create the joined stream first",
                ))
            }
            (true, true, false) => self.windowed(id, q)?,
            (true, false, false) => self.latest_table(id, q)?,
            (false, true, _) => {
                return one(SqlError::new(
                    q.at,
                    "a windowed aggregation is a TABLE: write CREATE TABLE ... AS SELECT ... WINDOW ...",
                ))
            }
            (false, false, true) => self.join(id, q)?,
            (false, false, false) => self.transform(id, q)?,
        };
        if let Some(t) = time {
            rel.time = Time::Field(t);
        }
        if let (Some(link), false) = (self.kafka.clone(), rel.table) {
            if !self.topics.contains_key(&topic) {
                rel.node = self.kafka_edge(id, with, &topic, &rel.node, &link)?;
            }
        }
        if let Some(prev) = self.topics.get(&topic) {
            return one(SqlError::new(
                id.at,
                format!(
                    "topic `{topic}` is already written by the statement at line {}",
                    prev.at.line
                ),
            ));
        }
        self.topics.insert(
            topic,
            Topic {
                node: Some(rel.node.clone()),
                source: None,
                unwrap: None,
                table: rel.table,
                at: id.at,
            },
        );
        self.new_rel(id, rel)
    }

    /// With Kafka: a `kafka` sink writing `node`'s rows to `topic`, and a
    /// `kafka` source reading them back, whose name is returned for the
    /// statements that read the stream. The source is in the pipeline's
    /// consumer group, so a restart resumes where the last one committed.
    fn kafka_edge(
        &mut self,
        id: &Ident,
        with: &[Prop],
        topic: &str,
        node: &str,
        link: &KafkaLink,
    ) -> R<String> {
        let brokers = link.brokers.as_str();
        let format = with
            .iter()
            .find(|p| p.key == "value_format" || p.key == "format")
            .map_or(Ok("json"), |p| match p.value.to_lowercase().as_str() {
                "json" => Ok("json"),
                "avro" if link.schema_registry.is_some() => Ok("avro"),
                "avro" => Err(SqlError::new(
                    p.value_at,
                    format!(
                        "value_format AVRO over Kafka needs a Schema Registry for the topic `{topic}`'s schema: add --schema-registry URL (`sluice registry` runs one), or use 'JSON'"
                    ),
                )),
                other => Err(SqlError::new(
                    p.value_at,
                    format!(
                        "value_format `{}` between statements over Kafka is not supported; use 'JSON', or 'AVRO' with --schema-registry URL",
                        other.to_uppercase()
                    ),
                )),
            })
            .map_err(|e| vec![e])?;
        // Avro's schema is derived from the rows (flat, every field
        // nullable) and registered under `<topic>-value`.
        let registry: Vec<(String, Y)> = match (&link.schema_registry, format) {
            (Some(url), "avro") => vec![("schema_registry".into(), Y::Str(url.clone()))],
            _ => Vec::new(),
        };
        let sink = self.fresh(&format!("{}_to_kafka", id.name));
        self.plan.sinks.push(Self::entry(
            id.at,
            format!("CREATE STREAM {} writes topic {topic}", id.name),
            sink,
            vec![
                ("type".into(), Y::Str("kafka".into())),
                ("inputs".into(), Y::List(vec![Y::Str(node.to_string())])),
                ("brokers".into(), Y::Str(brokers.to_string())),
                ("topic".into(), Y::Str(topic.to_string())),
                ("format".into(), Y::Str(format.into())),
            ]
            .into_iter()
            .chain(registry.clone())
            .collect(),
        ));
        let source = self.fresh(&format!("{}_from_kafka", id.name));
        self.plan.sources.push(Self::entry(
            id.at,
            format!("{KAFKA_SOURCE_NOTE} {topic} of CREATE STREAM {}", id.name),
            source.clone(),
            vec![
                ("type".into(), Y::Str("kafka".into())),
                ("brokers".into(), Y::Str(brokers.to_string())),
                ("topics".into(), Y::List(vec![Y::Str(topic.to_string())])),
                (
                    "group_id".into(),
                    Y::Str(format!("sluice-{}", self.plan.name)),
                ),
                ("format".into(), Y::Str(format.into())),
            ]
            .into_iter()
            .chain(registry)
            .chain([
                // The source may subscribe before the sink's first record
                // creates the topic; this makes the subscription create it.
                (
                    "properties".into(),
                    Y::Map(vec![(
                        "allow.auto.create.topics".into(),
                        Y::Str("true".into()),
                    )]),
                ),
            ])
            .collect(),
        ));
        // `SELECT *` with no WHERE has no stage of its own: its rows are
        // those of the stream it reads, which may come from Kafka too.
        let local = self.local.get(node).cloned().unwrap_or(node.to_string());
        self.local.insert(source.clone(), local);
        Ok(source)
    }

    /// Resolves a column of a one-relation query to its field.
    fn column(
        rel: &Rel,
        names: &[&str],
        qualifier: Option<&str>,
        name: &str,
        at: Pos,
    ) -> Result<String, SqlError> {
        if let Some(q) = qualifier {
            if !names.contains(&q) {
                return Err(SqlError::new(at, format!("unknown alias `{q}`"))
                    .suggest(q, names.iter().copied()));
            }
        }
        window_bound(name, at)?;
        rel.field_of(name).ok_or_else(|| {
            let cols: Vec<&str> = rel
                .columns
                .iter()
                .flatten()
                .map(|(c, _)| c.as_str())
                .collect();
            SqlError::new(
                at,
                format!(
                    "`{}` has no column `{name}`; its columns: {}",
                    names[0],
                    cols.join(", ")
                ),
            )
            .suggest(name, cols)
        })
    }

    fn names(r: &Relation) -> Vec<&str> {
        let mut v = vec![r.name.name.as_str()];
        if let Some(a) = &r.alias {
            v.push(a.name.as_str());
        }
        v
    }

    fn stream_input(&self, r: &Relation) -> Result<Rel, SqlError> {
        let rel = self.rel(&r.name)?;
        if rel.table {
            return Err(SqlError::new(
                r.name.at,
                format!(
                    "`{}` is a table; it can be joined to a stream, not read as one",
                    r.name.name
                ),
            ));
        }
        Ok(rel)
    }

    /// `WHERE`'s condition as the expression text a `where` parameter takes.
    fn where_text(&self, q: &Query, rel: &Rel) -> R<Option<String>> {
        let Some(cond) = &q.filter else {
            return Ok(None);
        };
        let names = Self::names(&q.from);
        let text = expr::text(cond, &self.udfs, &mut |qual, name, e| {
            Self::column(rel, &names, qual, name, e.at)
        })
        .map_err(|e| vec![e])?;
        Ok(Some(text))
    }

    /// `WHERE` as a `filter` stage in front of `input`.
    fn where_stage(
        &mut self,
        id: &Ident,
        q: &Query,
        rel: &Rel,
        input: String,
        last: bool,
    ) -> R<String> {
        let (Some(cond), Some(text)) = (&q.filter, self.where_text(q, rel)?) else {
            return Ok(input);
        };
        let node = if last {
            self.claim(id).map_err(|e| vec![e])?
        } else {
            self.fresh(&format!("{}_where", id.name))
        };
        self.plan.stages.push(Self::entry(
            cond.at,
            format!("WHERE of {}", id.name),
            node.clone(),
            vec![
                ("plugin".into(), Y::Str("filter".into())),
                ("inputs".into(), Y::List(vec![Y::Str(input)])),
                (
                    "params".into(),
                    Y::Map(vec![("where".into(), Y::Str(text))]),
                ),
            ],
        ));
        Ok(node)
    }

    /// `CREATE STREAM ... AS SELECT ... [WHERE ...]`: `filter` and/or `project`.
    fn transform(&mut self, id: &Ident, q: &Query) -> R<Rel> {
        let rel = self.stream_input(&q.from).map_err(|e| vec![e])?;
        let names = Self::names(&q.from);
        let star_only = matches!(
            q.items.as_slice(),
            [SelectItem::Star {
                qualifier: None,
                ..
            }]
        );
        if !q.group_by.is_empty() {
            return one(SqlError::new(
                q.at,
                "GROUP BY creates a TABLE: write CREATE TABLE ... AS SELECT ... GROUP BY",
            ));
        }
        // PARTITION BY: the new key, an expression of the input's columns
        // (as in ksqlDB, evaluated before the select list).
        let key = match &q.partition_by {
            Some(p) => Some(
                expr::text(p, &self.udfs, &mut |qual, name, e| {
                    Self::column(&rel, &names, qual, name, e.at)
                })
                .map_err(|e| vec![e])?,
            ),
            None => None,
        };
        // `WHERE` goes into the `project` stage as its `where`: one stage,
        // so events cross into Wasm once (a lone `filter` stage otherwise).
        let condition = self.where_text(q, &rel)?;
        if star_only && key.is_some() {
            let mut params: Vec<(String, Y)> = condition
                .map(|c| ("where".into(), Y::Str(c)))
                .into_iter()
                .collect();
            params.push(("key".into(), Y::Str(key.unwrap_or_default())));
            let node = self.claim(id).map_err(|e| vec![e])?;
            self.plan.stages.push(Self::entry(
                id.at,
                format!("CREATE STREAM {} (PARTITION BY)", id.name),
                node.clone(),
                vec![
                    ("plugin".into(), Y::Str("project".into())),
                    ("inputs".into(), Y::List(vec![Y::Str(rel.node.clone())])),
                    ("params".into(), Y::Map(params)),
                ],
            ));
            return Ok(Rel { node, ..rel });
        }
        if star_only {
            let node = if q.filter.is_some() {
                self.where_stage(id, q, &rel, rel.node.clone(), true)?
            } else {
                // Another name for the same rows: no stage needed.
                rel.node.clone()
            };
            return Ok(Rel { node, ..rel });
        }
        let mut keep_all = false;
        let mut plain: Vec<(String, String)> = Vec::new(); // (output, field)
        let mut computed: Vec<(String, String)> = Vec::new(); // (output, expression)
        let mut errors = Vec::new();
        for (i, item) in q.items.iter().enumerate() {
            match item {
                SelectItem::Star { at, qualifier } => {
                    if let Some(qual) = qualifier {
                        if !names.contains(&qual.as_str()) {
                            errors.push(SqlError::new(*at, format!("unknown alias `{qual}`")));
                        }
                    }
                    keep_all = true;
                }
                SelectItem::Expr { expr: e, alias } => {
                    if let ExprKind::Column { qualifier, name } = &e.kind {
                        match Self::column(&rel, &names, qualifier.as_deref(), name, e.at) {
                            Ok(f) => plain
                                .push((alias.as_ref().map_or(name.clone(), |a| a.name.clone()), f)),
                            Err(err) => errors.push(err),
                        }
                        continue;
                    }
                    let out = alias
                        .as_ref()
                        .map_or(format!("ksql_col_{i}"), |a| a.name.clone());
                    match expr::text(e, &self.udfs, &mut |qual, name, e| {
                        Self::column(&rel, &names, qual, name, e.at)
                    }) {
                        Ok(t) => computed.push((out, t)),
                        Err(err) => errors.push(err),
                    }
                }
            }
        }
        let mut seen = HashSet::new();
        for (out, _) in plain.iter().chain(&computed) {
            if !seen.insert(out.clone()) {
                errors.push(SqlError::new(
                    q.at,
                    format!("column `{out}` is selected twice; rename one with AS"),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        // Renames are spliced without re-serializing; a field read under two
        // names (or renamed onto a kept name) is computed instead.
        let mut select = Vec::new();
        let mut rename = Vec::new();
        let mut set = Vec::new();
        for (out, f) in &plain {
            let uses = plain.iter().filter(|(_, g)| g == f).count();
            if out == f {
                select.push(Y::Str(field(f)));
            } else if uses == 1 && !plain.iter().any(|(o, _)| o == f) && !keep_all {
                select.push(Y::Str(field(f)));
                rename.push((field(f), Y::Str(field(out))));
            } else {
                set.push((field(out), Y::Str(field(f))));
            }
        }
        for (out, t) in &computed {
            set.push((field(out), Y::Str(t.clone())));
        }
        // The condition first, as it runs first.
        let mut params: Vec<(String, Y)> = condition
            .map(|c| ("where".into(), Y::Str(c)))
            .into_iter()
            .collect();
        if !keep_all {
            params.push(("select".to_string(), Y::List(select)));
        }
        if !rename.is_empty() {
            params.push(("rename".into(), Y::Map(rename)));
        }
        if !set.is_empty() {
            params.push(("set".into(), Y::Map(set)));
        }
        if let Some(k) = key {
            params.push(("key".into(), Y::Str(k)));
        }
        let node = self.claim(id).map_err(|e| vec![e])?;
        self.plan.stages.push(Self::entry(
            id.at,
            format!("CREATE STREAM {}", id.name),
            node.clone(),
            vec![
                ("plugin".into(), Y::Str("project".into())),
                ("inputs".into(), Y::List(vec![Y::Str(rel.node.clone())])),
                ("params".into(), Y::Map(params)),
            ],
        ));
        let columns = if keep_all {
            None
        } else {
            Some(
                plain
                    .iter()
                    .map(|(o, _)| (o.clone(), o.clone()))
                    .chain(computed.iter().map(|(o, _)| (o.clone(), o.clone())))
                    .collect(),
            )
        };
        let time = match &rel.time {
            Time::Field(f) if !keep_all => match plain.iter().find(|(_, g)| g == f) {
                Some((o, _)) => Time::Field(o.clone()),
                None => Time::Lost(f.clone()),
            },
            other => other.clone(),
        };
        Ok(Rel {
            table: false,
            node,
            columns,
            time,
            key: None,
        })
    }

    /// The single GROUP BY column, as a field of `rel`.
    fn group_key(&self, q: &Query, rel: &Rel) -> R<(String, String)> {
        let names = Self::names(&q.from);
        match q.group_by.as_slice() {
            [Expr {
                kind: ExprKind::Column { qualifier, name },
                at,
            }] => {
                let f = Self::column(rel, &names, qualifier.as_deref(), name, *at).map_err(|e| vec![e])?;
                Ok((name.clone(), f))
            }
            [] => one(SqlError::new(q.at, "a CREATE TABLE ... AS SELECT needs GROUP BY")),
            [e, ..] => one(SqlError::new(
                e.at,
                "GROUP BY takes one column (grouping by expressions or several columns is not supported yet)",
            )),
        }
    }

    /// The GROUP BY columns of a windowed aggregate (one or several), as
    /// (column, field of `rel`).
    fn group_keys(&self, q: &Query, rel: &Rel) -> R<Vec<(String, String)>> {
        let names = Self::names(&q.from);
        if q.group_by.is_empty() {
            return one(SqlError::new(
                q.at,
                "a CREATE TABLE ... AS SELECT needs GROUP BY",
            ));
        }
        let mut keys: Vec<(String, String)> = Vec::new();
        let mut errors = Vec::new();
        for e in &q.group_by {
            let ExprKind::Column { qualifier, name } = &e.kind else {
                errors.push(SqlError::new(
                    e.at,
                    "GROUP BY takes columns (grouping by expressions is not supported yet)",
                ));
                continue;
            };
            match Self::column(rel, &names, qualifier.as_deref(), name, e.at) {
                Ok(_) if keys.iter().any(|(c, _)| c == name) => errors.push(SqlError::new(
                    e.at,
                    format!("`{name}` is already in the GROUP BY"),
                )),
                Ok(f) => keys.push((name.clone(), f)),
                Err(err) => errors.push(err),
            }
        }
        if errors.is_empty() {
            Ok(keys)
        } else {
            Err(errors)
        }
    }

    /// `CREATE TABLE t AS SELECT k, LATEST_BY_OFFSET(c) ... GROUP BY k`: a
    /// host table keyed by `k`, holding each key's latest row.
    fn latest_table(&mut self, id: &Ident, q: &Query) -> R<Rel> {
        let rel = self.stream_input(&q.from).map_err(|e| vec![e])?;
        let (key_col, key_field) = self.group_key(q, &rel)?;
        let names = Self::names(&q.from);
        let mut columns = Vec::new();
        let mut key_name = key_col.clone();
        let mut errors = Vec::new();
        for item in &q.items {
            let SelectItem::Expr { expr: e, alias } = item else {
                errors.push(SqlError::new(
                    q.at,
                    "`*` is not allowed with GROUP BY; list the key and LATEST_BY_OFFSET(column)s",
                ));
                continue;
            };
            match &e.kind {
                ExprKind::Column { qualifier, name } => {
                    match Self::column(&rel, &names, qualifier.as_deref(), name, e.at) {
                        Ok(f) if f == key_field => {
                            key_name = alias.as_ref().map_or(name.clone(), |a| a.name.clone());
                            columns.push((key_name.clone(), f));
                        }
                        Ok(_) => errors.push(SqlError::new(
                            e.at,
                            format!("`{name}` must be the GROUP BY column or inside LATEST_BY_OFFSET(...)"),
                        )),
                        Err(err) => errors.push(err),
                    }
                }
                ExprKind::Call { name, args, .. } if name == "latest_by_offset" => match args.as_slice() {
                    [Expr { kind: ExprKind::Column { qualifier, name: col }, at }] => {
                        match Self::column(&rel, &names, qualifier.as_deref(), col, *at) {
                            Ok(f) => columns.push((alias.as_ref().map_or(col.clone(), |a| a.name.clone()), f)),
                            Err(err) => errors.push(err),
                        }
                    }
                    _ => errors.push(SqlError::new(e.at, "LATEST_BY_OFFSET takes one column")),
                },
                ExprKind::Call { name, .. } if expr::AGGREGATES.contains(&name.as_str()) => {
                    errors.push(SqlError::new(
                        e.at,
                        format!(
                            "{} without WINDOW is not supported: Sluice aggregates over windows (add WINDOW TUMBLING (SIZE ...)); a table without a window keeps LATEST_BY_OFFSET values",
                            name.to_uppercase()
                        ),
                    ))
                }
                _ => errors.push(SqlError::new(
                    e.at,
                    "a table's columns are its GROUP BY column and LATEST_BY_OFFSET(column)s",
                )),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let from = self
            .local
            .get(&rel.node)
            .cloned()
            .unwrap_or(rel.node.clone());
        let input = self.where_stage(id, q, &rel, from, false)?;
        let name = self.claim(id).map_err(|e| vec![e])?;
        self.plan.tables.push(Self::entry(
            id.at,
            format!("CREATE TABLE {} (LATEST_BY_OFFSET per {key_col})", id.name),
            name.clone(),
            vec![
                ("input".into(), Y::Str(input)),
                ("key_field".into(), Y::Str(key_field)),
            ],
        ));
        Ok(Rel {
            table: true,
            node: name,
            columns: Some(columns),
            time: Time::Stamp,
            key: Some(key_name),
        })
    }

    fn event_time(time: &Time, lateness_ms: u64, at: Pos, what: &str) -> R<Y> {
        let mut body = Vec::new();
        match time {
            Time::Stamp => {}
            Time::Field(f) => body.push(("field".to_string(), Y::Str(f.clone()))),
            Time::Lost(f) => {
                return one(SqlError::new(
                    at,
                    format!("{what} needs event time, which is in column `{f}`, but an earlier SELECT left `{f}` out; select it there"),
                ))
            }
        }
        body.push(("lateness_ms".into(), Y::Int(lateness_ms)));
        Ok(Y::Map(body))
    }

    /// An aggregate call of a windowed select list or HAVING: the plugin's
    /// function and the field it reads (`None` for `COUNT(*)`).
    fn agg_call(
        rel: &Rel,
        names: &[&str],
        e: &Expr,
    ) -> Result<(&'static str, Option<String>), SqlError> {
        let ExprKind::Call { name, args, star } = &e.kind else {
            return Err(SqlError::new(e.at, "expected an aggregate"));
        };
        let func = match name.as_str() {
            "count" => "count",
            "sum" => "sum",
            "avg" => "avg",
            "min" => "min",
            "max" => "max",
            "latest_by_offset" => "latest",
            other => {
                return Err(SqlError::new(
                    e.at,
                    format!(
                        "`{}` is not an aggregate; supported: COUNT, SUM, AVG, MIN, MAX, LATEST_BY_OFFSET",
                        other.to_uppercase()
                    ),
                )
                .suggest(other, expr::AGGREGATES.iter().copied()))
            }
        };
        if func == "count" && *star {
            return Ok((func, None));
        }
        // COUNT(col) counts the events whose `col` is not null.
        match args.as_slice() {
            [Expr {
                kind:
                    ExprKind::Column {
                        qualifier,
                        name: col,
                    },
                at,
            }] if !*star => {
                Self::column(rel, names, qualifier.as_deref(), col, *at).map(|f| (func, Some(f)))
            }
            _ => Err(SqlError::new(
                e.at,
                if func == "count" {
                    "COUNT takes * or one column".to_string()
                } else {
                    format!("{} takes one column", name.to_uppercase())
                },
            )),
        }
    }

    /// `CREATE TABLE ... WINDOW ... GROUP BY k [HAVING ...]`: a
    /// `window-aggregate` stage, then a `filter` stage for HAVING and a
    /// `project` stage when WINDOWSTART / WINDOWEND are renamed or HAVING
    /// needed aggregates the select list does not have.
    fn windowed(&mut self, id: &Ident, q: &Query) -> R<Rel> {
        let rel = self.stream_input(&q.from).map_err(|e| vec![e])?;
        let keys = self.group_keys(q, &rel)?;
        let names = Self::names(&q.from);
        let Some(w) = &q.window else {
            return one(SqlError::new(q.at, "missing WINDOW"));
        };
        let mut aggs: Vec<WindowAgg> = Vec::new();
        let mut columns = vec![
            ("key".to_string(), "key".to_string()),
            ("window_start".into(), "window_start".into()),
            ("window_end".into(), "window_end".into()),
        ];
        if keys.len() > 1 {
            // With several GROUP BY columns, each is a field of the results
            // (and `key` is an object of them).
            columns.extend(keys.iter().map(|(c, f)| (c.clone(), f.clone())));
        }
        // `WINDOWSTART AS name`: (name, window_start) copies.
        let mut copies: Vec<(String, &'static str)> = Vec::new();
        let mut errors = Vec::new();
        for item in &q.items {
            let SelectItem::Expr { expr: e, alias } = item else {
                errors.push(SqlError::new(q.at, "`*` is not allowed with GROUP BY"));
                continue;
            };
            match &e.kind {
                ExprKind::Column { name, qualifier } => {
                    if let (Some(bound), None) = (window_field(name), qualifier) {
                        // The results always carry the bounds; an alias is
                        // a copy under that name.
                        if let Some(a) = alias.as_ref().filter(|a| a.name != bound) {
                            copies.push((a.name.clone(), bound));
                            columns.push((a.name.clone(), a.name.clone()));
                        }
                        continue;
                    }
                    if !keys.iter().any(|(c, _)| c == name) {
                        errors.push(SqlError::new(
                            e.at,
                            format!("`{name}` must be the GROUP BY column or inside an aggregate"),
                        ));
                    }
                }
                ExprKind::Call { .. } => match Self::agg_call(&rel, &names, e) {
                    Ok((func, f)) => {
                        let agg = WindowAgg {
                            func,
                            name: match (alias, &f) {
                                (Some(a), _) => a.name.clone(),
                                (None, Some(f)) => format!("{func}_{f}"),
                                (None, None) => func.to_string(),
                            },
                            field: f,
                            named: alias.is_some(),
                        };
                        columns.push((agg.name.clone(), agg.name.clone()));
                        aggs.push(agg);
                    }
                    Err(err) => errors.push(err),
                },
                _ => errors.push(SqlError::new(
                    e.at,
                    "expected the GROUP BY column or an aggregate",
                )),
            }
        }
        if aggs.is_empty() && errors.is_empty() {
            errors.push(SqlError::new(
                q.at,
                "a windowed table needs an aggregate, e.g. COUNT(*)",
            ));
        }
        let mut hidden = Vec::new();
        let having = match &q.having {
            None => None,
            Some(h) => {
                let mut scope = Having {
                    rel: &rel,
                    names: &names,
                    keys: &keys,
                    columns: &columns,
                    aggs: &mut aggs,
                    hidden: &mut hidden,
                };
                match expr::text_in(h, &mut scope) {
                    Ok(t) => Some((t, h.at)),
                    Err(e) => {
                        errors.push(e);
                        None
                    }
                }
            }
        };
        let mut params = vec![("window".to_string(), Y::Str(w.kind.clone()))];
        match (w.kind.as_str(), w.size_ms, w.advance_ms, w.gap_ms) {
            ("tumbling", Some(size), None, _) => params.push(("size_ms".into(), Y::Int(size))),
            ("hopping", Some(size), Some(adv), _) => {
                params.push(("size_ms".into(), Y::Int(size)));
                params.push(("advance_ms".into(), Y::Int(adv)));
            }
            ("session", None, None, Some(gap)) => params.push(("gap_ms".into(), Y::Int(gap))),
            ("tumbling", ..) => {
                errors.push(SqlError::new(w.at, "WINDOW TUMBLING takes (SIZE n UNIT)"))
            }
            ("hopping", ..) => errors.push(SqlError::new(
                w.at,
                "WINDOW HOPPING takes (SIZE n UNIT, ADVANCE BY n UNIT)",
            )),
            _ => errors.push(SqlError::new(
                w.at,
                "WINDOW SESSION takes (n UNIT), the inactivity gap",
            )),
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        // Names are quoted as the expression language quotes them, which
        // the plugin's lists read too.
        let group_by: Vec<String> = keys.iter().map(|(_, f)| field(f)).collect();
        params.push(("group_by".into(), Y::Str(group_by.join(", "))));
        let aggs: Vec<String> = aggs.iter().map(WindowAgg::param).collect();
        params.push(("aggregates".into(), Y::Str(aggs.join(", "))));
        // EMIT CHANGES: a result after every event, as ksqlDB's table
        // changelog; EMIT FINAL: one when the window closes.
        params.push((
            "emit".into(),
            Y::Str(if q.emit_changes { "update" } else { "close" }.into()),
        ));
        let event_time = Self::event_time(&rel.time, w.grace_ms.unwrap_or(0), w.at, "WINDOW")?;
        let input = self.where_stage(id, q, &rel, rel.node.clone(), false)?;
        // The last stage is named after the table; the one before it gets
        // `_window`, as WHERE's stage gets `_where`.
        let reshape = !copies.is_empty() || !hidden.is_empty();
        let last = self.claim(id).map_err(|e| vec![e])?;
        let window_node = if having.is_none() && !reshape {
            last.clone()
        } else {
            self.fresh(&format!("{}_window", id.name))
        };
        self.plan.stages.push(Self::entry(
            id.at,
            format!(
                "CREATE TABLE {} (WINDOW {})",
                id.name,
                w.kind.to_uppercase()
            ),
            window_node.clone(),
            vec![
                ("plugin".into(), Y::Str("window-aggregate".into())),
                ("inputs".into(), Y::List(vec![Y::Str(input)])),
                ("event_time".into(), event_time),
                ("params".into(), Y::Map(params)),
            ],
        ));
        let mut node = window_node;
        // HAVING is the `project` stage's `where` when there is one (one
        // stage: the results cross into Wasm once), else a `filter`.
        let (having, having_filter) = match having {
            Some(h) if !reshape => (None, Some(h)),
            h => (h.map(|(text, _)| text), None),
        };
        if let Some((text, at)) = having_filter {
            let having_node = last.clone();
            self.plan.stages.push(Self::entry(
                at,
                format!("HAVING of {}", id.name),
                having_node.clone(),
                vec![
                    ("plugin".into(), Y::Str("filter".into())),
                    ("inputs".into(), Y::List(vec![Y::Str(node)])),
                    (
                        "params".into(),
                        Y::Map(vec![("where".into(), Y::Str(text))]),
                    ),
                ],
            ));
            node = having_node;
        }
        if reshape {
            let mut params: Vec<(String, Y)> = having
                .map(|text| ("where".into(), Y::Str(text)))
                .into_iter()
                .collect();
            if !copies.is_empty() {
                params.push((
                    "set".to_string(),
                    Y::Map(
                        copies
                            .iter()
                            .map(|(out, bound)| (field(out), Y::Str(bound.to_string())))
                            .collect(),
                    ),
                ));
            }
            if !hidden.is_empty() {
                // Aggregates computed for HAVING only are not results.
                params.push((
                    "drop".into(),
                    Y::List(hidden.iter().map(|h| Y::Str(field(h))).collect()),
                ));
            }
            self.plan.stages.push(Self::entry(
                id.at,
                format!("CREATE TABLE {} (its columns)", id.name),
                last.clone(),
                vec![
                    ("plugin".into(), Y::Str("project".into())),
                    ("inputs".into(), Y::List(vec![Y::Str(node)])),
                    ("params".into(), Y::Map(params)),
                ],
            ));
            node = last;
        }
        Ok(Rel {
            table: false,
            node,
            columns: Some(columns),
            time: Time::Stamp,
            key: None,
        })
    }

    /// `CREATE STREAM ... AS SELECT ... FROM s JOIN t|s2 ...`.
    fn join(&mut self, id: &Ident, q: &Query) -> R<Rel> {
        let Some(j) = &q.join else {
            return one(SqlError::new(q.at, "missing JOIN"));
        };
        let left = self.stream_input(&q.from).map_err(|e| vec![e])?;
        let right = self.rel(&j.right.name).map_err(|e| vec![e])?;
        let lnames = Self::names(&q.from);
        let rnames = Self::names(&j.right);
        if let Some(f) = &q.filter {
            return one(SqlError::new(
                f.at,
                "WHERE with a JOIN is not supported yet; filter in a statement before or after",
            ));
        }
        if !q.group_by.is_empty() {
            return one(SqlError::new(q.at, "GROUP BY with a JOIN is not supported"));
        }
        // A column: (side, field); 0 is the left (FROM) side.
        let resolve =
            |qual: Option<&str>, name: &str, at: Pos| -> Result<(usize, String), SqlError> {
                match qual {
                    Some(q) if lnames.contains(&q) => {
                        Self::column(&left, &lnames, None, name, at).map(|f| (0, f))
                    }
                    Some(q) if rnames.contains(&q) => {
                        Self::column(&right, &rnames, None, name, at).map(|f| (1, f))
                    }
                    Some(q) => Err(SqlError::new(at, format!("unknown alias `{q}`"))
                        .suggest(q, lnames.iter().chain(&rnames).copied())),
                    None => {
                        window_bound(name, at)?;
                        if let Some(f) = left.field_of(name) {
                            Ok((0, f))
                        } else if let Some(f) = right.field_of(name) {
                            Ok((1, f))
                        } else {
                            Self::column(&left, &lnames, None, name, at).map(|f| (0, f))
                        }
                    }
                }
            };
        // ON l.k = r.k, in either order.
        let (lkey, rkey) =
            match &j.on.kind {
                ExprKind::Binary("=", a, b) => match (&a.kind, &b.kind) {
                    (
                        ExprKind::Column {
                            qualifier: qa,
                            name: na,
                        },
                        ExprKind::Column {
                            qualifier: qb,
                            name: nb,
                        },
                    ) => {
                        let x = resolve(qa.as_deref(), na, a.at).map_err(|e| vec![e])?;
                        let y = resolve(qb.as_deref(), nb, b.at).map_err(|e| vec![e])?;
                        match (x, y) {
                            ((0, l), (1, r)) => ((l, na.clone()), (r, nb.clone())),
                            ((1, r), (0, l)) => ((l, nb.clone()), (r, na.clone())),
                            _ => return one(SqlError::new(
                                j.on.at,
                                "ON must compare a column of each side (qualify them: o.k = c.k)",
                            )),
                        }
                    }
                    _ => return one(SqlError::new(j.on.at, "ON must compare two columns")),
                },
                _ => return one(SqlError::new(j.on.at, "ON must be one equality, a.k = b.k")),
            };
        let table_side = if right.table { "table" } else { "right" };
        let mut fields = Vec::new();
        let mut columns = Vec::new();
        let mut errors = Vec::new();
        for item in &q.items {
            let SelectItem::Expr { expr: e, alias } = item else {
                errors.push(SqlError::new(
                    q.at,
                    "`*` is not supported with a JOIN; list the columns",
                ));
                continue;
            };
            let ExprKind::Column { qualifier, name } = &e.kind else {
                errors.push(SqlError::new(
                    e.at,
                    "a JOIN's select list takes columns only; compute in a following statement",
                ));
                continue;
            };
            match resolve(qualifier.as_deref(), name, e.at) {
                Ok((side, f)) => {
                    let out = alias.as_ref().map_or(name.clone(), |a| a.name.clone());
                    let src = if side == 0 {
                        field(&f)
                    } else {
                        format!("{table_side}.{}", field(&f))
                    };
                    fields.push(if out == f {
                        src
                    } else {
                        format!("{src} as {}", field(&out))
                    });
                    columns.push((out, f, side));
                }
                Err(err) => errors.push(err),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let out_columns: Vec<(String, String)> = columns
            .iter()
            .map(|(o, _, _)| (o.clone(), o.clone()))
            .collect();
        let time = match &left.time {
            Time::Field(f) => match columns.iter().find(|(_, g, side)| *side == 0 && g == f) {
                Some((o, _, _)) => Time::Field(o.clone()),
                None => Time::Lost(f.clone()),
            },
            other => other.clone(),
        };
        let fields = Y::Str(fields.join(", "));
        if right.table {
            if j.within.is_some() {
                return one(SqlError::new(
                    j.at,
                    "WITHIN is for stream-stream joins; a table join needs none",
                ));
            }
            if let Some(k) = &right.key {
                if &rkey.1 != k {
                    return one(SqlError::new(
                        j.on.at,
                        format!("`{}` is keyed by `{k}`; join ON its key", j.right.name.name),
                    ));
                }
            }
            let node = self.claim(id).map_err(|e| vec![e])?;
            self.plan.stages.push(Self::entry(
                id.at,
                format!(
                    "CREATE STREAM {} ({} JOIN table {})",
                    id.name,
                    if j.left { "LEFT" } else { "INNER" },
                    j.right.name.name
                ),
                node.clone(),
                vec![
                    ("plugin".into(), Y::Str("lookup-join".into())),
                    ("inputs".into(), Y::List(vec![Y::Str(left.node.clone())])),
                    ("tables".into(), Y::List(vec![Y::Str(right.node.clone())])),
                    (
                        "params".into(),
                        Y::Map(vec![
                            ("table".into(), Y::Str(right.node.clone())),
                            // One top-level field, read as written: no quoting.
                            ("on".into(), Y::Str(lkey.0.clone())),
                            (
                                "join".into(),
                                Y::Str(if j.left { "left" } else { "inner" }.into()),
                            ),
                            ("fields".into(), fields),
                        ]),
                    ),
                ],
            ));
            return Ok(Rel {
                table: false,
                node,
                columns: Some(out_columns),
                time,
                key: None,
            });
        }
        let Some((within, _)) = j.within else {
            return one(SqlError::new(
                j.at,
                format!(
                    "joining two streams needs WITHIN n UNIT (`{}` is a stream)",
                    j.right.name.name
                ),
            ));
        };
        if left.node == right.node {
            return one(SqlError::new(
                j.at,
                "a stream joined with itself is not supported",
            ));
        }
        for t in [&left.time, &right.time] {
            if let Time::Lost(f) = t {
                return one(SqlError::new(
                    j.at,
                    format!("WITHIN needs event time, which is in column `{f}`, but an earlier SELECT left `{f}` out; select it there"),
                ));
            }
        }
        match (&left.time, &right.time) {
            (Time::Field(a), Time::Field(b)) if a != b => {
                return one(SqlError::new(
                    j.at,
                    format!("the two sides keep event time in different columns (`{a}`, `{b}`); one stage reads one column, so give them the same name"),
                ))
            }
            (Time::Field(_), Time::Stamp) | (Time::Stamp, Time::Field(_)) => {
                return one(SqlError::new(
                    j.at,
                    "one side has a timestamp column and the other uses the event timestamp; declare `timestamp` on both streams",
                ))
            }
            _ => {}
        }
        // Either side may arrive up to the bound (or the grace period) late.
        let event_time =
            Self::event_time(&left.time, j.grace_ms.unwrap_or(within), j.at, "WITHIN")?;
        let mut params = vec![
            ("left".to_string(), Y::Str(left.node.clone())),
            ("right".into(), Y::Str(right.node.clone())),
        ];
        if lkey.0 == rkey.0 {
            params.push(("key".into(), Y::Str(lkey.0.clone())));
        } else {
            params.push(("left_key".into(), Y::Str(lkey.0.clone())));
            params.push(("right_key".into(), Y::Str(rkey.0.clone())));
        }
        params.push(("within_ms".into(), Y::Int(within)));
        params.push((
            "join".into(),
            Y::Str(if j.left { "left" } else { "inner" }.into()),
        ));
        params.push(("fields".into(), fields));
        let node = self.claim(id).map_err(|e| vec![e])?;
        self.plan.stages.push(Self::entry(
            id.at,
            format!(
                "CREATE STREAM {} ({} JOIN stream {} WITHIN)",
                id.name,
                if j.left { "LEFT" } else { "INNER" },
                j.right.name.name
            ),
            node.clone(),
            vec![
                ("plugin".into(), Y::Str("window-join".into())),
                (
                    "inputs".into(),
                    Y::List(vec![Y::Str(left.node.clone()), Y::Str(right.node.clone())]),
                ),
                ("event_time".into(), event_time),
                ("params".into(), Y::Map(params)),
            ],
        ));
        Ok(Rel {
            table: false,
            node,
            columns: Some(out_columns),
            time,
            key: None,
        })
    }

    fn sink_connector(&mut self, id: &Ident, props: &[Prop]) -> R<()> {
        let conn = connectors::sink(props, id.at)?;
        let mut inputs = Vec::new();
        let mut errors = Vec::new();
        for t in &conn.topics {
            match self.topic_node(t, None, conn.topics_at) {
                Ok(n) => inputs.push((t.clone(), n)),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let with_inputs = |body: &[(String, Y)], nodes: Vec<Y>, topic: &str| -> Vec<(String, Y)> {
            let mut out = Vec::new();
            for (k, v) in body {
                let v = match v {
                    Y::Str(s) if s.contains("{topic}") => {
                        let t = if k == "index" {
                            topic.to_lowercase()
                        } else {
                            topic.to_string()
                        };
                        Y::Str(s.replace("{topic}", &t))
                    }
                    other => other.clone(),
                };
                out.push((k.clone(), v));
                if k == "type" {
                    out.push(("inputs".into(), Y::List(nodes.clone())));
                }
            }
            out
        };
        if conn.per_topic {
            let many = inputs.len() > 1;
            for (topic, node) in inputs {
                let name = if many {
                    self.fresh(&format!("{}_{topic}", id.name))
                } else {
                    self.fresh(&id.name)
                };
                let body = with_inputs(&conn.body, vec![Y::Str(node)], &topic);
                self.plan.sinks.push(Self::entry(
                    id.at,
                    format!("CREATE SINK CONNECTOR {} (topic {topic})", id.name),
                    name,
                    body,
                ));
            }
        } else {
            let mut nodes: Vec<Y> = Vec::new();
            for (_, n) in &inputs {
                if !nodes.contains(&Y::Str(n.clone())) {
                    nodes.push(Y::Str(n.clone()));
                }
            }
            let name = self.fresh(&id.name);
            let body = with_inputs(&conn.body, nodes, "");
            self.plan.sinks.push(Self::entry(
                id.at,
                format!(
                    "CREATE SINK CONNECTOR {} (topics {})",
                    id.name,
                    conn.topics.join(", ")
                ),
                name,
                body,
            ));
        }
        Ok(())
    }
}

/// One aggregate of a `window-aggregate` stage.
#[derive(Debug, Clone)]
struct WindowAgg {
    /// The plugin's function: `count`, `sum`, ..., `latest`.
    func: &'static str,
    /// The field it reads; `None` for `COUNT(*)`.
    field: Option<String>,
    /// Its name in the results.
    name: String,
    /// Named with `AS` (or for HAVING), so the parameter names it.
    named: bool,
}

impl WindowAgg {
    /// Its entry in the plugin's `aggregates` list.
    fn param(&self) -> String {
        let call = match &self.field {
            None => self.func.to_string(),
            Some(f) => format!("{}({})", self.func, field(f)),
        };
        if self.named {
            format!("{call} as {}", field(&self.name))
        } else {
            call
        }
    }
}

/// What HAVING reads: the results of a window-aggregate stage.
struct Having<'a> {
    rel: &'a Rel,
    names: &'a [&'a str],
    /// The GROUP BY columns, as (column, field of the input).
    keys: &'a [(String, String)],
    /// The results' columns, as (column, field).
    columns: &'a [(String, String)],
    /// The stage's aggregates; HAVING adds those it needs.
    aggs: &'a mut Vec<WindowAgg>,
    /// Aggregates added for HAVING only.
    hidden: &'a mut Vec<String>,
}

impl expr::Names for Having<'_> {
    fn column(
        &mut self,
        qualifier: Option<&str>,
        name: &str,
        e: &Expr,
    ) -> Result<String, SqlError> {
        if let Some(q) = qualifier {
            if !self.names.contains(&q) {
                return Err(SqlError::new(e.at, format!("unknown alias `{q}`"))
                    .suggest(q, self.names.iter().copied()));
            }
        }
        if let (Some(bound), None) = (window_field(name), qualifier) {
            return Ok(bound.to_string());
        }
        if let Some((_, f)) = self.keys.iter().find(|(c, _)| c == name) {
            // Several GROUP BY columns are columns of the results. One is
            // only the results' `key`, as text, where `tier = 1` would be
            // false: its value as the events had it is its latest value.
            return Ok(if self.keys.len() == 1 {
                self.agg_field("latest", Some(f.clone()))
            } else {
                f.clone()
            });
        }
        if let Some((_, f)) = self.columns.iter().find(|(c, _)| c == name) {
            return Ok(f.clone());
        }
        let known: Vec<&str> = self
            .keys
            .iter()
            .chain(self.columns)
            .map(|(c, _)| c.as_str())
            .collect();
        Err(SqlError::new(
            e.at,
            format!(
                "HAVING reads the window's results, which have no column `{name}`; they have: {}, WINDOWSTART, WINDOWEND and aggregates",
                known.join(", ")
            ),
        )
        .suggest(name, known))
    }

    fn aggregate(&mut self, call: &Expr) -> Option<Result<String, SqlError>> {
        Some(
            Compiler::agg_call(self.rel, self.names, call).map(|(func, f)| self.agg_field(func, f)),
        )
    }
}

impl Having<'_> {
    /// The results' field holding an aggregate: the select list's, or one
    /// computed for HAVING under a name no column has, and dropped after it.
    fn agg_field(&mut self, func: &'static str, f: Option<String>) -> String {
        if let Some(a) = self.aggs.iter().find(|a| a.func == func && a.field == f) {
            return a.name.clone();
        }
        let mut n = self.hidden.len();
        let taken = |s: &str, aggs: &[WindowAgg]| {
            self.columns.iter().any(|(c, _)| c == s) || aggs.iter().any(|a| a.name == s)
        };
        let mut name = format!("ksql_having_{n}");
        while taken(&name, self.aggs) {
            n += 1;
            name = format!("ksql_having_{n}");
        }
        self.aggs.push(WindowAgg {
            func,
            field: f,
            name: name.clone(),
            named: true,
        });
        self.hidden.push(name.clone());
        name
    }
}

/// The results' field of WINDOWSTART / WINDOWEND.
fn window_field(name: &str) -> Option<&'static str> {
    match name {
        "windowstart" => Some("window_start"),
        "windowend" => Some("window_end"),
        _ => None,
    }
}

/// Refuses WINDOWSTART / WINDOWEND where no window has bounds: they exist in
/// the select list and HAVING of a windowed aggregate only, which resolve
/// them before asking for a column.
fn window_bound(name: &str, at: Pos) -> Result<(), SqlError> {
    if window_field(name).is_some() {
        return Err(SqlError::new(
            at,
            format!(
                "{} is only available in the select list and HAVING of a windowed aggregate (CREATE TABLE ... WINDOW ... GROUP BY); its results carry `window_start` and `window_end`",
                name.to_uppercase()
            ),
        ));
    }
    Ok(())
}

/// A Java date pattern whose text Sluice's event-time reader parses: ISO
/// 8601 with optional fractions and zone.
fn iso_format(f: &str) -> bool {
    let f = f.trim();
    let base = "yyyy-MM-dd'T'HH:mm:ss";
    let Some(rest) = f.strip_prefix(base) else {
        return false;
    };
    let rest = rest
        .strip_prefix(".SSSSSS")
        .or_else(|| rest.strip_prefix(".SSS"))
        .unwrap_or(rest);
    matches!(rest, "" | "X" | "XXX" | "Z" | "'Z'" | "XX")
}
