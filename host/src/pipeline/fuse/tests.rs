//! Which chains fuse. That the fused stage gives the chain's output is
//! checked end to end on the real plugins (`tests/all/fusion.rs`) and per
//! plugin (`lookup-join`'s `where_and_set_do_what_project_then_lookup_join_do`).

use std::path::Path;

use super::*;
use crate::config::{load_str, LoadOptions};

/// A stage's name and inputs.
type Named = (String, Vec<String>);

/// A directory standing in for the built-ins beside the binary, one for a
/// user's own builds, and a pipeline file's text loaded against them.
struct Dirs {
    root: tempfile::TempDir,
}

impl Dirs {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        for dir in ["builtin", "mine"] {
            std::fs::create_dir(root.path().join(dir)).expect("mkdir");
            for name in ["filter", "project", "lookup-join"] {
                std::fs::write(root.path().join(dir).join(format!("{name}.wasm")), b"")
                    .expect("plugin file");
            }
        }
        std::fs::write(root.path().join("in.jsonl"), b"").expect("input");
        Dirs { root }
    }

    fn load(&self, text: &str) -> Pipeline {
        let options = LoadOptions {
            skip_input_files: true,
            ..LoadOptions::default()
        };
        let no_env = |_: &str| None;
        load_str(&self.root.path().join("p.yaml"), text, &options, &no_env)
            .unwrap_or_else(|d| panic!("{d}\n{text}"))
    }

    /// The stages' names after fusion, each with its inputs, and the
    /// fusions.
    fn fuse(&self, text: &str) -> (Vec<Named>, Vec<Fusion>, Pipeline) {
        let dirs = [self.root.path().join("builtin")];
        let (p, fusions) = fuse_stages(&self.load(text), &|f: &Path| builtin_in(f, &dirs));
        let stages = p
            .stages
            .iter()
            .map(|s| (s.name.clone(), s.inputs.clone()))
            .collect();
        (stages, fusions, p)
    }
}

/// The orders job as a user writes it: filter, project, lookup-join; with
/// `edit` applied to the text first.
fn orders(edit: impl Fn(String) -> String) -> String {
    edit(
        "name: orders
sources:
  events: {type: file, path: in.jsonl}
  people: {type: file, path: in.jsonl}
tables:
  customers: {input: people, key_field: customer_id}
stages:
  keep:
    plugin: builtin/filter.wasm
    inputs: [events]
    params:
      where: \"currency != 'aud'\"
  shape:
    plugin: builtin/project.wasm
    inputs: [keep]
    params:
      select: [order_id, customer_id, currency]
      set:
        price_cents: \"round(price * 100)\"
  enrich:
    plugin: builtin/lookup-join.wasm
    inputs: [shape]
    tables: [customers]
    params:
      table: customers
      on: customer_id
      join: inner
      fields: \"order_id, customer_id, currency, price_cents, table.name as customer_name\"
sinks:
  out: {type: file, path: out.jsonl, inputs: [enrich]}
"
        .to_string(),
    )
}

fn names(stages: &[Named]) -> Vec<&str> {
    stages.iter().map(|(n, _)| n.as_str()).collect()
}

#[test]
fn a_filter_project_lookup_join_chain_runs_as_its_join() {
    let dirs = Dirs::new();
    let (stages, fusions, p) = dirs.fuse(&orders(|t| t));
    assert_eq!(
        stages,
        vec![("enrich".to_string(), vec!["events".to_string()])]
    );
    assert_eq!(
        fusions,
        vec![Fusion {
            into: "enrich".into(),
            absorbed: vec!["keep".into(), "shape".into()],
        }]
    );
    let params: Vec<(&str, &str)> = p.stages[0]
        .params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        params,
        vec![
            ("where", "currency != 'aud'"),
            ("set", r#"{"price_cents":"round(price * 100)"}"#),
            (
                "fields",
                "order_id, customer_id, currency, price_cents, table.name as customer_name"
            ),
            ("join", "inner"),
            ("on", "customer_id"),
            ("table", "customers"),
        ]
    );
    assert_eq!(p.stages[0].tables, vec!["customers".to_string()]);
    assert_eq!(
        fusions[0].describe(),
        "stages `keep` and `shape` run as part of `enrich`"
    );

    // A filter in front of a projection alone: the projection takes it.
    let (stages, fusions, p) = dirs.fuse(&orders(|t| {
        t.replace("inputs: [enrich]", "inputs: [shape]")
            .replace("  enrich:\n", "  unused:\n")
            .replace(
                "inputs: [shape]\n    tables",
                "inputs: [events]\n    tables",
            )
    }));
    assert_eq!(
        stages,
        vec![
            ("shape".to_string(), vec!["events".to_string()]),
            ("unused".to_string(), vec!["events".to_string()]),
        ]
    );
    assert_eq!(fusions[0].absorbed, vec!["keep".to_string()]);
    assert_eq!(
        fusions[0].describe(),
        "stage `keep` runs as part of `shape`"
    );
    assert_eq!(
        p.stages[0].params[0],
        ("where".into(), "currency != 'aud'".into())
    );
}

#[test]
fn chains_whose_output_would_change_stay_apart() {
    let dirs = Dirs::new();
    // (why, text replaced in the orders file, by what, the stages that run)
    let cases: [(&str, &str, &str, &[&str]); 16] = [
        (
            "the file turns fusion off",
            "name: orders\n",
            "name: orders\nfuse_stages: false\n",
            &["keep", "shape", "enrich"],
        ),
        (
            "the filter is the user's own build named filter",
            "builtin/filter.wasm",
            "mine/filter.wasm",
            &["keep", "enrich"],
        ),
        (
            "the join is the user's own build",
            "builtin/lookup-join.wasm",
            "mine/lookup-join.wasm",
            &["shape", "enrich"],
        ),
        (
            "a sink reads the filter's output",
            "inputs: [enrich]",
            "inputs: [enrich, keep]",
            &["keep", "enrich"],
        ),
        (
            "a table reads the projection",
            "tables:\n  customers:",
            "tables:\n  shaped: {input: shape, key_field: order_id}\n  customers:",
            &["shape", "enrich"],
        ),
        (
            "the projection has a where of its own",
            "      select:",
            "      where: \"price > 1\"\n      select:",
            &["keep", "enrich"],
        ),
        (
            "the projection is strict",
            "      select:",
            "      strict: true\n      select:",
            &["keep", "shape", "enrich"],
        ),
        (
            "the filter is strict",
            "      where: \"currency",
            "      strict: true\n      where: \"currency",
            &["keep", "enrich"],
        ),
        (
            "the filter skips errors the projection dead-letters",
            "    inputs: [events]\n",
            "    inputs: [events]\n    on_error: skip\n",
            &["keep", "enrich"],
        ),
        (
            "the projection has other limits",
            "    inputs: [keep]\n",
            "    inputs: [keep]\n    limits: {memory_mb: 8}\n",
            &["keep", "shape", "enrich"],
        ),
        (
            "the projection lists tables the join would not",
            "    inputs: [keep]\n",
            "    inputs: [keep]\n    tables: [customers]\n",
            &["shape", "enrich"],
        ),
        (
            "the projection renames",
            "      set:",
            "      rename: {currency: cur}\n      set:",
            &["shape", "enrich"],
        ),
        (
            "the projection selects a nested path",
            "[order_id, customer_id, currency]",
            "[order_id, customer_id, currency, a.b]",
            &["shape", "enrich"],
        ),
        (
            "the join key is computed",
            "price_cents: \"round(price * 100)\"",
            "price_cents: \"round(price * 100)\"\n        customer_id: \"customer_id + 1\"",
            &["shape", "enrich"],
        ),
        (
            "the join reads a field the projection dropped",
            "fields: \"order_id,",
            "fields: \"price, order_id,",
            &["shape", "enrich"],
        ),
        (
            "the join has a where of its own",
            "      join: inner",
            "      join: inner\n      where: \"price_cents > 0\"",
            &["shape", "enrich"],
        ),
    ];
    for (why, from, to, want) in cases {
        let text = orders(|t| {
            assert!(t.contains(from), "{why}: `{from}` is not in the file");
            t.replacen(from, to, 1)
        });
        let (stages, _, _) = dirs.fuse(&text);
        assert_eq!(names(&stages), want, "{why}");
    }
}

#[test]
fn a_file_with_functions_keeps_its_stages_apart() {
    let dirs = Dirs::new();
    std::fs::write(dirs.root.path().join("f.wasm"), b"").expect("udf file");
    let text = orders(|t| format!("{t}udfs:\n  double: {{plugin: f.wasm}}\n"));
    let (stages, fusions, _) = dirs.fuse(&text);
    assert_eq!(names(&stages), vec!["keep", "shape", "enrich"]);
    assert!(fusions.is_empty());
}

#[test]
fn the_rule_for_a_projection_and_its_join() {
    let fits =
        |select: &[&str], set: &[&str], on, fields| projection_fits_join(select, set, on, fields);
    assert!(fits(&["id", "k"], &["c"], "k", "id, c, table.n as n"));
    assert!(!fits(&["id", "k"], &["c"], "c", "id, c"), "computed key");
    assert!(!fits(&["id"], &["c"], "k", "id"), "key not selected");
    assert!(
        !fits(&["id", "k"], &[], "k", "id, x"),
        "field not projected"
    );
    assert!(!fits(&["id", "k"], &["a.b"], "k", "id"), "dotted name");
    assert!(
        !fits(&["id", "k"], &[], "k", "id as"),
        "fields that do not parse"
    );
    assert!(names_listed("id, k").is_some_and(|n| n == ["id", "k"]));
    assert!(names_listed(r#"["id","k"]"#).is_some_and(|n| n == ["id", "k"]));
    assert_eq!(names_listed("id, `a b`"), None);
    assert_eq!(names_listed("[1]"), None);
}

#[test]
fn the_order_the_file_lists_stages_in_does_not_change_what_fuses() {
    let dirs = Dirs::new();
    // The join first, then the filter, then the projection.
    let text = orders(|t| {
        let (head, rest) = t.split_once("  keep:\n").expect("stages");
        let (keep, rest) = rest.split_once("  shape:\n").expect("shape");
        let (shape, rest) = rest.split_once("  enrich:\n").expect("enrich");
        let (enrich, sinks) = rest.split_once("sinks:\n").expect("sinks");
        format!("{head}  enrich:\n{enrich}  keep:\n{keep}  shape:\n{shape}sinks:\n{sinks}")
    });
    let (stages, fusions, _) = dirs.fuse(&text);
    assert_eq!(names(&stages), vec!["enrich"]);
    assert_eq!(
        fusions[0].absorbed,
        vec!["keep".to_string(), "shape".to_string()]
    );
}

#[test]
fn a_file_of_many_stages_fuses_each_pair_in_one_walk() {
    // 1,500 filter → project pairs, all fused, with each plugin's file
    // looked up once and the readers counted once.
    let dirs = Dirs::new();
    let mut text =
        String::from("name: many\nsources:\n  events: {type: file, path: in.jsonl}\nstages:\n");
    let pairs = 1_500;
    for i in 0..pairs {
        text.push_str(&format!(
            "  k{i}:\n    plugin: builtin/filter.wasm\n    inputs: [events]\n    params: {{where: \"n > {i}\"}}\n  s{i}:\n    plugin: builtin/project.wasm\n    inputs: [k{i}]\n    params: {{select: [n]}}\n"
        ));
    }
    let all: Vec<String> = (0..pairs).map(|i| format!("s{i}")).collect();
    text.push_str(&format!(
        "sinks:\n  out: {{type: file, path: out.jsonl, inputs: [{}]}}\n",
        all.join(", ")
    ));
    let (stages, fusions, _) = dirs.fuse(&text);
    assert_eq!(stages.len(), pairs);
    assert_eq!(fusions.len(), pairs);
    assert!(stages
        .iter()
        .all(|(n, inputs)| n.starts_with('s') && inputs == &["events"]));
}
