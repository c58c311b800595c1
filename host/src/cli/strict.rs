//! `sluice run --strict`: the built-in plugins that watch for silent
//! mistakes (`filter`, `project`) get their `strict: true` parameter, so an
//! event missing a field they read, or on which a comparison meets a number
//! and a string, is dead-lettered with that as its reason instead of being
//! dropped (or projected without it) after one warning.
//!
//! The flag reaches a plugin as an ordinary parameter, and only plugins known
//! to take it get it: a plugin built with another SDK (or an older one)
//! refuses parameters it does not know, so passing it to every stage would
//! break them. A stage's own `strict` parameter wins over the flag.

use crate::config::Pipeline;

/// The parameter, as `filter` and `project` name it.
pub const PARAM: &str = "strict";

/// The built-in plugins with a watch, by the file names they resolve to.
const WATCHED: &[&str] = &[
    "filter",
    "project",
    "sluice_plugin_filter",
    "sluice_plugin_project",
];

/// Sets `strict: true` on every stage of `p` whose plugin is a built-in with
/// a watch and whose params leave `strict` unset; returns those stages'
/// names (and logs them).
pub fn apply(p: &mut Pipeline) -> Vec<String> {
    let mut applied = Vec::new();
    for stage in &mut p.stages {
        let watched = stage
            .plugin
            .file_stem()
            .and_then(|s| s.to_str())
            .is_some_and(|stem| WATCHED.contains(&stem));
        if watched && !stage.params.iter().any(|(k, _)| k == PARAM) {
            stage.params.push((PARAM.to_string(), "true".to_string()));
            applied.push(stage.name.clone());
        }
    }
    if !applied.is_empty() {
        tracing::info!(
            stages = %applied.join(", "),
            "--strict: these stages dead-letter an event missing a field they read or select, or comparing a number with a string"
        );
    }
    applied
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_filter_and_project_stages_without_their_own_strict_get_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).expect("mkdir");
        for name in ["filter", "project", "mask"] {
            std::fs::write(plugins.join(format!("{name}.wasm")), b"").expect("write");
        }
        let file = dir.path().join("p.yaml");
        std::fs::write(
            &file,
            "name: s\nsources:\n  in:\n    type: datagen\n    kind: orders\nstages:\n  \
             f:\n    plugin: filter\n    inputs: [in]\n    params: {where: \"true\"}\n  \
             lax:\n    plugin: filter\n    inputs: [in]\n    params: {where: \"true\", strict: false}\n  \
             p:\n    plugin: project\n    inputs: [in]\n    params: {select: id}\n  \
             m:\n    plugin: mask\n    inputs: [in]\n    params: {fields: id}\n\
             sinks:\n  out:\n    type: stdout\n    inputs: [f, lax, p, m]\n",
        )
        .expect("write");
        let options = crate::config::LoadOptions {
            plugin_path: vec![plugins],
            ..Default::default()
        };
        let mut p = crate::config::load(&file, &options).expect("loads");
        assert_eq!(apply(&mut p), vec!["f", "p"]);
        let strict_of = |name: &str| {
            let stage = p.stages.iter().find(|s| s.name == name).expect("stage");
            stage
                .params
                .iter()
                .filter(|(k, _)| k == PARAM)
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(strict_of("f"), vec!["true"]);
        assert_eq!(strict_of("lax"), vec!["false"]);
        assert_eq!(strict_of("p"), vec!["true"]);
        assert!(strict_of("m").is_empty());
    }
}
