//! The plugin commands as a user runs them.

use crate::support::*;

#[test]
fn plugin_test_prints_exactly_the_three_non_aud_orders() {
    let out = run_ok(
        sluice()
            .args(["plugin", "test"])
            .arg(plugin("filter"))
            .arg("--input")
            .arg(fixture("seed-logistics/orders.jsonl"))
            .args(["--param", "where=currency != 'aud'"]),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let orders: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let ids: Vec<&str> = orders
        .iter()
        .map(|o| o["order_id"].as_str().expect("order_id"))
        .collect();
    assert_eq!(ids, vec!["13", "17", "15"]);
    assert!(orders.iter().all(|o| o["currency"] != "aud"));
}

#[test]
fn plugin_test_reports_rejected_events_with_reasons_on_stderr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"a\":1}\n[1,2]\nnot json\n").expect("write");
    let out = run_ok(
        sluice()
            .args(["plugin", "test"])
            .arg(plugin("project"))
            .arg("--input")
            .arg(&input)
            .args(["--param", "drop=[\"a\"]"]),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "{}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 2"),
        "the non-object is dead-lettered with its line: {stderr}"
    );
    assert!(stderr.contains("line 3: malformed JSON"), "{stderr}");
}

#[test]
fn plugin_inspect_shows_world_contract_exports_imports_and_size() {
    let out = run_ok(sluice().args(["plugin", "inspect"]).arg(plugin("filter")));
    let s = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "world:     sluice:plugin:transform",
        "contract:  0.2.0",
        "sluice:plugin/transformer@0.2.0",
        "sluice:plugin/log@0.2.0",
        "size:",
        "plugin:    sluice-plugin-filter@0.1.0",
        // The section survives the release build (LTO, strip, componentize).
        "tables:    reads field tables",
    ] {
        assert!(s.contains(needle), "missing `{needle}` in:\n{s}");
    }
}

#[test]
fn only_plugins_that_declare_it_get_field_tables() {
    for (name, reads) in [
        ("passthrough", false),
        ("project", true),
        ("lookup-join", true),
        ("window-aggregate", true),
    ] {
        let out = run_ok(sluice().args(["plugin", "inspect"]).arg(plugin(name)));
        let s = String::from_utf8_lossy(&out.stdout);
        let want = if reads {
            "tables:    reads field tables"
        } else {
            "tables:    scans each value itself"
        };
        assert!(s.contains(want), "{name}: missing `{want}` in:\n{s}");
    }
}

#[test]
fn plugin_build_prints_the_component_path_as_the_last_stdout_line() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/passthrough");
    let cache = tempfile::tempdir().expect("tempdir");
    let out = run_ok(
        sluice()
            .args(["plugin", "build"])
            .arg(&dir)
            .env("SLUICE_CACHE_DIR", cache.path()),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().expect("a line");
    assert!(last.ends_with("sluice_plugin_passthrough.wasm"), "{stdout}");
    // Precompiled into the cache, so the first run does not compile.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("precompiled sluice_plugin_passthrough"),
        "{stderr}"
    );
    let inspected = run_ok(
        sluice()
            .args(["plugin", "inspect"])
            .arg(last)
            .env("SLUICE_CACHE_DIR", cache.path()),
    );
    assert!(
        String::from_utf8_lossy(&inspected.stdout).contains("compiled:  from cache"),
        "{}",
        String::from_utf8_lossy(&inspected.stdout)
    );
    let bytes = std::fs::read(last).expect("component exists");
    assert_eq!(&bytes[..4], b"\0asm");
    assert_ne!(
        &bytes[4..8],
        &[1, 0, 0, 0],
        "a component, not a core module"
    );
}

#[test]
fn a_core_module_and_a_non_wasm_file_are_refused_with_what_they_are() {
    let dir = tempfile::tempdir().expect("tempdir");
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, [0u8, b'a', b's', b'm', 1, 0, 0, 0]).expect("write");
    let out = sluice()
        .args(["plugin", "inspect"])
        .arg(&core)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("core WebAssembly module, not a component")
    );
    let text = dir.path().join("notes.wasm");
    std::fs::write(&text, "hello").expect("write");
    let out = sluice()
        .args(["plugin", "inspect"])
        .arg(&text)
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a WebAssembly file"));
}

#[test]
fn plugin_test_and_inspect_take_a_builtin_by_name() {
    let out = run_ok(
        sluice()
            .args(["plugin", "test", "filter", "--input"])
            .arg(fixture("seed-logistics/orders.jsonl"))
            .args(["--param", "where=currency == 'aud'"]),
    );
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            v["order_id"].as_str().expect("order_id").to_string()
        })
        .collect();
    assert_eq!(ids, ["29", "22"]);
    let out = run_ok(sluice().args(["plugin", "inspect", "project"]));
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("plugin:    sluice-plugin-project@0.1.0"), "{s}");
    assert!(
        s.contains("plugins/project.wasm"),
        "the file it resolved: {s}"
    );
}

#[test]
fn a_missing_plugin_is_named_once_with_the_closest_builtin_and_no_paths() {
    let input = fixture("seed-logistics/orders.jsonl");
    let out = sluice()
        .args(["plugin", "test", "fliter", "--input"])
        .arg(&input)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: plugin `fliter` not found (did you mean `filter`?)"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    for noise in ["os error", "build-plugins.sh", "/plugins"] {
        assert!(!err.contains(noise), "`{noise}` in {err}");
    }
    let out = sluice()
        .args(["plugin", "inspect", "./nowhere.wasm"])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim(),
        "error: plugin file `./nowhere.wasm` does not exist",
        "said once: {err}"
    );
}

#[test]
fn plugin_list_shows_builtins_and_cached_plugins_with_versions_and_hashes() {
    let cache = tempfile::tempdir().expect("tempdir");
    // Only `passthrough` has been compiled before the listing.
    run_ok(
        sluice()
            .args(["plugin", "inspect", "passthrough"])
            .env("SLUICE_CACHE_DIR", cache.path()),
    );
    let out = run_ok(
        sluice()
            .args(["plugin", "list"])
            .env("SLUICE_CACHE_DIR", cache.path()),
    );
    let s = String::from_utf8_lossy(&out.stdout);
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(
            std::fs::read(plugin("passthrough")).expect("read"),
        ))
    };
    let row = s
        .lines()
        .find(|l| l.trim_start().starts_with("passthrough "))
        .unwrap_or_else(|| panic!("no passthrough row in:\n{s}"));
    assert!(
        row.contains("built-in")
            && row.contains("sluice-plugin-passthrough@0.1.0 (transform)")
            && row.contains(&format!("sha256 {}", &sha[..12])),
        "{row}"
    );
    for name in ["filter", "project", "window-join", "lookup-join"] {
        assert!(
            s.lines()
                .any(|l| l.trim_start().starts_with(&format!("{name} "))),
            "{name} missing:\n{s}"
        );
    }
    let cached: Vec<&str> = s
        .lines()
        .skip_while(|l| !l.starts_with("compile cache"))
        .skip(1)
        .collect();
    assert!(
        cached
            .iter()
            .any(|l| l.contains(&format!("sha256 {}", &sha[..12])) && l.ends_with("passthrough")),
        "the cached artifact is tied to its plugin:\n{s}"
    );
}

#[test]
fn colour_goes_to_a_pipe_only_when_asked_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write_pipeline(
        dir.path(),
        "sources:\n  gen: {type: datagen, kind: orders, count: 3}\nsinks:\n  out: {type: file, path: out.jsonl, inputs: [gen]}\n",
    );
    let stderr = |args: &[&str], no_color: bool| {
        let mut cmd = sluice();
        if !no_color {
            cmd.env_remove("NO_COLOR");
        }
        let out = run_ok(cmd.args(args).arg("run").arg(&p).arg("--no-progress"));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let auto = stderr(&[], false);
    assert!(
        auto.contains("INFO") && !auto.contains('\u{1b}'),
        "a pipe gets no colour: {auto:?}"
    );
    assert!(
        stderr(&["--color", "always"], true).contains('\u{1b}'),
        "always means always"
    );
    assert!(!stderr(&["--color", "never"], false).contains('\u{1b}'));
    assert!(!stderr(&[], true).contains('\u{1b}'), "NO_COLOR");
}

#[test]
fn a_rerun_with_a_changed_sink_refuses_and_reset_starts_over_saying_what_it_deletes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    let lines: String = (0..50).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    std::fs::write(&input, lines).expect("input");
    let write = |out: &str| {
        write_pipeline(
            dir.path(),
            &format!(
                "name: orders\nsources:\n  in: {{type: file, path: {}}}\nsinks:\n  out: {{type: file, path: {}, inputs: [in]}}\n",
                q(&input),
                q(&dir.path().join(out))
            ),
        )
    };
    let p = write("a.jsonl");
    run_ok(sluice().arg("run").arg(&p).arg("--no-progress"));
    assert!(dir.path().join(".sluice/orders/checkpoint.json").exists());

    // The sink now writes elsewhere: resuming would leave b.jsonl without
    // the first 50 events, so the run refuses and names the way out.
    let p = write("b.jsonl");
    let err = run_failing(sluice().arg("run").arg(&p).arg("--no-progress"));
    assert!(err.contains("sink `out`'s configuration changed"), "{err}");
    assert!(err.contains("sluice run --reset"), "{err}");

    // Without a terminal and without --yes, `reset` deletes nothing.
    let err = run_failing(sluice().arg("reset").arg(&p));
    assert!(err.contains("pass --yes"), "{err}");
    assert!(dir.path().join(".sluice/orders/checkpoint.json").exists());

    let out = run_ok(
        sluice()
            .arg("run")
            .arg("--reset")
            .arg(&p)
            .arg("--no-progress"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("checkpoint.json: checkpoint"), "{stderr}");
    assert!(stderr.contains("sink   `out` in 50, wrote 50"), "{stderr}");
    assert_eq!(json_lines(&dir.path().join("b.jsonl")).len(), 50);

    let out = run_ok(sluice().arg("reset").arg("--yes").arg(&p));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("reset: deleted"), "{stderr}");
    assert!(!dir.path().join(".sluice/orders/checkpoint.json").exists());
}

/// A stream shorter than the watch's 100 events still hears of a field none
/// of its events had: the filter reports it when the run retires it.
#[test]
fn a_typo_in_a_stream_of_ten_events_is_reported_at_the_end_of_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    let events: String = (0..10)
        .map(|i| format!("{{\"amount\":{i},\"currency\":\"usd\"}}\n"))
        .collect();
    std::fs::write(&input, events).expect("write");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "name: short\nsources:\n  in:\n    type: file\n    path: {}\nstages:\n  small:\n    plugin: filter\n    inputs: [in]\n    params:\n      where: \"amout <= 1000\"\n  fine:\n    plugin: filter\n    inputs: [in]\n    params:\n      where: \"amount < 3\"\nsinks:\n  out:\n    type: file\n    path: {}\n    inputs: [small, fine]\n",
            q(&input),
            q(&dir.path().join("out.jsonl"))
        ),
    );
    let out = run_ok(sluice().arg("run").arg(&p).arg("--no-progress"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains(
            "`where: amout <= 1000`: field `amout` is absent from all 10 events, so it reads as null; did you mean `amount`?"
        ) && warnings[0].contains("stage=\"small\""),
        "{stderr}"
    );
    // Reported before the summary, not after the process is gone.
    let warned_at = stderr.find(" WARN ").expect("warned");
    let done_at = stderr.find("done: ").expect("summary");
    assert!(warned_at < done_at, "{stderr}");
    assert_eq!(lines(&dir.path().join("out.jsonl")).len(), 3);
}

/// `--strict` turns the watch's warnings into dead letters with the same
/// words as their reason, while correct events flow as before; a stage's own
/// `strict: false` opts it out, and `strict` on a plugin without it fails
/// `validate` naming the file, the stage and the field.
#[test]
fn strict_dead_letters_typos_and_type_mismatches_with_the_reason_and_keeps_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    let events: String = (0..10)
        .map(|i| match i {
            3 => "{\"amuont\":3,\"currency\":\"usd\"}\n".to_string(),
            6 => "{\"amount\":\"6\",\"currency\":\"usd\"}\n".to_string(),
            _ => format!("{{\"amount\":{i},\"currency\":\"usd\"}}\n"),
        })
        .collect();
    std::fs::write(&input, events).expect("write");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "name: strict\nsources:\n  in:\n    type: file\n    path: {}\nstages:\n  cheap:\n    plugin: filter\n    inputs: [in]\n    params:\n      where: \"amount < 5\"\n  slim:\n    plugin: project\n    inputs: [in]\n    params:\n      select: amount, currency\n  lax:\n    plugin: filter\n    inputs: [in]\n    params:\n      where: \"amount >= 8\"\n      strict: false\nsinks:\n  out:\n    type: file\n    path: {}\n    inputs: [cheap, slim, lax]\n",
            q(&input),
            q(&dir.path().join("out.jsonl"))
        ),
    );
    let out = run_ok(
        sluice()
            .current_dir(dir.path())
            .arg("run")
            .arg(&p)
            .arg("--no-progress")
            .arg("--strict"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("3 dead-lettered"), "{stderr}");
    let letters = json_lines(&dir.path().join(".sluice/strict/dead-letters.jsonl"));
    let mut got: Vec<(String, String, String)> = letters
        .iter()
        .map(|l| {
            let h = &l["headers"];
            (
                h["sluice.error.stage"].as_str().unwrap_or("").to_string(),
                l["value"].to_string(),
                h["sluice.error.message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    got.sort();
    let want = [
        (
            "cheap",
            r#"{"amount":"6","currency":"usd"}"#,
            "`where: amount < 5`: `<` compares field `amount` (a string in this event) with a number 5, which is never true; write both as the same type",
        ),
        (
            "cheap",
            r#"{"amuont":3,"currency":"usd"}"#,
            "`where: amount < 5`: field `amount` is absent from this event, so it reads as null; did you mean `amuont`?",
        ),
        (
            "slim",
            r#"{"amuont":3,"currency":"usd"}"#,
            "`select`: field `amount` is absent from this event, so the output leaves it out; did you mean `amuont`?",
        ),
    ]
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
    assert_eq!(got, want);
    // Correct events still flow: 4 cheap ones, 9 slimmed, and `lax` (its own
    // `strict: false`) filters 8 and 9 through and drops the rest silently.
    assert_eq!(lines(&dir.path().join("out.jsonl")).len(), 4 + 9 + 2);

    // `strict` on a stage whose plugin does not have it.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        format!(
            "name: bad\nsources:\n  in:\n    type: file\n    path: {}\nstages:\n  hide:\n    plugin: mask\n    inputs: [in]\n    params:\n      drop: [currency]\n      strict: true\nsinks:\n  out:\n    type: stdout\n    inputs: [hide]\n",
            q(&input)
        ),
    )
    .expect("write");
    let stderr = run_failing(sluice().arg("validate").arg(&bad));
    assert!(
        stderr.contains("bad.yaml:")
            && stderr.contains("stages.hide.params")
            && stderr.contains("unknown parameter `strict`"),
        "{stderr}"
    );
}

/// Issue 20's first complaint: a misspelled field and a number compared with
/// a string both made a filter drop everything, silently. Now each is named
/// once in the log, with its stage, while the run still ends normally.
#[test]
fn a_typo_and_a_type_mismatch_in_where_are_reported_with_the_stage_and_a_suggestion() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    let events: String = (0..2000)
        .map(|i| format!("{{\"amount\":{i},\"currency\":\"usd\"}}\n"))
        .collect();
    std::fs::write(&input, events).expect("write");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "name: typo\nsources:\n  in:\n    type: file\n    path: {}\nstages:\n  small:\n    plugin: filter\n    inputs: [in]\n    params:\n      where: \"amout <= 1000\"\n  cheap:\n    plugin: filter\n    inputs: [in]\n    params:\n      where: \"amount <= '1000'\"\n  fine:\n    plugin: filter\n    inputs: [in]\n    params:\n      where: \"amount < 10 and currency = 'usd'\"\nsinks:\n  out:\n    type: file\n    path: {}\n    inputs: [small, cheap, fine]\n",
            q(&input),
            q(&dir.path().join("out.jsonl"))
        ),
    );
    let out = run_ok(sluice().arg("run").arg(&p).arg("--no-progress"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warnings.len(), 2, "{stderr}");
    assert!(
        warnings.iter().any(|l| l.contains(
            "`where: amout <= 1000`: field `amout` is absent from all 100 events so far, so it reads as null; did you mean `amount`?"
        ) && l.contains("stage=\"small\"")),
        "{stderr}"
    );
    assert!(
        warnings.iter().any(|l| l.contains(
            "`where: amount <= '1000'`: `<=` compares field `amount` (a number in this event) with a string \"1000\", which is never true"
        ) && l.contains("stage=\"cheap\"")),
        "{stderr}"
    );
    assert!(
        stderr.contains("stage  `small` in 2000, out 0, filtered out 2000"),
        "{stderr}"
    );
    assert_eq!(lines(&dir.path().join("out.jsonl")).len(), 10);
}
