//! Validation finds every problem in one pass and says how to fix each.

use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

/// Loads `text` as `dir/p.yaml` with `dir` as the plugin directory.
fn load_in(dir: &Path, text: &str) -> Result<Pipeline, Diagnostics> {
    let options = LoadOptions {
        plugin_path: vec![dir.to_path_buf()],
        ..Default::default()
    };
    load_str(&dir.join("p.yaml"), text, &options, &no_env)
}

fn messages(d: &Diagnostics) -> Vec<String> {
    d.clone()
        .sorted()
        .0
        .iter()
        .map(|d| format!("{}:{}: {}: {}", d.at.line, d.at.col, d.field, d.message))
        .collect()
}

fn dir_with_plugins(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for n in names {
        std::fs::write(dir.path().join(format!("{n}.wasm")), b"").expect("write");
    }
    dir
}

#[test]
fn every_problem_in_a_section_and_across_sections_is_reported_at_once() {
    let dir = dir_with_plugins(&["filter", "project"]);
    std::fs::write(dir.path().join("in.jsonl"), "{}\n").expect("write");
    let text = "\
batch_size: ten
sources:
  in:
    type: file
    pth: in.jsonl
    key_feld: id
  gen:
    type: datagen
    kind: orders
    count: -3
    seed: abc
  pg: {type: postgres-cdcc}
stages:
  f:
    plugin: projekt
    inputs: [gen, 7]
    on_error: skp
sinks:
  out: {type: file, path: o.jsonl, inputs: [ff]}
stagse: {}
";
    let d = load_in(dir.path(), text).expect_err("broken");
    let got = messages(&d);
    let expect = [
        "1:13: batch_size: found the text \"ten\", expected a whole number (0 or more)",
        "5:5: sources.in.pth: unknown field `pth`; did you mean `path`? Fields here: path, key_field",
        "6:5: sources.in.key_feld: unknown field `key_feld`; did you mean `key_field`?",
        "10:12: sources.gen.count: found the number -3, expected a whole number (0 or more)",
        "11:11: sources.gen.seed: found the text \"abc\", expected a whole number (0 or more)",
        "12:14: sources.pg.type: unknown type `postgres-cdcc`; did you mean `postgres-cdc`?",
        "15:13: stages.f.plugin: plugin `projekt` not found (did you mean `project`?)",
        "16:19: stages.f.inputs.1: found the number 7, expected text",
        "17:15: stages.f.on_error: unknown value `skp`; did you mean `skip`? Expected one of `dead-letter`, `skip`, `fail`",
        "19:44: sinks.out.inputs: unknown input `ff`; did you mean `f`? Expected one of: f, gen, in, pg",
        "20:1: stagse: unknown field `stagse`; did you mean `stages`?",
    ];
    for want in expect {
        assert!(
            got.iter().any(|g| g.starts_with(want)),
            "no `{want}` in:\n{}",
            got.join("\n")
        );
    }
    assert_eq!(
        got.len(),
        expect.len(),
        "no repeats and no knock-on errors (no `missing field path`):\n{}",
        got.join("\n")
    );
}

#[test]
fn a_missing_variable_is_one_error_naming_it_even_for_a_required_field() {
    let dir = dir_with_plugins(&[]);
    let d = load_in(
        dir.path(),
        "sources:\n  gen: {type: datagen, kind: orders, count: \"${N_EVENTS}\"}\nsinks:\n  out: {type: file, path: \"${OUT_FILE}\", inputs: [gen]}\n",
    )
    .expect_err("unset");
    let got = messages(&d);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(
        got[0].contains("sources.gen.count: environment variable `N_EVENTS` is not set"),
        "{got:#?}"
    );
    assert!(
        got[1].contains("sinks.out.path: environment variable `OUT_FILE` is not set"),
        "{got:#?}"
    );
    assert!(
        !got.iter()
            .any(|g| g.contains("null") || g.contains("missing field")),
        "{got:#?}"
    );
}

#[test]
fn a_missing_input_file_is_found_by_validation_unless_told_not_to_look() {
    let dir = dir_with_plugins(&[]);
    let text = "sources:\n  in:\n    type: file\n    path: orders.jsonl\nsinks:\n  out: {type: stdout, inputs: [in]}\n";
    let d = load_in(dir.path(), text).expect_err("no such file");
    let got = messages(&d);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(
        got[0].starts_with("4:11: sources.in.path: input file ")
            && got[0].contains("orders.jsonl does not exist"),
        "{got:#?}"
    );
    let options = LoadOptions {
        skip_input_files: true,
        ..Default::default()
    };
    load_str(&dir.path().join("p.yaml"), text, &options, &no_env).expect("not checked");
    std::fs::write(dir.path().join("orders.jsonl"), "").expect("write");
    load_in(dir.path(), text).expect("exists now");
}

#[test]
fn a_missing_plugin_is_named_with_the_closest_one_and_no_paths() {
    let dir = dir_with_plugins(&["filter", "project"]);
    let err =
        resolve_plugin("projekt", dir.path(), &[dir.path().to_path_buf()]).expect_err("missing");
    assert!(
        err.starts_with("plugin `projekt` not found (did you mean `project`?)"),
        "{err}"
    );
    assert!(err.contains("Plugins found: filter, project"), "{err}");
    assert!(
        !err.contains(&*dir.path().to_string_lossy()),
        "no paths: {err}"
    );
    assert!(
        !err.contains("build-plugins.sh"),
        "built-ins are there: {err}"
    );
    let empty = dir_with_plugins(&[]);
    let err = resolve_plugin("filter", empty.path(), &[empty.path().to_path_buf()])
        .map(|p| p.display().to_string());
    // Built-ins beside the test binary may exist; when they do not, say how
    // to build them.
    if let Err(err) = err {
        assert!(err.contains("scripts/build-plugins.sh"), "{err}");
    }
    let err = resolve_plugin("filter.wasm", empty.path(), &[]).expect_err("no file");
    assert!(err.contains("write `plugin: filter`"), "{err}");
}

#[test]
fn the_builtin_plugin_list_is_the_plugins_directory() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    let mut dirs: Vec<String> = std::fs::read_dir(&root)
        .expect("plugins/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "expr")
        .collect();
    dirs.sort();
    let mut listed: Vec<&str> = BUILTIN_PLUGINS.to_vec();
    listed.sort_unstable();
    assert_eq!(dirs, listed);
    let script = std::fs::read_to_string(root.join("../scripts/build-plugins.sh")).expect("script");
    for name in BUILTIN_PLUGINS {
        assert!(
            script.contains(name),
            "build-plugins.sh does not build {name}"
        );
    }
}

#[test]
fn a_missing_required_field_names_the_page_that_lists_the_fields() {
    let dir = dir_with_plugins(&[]);
    let d = load_in(
        dir.path(),
        "sources:\n  gen: {type: datagen, kind: orders}\nsinks:\n  out: {type: file, inputs: [gen]}\n",
    )
    .expect_err("no path");
    let got = messages(&d);
    assert_eq!(
        got,
        ["4:8: sinks.out: missing field `path` (it is required); docs/connectors/sinks/file.md lists the fields"]
    );
}

#[test]
fn a_connection_fills_a_body_and_refuses_what_it_would_override() {
    let dir = dir_with_plugins(&[]);
    let text = "sources:\n  gen: {type: datagen, kind: people, connection: gen_conn}\nsinks:\n  o: {type: file, path: o.jsonl, inputs: [gen], connection: files}\n";
    // No connections (the command line): refused, saying where they exist.
    let err = load_in(dir.path(), text).expect_err("connection outside a server");
    assert_eq!(
        messages(&err),
        [
            "2:50: sources.gen.connection: named connections exist only on a server (`sluice serve`); here, write the settings in the file or read them with `${VAR}`",
            "4:61: sinks.o.connection: named connections exist only on a server (`sluice serve`); here, write the settings in the file or read them with `${VAR}`",
        ]
    );
    let mut conns = BTreeMap::new();
    let mut fields = serde_json::Map::new();
    fields.insert("count".into(), serde_json::json!(3));
    conns.insert(
        "gen_conn".to_string(),
        Connection {
            kind: Some("datagen".into()),
            fields: fields.clone(),
        },
    );
    let mut path = serde_json::Map::new();
    path.insert("path".into(), serde_json::json!("elsewhere.jsonl"));
    conns.insert(
        "files".to_string(),
        Connection {
            kind: None,
            fields: path,
        },
    );
    let options = LoadOptions {
        plugin_path: vec![dir.path().to_path_buf()],
        connections: Some(std::sync::Arc::new(conns)),
        ..Default::default()
    };
    let err = load_str(&dir.path().join("p.yaml"), text, &options, &no_env)
        .expect_err("path given twice");
    assert_eq!(
        messages(&err),
        ["4:25: sinks.o.path: `path` comes from connection `files`; remove it here or use another connection"]
    );
    let fixed = text.replace(", connection: files", "");
    let p = load_str(&dir.path().join("p.yaml"), &fixed, &options, &no_env)
        .unwrap_or_else(|d| panic!("{}", messages(&d).join("\n")));
    assert_eq!(p.sources.len(), 1);
    // A datagen source took `count` from its connection: it is bounded.
    assert!(format!("{:?}", p.sources[0].config).contains("count: Some(3)"));
    let wrong = fixed.replace("connection: gen_conn", "connection: gen_con");
    let err = load_str(&dir.path().join("p.yaml"), &wrong, &options, &no_env).expect_err("unknown");
    assert_eq!(
        messages(&err),
        ["2:50: sources.gen.connection: unknown connection `gen_con`; did you mean `gen_conn`? Expected one of files, gen_conn"]
    );
}

#[test]
fn batch_size_and_channel_capacity_are_bounded_so_a_file_cannot_make_the_host_reserve_what_it_lacks(
) {
    let dir = tempfile::tempdir().expect("tmp");
    let body = "sources:\n  gen: {type: datagen, kind: orders, count: 1}\nsinks:\n  out: {type: stdout, inputs: [gen]}\n";
    for (setting, expected) in [
        // 2^40 events of 256 bytes reserved up front aborted the process.
        (
            "batch_size: 1099511627776",
            "batch_size: 1099511627776 is out of range: expected 1 to 65536",
        ),
        // No event ever fits in a batch of none: the source spun.
        (
            "batch_size: 0",
            "batch_size: 0 is out of range: expected 1 to 65536",
        ),
        (
            "channel_capacity: 0",
            "channel_capacity: 0 is out of range: expected 1 to 256",
        ),
        (
            "channel_capacity: 100000",
            "channel_capacity: 100000 is out of range: expected 1 to 256",
        ),
    ] {
        let text = format!("{setting}\n{body}");
        let err = load_in(dir.path(), &text).expect_err(setting);
        let all = messages(&err).join("\n");
        assert!(all.contains(expected), "{setting}: {all}");
        assert!(all.starts_with("1:"), "points at the line: {all}");
    }
    let ok = load_in(
        dir.path(),
        &format!("batch_size: 65536\nchannel_capacity: 256\n{body}"),
    )
    .expect("the largest values load");
    assert_eq!((ok.batch_size, ok.channel_capacity), (65_536, 256));
}
