//! The operator's host configuration: what pipeline files may ask for on
//! this host. Read from `--host-config FILE` (on `run`, `validate`, `sql`
//! and `serve`), else from the file named by `$SLUICE_HOST_CONFIG`, else the
//! safe defaults. YAML or JSON; unknown fields are refused, and every
//! problem names the file and the field.
//!
//! ```yaml
//! ceilings: {memory_mb: 1024, log_kb_per_call: 1024}  # see plugin::Ceilings
//! env:
//!   allow: ["PG*", "KAFKA_BROKERS"]  # ${VAR}s a pipeline file may read; unset: all
//!   tenants: []                      # ${VAR}s `sluice serve` tenants may read; unset: none
//! plugins:
//!   dirs: [/opt/sluice/plugins]      # where `plugin:` may load from; unset: anywhere
//! ```

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;

use crate::plugin::Ceilings;
pub use crate::plugin::HOST_CONFIG_ENV;

/// The operator's configuration of this host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// The most a stage's `limits:` may ask for.
    #[serde(default)]
    pub ceilings: Ceilings,
    /// Which environment variables pipeline files may interpolate.
    #[serde(default)]
    pub env: EnvGrants,
    /// Where plugins may be loaded from.
    #[serde(default)]
    pub plugins: PluginGrants,
}

/// `env:` of the host configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvGrants {
    /// For `run`, `validate` and `sql`: names, or prefixes ending in `*`
    /// (`"*"` is every variable). Unset: every variable, because on the
    /// single-user command line the pipeline author is the operator.
    pub allow: Option<Vec<String>>,
    /// For tenants of `sluice serve`, same form. Unset: none, because a
    /// tenant must not read the server's environment.
    pub tenants: Option<Vec<String>>,
}

/// `plugins:` of the host configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginGrants {
    /// For `run`, `validate` and `sql`: the directories `plugin:` files and
    /// `--plugin-path` may be in (the built-in plugins beside the binary are
    /// always allowed). Unset: anywhere. `sluice serve` tenants load only
    /// their uploaded plugins and the built-ins, whatever this says.
    pub dirs: Option<Vec<PathBuf>>,
}

/// Whether `name` matches one of `patterns` (a name, or a prefix ending in `*`).
pub fn env_allowed(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    })
}

static INSTALLED: OnceLock<HostConfig> = OnceLock::new();

impl HostConfig {
    /// The configuration from `flag` if given, else from
    /// `$SLUICE_HOST_CONFIG` if set, else the defaults.
    pub fn resolve(flag: Option<&Path>) -> Result<Self, String> {
        if let Some(path) = flag {
            return Self::from_file(path);
        }
        match std::env::var_os(HOST_CONFIG_ENV) {
            Some(path) if !path.is_empty() => Self::from_file(Path::new(&path)),
            _ => Ok(Self::default()),
        }
    }

    /// Reads a host configuration file. Errors name the file and the field
    /// (`ceilings.memory_mb`) and say what was expected.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("host configuration {shown}: cannot read it: {e}"))?;
        let docs = yaml_rust2::YamlLoader::load_from_str(&text)
            .map_err(|e| format!("host configuration {shown}: invalid YAML: {e}"))?;
        let value = docs.first().map_or(serde_json::Value::Null, to_json);
        if value.is_null() {
            return Ok(Self::default());
        }
        if !value.is_object() {
            return Err(format!(
                "host configuration {shown}: expected a mapping with `ceilings`, `env` or `plugins` at the top"
            ));
        }
        let config: Self = serde_path_to_error::deserialize(value).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            if field == "." {
                format!("host configuration {shown}: {inner}")
            } else {
                format!("host configuration {shown}: field `{field}`: {inner}")
            }
        })?;
        config.check(path)?;
        Ok(config)
    }

    /// Rules serde cannot express.
    fn check(&self, path: &Path) -> Result<(), String> {
        let shown = path.display();
        if let Some((field, value, cap)) = self.ceilings.bad_counts() {
            return Err(format!("host configuration {shown}: field `ceilings.{field}`: {value} is out of range: expected 1 to {cap} (the pooling allocator reserves room for 256 plugin instances times this)"));
        }
        for (field, list) in [
            ("env.allow", &self.env.allow),
            ("env.tenants", &self.env.tenants),
        ] {
            for p in list.iter().flatten() {
                let name = p.strip_suffix('*').unwrap_or(p);
                if name.contains('*')
                    || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    return Err(format!("host configuration {shown}: field `{field}`: `{p}` is not a variable name or a prefix ending in `*` (letters, digits, `_`)"));
                }
            }
        }
        for d in self.plugins.dirs.iter().flatten() {
            if !d.is_absolute() {
                return Err(format!(
                    "host configuration {shown}: field `plugins.dirs`: `{}` is not an absolute path",
                    d.display()
                ));
            }
        }
        Ok(())
    }

    /// Makes `self` the configuration of this process (the CLI does this once,
    /// from `--host-config` or the environment, before loading anything).
    /// A second call is ignored.
    pub fn install(self) {
        crate::plugin::limits::install_component_counts(self.ceilings.component_counts());
        let _ = INSTALLED.set(self);
    }

    /// The configuration of this process: the installed one, else read from
    /// `$SLUICE_HOST_CONFIG` (library callers and tests).
    pub fn current() -> Result<Self, String> {
        match INSTALLED.get() {
            Some(c) => Ok(c.clone()),
            None => Self::resolve(None),
        }
    }

    /// `plugins.dirs` with the directories of built-in plugins beside the
    /// binary, resolved (symlinks followed), or `None` when unrestricted.
    pub fn plugin_dirs(&self) -> Option<Vec<PathBuf>> {
        let dirs = self.plugins.dirs.as_ref()?;
        let mut out: Vec<PathBuf> = dirs.clone();
        out.extend(super::builtin_plugin_dirs());
        Some(
            out.iter()
                .filter_map(|d| std::fs::canonicalize(d).ok())
                .collect(),
        )
    }
}

fn to_json(y: &yaml_rust2::Yaml) -> serde_json::Value {
    use serde_json::Value;
    use yaml_rust2::Yaml;
    match y {
        Yaml::Real(r) => r
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), to_json(v))))
                .collect(),
        ),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<HostConfig, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("host.yaml");
        std::fs::write(&path, text).expect("write");
        HostConfig::from_file(&path)
    }

    #[test]
    fn reads_ceilings_env_and_plugin_grants() {
        let c = read("ceilings:\n  memory_mb: 64\n  allow_unlimited_cpu: true\n  log_kb_per_call: 8\nenv:\n  allow: [\"PG*\", HOME]\nplugins:\n  dirs: [/opt/p]\n").expect("parses");
        assert_eq!(c.ceilings.memory_mb, 64);
        assert_eq!(c.ceilings.log_kb_per_call, 8);
        assert!(c.ceilings.allow_unlimited_cpu);
        assert_eq!(c.ceilings.state_mb, Ceilings::default().state_mb);
        let allow = c.env.allow.as_deref().expect("set");
        assert!(env_allowed(allow, "PGPASSWORD") && env_allowed(allow, "HOME"));
        assert!(!env_allowed(allow, "HOMEPATH") && !env_allowed(allow, "AWS_SECRET"));
        assert_eq!(c.env.tenants, None);
        assert_eq!(c.plugins.dirs, Some(vec![PathBuf::from("/opt/p")]));
        assert_eq!(read("").expect("empty"), HostConfig::default());
    }

    #[test]
    fn a_bad_file_names_the_file_the_field_and_what_was_expected() {
        let err = read("ceilings:\n  memroy_mb: 64\n").expect_err("typo");
        assert!(
            err.contains("host.yaml")
                && err.contains("field `ceilings.memroy_mb`")
                && err.contains("expected one of"),
            "{err}"
        );
        let err = read("ceilings:\n  memory_mb: lots\n").expect_err("type");
        assert!(
            err.contains("field `ceilings.memory_mb`") && err.contains("expected u64"),
            "{err}"
        );
        let err = read("plugin:\n  dirs: [/x]\n").expect_err("top-level typo");
        assert!(
            err.contains("unknown field `plugin`") && err.contains("plugins"),
            "{err}"
        );
        let err = read("env:\n  allow: [\"A*B\"]\n").expect_err("pattern");
        assert!(
            err.contains("field `env.allow`") && err.contains("`A*B`"),
            "{err}"
        );
        let err = read("plugins:\n  dirs: [rel/dir]\n").expect_err("relative");
        assert!(
            err.contains("field `plugins.dirs`") && err.contains("absolute"),
            "{err}"
        );
        let err = read("- 1\n").expect_err("not a mapping");
        assert!(err.contains("expected a mapping"), "{err}");
        let missing =
            HostConfig::from_file(Path::new("/nonexistent/host.yaml")).expect_err("missing");
        assert!(
            missing.contains("/nonexistent/host.yaml") && missing.contains("cannot read"),
            "{missing}"
        );
    }
}
