//! `sluice-bench`: the figures in `docs/performance.md`.
//!
//! Its own binary so that the `sluice` engine does not link the plugin crates
//! and the hand-written reference it is measured against (`sluice bench ARGS`
//! runs this binary from beside `sluice`).
//!
//! - Default: Sluice (`sluice run`, default sandbox limits) against a
//!   hand-written native Rust reference ([`reference`]) on generated events
//!   of several shapes ([`shapes`]), CPU time per event of each run's whole
//!   process, plus the boundary's cost ([`versus`]).
//! - `--component`: one component's size, compile, load and events/s.
//! - `--joins`: the join processors, Wasm against the same crates native.
//! - `--postgres`, `--kafka`: the CDC source and Kafka → Kafka against real
//!   servers.
//! - `--webhook`: the `webhook-sink` connector (Wasm) against its native twin
//!   in the host, POSTing to one local endpoint.
//! - `--swap`: how long a stage pauses when its plugin is hot-swapped.
//! - `reference`: the native reference alone, as the default mode runs it.
//! - `scan`: the host's JSON scanner against serde_json on a JSON-lines file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

mod component;
mod convert;
mod joins;
mod json;
mod kafka;
mod measure;
mod postgres_cdc;
mod reference;
mod scan;
mod shapes;
mod swap;
mod versus;
mod webhook;

/// Sluice's benchmarks.
#[derive(Debug, Parser)]
#[command(
    name = "sluice-bench",
    version,
    about,
    args_conflicts_with_subcommands = true,
    after_help = "\
Examples:
  sluice-bench                       # 1,000,000 orders: Sluice vs hand-written Rust, every shape
  sluice-bench --quick               # the same on a few thousand events (CI: prints, never asserts)
  sluice-bench --component my.wasm --input events.jsonl --events 200000
  sluice-bench --joins --events 1000000
  sluice-bench --postgres \"$SLUICE_PG_URL\" --events 1000000
  sluice-bench --kafka \"$SLUICE_KAFKA_BROKERS\" --events 1000000
  sluice-bench --webhook --events 200000 --batch-size 500 --runs 3
  sluice-bench --swap --swaps 50
The default mode runs `sluice run` (the `sluice` beside this binary, or --sluice)
and the native reference (`sluice-bench reference`) as child processes and
reports each one's CPU time (user + system) per input event."
)]
struct Args {
    /// Events to generate (the `orders` shape; with --component, --joins,
    /// --postgres and --kafka, the events those push through).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Events for the other shapes (wide, nested, unicode); default: --events / 5.
    #[arg(long, value_name = "N")]
    shape_events: Option<u64>,
    /// A run for CI: 20,000 orders, 5,000 of each other shape, one run each.
    /// It prints figures; with so few events, start-up weighs on them.
    #[arg(long, conflicts_with_all = ["events", "shape_events"])]
    quick: bool,
    /// Runs of each measurement; the lowest CPU time counts.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    runs: u32,
    /// Only these shapes (repeatable): orders, wide, nested, unicode.
    #[arg(long = "shape", value_name = "SHAPE")]
    shapes: Vec<shapes::Shape>,
    /// Events per batch: for --component and --joins (one Wasm call each),
    /// and `batch_size` of the measured pipelines (default: the pipeline default).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Extra directories to look for the built-in plugins in.
    #[arg(long = "plugin-path", value_name = "DIR")]
    plugin_path: Vec<PathBuf>,
    /// The `sluice` executable to measure (default: the one beside this binary).
    #[arg(long, value_name = "PATH")]
    sluice: Option<PathBuf>,
    /// Where to write the generated events and outputs (default: a temporary directory);
    /// with it, the generated input files stay there for profiling single runs.
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Measure one component instead: size, cold compile, cached load,
    /// instantiation and events/s over `--input` (repeated up to `--events`).
    #[arg(long, value_name = "WASM")]
    component: Option<PathBuf>,
    /// A parameter for `--component`, `NAME=VALUE` (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE", requires = "component")]
    params: Vec<String>,
    /// JSON lines for `--component` (default: generated orders).
    #[arg(long, value_name = "FILE", requires = "component")]
    input: Option<PathBuf>,
    /// Benchmark the `postgres-cdc` source instead, against the PostgreSQL
    /// server at this superuser URL (`wal_level=logical`): `--events` rows
    /// through CDC → file, rows/s and commit-to-sink latency p50/p99. A
    /// scratch database and slot are created and dropped.
    #[arg(long, value_name = "URL", conflicts_with = "component")]
    postgres: Option<String>,
    /// Benchmark the join processors instead: `lookup-join` (`--events`
    /// orders against a 100,000-row table) and `window-join` (`--events` x
    /// `--events`), Wasm against the same crates compiled natively, and the
    /// state bytes per buffered event.
    #[arg(long, conflicts_with_all = ["component", "postgres", "kafka"])]
    joins: bool,
    /// Benchmark Kafka → filter → project → Kafka (Wasm plugins) against the
    /// broker(s) at `host:port`: `--events` events, events/s and end-to-end
    /// latency p50/p99. Topics with random names are created (and left).
    #[arg(long, value_name = "BROKERS", conflicts_with_all = ["component", "postgres"])]
    kafka: Option<String>,
    /// Benchmark a Wasm HTTP sink instead: the `webhook-sink` example
    /// connector against the same sink written natively in the host, both
    /// POSTing `--events` events in batches of `--batch-size` to one local
    /// endpoint, alternating `--runs` times; events/s of each and the ratio.
    #[arg(long, conflicts_with_all = ["component", "postgres", "kafka", "joins"])]
    webhook: bool,
    /// The `webhook-sink` component for `--webhook` (default: found in
    /// --plugin-path, then in `test-guests/` of the target directory, where
    /// `scripts/build-plugins.sh --test-guests` puts it).
    #[arg(long, value_name = "WASM", requires = "webhook")]
    webhook_wasm: Option<PathBuf>,
    /// Benchmark hot swaps instead: `sluice run --watch` under a steady
    /// load, a transform's and a processor's plugin file replaced `--swaps`
    /// times each; how long each stage paused per swap (target ≤ 5 ms).
    #[arg(long, conflicts_with_all = ["component", "postgres", "kafka", "joins", "webhook"])]
    swap: bool,
    /// Swaps of each stage for `--swap`.
    #[arg(long, default_value_t = 20, requires = "swap", value_parser = clap::value_parser!(u32).range(1..=1000))]
    swaps: u32,
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Run the hand-written native reference for one shape and job: JSON
    /// lines in, JSON lines out (what the default mode measures).
    Reference {
        /// orders | wide | nested | unicode
        #[arg(long)]
        shape: shapes::Shape,
        /// transform | join
        #[arg(long)]
        job: shapes::Job,
        /// The events, one JSON object a line.
        #[arg(long)]
        input: PathBuf,
        /// The customers table (JSON lines), for `join`.
        #[arg(long, required_if_eq("job", "join"))]
        table: Option<PathBuf>,
        /// Where to write the output lines.
        #[arg(long)]
        output: PathBuf,
    },
    /// Time the JSON scanner the host runs on each event read by a stage
    /// that reads field tables, against serde_json's check, on the lines
    /// of a file (e.g. one `--work-dir` kept).
    Scan {
        /// JSON lines.
        file: PathBuf,
        /// Passes over the lines; the fastest counts.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Only this scan (for counting instructions under valgrind).
        #[arg(long, value_enum)]
        only: Option<scan::Only>,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    if let Some(Sub::Reference {
        shape,
        job,
        input,
        table,
        output,
    }) = &args.command
    {
        reference::run(*shape, *job, input, table.as_deref(), output)?;
        return Ok(());
    }
    if let Some(Sub::Scan { file, runs, only }) = &args.command {
        return scan::run(file, *runs, *only);
    }
    let batch_size = args.batch_size.unwrap_or(1024);
    if let Some(wasm) = &args.component {
        let params = sluice::config::parse_params(&args.params).map_err(anyhow::Error::msg)?;
        return component::run(
            wasm,
            &params,
            args.input.as_deref(),
            args.events,
            batch_size,
        );
    }
    if args.webhook {
        let wasm = webhook::find_wasm(args.webhook_wasm.as_deref(), &args.plugin_path)?;
        return webhook::run(&wasm, args.events as usize, batch_size, args.runs);
    }
    if args.swap {
        let base = std::env::current_dir()?;
        let find = |name: &str| {
            sluice::config::resolve_plugin(name, &base, &args.plugin_path)
                .map_err(anyhow::Error::msg)
        };
        return swap::run(
            &measure::sluice_exe(args.sluice.as_deref())?,
            &find("filter")?,
            &find("window-aggregate")?,
            args.swaps as usize,
        );
    }
    if args.joins {
        return joins::run(args.events as usize, batch_size, &args.plugin_path);
    }
    if let Some(url) = &args.postgres {
        return postgres_cdc::run(
            &measure::sluice_exe(args.sluice.as_deref())?,
            url,
            args.events,
        );
    }
    if let Some(brokers) = &args.kafka {
        let plugins = versus::Plugins::find(&args.plugin_path)?;
        return kafka::run(
            &measure::sluice_exe(args.sluice.as_deref())?,
            brokers,
            args.events,
            &plugins.filter,
            &plugins.project,
        );
    }
    let (events, shape_events, runs) = if args.quick {
        (20_000, 5_000, 1)
    } else {
        (
            args.events,
            args.shape_events.unwrap_or(args.events / 5),
            args.runs,
        )
    };
    versus::run(&versus::Options {
        events,
        shape_events,
        runs,
        shapes: if args.shapes.is_empty() {
            shapes::Shape::ALL.to_vec()
        } else {
            args.shapes.clone()
        },
        batch_size: args.batch_size,
        sluice: measure::sluice_exe(args.sluice.as_deref())?,
        plugins: versus::Plugins::find(&args.plugin_path)?,
        work_dir: args.work_dir.clone(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
    })
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    #[test]
    fn the_command_line_is_consistent() {
        super::Args::command().debug_assert();
        let quick = super::Args::try_parse_from(["sluice-bench", "--quick", "--events", "5"]);
        assert!(quick.is_err(), "--quick sets the sizes itself");
    }
}
