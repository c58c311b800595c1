//! The default mode: Sluice against the hand-written reference.
//!
//! For each shape and job, the same generated file goes through
//! - the native reference (`sluice-bench reference ...`), and
//! - `sluice run` with a file source, the built-in plugins as stages and a
//!   file sink: the real runner, default sandbox limits, epoch CPU budget on,
//!
//! each as a child process whose own CPU time is read from `wait4`. The two
//! outputs must hold the same records (canonical JSON, any order), or the
//! run fails. On the orders, both jobs also run written as SQL statements
//! (`sluice sql`, compiled by the same front end as any statement file):
//! their outputs must hold the same records as the YAML pipeline's, and the
//! report puts SQL next to YAML. SQL's `WHERE` is the `project` stage's
//! `where`, where the YAML job has a `filter` stage in front, so the SQL
//! jobs cross into Wasm once fewer. Then,
//! on the orders, the cost of the boundary itself: file → file with no
//! stage, with `passthrough`, with `filter`, with `lookup-join`.
//!
//! Plugins are compiled into the component cache before anything is
//! measured (`sluice validate`), so a figure is the steady cost of a run,
//! not Cranelift's.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::{json, Map, Value};

use crate::json::{digest, first_difference};
use crate::measure::{self, Usage};
use crate::shapes::{self, Job, Shape, PRICE_CENTS, WHERE};

/// The targets from issue 13, printed next to the figures.
const TARGET_RATIO: f64 = 2.0;
const TARGET_CROSSING_US: f64 = 0.1;
const TARGET_FILTER_US: f64 = 0.3;
const TARGET_LOOKUP_US: f64 = 0.5;

/// The built-in plugins the jobs use.
#[derive(Debug, Clone)]
pub struct Plugins {
    /// `filter`.
    pub filter: PathBuf,
    /// `project`.
    pub project: PathBuf,
    /// `passthrough`.
    pub passthrough: PathBuf,
    /// `lookup-join`.
    pub lookup_join: PathBuf,
}

impl Plugins {
    /// Finds the built-in plugins as `sluice run` would (plus `search`).
    pub fn find(search: &[PathBuf]) -> Result<Plugins> {
        let base = std::env::current_dir()?;
        let find = |name: &str| -> Result<PathBuf> {
            let p =
                sluice::config::resolve_plugin(name, &base, search).map_err(anyhow::Error::msg)?;
            // Absolute, because the pipeline files live in the work directory.
            Ok(std::fs::canonicalize(&p).unwrap_or(p))
        };
        Ok(Plugins {
            filter: find("filter")?,
            project: find("project")?,
            passthrough: find("passthrough")?,
            lookup_join: find("lookup-join")?,
        })
    }

    /// The directories the plugins are in, for `sluice sql --plugin-path`:
    /// statements name plugins, so the ones found here must come first.
    fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for p in [
            &self.filter,
            &self.project,
            &self.passthrough,
            &self.lookup_join,
        ] {
            if let Some(d) = p.parent() {
                if !dirs.iter().any(|x| x == d) {
                    dirs.push(d.to_path_buf());
                }
            }
        }
        dirs
    }
}

/// What to measure.
#[derive(Debug)]
pub struct Options {
    /// Orders.
    pub events: u64,
    /// Events of each other shape.
    pub shape_events: u64,
    /// Runs per measurement (the lowest CPU counts).
    pub runs: u32,
    /// The shapes.
    pub shapes: Vec<Shape>,
    /// `batch_size` of the pipelines; the pipeline default when `None`.
    pub batch_size: Option<usize>,
    /// The `sluice` executable.
    pub sluice: PathBuf,
    /// The plugins.
    pub plugins: Plugins,
    /// Where files go; a temporary directory when `None`.
    pub work_dir: Option<PathBuf>,
    /// This invocation, for the report.
    pub command: String,
}

/// One shape × job.
struct Row {
    shape: Shape,
    job: Job,
    events: u64,
    bytes_per_event: u64,
    out_lines: u64,
    native: Usage,
    sluice: Usage,
    /// The same job written as SQL (orders only).
    sql: Option<Usage>,
    /// The YAML job with `fuse_stages: false`: every stage on its own
    /// (orders only).
    apart: Option<Usage>,
}

/// One boundary pipeline.
struct Boundary {
    label: &'static str,
    usage: Usage,
    out_lines: u64,
}

/// A stage of a generated pipeline.
struct Stage<'a> {
    name: &'a str,
    plugin: &'a Path,
    input: &'a str,
    params: Value,
    table: bool,
}

const TABLE: &str = "customers_by_id";

/// A pipeline file (JSON, which is YAML): events from `input`, the
/// customers table when `table` is given, `stages` in a chain, the last
/// one's output in `out`.
fn pipeline(
    name: &str,
    batch_size: Option<usize>,
    input: &Path,
    table: Option<&Path>,
    stages: &[Stage<'_>],
    out: &Path,
    state: &Path,
) -> Value {
    let path = |p: &Path| Value::from(p.display().to_string());
    let mut sources = Map::new();
    sources.insert(
        "events".into(),
        json!({"type": "file", "path": path(input)}),
    );
    let mut p = Map::new();
    p.insert("name".into(), name.into());
    p.insert("data_dir".into(), path(state));
    if let Some(n) = batch_size {
        p.insert("batch_size".into(), n.into());
    }
    if let Some(t) = table {
        sources.insert("customers".into(), json!({"type": "file", "path": path(t)}));
        p.insert(
            "tables".into(),
            json!({TABLE: {"input": "customers", "key_field": "customer_id"}}),
        );
    }
    p.insert("sources".into(), Value::Object(sources));
    let mut st = Map::new();
    for s in stages {
        let mut v = json!({
            "plugin": path(s.plugin),
            "inputs": [s.input],
            "params": s.params,
        });
        if s.table {
            v["tables"] = json!([TABLE]);
        }
        st.insert(s.name.into(), v);
    }
    if !st.is_empty() {
        p.insert("stages".into(), Value::Object(st));
    }
    let last = stages.last().map_or("events", |s| s.name);
    p.insert(
        "sinks".into(),
        json!({"out": {"type": "file", "path": path(out), "inputs": [last]}}),
    );
    Value::Object(p)
}

/// The job's stages on `shape`.
fn job_stages(job: Job, shape: Shape, plugins: &Plugins) -> Vec<Stage<'_>> {
    let mut stages = vec![
        Stage {
            name: "keep",
            plugin: &plugins.filter,
            input: "events",
            params: json!({"where": WHERE}),
            table: false,
        },
        Stage {
            name: "shape",
            plugin: &plugins.project,
            input: "keep",
            params: json!({"select": shape.select(), "set": {"price_cents": PRICE_CENTS}}),
            table: false,
        },
    ];
    if job == Job::Join {
        stages.push(Stage {
            name: "enrich",
            plugin: &plugins.lookup_join,
            input: "shape",
            params: json!({
                "table": TABLE,
                "on": "customer_id",
                "join": "inner",
                "fields": shape.join_fields(),
            }),
            table: true,
        });
    }
    stages
}

/// A path as a SQL string literal (a quote inside is doubled).
fn sql_string(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "''"))
}

/// The orders job as ksqlDB statements: a FileStream source over the events
/// (and one over the customers, a table keyed by `customer_id`, for the
/// join), the filter and project as one `CREATE STREAM ... AS SELECT`, the
/// join as a second one, and a FileStream sink. They compile to the stages
/// [`job_stages`] builds by hand, with the same parameters.
fn orders_sql(job: Job, input: &Path, customers: &Path, out: &Path) -> String {
    let select = Shape::Orders.select().join(", ");
    let mut s = format!(
        "-- The orders {job} job of sluice-bench, written as SQL.
CREATE SOURCE CONNECTOR events WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSourceConnector',
  'file' = {input}, 'topic' = 'orders');
CREATE STREAM orders WITH (kafka_topic = 'orders', value_format = 'JSON');
CREATE STREAM shaped AS
  SELECT {select}, {PRICE_CENTS} AS price_cents
  FROM orders WHERE {WHERE} EMIT CHANGES;
",
        job = job.name(),
        input = sql_string(input),
    );
    let last = if job == Job::Join {
        s.push_str(&format!(
            "CREATE SOURCE CONNECTOR customers_src WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSourceConnector',
  'file' = {customers}, 'topic' = 'customers');
CREATE TABLE {TABLE} WITH (kafka_topic = 'customers', key = 'customer_id', value_format = 'JSON');
CREATE STREAM enriched AS
  SELECT {cols}, s.price_cents, c.name AS customer_name, c.age AS customer_age
  FROM shaped s INNER JOIN {TABLE} c ON s.customer_id = c.customer_id EMIT CHANGES;
",
            customers = sql_string(customers),
            cols = Shape::Orders
                .select()
                .iter()
                .map(|c| format!("s.{c}"))
                .collect::<Vec<_>>()
                .join(", "),
        ));
        "enriched"
    } else {
        "shaped"
    };
    s.push_str(&format!(
        "CREATE SINK CONNECTOR out WITH (
  'connector.class' = 'org.apache.kafka.connect.file.FileStreamSinkConnector',
  'file' = {out}, 'topics' = '{last}');
",
        out = sql_string(out),
    ));
    s
}

/// Runs `once` `runs` times; the run with the least CPU.
fn best_of(runs: u32, mut once: impl FnMut() -> Result<Usage>) -> Result<Usage> {
    let mut best: Option<Usage> = None;
    for _ in 0..runs.max(1) {
        let u = once()?;
        if best.is_none_or(|b| u.cpu() < b.cpu()) {
            best = Some(u);
        }
    }
    best.context("no run")
}

struct Ctx<'a> {
    o: &'a Options,
    dir: &'a Path,
}

impl Ctx<'_> {
    /// Measures `sluice run` on the pipeline `name`, built by `make` for a
    /// given output and state directory; returns the usage and the output path.
    fn sluice(&self, name: &str, make: impl Fn(&Path, &Path) -> Value) -> Result<(Usage, PathBuf)> {
        let file = self.dir.join(format!("{name}.yaml"));
        let out = self.dir.join(format!("{name}.out.jsonl"));
        let state = self.dir.join(format!("{name}.state"));
        let text = serde_json::to_string_pretty(&make(&out, &state))?;
        std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
        let log = self.dir.join(format!("{name}.log"));
        // Compiles the plugins into the cache, outside the measurement.
        measure::run(
            Command::new(&self.o.sluice)
                .args(["-q", "validate"])
                .arg(&file),
            &log,
        )?;
        let usage = best_of(self.o.runs, || {
            // A fresh start each time: no checkpoint to resume from.
            let _ = std::fs::remove_dir_all(&state);
            let _ = std::fs::remove_file(&out);
            measure::run(
                Command::new(&self.o.sluice)
                    .args(["-q", "run", "--no-progress"])
                    .arg(&file),
                &log,
            )
        })?;
        let _ = std::fs::remove_dir_all(&state);
        Ok((usage, out))
    }

    /// Measures `sluice sql` on the orders `job` written as SQL; returns
    /// the usage and the output path. `--explain`'s pipeline goes through
    /// `sluice validate` first, which also compiles the plugins into the
    /// cache outside the measurement.
    fn sql(&self, job: Job, input: &Path, customers: &Path) -> Result<(Usage, PathBuf)> {
        let name = format!("orders-{}-sql", job.name());
        let file = self.dir.join(format!("{name}.sql"));
        let out = self.dir.join(format!("{name}.out.jsonl"));
        let state = self.dir.join(format!("{name}.state"));
        let explained = self.dir.join(format!("{name}.explain.yaml"));
        let log = self.dir.join(format!("{name}.log"));
        std::fs::write(&file, orders_sql(job, input, customers, &out))
            .with_context(|| format!("writing {}", file.display()))?;
        let mut plugin_path = Vec::new();
        for d in self.o.plugins.dirs() {
            plugin_path.push("--plugin-path".into());
            plugin_path.push(d.into_os_string());
        }
        measure::run(
            Command::new(&self.o.sluice)
                .args(["-q", "sql", "--explain"])
                .arg(&file),
            &explained,
        )?;
        measure::run(
            Command::new(&self.o.sluice)
                .args(["-q", "validate"])
                .arg(&explained)
                .args(&plugin_path),
            &log,
        )?;
        let usage = best_of(self.o.runs, || {
            let _ = std::fs::remove_dir_all(&state);
            let _ = std::fs::remove_file(&out);
            measure::run(
                Command::new(&self.o.sluice)
                    .args(["-q", "sql", "--no-progress", "--data-dir"])
                    .arg(&state)
                    .args(&plugin_path)
                    .arg(&file),
                &log,
            )
        })?;
        let _ = std::fs::remove_dir_all(&state);
        Ok((usage, out))
    }

    /// What the first run with an empty component cache adds: `sluice
    /// validate` of the orders join (filter, project, lookup-join), which
    /// compiles each plugin with Cranelift and stores it.
    fn cold_compile(&self, customers: &Path) -> Result<Usage> {
        let file = self.dir.join("cold-compile.yaml");
        let events = self.dir.join("cold-compile.jsonl");
        std::fs::write(&events, "")?;
        let p = pipeline(
            "bench-cold-compile",
            None,
            &events,
            Some(customers),
            &job_stages(Job::Join, Shape::Orders, &self.o.plugins),
            &self.dir.join("cold-compile.out.jsonl"),
            &self.dir.join("cold-compile.state"),
        );
        std::fs::write(&file, serde_json::to_string_pretty(&p)?)?;
        let cache = tempfile::Builder::new()
            .prefix("sluice-bench-cache")
            .tempdir()?;
        eprintln!("compiling the plugins into an empty cache ...");
        measure::run(
            Command::new(&self.o.sluice)
                .env("SLUICE_CACHE_DIR", cache.path())
                .args(["-q", "validate"])
                .arg(&file),
            &self.dir.join("cold-compile.log"),
        )
    }

    /// Measures the native reference; returns the usage and the output path.
    fn native(
        &self,
        shape: Shape,
        job: Job,
        input: &Path,
        table: &Path,
    ) -> Result<(Usage, PathBuf)> {
        let name = format!("{}-{}-native", shape.name(), job.name());
        let out = self.dir.join(format!("{name}.out.jsonl"));
        let log = self.dir.join(format!("{name}.log"));
        let me = std::env::current_exe().context("locating sluice-bench")?;
        let usage = best_of(self.o.runs, || {
            measure::run(
                Command::new(&me)
                    .arg("reference")
                    .args(["--shape", shape.name(), "--job", job.name()])
                    .arg("--input")
                    .arg(input)
                    .arg("--table")
                    .arg(table)
                    .arg("--output")
                    .arg(&out),
                &log,
            )
        })?;
        Ok((usage, out))
    }
}

fn lines(path: &Path) -> Result<u64> {
    use std::io::BufRead;
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut n = 0;
    for line in std::io::BufReader::new(f).split(b'\n') {
        if !line?.is_empty() {
            n += 1;
        }
    }
    Ok(n)
}

/// Fails unless the outputs `a` and `b` (written by `a_who` and `b_who`)
/// hold the same records.
fn same_records(what: &str, (a_who, a): (&str, &Path), (b_who, b): (&str, &Path)) -> Result<u64> {
    let (da, db) = (digest(a)?, digest(b)?);
    if da == db {
        return Ok(da.lines);
    }
    let example = match first_difference(a, b)? {
        Some((n, x, y)) => {
            format!("\n  first difference, line {n}:\n  {a_who}: {x}\n  {b_who}: {y}")
        }
        None => String::new(),
    };
    anyhow::bail!(
        "{what}: {a_who} wrote {} lines and {b_who} {}, and their records differ{example}\n  (outputs: {} and {})",
        da.lines,
        db.lines,
        a.display(),
        b.display()
    )
}

/// Runs every measurement and prints the report.
pub fn run(o: &Options) -> Result<()> {
    let tmp;
    let dir: &Path = match &o.work_dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d
        }
        None => {
            tmp = tempfile::Builder::new().prefix("sluice-bench").tempdir()?;
            tmp.path()
        }
    };
    let ctx = Ctx { o, dir };
    let customers = dir.join("customers.jsonl");
    shapes::write_customers(&customers)?;
    let cold = ctx.cold_compile(&customers)?;
    let mut rows = Vec::new();
    let mut boundary = Vec::new();
    for &shape in &o.shapes {
        let n = if shape == Shape::Orders {
            o.events
        } else {
            o.shape_events
        };
        let input = dir.join(format!("{}.jsonl", shape.name()));
        eprintln!("generating {n} {} events ...", shape.name());
        let bytes = shapes::generate(shape, n, &input)?;
        for job in Job::ALL {
            let what = format!("{} {}", shape.name(), job.name());
            eprintln!("{what}: native reference ...");
            let (native, native_out) = ctx.native(shape, job, &input, &customers)?;
            eprintln!("{what}: sluice run ...");
            let table = (job == Job::Join).then_some(customers.as_path());
            let (sluice, sluice_out) =
                ctx.sluice(&format!("{}-{}", shape.name(), job.name()), |out, state| {
                    pipeline(
                        &format!("bench-{}-{}", shape.name(), job.name()),
                        o.batch_size,
                        &input,
                        table,
                        &job_stages(job, shape, &o.plugins),
                        out,
                        state,
                    )
                })?;
            let out_lines = same_records(
                &what,
                ("the native reference", &native_out),
                ("Sluice", &sluice_out),
            )?;
            anyhow::ensure!(out_lines > 0, "{what}: no output at all");
            let apart = if shape == Shape::Orders {
                eprintln!("{what}: sluice run, stages apart ...");
                let (usage, apart_out) = ctx.sluice(
                    &format!("{}-{}-apart", shape.name(), job.name()),
                    |out, state| {
                        let mut p = pipeline(
                            &format!("bench-{}-{}-apart", shape.name(), job.name()),
                            o.batch_size,
                            &input,
                            table,
                            &job_stages(job, shape, &o.plugins),
                            out,
                            state,
                        );
                        p["fuse_stages"] = false.into();
                        p
                    },
                )?;
                same_records(
                    &what,
                    ("Sluice (YAML)", &sluice_out),
                    ("Sluice (YAML, stages apart)", &apart_out),
                )?;
                let _ = std::fs::remove_file(&apart_out);
                Some(usage)
            } else {
                None
            };
            let sql = if shape == Shape::Orders {
                eprintln!("{what}: sluice sql ...");
                let (usage, sql_out) = ctx.sql(job, &input, &customers)?;
                same_records(
                    &what,
                    ("Sluice (YAML)", &sluice_out),
                    ("Sluice (SQL)", &sql_out),
                )?;
                let _ = std::fs::remove_file(&sql_out);
                Some(usage)
            } else {
                None
            };
            rows.push(Row {
                shape,
                job,
                events: n,
                bytes_per_event: bytes / n.max(1),
                out_lines,
                native,
                sluice,
                sql,
                apart,
            });
            let _ = std::fs::remove_file(&native_out);
            let _ = std::fs::remove_file(&sluice_out);
        }
        if shape == Shape::Orders {
            boundary = boundary_runs(&ctx, &input, &customers, n)?;
        }
        // Kept with --work-dir, for profiling a single run on the same bytes.
        if o.work_dir.is_none() {
            let _ = std::fs::remove_file(&input);
        }
    }
    print_report(o, &rows, &boundary, &cold);
    Ok(())
}

/// File → file with no stage, `passthrough`, `filter` and `lookup-join`.
fn boundary_runs(ctx: &Ctx<'_>, input: &Path, customers: &Path, n: u64) -> Result<Vec<Boundary>> {
    let p = &ctx.o.plugins;
    let join_fields = "order_id, customer_id, price, currency, ts, table.name as customer_name, table.age as customer_age";
    // (label, stages, with the customers table, every event goes on)
    let cases: [(&'static str, Vec<Stage<'_>>, bool, bool); 4] = [
        ("file → file, no stage", vec![], false, true),
        (
            "file → passthrough → file",
            vec![Stage {
                name: "pass",
                plugin: &p.passthrough,
                input: "events",
                params: json!({}),
                table: false,
            }],
            false,
            true,
        ),
        (
            "file → filter → file",
            vec![Stage {
                name: "keep",
                plugin: &p.filter,
                input: "events",
                params: json!({"where": WHERE}),
                table: false,
            }],
            false,
            false,
        ),
        (
            "file → lookup-join → file",
            vec![Stage {
                name: "enrich",
                plugin: &p.lookup_join,
                input: "events",
                // A left join: every event goes on, as with passthrough.
                params: json!({"table": TABLE, "on": "customer_id", "join": "left", "fields": join_fields}),
                table: true,
            }],
            true,
            true,
        ),
    ];
    let mut out = Vec::new();
    for (i, (label, stages, table, keeps_all)) in cases.iter().enumerate() {
        eprintln!("boundary: {label} ...");
        let name = format!("boundary-{i}");
        let (usage, file) = ctx.sluice(&name, |o, s| {
            pipeline(
                &format!("bench-{name}"),
                ctx.o.batch_size,
                input,
                table.then_some(customers),
                stages,
                o,
                s,
            )
        })?;
        let out_lines = lines(&file)?;
        let _ = std::fs::remove_file(&file);
        if *keeps_all {
            anyhow::ensure!(out_lines == n, "{label}: {out_lines} events out of {n} in");
        }
        out.push(Boundary {
            label,
            usage,
            out_lines,
        });
    }
    Ok(out)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

/// The rows with a second Sluice run (`other`), each with its native,
/// Sluice and other µs per event.
fn beside(rows: &[Row], other: impl Fn(&Row) -> Option<&Usage>) -> Vec<(&Row, f64, f64, f64)> {
    rows.iter()
        .filter_map(|r| {
            let u = other(r)?;
            Some((
                r,
                r.native.us_per_event(r.events),
                r.sluice.us_per_event(r.events),
                u.us_per_event(r.events),
            ))
        })
        .collect()
}

fn print_report(o: &Options, rows: &[Row], boundary: &[Boundary], cold: &Usage) {
    println!("sluice-bench: Sluice (`sluice run`, file source → built-in plugins → file sink, default sandbox limits, epoch CPU budget on)");
    println!("against hand-written Rust (serde derive structs, BufReader/BufWriter, HashMap).");
    println!(
        "CPU = user + system time of each run's whole process, per input event; {} of each, the lowest counts.",
        if o.runs == 1 {
            "one run".to_string()
        } else {
            format!("{} runs", o.runs)
        }
    );
    println!();
    println!(
        "| shape | bytes/event | events | job | out | native µs/event | Sluice µs/event | Sluice / native | target ≤ {TARGET_RATIO:.1}× |"
    );
    println!("|---|---:|---:|---|---:|---:|---:|---:|---|");
    for r in rows {
        let (nat, slu) = (
            r.native.us_per_event(r.events),
            r.sluice.us_per_event(r.events),
        );
        let ratio = slu / nat.max(1e-9);
        println!(
            "| {} | {} | {} | {} | {} | {nat:.3} | {slu:.3} | {ratio:.1}× | {} |",
            r.shape.name(),
            r.bytes_per_event,
            r.events,
            r.job.name(),
            r.out_lines,
            verdict(ratio <= TARGET_RATIO)
        );
    }
    let sql = beside(rows, |r| r.sql.as_ref());
    if !sql.is_empty() {
        println!();
        println!("The orders jobs written as SQL (`sluice sql`, FileStream connectors and `CREATE STREAM ... AS SELECT`), same records as the YAML pipeline:");
        println!();
        println!("| job | events | out | native µs/event | YAML µs/event | SQL µs/event | SQL / YAML | SQL / native |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
        for &(r, nat, yaml, sql) in &sql {
            println!(
                "| {} | {} | {} | {nat:.3} | {yaml:.3} | {sql:.3} | {:.2}× | {:.1}× |",
                r.job.name(),
                r.events,
                r.out_lines,
                sql / yaml.max(1e-9),
                sql / nat.max(1e-9)
            );
        }
    }
    let apart = beside(rows, |r| r.apart.as_ref());
    if !apart.is_empty() {
        println!();
        println!("The orders YAML jobs as the table above runs them (built-in stages fused, the default) and with `fuse_stages: false` (each stage on its own: what a chain of plugins that cannot fuse costs), same records:");
        println!();
        println!("| job | events | native µs/event | fused µs/event | apart µs/event | fused / native | apart / native |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for &(r, nat, fused, apart) in &apart {
            println!(
                "| {} | {} | {nat:.3} | {fused:.3} | {apart:.3} | {:.1}× | {:.1}× |",
                r.job.name(),
                r.events,
                fused / nat.max(1e-9),
                apart / nat.max(1e-9)
            );
        }
    }
    if !sql.is_empty() && o.batch_size.is_some() {
        println!();
        println!("(--batch-size applies to the YAML pipelines only: the SQL runs use the default batch size.)");
    }
    if let [none, pass, filter, lookup] = boundary {
        let n = rows
            .iter()
            .find(|r| r.shape == Shape::Orders)
            .map_or(1, |r| r.events);
        let us = |b: &Boundary| b.usage.us_per_event(n);
        let crossing = us(pass) - us(none);
        let filter_over = us(filter) - us(pass);
        let lookup_over = us(lookup) - us(pass);
        println!();
        println!("Boundary, Sluice on {n} orders:");
        println!();
        println!("| pipeline | events out | CPU µs/event | extra | target |");
        println!("|---|---:|---:|---|---|");
        println!(
            "| {} | {} | {:.3} | | |",
            none.label,
            none.out_lines,
            us(none)
        );
        println!(
            "| {} | {} | {:.3} | crossing in + out: {crossing:+.3} µs over no stage | ≤ {TARGET_CROSSING_US} µs: {} |",
            pass.label,
            pass.out_lines,
            us(pass),
            verdict(crossing <= TARGET_CROSSING_US)
        );
        println!(
            "| {} | {} | {:.3} | filter: {filter_over:+.3} µs over passthrough | ≤ {TARGET_FILTER_US} µs: {} |",
            filter.label,
            filter.out_lines,
            us(filter),
            verdict(filter_over <= TARGET_FILTER_US)
        );
        println!(
            "| {} | {} | {:.3} | lookup-join: {lookup_over:+.3} µs over passthrough | ≤ {TARGET_LOOKUP_US} µs: {} |",
            lookup.label,
            lookup.out_lines,
            us(lookup),
            verdict(lookup_over <= TARGET_LOOKUP_US)
        );
    }
    println!();
    println!(
        "Not in the figures above: the first run after a plugin changes compiles it into the component cache; for filter + project + lookup-join (`sluice validate`, empty cache) that took {:.2} CPU s ({:.2} s wall).",
        cold.cpu().as_secs_f64(),
        cold.wall.as_secs_f64()
    );
    println!();
    println!("Each run: CPU s (user + sys), wall s, peak RSS MiB:");
    let detail = |label: &str, u: &Usage| {
        println!(
            "  {label:<40} {:>8.2} ({:.2} + {:.2}) {:>8.2} {:>8.0}",
            u.cpu().as_secs_f64(),
            u.user.as_secs_f64(),
            u.sys.as_secs_f64(),
            u.wall.as_secs_f64(),
            u.max_rss_kib as f64 / 1024.0
        );
    };
    for r in rows {
        let what = format!("{} {}", r.shape.name(), r.job.name());
        detail(&format!("{what}, native"), &r.native);
        detail(&format!("{what}, Sluice"), &r.sluice);
        if let Some(u) = &r.apart {
            detail(&format!("{what}, Sluice, stages apart"), u);
        }
        if let Some(u) = &r.sql {
            detail(&format!("{what}, Sluice SQL"), u);
        }
    }
    for b in boundary {
        detail(b.label, &b.usage);
    }
    println!();
    println!("sluice: {}", o.sluice.display());
    println!("command: {}", o.command);
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice::sql::plan::Y;

    fn json_of(y: &Y) -> Value {
        match y {
            Y::Str(s) => json!(s),
            Y::Int(i) => json!(i),
            Y::Bool(b) => json!(b),
            Y::List(l) => Value::Array(l.iter().map(json_of).collect()),
            Y::Map(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), json_of(v))).collect()),
        }
    }

    #[test]
    fn the_sql_jobs_compile_to_the_yaml_jobs_with_where_in_the_project_stage_and_the_join() {
        let plugins = Plugins {
            filter: "filter.wasm".into(),
            project: "project.wasm".into(),
            passthrough: "passthrough.wasm".into(),
            lookup_join: "lookup-join.wasm".into(),
        };
        for job in Job::ALL {
            let text = orders_sql(
                job,
                Path::new("/data/it's.jsonl"),
                Path::new("/data/customers.jsonl"),
                Path::new("/data/out.jsonl"),
            );
            let compiled = sluice::sql::compile(&text, "bench", None, "bench.sql", None)
                .unwrap_or_else(|e| panic!("{}", e.render("bench.sql")));
            let got: Vec<(String, Value)> = compiled
                .plan
                .stages
                .iter()
                .map(|e| {
                    let field = |k: &str| {
                        e.body
                            .iter()
                            .find(|(n, _)| n == k)
                            .map_or(Value::Null, |(_, v)| json_of(v))
                    };
                    (
                        field("plugin").as_str().unwrap_or_default().to_string(),
                        field("params"),
                    )
                })
                .collect();
            let mut want: Vec<(String, Value)> = job_stages(job, Shape::Orders, &plugins)
                .iter()
                .map(|s| {
                    let stem = s.plugin.file_stem().map(|x| x.to_string_lossy());
                    (stem.unwrap_or_default().into_owned(), s.params.clone())
                })
                .collect();
            // SQL puts the WHERE into the project stage: one stage, one
            // crossing, where the YAML job has a filter in front.
            assert_eq!(want[0].0, "filter");
            let (_, filter) = want.remove(0);
            if let (Some(project), Some(condition)) =
                (want[0].1.as_object_mut(), filter.get("where"))
            {
                project.insert("where".into(), condition.clone());
            }
            // And the join, the projection's only reader, takes in its
            // `where` and `set` (`sluice::sql`'s fusion): one stage.
            if let Job::Join = job {
                let (_, project) = want.remove(0);
                assert_eq!(want[0].0, "lookup-join");
                for name in ["where", "set"] {
                    if let (Some(join), Some(value)) =
                        (want[0].1.as_object_mut(), project.get(name))
                    {
                        join.insert(name.into(), value.clone());
                    }
                }
            }
            assert_eq!(got, want, "{}:\n{}", job.name(), compiled.yaml);
            let source = &compiled.plan.sources[0].body;
            assert!(
                source.contains(&("path".into(), Y::Str("/data/it's.jsonl".into()))),
                "{source:?}"
            );
        }
    }

    #[test]
    fn outputs_that_differ_fail_naming_both_writers_and_the_first_difference() {
        let dir = tempfile::tempdir().expect("tmp");
        let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
        std::fs::write(&a, "{\"x\":1,\"y\":2}\n{\"x\":3}\n").expect("write");
        std::fs::write(&b, "{\"y\":2,\"x\":1.0}\n{\"x\":3}\n").expect("write");
        let same = same_records("orders join", ("Sluice (YAML)", &a), ("Sluice (SQL)", &b));
        assert_eq!(same.expect("the same records"), 2);
        std::fs::write(&b, "{\"x\":1,\"y\":2}\n{\"x\":4}\n").expect("write");
        let e = same_records("orders join", ("Sluice (YAML)", &a), ("Sluice (SQL)", &b))
            .expect_err("a record differs");
        let text = format!("{e:#}");
        assert!(
            text.starts_with("orders join: Sluice (YAML) wrote 2 lines and Sluice (SQL) 2, and their records differ"),
            "{text}"
        );
        assert!(text.contains("Sluice (SQL): {\"x\":4}"), "{text}");
    }
}
