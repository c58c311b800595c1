//! The command line: `run`, `validate`, `sql`, `reset`, `connectors`, `plugin
//! build|inspect|test|list`, `bench`, `registry`, `serve`, and the remote commands
//! (`--server URL`: `deploy`, `ps`, `status`, `start`, `stop`, `pause`, `rm`, `plugin push`,
//! `files`).

mod bench_cmd;
mod build;
mod connection_cmd;
mod dlq_cmd;
mod files_cmd;
mod plugin_cmd;
mod progress;
mod registry_cmd;
mod remote_cmd;
mod reset_cmd;
mod run_cmd;
mod sample;
mod signals;
mod sql_cmd;
mod sql_shell;
mod strict;
mod tap_cmd;
mod top_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Parser, Subcommand, ValueEnum};

/// Streaming ETL with sandboxed WebAssembly transforms.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, long_about = None, after_help = "\
Examples:
  sluice validate examples/quickstart/pipeline.yaml
  sluice run examples/quickstart/pipeline.yaml
  sluice sql pipeline.sql --explain
  sluice plugin build plugins/filter
  sluice plugin test filter --input orders.jsonl --param \"where=currency != 'aud'\"
  sluice plugin list

Logs go to stderr; RUST_LOG overrides -v/-q (e.g. RUST_LOG=sluice=debug).
Colour: only on a terminal, never when NO_COLOR is set; --color overrides.")]
pub struct Cli {
    /// More log output (-v debug, -vv trace).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Colour in log output: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    /// A `sluice serve` to talk to (deploy, ps, status, start, stop, pause, rm,
    /// plugin push, tap ...); the token comes from SLUICE_TOKEN. An https://
    /// server with its own CA: SLUICE_SERVER_CA=ca.pem.
    #[arg(long, global = true, value_name = "URL", env = "SLUICE_SERVER")]
    server: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always, even into files and pipes.
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    /// Whether to write ANSI colours to stderr.
    fn enabled(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                // https://no-color.org: set and not empty means no colour.
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::IsTerminal::is_terminal(&std::io::stderr())
            }
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a pipeline until its bounded sources drain, or until Ctrl-C/SIGTERM.
    #[command(after_help = "\
Examples:
  sluice run examples/quickstart/pipeline.yaml
  sluice run --watch pipeline.yaml      # hot-reload plugins whose .wasm changes

  sluice run --reset pipeline.yaml      # forget the checkpoint, read everything again

A rerun resumes from the last checkpoint under the pipeline's data_dir. If a
source, sink or table was reconfigured since, it refuses (put the old config
back, or --reset); a new plugin build or changed params resume, with a warning.
On Ctrl-C, sources stop, in-flight events drain, a final checkpoint is taken,
and the exit code is 0. A second Ctrl-C exits at once. While it runs, it holds
DATA_DIR/NAME/run.lock: a second run of the pipeline, `sluice dlq replay` and
`purge` refuse meanwhile.

At exit, one line per source, stage and sink counts events in, out, filtered
out, dead-lettered and skipped. Without a terminal (or with -v) a `stats` line
of key=value counts is logged every --stats-every seconds.")]
    Run {
        /// The pipeline file.
        file: PathBuf,
        /// Reload a stage's plugin (at a batch boundary) or a `wasm` sink's
        /// connector (at a checkpoint boundary, opened at the position the old
        /// build flushed) when its file changes; a build that fails to load or
        /// open is refused and the old one keeps running.
        #[arg(long)]
        watch: bool,
        /// Extra directories to look for `plugin: NAME` in.
        #[arg(long = "plugin-path", value_name = "DIR")]
        plugin_path: Vec<PathBuf>,
        /// No progress bar.
        #[arg(long)]
        no_progress: bool,
        /// Seconds between `stats` log lines when stderr is not a terminal
        /// (or with -v); 0 turns them off.
        #[arg(long, value_name = "SECS", default_value_t = 10)]
        stats_every: u64,
        /// Delete the checkpoint and saved state first (says what it
        /// deletes), so every source is read from its beginning.
        #[arg(long)]
        reset: bool,
        /// The operator's host configuration (YAML/JSON): ceilings on stage
        /// `limits`, which ${VAR}s pipeline files may read, which directories
        /// plugins may load from. Overrides $SLUICE_HOST_CONFIG; without
        /// either, safe defaults apply (docs/security.md).
        #[arg(long = "host-config", value_name = "FILE")]
        host_config: Option<PathBuf>,
        /// Let `sluice tap` watch events leave sources and stages, on this
        /// loopback address (port 0 picks one; written to
        /// DATA_DIR/NAME/tap.addr). Costs nothing while nobody taps.
        #[arg(long, value_name = "ADDR")]
        tap: Option<String>,
        /// Dead-letter, instead of warning about, the mistakes that make
        /// `filter` and `project` silently wrong: an event missing a field
        /// the stage reads or selects, or on which a comparison meets a
        /// number and a string. The reason says which. Sets `strict: true`
        /// on every `filter` and `project` stage whose params do not set
        /// `strict` themselves.
        #[arg(long)]
        strict: bool,
    },
    /// Print a live sample of the events leaving a source or stage of a
    /// local run, or of a pipeline on a server.
    #[command(after_help = "\
Examples:
  sluice run --tap 127.0.0.1:0 pipeline.yaml &
  sluice tap pipeline.yaml young
  sluice tap pipeline.yaml people --filter \"country = 'br'\" --rate 5 --limit 20
  sluice --server http://127.0.0.1:7070 tap orders.enrich --limit 5

With --server (or SLUICE_SERVER) and a first argument that is not a file:
PIPELINE.STAGE (or PIPELINE STAGE) on that server, with the token in
SLUICE_TOKEN; the server caps --rate at its own `[tap] max_rate`.

One JSON line per event: component, stream, key, value, headers and
timestamp_ms. The run must have been started with --tap (it writes where it
listens to DATA_DIR/NAME/tap.addr). Read-only: tapping never slows or
changes the pipeline; past --rate events per second, and when this reader
falls behind, events are skipped (not queued). --filter takes an expression
of the `filter` plugin's language over the event's value.")]
    Tap {
        /// The pipeline file; with --server, PIPELINE[.STAGE].
        file: PathBuf,
        /// The source or stage whose output to show.
        component: Option<String>,
        /// Only events whose value makes this expression true.
        #[arg(long, value_name = "EXPR")]
        filter: Option<String>,
        /// At most this many events per second.
        #[arg(long, default_value_t = 10)]
        rate: u32,
        /// Stop after this many events (0: until interrupted).
        #[arg(long, default_value_t = 0)]
        limit: u64,
    },
    /// Forget a pipeline's progress: delete its checkpoint and saved state.
    #[command(after_help = "\
Examples:
  sluice reset pipeline.yaml            # lists what it deletes, then asks
  sluice reset --yes pipeline.yaml      # scripts: no question
  sluice reset --data-dir .sluice orders

Deletes, under the pipeline's state directory (DATA_DIR/NAME): checkpoint.json,
saved stage state (stages/), table snapshots (tables/) and the default
dead-letter file, each named with what it holds. Other files there are left.
Sinks' targets are not touched. The next run reads every source from its
beginning. `sluice run --reset FILE` does the same before running.")]
    Reset {
        /// The pipeline file, or a pipeline's name (with --data-dir).
        target: String,
        /// Where state lives when TARGET is a name.
        #[arg(long, value_name = "DIR", default_value = ".sluice")]
        data_dir: PathBuf,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// Run ksqlDB-style statements (connectors, streams, tables, joins, windows) as one pipeline.
    #[command(after_help = "\
Examples:
  sluice sql tests/fixtures/seed-logistics/ksql/youth.sql --explain > youth.yaml
  sluice validate youth.yaml
  PG_HOST=127.0.0.1 PG_PORT=5432 ... sluice sql logistics.sql

The file holds CREATE SOURCE CONNECTOR, CREATE STREAM/TABLE [AS SELECT] and
CREATE SINK CONNECTOR statements, as written for ksqlDB with Kafka Connect.
They compile to the pipeline file that --explain prints (the same built-in
plugins and tables a YAML pipeline uses), which then runs exactly as
`sluice run` runs it. Topics that only later statements read stay inside the
process; with --kafka BROKERS they are real Kafka topics (JSON, or Avro with
--schema-registry URL for value_format = 'AVRO'), written by
a `kafka` sink and read back by a `kafka` source in the consumer group
`sluice-<file name>`. ${VAR} and ${VAR:-default} in property values come from the
environment when the pipeline loads. A file with any error runs nothing;
each error gives line:column and, for a misspelt name, the closest known
one. docs/sql.md lists what is supported and how it differs from ksqlDB.

Without a file, `sluice sql` is an interactive shell, as the ksql CLI is:
CREATE statements build a session, checked as they are typed; SHOW STREAMS,
DESCRIBE x and PRINT 'topic' look at it; SELECT ... EMIT CHANGES [LIMIT n]
prints rows as they come, until the limit or Ctrl-C. Statements can also be
piped in: `sluice sql < session.sql`.")]
    Sql {
        /// The statement file. Without one, an interactive shell starts
        /// (SHOW, DESCRIBE, PRINT, push queries; HELP; lists them).
        file: Option<PathBuf>,
        /// Print the equivalent pipeline YAML and exit.
        #[arg(long)]
        explain: bool,
        /// Kafka brokers (`host:port[,host:port...]`, or `${VAR}`): the
        /// topics of CREATE STREAM ... AS SELECT become real topics, written
        /// by a `kafka` sink and read back by the statements that read them.
        #[arg(long, value_name = "BROKERS")]
        kafka: Option<String>,
        /// Schema Registry URL (or `${VAR}`) for the topics between
        /// statements whose value_format is AVRO (with --kafka; `sluice
        /// registry` runs one).
        #[arg(long, value_name = "URL", requires = "kafka")]
        schema_registry: Option<String>,
        /// Where checkpoints go (default: `.sluice` next to the file).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Extra directories to look for the built-in plugins in.
        #[arg(long = "plugin-path", value_name = "DIR")]
        plugin_path: Vec<PathBuf>,
        /// No progress bar.
        #[arg(long)]
        no_progress: bool,
        /// The operator's host configuration (YAML/JSON): ceilings on stage
        /// `limits`, which ${VAR}s pipeline files may read, which directories
        /// plugins may load from. Overrides $SLUICE_HOST_CONFIG; without
        /// either, safe defaults apply (docs/security.md).
        #[arg(long = "host-config", value_name = "FILE")]
        host_config: Option<PathBuf>,
        /// Shell only: the pipeline's name when the session is deployed to
        /// a server (--server).
        #[arg(long, value_name = "NAME", default_value = "sql-shell")]
        name: String,
    },
    /// List the connector types a pipeline file may name, with what each does.
    #[command(after_help = "\
Example:
  sluice connectors
Each type's options are in docs/connectors/sources/TYPE.md or sinks/TYPE.md.")]
    Connectors,
    /// Check a pipeline file and its plugins; report every problem with line and field.
    #[command(after_help = "\
Example:
  sluice validate pipeline.yaml
Checks: YAML syntax, known fields and types, inputs that exist, no cycles,
input files that exist, plugins that are components of the right world and
contract version, and plugin parameters (each plugin validates its own).
Every problem is reported in one pass as FILE:LINE:COL: FIELD: MESSAGE, with
\"did you mean\" for misspelled names. Exits 1 on any problem.

With --sample EVENTS (JSON lines, at most 16 MiB), the transform stages then run
over those events as if every source had produced them, in dependency order:
each stage's warnings (a field no event has, a number compared with a string),
its dead letters with their reasons, and its counts are printed, and the exit
status is 1 if any sample event became a dead letter. Add --strict to make the
warnings dead letters too:
  sluice validate pipeline.yaml --sample first-100.jsonl --strict
Processors (state, tables, timers) are not run on a sample.")]
    Validate {
        /// The pipeline file.
        file: PathBuf,
        /// Run the transform stages over these sample events (JSON lines).
        #[arg(long, value_name = "EVENTS")]
        sample: Option<PathBuf>,
        /// As `run --strict`: filter and project stages dead-letter the
        /// events their warnings are about.
        #[arg(long)]
        strict: bool,
        /// Extra directories to look for `plugin: NAME` in.
        #[arg(long = "plugin-path", value_name = "DIR")]
        plugin_path: Vec<PathBuf>,
        /// The operator's host configuration (YAML/JSON): ceilings on stage
        /// `limits`, which ${VAR}s pipeline files may read, which directories
        /// plugins may load from. Overrides $SLUICE_HOST_CONFIG; without
        /// either, safe defaults apply (docs/security.md).
        #[arg(long = "host-config", value_name = "FILE")]
        host_config: Option<PathBuf>,
    },
    /// Build, inspect and try plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Browse, replay and purge a pipeline's dead letters.
    #[command(subcommand)]
    Dlq(dlq_cmd::DlqCommand),
    /// Run `sluice-bench` (a separate binary): Sluice against hand-written Rust, and more.
    #[command(
        disable_help_flag = true,
        after_help = "\
Examples:
  sluice bench --events 1000000
  sluice bench --quick
  sluice bench --component my.wasm --input events.jsonl --events 200000
The benchmarks live in their own binary so that this one does not link the
plugin crates; `sluice bench ARGS` runs `sluice-bench ARGS` from the directory
of this executable. Build it with `cargo build --release -p sluice-bench`;
`sluice bench --help` lists its options."
    )]
    Bench {
        /// Arguments for `sluice-bench`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Host many tenants' pipelines behind an HTTP API (`/v1`, JSON).
    #[command(after_help = "\
Example:
  SLUICE_ADMIN_TOKEN=$(head -c 24 /dev/urandom | base64) sluice serve --config server.toml

server.toml:
  listen = \"127.0.0.1:7070\"
  data_dir = \"data\"                  # catalog, plugins, tenants' data
  admin_token_file = \"admin.token\"   # else $SLUICE_ADMIN_TOKEN
  [defaults]                         # per-tenant grants and quotas
  connectors = [\"datagen\", \"file\"]
  max_pipelines = 10
  max_plugin_bytes = 67108864
  max_request_bytes = 16777216
  [tenants.acme]                     # overrides for one tenant
  max_pipelines = 50

Prints `SLUICE_SERVER_URL=http://ADDR` on stdout once listening. Pipelines
that were running start again, resuming from their checkpoints. SIGINT or
SIGTERM stops every pipeline with a last checkpoint and exits. The API, the
security model and an operator checklist are in docs/server.md.")]
    Serve {
        /// The server's configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The operator's host configuration (YAML/JSON): ceilings on stage
        /// `limits`, which ${VAR}s pipeline files may read, which directories
        /// plugins may load from. Overrides $SLUICE_HOST_CONFIG; without
        /// either, safe defaults apply (docs/security.md).
        #[arg(long = "host-config", value_name = "FILE")]
        host_config: Option<PathBuf>,
    },
    /// Server: create or update a pipeline from a file (needs --server).
    #[command(after_help = "\
Example:
  SLUICE_TOKEN=sluice_... sluice --server http://127.0.0.1:7070 deploy pipeline.yaml
The pipeline is named by the file's `name:` (else the file name). A new one
starts. On a running one, a file that changes only stages' `plugin:` builds
swaps them in place at each stage's next batch (no restart); the same file
again changes nothing; any other change restarts it on the new file from its
checkpoint. The last line says which. Problems are reported like
`sluice validate` and nothing changes on the server.")]
    Deploy {
        /// The pipeline file.
        file: PathBuf,
    },
    /// Server: list the tenant's pipelines with their state and figures (needs --server).
    #[command(after_help = "Example:\n  sluice --server http://127.0.0.1:7070 ps")]
    Ps,
    /// Server: a live table of the tenant's pipelines and their sources, stages and sinks (needs --server).
    #[command(after_help = "\
Example:
  SLUICE_TOKEN=sluice_... sluice --server http://127.0.0.1:7070 top
Per pipeline: state, events/s in and out, dead letters/s, checkpoint age and
plugin restarts. Under it, per source: events/s read and its lag (Kafka:
messages; postgres-cdc: bytes of WAL) or, for bounded sources, what is left;
per stage: events/s in and out, dead letters/s, plugin CPU (% of one core),
instance memory and restarts; per sink: events/s handed and written.
Rates are the difference between two readings, so the first table comes one
--interval after the start. In a terminal the table is redrawn in place (q,
Esc or Ctrl-C quits); into a pipe or file a table is printed per interval, as
`top -b` does; --once prints one and exits.")]
    Top {
        /// Seconds between readings.
        #[arg(long, value_name = "SECS", default_value_t = 2.0)]
        interval: f64,
        /// Print one table (after two readings, --interval apart) and exit.
        #[arg(long)]
        once: bool,
    },
    /// Server: a pipeline's own log lines: the host's about its run and its plugins' (needs --server).
    #[command(after_help = "\
Examples:
  sluice --server http://127.0.0.1:7070 logs orders
  sluice --server http://127.0.0.1:7070 logs orders --follow
The server keeps each pipeline's newest 2,000 lines since it started (each cut
at 2 KiB); when older lines were pushed out, a line says how many. Control
characters a plugin logs are shown escaped, never sent to your terminal.")]
    Logs {
        /// The pipeline.
        name: String,
        /// Print only lines after this line number (as `--follow` prints them).
        #[arg(long, value_name = "N", default_value_t = 0)]
        since: u64,
        /// Keep printing new lines until Ctrl-C.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Server: a pipeline's dead letters up to its last checkpoint (needs --server).
    #[command(after_help = "\
Examples:
  sluice --server http://127.0.0.1:7070 dead-letters orders
  sluice --server http://127.0.0.1:7070 dead-letters orders --stage price --limit 100
  sluice --server http://127.0.0.1:7070 dead-letters orders --filter \"value.total > 100\" --json
Prints one line per letter: ID, kind, stage, reason and the value, cut to fit
a line and with control characters escaped; --json prints each letter as the
API gives it, one per line. The selection is `sluice dlq ls`'s, applied on the
server. Replaying stays `sluice dlq replay` on the server's files for now.")]
    DeadLetters {
        /// The pipeline.
        name: String,
        #[command(flatten)]
        select: dlq_cmd::SelectArgs,
        /// Most letters to print (0: all).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// One JSON object per letter, per line.
        #[arg(long)]
        json: bool,
    },
    /// Server: one pipeline's status as JSON (needs --server).
    #[command(after_help = "Example:\n  sluice --server http://127.0.0.1:7070 status orders")]
    Status {
        /// The pipeline.
        name: String,
    },
    /// Server: start a pipeline; it resumes from its checkpoint (needs --server).
    #[command(after_help = "Example:\n  sluice --server http://127.0.0.1:7070 start orders")]
    Start {
        /// The pipeline.
        name: String,
    },
    /// Server: pause a running pipeline: its sources read nothing until `start` (needs --server).
    #[command(
        after_help = "Example:\n  sluice --server http://127.0.0.1:7070 pause orders\nCheckpoints go on and the run keeps its state in memory; a paused pipeline\nstays paused across server restarts. `sluice start orders` resumes it."
    )]
    Pause {
        /// The pipeline.
        name: String,
    },
    /// Server: stop a pipeline after a last checkpoint; it stays stopped across restarts (needs --server).
    #[command(after_help = "Example:\n  sluice --server http://127.0.0.1:7070 stop orders")]
    Stop {
        /// The pipeline.
        name: String,
    },
    /// Server: stop and delete a pipeline and its checkpoints (needs --server).
    #[command(
        after_help = "Example:\n  sluice --server http://127.0.0.1:7070 rm orders\nOutput files in the tenant's file area are kept."
    )]
    Rm {
        /// The pipeline.
        name: String,
    },
    /// Server: the tenant's named connections (hosts, credentials, TLS files) (needs --server).
    #[command(subcommand)]
    Connection(connection_cmd::ConnectionCommand),
    /// Server: the tenant's file area: inputs of `file` sources, outputs of `file` sinks (needs --server).
    #[command(subcommand)]
    Files(files_cmd::FilesCommand),
    /// Serve an embedded Confluent-compatible Schema Registry (Avro) for Kafka pipelines.
    #[command(after_help = "\
Example:
  sluice registry --listen 127.0.0.1:18081 --data ./registry
Prints `SLUICE_SCHEMA_REGISTRY_URL=http://ADDR` on stdout once listening (port 0
picks a free port). Serves /subjects, /subjects/{s}/versions[/{v}], /subjects/{s}
(lookup), /schemas/ids/{id}, /config[/{s}] (BACKWARD, FORWARD, FULL, NONE and
their _TRANSITIVE forms) and /compatibility/subjects/{s}/versions/{v}. State is
one JSON file in --data, replaced atomically on every change.

Exposure: request bodies over --max-body-bytes get 413. With a token (from
--auth-token-file or SLUICE_REGISTRY_TOKEN) every request must carry it, as
`Authorization: Bearer TOKEN` or as the basic-auth password (clients can put it
in the URL: http://sluice:TOKEN@host:port), else 401; --public-reads lets GETs
through without it. Without a token only a loopback --listen address is
accepted.")]
    Registry {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: String,
        /// Directory for the registry's state.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Request threads.
        #[arg(long, default_value_t = 4)]
        threads: usize,
        /// Largest request body accepted, in bytes.
        #[arg(long, value_name = "BYTES", default_value_t = crate::format::registry::server::DEFAULT_MAX_BODY_BYTES)]
        max_body_bytes: u64,
        /// File holding the token clients must present (its first line).
        #[arg(long, value_name = "FILE")]
        auth_token_file: Option<PathBuf>,
        /// With a token: allow GET requests without it.
        #[arg(long)]
        public_reads: bool,
    },
}

/// The registries as a table: role, type, summary.
fn connectors_table() -> String {
    let rows = crate::sources::REGISTRY
        .iter()
        .map(|k| ("source", k.name, k.summary))
        .chain(
            crate::sinks::REGISTRY
                .iter()
                .map(|k| ("sink", k.name, k.summary)),
        );
    let mut out = String::new();
    for (role, name, summary) in rows {
        out.push_str(&format!("{role:<7} {name:<14} {summary}\n"));
    }
    out
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Start a new plugin project (a transform, or a custom source or sink connector, with a README and a test).
    #[command(after_help = "\
Examples:
  sluice plugin new --lang rust my-transform
  sluice plugin new --lang python my-transform
  sluice plugin new --kind source --lang rust my-api     # a custom source connector
  sluice plugin new --kind sink --lang rust my-webhook   # a custom sink connector
  sluice plugin new --kind sink --lang python my-hook    # the same in Python
  sluice plugin new --kind source --lang go my-api       # or in Go
  sluice plugin new --kind source --lang c my-api        # or in C
  sluice plugin new --kind udf --lang rust my_fn         # a user-defined function (also python)
Languages: rust, python, js, ts, c, go (connectors: all of them; udfs: rust, python). Then: sluice plugin build my-transform
A connector runs as `type: wasm` in a pipeline; docs/connectors.md is the guide.
A UDF is registered under `udfs:` (or CREATE FUNCTION); docs/plugins.md is the guide.")]
    New {
        /// rust | python | js | ts | c | go
        #[arg(long, default_value = "rust")]
        lang: String,
        /// transform | source | sink | udf
        #[arg(long, default_value = "transform")]
        kind: String,
        /// Project name (also its directory).
        name: String,
    },
    /// Build a plugin (Rust, Python, JS/TS, C, Go) into a component; prints its path last.
    #[command(after_help = "\
Example:
  sluice plugin build plugins/filter
  # ... build output on stderr ...
  # /path/to/target/wasm32-wasip2/release/sluice_plugin_filter.wasm")]
    Build {
        /// The plugin's directory (its language is detected).
        dir: PathBuf,
        /// Build without optimizations (faster build, slower plugin).
        #[arg(long)]
        debug: bool,
    },
    /// Show a component's world, contract version, exports, imports and size.
    #[command(after_help = "\
Examples:
  sluice plugin inspect project               # a built-in, by name
  sluice plugin inspect ./my-transform.wasm")]
    Inspect {
        /// A .wasm file, or a plugin's name as a pipeline's `plugin:` gives it.
        wasm: PathBuf,
    },
    /// List the plugins a pipeline can name (built-ins and the plugin path) and the compile cache.
    #[command(after_help = "\
Example:
  sluice plugin list
Each plugin shows the name and version it claims, its kind and the start of
its sha256 (what the host knows). Each compiled artifact in the cache shows
the hash of the component it was compiled from and the plugin with that hash.
Plugins not yet compiled are compiled (and cached) to read their version.")]
    List {
        /// Extra directories to look for plugins in.
        #[arg(long = "plugin-path", value_name = "DIR")]
        plugin_path: Vec<PathBuf>,
    },
    /// Upload a component to a server (needs --server); pipelines there name it in `plugin:`.
    #[command(after_help = "\
Example:
  SLUICE_TOKEN=sluice_... sluice --server http://127.0.0.1:7070 plugin push filter.wasm --name my-filter
Prints NAME sha256:HEX. A name keeps its bytes: push changed code under a new
name (pipelines may also say `plugin: sha256:HEX`).")]
    Push {
        /// The component.
        wasm: PathBuf,
        /// The name pipelines use (default: the file name without .wasm).
        #[arg(long)]
        name: Option<String>,
    },
    /// Run a plugin over a JSON-lines file: outputs on stdout, dead letters on stderr.
    #[command(after_help = "\
Examples:
  sluice plugin test filter --input orders.jsonl --param \"where=currency != 'aud'\"
  sluice plugin test ./my-transform.wasm --input orders.jsonl")]
    Test {
        /// A .wasm file, or a plugin's name as a pipeline's `plugin:` gives it.
        wasm: PathBuf,
        /// JSON lines to feed it.
        #[arg(long)]
        input: PathBuf,
        /// A parameter, `name=value` (repeatable).
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// Events per call.
        #[arg(long, default_value_t = 1024)]
        batch_size: usize,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    crate::malloc_tuning::tune();
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet, cli.color.enabled());
    let server = || {
        cli.server.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "this command talks to a server: give --server URL (or set SLUICE_SERVER)"
            )
        })
    };
    // The operator's host configuration, read once before anything loads:
    // a bad one stops the command here, naming the file and the field.
    let host_config = match &cli.command {
        Command::Run { host_config, .. }
        | Command::Validate { host_config, .. }
        | Command::Sql { host_config, .. }
        | Command::Serve { host_config, .. } => Some(host_config.as_deref()),
        _ => None,
    };
    if let Some(flag) = host_config {
        match crate::config::HostConfig::resolve(flag) {
            Ok(c) => c.install(),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let result = match cli.command {
        Command::Deploy { file } => server().and_then(|u| remote_cmd::deploy(&u, &file)),
        Command::Ps => server().and_then(|u| remote_cmd::ps(&u)),
        Command::Top { interval, once } => server().and_then(|u| {
            if !(interval.is_finite() && interval > 0.0 && interval <= 3600.0) {
                anyhow::bail!(
                    "--interval {interval}: expected seconds between 0 and 3600, e.g. 2 or 0.5"
                );
            }
            top_cmd::top(
                &u,
                &top_cmd::TopArgs {
                    interval: std::time::Duration::from_secs_f64(interval),
                    once,
                },
            )
        }),
        Command::Status { name } => server().and_then(|u| remote_cmd::status(&u, &name)),
        Command::Logs {
            name,
            since,
            follow,
        } => server().and_then(|u| remote_cmd::logs(&u, &name, since, follow)),
        Command::DeadLetters {
            name,
            select,
            limit,
            json,
        } => server().and_then(|u| remote_cmd::dead_letters(&u, &name, &select, limit, json)),
        Command::Start { name } => server().and_then(|u| remote_cmd::act(&u, &name, "start")),
        Command::Stop { name } => server().and_then(|u| remote_cmd::act(&u, &name, "stop")),
        Command::Pause { name } => server().and_then(|u| remote_cmd::act(&u, &name, "pause")),
        Command::Rm { name } => server().and_then(|u| remote_cmd::rm(&u, &name)),
        Command::Connection(c) => server().and_then(|u| connection_cmd::run(&u, c)),
        Command::Files(c) => server().and_then(|u| files_cmd::run(&u, c)),
        Command::Plugin(PluginCommand::Push { wasm, name }) => {
            server().and_then(|u| remote_cmd::push(&u, &wasm, name.as_deref()))
        }
        Command::Run {
            file,
            watch,
            plugin_path,
            no_progress,
            stats_every,
            reset,
            host_config: _,
            tap,
            strict,
        } => run_cmd::run(
            &file,
            plugin_path,
            run_cmd::RunArgs {
                watch,
                progress: !no_progress && !cli.quiet,
                stats_every,
                verbose: cli.verbose > 0,
                reset,
                tap,
                strict,
            },
        ),
        Command::Reset {
            target,
            data_dir,
            yes,
        } => reset_cmd::run(&target, &data_dir, yes),
        Command::Validate {
            file,
            plugin_path,
            sample,
            strict,
            ..
        } => run_cmd::validate(&file, plugin_path, sample.as_deref(), strict),
        Command::Sql {
            file: None,
            explain,
            kafka,
            data_dir,
            plugin_path,
            host_config,
            name,
            ..
        } => {
            if explain {
                eprintln!(
                    "error: --explain needs a statement file (`sluice sql FILE.sql --explain`)"
                );
                return ExitCode::FAILURE;
            }
            if kafka.is_some() {
                eprintln!(
                    "error: --kafka needs a statement file (`sluice sql FILE.sql --kafka BROKERS`); the shell keeps topics in the process"
                );
                return ExitCode::FAILURE;
            }
            sql_shell::run(sql_shell::ShellArgs {
                data_dir,
                plugin_path,
                host_config,
                server: cli.server.clone(),
                name,
            })
        }
        Command::Sql {
            file: Some(file),
            explain,
            kafka,
            schema_registry,
            data_dir,
            plugin_path,
            no_progress,
            ..
        } => sql_cmd::run(sql_cmd::SqlArgs {
            file,
            explain,
            kafka,
            schema_registry,
            data_dir,
            plugin_path,
            progress: !no_progress && !cli.quiet,
        }),
        Command::Plugin(PluginCommand::Build { dir, debug }) => plugin_cmd::build(&dir, !debug),
        Command::Plugin(PluginCommand::New { lang, kind, name }) => {
            plugin_cmd::new(&lang, &kind, &name)
        }
        Command::Plugin(PluginCommand::Inspect { wasm }) => plugin_cmd::inspect(&wasm),
        Command::Plugin(PluginCommand::List { plugin_path }) => plugin_cmd::list(&plugin_path),
        Command::Plugin(PluginCommand::Test {
            wasm,
            input,
            params,
            batch_size,
        }) => plugin_cmd::test(&wasm, &input, &params, batch_size),
        Command::Bench { args } => bench_cmd::run(&args),
        Command::Dlq(command) => dlq_cmd::run(command),
        Command::Tap {
            file,
            component,
            filter,
            rate,
            limit,
        } => {
            let remote = cli.server.clone().filter(|_| !file.is_file());
            let args = tap_cmd::TapArgs {
                component: component.as_deref().unwrap_or(""),
                filter: filter.as_deref(),
                rate,
                limit,
            };
            match remote {
                Some(url) => {
                    let target = file.to_string_lossy();
                    remote_cmd::tap(&url, &target, component.is_some(), &args)
                }
                None if component.is_none() => Err(anyhow::anyhow!(
                    "name the source or stage to tap: sluice tap FILE COMPONENT"
                )),
                None => tap_cmd::run(&file, args),
            }
        }
        Command::Serve { config, .. } => crate::server::serve(&config),
        Command::Connectors => {
            print!("{}", connectors_table());
            Ok(ExitCode::SUCCESS)
        }
        Command::Registry {
            listen,
            data,
            threads,
            max_body_bytes,
            auth_token_file,
            public_reads,
        } => registry_cmd::run(
            &listen,
            &data,
            threads,
            registry_cmd::Exposure {
                max_body_bytes,
                auth_token_file,
                public_reads,
            },
        ),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8, quiet: bool, ansi: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{level},cranelift=warn,wasmtime=warn"))
    });
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(progress::LogWriter)
                .with_ansi(ansi)
                .with_target(false),
        )
        // Files each `sluice serve` pipeline's lines under it (`logs NAME`);
        // lines outside a served run cost one span lookup.
        .with(crate::server::logs::CaptureLayer)
        .try_init();
}
