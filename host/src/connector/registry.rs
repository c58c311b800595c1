//! How the pipeline file names connectors. Each connector folder declares
//! one [`SourceKind`] or [`SinkKind`]; the lists in `sources/mod.rs` and
//! `sinks/mod.rs` are the registry that validation, error messages and the
//! docs check all read, so a new connector is one folder plus one line.

use std::fmt::Debug;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{ConfigIssue, Progress, Sink, Source};

/// Why a connector's section did not deserialize, with the path inside it.
pub type ParseError = serde_path_to_error::Error<serde_json::Error>;

/// What a native connector's client may buffer, as its configuration sizes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientBuffers {
    /// The bound, MiB (rounded up).
    pub mb: u64,
    /// What the bound is made of, for messages.
    pub made_of: &'static str,
    /// The field of the connector's section that sizes it, for messages.
    pub field: &'static str,
}

/// Where a source's downstream processors keep their keyed state when it
/// lives in Kafka (`state: changelog` on a `kafka` source): one compacted
/// changelog topic per stage, partitioned like the source topic, so each
/// partition's state moves with the partition between the processes of a
/// consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogSpec {
    /// Bootstrap brokers.
    pub brokers: String,
    /// The source's TLS and SASL client settings.
    pub security: Vec<(String, String)>,
    /// The source's consumer group: it names the changelog topics.
    pub group_id: String,
    /// The (one) topic the source reads.
    pub topic: String,
}

/// The partitions a `kafka` source with `state: changelog` holds now, each
/// with the assignment count it came with: the stages it feeds take a
/// partition's state over only while the source holds it (see
/// `pipeline/partitioned.rs`). Written by the source on each rebalance.
#[derive(Debug, Default)]
pub struct HeldPartitions {
    held: std::sync::Mutex<std::collections::BTreeMap<i32, u64>>,
}

impl HeldPartitions {
    /// Replaces what is held.
    pub fn set(&self, held: std::collections::BTreeMap<i32, u64>) {
        if let Ok(mut h) = self.held.lock() {
            *h = held;
        }
    }

    /// The assignment `partition` is held under, if it is held.
    pub fn get(&self, partition: i32) -> Option<u64> {
        self.held.lock().ok()?.get(&partition).copied()
    }
}

/// What a source is given when it is built.
pub struct SourceContext<'a> {
    /// The source's name in the pipeline file (also its events' origin).
    pub name: &'a str,
    /// Where it reports how far through bounded input it is.
    pub progress: Arc<Progress>,
    /// Whether its events reach a processor stage (one with state and
    /// timers), directly or through transforms: event time order then
    /// matters, which a source reading several partitions may restore.
    pub reaches_processor: bool,
    /// Under `state: changelog`: where it says which partitions it holds.
    pub held: Option<Arc<HeldPartitions>>,
    /// Whether a stage downstream reads field tables: a source that checks
    /// its values as JSON then builds their tables in the same scan
    /// (`BatchBuilder::index_json`), sparing the stage a second one.
    pub index_json: bool,
}

/// A source connector's validated configuration, which builds the running
/// source.
pub trait SourceConfig: Debug + Send + Sync + CloneSourceConfig {
    /// Checks that serde cannot express (cross-field rules, URL schemes).
    fn check(&self) -> Result<(), ConfigIssue> {
        Ok(())
    }
    /// Makes relative paths relative to the pipeline file's directory.
    fn resolve_paths(&mut self, _base: &Path) {}
    /// Checks that the files it reads exist (after `resolve_paths`), so
    /// `validate` finds a missing input rather than `run`.
    fn check_files(&self) -> Result<(), ConfigIssue> {
        Ok(())
    }
    /// Resolves a custom connector's `plugin:` (a name or a path) with
    /// `resolve`, which applies the pipeline's plugin search path and the
    /// operator's plugin directories. Native connectors have no plugin.
    fn resolve_plugin(
        &mut self,
        _resolve: &dyn Fn(&str) -> Result<std::path::PathBuf, String>,
    ) -> Result<(), ConfigIssue> {
        Ok(())
    }
    /// The hosts it connects to, read from its settings, so a server can
    /// hold a tenant to its host grant. `None`, the default, says it cannot
    /// tell: a server then runs it only for tenants granted every host.
    fn endpoints(&self) -> super::endpoint::Reach {
        None
    }
    /// Settings a server's tenants may not use because they reach the
    /// server's own files, programs or credentials (the operator's host
    /// configuration may; a tenant's file may not).
    fn operator_only(&self) -> Result<(), ConfigIssue> {
        Ok(())
    }
    /// A custom connector's sandbox limits (`limits:`), so they are held to
    /// the operator's ceilings and counted in a tenant's memory quota like a
    /// stage's. Native connectors run no plugin: `None`.
    fn sandbox_limits(&self) -> Option<crate::plugin::Limits> {
        None
    }
    /// The most its native client buffers in the host's memory, when its
    /// configuration can raise that (librdkafka's queues): held to the
    /// operator's `client_buffer_mb` and counted in a tenant's memory quota.
    fn client_buffers(&self) -> Option<ClientBuffers> {
        None
    }
    /// Where the keyed state of the processors it feeds lives, when that is
    /// a changelog topic rather than the local checkpoint.
    fn changelog(&self) -> Option<ChangelogSpec> {
        None
    }
    /// Builds the running source.
    fn build(&self, cx: SourceContext<'_>) -> Result<Box<dyn Source>>;
    /// What identifies this configuration in a checkpoint: a change in it
    /// means the saved position may not fit. By default the `Debug` text
    /// without credentials.
    fn fingerprint_text(&self) -> String {
        super::fingerprint::redacted(&format!("{self:?}"))
    }
}

/// A sink connector's validated configuration, which builds the running sink.
pub trait SinkConfig: Debug + Send + Sync + CloneSinkConfig {
    /// Checks that serde cannot express (cross-field rules, URL schemes).
    fn check(&self) -> Result<(), ConfigIssue> {
        Ok(())
    }
    /// Makes relative paths relative to the pipeline file's directory.
    fn resolve_paths(&mut self, _base: &Path) {}
    /// The file it writes, named in the run summary.
    fn output_path(&self) -> Option<&Path> {
        None
    }
    /// Checks what it needs before it runs (a custom connector's plugin
    /// and grants), so `validate` finds it rather than `run`.
    fn check_files(&self) -> Result<(), ConfigIssue> {
        Ok(())
    }
    /// Resolves a custom connector's `plugin:` (a name or a path) with
    /// `resolve`, which applies the pipeline's plugin search path and the
    /// operator's plugin directories. Native connectors have no plugin.
    fn resolve_plugin(
        &mut self,
        _resolve: &dyn Fn(&str) -> Result<std::path::PathBuf, String>,
    ) -> Result<(), ConfigIssue> {
        Ok(())
    }

    /// The hosts it connects to, read from its settings, so a server can
    /// hold a tenant to its host grant. `None`, the default, says it cannot
    /// tell: a server then runs it only for tenants granted every host.
    fn endpoints(&self) -> super::endpoint::Reach {
        None
    }
    /// Settings a server's tenants may not use because they reach the
    /// server's own files, programs or credentials (the operator's host
    /// configuration may; a tenant's file may not).
    fn operator_only(&self) -> Result<(), ConfigIssue> {
        Ok(())
    }
    /// A custom connector's sandbox limits (`limits:`), so they are held to
    /// the operator's ceilings and counted in a tenant's memory quota like a
    /// stage's. Native connectors run no plugin: `None`.
    fn sandbox_limits(&self) -> Option<crate::plugin::Limits> {
        None
    }
    /// The most its native client buffers in the host's memory, when its
    /// configuration can raise that (librdkafka's queues): held to the
    /// operator's `client_buffer_mb` and counted in a tenant's memory quota.
    fn client_buffers(&self) -> Option<ClientBuffers> {
        None
    }
    /// Builds the running sink named `name`.
    fn build(&self, name: &str) -> Result<Box<dyn Sink>>;
    /// What identifies this configuration in a checkpoint (see
    /// [`SourceConfig::fingerprint_text`]).
    fn fingerprint_text(&self) -> String {
        super::fingerprint::redacted(&format!("{self:?}"))
    }
}

/// A connector as the pipeline file names it (`type: NAME`): the same shape
/// for sources and sinks, told apart by what `parse` builds.
pub struct ConnectorKind<P> {
    /// The `type` value.
    pub name: &'static str,
    /// One line for listings and error messages.
    pub summary: &'static str,
    /// Deserializes the connector's section (without `type`, and for sinks
    /// without `inputs`).
    pub parse: P,
}

/// A source connector in the registry.
pub type SourceKind = ConnectorKind<fn(Value) -> Result<Box<dyn SourceConfig>, ParseError>>;

/// A sink connector in the registry.
pub type SinkKind = ConnectorKind<fn(Value) -> Result<Box<dyn SinkConfig>, ParseError>>;

/// The connector named `type_name` in `registry`.
pub fn find<'a, P>(
    registry: &'a [ConnectorKind<P>],
    type_name: &str,
) -> Option<&'a ConnectorKind<P>> {
    registry.iter().find(|k| k.name == type_name)
}

/// Every `type` value in `registry`, in its order, for messages.
pub fn names<P>(registry: &[ConnectorKind<P>]) -> Vec<&'static str> {
    registry.iter().map(|k| k.name).collect()
}

/// Asserts that every connector in a registry has its reference page
/// `docs/connectors/<dir>/<name>.md` headed `# <name> (<role>)` and linked
/// from `docs/connectors/README.md`, and that every page there names a
/// registered connector.
#[cfg(test)]
pub(crate) fn assert_documented(dir: &str, role: &str, names: &[&str]) {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/connectors");
    let index = std::fs::read_to_string(docs.join("README.md")).expect("docs/connectors/README.md");
    for name in names {
        let page = docs.join(dir).join(format!("{name}.md"));
        let text = std::fs::read_to_string(&page)
            .unwrap_or_else(|e| panic!("{}: {e}; document the `{name}` {role}", page.display()));
        let heading = format!("# {name} ({role})");
        assert_eq!(
            text.lines().next(),
            Some(heading.as_str()),
            "{}",
            page.display()
        );
        assert!(
            index.contains(&format!("{dir}/{name}.md")),
            "docs/connectors/README.md does not link {dir}/{name}.md"
        );
    }
    for entry in std::fs::read_dir(docs.join(dir)).expect("docs/connectors/<dir>") {
        let file = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        let stem = file.trim_end_matches(".md");
        assert!(
            names.contains(&stem),
            "docs/connectors/{dir}/{file} documents no registered {role}"
        );
    }
    let mut unique = names.to_vec();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        names.len(),
        "a {role} type is registered twice"
    );
}

/// [`SourceKind::parse`] for a serde config type.
pub fn parse_source<T>(value: Value) -> Result<Box<dyn SourceConfig>, ParseError>
where
    T: SourceConfig + DeserializeOwned + Clone + 'static,
{
    serde_path_to_error::deserialize::<_, T>(value).map(|c| Box::new(c) as Box<dyn SourceConfig>)
}

/// [`SinkKind::parse`] for a serde config type.
pub fn parse_sink<T>(value: Value) -> Result<Box<dyn SinkConfig>, ParseError>
where
    T: SinkConfig + DeserializeOwned + Clone + 'static,
{
    serde_path_to_error::deserialize::<_, T>(value).map(|c| Box::new(c) as Box<dyn SinkConfig>)
}

/// Cloning a boxed [`SourceConfig`]; implemented for every `Clone` config.
pub trait CloneSourceConfig {
    /// A boxed copy.
    fn clone_box(&self) -> Box<dyn SourceConfig>;
}

impl<T: SourceConfig + Clone + 'static> CloneSourceConfig for T {
    fn clone_box(&self) -> Box<dyn SourceConfig> {
        Box::new(self.clone())
    }
}

impl Clone for Box<dyn SourceConfig> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// Cloning a boxed [`SinkConfig`]; implemented for every `Clone` config.
pub trait CloneSinkConfig {
    /// A boxed copy.
    fn clone_box(&self) -> Box<dyn SinkConfig>;
}

impl<T: SinkConfig + Clone + 'static> CloneSinkConfig for T {
    fn clone_box(&self) -> Box<dyn SinkConfig> {
        Box::new(self.clone())
    }
}

impl Clone for Box<dyn SinkConfig> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}
