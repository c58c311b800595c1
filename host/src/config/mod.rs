//! The pipeline file: its model, and validation that reports every problem
//! with file, line, field and what was expected.
//!
//! Loading goes in three passes: YAML into a tree that keeps locations;
//! each section (settings, every source, stage and sink) deserialized on its
//! own so one mistake does not hide the next; then cross-checks between
//! sections (inputs that exist, no cycles, plugins that resolve).

mod diagnostic;
pub mod host_config;
mod interpolate;
mod model;
mod words;
mod yaml;

pub use diagnostic::{Diagnostic, Diagnostics};
pub use host_config::HostConfig;
pub use interpolate::interpolate;
pub use model::*;
pub use words::closest;
pub use yaml::{parse as parse_yaml, Kind as NodeKind, Location, Node, SyntaxError};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::connector::{ParseError, SinkConfig, SourceConfig};

/// The values `batch_size` may take: a batch's events are reserved up front
/// and each stage holds one while it works.
pub const SETTING_BATCH_SIZE: std::ops::RangeInclusive<usize> = 1..=65_536;

/// The values `channel_capacity` may take: batches waiting on each edge.
pub const SETTING_CHANNEL_CAPACITY: std::ops::RangeInclusive<usize> = 1..=256;

/// Where `plugin: NAME` is looked for, in order, after paths relative to the
/// pipeline file.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Extra plugin directories (from `--plugin-path` / `SLUICE_PLUGIN_PATH`).
    pub plugin_path: Vec<PathBuf>,
    /// Do not check that input files exist (for checking examples whose
    /// data is not beside them).
    pub skip_input_files: bool,
    /// The `${VAR}`s the file may read: names, or prefixes ending in `*`.
    /// `None`: every variable (the host configuration's `env.allow`).
    pub env_allow: Option<Vec<String>>,
    /// Resolved directories that plugin files and `plugin_path` must be in.
    /// `None`: anywhere (the host configuration's `plugins.dirs`).
    pub plugin_dirs: Option<Vec<PathBuf>>,
    /// The named connections a source or sink may name with `connection:`
    /// (a server tenant's). `None`: `connection:` is refused.
    pub connections: Option<std::sync::Arc<BTreeMap<String, Connection>>>,
}

/// A named connection as a pipeline file sees it: settings that fill a
/// source's or sink's body (a `wasm` connector's `params`).
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// The connector type it is for, if only one.
    pub kind: Option<String>,
    /// Every setting, secrets and private file paths included, as the
    /// connector reads them.
    pub fields: serde_json::Map<String, Value>,
}

impl LoadOptions {
    /// Options for a command-line pipeline under the operator's `host`
    /// configuration.
    pub fn for_host(host: &HostConfig, plugin_path: Vec<PathBuf>) -> Self {
        Self {
            plugin_path,
            skip_input_files: false,
            env_allow: host.env.allow.clone(),
            plugin_dirs: host.plugin_dirs(),
            connections: None,
        }
    }

    /// `path` (a plugin file or directory) as it is to be used: resolved
    /// when directories are restricted, so that what was checked is what is
    /// loaded (a symlink on the way cannot be swapped in between); or why it
    /// may not be used.
    fn plugin_dir_check(&self, path: &Path) -> Result<PathBuf, String> {
        let Some(dirs) = self.plugin_dirs.as_ref() else {
            return Ok(path.to_path_buf());
        };
        let real = std::fs::canonicalize(path)
            .map_err(|e| format!("cannot resolve `{}`: {e}", path.display()))?;
        if dirs.iter().any(|d| real.starts_with(d)) {
            return Ok(real);
        }
        let allowed: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        Err(format!(
            "`{}` is outside the directories this host loads plugins from ({}; set by the operator in the host configuration's `plugins.dirs`)",
            real.display(),
            if allowed.is_empty() { "none exist".to_string() } else { allowed.join(", ") }
        ))
    }
}

/// Most problems reported for one section before moving on: each problem
/// costs one more parse of the section, and a hostile file must not make
/// validation quadratic.
const MAX_PROBLEMS_PER_SECTION: usize = 32;

const TOP_LEVEL: &[&str] = &[
    "name",
    "data_dir",
    "batch_size",
    "checkpoint_interval_ms",
    "channel_capacity",
    "fuse_stages",
    "sources",
    "stages",
    "sinks",
    "tables",
    "dead_letter",
    "udfs",
];

/// Loads and validates a pipeline file.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Pipeline, Diagnostics> {
    match load_partial(path, options) {
        (Some(p), d) if d.is_empty() => Ok(p),
        (_, d) => Err(d),
    }
}

/// Loads a pipeline file and returns every problem along with what did
/// load: the sections without problems, so callers can go on checking them
/// (their plugins' parameters) in the same pass.
pub fn load_partial(path: &Path, options: &LoadOptions) -> (Option<Pipeline>, Diagnostics) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return (
                None,
                Diagnostics::one(Diagnostic::new(
                    path,
                    Location::default(),
                    "",
                    format!("cannot read pipeline file: {e}"),
                )),
            )
        }
    };
    load_str_partial(path, &text, options, &|name| std::env::var(name).ok())
}

/// Loads and validates pipeline text (`path` names it in messages and anchors
/// relative paths).
pub fn load_str(
    path: &Path,
    text: &str,
    options: &LoadOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Pipeline, Diagnostics> {
    match load_str_partial(path, text, options, env) {
        (Some(p), d) if d.is_empty() => Ok(p),
        (_, d) => Err(d),
    }
}

/// [`load_str`], returning what loaded along with every problem.
pub fn load_str_partial(
    path: &Path,
    text: &str,
    options: &LoadOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Option<Pipeline>, Diagnostics) {
    let root = match yaml::parse(text) {
        Ok(root) => root,
        Err(e) => {
            return (
                None,
                Diagnostics::one(Diagnostic::new(
                    path,
                    e.at,
                    "",
                    format!("invalid YAML: {}", e.message),
                )),
            )
        }
    };
    let mut cx = Loader {
        file: path.to_path_buf(),
        base: path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
        env,
        env_allow: options.env_allow.clone(),
        diags: Diagnostics::default(),
        unresolved: HashSet::new(),
        unloaded_inputs: Vec::new(),
        doc_page: None,
        options: options.clone(),
    };
    for dir in &options.plugin_path {
        if let Err(why) = options.plugin_dir_check(dir) {
            cx.error(Location::default(), "--plugin-path", why);
        }
    }
    let pipeline = cx.pipeline(&root, options);
    (pipeline, cx.diags)
}

struct Loader<'e> {
    file: PathBuf,
    base: PathBuf,
    env: &'e dyn Fn(&str) -> Option<String>,
    /// See [`LoadOptions::env_allow`].
    env_allow: Option<Vec<String>>,
    diags: Diagnostics,
    /// Dotted fields whose `${VAR}` could not be filled: already reported,
    /// so serde's complaints about them (missing, null) are not.
    unresolved: HashSet<String>,
    /// `inputs` of stages and sinks left out of the pipeline for other
    /// problems (section, name, inputs), still checked against the names.
    unloaded_inputs: Vec<(&'static str, String, Vec<String>)>,
    /// The reference page of the connector being parsed, named in
    /// "missing field" messages.
    doc_page: Option<String>,
    /// Where custom connectors' `plugin:` is looked for and may be.
    options: LoadOptions,
}

/// A section parsed as far as it would go.
struct Parsed<T> {
    /// What parsed once every problem was taken out (defaults in their place).
    value: Option<T>,
    /// No problem was found.
    clean: bool,
}

impl<T> Parsed<T> {
    fn clean(self) -> Option<T> {
        if self.clean {
            self.value
        } else {
            None
        }
    }
}

impl Loader<'_> {
    fn error(&mut self, at: Location, field: &str, message: impl Into<String>) {
        self.diags
            .push(Diagnostic::new(&self.file, at, field, message.into()));
    }

    /// `text` with `${VAR}`s filled in, refusing variables the host does not
    /// let pipeline files read (even with a default: the default would hide
    /// the refusal).
    fn interpolate(&self, text: &str) -> Result<String, String> {
        let Some(allow) = &self.env_allow else {
            return interpolate(text, self.env);
        };
        let denied = std::cell::RefCell::new(None);
        let env = self.env;
        let filled = interpolate(text, &|name| {
            if host_config::env_allowed(allow, name) {
                env(name)
            } else {
                denied.borrow_mut().get_or_insert_with(|| name.to_string());
                None
            }
        });
        match denied.into_inner() {
            Some(name) => Err(format!(
                "`${{{name}}}` is not allowed: this host lets pipeline files read only {} (the operator's `env.allow` in the host configuration)",
                if allow.is_empty() { "no environment variables".to_string() } else { allow.join(", ") }
            )),
            None => filled,
        }
    }

    /// Converts a node to JSON, interpolating environment variables in scalars.
    fn json_of(&mut self, node: &Node, field: &str) -> Value {
        match &node.kind {
            yaml::Kind::Scalar { text, quoted } => match self.interpolate(text) {
                // `"${N}"` is typed like `${N}` would be: quoting is often
                // needed in flow mappings, and the value is what the user meant.
                Ok(t) => yaml::scalar_to_json(&t, *quoted && !is_single_reference(text)),
                Err(msg) => {
                    self.error(node.at, field, msg);
                    self.unresolved.insert(field.to_string());
                    Value::Null
                }
            },
            yaml::Kind::Seq(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, n)| self.json_of(n, &join(field, &i.to_string())))
                    .collect(),
            ),
            yaml::Kind::Map(entries) => {
                let mut map = serde_json::Map::new();
                for (k, v) in entries {
                    let key = k.as_str().unwrap_or_default().to_string();
                    let sub = join(field, &key);
                    let value = self.json_of(v, &sub);
                    // Left out rather than null, so an optional field takes
                    // its default and the one error is the variable's.
                    if !self.unresolved.contains(&sub) {
                        map.insert(key, value);
                    }
                }
                Value::Object(map)
            }
        }
    }

    /// Deserializes one section; the value only when it had no problem.
    fn section<T: DeserializeOwned>(
        &mut self,
        node: &Node,
        field: &str,
        value: Value,
    ) -> Option<T> {
        self.parsed(node, field, value, serde_path_to_error::deserialize::<_, T>)
            .clean()
    }

    /// Deserializes one section and reports every problem in it, each at its
    /// location. serde stops at the first error, so after each one the
    /// offending entry is taken out and the section parsed again.
    fn parsed<T>(
        &mut self,
        node: &Node,
        field: &str,
        mut value: Value,
        parse: impl Fn(Value) -> Result<T, ParseError>,
    ) -> Parsed<T> {
        let mut clean = true;
        let mut removed: HashSet<String> = HashSet::new();
        for _ in 0..MAX_PROBLEMS_PER_SECTION {
            let err = match parse(value.clone()) {
                Ok(v) => {
                    return Parsed {
                        value: Some(v),
                        clean,
                    }
                }
                Err(err) => err,
            };
            clean = false;
            let segments: Vec<String> = err
                .path()
                .iter()
                .filter_map(|s| match s {
                    serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                    serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                    _ => None,
                })
                .collect();
            let inner = err.into_inner().to_string();
            let dotted = segments.iter().fold(field.to_string(), |f, s| join(&f, s));
            // A field that is missing because it was taken out (or its
            // variable was not set) has been reported already.
            let already = match inner.strip_prefix("missing field `") {
                Some(rest) => {
                    let missing = join(&dotted, rest.split('`').next().unwrap_or_default());
                    removed.contains(&missing) || self.unresolved.contains(&missing)
                }
                None => self.unresolved.contains(&dotted),
            };
            if !already {
                // For an unknown field serde's path ends at the field itself;
                // point at its key rather than its value.
                let target = node.locate(&segments);
                let at = match segments.split_last() {
                    Some((last, parent)) if inner.starts_with("unknown field") => {
                        node.locate(parent).key_location(last).unwrap_or(target.at)
                    }
                    _ => target.at,
                };
                let mut message = words::serde_message(&inner);
                if let (true, Some(page)) = (inner.starts_with("missing field"), &self.doc_page) {
                    message.push_str(&format!("; {page} lists the fields"));
                }
                self.error(at, &dotted, message);
            }
            // `pth` suggested `path`; "missing field `path`" would only
            // repeat it.
            if let (Some(fix), Some((_, parent))) =
                (words::unknown_field_fix(&inner), segments.split_last())
            {
                let parent = parent.iter().fold(field.to_string(), |f, s| join(&f, s));
                removed.insert(join(&parent, &fix));
            }
            if !remove_path(&mut value, &segments) {
                break;
            }
            removed.insert(dotted);
        }
        Parsed { value: None, clean }
    }

    fn pipeline(&mut self, root: &Node, options: &LoadOptions) -> Option<Pipeline> {
        let Some(entries) = root.as_map() else {
            self.error(
                root.at,
                "",
                format!(
                    "expected a mapping at the top of the pipeline file, found {}",
                    root.shape()
                ),
            );
            return None;
        };
        for (k, _) in entries {
            let key = k.as_str().unwrap_or_default();
            if !TOP_LEVEL.contains(&key) {
                self.error(
                    k.at,
                    key,
                    format!(
                        "unknown field `{key}`{}",
                        words::with_hint(
                            key,
                            TOP_LEVEL.iter().copied(),
                            &format!("expected one of {}", TOP_LEVEL.join(", "))
                        )
                    ),
                );
            }
        }
        let mut settings_json = serde_json::Map::new();
        for key in [
            "name",
            "data_dir",
            "batch_size",
            "checkpoint_interval_ms",
            "channel_capacity",
            "fuse_stages",
        ] {
            if let Some(n) = root.get(key) {
                let v = self.json_of(n, key);
                settings_json.insert(key.to_string(), v);
            }
        }
        // Settings with problems fall back to defaults, so the rest of the
        // file is still checked in this pass.
        let settings: Option<Settings> = self
            .parsed(
                root,
                "",
                Value::Object(settings_json),
                serde_path_to_error::deserialize,
            )
            .value;

        let sources = self.sources(root);
        let stages = self.stages(root, options);
        let sinks = self.sinks(root);
        let tables = self.tables(root);
        let udfs = self.udfs(root, options);
        let dead_letter = match root.get("dead_letter") {
            None => None,
            Some(node) => self.sink_body(node, "dead_letter", false).map(|(c, _)| c),
        };

        let settings =
            settings.or_else(|| serde_json::from_value(Value::Object(Default::default())).ok())?;
        // What a batch and a channel may hold is memory every run of the
        // file takes; a value past these would let a file make the host
        // reserve more than it has (an allocation failure aborts it).
        for (key, value, range) in [
            ("batch_size", settings.batch_size, SETTING_BATCH_SIZE),
            (
                "channel_capacity",
                settings.channel_capacity,
                SETTING_CHANNEL_CAPACITY,
            ),
        ] {
            if !range.contains(&value) {
                let at = root.get(key).map(|n| n.at).unwrap_or_default();
                self.error(
                    at,
                    key,
                    format!(
                        "{value} is out of range: expected {} to {}",
                        range.start(),
                        range.end()
                    ),
                );
            }
        }
        let name = settings.name.clone().unwrap_or_else(|| {
            self.file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "pipeline".into())
        });
        let data_dir = self
            .base
            .join(settings.data_dir.as_deref().unwrap_or(".sluice"));
        let pipeline = Pipeline {
            file: self.file.clone(),
            name,
            data_dir,
            batch_size: settings.batch_size,
            checkpoint_interval: std::time::Duration::from_millis(settings.checkpoint_interval_ms),
            channel_capacity: settings.channel_capacity,
            fuse_stages: settings.fuse_stages,
            sources,
            stages,
            sinks,
            tables,
            udfs,
            dead_letter,
        };
        self.cross_check(root, &pipeline);
        if !options.skip_input_files {
            self.check_input_files(root, &pipeline);
        }
        Some(pipeline)
    }

    fn named_entries<'n>(&mut self, root: &'n Node, section: &str) -> Vec<(&'n Node, &'n Node)> {
        match root.get(section) {
            None => Vec::new(),
            Some(node) => match node.as_map() {
                Some(entries) => entries.iter().map(|(k, v)| (k, v)).collect(),
                None => {
                    self.error(
                        node.at,
                        section,
                        format!(
                            "expected a mapping of name to {section} definition, found {}",
                            node.shape()
                        ),
                    );
                    Vec::new()
                }
            },
        }
    }

    fn check_name(&mut self, key: &Node, section: &str) -> Option<String> {
        let name = key.as_str().unwrap_or_default();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            self.error(
                key.at,
                section,
                format!("invalid name `{name}`; expected letters, digits, `_`, `-` or `.`"),
            );
            return None;
        }
        Some(name.to_string())
    }

    fn sources(&mut self, root: &Node) -> Vec<SourceDef> {
        let mut out = Vec::new();
        for (key, node) in self.named_entries(root, "sources") {
            let Some(name) = self.check_name(key, "sources") else {
                continue;
            };
            let field = format!("sources.{name}");
            let Some((kind, _)) = self.typed_body(node, &field, &crate::sources::types()) else {
                continue;
            };
            if let Some(config) = self.source_config(node, &field, &kind) {
                out.push(SourceDef {
                    name,
                    config,
                    at: key.at,
                });
            }
        }
        out
    }

    fn source_config(
        &mut self,
        node: &Node,
        field: &str,
        kind: &str,
    ) -> Option<Box<dyn SourceConfig>> {
        let mut body = match self.json_of(node, field) {
            Value::Object(m) => m,
            _ => return None,
        };
        body.remove("type");
        if !self.connect(node, field, kind, &mut body) {
            return None;
        }
        let parse = crate::sources::kind(kind)?.parse;
        self.doc_page = Some(format!("docs/connectors/sources/{kind}.md"));
        let config = self.parsed(node, field, Value::Object(body), parse).clean();
        self.doc_page = None;
        let mut config = config?;
        // Paths first: checks read files (TLS certificates) where they will be.
        config.resolve_paths(&self.base);
        let checked = config
            .resolve_plugin(&|spec| self.connector_plugin(spec))
            .and_then(|()| config.check());
        if let Err(issue) = checked {
            let at = self.anchor_at(node, &issue.anchor);
            self.error(at, &format!("{field}.{}", issue.field), issue.message);
            return None;
        }
        Some(config)
    }

    /// Fills `body` from the named connection its `connection:` names. A
    /// setting the connection gives may not be set again beside it: the
    /// tenant could otherwise keep the connection's password and point
    /// `host` at a server of its own. False when something was reported.
    fn connect(
        &mut self,
        node: &Node,
        field: &str,
        kind: &str,
        body: &mut serde_json::Map<String, Value>,
    ) -> bool {
        let Some(named) = body.remove("connection") else {
            return true;
        };
        let at = node.get("connection").map_or(node.at, |n| n.at);
        let here = format!("{field}.connection");
        let Some(connections) = self.options.connections.clone() else {
            self.error(
                at,
                &here,
                "named connections exist only on a server (`sluice serve`); here, write the settings in the file or read them with `${VAR}`",
            );
            return false;
        };
        let Some(name) = named.as_str() else {
            self.error(at, &here, "expected the name of a connection (a string)");
            return false;
        };
        let Some(conn) = connections.get(name) else {
            let known: Vec<&str> = connections.keys().map(String::as_str).collect();
            let expected = if known.is_empty() {
                "this tenant has no connections (create one with POST /v1/connections)".to_string()
            } else {
                format!("expected one of {}", known.join(", "))
            };
            self.error(
                at,
                &here,
                format!(
                    "unknown connection `{name}`{}",
                    words::with_hint(name, known.iter().copied(), &expected)
                ),
            );
            return false;
        };
        if let Some(want) = conn.kind.as_deref().filter(|w| *w != kind) {
            self.error(
                at,
                &here,
                format!("connection `{name}` is for `{want}` connectors, not `{kind}`"),
            );
            return false;
        }
        // A custom connector reads its settings from `params`.
        let (target, prefix) = if kind == "wasm" {
            let params = body
                .entry("params")
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
            match params {
                Value::Object(m) => (m, "params."),
                _ => return true, // the connector's own parse reports the shape
            }
        } else {
            (body, "")
        };
        let mut clashes = Vec::new();
        for (k, v) in &conn.fields {
            if target.contains_key(k) {
                clashes.push(k.clone());
            } else {
                target.insert(k.clone(), v.clone());
            }
        }
        for k in &clashes {
            let at = if prefix.is_empty() {
                node.get(k)
            } else {
                node.get("params").and_then(|p| p.get(k))
            }
            .map_or(at, |n| n.at);
            self.error(
                at,
                &format!("{field}.{prefix}{k}"),
                format!("`{k}` comes from connection `{name}`; remove it here or use another connection"),
            );
        }
        clashes.is_empty()
    }

    /// Where a connector's problem with `anchor` is shown: at that field,
    /// else at the `connection:` that gave it, else at the body.
    fn anchor_at(&self, node: &Node, anchor: &str) -> Location {
        node.get(anchor)
            .or_else(|| node.get("connection"))
            .map_or(node.at, |n| n.at)
    }

    /// Checks a connector body is a mapping with a known `type`.
    fn typed_body(
        &mut self,
        node: &Node,
        field: &str,
        types: &[&str],
    ) -> Option<(String, serde_json::Map<String, Value>)> {
        if node.as_map().is_none() {
            self.error(
                node.at,
                field,
                format!(
                    "expected a mapping with a `type` field, found {}",
                    node.shape()
                ),
            );
            return None;
        }
        let Some(t) = node.get("type") else {
            self.error(
                node.at,
                &format!("{field}.type"),
                format!("missing field `type`; expected one of {}", types.join(", ")),
            );
            return None;
        };
        let kind = t.as_str().unwrap_or_default().to_string();
        if !types.contains(&kind.as_str()) {
            self.error(
                t.at,
                &format!("{field}.type"),
                format!(
                    "unknown type `{kind}`{} (`sluice connectors` describes each)",
                    words::with_hint(
                        &kind,
                        types.iter().copied(),
                        &format!("expected one of {}", types.join(", "))
                    )
                ),
            );
            return None;
        }
        Some((kind, serde_json::Map::new()))
    }

    fn stages(&mut self, root: &Node, options: &LoadOptions) -> Vec<StageDef> {
        let mut out = Vec::new();
        for (key, node) in self.named_entries(root, "stages") {
            let Some(name) = self.check_name(key, "stages") else {
                continue;
            };
            let field = format!("stages.{name}");
            if node.as_map().is_none() {
                self.error(
                    node.at,
                    &field,
                    format!(
                        "expected a mapping with `plugin` and `inputs`, found {}",
                        node.shape()
                    ),
                );
                continue;
            }
            let value = self.json_of(node, &field);
            let parsed = self.parsed(
                node,
                &field,
                value,
                serde_path_to_error::deserialize::<_, StageConfig>,
            );
            let clean = parsed.clean;
            let Some(config) = parsed.value else {
                continue;
            };
            // Even a stage with other problems has its plugin looked up, so
            // a missing plugin shows in the same pass.
            let plugin_at = node.get("plugin").map_or(node.at, |n| n.at);
            let plugin = match resolve_plugin(&config.plugin, &self.base, &options.plugin_path)
                .and_then(|p| options.plugin_dir_check(&p))
            {
                Ok(p) => p,
                Err(msg) => {
                    self.error(plugin_at, &format!("{field}.plugin"), msg);
                    continue;
                }
            };
            if !clean {
                self.unloaded_inputs.push(("stages", name, config.inputs));
                continue;
            }
            let params = config
                .params
                .iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), text)
                })
                .collect();
            out.push(StageDef {
                name,
                plugin,
                plugin_at,
                params_at: node.get("params").map_or(node.at, |n| n.at),
                inputs: config.inputs,
                params,
                on_error: config.on_error,
                limits: config.limits,
                tables: config.tables,
                event_time: config.event_time,
                at: key.at,
            });
        }
        out
    }

    fn sinks(&mut self, root: &Node) -> Vec<SinkDef> {
        let mut out = Vec::new();
        for (key, node) in self.named_entries(root, "sinks") {
            let Some(name) = self.check_name(key, "sinks") else {
                continue;
            };
            let field = format!("sinks.{name}");
            if let Some((config, inputs)) = self.sink_body(node, &field, true) {
                out.push(SinkDef {
                    name,
                    config,
                    inputs,
                    at: key.at,
                });
            }
        }
        out
    }

    fn sink_body(
        &mut self,
        node: &Node,
        field: &str,
        needs_inputs: bool,
    ) -> Option<(Box<dyn SinkConfig>, Vec<String>)> {
        let (kind, _) = self.typed_body(node, field, &crate::sinks::types())?;
        let mut body = match self.json_of(node, field) {
            Value::Object(m) => m,
            _ => return None,
        };
        body.remove("type");
        if !self.connect(node, field, &kind, &mut body) {
            return None;
        }
        let inputs = if needs_inputs {
            match body.remove("inputs") {
                None => {
                    self.error(
                        node.at,
                        &format!("{field}.inputs"),
                        "missing field `inputs`; expected a list of source or stage names",
                    );
                    return None;
                }
                Some(v) => self.section::<Vec<String>>(node, &format!("{field}.inputs"), v)?,
            }
        } else {
            Vec::new()
        };
        let parse = crate::sinks::kind(&kind)?.parse;
        self.doc_page = Some(format!("docs/connectors/sinks/{kind}.md"));
        let config = self.parsed(node, field, Value::Object(body), parse).clean();
        self.doc_page = None;
        let Some(mut config) = config else {
            if let Some(owner) = field.strip_prefix("sinks.") {
                self.unloaded_inputs
                    .push(("sinks", owner.to_string(), inputs));
            }
            return None;
        };
        // Paths first: checks read files (TLS certificates) where they will be.
        config.resolve_paths(&self.base);
        let checked = config
            .resolve_plugin(&|spec| self.connector_plugin(spec))
            .and_then(|()| config.check());
        if let Err(issue) = checked {
            let at = self.anchor_at(node, &issue.anchor);
            self.error(at, &format!("{field}.{}", issue.field), issue.message);
            if let Some(owner) = field.strip_prefix("sinks.") {
                self.unloaded_inputs
                    .push(("sinks", owner.to_string(), inputs));
            }
            return None;
        }
        Some((config, inputs))
    }

    /// A custom connector's `plugin:` as a file, found like a stage's.
    fn connector_plugin(&self, spec: &str) -> Result<PathBuf, String> {
        resolve_plugin(spec, &self.base, &self.options.plugin_path)
            .and_then(|p| self.options.plugin_dir_check(&p))
    }

    /// `udfs:`: name → `{plugin, limits}`. Names are case-insensitive (as
    /// function names in expressions and SQL are), so two that differ only
    /// in case are one name twice.
    fn udfs(&mut self, root: &Node, options: &LoadOptions) -> Vec<UdfDef> {
        let mut out: Vec<UdfDef> = Vec::new();
        for (key, node) in self.named_entries(root, "udfs") {
            let raw = key.as_str().unwrap_or_default();
            if raw.is_empty()
                || raw.starts_with(|c: char| c.is_ascii_digit())
                || !raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                self.error(
                    key.at,
                    "udfs",
                    format!("invalid function name `{raw}`; expected letters, digits and `_`, not starting with a digit"),
                );
                continue;
            }
            let name = raw.to_ascii_lowercase();
            let field = format!("udfs.{name}");
            if out.iter().any(|u| u.name == name) {
                self.error(
                    key.at,
                    &field,
                    format!("function `{name}` is defined twice (names are case-insensitive)"),
                );
                continue;
            }
            if sluice_expr::is_builtin_function(&name) {
                self.error(
                    key.at,
                    &field,
                    format!("`{name}` is a built-in function of the expression language; give the UDF another name"),
                );
                continue;
            }
            let value = self.json_of(node, &field);
            let Some(config) = self.section::<UdfConfig>(node, &field, value) else {
                continue;
            };
            let plugin_at = node.get("plugin").map_or(node.at, |n| n.at);
            let plugin = match resolve_plugin(&config.plugin, &self.base, &options.plugin_path)
                .and_then(|p| options.plugin_dir_check(&p))
            {
                Ok(p) => Some(p),
                Err(msg) => {
                    self.error(plugin_at, &format!("{field}.plugin"), msg);
                    None
                }
            };
            out.push(UdfDef {
                name,
                plugin,
                plugin_at,
                limits: config.limits,
                at: key.at,
            });
        }
        out
    }

    fn tables(&mut self, root: &Node) -> Vec<TableDef> {
        let mut out = Vec::new();
        for (key, node) in self.named_entries(root, "tables") {
            let Some(name) = self.check_name(key, "tables") else {
                continue;
            };
            let field = format!("tables.{name}");
            let value = self.json_of(node, &field);
            if let Some(config) = self.section::<crate::state::TableConfig>(node, &field, value) {
                out.push(TableDef {
                    name,
                    config,
                    at: key.at,
                });
            }
        }
        out
    }

    /// Every file source's input exists, and every custom connector's
    /// plugin loads with the grants it needs.
    fn check_input_files(&mut self, root: &Node, p: &Pipeline) {
        for source in &p.sources {
            if let Err(issue) = source.config.check_files() {
                let node = root.get("sources").and_then(|s| s.get(&source.name));
                let at = node
                    .and_then(|n| n.get(&issue.anchor))
                    .or(node)
                    .map_or(source.at, |n| n.at);
                self.error(
                    at,
                    &format!("sources.{}.{}", source.name, issue.field),
                    issue.message,
                );
            }
        }
        for sink in &p.sinks {
            if let Err(issue) = sink.config.check_files() {
                let node = root.get("sinks").and_then(|s| s.get(&sink.name));
                let at = node
                    .and_then(|n| n.get(&issue.anchor))
                    .or(node)
                    .map_or(sink.at, |n| n.at);
                self.error(
                    at,
                    &format!("sinks.{}.{}", sink.name, issue.field),
                    issue.message,
                );
            }
        }
    }

    fn cross_check(&mut self, root: &Node, p: &Pipeline) {
        let mut names: HashMap<&str, &str> = HashMap::new();
        let mut dup = Vec::new();
        for (n, kind, at) in p
            .sources
            .iter()
            .map(|s| (s.name.as_str(), "source", s.at))
            .chain(p.stages.iter().map(|s| (s.name.as_str(), "stage", s.at)))
            .chain(p.sinks.iter().map(|s| (s.name.as_str(), "sink", s.at)))
            .chain(p.tables.iter().map(|t| (t.name.as_str(), "table", t.at)))
        {
            if let Some(prev) = names.insert(n, kind) {
                dup.push((n.to_string(), prev, kind, at));
            }
        }
        for (n, prev, kind, at) in dup {
            self.error(
                at,
                n.as_str(),
                format!("the name `{n}` is used by a {prev} and a {kind}; names must be unique"),
            );
        }
        if p.sources.is_empty() && root.get("sources").is_none() {
            self.error(
                root.at,
                "sources",
                "missing field `sources`; a pipeline needs at least one source",
            );
        }
        if p.sinks.is_empty() && root.get("sinks").is_none() {
            self.error(
                root.at,
                "sinks",
                "missing field `sinks`; a pipeline needs at least one sink",
            );
        }
        // Declared names, parsed or not, so one broken entry does not make
        // every reference to it look wrong too.
        let declared = |section: &str| -> Vec<String> {
            root.get(section)
                .and_then(Node::as_map)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, _)| k.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let declared_producers: Vec<String> = declared("sources")
            .into_iter()
            .chain(declared("stages"))
            .collect();
        let producers: HashSet<&str> = declared_producers.iter().map(String::as_str).collect();
        let mut bad_inputs = Vec::new();
        let unloaded = std::mem::take(&mut self.unloaded_inputs);
        for (owner, inputs, section) in p
            .stages
            .iter()
            .map(|s| (s.name.as_str(), &s.inputs, "stages"))
            .chain(
                p.sinks
                    .iter()
                    .map(|s| (s.name.as_str(), &s.inputs, "sinks")),
            )
            .chain(
                unloaded
                    .iter()
                    .map(|(section, name, inputs)| (name.as_str(), inputs, *section)),
            )
        {
            if inputs.is_empty() {
                bad_inputs.push((
                    section,
                    owner.to_string(),
                    "`inputs` is empty; expected at least one source or stage name".to_string(),
                ));
            }
            for i in inputs {
                if !producers.contains(i.as_str()) {
                    let mut known: Vec<&str> = producers.iter().copied().collect();
                    known.sort_unstable();
                    bad_inputs.push((
                        section,
                        owner.to_string(),
                        format!(
                            "unknown input `{i}`{}",
                            words::with_hint(
                                i,
                                known.iter().copied(),
                                &format!("expected one of: {}", known.join(", "))
                            )
                        ),
                    ));
                }
            }
        }
        for t in &p.tables {
            if !producers.contains(t.config.input.as_str()) {
                let mut known: Vec<&str> = producers.iter().copied().collect();
                known.sort_unstable();
                bad_inputs.push((
                    "tables",
                    t.name.clone(),
                    format!(
                        "unknown input `{}`; expected one of: {}",
                        t.config.input,
                        known.join(", ")
                    ),
                ));
            }
        }
        let table_names = declared("tables");
        let mut bad_grants = Vec::new();
        for s in &p.stages {
            for t in &s.tables {
                if !table_names.contains(t) {
                    bad_grants.push((
                        s.name.clone(),
                        format!(
                            "unknown table `{t}`{}",
                            words::with_hint(
                                t,
                                table_names.iter().map(String::as_str),
                                &format!(
                                    "tables in this pipeline: {}",
                                    if table_names.is_empty() {
                                        "none (declare one under `tables:`)".to_string()
                                    } else {
                                        table_names.join(", ")
                                    }
                                )
                            )
                        ),
                    ));
                }
            }
        }
        for (owner, msg) in bad_grants {
            let at = root
                .get("stages")
                .and_then(|s| s.get(&owner))
                .map(|n| n.get("tables").map_or(n.at, |i| i.at))
                .unwrap_or_default();
            self.error(at, &format!("stages.{owner}.tables"), msg);
        }
        for (section, owner, msg) in bad_inputs {
            let at = root
                .get(section)
                .and_then(|s| s.get(&owner))
                .map(|n| {
                    n.get("inputs")
                        .or_else(|| n.get("input"))
                        .map_or(n.at, |i| i.at)
                })
                .unwrap_or_default();
            let field = if section == "tables" {
                "input"
            } else {
                "inputs"
            };
            self.error(at, &format!("{section}.{owner}.{field}"), msg);
        }
        if let Some(cycle) = find_cycle(p) {
            let at = p
                .stages
                .iter()
                .find(|s| s.name == cycle[0])
                .map_or(Location::default(), |s| s.at);
            self.error(
                at,
                "stages",
                format!("stages form a cycle: {}", cycle.join(" -> ")),
            );
        }
    }
}

/// Parses command-line `NAME=VALUE` plugin parameters.
pub fn parse_params(params: &[String]) -> Result<Vec<(String, String)>, String> {
    params
        .iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(format!("--param `{p}`: expected NAME=VALUE")),
        })
        .collect()
}

/// Takes the entry at `path` out of `value`; false when there is nothing
/// to take out (the problem is with the section as a whole).
fn remove_path(value: &mut Value, path: &[String]) -> bool {
    let Some((last, parent)) = path.split_last() else {
        return false;
    };
    let mut node = value;
    for seg in parent {
        node = match node {
            Value::Object(m) => match m.get_mut(seg) {
                Some(v) => v,
                None => return false,
            },
            Value::Array(items) => match seg.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match node {
        Value::Object(m) => m.remove(last).is_some(),
        Value::Array(items) => match last.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

fn is_single_reference(text: &str) -> bool {
    text.starts_with("${") && text.ends_with('}') && text.matches("${").count() == 1
}

fn join(field: &str, key: &str) -> String {
    if field.is_empty() {
        key.to_string()
    } else {
        format!("{field}.{key}")
    }
}

/// Finds a cycle among stages, returned as the names along it.
fn find_cycle(p: &Pipeline) -> Option<Vec<String>> {
    let deps: HashMap<&str, &Vec<String>> = p
        .stages
        .iter()
        .map(|s| (s.name.as_str(), &s.inputs))
        .collect();
    fn visit<'a>(
        n: &'a str,
        deps: &HashMap<&'a str, &'a Vec<String>>,
        path: &mut Vec<&'a str>,
        done: &mut HashSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| *p == n) {
            let mut cycle: Vec<String> = path[i..].iter().map(|s| s.to_string()).collect();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n);
        if let Some(inputs) = deps.get(n) {
            for i in inputs.iter() {
                if deps.contains_key(i.as_str()) {
                    if let Some(c) = visit(i, deps, path, done) {
                        return Some(c);
                    }
                }
            }
        }
        path.pop();
        done.insert(n);
        None
    }
    let mut done = HashSet::new();
    for s in &p.stages {
        let mut path = Vec::new();
        if let Some(c) = visit(&s.name, &deps, &mut path, &mut done) {
            return Some(c);
        }
    }
    None
}

/// The plugins `scripts/build-plugins.sh` builds, which `plugin: NAME` finds
/// by name (keep the two lists the same; a test checks `plugins/`).
pub const BUILTIN_PLUGINS: &[&str] = &[
    "filter",
    "project",
    "mask",
    "unwrap",
    "passthrough",
    "window-aggregate",
    "lookup-join",
    "window-join",
];

/// Resolves `plugin:` to a file: a path (relative to the pipeline file) if it
/// looks like one, else `NAME.wasm` in the plugin search path (`search`,
/// then [`default_plugin_dirs`]).
pub fn resolve_plugin(spec: &str, base: &Path, search: &[PathBuf]) -> Result<PathBuf, String> {
    if spec.ends_with(".wasm") || spec.contains('/') {
        let p = base.join(spec);
        if p.is_file() {
            return Ok(p);
        }
        let stem = spec.trim_end_matches(".wasm");
        let builtin = if !spec.contains('/') && BUILTIN_PLUGINS.contains(&stem) {
            format!("; for the built-in plugin write `plugin: {stem}`")
        } else {
            String::new()
        };
        return Err(format!(
            "plugin file `{spec}` does not exist (a relative path is read from the pipeline file's directory){builtin}"
        ));
    }
    let dirs: Vec<PathBuf> = search
        .iter()
        .cloned()
        .chain(default_plugin_dirs())
        .collect();
    if let Some(p) = find_in(spec, &dirs) {
        return Ok(p);
    }
    let available = plugins_in(&dirs);
    let known: Vec<&str> = BUILTIN_PLUGINS
        .iter()
        .copied()
        .chain(available.iter().map(String::as_str))
        .collect();
    // Where it looked, by role: the directories themselves are usually
    // long absolute paths into a checkout that say less than their role.
    let mut places = Vec::new();
    if !search.is_empty() {
        places.push("--plugin-path");
    }
    if std::env::var_os("SLUICE_PLUGIN_PATH").is_some_and(|v| !v.is_empty()) {
        places.push("$SLUICE_PLUGIN_PATH");
    }
    places.push("the plugins directory beside the sluice binary");
    let fix = if available.is_empty() {
        "No built-in plugins were found there: build them with `scripts/build-plugins.sh` in a Sluice checkout, or add their directory to SLUICE_PLUGIN_PATH".to_string()
    } else {
        format!("Plugins found: {}", available.join(", "))
    };
    Err(format!(
        "plugin `{spec}` not found{}; looked for {spec}.wasm in {}. {fix}. For your own plugin, give the path to its .wasm file (`plugin: ./{spec}.wasm`)",
        closest(spec, known.iter().copied())
            .map(|c| format!(" (did you mean `{c}`?)"))
            .unwrap_or_default(),
        places.join(", "),
    ))
}

/// `NAME.wasm` (or the cargo output name) in the first of `dirs` that has it.
fn find_in(spec: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    for dir in dirs {
        for candidate in [
            format!("{spec}.wasm"),
            format!("sluice_plugin_{}.wasm", spec.replace('-', "_")),
        ] {
            let p = dir.join(&candidate);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// The names of the `.wasm` files in `dirs`, sorted, each once.
pub fn plugins_in(dirs: &[PathBuf]) -> Vec<String> {
    let mut names: Vec<String> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".wasm").map(str::to_string)
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// A plugin given by name or path, for commands that take one
/// (`sluice plugin test filter`): an existing file as given, else the named
/// plugin in the plugin search path.
pub fn plugin_file(spec: &Path) -> Result<PathBuf, String> {
    if spec.is_file() {
        return Ok(spec.to_path_buf());
    }
    let text = spec.to_string_lossy();
    if text.ends_with(".wasm") || text.contains('/') {
        return Err(format!("plugin file `{text}` does not exist"));
    }
    resolve_plugin(&text, Path::new("."), &[])
}

/// `$SLUICE_PLUGIN_PATH` entries, then `plugins/` next to the binary's target dir.
pub fn default_plugin_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("SLUICE_PLUGIN_PATH")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    dirs.extend(builtin_plugin_dirs());
    dirs
}

/// Where the built-in plugins are installed: beside the binary.
pub fn builtin_plugin_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            dirs.push(dir.join("plugins"));
            if let Some(up) = dir.parent() {
                dirs.push(up.join("plugins"));
            }
        }
    }
    dirs
}

#[cfg(test)]
mod doc_snippets;
#[cfg(test)]
mod tests;
