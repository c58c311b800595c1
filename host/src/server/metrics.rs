//! `GET /metrics`: the Prometheus text format (version 0.0.4), per tenant,
//! pipeline, and source, stage, sink or table.
//!
//! Read access: the operator's token sees every tenant's series; a tenant's
//! token (any scope) sees only its own, filtered before anything is
//! written, so another tenant's names never reach it. No token: 401.
//!
//! The series are collected at scrape time from the runs' live counters
//! (the same atomics the runner counts into), so they cost nothing per
//! event. The encoder is the few lines below rather than a crate: the
//! series come and go with pipelines, which `prometheus-client`'s
//! registry of metrics declared up front would need a custom collector
//! for, and the format's only subtle part is escaping label values.

use std::fmt::Write as _;

use super::store::now_ms;
use super::supervisor::{Snapshot, State};

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family: name, type and help text.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
}

const fn family(name: &'static str, kind: &'static str, help: &'static str) -> Family {
    Family { name, kind, help }
}

const C: &str = "counter";
const G: &str = "gauge";

/// Every family, in the order they are written.
const FAMILIES: &[Family] = &[
    family(
        "sluice_pipeline_up",
        G,
        "1 while the pipeline's run is live (running, paused or stopping), else 0.",
    ),
    family(
        "sluice_pipeline_paused",
        G,
        "1 while the pipeline is paused.",
    ),
    family(
        "sluice_pipeline_failed",
        G,
        "1 when the pipeline's last run failed or could not start.",
    ),
    family(
        "sluice_pipeline_runs_total",
        C,
        "Runs started since the server started (restarts included).",
    ),
    family(
        "sluice_pipeline_events_in_total",
        C,
        "Events read by the pipeline's sources in the current run.",
    ),
    family(
        "sluice_pipeline_events_out_total",
        C,
        "Events written by the pipeline's sinks in the current run.",
    ),
    family(
        "sluice_pipeline_dead_letters_total",
        C,
        "Events dead-lettered in the current run.",
    ),
    family(
        "sluice_pipeline_skipped_total",
        C,
        "Events skipped under on_error: skip in the current run.",
    ),
    family(
        "sluice_pipeline_plugin_restarts_total",
        C,
        "Plugin instances replaced after a failure in the current run.",
    ),
    family(
        "sluice_pipeline_checkpoints_total",
        C,
        "Checkpoints committed in the current run.",
    ),
    family(
        "sluice_pipeline_last_checkpoint_timestamp_seconds",
        G,
        "When the current run last committed a checkpoint (Unix time).",
    ),
    family(
        "sluice_pipeline_checkpoint_age_seconds",
        G,
        "Seconds since the current run last committed a checkpoint.",
    ),
    family("sluice_source_events_total", C, "Events read by a source."),
    family(
        "sluice_source_dead_letters_total",
        C,
        "Malformed inputs a source dead-lettered.",
    ),
    family(
        "sluice_source_progress_done",
        G,
        "Bounded sources: how much is read (records or bytes, as the source counts).",
    ),
    family(
        "sluice_source_progress_total",
        G,
        "Bounded sources: how much there is (same unit as progress_done).",
    ),
    family(
        "sluice_source_backlog",
        G,
        "Bounded sources: progress_total - progress_done.",
    ),
    family(
        "sluice_source_lag",
        G,
        "Unbounded sources: how far behind the upstream's end the source reads, in the unit the `unit` label names (messages: Kafka high watermarks less the next offsets; wal_bytes: PostgreSQL's WAL end less the change last received).",
    ),
    family(
        "sluice_stage_events_in_total",
        C,
        "Events a stage received.",
    ),
    family(
        "sluice_stage_events_out_total",
        C,
        "Events a stage emitted.",
    ),
    family(
        "sluice_stage_filtered_total",
        C,
        "Input events that produced no output and no error.",
    ),
    family(
        "sluice_stage_dead_letters_total",
        C,
        "Events a stage dead-lettered.",
    ),
    family(
        "sluice_stage_skipped_total",
        C,
        "Events a stage skipped under on_error: skip.",
    ),
    family(
        "sluice_stage_restarts_total",
        C,
        "Plugin instances of a stage replaced after a failure.",
    ),
    family(
        "sluice_stage_cpu_seconds_total",
        C,
        "CPU time of a stage's thread inside plugin calls.",
    ),
    family(
        "sluice_stage_memory_bytes",
        G,
        "A stage's plugin instance: bytes of its memories and tables after its last batch.",
    ),
    family("sluice_sink_events_in_total", C, "Events handed to a sink."),
    family(
        "sluice_sink_events_written_total",
        C,
        "Events a sink's target accepted.",
    ),
    family(
        "sluice_sink_dead_letters_total",
        C,
        "Events a sink's target refused, dead-lettered.",
    ),
    family(
        "sluice_table_events_in_total",
        C,
        "Events handed to a table.",
    ),
    family(
        "sluice_table_events_written_total",
        C,
        "Events applied to a table.",
    ),
];

/// Appends `v` escaped as a label value: `\`, `"` and line feed are the
/// three characters the format escapes; everything else is written as is
/// (the format is UTF-8).
fn escape_label(out: &mut String, v: &str) {
    for ch in v.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Samples grouped by family, written family by family.
struct Exposition {
    samples: Vec<String>,
}

impl Exposition {
    fn new() -> Self {
        Self {
            samples: vec![String::new(); FAMILIES.len()],
        }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let Some(i) = FAMILIES.iter().position(|f| f.name == name) else {
            debug_assert!(false, "unknown family {name}");
            return;
        };
        let out = &mut self.samples[i];
        out.push_str(name);
        if !labels.is_empty() {
            out.push('{');
            for (n, (k, v)) in labels.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(k);
                out.push_str("=\"");
                escape_label(out, v);
                out.push('"');
            }
            out.push('}');
        }
        let _ = writeln!(out, " {}", number(value));
    }

    fn finish(self) -> String {
        let mut text = String::new();
        for (f, samples) in FAMILIES.iter().zip(self.samples) {
            if samples.is_empty() {
                continue;
            }
            let _ = writeln!(text, "# HELP {} {}", f.name, f.help);
            let _ = writeln!(text, "# TYPE {} {}", f.name, f.kind);
            text.push_str(&samples);
        }
        text
    }
}

/// Integers as integers, other values with Rust's shortest round-trip form.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// Each tenant's CPU time and the time its threads waited for their fair
/// share (see [`crate::pipeline::fair`]), for the tenants the caller may see.
pub fn render_cpu(tenants: &[(String, crate::pipeline::fair::Usage)]) -> String {
    let mut text = String::new();
    for (name, help, pick) in [
        (
            "sluice_tenant_cpu_seconds_total",
            "CPU time of the tenant's pipeline threads since the server started.",
            (|u: &crate::pipeline::fair::Usage| u.used_ns) as fn(&_) -> u64,
        ),
        (
            "sluice_tenant_cpu_throttled_seconds_total",
            "Time the tenant's pipeline threads waited to stay within its CPU share.",
            |u| u.throttled_ns,
        ),
    ] {
        if tenants.is_empty() {
            break;
        }
        let _ = writeln!(text, "# HELP {name} {help}");
        let _ = writeln!(text, "# TYPE {name} counter");
        for (tenant, usage) in tenants {
            let mut labels = String::new();
            escape_label(&mut labels, tenant);
            let _ = writeln!(
                text,
                "{name}{{tenant=\"{labels}\"}} {}",
                number(pick(usage) as f64 / 1e9)
            );
        }
    }
    text
}

/// The exposition of `runs` (already filtered to what the caller may see).
pub fn render(runs: &[Snapshot]) -> String {
    let mut x = Exposition::new();
    let now = now_ms();
    for run in runs {
        let (tenant, pipeline) = run.key.split_once('/').unwrap_or(("", &run.key));
        let st = &run.status;
        let base = [("tenant", tenant), ("pipeline", pipeline)];
        let live = matches!(st.state, State::Running | State::Paused | State::Stopping);
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        x.sample("sluice_pipeline_up", &base, flag(live));
        x.sample(
            "sluice_pipeline_paused",
            &base,
            flag(st.state == State::Paused),
        );
        x.sample(
            "sluice_pipeline_failed",
            &base,
            flag(st.state == State::Failed),
        );
        x.sample("sluice_pipeline_runs_total", &base, st.runs as f64);
        for (name, v) in [
            ("sluice_pipeline_events_in_total", st.events_in),
            ("sluice_pipeline_events_out_total", st.events_out),
            ("sluice_pipeline_dead_letters_total", st.dead_letters),
            ("sluice_pipeline_skipped_total", st.skipped),
            ("sluice_pipeline_plugin_restarts_total", st.plugin_restarts),
            ("sluice_pipeline_checkpoints_total", st.checkpoints),
        ] {
            x.sample(name, &base, v as f64);
        }
        if let Some(at) = st.last_checkpoint_ms {
            x.sample(
                "sluice_pipeline_last_checkpoint_timestamp_seconds",
                &base,
                at as f64 / 1000.0,
            );
            x.sample(
                "sluice_pipeline_checkpoint_age_seconds",
                &base,
                now.saturating_sub(at) as f64 / 1000.0,
            );
        }
        for c in &st.components {
            let labels = [base[0], base[1], (c.role, c.name.as_str())];
            let counts: &[(&str, u64)] = match c.role {
                "source" => &[
                    ("sluice_source_events_total", c.events_out),
                    ("sluice_source_dead_letters_total", c.dead_letters),
                ],
                "stage" => &[
                    ("sluice_stage_events_in_total", c.events_in),
                    ("sluice_stage_events_out_total", c.events_out),
                    ("sluice_stage_filtered_total", c.filtered),
                    ("sluice_stage_dead_letters_total", c.dead_letters),
                    ("sluice_stage_skipped_total", c.skipped),
                    ("sluice_stage_restarts_total", c.restarts),
                    ("sluice_stage_memory_bytes", c.memory_bytes),
                ],
                "sink" => &[
                    ("sluice_sink_events_in_total", c.events_in),
                    ("sluice_sink_events_written_total", c.events_out),
                    ("sluice_sink_dead_letters_total", c.dead_letters),
                ],
                _ => &[
                    ("sluice_table_events_in_total", c.events_in),
                    ("sluice_table_events_written_total", c.events_out),
                ],
            };
            for (name, v) in counts {
                x.sample(name, &labels, *v as f64);
            }
            if c.role == "stage" {
                x.sample(
                    "sluice_stage_cpu_seconds_total",
                    &labels,
                    c.cpu_ms as f64 / 1000.0,
                );
            }
            if let Some((done, total)) = c.progress {
                x.sample("sluice_source_progress_done", &labels, done as f64);
                if total > 0 {
                    x.sample("sluice_source_progress_total", &labels, total as f64);
                    x.sample(
                        "sluice_source_backlog",
                        &labels,
                        total.saturating_sub(done) as f64,
                    );
                }
            }
            if let Some(lag) = c.lag {
                let labels = [labels[0], labels[1], labels[2], ("unit", lag.unit)];
                x.sample("sluice_source_lag", &labels, lag.value as f64);
            }
        }
    }
    x.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::supervisor::{Component, Status};

    fn stage(name: &str) -> Component {
        Component {
            role: "stage",
            name: name.into(),
            events_in: 10,
            events_out: 4,
            filtered: 6,
            dead_letters: 0,
            skipped: 0,
            restarts: 1,
            cpu_ms: 1500,
            memory_bytes: 1 << 20,
            progress: None,
            lag: None,
        }
    }

    /// Parses one sample line back: (name, labels, value), undoing the
    /// escapes, as a Prometheus parser would.
    fn parse(line: &str) -> (String, Vec<(String, String)>, String) {
        let (name, rest) = line.split_at(line.find(['{', ' ']).expect("name"));
        let mut labels = Vec::new();
        let mut chars = rest.chars().peekable();
        if chars.peek() == Some(&'{') {
            chars.next();
            loop {
                let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
                assert_eq!(chars.next(), Some('"'), "{line}");
                let mut value = String::new();
                loop {
                    match chars.next().expect("unterminated value") {
                        '\\' => match chars.next().expect("escape") {
                            'n' => value.push('\n'),
                            c @ ('\\' | '"') => value.push(c),
                            c => panic!("bad escape \\{c} in {line}"),
                        },
                        '"' => break,
                        '\n' => panic!("raw line feed in {line}"),
                        c => value.push(c),
                    }
                }
                labels.push((key, value));
                match chars.next() {
                    Some(',') => continue,
                    Some('}') => break,
                    other => panic!("{other:?} after a label in {line}"),
                }
            }
        }
        let value: String = chars.collect();
        (name.to_string(), labels, value.trim().to_string())
    }

    #[test]
    fn hostile_label_values_are_escaped_and_parse_back_exactly() {
        let hostile = "a\"b\\c\nd} x=\"1\" # é\u{0}";
        let mut status = Status::idle(State::Running);
        status.events_in = 42;
        status.last_checkpoint_ms = Some(now_ms().saturating_sub(2_000));
        status.components = vec![stage(hostile)];
        let text = render(&[Snapshot {
            key: format!("{hostile}/{hostile}"),
            status,
        }]);
        let samples: Vec<_> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(parse)
            .collect();
        // One line per sample: no value's line feed split one.
        assert!(
            samples.iter().all(|(n, ..)| n.starts_with("sluice_")),
            "{text}"
        );
        let events = samples
            .iter()
            .find(|(n, ..)| n == "sluice_pipeline_events_in_total")
            .expect(&text);
        // The tenant is the part before the first `/`; names cannot hold one.
        assert_eq!(
            events.1[0],
            ("tenant".into(), "a\"b\\c\nd} x=\"1\" # é\u{0}".into())
        );
        assert_eq!(events.2, "42");
        let cpu = samples
            .iter()
            .find(|(n, ..)| n == "sluice_stage_cpu_seconds_total")
            .expect(&text);
        assert_eq!(cpu.1[2], ("stage".into(), hostile.into()));
        assert_eq!(cpu.2, "1.5");
        let age = samples
            .iter()
            .find(|(n, ..)| n == "sluice_pipeline_checkpoint_age_seconds")
            .expect(&text);
        let age: f64 = age.2.parse().expect("a number");
        assert!((2.0..60.0).contains(&age), "{age}");
    }

    #[test]
    fn each_family_has_one_help_and_type_line_before_its_samples() {
        let runs: Vec<Snapshot> = ["t/a", "t/b"]
            .iter()
            .map(|k| {
                let mut status = Status::idle(State::Paused);
                status.components = vec![stage("s")];
                Snapshot {
                    key: k.to_string(),
                    status,
                }
            })
            .collect();
        let text = render(&runs);
        let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
        let mut names: Vec<&str> = types
            .iter()
            .map(|l| l.split(' ').nth(2).expect("name"))
            .collect();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "{text}");
        // Every sample follows its own family's TYPE line.
        let mut current = "";
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                current = rest.split(' ').next().expect("name");
            } else if !line.starts_with('#') {
                assert!(
                    line.starts_with(&format!("{current}{{")),
                    "{line} under {current}"
                );
            }
        }
        assert!(
            text.contains("sluice_pipeline_paused{tenant=\"t\",pipeline=\"b\"} 1\n"),
            "{text}"
        );
        assert!(text.ends_with('\n'));
        assert_eq!(render(&[]), "");
    }
}
