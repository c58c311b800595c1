//! Faults lose nothing: the real binary, stopped at each step of the
//! checkpoint protocol by a failpoint (`SLUICE_FAILPOINTS`, see
//! `host/src/failpoint.rs`), then rerun unarmed to the end.
//!
//! The pipeline: orders (a file, with a malformed line every 1000 that goes to
//! the dead-letter file) joined with a customers table (`lookup-join`), then
//! counted per region per 1 s window of event time (`window-aggregate`); a
//! second table keeps the latest order per customer, so a table snapshot is
//! written at every barrier of the run. Every
//! sink is a `file` sink, whose contract is exactly-once: on restart it
//! truncates to the length its checkpoint recorded and its sources resume
//! from the same checkpoint. So each case asserts exact results: every order
//! joined once, every malformed line dead-lettered once, and every window's
//! count and sum equal to an uninterrupted run's (computed here, and checked
//! against a real uninterrupted run by `an_uninterrupted_run_gives_the_expected_results`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::*;

const FAILPOINTS: &str = "SLUICE_FAILPOINTS";
/// `failpoint::EXIT_STATUS`: the process ended at the armed point.
const FAILPOINT_EXIT: i32 = 86;
const T0: i64 = 1_700_000_000_000;
const REGIONS: usize = 4;

fn malformed(i: usize) -> bool {
    i % 1000 == 999
}

/// The region of order `i`'s customer (`c{i % customers}`).
fn region(i: usize, customers: usize) -> String {
    format!("r{}", i % customers % REGIONS)
}

struct Case {
    dir: tempfile::TempDir,
    pipeline: PathBuf,
    orders: usize,
    customers: usize,
}

impl Case {
    /// Writes the inputs and the pipeline: `orders` orders over
    /// `customers` customers, each customer row padded with `pad` bytes.
    fn new(orders: usize, customers: usize, pad: usize) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = std::io::BufWriter::new(
            std::fs::File::create(dir.path().join("orders.jsonl")).expect("create"),
        );
        for i in 0..orders {
            if malformed(i) {
                writeln!(w, "broken {i}").expect("write");
            } else {
                writeln!(
                    w,
                    r#"{{"n":{i},"c":"c{}","t":{}}}"#,
                    i % customers,
                    T0 + i as i64
                )
                .expect("write");
            }
        }
        w.flush().expect("flush");
        let mut w = std::io::BufWriter::new(
            std::fs::File::create(dir.path().join("customers.jsonl")).expect("create"),
        );
        let padding = "x".repeat(pad);
        for j in 0..customers {
            writeln!(
                w,
                r#"{{"id":"c{j}","region":"r{}","pad":"{padding}"}}"#,
                j % REGIONS
            )
            .expect("write");
        }
        w.flush().expect("flush");
        let pipeline = write_pipeline(
            dir.path(),
            &format!(
                "name: faults
checkpoint_interval_ms: 50
batch_size: 64
sources:
  orders: {{type: file, path: orders.jsonl}}
  customers: {{type: file, path: customers.jsonl}}
tables:
  cust: {{input: customers, key_field: id}}
  latest: {{input: orders, key_field: c}}
stages:
  enriched:
    plugin: {}
    inputs: [orders]
    tables: [cust]
    params: {{table: cust, on: c, join: inner, fields: \"n, t, table.region as region\"}}
  counts:
    plugin: {}
    inputs: [enriched]
    event_time: {{field: t}}
    params: {{size_ms: 1000, group_by: region, aggregates: \"count, sum(n) as total\"}}
sinks:
  joined: {{type: file, path: joined.jsonl, inputs: [enriched]}}
  out: {{type: file, path: out.jsonl, inputs: [counts]}}
dead_letter: {{type: file, path: dead.jsonl, format: envelope}}
",
                q(&plugin("lookup-join")),
                q(&plugin("window-aggregate")),
            ),
        );
        Self {
            dir,
            pipeline,
            orders,
            customers,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn cmd(&self) -> Command {
        let mut c = sluice();
        c.arg("run")
            .arg(&self.pipeline)
            .arg("--no-progress")
            .env_remove(FAILPOINTS);
        c
    }

    /// Runs with `spec` armed; the run must not succeed.
    fn run_armed(&self, spec: &str) -> Output {
        let out = self
            .cmd()
            .env(FAILPOINTS, spec)
            .output()
            .expect("sluice runs");
        assert!(
            !out.status.success(),
            "{spec}: the armed run finished instead of failing:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Lines of `rel`, or none when the file does not exist yet.
    fn count_lines(&self, rel: &str) -> usize {
        std::fs::read_to_string(self.path(rel))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    /// Reruns unarmed to the end and asserts the exact results.
    fn rerun_and_check(&self, what: &str) {
        run_ok(&mut self.cmd());
        self.check(what);
    }

    fn check(&self, what: &str) {
        // Every good order joined exactly once, with its customer's region.
        let mut joined = vec![0u32; self.orders];
        for v in json_lines(&self.path("joined.jsonl")) {
            let n = v["n"].as_u64().expect("n") as usize;
            assert_eq!(
                v["region"],
                Value::from(region(n, self.customers)),
                "{what}: order {n}"
            );
            joined[n] += 1;
        }
        let lost = (0..self.orders)
            .filter(|i| !malformed(*i) && joined[*i] == 0)
            .count();
        let duplicated = joined.iter().filter(|c| **c > 1).count();
        let wrong = (0..self.orders)
            .filter(|i| malformed(*i) && joined[*i] > 0)
            .count();
        assert_eq!(
            (lost, duplicated, wrong),
            (0, 0, 0),
            "{what}: orders lost, duplicated, joined though malformed"
        );
        // Every malformed line dead-lettered exactly once.
        let mut dead: BTreeMap<String, u32> = BTreeMap::new();
        for v in json_lines(&self.path("dead.jsonl")) {
            let value = v["value"].as_str().expect("raw line").to_string();
            *dead.entry(value).or_default() += 1;
        }
        let want: BTreeMap<String, u32> = (0..self.orders)
            .filter(|i| malformed(*i))
            .map(|i| (format!("broken {i}"), 1))
            .collect();
        assert!(
            dead == want,
            "{what}: dead letters differ: {} distinct, {} expected, {} duplicated",
            dead.len(),
            want.len(),
            dead.values().filter(|c| **c > 1).count()
        );
        // Windows exactly those of an uninterrupted run.
        let got = windows(&self.path("out.jsonl"), what);
        let want = expected_windows(self.orders, self.customers);
        assert_eq!(got.len(), want.len(), "{what}: number of windows");
        assert!(got == want, "{what}: window results differ");
    }
}

type Windows = BTreeMap<(String, i64), (u64, f64)>;

fn expected_windows(orders: usize, customers: usize) -> Windows {
    let mut m = Windows::new();
    for i in (0..orders).filter(|i| !malformed(*i)) {
        let t = T0 + i as i64;
        let e = m
            .entry((region(i, customers), t - t.rem_euclid(1000)))
            .or_default();
        e.0 += 1;
        e.1 += i as f64;
    }
    m
}

fn windows(path: &Path, what: &str) -> Windows {
    let mut m = Windows::new();
    for v in json_lines(path) {
        let k = (
            v["key"].as_str().expect("key").to_string(),
            v["window_start"].as_i64().expect("start"),
        );
        let prev = m.insert(
            k.clone(),
            (
                v["count"].as_u64().expect("count"),
                v["total"].as_f64().expect("total"),
            ),
        );
        assert!(prev.is_none(), "{what}: window {k:?} emitted twice");
    }
    m
}

/// Enough that a run passes a few checkpoints (each waits for the barrier's
/// trip through queued batches, and the next waits 3 times as long).
const ORDERS: usize = 500_000;

/// Kills the run (as `kill -9` would) at the `at`-th pass of `point`, then
/// reruns unarmed and checks every result exactly.
///
/// A run that ends before the `at`-th pass (a fast machine, or one where
/// the checkpoint timer fired fewer times) proves nothing, so the case is
/// run again aimed at an earlier pass, down to the first, which every run
/// reaches at its final checkpoint.
fn killed_at(point: &str, at: u32) {
    for n in (1..=at).rev() {
        let case = Case::new(ORDERS, 50, 0);
        let spec = format!("{point}=exit@{n}");
        let out = case
            .cmd()
            .env(FAILPOINTS, &spec)
            .output()
            .expect("sluice runs");
        if out.status.success() && n > 1 {
            eprintln!(
                "{spec}: the run ended before pass {n}; aiming at pass {}",
                n - 1
            );
            continue;
        }
        killed_case(&case, point, &spec, &out);
        return;
    }
}

fn killed_case(case: &Case, point: &str, spec: &str, out: &Output) {
    assert!(
        !out.status.success(),
        "{spec}: the armed run finished instead of failing:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(FAILPOINT_EXIT),
        "{spec}: the run must end at the failpoint:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("failpoint `{point}` fired")),
        "{stderr}"
    );
    // Where the n-th pass falls (mid-run, or at the final checkpoint of a
    // run that reached fewer) depends on the machine's speed; either way
    // the step is the one armed, and the rerun must be exact.
    let partial = case.count_lines("joined.jsonl");
    eprintln!("{spec}: {partial} orders joined before the kill");
    case.rerun_and_check(spec);
}

#[test]
fn an_uninterrupted_run_gives_the_expected_results() {
    let case = Case::new(ORDERS, 50, 0);
    run_ok(&mut case.cmd());
    case.check("uninterrupted");
}

// Up to four sinks flush at each barrier (joined, out, the table until its
// input ends, the dead-letter file), two processors save state, two sources
// acknowledge: the counts below aim each kill at the second barrier or
// checkpoint, after one has committed (the first barrier follows the table's
// load).

#[test]
fn killed_before_a_sink_flush() {
    killed_at("sink.flush.before", 5);
}

#[test]
fn killed_after_a_sink_flush() {
    killed_at("sink.flush.after", 6);
}

#[test]
fn killed_before_a_state_file_rename() {
    killed_at("stage.state.rename.before", 3);
}

#[test]
fn killed_during_a_table_snapshot_write() {
    // Two tables snapshot at each barrier: `cust` until its input ends,
    // `latest` (fed by the orders) all run long.
    killed_at("table.snapshot.rename.before", 4);
}

#[test]
fn killed_before_the_checkpoint_rename() {
    killed_at("checkpoint.rename.before", 2);
}

#[test]
fn killed_after_the_checkpoint_rename() {
    killed_at("checkpoint.rename.after", 2);
}

#[test]
fn killed_before_sources_acknowledge() {
    killed_at("source.commit.before", 3);
}

#[test]
fn killed_after_sources_acknowledge() {
    killed_at("source.commit.after", 3);
}

#[test]
fn killed_writing_a_dead_letter() {
    killed_at("dead_letter.write", 100);
}

/// Each step failing with an error (not a crash) fails the run with a
/// message naming it, and the rerun loses and repeats nothing.
#[test]
fn each_step_failing_stops_the_run_and_a_rerun_loses_nothing() {
    for point in [
        "sink.flush.before",
        "sink.flush.after",
        "stage.state.rename.before",
        "table.snapshot.rename.before",
        "checkpoint.rename.before",
        "checkpoint.rename.after",
        "source.commit.before",
        "source.commit.after",
        "dead_letter.write",
    ] {
        // The first pass: every point is passed before the first checkpoint
        // commits, or (acknowledging) right after, well before the end.
        let case = Case::new(ORDERS, 50, 0);
        let spec = format!("{point}=error@1");
        let out = case.run_armed(&spec);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{spec}:\n{stderr}");
        assert!(
            stderr.contains(&format!("failpoint `{point}` fired")),
            "{spec}:\n{stderr}"
        );
        case.rerun_and_check(&spec);
    }
}

/// The dead-letter destination failing mid-run stops the run, and no
/// checkpoint covers the event it could not take: the source's checkpointed
/// line is before that malformed line, and the rerun delivers it.
#[test]
fn a_failing_dead_letter_destination_stops_the_run_before_its_checkpoint() {
    let case = Case::new(ORDERS, 50, 0);
    // The 20th dead letter is order 19_999, on line 20_000.
    let out = case.run_armed("dead_letter.write=error@20");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sink `dead-letter`: failpoint `dead_letter.write` fired"),
        "{stderr}"
    );
    let checkpoint: Option<Value> = std::fs::read(case.path(".sluice/faults/checkpoint.json"))
        .ok()
        .map(|b| serde_json::from_slice(&b).expect("checkpoint is JSON"));
    if let Some(cp) = &checkpoint {
        let line = cp["sources"]["orders"]["line"].as_u64().expect("line");
        assert!(
            line < 20_000,
            "the checkpoint covers line {line}, past the dead letter that failed"
        );
    }
    case.rerun_and_check("dead-letter write failed");
}

/// A dead-letter destination that cannot be created (its directory is a
/// regular file: unwritable even for root, unlike a chmod) fails the run,
/// naming the path, before anything is read; fixed, the rerun is exact.
#[test]
fn an_unwritable_dead_letter_path_fails_the_run_naming_it() {
    let case = Case::new(ORDERS / 50, 50, 0);
    let blocker = case.path("not-a-dir");
    std::fs::write(&blocker, "a file").expect("write");
    let text = std::fs::read_to_string(&case.pipeline).expect("read");
    let bad = text.replace("path: dead.jsonl", "path: not-a-dir/dead.jsonl");
    assert_ne!(bad, text);
    std::fs::write(&case.pipeline, &bad).expect("write");
    let stderr = run_failing(&mut case.cmd());
    assert!(stderr.contains("not-a-dir"), "{stderr}");
    assert_eq!(case.count_lines("joined.jsonl"), 0, "nothing ran");
    std::fs::write(&case.pipeline, &text).expect("write");
    case.rerun_and_check("dead-letter path fixed");
}

/// Runs `case` with its file size limited to `bytes` (RLIMIT_FSIZE, with
/// SIGXFSZ ignored so a write past it fails with EFBIG). This EMULATES a
/// full disk (ENOSPC) without root or a mounted filesystem: the write fails
/// part way just as it would on a full disk.
fn run_with_file_limit(case: &Case, bytes: u64) -> Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = case.cmd();
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("sluice runs");
    assert!(
        !out.status.success(),
        "the run fit in {bytes} bytes per file; the limit proves nothing"
    );
    out
}

/// Disk full (emulated, see `run_with_file_limit`) on a file sink: the run
/// fails naming the file, and once space returns the rerun is exact.
#[test]
fn a_full_disk_under_a_file_sink_fails_naming_it_and_a_rerun_loses_nothing() {
    let case = Case::new(ORDERS, 50, 0);
    let out = run_with_file_limit(&case, 1 << 20);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = case.path("joined.jsonl");
    assert!(
        stderr.contains(&format!("writing {}", file.display()))
            && stderr.contains("File too large"),
        "{stderr}"
    );
    case.rerun_and_check("file sink disk full");
}

/// Disk full (emulated) on the data dir: a table snapshot larger than the
/// limit fails the run naming the snapshot file, and the rerun is exact.
#[test]
fn a_full_disk_under_the_state_dir_fails_naming_the_file_and_a_rerun_loses_nothing() {
    // 20,000 customers of ~600 bytes: a 12 MB snapshot, over a 4 MB limit
    // that every other file stays under.
    let case = Case::new(ORDERS / 50, 20_000, 560);
    let out = run_with_file_limit(&case, 4 << 20);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let state = case.path(".sluice/faults");
    assert!(
        stderr.contains(&format!("writing {}", state.display()))
            && stderr.contains("File too large"),
        "{stderr}"
    );
    case.rerun_and_check("state dir disk full");
}

/// Two runs of `case` in a private mount namespace, with a real filesystem
/// of `size` bytes (tmpfs) mounted at `rel` under the case dir: the first
/// fills it (the kernel's ENOSPC, not an emulation); then the filesystem is
/// resized to 256 MiB, as when an operator frees space, and the second run
/// resumes. `unshare --mount` needs root or unprivileged user namespaces; the
/// test fails, never skips, without them. The namespace, and with it the
/// mount, dies with the script, so nothing is left mounted on the machine
/// even when the test fails; whatever the checks need is copied out first.
/// Returns each run's exit code and stderr.
fn run_on_a_small_filesystem(case: &Case, rel: &str, size: u64) -> [(i32, String); 2] {
    let script = r#"set -eu
mount -t tmpfs -o "size=$FS_SIZE" sluice-test "$CASE/$FS_AT"
run() {
    rc=0
    "$SLUICE" run "$PIPELINE" --no-progress 2>"$CASE/run$1.err" || rc=$?
    echo "$rc" >"$CASE/run$1.rc"
}
run 1
df -k "$CASE/$FS_AT" >"$CASE/df.txt"
mount -o remount,size=256m "$CASE/$FS_AT"
run 2
# The checks read the sinks from the case dir, outside the mount.
for f in joined.jsonl out.jsonl dead.jsonl; do
    [ ! -f "$CASE/$FS_AT/$f" ] || cp "$CASE/$FS_AT/$f" "$CASE/$f"
done
"#;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let mut cmd = Command::new("unshare");
    if !root {
        cmd.arg("--map-root-user");
    }
    std::fs::create_dir_all(case.path(rel)).expect("mount point");
    let out = cmd
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .env("SLUICE", env!("CARGO_BIN_EXE_sluice"))
        .env("SLUICE_CACHE_DIR", target_dir().join("test-cache"))
        .env("NO_COLOR", "1")
        .env_remove(FAILPOINTS)
        .env("CASE", case.dir.path())
        .env("FS_AT", rel)
        .env("FS_SIZE", size.to_string())
        .env("PIPELINE", &case.pipeline)
        .output()
        .expect("unshare runs");
    assert!(
        out.status.success(),
        "mounting a small tmpfs in a private mount namespace failed (this test needs root or \
         unprivileged user namespaces, and util-linux's unshare):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    [1, 2].map(|i| {
        let rc = std::fs::read_to_string(case.path(&format!("run{i}.rc")))
            .expect("exit code written")
            .trim()
            .parse::<i32>()
            .expect("exit code");
        let err = std::fs::read_to_string(case.path(&format!("run{i}.err"))).unwrap_or_default();
        (rc, err)
    })
}

/// Disk full for real (a 2 MiB tmpfs, ENOSPC) under the file sinks: the run
/// fails naming the file and the OS error; with space back, the rerun
/// resumes from the last checkpoint and every result is exact.
#[test]
fn a_really_full_filesystem_under_the_file_sinks_fails_naming_the_file_and_a_rerun_loses_nothing() {
    let case = Case::new(ORDERS, 50, 0);
    // The sinks and the dead-letter file live under `sinks/`, on the small
    // filesystem; the inputs and the data dir stay where they were.
    let text = std::fs::read_to_string(&case.pipeline).expect("read");
    let moved = text
        .replace("path: joined.jsonl", "path: sinks/joined.jsonl")
        .replace("path: out.jsonl", "path: sinks/out.jsonl")
        .replace("path: dead.jsonl", "path: sinks/dead.jsonl");
    assert_ne!(text, moved, "the pipeline names its sink files");
    std::fs::write(&case.pipeline, moved).expect("write");
    let [(rc1, err1), (rc2, err2)] = run_on_a_small_filesystem(&case, "sinks", 2 << 20);
    let df = std::fs::read_to_string(case.path("df.txt")).unwrap_or_default();
    assert_ne!(rc1, 0, "the run fit in 2 MiB; it proves nothing:\n{df}");
    let sinks = case.path("sinks");
    assert!(
        err1.contains(&format!("writing {}", sinks.display()))
            && err1.contains("No space left on device"),
        "the failure names the file and ENOSPC:\n{err1}"
    );
    eprintln!(
        "full filesystem: {}",
        err1.lines()
            .rfind(|l| l.contains("No space"))
            .unwrap_or_default()
    );
    assert_eq!(rc2, 0, "the rerun with space back succeeds:\n{err2}");
    case.check("file sinks on a full filesystem");
}

/// Disk full for real under the data dir: a 12 MB table snapshot on a 4 MiB
/// tmpfs fails the run naming the snapshot file and the OS error; with space
/// back, the rerun is exact.
#[test]
fn a_really_full_filesystem_under_the_data_dir_fails_naming_the_file_and_a_rerun_loses_nothing() {
    let case = Case::new(ORDERS / 50, 20_000, 560);
    let [(rc1, err1), (rc2, err2)] = run_on_a_small_filesystem(&case, ".sluice", 4 << 20);
    assert_ne!(rc1, 0, "the run fit in 4 MiB; it proves nothing");
    let state = case.path(".sluice/faults");
    assert!(
        err1.contains(&format!("writing {}", state.display()))
            && err1.contains("No space left on device"),
        "the failure names the file and ENOSPC:\n{err1}"
    );
    eprintln!(
        "full filesystem: {}",
        err1.lines()
            .rfind(|l| l.contains("No space"))
            .unwrap_or_default()
    );
    assert_eq!(rc2, 0, "the rerun with space back succeeds:\n{err2}");
    case.check("data dir on a full filesystem");
}

/// A source failing to acknowledge the final checkpoint upstream fails the
/// run (it used to exit 0, the error reported to a coordinator that had
/// finished). With no barrier before the end (a file source never catches
/// up early, and the interval is an hour), the first acknowledgement is
/// the final one. The checkpoint is durable, so the rerun finds nothing
/// left to do and the output stays exact.
#[test]
fn a_failed_acknowledgement_of_the_final_checkpoint_fails_the_run() {
    let case = Case::new(ORDERS / 50, 50, 0);
    let text = std::fs::read_to_string(&case.pipeline).expect("read");
    let text = text.replace(
        "checkpoint_interval_ms: 50\n",
        "checkpoint_interval_ms: 3600000\n",
    );
    std::fs::write(&case.pipeline, text).expect("write");
    let out = case.run_armed("source.commit.before=error@1");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("failed after the final checkpoint")
            && stderr.contains("failpoint `source.commit.before` fired"),
        "{stderr}"
    );
    case.check("final acknowledgement failed");
    case.rerun_and_check("final acknowledgement failed, rerun");
}
