//! What a pipeline looked like when a checkpoint was written, and what a
//! rerun does when it has changed since.
//!
//! Every checkpoint records a hash of each source's, sink's and table's
//! configuration (credentials left out) and, per stage, the plugin build
//! (file and SHA-256 prefix) and a hash of its parameters and inputs. On a
//! rerun:
//!
//! - a changed source, sink or table refuses to resume: the saved position
//!   may belong to another file, topic or slot, and resuming could skip or
//!   duplicate data. `sluice run --reset` starts over.
//! - a new plugin build resumes and says so: upgrading a plugin in place is
//!   what checkpoints are for.
//! - changed stage parameters resume with a warning: only events read from
//!   now on see them (an edited `where` does not reprocess old events).
//! - added or removed components are named.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::graph::DEAD_LETTER_SINK;
use crate::config::Pipeline;

/// One stage as a checkpoint remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagePrint {
    /// The plugin as the host names it (file and SHA-256 prefix).
    pub plugin: String,
    /// Hash of its parameters, inputs and tables.
    pub params: String,
}

/// A pipeline as a checkpoint remembers it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Source name → configuration hash.
    pub sources: BTreeMap<String, String>,
    /// Sink name (and `dead-letter`) → configuration hash.
    pub sinks: BTreeMap<String, String>,
    /// Table name → configuration hash.
    #[serde(default)]
    pub tables: BTreeMap<String, String>,
    /// Stage name → plugin and parameters.
    pub stages: BTreeMap<String, StagePrint>,
}

fn hash(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

impl Fingerprint {
    /// The fingerprint of `pipeline`, whose stages' plugins are named
    /// `plugins` (in stage order).
    pub fn of(pipeline: &Pipeline, plugins: &[String]) -> Self {
        let mut sinks: BTreeMap<String, String> = pipeline
            .sinks
            .iter()
            .map(|s| (s.name.clone(), hash(&s.config.fingerprint_text())))
            .collect();
        let dead = pipeline
            .dead_letter
            .as_ref()
            .map_or_else(|| "default".to_string(), |d| d.fingerprint_text());
        sinks.insert(DEAD_LETTER_SINK.to_string(), hash(&dead));
        Self {
            sources: pipeline
                .sources
                .iter()
                .map(|s| (s.name.clone(), hash(&s.config.fingerprint_text())))
                .collect(),
            sinks,
            tables: pipeline
                .tables
                .iter()
                .map(|t| (t.name.clone(), hash(&t.config.identity())))
                .collect(),
            stages: pipeline
                .stages
                .iter()
                .zip(plugins)
                .map(|(s, plugin)| {
                    let params = format!("{:?} {:?} {:?}", s.params, s.inputs, s.tables);
                    (
                        s.name.clone(),
                        StagePrint {
                            plugin: plugin.clone(),
                            params: hash(&params),
                        },
                    )
                })
                .collect(),
        }
    }

    /// As recorded in a checkpoint.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// What changed between a checkpoint's pipeline and this one.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Changes that make resuming unsafe.
    pub refuse: Vec<String>,
    /// Changes a resume handles, with what it does about them.
    pub notes: Vec<String>,
}

/// Compares the pipeline a checkpoint was written by with this one.
pub fn compare(old: &Fingerprint, new: &Fingerprint) -> Changes {
    let mut c = Changes::default();
    for (role, before, after) in [
        ("source", &old.sources, &new.sources),
        ("sink", &old.sinks, &new.sinks),
        ("table", &old.tables, &new.tables),
    ] {
        for (name, hash) in after {
            match before.get(name) {
                Some(h) if h != hash => c.refuse.push(format!(
                    "{role} `{name}`'s configuration changed; its saved position may not fit the new one"
                )),
                Some(_) => {}
                None if role == "source" => c
                    .notes
                    .push(format!("source `{name}` is new: it starts from its beginning")),
                None => c.notes.push(format!(
                    "{role} `{name}` is new: it receives only what is read from now on"
                )),
            }
        }
        for name in before.keys().filter(|n| !after.contains_key(*n)) {
            c.notes.push(format!(
                "{role} `{name}` was removed; its saved position is dropped"
            ));
        }
    }
    for (name, stage) in &new.stages {
        match old.stages.get(name) {
            None => c.notes.push(format!(
                "stage `{name}` is new: it sees only what is read from now on"
            )),
            Some(before) => {
                if before.plugin != stage.plugin {
                    c.notes.push(format!(
                        "stage `{name}`: plugin upgraded from {} to {}; resuming with the new build (events before the checkpoint are not reprocessed)",
                        before.plugin, stage.plugin
                    ));
                }
                if before.params != stage.params {
                    c.notes.push(format!(
                        "stage `{name}`: its params or inputs changed; resuming, so only events read from now on see the change (events before the checkpoint are not reprocessed)"
                    ));
                }
            }
        }
    }
    for name in old.stages.keys().filter(|n| !new.stages.contains_key(*n)) {
        c.notes.push(format!("stage `{name}` was removed"));
    }
    c
}

/// Decides whether a run may resume from checkpoint `id` recorded with
/// `recorded` (`None`: written before fingerprints). Logs what changed and
/// what the run does about it; an error when resuming is unsafe.
pub fn check(recorded: Option<&Value>, id: u64, now: &Fingerprint, state_dir: &str) -> Result<()> {
    let Some(recorded) = recorded else {
        tracing::info!(
            checkpoint = id,
            "the checkpoint predates pipeline fingerprints; changes since it cannot be detected this once"
        );
        return Ok(());
    };
    let old: Fingerprint = match serde_json::from_value(recorded.clone()) {
        Ok(f) => f,
        Err(e) => bail!(
            "checkpoint {id} in {state_dir} has an unreadable pipeline fingerprint ({e}); run `sluice run --reset` to start over"
        ),
    };
    let changes = compare(&old, now);
    let reprocess = changes.notes.iter().any(|n| n.contains("not reprocessed"));
    for note in &changes.notes {
        tracing::warn!(
            checkpoint = id,
            "pipeline changed since the checkpoint: {note}"
        );
    }
    if !changes.refuse.is_empty() {
        bail!(
            "the pipeline changed since checkpoint {id} in {state_dir}: {}. Resuming could skip or repeat data, so this run stops. \
             Put the old configuration back to resume, or start over with `sluice run --reset FILE` (or `sluice reset FILE`), \
             which deletes the checkpoint and saved state and reads every source from its beginning",
            changes.refuse.join("; ")
        );
    }
    if reprocess {
        tracing::warn!(
            "to reprocess everything with the changed pipeline, rerun with `sluice run --reset FILE`"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print() -> Fingerprint {
        let mut f = Fingerprint::default();
        f.sources.insert("in".into(), "a".into());
        f.sinks.insert("out".into(), "b".into());
        f.stages.insert(
            "keep".into(),
            StagePrint {
                plugin: "filter (sha256 1111)".into(),
                params: "p".into(),
            },
        );
        f
    }

    #[test]
    fn the_same_pipeline_has_no_changes_and_a_changed_one_names_each() {
        assert_eq!(compare(&print(), &print()), Changes::default());
        let mut new = print();
        new.sources.insert("in".into(), "z".into());
        new.sinks.insert("extra".into(), "c".into());
        if let Some(s) = new.stages.get_mut("keep") {
            s.plugin = "filter (sha256 2222)".into();
        }
        let c = compare(&print(), &new);
        assert_eq!(c.refuse.len(), 1, "{c:?}");
        assert!(c.refuse[0].contains("source `in`"), "{c:?}");
        assert!(
            c.notes.iter().any(|n| n.contains("sink `extra` is new")),
            "{c:?}"
        );
        assert!(
            c.notes
                .iter()
                .any(|n| n
                    .contains("plugin upgraded from filter (sha256 1111) to filter (sha256 2222)")),
            "{c:?}"
        );
    }
}
