//! What a tenant's pipeline file may not do, checked on the YAML tree before
//! the file is loaded (loading resolves plugin paths and would touch the
//! server's files): set `data_dir`, read environment variables through
//! `${...}` (other than those the operator grants tenants, and never in a
//! path, type or plugin), load a plugin (a stage's, a connector's or a UDF's) by
//! path, name a connector type it was not
//! granted, or point a `file` source or sink outside its own area.
//! Problems are reported like `sluice validate` reports them.
//!
//! What the loaded pipeline reaches is checked after this, by
//! [`super::reach`].

use std::path::{Component, Path, PathBuf};

use crate::config::{Diagnostic, Diagnostics, Location, Node, NodeKind};

/// What one tenant's pipeline is checked against.
pub struct Rules<'a> {
    /// The name its problems are reported under (`NAME.yaml`).
    pub file: &'a Path,
    /// Connector types granted.
    pub connectors: &'a [String],
    /// Where its relative `file` paths point, and the only place they may.
    pub files_dir: &'a Path,
    /// Whether `plugin: SPEC` names something it may load.
    pub known_plugin: &'a dyn Fn(&str) -> bool,
    /// The `${VAR}`s it may read (names or prefixes ending in `*`): the
    /// operator's `env.tenants`, none by default.
    pub env: &'a [String],
}

/// Every problem with `root` under `rules`.
pub fn check(root: &Node, rules: &Rules<'_>) -> Diagnostics {
    let mut diags = Diagnostics::default();
    let mut push = |at: Location, field: &str, message: String| {
        diags.push(Diagnostic::new(rules.file, at, field, message));
    };
    if let Some(at) = root.key_location("data_dir") {
        push(
            at,
            "data_dir",
            "not allowed on a server: the server chooses where each pipeline's data lives".into(),
        );
    }
    interpolations(root, "", rules.env, &mut push);

    for section in ["sources", "sinks"] {
        for (name, body) in entries(root.get(section)) {
            connector(body, &format!("{section}.{name}"), rules, &mut push);
        }
    }
    if let Some(body) = root.get("dead_letter") {
        connector(body, "dead_letter", rules, &mut push);
    }
    for (name, body) in entries(root.get("stages")) {
        let Some(node) = body.get("plugin") else {
            continue;
        };
        plugin_ref(node, &format!("stages.{name}.plugin"), rules, &mut push);
    }
    // A user-defined function runs code as a stage does: the same rule.
    for (name, body) in entries(root.get("udfs")) {
        let Some(node) = body.get("plugin") else {
            continue;
        };
        plugin_ref(node, &format!("udfs.{name}.plugin"), rules, &mut push);
    }
    diags
}

fn plugin_ref(
    node: &Node,
    field: &str,
    rules: &Rules<'_>,
    push: &mut dyn FnMut(Location, &str, String),
) {
    let spec = node.as_str().unwrap_or_default();
    if !is_plugin_ref(spec) {
        push(
            node.at,
            field,
            format!("`{spec}` is not allowed on a server: name an uploaded plugin (NAME or sha256:HEX) or a built-in one, not a path"),
        );
    } else if !(rules.known_plugin)(spec) {
        push(
            node.at,
            field,
            format!("unknown plugin `{spec}`: upload it first (`sluice plugin push`, POST /v1/plugins?name={spec}) or name a built-in plugin"),
        );
    }
}

fn entries(section: Option<&Node>) -> Vec<(&str, &Node)> {
    section
        .and_then(Node::as_map)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.as_str().unwrap_or_default(), v))
                .collect()
        })
        .unwrap_or_default()
}

/// `NAME` (letters, digits, `_`, `-`, `.`, not ending in `.wasm`) or `sha256:HEX`.
pub fn is_plugin_ref(spec: &str) -> bool {
    if let Some(hex) = spec.strip_prefix("sha256:") {
        return hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    }
    is_name(spec) && !spec.ends_with(".wasm")
}

/// Names of tenants, plugins and pipelines: 1–64 of `a-z A-Z 0-9 _ - .`,
/// starting with a letter or digit.
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

fn connector(
    body: &Node,
    field: &str,
    rules: &Rules<'_>,
    push: &mut dyn FnMut(Location, &str, String),
) {
    let Some(t) = body.get("type") else {
        return;
    };
    let kind = t.as_str().unwrap_or_default();
    if !rules.connectors.iter().any(|c| c == kind) {
        push(
            t.at,
            &format!("{field}.type"),
            format!(
                "connector type `{kind}` is not granted to this tenant; granted: {}",
                rules.connectors.join(", ")
            ),
        );
        return;
    }
    // A custom connector's plugin: an uploaded or built-in one, never a path.
    if let Some(node) = body.get("plugin") {
        plugin_ref(node, &format!("{field}.plugin"), rules, push);
    }
    // Every file a connector reads or writes: a `file` source's or sink's
    // `path`, and `password_file`, `ca_file`, `cert_file`, `key_file` (a
    // `password_file: /etc/shadow` would be sent as the password to a host
    // the tenant chose).
    file_fields(body, field, rules.files_dir, push);
}

fn file_fields(
    node: &Node,
    field: &str,
    area: &Path,
    push: &mut dyn FnMut(Location, &str, String),
) {
    let Some(map) = node.as_map() else {
        return;
    };
    for (k, v) in map {
        let key = k.as_str().unwrap_or_default();
        let sub = format!("{field}.{key}");
        if v.as_map().is_some() {
            file_fields(v, &sub, area, push);
        } else if key == "path" || key.ends_with("_file") {
            let text = v.as_str().unwrap_or_default();
            if within(area, text).is_none() {
                push(
                    v.at,
                    &sub,
                    format!("`{text}` is outside this tenant's file area; use a relative path without `..`"),
                );
            }
        }
    }
}

/// `path` resolved against `area`, if it stays inside it. Lexical: `..`
/// anywhere is refused, and the area holds only files the server wrote.
pub fn within(area: &Path, path: &str) -> Option<PathBuf> {
    let p = Path::new(path);
    if path.is_empty() || p.components().any(|c| matches!(c, Component::ParentDir)) {
        return None;
    }
    let full = area.join(p);
    full.starts_with(area).then_some(full)
}

/// Fields whose value picks a file, a connector or a plugin: checked here on
/// the text as written, so it must not change when variables are filled in.
fn path_like(field: &str) -> bool {
    let last = field.rsplit('.').next().unwrap_or(field);
    matches!(last, "path" | "type" | "plugin" | "data_dir")
        || last.ends_with("_file")
        || last.ends_with("_dir")
        || last.ends_with("_path")
}

fn interpolations(
    node: &Node,
    field: &str,
    env: &[String],
    push: &mut dyn FnMut(Location, &str, String),
) {
    match &node.kind {
        NodeKind::Scalar { text, .. } => {
            let read = std::cell::RefCell::new(Vec::new());
            let parsed = crate::config::interpolate(text, &|name| {
                read.borrow_mut().push(name.to_string());
                None
            });
            let read = read.into_inner();
            let malformed = parsed.is_err() && text.contains("${") && read.is_empty();
            if read.is_empty() && !malformed {
                return;
            }
            let denied = read
                .iter()
                .find(|n| !crate::config::host_config::env_allowed(env, n));
            let message = if env.is_empty() || malformed {
                "`${...}` is not allowed on a server: pipelines cannot read the server's environment unless the operator grants variables (`env.tenants` in the host configuration; write `$$` for a literal `$`)".to_string()
            } else if path_like(field) {
                "`${...}` is not allowed on a server in a path, type or plugin: these are checked as written".to_string()
            } else if let Some(name) = denied {
                format!("`${{{name}}}` is not allowed on a server: the operator lets tenants read only {} (`env.tenants` in the host configuration)", env.join(", "))
            } else {
                return;
            };
            push(node.at, field, message);
        }
        NodeKind::Seq(items) => {
            for (i, n) in items.iter().enumerate() {
                interpolations(n, &format!("{field}[{i}]"), env, push);
            }
        }
        NodeKind::Map(entries) => {
            for (k, v) in entries {
                let key = k.as_str().unwrap_or_default();
                let sub = if field.is_empty() {
                    key.to_string()
                } else {
                    format!("{field}.{key}")
                };
                interpolations(v, &sub, env, push);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(yaml: &str) -> Vec<String> {
        problems_with(yaml, &[])
    }

    fn problems_with(yaml: &str, env: &[String]) -> Vec<String> {
        let root = crate::config::parse_yaml(yaml).expect("yaml");
        let rules = Rules {
            file: Path::new("p.yaml"),
            connectors: &["datagen".into(), "file".into()],
            files_dir: Path::new("/data/tenants/a/files"),
            known_plugin: &|s| s == "mine",
            env,
        };
        check(&root, &rules)
            .0
            .iter()
            .map(|d| d.to_string())
            .collect()
    }

    #[test]
    fn a_plain_tenant_pipeline_passes() {
        let yaml = "name: p\nsources:\n  s: {type: file, path: in/x.jsonl}\nstages:\n  t: {plugin: mine, inputs: [s]}\nsinks:\n  o: {type: file, path: out.jsonl, inputs: [t]}\n";
        assert!(problems(yaml).is_empty(), "{:?}", problems(yaml));
    }

    #[test]
    fn each_escape_is_refused_at_its_line_with_its_field() {
        let yaml = "name: p\ndata_dir: /etc\nsources:\n  s: {type: file, path: /etc/passwd}\n  k: {type: kafka, brokers: x}\nstages:\n  t: {plugin: /tmp/evil.wasm, inputs: [s]}\n  u: {plugin: theirs, inputs: [s]}\nsinks:\n  o: {type: file, path: ../b/files/x, inputs: [t]}\n  e: {type: file, path: \"${HOME}/x\", inputs: [t]}\n";
        let p = problems(yaml);
        let want = [
            "p.yaml:2:1: data_dir: not allowed",
            "p.yaml:4:25: sources.s.path: `/etc/passwd` is outside",
            "p.yaml:5:13: sources.k.type: connector type `kafka` is not granted",
            "p.yaml:7:15: stages.t.plugin: `/tmp/evil.wasm` is not allowed",
            "p.yaml:8:15: stages.u.plugin: unknown plugin `theirs`",
            "p.yaml:10:25: sinks.o.path: `../b/files/x` is outside",
            "p.yaml:11:25: sinks.e.path: `${...}` is not allowed",
        ];
        for w in want {
            assert!(p.iter().any(|l| l.starts_with(w)), "missing {w} in {p:#?}");
        }
        assert!(!problems("name: p\nx: \"cost $$5 $${HOME}\"\n")
            .iter()
            .any(|l| l.contains("${...}")));
    }

    #[test]
    fn every_file_a_connector_reads_stays_in_the_tenants_area() {
        let root = crate::config::parse_yaml("name: p\nsources:\n  pg:\n    type: postgres-cdc\n    password_file: /etc/shadow\n    tls: {mode: verify-full, ca_file: ca.pem, key_file: ../../b/files/key.pem}\n").expect("yaml");
        let rules = Rules {
            file: Path::new("p.yaml"),
            connectors: &["postgres-cdc".into()],
            files_dir: Path::new("/data/tenants/a/files"),
            known_plugin: &|_| false,
            env: &[],
        };
        let p: Vec<String> = check(&root, &rules)
            .0
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(
            p[0].starts_with("p.yaml:5:20: sources.pg.password_file: `/etc/shadow` is outside"),
            "{p:#?}"
        );
        assert!(
            p[1].contains("sources.pg.tls.key_file: `../../b/files/key.pem` is outside"),
            "{p:#?}"
        );
    }

    #[test]
    fn granted_variables_are_read_only_outside_paths_types_and_plugins() {
        let env = ["TENANT_*".to_string()];
        let yaml = "name: p\nsources:\n  s: {type: datagen, kind: \"${TENANT_KIND}\"}\n  f: {type: file, path: \"${TENANT_DIR}/x\"}\n  g: {type: datagen, kind: \"${HOME}\"}\n";
        let p = problems_with(yaml, &env);
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(
            p[0].starts_with(
                "p.yaml:4:25: sources.f.path: `${...}` is not allowed on a server in a path"
            ),
            "{p:#?}"
        );
        assert!(p[1].starts_with("p.yaml:5:28: sources.g.kind: `${HOME}` is not allowed on a server: the operator lets tenants read only TENANT_*"), "{p:#?}");
    }

    #[test]
    fn a_udf_must_name_an_uploaded_plugin_not_a_path() {
        let yaml = "name: p\nudfs:\n  ok: {plugin: mine}\n  by_path: {plugin: /srv/evil.wasm}\n  rel: {plugin: ./x.wasm}\n  gone: {plugin: other}\nsources:\n  s: {type: file, path: in/x.jsonl}\nsinks:\n  o: {type: file, path: out.jsonl, inputs: [s]}\n";
        let p = problems(yaml);
        assert_eq!(
            p,
            vec![
                "p.yaml:4:21: udfs.by_path.plugin: `/srv/evil.wasm` is not allowed on a server: name an uploaded plugin (NAME or sha256:HEX) or a built-in one, not a path".to_string(),
                "p.yaml:5:17: udfs.rel.plugin: `./x.wasm` is not allowed on a server: name an uploaded plugin (NAME or sha256:HEX) or a built-in one, not a path".to_string(),
                "p.yaml:6:18: udfs.gone.plugin: unknown plugin `other`: upload it first (`sluice plugin push`, POST /v1/plugins?name=other) or name a built-in plugin".to_string(),
            ]
        );
    }

    #[test]
    fn plugin_refs_and_names() {
        assert!(is_plugin_ref("filter"));
        assert!(is_plugin_ref(&format!("sha256:{}", "a".repeat(64))));
        for bad in ["x.wasm", "a/b", "", ".hidden", "sha256:xyz", "../x"] {
            assert!(!is_plugin_ref(bad), "{bad}");
        }
        assert!(within(Path::new("/a"), "b/c").is_some());
        assert!(within(Path::new("/a"), "/a/b").is_some());
        assert!(within(Path::new("/a"), "/ab").is_none());
        assert!(within(Path::new("/a"), "b/../../c").is_none());
    }
}
