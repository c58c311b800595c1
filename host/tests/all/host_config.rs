//! The operator's host configuration (`--host-config FILE`, else
//! `$SLUICE_HOST_CONFIG`): what pipeline files may not exceed on this host.
//! Ceilings, the `${VAR}`s a file may read and the directories plugins may
//! come from; every breach names the field.

use std::path::Path;

use crate::support::*;

fn host(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write host config");
    p
}

fn copy_pipeline(dir: &Path, plugin: &str, limits: &str) -> std::path::PathBuf {
    write_pipeline(
        dir,
        &format!(
            "sources:\n  gen: {{type: datagen, kind: orders, count: 5}}\nstages:\n  copy:\n    plugin: {plugin}\n    inputs: [gen]\n    limits: {{{limits}}}\nsinks:\n  out: {{type: file, path: out.jsonl, inputs: [copy]}}\n"
        ),
    )
}

#[test]
fn the_flag_wins_over_the_environment_and_a_bad_file_names_the_file_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = copy_pipeline(dir.path(), &q(&plugin("passthrough")), "memory_mb: 128");
    let strict = host(dir.path(), "strict.yaml", "ceilings: {memory_mb: 64}\n");
    let lenient = host(dir.path(), "lenient.yaml", "ceilings: {memory_mb: 256}\n");
    let err = run_failing(
        sluice()
            .arg("validate")
            .arg(&p)
            .env("SLUICE_HOST_CONFIG", &strict),
    );
    assert!(
        err.contains("stages.copy.limits.memory_mb")
            && err.contains("128 is above this host's ceiling of 64")
            && err.contains("--host-config"),
        "{err}"
    );
    run_ok(
        sluice()
            .arg("validate")
            .arg(&p)
            .arg("--host-config")
            .arg(&lenient)
            .env("SLUICE_HOST_CONFIG", &strict),
    );
    // A typo, a wrong type, an unknown section: the file, the field and what
    // was expected, before anything runs.
    for (text, field, expected) in [
        (
            "ceilings:\n  memroy_mb: 64\n",
            "`ceilings.memroy_mb`",
            "expected one of",
        ),
        (
            "ceilings:\n  memory_mb: lots\n",
            "`ceilings.memory_mb`",
            "expected u64",
        ),
        ("env:\n  allow: PG\n", "`env.allow`", "expected a sequence"),
        (
            "sandbox: {}\n",
            "unknown field `sandbox`",
            "expected one of `ceilings`, `env`, `plugins`",
        ),
    ] {
        let bad = host(dir.path(), "bad.yaml", text);
        for cmd in ["validate", "run"] {
            let err = run_failing(sluice().arg(cmd).arg(&p).arg("--host-config").arg(&bad));
            assert!(
                err.contains("host configuration")
                    && err.contains("bad.yaml")
                    && err.contains(field)
                    && err.contains(expected),
                "{cmd} with {text:?}: {err}"
            );
        }
    }
    assert!(
        !dir.path().join("out.jsonl").exists(),
        "nothing ran under a bad host config"
    );
    // Every command that loads pipelines takes the flag and says it wins.
    for cmd in ["run", "validate", "sql", "serve"] {
        let out = run_ok(sluice().arg(cmd).arg("--help"));
        let help = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            help.contains("--host-config <FILE>") && help.contains("Overrides $SLUICE_HOST_CONFIG"),
            "{cmd} --help: {help}"
        );
    }
}

#[test]
fn log_bytes_per_call_cannot_exceed_the_operators_ceiling() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = copy_pipeline(
        dir.path(),
        &q(&plugin("passthrough")),
        "log_kb_per_call: 16",
    );
    let h = host(dir.path(), "host.yaml", "ceilings: {log_kb_per_call: 8}\n");
    let err = run_failing(
        sluice()
            .arg("validate")
            .arg(&p)
            .arg("--host-config")
            .arg(&h),
    );
    assert!(
        err.contains("stages.copy.limits.log_kb_per_call")
            && err.contains("16 is above this host's ceiling of 8"),
        "{err}"
    );
    // Without a host config the default ceiling (1024 KiB) allows it.
    run_ok(
        sluice()
            .arg("validate")
            .arg(&p)
            .env_remove("SLUICE_HOST_CONFIG"),
    );
}

#[test]
fn a_pipeline_file_reads_only_the_variables_the_operator_allows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write_pipeline(
        dir.path(),
        "sources:\n  gen: {type: datagen, kind: orders, count: \"${SLUICE_TEST_COUNT}\"}\nsinks:\n  out: {type: file, path: \"${SLUICE_SECRET_DIR:-.}/out.jsonl\", inputs: [gen]}\n",
    );
    let h = host(
        dir.path(),
        "host.yaml",
        "env:\n  allow: [\"SLUICE_TEST_*\"]\n",
    );
    // Not allowed even with a default: the default would hide the refusal.
    let err = run_failing(
        sluice()
            .arg("run")
            .arg(&p)
            .arg("--no-progress")
            .arg("--host-config")
            .arg(&h)
            .env("SLUICE_TEST_COUNT", "7")
            .env("SLUICE_SECRET_DIR", dir.path()),
    );
    assert!(
        err.contains("p.yaml:4:")
            && err.contains("sinks.out.path")
            && err.contains("`${SLUICE_SECRET_DIR}` is not allowed")
            && err.contains("SLUICE_TEST_*")
            && !err.contains("sources.gen"),
        "{err}"
    );
    assert!(!dir.path().join("out.jsonl").exists());
    // An empty list allows none.
    let none = host(dir.path(), "none.yaml", "env: {allow: []}\n");
    let err = run_failing(
        sluice()
            .arg("validate")
            .arg(&p)
            .arg("--host-config")
            .arg(&none)
            .env("SLUICE_TEST_COUNT", "7"),
    );
    assert!(
        err.contains("sources.gen.count")
            && err.contains("`${SLUICE_TEST_COUNT}` is not allowed")
            && err.contains("no environment variables"),
        "{err}"
    );
    // What is allowed is filled in.
    std::fs::write(
        &p,
        "sources:\n  gen: {type: datagen, kind: orders, count: \"${SLUICE_TEST_COUNT}\"}\nsinks:\n  out: {type: file, path: out.jsonl, inputs: [gen]}\n",
    )
    .expect("write");
    run_ok(
        sluice()
            .arg("run")
            .arg(&p)
            .arg("--no-progress")
            .arg("--host-config")
            .arg(&h)
            .env("SLUICE_TEST_COUNT", "7"),
    );
    assert_eq!(lines(&dir.path().join("out.jsonl")).len(), 7);
}

#[test]
fn plugins_load_only_from_the_directories_the_operator_allows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let allowed = dir.path().join("allowed");
    let elsewhere = dir.path().join("elsewhere");
    for d in [&allowed, &elsewhere] {
        std::fs::create_dir_all(d).expect("mkdir");
        std::fs::copy(guest("misbehave"), d.join("own.wasm")).expect("copy");
    }
    // A link inside the allowed directory to a file outside it.
    std::os::unix::fs::symlink(elsewhere.join("own.wasm"), allowed.join("link.wasm"))
        .expect("symlink");
    let h = host(
        dir.path(),
        "host.yaml",
        &format!("plugins:\n  dirs: [{}]\n", q(&allowed)),
    );
    let validate = |plugin: &str, extra: &[&std::ffi::OsStr]| {
        let p = copy_pipeline(dir.path(), plugin, "");
        let mut cmd = sluice();
        cmd.arg("validate")
            .arg(&p)
            .arg("--host-config")
            .arg(&h)
            .args(extra);
        cmd.output().expect("runs")
    };
    for refused in ["elsewhere/own.wasm", "allowed/link.wasm"] {
        let out = validate(refused, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{refused} must be refused");
        assert!(
            err.contains("p.yaml:5:")
                && err.contains("stages.copy.plugin")
                && err.contains("outside the directories this host loads plugins from")
                && err.contains("plugins.dirs"),
            "{refused}: {err}"
        );
    }
    let ok = validate("allowed/own.wasm", &[]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Built-in plugins (beside the binary) are always allowed.
    let ok = validate("passthrough", &[]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // A search directory outside the allowed ones is refused by name.
    let out = validate("own", &["--plugin-path".as_ref(), elsewhere.as_os_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("--plugin-path")
            && err.contains("outside the directories this host loads plugins from"),
        "{err}"
    );
    let ok = validate("own", &["--plugin-path".as_ref(), allowed.as_os_str()]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Without a host config: anywhere (the single-user default).
    let p = copy_pipeline(dir.path(), "elsewhere/own.wasm", "");
    run_ok(
        sluice()
            .arg("validate")
            .arg(&p)
            .env_remove("SLUICE_HOST_CONFIG"),
    );
}

/// Core instances, memories and tables per plugin instance are the
/// operator's: the engine's pool and every store's limiter follow them.
#[test]
fn per_component_counts_are_operator_ceilings_that_name_themselves_when_hit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = copy_pipeline(dir.path(), &q(&plugin("passthrough")), "memory_mb: 64");
    // A Rust component links more than one core instance (the component's
    // own and its adapter shims).
    let one = host(
        dir.path(),
        "one.yaml",
        "ceilings: {instances_per_component: 1}\n",
    );
    let err = run_failing(sluice().arg("run").arg(&p).arg("--host-config").arg(&one));
    assert!(
        err.contains("count too high")
            && err.contains("at most 1 core instances")
            && err.contains("ceilings.instances_per_component"),
        "{err}"
    );
    let out = dir.path().join("out.jsonl");
    assert!(!out.exists() || lines(&out).is_empty(), "nothing ran");
    let roomy = host(
        dir.path(),
        "roomy.yaml",
        "ceilings: {instances_per_component: 128, memories_per_component: 2, tables_per_component: 32}\n",
    );
    run_ok(sluice().arg("run").arg(&p).arg("--host-config").arg(&roomy));
    assert_eq!(lines(&out).len(), 5);
    // Out of range: refused before anything runs, naming the field.
    for (text, field) in [
        (
            "ceilings: {memories_per_component: 0}\n",
            "ceilings.memories_per_component",
        ),
        (
            "ceilings: {tables_per_component: 100000}\n",
            "ceilings.tables_per_component",
        ),
    ] {
        let bad = host(dir.path(), "bad.yaml", text);
        let err = run_failing(
            sluice()
                .arg("validate")
                .arg(&p)
                .arg("--host-config")
                .arg(&bad),
        );
        assert!(
            err.contains(&format!("field `{field}`"))
                && err.contains("out of range: expected 1 to"),
            "{err}"
        );
    }
}

#[test]
fn an_operator_bounds_what_a_kafka_client_may_buffer() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No broker: validation stops before anything connects.
    let p = write_pipeline(
        dir.path(),
        "sources:\n  in: {type: kafka, brokers: '127.0.0.1:9', topics: [t], group_id: g}\nsinks:\n  out: {type: kafka, brokers: '127.0.0.1:9', topic: u, inputs: [in], properties: {queue.buffering.max.kbytes: 1024}}\n",
    );
    // The consumer's defaults: a 64 MiB prefetch queue, a 50 MiB fetch and
    // 64 MiB held in time order. The 1 MiB producer queue fits.
    let h = host(
        dir.path(),
        "host.yaml",
        "ceilings: {client_buffer_mb: 100}\n",
    );
    let err = run_failing(
        sluice()
            .arg("validate")
            .arg(&p)
            .arg("--host-config")
            .arg(&h),
    );
    assert!(
        err.contains("sources.in.properties")
            && err.contains("its client may buffer 178 MiB")
            && err.contains("above this host's ceiling of 100 MiB")
            && !err.contains("sinks.out"),
        "{err}"
    );
    run_ok(
        sluice()
            .arg("validate")
            .arg(&p)
            .env_remove("SLUICE_HOST_CONFIG"),
    );
    // An Elasticsearch bulk body and its copy: named by the field that sizes them.
    let es = write_pipeline(
        dir.path(),
        "sources:\n  in: {type: datagen, kind: orders, count: 1}\nsinks:\n  es: {type: elasticsearch, url: 'http://127.0.0.1:9', index: i, inputs: [in], max_bytes: 104857600}\n",
    );
    let err = run_failing(
        sluice()
            .arg("validate")
            .arg(&es)
            .arg("--host-config")
            .arg(&h),
    );
    assert!(
        err.contains("sinks.es.max_bytes: as configured, its client may buffer 200 MiB"),
        "{err}"
    );
}
