//! User-defined functions (components of the `udf` world) called from the
//! expressions of the built-in `filter` and `project`: registered with
//! `udfs:` in YAML, each in its own sandbox. A hostile function fails only
//! the event whose expression called it (dead-lettered with the reason),
//! never the host, the stage or the other events.

use std::path::Path;

use crate::support::*;

/// The dead letters of `path` as (value, message) pairs.
fn dead_letters(path: &Path) -> Vec<(serde_json::Value, String)> {
    json_lines(path)
        .into_iter()
        .map(|d| {
            let message = d["headers"]["sluice.error.message"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (d["value"].clone(), message)
        })
        .collect()
}

#[test]
fn a_rust_udf_computes_a_field_in_project_and_its_errors_dead_letter_the_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        concat!(
            r#"{"id":1,"from":{"lat":48.8566,"lon":2.3522},"to":{"lat":51.5074,"lon":-0.1278}}"#,
            "\n",
            r#"{"id":2,"from":{"lat":"north","lon":2.3522},"to":{"lat":51.5074,"lon":-0.1278}}"#,
            "\n",
            r#"{"id":3,"from":{"lat":null,"lon":0},"to":{"lat":0,"lon":0}}"#,
            "\n",
        ),
    )
    .expect("write input");
    let out = dir.path().join("out.jsonl");
    let dead = dir.path().join("dead.jsonl");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "udfs:\n  Haversine_KM: {{plugin: {}}}\nsources:\n  in: {{type: file, path: {}}}\nstages:\n  dist:\n    plugin: {}\n    inputs: [in]\n    params:\n      select: [id]\n      set: {{km: \"HAVERSINE_km(from.lat, from.lon, to.lat, to.lon)\"}}\nsinks:\n  out: {{type: file, path: {}, inputs: [dist]}}\ndead_letter: {{type: file, path: {}, format: envelope}}\n",
            q(&guest("haversine")),
            q(&input),
            q(&plugin("project")),
            q(&out),
            q(&dead)
        ),
    );
    run_ok(sluice().arg("run").arg(&pipeline));
    assert_eq!(
        lines(&out),
        vec![r#"{"id":1,"km":343.6}"#, r#"{"id":3,"km":null}"#]
    );
    let letters = dead_letters(&dead);
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].0["id"], 2);
    assert!(
        letters[0].1.starts_with(
            "function `haversine_km` (haversine (claims \"sluice-udf-haversine@0.1.0\""
        ) && letters[0]
            .1
            .ends_with("failed: haversine_km: lat1 must be a number, found \"north\""),
        "{}",
        letters[0].1
    );
}

/// Runs `filter` with `where: hostile(mode) = mode` over good events around
/// one whose `mode` makes the hostile function misbehave; returns the
/// culprit's dead-letter message after checking that every good event went
/// through and nothing else was dead-lettered.
fn hostile_call(mode: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        format!(
            "{{\"mode\":\"a\"}}\n{{\"mode\":\"{mode}\"}}\n{{\"mode\":\"b\"}}\n{{\"mode\":\"c\"}}\n"
        ),
    )
    .expect("write input");
    let out = dir.path().join("out.jsonl");
    let dead = dir.path().join("dead.jsonl");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "batch_size: 4\nudfs:\n  hostile:\n    plugin: {}\n    limits: {{memory_mb: 16, cpu_ms_per_call: 50, output_kb_per_call: 8}}\nsources:\n  in: {{type: file, path: {}}}\nstages:\n  f:\n    plugin: {}\n    inputs: [in]\n    params: {{where: \"hostile(mode) = mode\"}}\nsinks:\n  out: {{type: file, path: {}, inputs: [f]}}\ndead_letter: {{type: file, path: {}, format: envelope}}\n",
            q(&guest("udf-hostile")),
            q(&input),
            q(&plugin("filter")),
            q(&out),
            q(&dead)
        ),
    );
    let started = std::time::Instant::now();
    let output = run_ok(sluice().arg("run").arg(&pipeline));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The stage's own instance was never replaced: only the function's was.
    assert!(stderr.contains("0 plugin instance restart(s)"), "{stderr}");
    assert_eq!(
        lines(&out),
        vec![r#"{"mode":"a"}"#, r#"{"mode":"b"}"#, r#"{"mode":"c"}"#]
    );
    let letters = dead_letters(&dead);
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].0, serde_json::json!({"mode": mode}));
    let prefix = "`where: hostile(mode) = mode`: function `hostile` (udf-hostile (claims \"udf-hostile@0.1.0\", sha256 ";
    assert!(letters[0].1.starts_with(prefix), "{}", letters[0].1);
    // What follows the 8-character hash prefix, "))" and a space.
    letters[0].1[prefix.len() + 11..].to_string()
}

#[test]
fn a_udf_that_traps_fails_only_its_event_with_its_panic_message() {
    let reason = hostile_call("trap");
    assert!(
        reason.starts_with("crashed: plugin panicked: panicked at ")
            && reason.contains("hostile udf asked to trap")
            && reason.ends_with("; the instance was discarded"),
        "{reason}"
    );
}

#[test]
fn a_udf_that_loops_forever_is_stopped_by_its_cpu_budget() {
    assert_eq!(
        hostile_call("spin"),
        "exceeded its CPU budget of 50 ms per call; the instance was discarded"
    );
}

#[test]
fn a_udf_that_allocates_without_bound_is_stopped_by_its_memory_limit() {
    assert_eq!(
        hostile_call("alloc"),
        "exceeded its memory limit of 16 MiB; the instance was discarded"
    );
}

#[test]
fn a_udf_result_larger_than_its_output_limit_fails_the_event() {
    assert_eq!(
        hostile_call("huge"),
        "returned 1048576 bytes, more than its output limit of 8 KiB"
    );
}

#[test]
fn a_udf_result_that_is_not_json_fails_the_event() {
    assert_eq!(
        hostile_call("badjson"),
        "returned a result that is not JSON: key must be a string at line 1 column 2"
    );
}

#[test]
fn a_udf_error_fails_the_event_with_the_functions_reason() {
    assert_eq!(hostile_call("error"), "failed: refused on purpose");
}

#[test]
fn validate_names_an_unknown_function_and_suggests_the_udf() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{}\n").expect("write input");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "udfs:\n  haversine_km: {{plugin: {}}}\nsources:\n  in: {{type: file, path: {}}}\nstages:\n  f:\n    plugin: {}\n    inputs: [in]\n    params: {{where: \"haversin_km(a, b, c, d) > 10\"}}\nsinks:\n  out: {{type: file, path: out.jsonl, inputs: [f]}}\n",
            q(&guest("haversine")),
            q(&input),
            q(&plugin("filter")),
        ),
    );
    let stderr = run_failing(sluice().arg("validate").arg(&pipeline));
    assert!(
        stderr.contains("p.yaml:9:13: stages.f.params: plugin filter")
            && stderr.contains("parameter `where`: unknown function 'haversin_km' (known: abs, coalesce, concat, length, like, lower, round, substr, to_bigint, to_boolean, to_decimal, to_double, to_int, trim, upper; user-defined: haversine_km); did you mean 'haversine_km'? at column 1 in `haversin_km(a, b, c, d) > 10`"),
        "{stderr}"
    );
    assert!(stderr.contains("1 problem(s) found"), "{stderr}");
}

#[test]
fn validate_refuses_a_udf_plugin_that_is_not_of_the_udf_world() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{}\n").expect("write input");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "udfs:\n  clean: {{plugin: {}}}\nsources:\n  in: {{type: file, path: {}}}\nstages:\n  f:\n    plugin: {}\n    inputs: [in]\n    params: {{where: \"clean(a) = 1\"}}\nsinks:\n  out: {{type: file, path: out.jsonl, inputs: [f]}}\n",
            q(&plugin("filter")),
            q(&input),
            q(&plugin("filter")),
        ),
    );
    let stderr = run_failing(sluice().arg("validate").arg(&pipeline));
    let expected = format!(
        "p.yaml:2:19: udfs.clean.plugin: {} implements the `transform` world, but a user-defined function needs the `udf` world (it must export sluice:plugin/scalar@0.2.0)",
        plugin("filter").display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    // The stage calling it is not reported as well.
    assert!(stderr.contains("1 problem(s) found"), "{stderr}");
}

#[test]
fn a_udf_may_not_shadow_a_built_in_function() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "udfs:\n  Lower: {{plugin: {}}}\nsources:\n  in: {{type: file, path: in.jsonl}}\nsinks:\n  out: {{type: file, path: out.jsonl, inputs: [in]}}\n",
            q(&guest("haversine")),
        ),
    );
    std::fs::write(dir.path().join("in.jsonl"), "{}\n").expect("write input");
    let stderr = run_failing(sluice().arg("validate").arg(&pipeline));
    assert!(
        stderr.contains("p.yaml:2:3: udfs.lower: `lower` is a built-in function of the expression language; give the UDF another name"),
        "{stderr}"
    );
}

/// The statements of the SQL tests: trips longer than 100 km, with their
/// distance computed by the Rust example UDF registered by `CREATE
/// FUNCTION` (written in another case than the calls).
const TRIPS_SQL: &str = "CREATE FUNCTION Haversine_Km AS 'haversine.wasm';
CREATE SOURCE CONNECTOR src WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSourceConnector',
  'file' = 'trips.jsonl', 'topic' = 'trips');
CREATE STREAM trips WITH (kafka_topic = 'trips', value_format = 'JSON');
CREATE STREAM long_trips AS
  SELECT id, HAVERSINE_KM(from_lat, from_lon, to_lat, to_lon) AS km
  FROM trips
  WHERE haversine_km(from_lat, from_lon, to_lat, to_lon) > 100
  EMIT CHANGES;
CREATE SINK CONNECTOR out WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSinkConnector',
  'file' = 'long_trips.jsonl', 'topics' = 'long_trips');
";

fn trips_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(guest("haversine"), dir.path().join("haversine.wasm")).expect("copy udf");
    std::fs::write(
        dir.path().join("trips.jsonl"),
        r#"{"id":1,"from_lat":48.8566,"from_lon":2.3522,"to_lat":51.5074,"to_lon":-0.1278}
{"id":2,"from_lat":40.7128,"from_lon":-74.006,"to_lat":34.0522,"to_lon":-118.2437}
{"id":3,"from_lat":"x","from_lon":0,"to_lat":0,"to_lon":0}
{"id":4,"from_lat":52.52,"from_lon":13.405,"to_lat":52.52,"to_lon":13.405}
"#,
    )
    .expect("write trips");
    dir
}

#[test]
fn sql_create_function_runs_the_rust_udf_end_to_end() {
    let dir = trips_dir();
    let sql = dir.path().join("trips.sql");
    std::fs::write(&sql, TRIPS_SQL).expect("write sql");
    run_ok(
        sluice()
            .arg("sql")
            .arg(&sql)
            .arg("--data-dir")
            .arg(dir.path().join("state"))
            .arg("--plugin-path")
            .arg(target_dir().join("plugins"))
            .current_dir(dir.path()),
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("long_trips.jsonl")).expect("output"),
        "{\"id\":1,\"km\":343.6}\n{\"id\":2,\"km\":3935.8}\n"
    );
    // Trip 3's coordinate is not a number: the function refused it, and the
    // event is dead-lettered with its reason (trip 4 is 0 km: filtered out).
    let letters = dead_letters(&dir.path().join("state/trips/dead-letters.jsonl"));
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].0["id"], 3);
    assert!(
        letters[0]
            .1
            .ends_with("failed: haversine_km: lat1 must be a number, found \"x\""),
        "{}",
        letters[0].1
    );
}

#[test]
fn sql_explain_prints_the_udfs_section_that_validate_accepts() {
    let dir = trips_dir();
    let sql = dir.path().join("trips.sql");
    std::fs::write(&sql, TRIPS_SQL).expect("write sql");
    let out = run_ok(sluice().arg("sql").arg(&sql).arg("--explain"));
    let yaml = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        yaml.contains("udfs:\n  # line 1: CREATE FUNCTION HAVERSINE_KM\n  haversine_km:\n    plugin: haversine.wasm\n"),
        "{yaml}"
    );
    let file = dir.path().join("trips.yaml");
    std::fs::write(&file, &yaml).expect("write yaml");
    let out = run_ok(
        sluice()
            .arg("validate")
            .arg(&file)
            .arg("--plugin-path")
            .arg(target_dir().join("plugins")),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ok (1 source(s), 1 stage(s), 1 sink(s))"),
        "{stdout}"
    );
}

#[test]
fn sql_create_function_with_a_bad_path_says_line_and_column_and_runs_nothing() {
    let dir = trips_dir();
    let sql = dir.path().join("bad.sql");
    std::fs::write(&sql, TRIPS_SQL.replace("'haversine.wasm'", "'nope.wasm'")).expect("write sql");
    let stderr = run_failing(
        sluice()
            .arg("sql")
            .arg(&sql)
            .arg("--plugin-path")
            .arg(target_dir().join("plugins"))
            .current_dir(dir.path()),
    );
    assert!(
        stderr.contains("bad.sql:1:33: CREATE FUNCTION HAVERSINE_KM: udfs.haversine_km.plugin: plugin file `nope.wasm` does not exist"),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 problem(s) found; nothing was run"),
        "{stderr}"
    );
    assert!(!dir.path().join("long_trips.jsonl").exists());
}

/// The Python example UDF (`examples/udfs/mask-email-py`), built with
/// `sluice plugin build` (componentize-py from `scripts/toolchains/python.sh`;
/// a missing toolchain fails the test), masks emails in `project` and its
/// exception dead-letters the event with the exception's type, message and line.
#[test]
fn a_python_udf_masks_emails_and_its_exception_dead_letters_the_event() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/udfs/mask-email-py");
    let out = run_ok(sluice().args(["plugin", "build"]).arg(&example));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let wasm =
        std::path::PathBuf::from(stdout.lines().last().expect("the component's path").trim());
    assert!(wasm.is_file(), "not a file: {}", wasm.display());
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"id\":1,\"email\":\"Ada@Example.COM\"}\n{\"id\":2,\"email\":\"nobody\"}\n{\"id\":3,\"email\":null}\n",
    )
    .expect("write input");
    let out = dir.path().join("out.jsonl");
    let dead = dir.path().join("dead.jsonl");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "udfs:\n  mask_email: {{plugin: {}}}\nsources:\n  in: {{type: file, path: {}}}\nstages:\n  m:\n    plugin: {}\n    inputs: [in]\n    params: {{set: {{email: \"mask_email(email)\"}}}}\nsinks:\n  out: {{type: file, path: {}, inputs: [m]}}\ndead_letter: {{type: file, path: {}, format: envelope}}\n",
            q(&wasm),
            q(&input),
            q(&plugin("project")),
            q(&out),
            q(&dead)
        ),
    );
    run_ok(sluice().arg("run").arg(&pipeline));
    assert_eq!(
        std::fs::read_to_string(&out).expect("output"),
        "{\"id\":1,\"email\":\"A***@example.com\"}\n{\"id\":3,\"email\":null}\n"
    );
    let letters = dead_letters(&dead);
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].0["id"], 2);
    assert!(
        letters[0].1.starts_with("function `mask_email` (mask_email_py (claims \"mask-email-py@0.1.0\"")
            && letters[0].1.ends_with(
                "failed: ValueError: not an email address: 'nobody' (app.py line 33, in mask_email)"
            ),
        "{}",
        letters[0].1
    );
}

#[test]
fn a_udfs_limits_are_bounded_by_the_operators_ceilings() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("in.jsonl"), "{}\n").expect("write input");
    let host = dir.path().join("host.yaml");
    std::fs::write(&host, "ceilings: {memory_mb: 16, cpu_ms_per_call: 50}\n")
        .expect("write host config");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "udfs:\n  h:\n    plugin: {}\n    limits: {{memory_mb: 64, cpu_ms_per_call: 40}}\nsources:\n  in: {{type: file, path: in.jsonl}}\nsinks:\n  out: {{type: file, path: out.jsonl, inputs: [in]}}\n",
            q(&guest("haversine")),
        ),
    );
    let stderr = run_failing(
        sluice()
            .arg("validate")
            .arg("--host-config")
            .arg(&host)
            .arg(&pipeline),
    );
    assert!(
        stderr
            .contains("p.yaml:2:3: udfs.h.limits.memory_mb: 64 is above this host's ceiling of 16"),
        "{stderr}"
    );
    assert!(stderr.contains("1 problem(s) found"), "{stderr}");
}

/// `sluice plugin new --kind udf --lang LANG NAME` in a directory outside the
/// checkout, built and called from `project`: the template reverses text.
fn scaffolded_udf_reverses_text(lang: &str, name: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    run_ok(
        sluice()
            .current_dir(dir.path())
            .args(["plugin", "new", "--kind", "udf", "--lang", lang, name]),
    );
    let out = run_ok(
        sluice()
            .args(["plugin", "build"])
            .arg(dir.path().join(name)),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let wasm =
        std::path::PathBuf::from(stdout.lines().last().expect("the component's path").trim());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("(a user-defined function) into the compile cache"),
        "{stderr}"
    );
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"s\":\"abc\"}\n{\"s\":null}\n").expect("write input");
    let output = dir.path().join("out.jsonl");
    let f = name.replace('-', "_");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "udfs:\n  {f}: {{plugin: {}}}\nsources:\n  in: {{type: file, path: {}}}\nstages:\n  r:\n    plugin: {}\n    inputs: [in]\n    params: {{set: {{r: \"{f}(s)\"}}}}\nsinks:\n  out: {{type: file, path: {}, inputs: [r]}}\n",
            q(&wasm),
            q(&input),
            q(&plugin("project")),
            q(&output),
        ),
    );
    run_ok(sluice().arg("run").arg(&pipeline));
    assert_eq!(
        lines(&output),
        vec![r#"{"s":"abc","r":"cba"}"#, r#"{"s":null,"r":null}"#]
    );
}

#[test]
fn a_scaffolded_rust_udf_builds_and_runs() {
    scaffolded_udf_reverses_text("rust", "scaffolded_rust_udf");
}

#[test]
fn a_scaffolded_python_udf_builds_and_runs() {
    scaffolded_udf_reverses_text("python", "scaffolded-py-udf");
}

#[test]
fn validate_sample_calls_the_udfs_as_run_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sample = dir.path().join("sample.jsonl");
    std::fs::write(&sample, "{\"mode\":\"a\"}\n{\"mode\":\"error\"}\n").expect("write sample");
    let pipeline = write_pipeline(
        dir.path(),
        &format!(
            "udfs:\n  hostile: {{plugin: {}}}\nsources:\n  in: {{type: file, path: {}}}\nstages:\n  f:\n    plugin: {}\n    inputs: [in]\n    params: {{where: \"hostile(mode) = mode\"}}\nsinks:\n  out: {{type: file, path: out.jsonl, inputs: [f]}}\n",
            q(&guest("udf-hostile")),
            q(&sample),
            q(&plugin("filter")),
        ),
    );
    let stderr = run_failing(
        sluice()
            .arg("validate")
            .arg(&pipeline)
            .arg("--sample")
            .arg(&sample),
    );
    assert!(
        stderr.contains("dead letter: stage `f`: `where: hostile(mode) = mode`: function `hostile` (udf-hostile (claims \"udf-hostile@0.1.0\"")
            && stderr.contains("failed: refused on purpose")
            && stderr.contains("stage `f`: 2 in, 1 out, 0 filtered out, 1 dead letter(s)"),
        "{stderr}"
    );
}
