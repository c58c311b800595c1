//! `sluice --server URL top`: a live table of the tenant's pipelines and each
//! of their sources, stages and sinks, read from the server's status every
//! few seconds. Rates are the difference between two readings, so the first
//! table comes one interval after the start.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::Value;

use super::remote_cmd::Remote;

/// How `top` runs.
pub struct TopArgs {
    /// Time between readings.
    pub interval: Duration,
    /// Print one table (after two readings) and exit.
    pub once: bool,
}

/// One reading of `GET /v1/pipelines`.
struct Reading {
    at: Instant,
    /// Unix milliseconds when it was taken, for checkpoint ages.
    wall_ms: u64,
    pipelines: Vec<Value>,
}

impl Reading {
    fn take(remote: &Remote) -> Result<Self> {
        let v = remote.ok("GET", "/v1/pipelines", None)?;
        Ok(Self {
            at: Instant::now(),
            wall_ms: now_ms(),
            pipelines: v["pipelines"].as_array().cloned().unwrap_or_default(),
        })
    }
}

/// Runs `top`: in a terminal the table is redrawn in place until `q`, Esc
/// or Ctrl-C; otherwise (a pipe, a file) a table is printed per interval,
/// like `top -b`; with `once`, one table.
pub fn top(url: &str, args: &TopArgs) -> Result<ExitCode> {
    let remote = Remote::new(url)?;
    let interval = args.interval.max(Duration::from_millis(200));
    let mut prev = Reading::take(&remote)?;
    let term = console::Term::stdout();
    let live = !args.once && term.is_term();
    let quit = Arc::new(AtomicBool::new(false));
    if live {
        watch_keys(quit.clone());
        let _ = term.hide_cursor();
    }
    let result = (|| -> Result<()> {
        loop {
            wait(interval, &quit);
            if quit.load(Ordering::SeqCst) {
                return Ok(());
            }
            let cur = Reading::take(&remote)?;
            let table = render(&prev, &cur);
            if live {
                let _ = term.clear_screen();
                let (_, width) = term.size();
                let head = format!(
                    "sluice top — {url} — every {:.1}s — q to quit",
                    interval.as_secs_f64()
                );
                println!("{}", clip(&head, usize::from(width)));
                for line in table.lines() {
                    println!("{}", clip(line, usize::from(width)));
                }
            } else {
                println!("{table}");
            }
            if args.once {
                return Ok(());
            }
            prev = cur;
        }
    })();
    if live {
        let _ = term.show_cursor();
    }
    result.map(|()| ExitCode::SUCCESS)
}

/// Sleeps `d` in short steps, returning early once `quit` is set.
fn wait(d: Duration, quit: &AtomicBool) {
    let until = Instant::now() + d;
    while !quit.load(Ordering::SeqCst) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Sets `quit` on `q`, Esc or Ctrl-C (the terminal is raw while a key is
/// read, so Ctrl-C arrives as a key rather than a signal).
fn watch_keys(quit: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let term = console::Term::stdout();
        while let Ok(key) = term.read_key() {
            if matches!(
                key,
                console::Key::Char('q') | console::Key::Escape | console::Key::Char('\u{3}')
            ) {
                quit.store(true, Ordering::SeqCst);
                return;
            }
        }
    });
}

fn clip(line: &str, width: usize) -> String {
    if width == 0 {
        return line.to_string();
    }
    line.chars().take(width).collect()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

const HEADER: &str = "PIPELINE / COMPONENT        STATE        IN/s     OUT/s  DEAD/s  LAG/BACKLOG      CHECKPOINT  CPU%        MEM  RESTARTS";

/// The table for two readings: a line per pipeline, then one per source,
/// stage, sink and table under it.
fn render(prev: &Reading, cur: &Reading) -> String {
    let secs = cur.at.duration_since(prev.at).as_secs_f64().max(1e-3);
    let mut out = String::from(HEADER);
    out.push('\n');
    if cur.pipelines.is_empty() {
        out.push_str("(no pipelines)\n");
    }
    for p in &cur.pipelines {
        let name = p["name"].as_str().unwrap_or_default();
        let before = prev.pipelines.iter().find(|q| q["name"] == p["name"]);
        let st = &p["status"];
        let old = before.map(|b| &b["status"]);
        // A new run restarts the counters: no rate across it.
        let same_run = old.is_some_and(|o| o["runs"] == st["runs"]);
        let rate = |now: &Value, then: Option<&Value>| -> String {
            match (now.as_u64(), then.and_then(Value::as_u64)) {
                (Some(n), Some(t)) if same_run && n >= t => format!("{:.0}", (n - t) as f64 / secs),
                _ => "-".to_string(),
            }
        };
        let age = st["last_checkpoint_ms"]
            .as_u64()
            .map(|t| format!("{:.1}s ago", cur.wall_ms.saturating_sub(t) as f64 / 1000.0))
            .unwrap_or_else(|| "-".into());
        let state = st["state"].as_str().unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<27} {:<9} {:>7} {:>9} {:>7}  {:<15} {:>11}  {:>4} {:>10} {:>9}",
            clip(name, 27),
            state,
            rate(&st["events_in"], old.map(|o| &o["events_in"])),
            rate(&st["events_out"], old.map(|o| &o["events_out"])),
            rate(&st["dead_letters"], old.map(|o| &o["dead_letters"])),
            "",
            age,
            "",
            "",
            st["plugin_restarts"].as_u64().unwrap_or(0),
        );
        for c in st["components"].as_array().into_iter().flatten() {
            let role = c["role"].as_str().unwrap_or_default();
            let cname = c["name"].as_str().unwrap_or_default();
            let was = old.and_then(|o| {
                o["components"]
                    .as_array()?
                    .iter()
                    .find(|x| x["role"] == c["role"] && x["name"] == c["name"])
            });
            let field = |k: &str| was.map(|w| &w[k]);
            let (r_in, r_out) = if role == "source" {
                // A source's `in` is what it read.
                let read = rate(&c["events_out"], field("events_out"));
                (read.clone(), read)
            } else {
                (
                    rate(&c["events_in"], field("events_in")),
                    rate(&c["events_out"], field("events_out")),
                )
            };
            let behind = if let Some(lag) = c["lag"].as_object() {
                let n = lag.get("value").and_then(Value::as_u64).unwrap_or(0);
                match lag.get("unit").and_then(Value::as_str) {
                    Some("wal_bytes") => format!("{} WAL", indicatif::HumanBytes(n)),
                    _ => format!("{n} msgs"),
                }
            } else {
                match c["progress"].as_array().map(Vec::as_slice) {
                    Some([done, total]) if total.as_u64() > Some(0) => format!(
                        "{} left",
                        total
                            .as_u64()
                            .unwrap_or(0)
                            .saturating_sub(done.as_u64().unwrap_or(0))
                    ),
                    _ => String::new(),
                }
            };
            let (cpu, mem, restarts) = if role == "stage" {
                let cpu = match (
                    c["cpu_ms"].as_u64(),
                    field("cpu_ms").and_then(Value::as_u64),
                ) {
                    (Some(n), Some(t)) if same_run && n >= t => {
                        format!("{:.0}", (n - t) as f64 / 10.0 / secs)
                    }
                    _ => "-".into(),
                };
                let mem = c["memory_bytes"]
                    .as_u64()
                    .filter(|&m| m > 0)
                    .map(|m| indicatif::HumanBytes(m).to_string())
                    .unwrap_or_else(|| "-".into());
                (cpu, mem, c["restarts"].as_u64().unwrap_or(0).to_string())
            } else {
                (String::new(), String::new(), String::new())
            };
            let _ = writeln!(
                out,
                "  {:<6} {:<18} {:<9} {:>7} {:>9} {:>7}  {:<15} {:>11}  {:>4} {:>10} {:>9}",
                role,
                clip(cname, 18),
                "",
                r_in,
                r_out,
                rate(&c["dead_letters"], field("dead_letters")),
                behind,
                "",
                cpu,
                mem,
                restarts,
            );
        }
    }
    // Empty trailing columns leave spaces that a pipe would keep.
    out.lines().map(|l| format!("{}\n", l.trim_end())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reading(at: Instant, wall_ms: u64, status: Value) -> Reading {
        Reading {
            at,
            wall_ms,
            pipelines: vec![json!({"name": "orders", "status": status})],
        }
    }

    fn status(read: u64, cpu_ms: u64, runs: u64) -> Value {
        json!({
            "state": "running", "runs": runs, "events_in": read, "events_out": read / 2,
            "dead_letters": 0, "plugin_restarts": 1, "last_checkpoint_ms": 9_000,
            "components": [
                {"role": "source", "name": "orders", "events_out": read, "dead_letters": 0,
                 "lag": {"value": 340, "unit": "messages"}},
                {"role": "stage", "name": "no-aud", "events_in": read, "events_out": read / 2,
                 "dead_letters": 0, "cpu_ms": cpu_ms, "memory_bytes": 2_097_152, "restarts": 1},
                {"role": "sink", "name": "out", "events_in": read / 2, "events_out": read / 2,
                 "dead_letters": 0}
            ]
        })
    }

    #[test]
    fn rates_cpu_share_lag_and_checkpoint_age_come_from_two_readings() {
        let t0 = Instant::now();
        let prev = reading(t0, 8_000, status(1_000, 100, 1));
        let cur = reading(t0 + Duration::from_secs(2), 10_000, status(5_000, 600, 1));
        let table = render(&prev, &cur);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], HEADER);
        let words = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        // 4000 events in 2 s; 2000 out; checkpoint 1 s before the reading.
        assert_eq!(
            words(lines[1]),
            ["orders", "running", "2000", "1000", "0", "1.0s", "ago", "1"]
        );
        assert_eq!(
            words(lines[2]),
            ["source", "orders", "2000", "2000", "0", "340", "msgs"]
        );
        // 500 ms of plugin CPU in 2 s: 25 % of a core.
        assert_eq!(
            words(lines[3]),
            ["stage", "no-aud", "2000", "1000", "0", "25", "2.00", "MiB", "1"]
        );
        assert_eq!(words(lines[4]), ["sink", "out", "1000", "1000", "0"]);
    }

    #[test]
    fn no_rate_across_a_restarted_run_or_for_a_new_pipeline() {
        let t0 = Instant::now();
        let prev = reading(t0, 0, status(9_000, 100, 1));
        let cur = reading(t0 + Duration::from_secs(1), 1_000, status(10, 1, 2));
        let table = render(&prev, &cur);
        assert!(
            table.lines().nth(1).is_some_and(|l| l.contains(" - ")),
            "{table}"
        );
        let empty = Reading {
            at: t0,
            wall_ms: 0,
            pipelines: Vec::new(),
        };
        let table = render(&empty, &cur);
        let second: Vec<&str> = table
            .lines()
            .nth(1)
            .unwrap_or("")
            .split_whitespace()
            .collect();
        assert_eq!(
            &second[..5],
            ["orders", "running", "-", "-", "-"],
            "{table}"
        );
        assert!(render(&empty, &empty).contains("(no pipelines)"));
    }
}
