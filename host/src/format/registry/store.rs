//! The embedded registry's state: schemas by id, subjects' versions and
//! compatibility settings, kept in one JSON file written atomically.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use apache_avro::schema::Schema;
use apache_avro::schema_compatibility::SchemaCompatibility;
use serde::{Deserialize, Serialize};

/// A compatibility level (Confluent's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Compatibility {
    /// A new schema must read data written with the latest.
    #[default]
    Backward,
    /// ... with every earlier version.
    BackwardTransitive,
    /// The latest schema must read data written with a new one.
    Forward,
    /// ... every earlier version must.
    ForwardTransitive,
    /// Both directions against the latest.
    Full,
    /// Both directions against every version.
    FullTransitive,
    /// No check.
    None,
}

impl Compatibility {
    /// Parses a level name.
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_ascii_uppercase())).ok()
    }

    /// Its name.
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Why `new` may not follow `versions` (oldest first), if it may not.
    pub fn check(self, new: &Schema, versions: &[Schema]) -> Result<(), String> {
        let (backward, forward, all) = match self {
            Compatibility::None => return Ok(()),
            Compatibility::Backward => (true, false, false),
            Compatibility::BackwardTransitive => (true, false, true),
            Compatibility::Forward => (false, true, false),
            Compatibility::ForwardTransitive => (false, true, true),
            Compatibility::Full => (true, true, false),
            Compatibility::FullTransitive => (true, true, true),
        };
        let against: Vec<&Schema> = if all {
            versions.iter().collect()
        } else {
            versions.last().into_iter().collect()
        };
        for old in against {
            if backward {
                SchemaCompatibility::can_read(old, new).map_err(|e| {
                    format!("the new schema cannot read data written with an existing version (BACKWARD): {e}")
                })?;
            }
            if forward {
                SchemaCompatibility::can_read(new, old).map_err(|e| {
                    format!("an existing version cannot read data written with the new schema (FORWARD): {e}")
                })?;
            }
        }
        Ok(())
    }
}

/// Everything the registry knows.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// Schema text (canonical form) by id; ids start at 1.
    pub schemas: BTreeMap<u32, String>,
    /// Subject → ids of its versions, version 1 first.
    pub subjects: BTreeMap<String, Vec<u32>>,
    /// The global level.
    #[serde(default)]
    pub compatibility: Compatibility,
    /// Per-subject levels.
    #[serde(default)]
    pub subject_compatibility: BTreeMap<String, Compatibility>,
}

/// The state and the file it lives in.
pub struct Store {
    path: PathBuf,
    /// The current state.
    pub state: State,
}

/// What a registration did.
pub enum Registered {
    /// The id (new or existing) and the subject's version holding it.
    Ok { id: u32, version: usize },
    /// The schema does not parse.
    Invalid(String),
    /// It breaks the subject's compatibility level.
    Incompatible(String),
}

impl Store {
    /// Opens (or starts) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the registry directory {}", dir.display()))?;
        let path = dir.join("schemas.json");
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("reading {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(Self { path, state })
    }

    /// Writes the state: temporary file, fsync, rename.
    pub fn save(&self) -> Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(&serde_json::to_vec_pretty(&self.state)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("replacing {}", self.path.display()))?;
        if let Some(dir) = self.path.parent() {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    /// The level in force for `subject`.
    pub fn level(&self, subject: &str) -> Compatibility {
        self.state
            .subject_compatibility
            .get(subject)
            .copied()
            .unwrap_or(self.state.compatibility)
    }

    fn parsed(&self, id: u32) -> Option<Schema> {
        Schema::parse_str(self.state.schemas.get(&id)?).ok()
    }

    /// The version of `subject` holding the same schema as `text`, if any.
    pub fn lookup(&self, subject: &str, text: &str) -> Result<Option<(u32, usize)>, String> {
        let canonical = Schema::parse_str(text)
            .map_err(|e| format!("invalid Avro schema: {e}"))?
            .canonical_form();
        Ok(self.state.subjects.get(subject).and_then(|ids| {
            ids.iter()
                .enumerate()
                .find(|(_, id)| self.state.schemas.get(id) == Some(&canonical))
                .map(|(i, id)| (*id, i + 1))
        }))
    }

    /// Registers `text` under `subject` (not saved; call [`Store::save`]).
    pub fn register(&mut self, subject: &str, text: &str) -> Registered {
        let schema = match Schema::parse_str(text) {
            Ok(s) => s,
            Err(e) => return Registered::Invalid(format!("invalid Avro schema: {e}")),
        };
        let canonical = schema.canonical_form();
        if let Ok(Some((id, version))) = self.lookup(subject, text) {
            return Registered::Ok { id, version };
        }
        let versions: Vec<Schema> = self
            .state
            .subjects
            .get(subject)
            .map(|ids| ids.iter().filter_map(|id| self.parsed(*id)).collect())
            .unwrap_or_default();
        if let Err(why) = self.level(subject).check(&schema, &versions) {
            return Registered::Incompatible(why);
        }
        let id = match self
            .state
            .schemas
            .iter()
            .find(|(_, s)| **s == canonical)
            .map(|(id, _)| *id)
        {
            Some(id) => id,
            None => {
                let id = self.state.schemas.keys().next_back().map_or(1, |m| m + 1);
                self.state.schemas.insert(id, canonical);
                id
            }
        };
        let list = self.state.subjects.entry(subject.to_string()).or_default();
        list.push(id);
        Registered::Ok {
            id,
            version: list.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"{"type":"record","name":"u","fields":[{"name":"id","type":"long"}]}"#;
    const V2_DEFAULT: &str = r#"{"type":"record","name":"u","fields":[{"name":"id","type":"long"},{"name":"n","type":"string","default":""}]}"#;
    const V2_NO_DEFAULT: &str = r#"{"type":"record","name":"u","fields":[{"name":"id","type":"long"},{"name":"n","type":"string"}]}"#;

    fn ok(r: Registered) -> (u32, usize) {
        match r {
            Registered::Ok { id, version } => (id, version),
            Registered::Invalid(m) | Registered::Incompatible(m) => panic!("refused: {m}"),
        }
    }

    #[test]
    fn registry_compatibility_levels_and_persistence() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut s = Store::open(dir.path()).expect("opens");
        assert_eq!(ok(s.register("a-value", V1)), (1, 1));
        assert_eq!(
            ok(s.register("a-value", V1)),
            (1, 1),
            "same schema, same id"
        );
        // BACKWARD (default): adding a field needs a default.
        assert!(matches!(
            s.register("a-value", V2_NO_DEFAULT),
            Registered::Incompatible(_)
        ));
        assert_eq!(ok(s.register("a-value", V2_DEFAULT)), (2, 2));
        // FORWARD: the old schema must read the new data: adding a field is fine.
        s.state
            .subject_compatibility
            .insert("b-value".into(), Compatibility::Forward);
        ok(s.register("b-value", V1));
        assert_eq!(ok(s.register("b-value", V2_NO_DEFAULT)).1, 2);
        // FULL: only with a default.
        s.state
            .subject_compatibility
            .insert("c-value".into(), Compatibility::Full);
        ok(s.register("c-value", V1));
        assert!(matches!(
            s.register("c-value", V2_NO_DEFAULT),
            Registered::Incompatible(_)
        ));
        assert_eq!(ok(s.register("c-value", V2_DEFAULT)).0, 2, "ids are shared");
        // NONE: anything.
        s.state.compatibility = Compatibility::None;
        ok(s.register("a-value", r#""string""#));
        assert!(matches!(s.register("a-value", "{"), Registered::Invalid(_)));
        s.save().expect("saves");
        let again = Store::open(dir.path()).expect("reopens");
        assert_eq!(again.state.subjects["a-value"].len(), 3);
        assert_eq!(again.level("b-value"), Compatibility::Forward);
        assert_eq!(Compatibility::parse("full"), Some(Compatibility::Full));
    }
}
