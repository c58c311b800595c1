//! `sluice validate` reports every problem with file, line, field and what
//! was expected, and exits non-zero.

use crate::support::*;

#[test]
fn validate_reports_every_problem_with_line_field_and_expectation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("bad.yaml");
    std::fs::write(
        &p,
        format!(
            "name: bad\nsources:\n  in:\n    type: file\n    pth: x.jsonl\n  gen:\n    type: datagen\n    kind: planets\nstages:\n  f:\n    plugin: {}\n    inputs: [nowhere]\n    on_error: explode\n  g:\n    plugin: {}\n    inputs: [gen]\n    params: {{where: \"price >\"}}\nsinks:\n  out: {{type: file, path: o.jsonl, inputs: [g]}}\nsurprise: 1\n",
            q(&plugin("filter")),
            q(&plugin("filter"))
        ),
    )
    .expect("write");
    let out = sluice().arg("validate").arg(&p).output().expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let expect = [
        (
            "bad.yaml:5:5: sources.in.pth",
            "unknown field `pth`; did you mean `path`? Fields here: path, key_field",
        ),
        (
            "bad.yaml:8:11: sources.gen.kind",
            "unknown value `planets`; expected one of `people`, `customers`",
        ),
        (
            "bad.yaml:12:13: stages.f.inputs",
            "unknown input `nowhere`; expected one of: f, g, gen, in",
        ),
        (
            "bad.yaml:13:15: stages.f.on_error",
            "expected one of `dead-letter`, `skip`, `fail`",
        ),
        (
            "bad.yaml:17:13: stages.g.params",
            "refused the parameters of stage `g`",
        ),
        (
            "bad.yaml:20:1: surprise",
            "unknown field `surprise`; expected one of name,",
        ),
    ];
    for (place, what) in expect {
        let line = err
            .lines()
            .find(|l| l.contains(place))
            .unwrap_or_else(|| panic!("no error at `{place}` in:\n{err}"));
        assert!(line.contains(what), "`{line}` should say `{what}`");
    }
    // All of them in one pass, and nothing else (no knock-on errors).
    assert!(err.contains("6 problem(s) found"), "{err}");
}

/// The file from issue 20 that took three passes: now one, each line with
/// its place, the words a data engineer uses, and how to fix it.
#[test]
fn validate_finds_every_problem_of_a_broken_file_in_one_pass_with_fixes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("bad.yaml");
    std::fs::write(
        &p,
        format!(
            "name: bad\nbatch_size: ten\nsources:\n  in:\n    type: file\n    path: missing.jsonl\n  gen:\n    type: datagen\n    kind: orders\n    count: \"${{SLUICE_TEST_UNSET}}\"\n  pg:\n    type: postgres-cdcc\nstages:\n  p:\n    plugin: projekt\n    inputs: [gen]\n  g:\n    plugin: {}\n    inputs: [gen]\n    params: {{where: \"price >\"}}\nsinks:\n  out: {{type: file, path: o.jsonl, inputs: [gg]}}\nstagse: {{}}\n",
            q(&plugin("filter")),
        ),
    )
    .expect("write");
    let out = sluice()
        .arg("validate")
        .arg(&p)
        .env_remove("SLUICE_TEST_UNSET")
        .env("SLUICE_PLUGIN_PATH", target_dir().join("plugins"))
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let expect = [
        "error: bad.yaml:2:13: batch_size: found the text \"ten\", expected a whole number (0 or more)",
        "error: bad.yaml:6:11: sources.in.path: input file ",
        "error: bad.yaml:10:12: sources.gen.count: environment variable `SLUICE_TEST_UNSET` is not set (write `${SLUICE_TEST_UNSET:-default}` to give a default)",
        "error: bad.yaml:12:11: sources.pg.type: unknown type `postgres-cdcc`; did you mean `postgres-cdc`?",
        "error: bad.yaml:15:13: stages.p.plugin: plugin `projekt` not found (did you mean `project`?); looked for projekt.wasm in $SLUICE_PLUGIN_PATH, the plugins directory beside the sluice binary. Plugins found: filter,",
        "error: bad.yaml:20:13: stages.g.params: plugin filter",
        "error: bad.yaml:22:44: sinks.out.inputs: unknown input `gg`; did you mean `g`? Expected one of: g, gen, in, p, pg",
        "error: bad.yaml:23:1: stagse: unknown field `stagse`; did you mean `stages`?",
    ];
    let lines: Vec<&str> = err.lines().collect();
    for want in expect {
        let (prefix, rest) = want.split_at("error: ".len());
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(prefix) && l.contains(rest)),
            "no line `{want}` in:\n{err}"
        );
    }
    assert!(err.contains("missing.jsonl does not exist"), "{err}");
    assert!(
        err.ends_with(&format!("{} problem(s) found\n", expect.len())),
        "one line per problem, no knock-on errors:\n{err}"
    );
    for noise in ["null", "u64", "os error", "build-plugins.sh", "/plugins/"] {
        assert!(!err.contains(noise), "`{noise}` in:\n{err}");
    }
}

#[test]
fn validate_checks_inputs_and_plugin_parameters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("p.yaml");
    std::fs::write(
        &p,
        format!(
            "sources:\n  gen: {{type: datagen, kind: orders, count: 1}}\nstages:\n  f:\n    plugin: {}\n    inputs: [gen]\n    params: {{where: \"price >\"}}\nsinks:\n  out: {{type: stdout, inputs: [f, ghost]}}\n",
            q(&plugin("filter"))
        ),
    )
    .expect("write");
    let out = sluice().arg("validate").arg(&p).output().expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("p.yaml:9:")
            && err.contains("sinks.out.inputs: unknown input `ghost`; expected one of: f, gen"),
        "{err}"
    );
    // Parameters are checked by the plugin itself, before anything runs.
    let out2 = {
        std::fs::write(
            &p,
            format!(
                "sources:\n  gen: {{type: datagen, kind: orders, count: 1}}\nstages:\n  f:\n    plugin: {}\n    inputs: [gen]\n    params: {{where: \"price >\"}}\nsinks:\n  out: {{type: stdout, inputs: [f]}}\n",
                q(&plugin("filter"))
            ),
        )
        .expect("write");
        sluice().arg("validate").arg(&p).output().expect("runs")
    };
    let err2 = String::from_utf8_lossy(&out2.stderr);
    assert!(!out2.status.success());
    assert!(
        err2.contains("p.yaml:7:")
            && err2.contains("stages.f.params")
            && err2.contains("refused the parameters"),
        "{err2}"
    );
}

#[test]
fn a_plugin_of_the_wrong_world_is_refused_by_validate_and_run() {
    // A component that is not a Sluice plugin at all: the misbehave guest is
    // fine, so make one by stripping it to a bare component with no exports
    // is not possible without tools; instead point a stage at a non-component.
    let dir = tempfile::tempdir().expect("tempdir");
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, [0u8, b'a', b's', b'm', 1, 0, 0, 0]).expect("write");
    let p = dir.path().join("p.yaml");
    std::fs::write(
        &p,
        "sources:\n  gen: {type: datagen, kind: orders, count: 1}\nstages:\n  f: {plugin: core.wasm, inputs: [gen]}\nsinks:\n  out: {type: stdout, inputs: [f]}\n",
    )
    .expect("write");
    for cmd in ["validate", "run"] {
        let out = sluice().arg(cmd).arg(&p).output().expect("runs");
        assert!(!out.status.success(), "{cmd} must refuse");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("p.yaml:4:") && err.contains("core WebAssembly module, not a component"),
            "{cmd}: {err}"
        );
    }
}

#[test]
fn env_interpolation_fills_secrets_and_names_missing_variables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("p.yaml");
    std::fs::write(
        &p,
        "sources:\n  gen: {type: datagen, kind: orders, count: \"${SLUICE_TEST_COUNT}\"}\nsinks:\n  out: {type: file, path: out.jsonl, inputs: [gen]}\n",
    )
    .expect("write");
    let out = sluice()
        .arg("validate")
        .arg(&p)
        .env_remove("SLUICE_TEST_COUNT")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("environment variable `SLUICE_TEST_COUNT` is not set"));
    run_ok(
        sluice()
            .arg("run")
            .arg(&p)
            .arg("--no-progress")
            .env("SLUICE_TEST_COUNT", "7"),
    );
    assert_eq!(lines(&dir.path().join("out.jsonl")).len(), 7);
}

#[test]
fn cpu_budget_accepts_milliseconds_or_unlimited_where_the_operator_allows_it_and_refuses_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("p.yaml");
    let write = |budget: &str| {
        std::fs::write(
            &p,
            format!(
                "sources:\n  gen: {{type: datagen, kind: orders, count: 50}}\nstages:\n  copy:\n    plugin: {}\n    inputs: [gen]\n    limits: {{cpu_ms_per_call: {budget}}}\nsinks:\n  out: {{type: file, path: out.jsonl, inputs: [copy]}}\n",
                q(&plugin("passthrough"))
            ),
        )
        .expect("write");
    };
    write("0");
    let out = sluice().arg("validate").arg(&p).output().expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("p.yaml:7:")
            && err.contains("stages.copy.limits.cpu_ms_per_call")
            && err.contains("`unlimited`"),
        "{err}"
    );
    write("unlimited");
    let err = run_failing(sluice().arg("validate").arg(&p));
    assert!(
        err.contains("stages.copy.limits.cpu_ms_per_call")
            && err.contains("not allowed on this host")
            && err.contains("allow_unlimited_cpu"),
        "unlimited needs the operator's consent: {err}"
    );
    let host = dir.path().join("host.yaml");
    std::fs::write(&host, "ceilings: {allow_unlimited_cpu: true}\n").expect("write");
    run_ok(
        sluice()
            .arg("run")
            .arg(&p)
            .arg("--no-progress")
            .env("SLUICE_HOST_CONFIG", &host),
    );
    assert_eq!(
        lines(&dir.path().join("out.jsonl")).len(),
        50,
        "a trusted stage runs every event"
    );
}

#[test]
fn limits_above_the_operator_ceilings_fail_validation_naming_field_value_and_ceiling() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write_pipeline(
        dir.path(),
        &format!(
            "sources:\n  gen: {{type: datagen, kind: orders, count: 5}}\nstages:\n  copy:\n    plugin: {}\n    inputs: [gen]\n    limits: {{memory_mb: 4096, state_mb: 100}}\nsinks:\n  out: {{type: file, path: out.jsonl, inputs: [copy]}}\n",
            q(&plugin("passthrough"))
        ),
    );
    let err = run_failing(sluice().arg("validate").arg(&p));
    assert!(
        err.contains("stages.copy.limits.memory_mb")
            && err.contains("4096 is above this host's ceiling of 1024"),
        "{err}"
    );
    let host = dir.path().join("host.yaml");
    std::fs::write(
        &host,
        "ceilings:\n  memory_mb: 8192\n  output_mb_per_call: 8192\n  state_mb: 64\n",
    )
    .expect("write");
    let err = run_failing(
        sluice()
            .arg("validate")
            .arg(&p)
            .env("SLUICE_HOST_CONFIG", &host),
    );
    assert!(
        err.contains("stages.copy.limits.state_mb")
            && err.contains("100 is above this host's ceiling of 64")
            && !err.contains("limits.memory_mb"),
        "{err}"
    );
}

/// `validate --sample`: the stages run over sample events, and what a run
/// would only show in its log (a misspelled field, a number compared with a
/// string) is printed per stage at validation; `--strict` makes those
/// events dead letters, and any dead letter fails the command.
#[test]
fn validate_with_a_sample_runs_the_stages_and_names_each_mistake() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sample: String = (1..=10)
        .map(|i| format!("{{\"amount\":{i},\"currency\":\"usd\",\"name\":\"n{i}\"}}\n"))
        .collect();
    let good_sample = dir.path().join("good.jsonl");
    std::fs::write(&good_sample, &sample).expect("write");
    sample.push_str("{\"amount\":\"7\",\"currency\":\"eur\"}\nnot json\n");
    let bad_sample = dir.path().join("sample.jsonl");
    std::fs::write(&bad_sample, &sample).expect("write");
    std::fs::write(dir.path().join("in.jsonl"), "").expect("write");
    let p = write_pipeline(
        dir.path(),
        "name: vs\nsources:\n  in: {type: file, path: in.jsonl}\nstages:\n  small:\n    plugin: filter\n    inputs: [in]\n    params: {where: \"amout <= 1000\"}\n  cheap:\n    plugin: filter\n    inputs: [in]\n    params: {where: \"amount < 5\"}\n  shape:\n    plugin: project\n    inputs: [cheap]\n    params: {select: [amount, nmae]}\nsinks:\n  out: {type: file, path: out.jsonl, inputs: [small, shape]}\n",
    );

    let err = run_failing(
        sluice()
            .arg("validate")
            .arg(&p)
            .arg("--sample")
            .arg(&bad_sample),
    );
    for want in [
        "sample.jsonl line 12: malformed JSON",
        "sample: 11 event(s) from",
        "field `amout` is absent from all 11 events, so it reads as null; did you mean `amount`? stage=\"small\"",
        "stage `small`: 11 in, 0 out, 11 filtered out, 0 dead letter(s)",
        "`<` compares field `amount` (a string in this event) with a number 5",
        "stage `cheap`: 11 in, 4 out, 7 filtered out, 0 dead letter(s)",
        "field `nmae` is absent from all 4 events, so the output leaves it out; did you mean `name`? stage=\"shape\"",
        "stage `shape`: 4 in, 4 out, 0 filtered out, 0 dead letter(s)",
        "sink `out`: would get 4 event(s)",
        "1 sample event(s) became dead letters",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }

    let err = run_failing(
        sluice()
            .arg("validate")
            .arg(&p)
            .arg("--sample")
            .arg(&bad_sample)
            .arg("--strict"),
    );
    for want in [
        "dead letter: stage `small`: `where: amout <= 1000`: field `amout` is absent from this event",
        "dead letter: stage `small`: … and 6 more",
        "stage `small`: 11 in, 0 out, 0 filtered out, 11 dead letter(s)",
        "stage `cheap`: 11 in, 4 out, 6 filtered out, 1 dead letter(s)",
        "stage `shape`: 4 in, 0 out, 0 filtered out, 4 dead letter(s)",
        "17 sample event(s) became dead letters",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }

    // A clean sample through a correct pipeline: exit 0, counts printed.
    let fine = write_pipeline(
        dir.path(),
        "name: fine\nsources:\n  in: {type: file, path: in.jsonl}\nstages:\n  cheap:\n    plugin: filter\n    inputs: [in]\n    params: {where: \"amount < 5\"}\nsinks:\n  out: {type: file, path: out.jsonl, inputs: [cheap]}\n",
    );
    let out = run_ok(
        sluice()
            .arg("validate")
            .arg(&fine)
            .arg("--sample")
            .arg(&good_sample),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stage `cheap`: 10 in, 4 out, 6 filtered out, 0 dead letter(s)"),
        "{err}"
    );
    assert!(!err.contains(" WARN "), "{err}");
}

/// What one stage is fed is bounded too: five sources each give it the
/// whole (nearly 16 MiB) sample, and it gets only the first 64 MiB of that.
#[test]
fn validate_feeds_a_stage_of_many_inputs_at_most_its_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("in.jsonl"), "").expect("write");
    let pad = "x".repeat(1000);
    let line = format!("{{\"amount\":1,\"pad\":\"{pad}\"}}\n");
    let n = (16 << 20) / line.len() - 1;
    let sample = dir.path().join("sample.jsonl");
    std::fs::write(&sample, line.repeat(n)).expect("write");
    let sources: String = (0..5)
        .map(|i| format!("  s{i}: {{type: file, path: in.jsonl}}\n"))
        .collect();
    let p = write_pipeline(
        dir.path(),
        &format!("name: wide\nsources:\n{sources}stages:\n  all:\n    plugin: filter\n    inputs: [s0, s1, s2, s3, s4]\n    params: {{where: \"amount < 5\"}}\nsinks:\n  out: {{type: file, path: out.jsonl, inputs: [all]}}\n"),
    );
    let out = run_ok(
        sluice()
            .arg("validate")
            .arg(&p)
            .arg("--sample")
            .arg(&sample),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let fed = (64 << 20) / (line.len() - 1);
    assert!(
        err.contains(&format!(
            "stage `all`: fed only the first {fed} event(s): its inputs add up to more than 67108864 bytes"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "stage `all`: {fed} in, {fed} out, 0 filtered out, 0 dead letter(s)"
        )),
        "{err}"
    );
}

/// A sample is bounded: a file over 16 MiB is refused before it is read.
#[test]
fn validate_refuses_a_sample_over_its_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("in.jsonl"), "").expect("write");
    let p = write_pipeline(
        dir.path(),
        "name: big\nsources:\n  in: {type: file, path: in.jsonl}\nstages:\n  cheap:\n    plugin: filter\n    inputs: [in]\n    params: {where: \"amount < 5\"}\nsinks:\n  out: {type: file, path: out.jsonl, inputs: [cheap]}\n",
    );
    let big = dir.path().join("big.jsonl");
    let file = std::fs::File::create(&big).expect("create");
    file.set_len((16 << 20) + 1).expect("grow");
    let err = run_failing(sluice().arg("validate").arg(&p).arg("--sample").arg(&big));
    assert!(
        err.contains("16777217 bytes; a sample is at most 16777216 bytes"),
        "{err}"
    );
}
