//! The checkpoint protocol, end to end through the real runner, with
//! in-memory connectors and a native stage: no services, no plugins.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{run_with, RunOptions, RunSummary, StageLogic};
use crate::config::{Limits, Location, OnError, Pipeline, SinkDef, SourceDef, StageDef, TableDef};
use crate::connector::memory::{MemoryFeed, MemorySinkConfig, MemorySourceConfig, MemoryStore};
use crate::event::abi::{Frame, Output, Rejection};
use crate::plugin::{CallFailure, ComponentCache, WasmEngine};
use crate::state::{Checkpoint, CheckpointStore, TableConfig};

/// A stage that drops values containing `"drop"` and refuses (dead-letters)
/// values containing `"bad"`, passing the rest on unchanged.
struct NativeFilter;

impl StageLogic for NativeFilter {
    fn identity(&self) -> (String, String) {
        ("native-filter".into(), "1.0.0".into())
    }

    fn process(&mut self, batch: &Frame) -> Result<Output, CallFailure> {
        let mut events = Frame {
            data: batch.data.clone(),
            events: Vec::new(),
            headers: batch.headers.clone(),
            streams: Vec::new(),
        };
        let mut rejected = Vec::new();
        for (i, e) in batch.events.iter().enumerate() {
            let value = e
                .value
                .and_then(|s| {
                    batch
                        .data
                        .get(s.offset as usize..(s.offset + s.len) as usize)
                })
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            if value.contains("\"bad\"") {
                rejected.push(Rejection {
                    index: i as u32,
                    reason: "refused by the native filter".into(),
                });
            } else if !value.contains("\"drop\"") {
                let mut kept = *e;
                kept.parent = i as u32;
                events.events.push(kept);
            }
        }
        Ok(Output { events, rejected })
    }

    fn instantiations(&self) -> u64 {
        1
    }

    fn swap(&mut self, _plugin: crate::plugin::StagePlugin) -> Result<(), String> {
        Err("native stages do not swap".into())
    }
}

/// Builds a stage's logic afresh for each run.
type MakeStage = Arc<dyn Fn() -> Box<dyn StageLogic> + Send + Sync>;

/// A pipeline under construction, in a temporary directory.
struct Harness {
    dir: tempfile::TempDir,
    pipeline: Pipeline,
    overrides: Vec<(String, MakeStage)>,
}

impl Harness {
    fn new(checkpoint_ms: u64) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let pipeline = Pipeline {
            file: dir.path().join("pipeline.yaml"),
            name: "test".into(),
            data_dir: dir.path().to_path_buf(),
            batch_size: 64,
            checkpoint_interval: Duration::from_millis(checkpoint_ms),
            channel_capacity: 4,
            fuse_stages: true,
            sources: Vec::new(),
            stages: Vec::new(),
            sinks: Vec::new(),
            tables: Vec::new(),
            udfs: Vec::new(),
            dead_letter: None,
        };
        Self {
            dir,
            pipeline,
            overrides: Vec::new(),
        }
    }

    fn source(mut self, name: &str, feed: &MemoryFeed) -> Self {
        self.pipeline.sources.push(SourceDef {
            name: name.into(),
            config: Box::new(MemorySourceConfig { feed: feed.clone() }),
            at: Location::default(),
        });
        self
    }

    fn filter(self, name: &str, inputs: &[&str], tables: &[&str]) -> Self {
        self.stage(
            name,
            inputs,
            tables,
            OnError::DeadLetter,
            Arc::new(|| Box::new(NativeFilter)),
        )
    }

    fn stage(
        mut self,
        name: &str,
        inputs: &[&str],
        tables: &[&str],
        on_error: OnError,
        make: MakeStage,
    ) -> Self {
        self.pipeline.stages.push(StageDef {
            name: name.into(),
            plugin: PathBuf::from("native"),
            plugin_at: Location::default(),
            params_at: Location::default(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            params: Vec::new(),
            on_error,
            limits: Limits::default(),
            tables: tables.iter().map(|s| s.to_string()).collect(),
            event_time: None,
            at: Location::default(),
        });
        self.overrides.push((name.into(), make));
        self
    }

    fn sink(mut self, name: &str, inputs: &[&str], store: &MemoryStore) -> Self {
        self.pipeline.sinks.push(SinkDef {
            name: name.into(),
            config: Box::new(MemorySinkConfig {
                store: store.clone(),
            }),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            at: Location::default(),
        });
        self
    }

    fn table(mut self, name: &str, input: &str) -> Self {
        self.pipeline.tables.push(TableDef {
            name: name.into(),
            config: TableConfig {
                input: input.into(),
                key_field: Some("id".into()),
                max_mb: crate::state::tables::DEFAULT_MAX_MB,
            },
            at: Location::default(),
        });
        self
    }

    fn state_dir(&self) -> PathBuf {
        self.pipeline.state_dir()
    }

    fn checkpoint(&self) -> Option<Checkpoint> {
        CheckpointStore::new(&self.state_dir())
            .load()
            .expect("checkpoint readable")
    }

    fn dead_letters(&self) -> Vec<Value> {
        read_lines(&self.state_dir().join("dead-letters.jsonl"))
    }

    /// Runs until the sources drain or `stop` is set.
    fn run(&self, stop: Arc<AtomicBool>) -> anyhow::Result<RunSummary> {
        let engine = WasmEngine::new()?;
        let cache = ComponentCache::new(self.dir.path().join("cache"));
        let overrides: HashMap<String, Box<dyn StageLogic>> = self
            .overrides
            .iter()
            .map(|(n, make)| (n.clone(), make()))
            .collect();
        run_with(
            &self.pipeline,
            &engine,
            &cache,
            RunOptions::new(stop),
            overrides,
        )
    }
}

fn read_lines(path: &Path) -> Vec<Value> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .lines()
            .map(|l| serde_json::from_str(l).expect("dead letter is JSON"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Sets `stop` when dropped, so a failed assertion inside a scope that runs
/// a pipeline ends the run instead of waiting on it forever.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Releases a held sink when dropped.
struct ReleaseOnDrop(MemoryStore);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.hold_flushes(false);
    }
}

/// Waits for `cond`, failing the test with `what` after 20 s.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn orders(range: std::ops::Range<u64>) -> Vec<Value> {
    range.map(|i| json!({"id": i})).collect()
}

#[test]
fn every_event_reaches_the_sink_and_the_final_checkpoint_covers_the_source() {
    let mut values = orders(0..1000);
    values[10] = json!({"id": 10, "drop": true});
    values[20] = json!({"id": 20, "bad": true});
    let feed = MemoryFeed::of(values);
    let store = MemoryStore::default();
    let h = Harness::new(5)
        .source("in", &feed)
        .filter("keep", &["in"], &[])
        .sink("out", &["keep"], &store);
    let summary = h.run(Arc::new(AtomicBool::new(false))).expect("run");
    let ids: Vec<u64> = store
        .durable()
        .iter()
        .filter_map(|v| v["id"].as_u64())
        .collect();
    let expected: Vec<u64> = (0..1000).filter(|i| *i != 10 && *i != 20).collect();
    assert_eq!(ids, expected);
    assert_eq!(summary.events_in, 1000);
    assert_eq!(summary.dead_letters, 1);
    let dead = h.dead_letters();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].to_string().contains("refused by the native filter"));
    let cp = h.checkpoint().expect("a final checkpoint");
    assert_eq!(cp.sources["in"], json!(1000));
    assert_eq!(cp.sinks["out"], json!(998));
    assert_eq!(feed.committed().last(), Some(&1000));
}

#[test]
fn a_sink_with_two_inputs_flushes_a_barrier_only_once_it_arrived_on_both() {
    let fast = MemoryFeed::default();
    let slow = MemoryFeed::default();
    let store = MemoryStore::default();
    let h = Harness::new(1)
        .source("a", &fast)
        .source("b", &slow)
        .sink("out", &["a", "b"], &store);
    let stop = Arc::new(AtomicBool::new(false));
    let mut seen = 0;
    std::thread::scope(|s| {
        let run = s.spawn(|| h.run(stop.clone()));
        let _guard = StopOnDrop(stop.clone());
        // Uneven inputs: a barrier reaches the sink from `a` long before the
        // same barrier from `b`, with `a`'s later events queued behind it.
        for round in 0..200u64 {
            fast.push(orders(round * 50..round * 50 + 50));
            if round % 5 == 0 {
                slow.push(orders(round..round + 1));
            }
            if let Some(cp) = h.checkpoint() {
                let a = cp.sources["a"].as_u64().expect("position");
                let b = cp.sources["b"].as_u64().expect("position");
                let written = cp.sinks["out"].as_u64().expect("position");
                assert_eq!(
                    written,
                    a + b,
                    "checkpoint {} covers {a} + {b} source events but {written} sink events",
                    cp.id
                );
                seen += 1;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        stop.store(true, Ordering::SeqCst);
        run.join().expect("runner thread").expect("run");
    });
    assert!(seen >= 5, "only {seen} checkpoints were observed");
    let cp = h.checkpoint().expect("final checkpoint");
    assert_eq!(cp.sinks["out"], json!(store.durable().len()));
}

#[test]
fn no_checkpoint_commits_until_every_sink_has_flushed() {
    let feed = MemoryFeed::default();
    let quick = MemoryStore::default();
    let held = MemoryStore::default();
    held.hold_flushes(true);
    let h = Harness::new(1)
        .source("in", &feed)
        .sink("quick", &["in"], &quick)
        .sink("held", &["in"], &held);
    let stop = Arc::new(AtomicBool::new(false));
    std::thread::scope(|s| {
        let run = s.spawn(|| h.run(stop.clone()));
        let _guard = StopOnDrop(stop.clone());
        // Declared after the stop guard, so dropped first: a failing
        // assertion releases the held sink before the run is stopped.
        let _release = ReleaseOnDrop(held.clone());
        feed.push(orders(0..100));
        wait_for("the other sink to flush a barrier", || quick.flushes() >= 1);
        // An observation window of fifty checkpoint intervals, not a wait
        // for something: no barrier may be requested while one is pending.
        // (The source's own barrier behind its snapshot may race the first
        // timed one, hence two.)
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            quick.flushes() <= 2,
            "{} barriers were requested while the first was pending",
            quick.flushes()
        );
        assert!(
            h.checkpoint().is_none(),
            "a checkpoint committed while a sink had not flushed"
        );
        assert!(
            feed.committed().is_empty(),
            "the source was acknowledged early"
        );
        held.hold_flushes(false);
        wait_for("a checkpoint after the flush", || {
            !feed.committed().is_empty()
        });
        let cp = h.checkpoint().expect("checkpoint");
        // Both sinks hold exactly what the source had read at the barrier.
        assert_eq!(cp.sinks["held"], cp.sources["in"]);
        assert_eq!(cp.sinks["quick"], cp.sources["in"]);
        stop.store(true, Ordering::SeqCst);
        run.join().expect("runner thread").expect("run");
    });
}

#[test]
fn sink_refusals_are_dead_lettered_before_the_checkpoint_that_covers_them() {
    let feed = MemoryFeed::default();
    let store = MemoryStore::default();
    store.refuse_containing("\"refuse\"");
    let h = Harness::new(1)
        .source("in", &feed)
        .sink("out", &["in"], &store);
    let value = |i: u64| {
        if i.is_multiple_of(10) {
            json!({"id": i, "refuse": true})
        } else {
            json!({"id": i})
        }
    };
    let dead_file = h.state_dir().join("dead-letters.jsonl");
    let stop = Arc::new(AtomicBool::new(false));
    let mut checked = 0;
    std::thread::scope(|s| {
        let run = s.spawn(|| h.run(stop.clone()));
        let _guard = StopOnDrop(stop.clone());
        for round in 0..100u64 {
            feed.push((round * 20..round * 20 + 20).map(value));
            if let Some(cp) = h.checkpoint() {
                let read = cp.sources["in"].as_u64().expect("position");
                // The file sink's position is the durable length of its file.
                let dead_bytes = cp.sinks["dead-letter"]["bytes"]
                    .as_u64()
                    .expect("dead-letter position") as usize;
                let text = std::fs::read(&dead_file).unwrap_or_default();
                let covered = text.get(..dead_bytes).expect("file holds the checkpoint");
                let lines = covered.iter().filter(|b| **b == b'\n').count() as u64;
                assert_eq!(lines, read.div_ceil(10), "checkpoint {}", cp.id);
                checked += 1;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        // A stop ends the source where it is: let it read everything first.
        wait_for("the source to read every value", || feed.read() == 2000);
        stop.store(true, Ordering::SeqCst);
        run.join().expect("runner thread").expect("run");
    });
    assert!(checked >= 5, "only {checked} checkpoints were observed");
    let dead = h.dead_letters();
    assert_eq!(dead.len(), 200);
    assert!(dead
        .iter()
        .all(|d| d.to_string().contains("refused by the in-memory target")));
    assert_eq!(store.durable().len(), 1800);
}

/// `orders` (10 events) reach `enrich`, which reads a table whose source has
/// read 50 of the 100 rows it must catch up on: the stage must hold its
/// input however long that takes, and process it once the rest arrives.
/// With `through_pass`, a stage between them (`orders → pass → enrich`) ends
/// and drops its channel to `enrich` long before the table has caught up;
/// `enrich` used to take the closed channel as its cue to start, against a
/// partial table.
fn a_stage_holds_its_input_until_its_table_has_caught_up(through_pass: bool) {
    let users = MemoryFeed::default();
    users.caught_up_after(100);
    users.push(orders(0..50));
    let order_feed = MemoryFeed::of(orders(0..10));
    let store = MemoryStore::default();
    let mut h = Harness::new(2)
        .source("users", &users)
        .source("orders", &order_feed)
        .table("users_t", "users");
    let mut upstream = "orders";
    if through_pass {
        h = h.filter("pass", &["orders"], &[]);
        upstream = "pass";
    }
    let h = h
        .filter("enrich", &[upstream], &["users_t"])
        .sink("out", &["enrich"], &store);
    let stop = Arc::new(AtomicBool::new(false));
    std::thread::scope(|s| {
        let run = s.spawn(|| h.run(stop.clone()));
        let _guard = StopOnDrop(stop.clone());
        wait_for("the orders to be read", || order_feed.read() == 10);
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            store.values().is_empty(),
            "the stage ran before its table was loaded"
        );
        users.push(orders(50..100));
        wait_for("the held orders", || store.values().len() == 10);
        stop.store(true, Ordering::SeqCst);
        run.join().expect("runner thread").expect("run");
    });
}

#[test]
fn a_stage_reading_a_table_waits_until_the_table_has_caught_up() {
    a_stage_holds_its_input_until_its_table_has_caught_up(false);
}

#[test]
fn a_stage_reading_a_table_keeps_waiting_after_its_upstream_stage_has_ended() {
    a_stage_holds_its_input_until_its_table_has_caught_up(true);
}

#[test]
fn a_stage_waiting_for_a_table_gives_up_when_the_run_fails_before_the_table_loads() {
    // The table's source fails before it catches up, so the table never
    // loads. The stage waiting for it must end with the run: the runner
    // gives its threads 5 s after a failure, and a stage still waiting
    // then would wait (in `sluice serve`, live) for ever.
    let users = MemoryFeed::default();
    users.caught_up_after(100);
    users.fail_at(60);
    users.push(orders(0..100));
    let order_feed = MemoryFeed::of(orders(0..10));
    let store = MemoryStore::default();
    let h = Harness::new(2)
        .source("users", &users)
        .source("orders", &order_feed)
        .table("users_t", "users")
        .filter("pass", &["orders"], &[])
        .filter("enrich", &["pass"], &["users_t"])
        .sink("out", &["enrich"], &store);
    let started = Instant::now();
    let err = h
        .run(Arc::new(AtomicBool::new(false)))
        .expect_err("the injected failure stops the run");
    let took = started.elapsed();
    assert!(format!("{err:#}").contains("injected failure"), "{err:#}");
    assert!(
        took < Duration::from_secs(4),
        "the run took {took:?}: a thread outlived it until the runner's 5 s grace ran out"
    );
    assert!(
        store.values().is_empty(),
        "the stage joined against a table that never loaded: {:?}",
        store.values()
    );
}

/// A native stage that says when its thread has let it go.
struct Dropped(Arc<AtomicBool>);

impl StageLogic for Dropped {
    fn identity(&self) -> (String, String) {
        ("dropped".into(), "1.0.0".into())
    }

    fn process(&mut self, batch: &Frame) -> Result<Output, CallFailure> {
        NativeFilter.process(batch)
    }

    fn instantiations(&self) -> u64 {
        1
    }

    fn swap(&mut self, _plugin: crate::plugin::StagePlugin) -> Result<(), String> {
        Err("native stages do not swap".into())
    }
}

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_stage_waiting_for_a_table_ends_when_a_source_fails_to_open() {
    // Stages start before the sources open; a source that fails to open
    // returns from the start at once. The stage waiting for the table then
    // used to outlive the run (its thread holding its instance) for ever.
    let users = MemoryFeed::of(orders(0..10));
    let order_feed = MemoryFeed::of(orders(0..10));
    order_feed.fail_open();
    let store = MemoryStore::default();
    let ended = Arc::new(AtomicBool::new(false));
    let flag = ended.clone();
    let h = Harness::new(2)
        .source("users", &users)
        .source("orders", &order_feed)
        .table("users_t", "users")
        .stage(
            "enrich",
            &["orders"],
            &["users_t"],
            OnError::DeadLetter,
            Arc::new(move || Box::new(Dropped(flag.clone()))),
        )
        .sink("out", &["enrich"], &store);
    let err = h
        .run(Arc::new(AtomicBool::new(false)))
        .expect_err("the source cannot open");
    assert!(
        format!("{err:#}").contains("injected failure to open"),
        "{err:#}"
    );
    wait_for("the waiting stage's thread to end", || {
        ended.load(Ordering::SeqCst)
    });
    assert!(store.values().is_empty());
}

#[test]
fn a_rerun_after_a_crash_resumes_from_the_last_checkpoint_without_loss_or_duplicates() {
    let feed = MemoryFeed::default();
    let store = MemoryStore::default();
    let h = Harness::new(1)
        .source("in", &feed)
        .filter("keep", &["in"], &[])
        .sink("out", &["keep"], &store);
    feed.push(orders(0..3000));
    std::thread::scope(|s| {
        let run = s.spawn(|| h.run(Arc::new(AtomicBool::new(false))));
        wait_for("a first checkpoint", || !feed.committed().is_empty());
        // Armed before the values exist: armed after, the source could read
        // past 5000 first, and the run would wait forever for more input.
        feed.fail_at(5000);
        feed.push(orders(3000..6000));
        let err = run
            .join()
            .expect("runner thread")
            .expect_err("the injected failure stops the run");
        assert!(format!("{err:#}").contains("injected failure"), "{err:#}");
    });
    let resumed_at = h
        .checkpoint()
        .expect("a checkpoint before the crash")
        .sources["in"]
        .as_u64()
        .expect("position");
    assert!(resumed_at > 0 && resumed_at <= 5000, "{resumed_at}");
    feed.push(orders(6000..8000));
    feed.close();
    let summary = h.run(Arc::new(AtomicBool::new(false))).expect("rerun");
    assert_eq!(feed.opened_at(), vec![None, Some(resumed_at)]);
    assert_eq!(summary.events_in, 8000 - resumed_at);
    let ids: Vec<u64> = store
        .durable()
        .iter()
        .filter_map(|v| v["id"].as_u64())
        .collect();
    assert_eq!(ids, (0..8000).collect::<Vec<u64>>());
}

#[test]
fn a_rerun_stops_naming_the_file_when_a_table_snapshot_or_the_checkpoint_is_damaged() {
    let users = MemoryFeed::of(orders(0..20));
    let order_feed = MemoryFeed::of(orders(0..5));
    let store = MemoryStore::default();
    let h = Harness::new(5)
        .source("users", &users)
        .source("orders", &order_feed)
        .table("users_t", "users")
        .sink("out", &["orders"], &store);
    h.run(Arc::new(AtomicBool::new(false))).expect("first run");
    let cp = h.checkpoint().expect("final checkpoint");
    assert_eq!(cp.sinks["users_t"]["rows"], json!(20));
    // The table's rows are in its snapshot and the deltas after it; the
    // snapshot is empty when the first checkpoint came before any row, and
    // tearing an empty file changes nothing. Damage a file that holds rows.
    let position = &cp.sinks["users_t"];
    let named = std::iter::once(&position["snapshot"])
        .chain(
            position["deltas"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| &d["file"]),
        )
        .map(|f| {
            h.state_dir()
                .join("tables")
                .join(f.as_str().expect("file name"))
        });
    let snapshot = named
        .into_iter()
        .find(|f| std::fs::metadata(f).is_ok_and(|m| m.len() > 0))
        .expect("a table file with rows");
    let hint = format!("delete the state directory {}", h.state_dir().display());
    let rerun = || {
        format!(
            "{:#}",
            h.run(Arc::new(AtomicBool::new(false)))
                .expect_err("must not resume")
        )
    };

    let good = std::fs::read(&snapshot).expect("snapshot");
    std::fs::write(&snapshot, &good[..good.len() / 2]).expect("tear");
    let err = rerun();
    assert!(
        err.contains(&format!("snapshot {} is damaged", snapshot.display())),
        "{err}"
    );
    assert!(err.contains(&hint), "{err}");

    std::fs::remove_file(&snapshot).expect("remove");
    let err = rerun();
    assert!(
        err.contains(&format!(
            "{} for the checkpoint being restored is missing",
            snapshot.display()
        )),
        "{err}"
    );
    assert!(err.contains(&hint), "{err}");

    let checkpoint = h.state_dir().join("checkpoint.json");
    std::fs::write(&checkpoint, b"{\"id\": 4, \"sources\":").expect("tear");
    let err = rerun();
    assert!(
        err.contains(&format!("checkpoint {} is corrupt", checkpoint.display())),
        "{err}"
    );
    assert!(err.contains(&hint), "{err}");
    // Nothing was opened by the failed reruns: no source restarted afresh.
    assert_eq!(order_feed.opened_at(), vec![None]);
}

#[test]
fn a_slow_sink_gets_one_barrier_at_a_time_and_events_flow_between_checkpoints() {
    let feed = MemoryFeed::of(orders(0..20_000));
    // No barrier of the source's own (behind a snapshot) racing the first
    // timed one: every barrier here is the coordinator's.
    feed.caught_up_after(usize::MAX);
    let store = MemoryStore::default();
    // Flushing takes ten checkpoint intervals: requested on the timer alone,
    // barriers would queue behind each other with no events between them.
    store.slow(Duration::from_millis(1), Duration::from_millis(10));
    let h = Harness::new(1)
        .source("in", &feed)
        .sink("out", &["in"], &store);
    let summary = h.run(Arc::new(AtomicBool::new(false))).expect("run");
    assert_eq!(store.durable().len(), 20_000);
    let flushed = store.flushed();
    // Every barrier's flush made new events durable (the first barrier may
    // precede the first read); only the final flush (at the end of input)
    // may follow the last barrier with nothing new.
    let barriers = &flushed[..flushed.len() - 1];
    assert!(
        barriers.windows(2).all(|w| w[0] < w[1]),
        "flushes without new events between them: {flushed:?}"
    );
    assert!(
        barriers.len() >= 2,
        "checkpoints kept being taken: {flushed:?}"
    );
    assert_eq!(
        summary.checkpoints,
        flushed.len() as u64,
        "every barrier committed: {flushed:?}"
    );
    assert_eq!(flushed.last(), Some(&20_000));
}

/// Passes events on; panics on a value containing `"boom"`, as a stage
/// thread that dies would.
struct Bomb;

impl StageLogic for Bomb {
    fn identity(&self) -> (String, String) {
        ("bomb".into(), "1".into())
    }

    fn process(&mut self, batch: &Frame) -> Result<Output, CallFailure> {
        assert!(
            !String::from_utf8_lossy(&batch.data).contains("\"boom\""),
            "the stage blew up"
        );
        NativeFilter.process(batch)
    }

    fn instantiations(&self) -> u64 {
        1
    }

    fn swap(&mut self, _plugin: crate::plugin::StagePlugin) -> Result<(), String> {
        Err("native stages do not swap".into())
    }
}

#[test]
fn a_stage_that_dies_ends_its_sink_without_an_end_and_no_checkpoint_covers_its_loss() {
    let mut values = orders(0..3000);
    values[2000] = json!({"id": 2000, "boom": true});
    let feed = MemoryFeed::of(values);
    let store = MemoryStore::default();
    let h = Harness::new(1)
        .source("in", &feed)
        .stage(
            "keep",
            &["in"],
            &[],
            OnError::DeadLetter,
            Arc::new(|| Box::new(Bomb)),
        )
        .sink("out", &["keep"], &store);
    let err = format!(
        "{:#}",
        h.run(Arc::new(AtomicBool::new(false)))
            .expect_err("the stage dies")
    );
    assert!(err.contains("`keep` failed: panicked"), "{err}");
    // The sink's input closed with no End: it never made the final flush,
    // so nothing committed covers the batch the stage lost.
    let ids: Vec<u64> = store
        .durable()
        .iter()
        .filter_map(|v| v["id"].as_u64())
        .collect();
    assert!(
        ids.iter().all(|id| *id < 1984),
        "the lost batch (1984..2048) reached the sink"
    );
    if let Some(cp) = h.checkpoint() {
        let read = cp.sources["in"].as_u64().expect("position");
        assert!(
            read <= 1984,
            "checkpoint {} covers events up to {read}",
            cp.id
        );
        assert_eq!(cp.sinks["out"], cp.sources["in"]);
        // Acknowledging upstream may not have happened before the source
        // stopped; it never goes beyond the checkpoint.
        assert!(feed.committed().iter().all(|p| *p <= read));
    } else {
        assert!(feed.committed().is_empty());
    }
}

#[test]
fn a_sink_write_error_stops_the_run_and_a_rerun_delivers_everything_once() {
    let feed = MemoryFeed::default();
    let store = MemoryStore::default();
    let h = Harness::new(1)
        .source("in", &feed)
        .sink("out", &["in"], &store);
    feed.push(orders(0..1000));
    std::thread::scope(|s| {
        let run = s.spawn(|| h.run(Arc::new(AtomicBool::new(false))));
        wait_for("a first checkpoint", || !feed.committed().is_empty());
        store.fail_next_write();
        feed.push(orders(1000..2000));
        let err = run
            .join()
            .expect("runner thread")
            .expect_err("the write fails");
        assert_eq!(
            format!("{err:#}"),
            "`out` failed: sink `out`: injected write failure"
        );
    });
    let cp = h.checkpoint().expect("checkpoint before the failure");
    let resumed_at = cp.sources["in"].as_u64().expect("position");
    assert_eq!(cp.sinks["out"], json!(resumed_at));
    feed.close();
    let summary = h.run(Arc::new(AtomicBool::new(false))).expect("rerun");
    assert_eq!(summary.events_in, 2000 - resumed_at);
    let ids: Vec<u64> = store
        .durable()
        .iter()
        .filter_map(|v| v["id"].as_u64())
        .collect();
    assert_eq!(ids, (0..2000).collect::<Vec<u64>>());
}

#[test]
fn on_error_skip_counts_refused_events_and_dead_letters_none() {
    let values = (0..100u64).map(|i| {
        if i.is_multiple_of(10) {
            json!({"id": i, "bad": true})
        } else {
            json!({"id": i})
        }
    });
    let feed = MemoryFeed::of(values);
    let store = MemoryStore::default();
    let h = Harness::new(5)
        .source("in", &feed)
        .stage(
            "keep",
            &["in"],
            &[],
            OnError::Skip,
            Arc::new(|| Box::new(NativeFilter)),
        )
        .sink("out", &["keep"], &store);
    let summary = h.run(Arc::new(AtomicBool::new(false))).expect("run");
    assert_eq!(summary.skipped, 10);
    assert_eq!(summary.dead_letters, 0);
    assert!(h.dead_letters().is_empty());
    let ids: Vec<u64> = store
        .durable()
        .iter()
        .filter_map(|v| v["id"].as_u64())
        .collect();
    assert_eq!(ids, (0..100).filter(|i| i % 10 != 0).collect::<Vec<u64>>());
    let cp = h.checkpoint().expect("final checkpoint");
    assert_eq!(
        (cp.sources["in"].clone(), cp.sinks["out"].clone()),
        (json!(100), json!(90))
    );
}

/// Asks to retry its first `failures` calls (then every call when
/// `failures` is `u32::MAX`), passing events on otherwise; counts calls.
struct Flaky {
    failures: u32,
    calls: Arc<std::sync::atomic::AtomicU32>,
}

impl StageLogic for Flaky {
    fn identity(&self) -> (String, String) {
        ("flaky".into(), "1".into())
    }

    fn process(&mut self, batch: &Frame) -> Result<Output, CallFailure> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n < self.failures {
            return Err(CallFailure::Retry {
                plugin: "flaky@1".into(),
                stage: "keep".into(),
                message: format!("lookup service busy (call {})", n + 1),
            });
        }
        NativeFilter.process(batch)
    }

    fn instantiations(&self) -> u64 {
        1
    }

    fn swap(&mut self, _plugin: crate::plugin::StagePlugin) -> Result<(), String> {
        Err("native stages do not swap".into())
    }

    fn retry_backoff(&self) -> crate::connector::Backoff {
        crate::connector::Backoff::from_millis(1, 2)
    }
}

fn flaky_run(failures: u32) -> (anyhow::Result<RunSummary>, MemoryStore, u32) {
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let feed = MemoryFeed::of(orders(0..64));
    let store = MemoryStore::default();
    let counted = calls.clone();
    let h = Harness::new(1000)
        .source("in", &feed)
        .stage(
            "keep",
            &["in"],
            &[],
            OnError::DeadLetter,
            Arc::new(move || {
                Box::new(Flaky {
                    failures,
                    calls: counted.clone(),
                })
            }),
        )
        .sink("out", &["keep"], &store);
    let result = h.run(Arc::new(AtomicBool::new(false)));
    (result, store, calls.load(Ordering::SeqCst))
}

#[test]
fn a_plugin_asking_to_retry_gets_its_batch_again_after_a_backoff() {
    let (result, store, calls) = flaky_run(3);
    let summary = result.expect("run");
    assert_eq!(calls, 4, "three retries, then the call that succeeds");
    assert_eq!(summary.dead_letters, 0);
    assert_eq!(summary.instance_restarts, 0);
    assert_eq!(store.durable(), orders(0..64));
}

#[test]
fn a_plugin_that_keeps_asking_to_retry_stops_the_stage_after_eight_retries() {
    let (result, store, calls) = flaky_run(u32::MAX);
    let err = format!("{:#}", result.expect_err("retries run out"));
    assert_eq!(calls, 9, "the call and eight retries");
    assert!(
        err.contains("plugin flaky@1 in stage `keep` asked to retry: lookup service busy (call 9)"),
        "{err}"
    );
    assert!(store.durable().is_empty());
}

/// A component's counts in a run summary.
fn counts_of(summary: &RunSummary, name: &str) -> super::ComponentCounts {
    summary
        .components
        .iter()
        .find(|c| c.name == name)
        .cloned()
        .unwrap_or_else(|| panic!("no counts for `{name}` in {:?}", summary.components))
}

#[test]
fn each_stage_and_sink_counts_what_it_passed_filtered_and_dead_lettered() {
    // 100 events: every 10th is dropped by the filter, every 25th refused
    // by it (dead-lettered); `raw` takes the source directly and its target
    // refuses ids divisible by 7 (each holds `"refuse"`), so no event goes
    // missing without a count saying where.
    let values: Vec<Value> = (0..100u64)
        .map(|i| match i {
            _ if i % 25 == 0 => json!({"id": i, "bad": true}),
            _ if i % 10 == 0 => json!({"id": i, "drop": true}),
            _ if i % 7 == 0 => json!({"id": i, "refuse": true}),
            _ => json!({"id": i}),
        })
        .collect();
    let refused = values.iter().filter(|v| v.get("refuse").is_some()).count() as u64;
    let feed = MemoryFeed::of(values);
    let kept = MemoryStore::default();
    let raw = MemoryStore::default();
    raw.refuse_containing("\"refuse\"");
    let h = Harness::new(5)
        .source("in", &feed)
        .filter("keep", &["in"], &[])
        .sink("kept", &["keep"], &kept)
        .sink("raw", &["in"], &raw);
    let summary = h.run(Arc::new(AtomicBool::new(false))).expect("run");

    let source = counts_of(&summary, "in");
    assert_eq!((source.events_out, source.dead_lettered), (100, 0));
    let keep = counts_of(&summary, "keep");
    // 0, 25, 50, 75 are `bad`; 10, 20, 30, 40, 60, 70, 80, 90 are dropped.
    assert_eq!(
        (
            keep.events_in,
            keep.events_out,
            keep.filtered,
            keep.dead_lettered
        ),
        (100, 88, 8, 4),
        "{keep:?}"
    );
    assert_eq!(
        keep.describe(),
        "in 100, out 88, filtered out 8, dead-lettered 4"
    );
    let kept_counts = counts_of(&summary, "kept");
    assert_eq!((kept_counts.events_in, kept_counts.events_out), (88, 88));
    assert_eq!(kept.durable().len(), 88);
    let raw_counts = counts_of(&summary, "raw");
    assert_eq!(
        (
            raw_counts.events_in,
            raw_counts.events_out,
            raw_counts.dead_lettered
        ),
        (100, 100 - refused, refused),
        "{raw_counts:?}"
    );
    assert_eq!(raw.durable().len() as u64, 100 - refused);
    // The totals add up from the parts; no single "out" across sinks.
    assert_eq!(summary.dead_letters, 4 + refused);
    assert_eq!(h.dead_letters().len() as u64, 4 + refused);
    let order: Vec<&str> = summary.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(order, ["in", "keep", "kept", "raw"]);
}

/// The native filter under another build's name, as a plugin upgrade.
struct Upgraded(NativeFilter);

impl StageLogic for Upgraded {
    fn identity(&self) -> (String, String) {
        ("native-filter (sha256 22222222)".into(), "1.0.1".into())
    }
    fn process(&mut self, batch: &Frame) -> Result<Output, CallFailure> {
        self.0.process(batch)
    }
    fn instantiations(&self) -> u64 {
        1
    }
    fn swap(&mut self, _plugin: crate::plugin::StagePlugin) -> Result<(), String> {
        Err("native stages do not swap".into())
    }
}

#[test]
fn a_rerun_resumes_after_a_plugin_upgrade_but_refuses_a_reconfigured_source() {
    let feed = MemoryFeed::default();
    feed.set_label("orders.jsonl");
    let store = MemoryStore::default();
    let mut h = Harness::new(5)
        .source("in", &feed)
        .filter("keep", &["in"], &[])
        .sink("out", &["keep"], &store);
    feed.push(orders(0..50));
    let stop = Arc::new(AtomicBool::new(false));
    std::thread::scope(|s| {
        let run = s.spawn(|| h.run(stop.clone()));
        let _guard = StopOnDrop(stop.clone());
        wait_for("all read", || feed.read() == 50);
        stop.store(true, Ordering::SeqCst);
        run.join().expect("runner thread").expect("run");
    });
    let first = h.checkpoint().expect("checkpoint");
    let recorded = first.pipeline.clone().expect("a fingerprint is recorded");
    assert!(
        recorded["stages"]["keep"]["plugin"] == json!("native-filter"),
        "{recorded}"
    );

    // A new build of the stage's plugin: the run resumes where it was.
    h.overrides = vec![(
        "keep".into(),
        Arc::new(|| Box::new(Upgraded(NativeFilter)) as Box<dyn StageLogic>),
    )];
    feed.push(orders(50..60));
    feed.close();
    let summary = h.run(Arc::new(AtomicBool::new(false))).expect("resumes");
    assert_eq!(summary.events_in, 10, "only the new events are read");
    assert_eq!(feed.opened_at(), vec![None, Some(50)]);
    let second = h.checkpoint().expect("checkpoint");
    assert_eq!(
        second.pipeline.expect("fingerprint")["stages"]["keep"]["plugin"],
        json!("native-filter (sha256 22222222)")
    );

    // The source now reads something else: resuming at its old position
    // would skip data, so the run refuses and says how to start over.
    feed.set_label("other.jsonl");
    let err = h
        .run(Arc::new(AtomicBool::new(false)))
        .expect_err("refused");
    let msg = format!("{err:#}");
    assert!(msg.contains("source `in`'s configuration changed"), "{msg}");
    assert!(msg.contains("sluice run --reset"), "{msg}");
    assert_eq!(feed.opened_at().len(), 2, "the source was not opened");
    assert_eq!(
        h.checkpoint().map(|c| c.id),
        Some(second.id),
        "the checkpoint is untouched"
    );
}
