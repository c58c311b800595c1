//! Deterministic fault injection: named points in the checkpoint protocol
//! that the `SLUICE_FAILPOINTS` environment variable can arm, so a test
//! can kill the process (or fail a step) exactly there instead of hoping a
//! `kill -9` lands at the right moment.
//!
//! `SLUICE_FAILPOINTS=name=action[@n][;name=action[@n]...]`, where action is
//! `exit` (the process ends at once, as `kill -9` would: no destructor, no
//! buffered write, no further flush) or `error` (the step fails with an
//! error naming the point), and `@n` fires on the n-th time the point is
//! reached (default 1; a point fires once). The points are listed in
//! [`POINTS`] and in `docs/reliability.md`.
//!
//! Always compiled in: when the variable is unset a point costs one relaxed
//! atomic load. Points sit on per-checkpoint steps only, never per event.
//! Hand-written rather than the `fail` crate: that crate's points compile to
//! nothing unless a cargo feature is on (so release binaries could not be
//! tested as shipped), and with it on each point takes a lock and a map
//! lookup; this needs neither, nor its `rand`/`log` dependencies.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

/// The environment variable that arms failpoints.
pub const ENV: &str = "SLUICE_FAILPOINTS";

/// The exit status of a process ended by an `exit` failpoint, so a test can
/// tell it from any other failure.
pub const EXIT_STATUS: i32 = 86;

/// Every point, in protocol order (`SLUICE_FAILPOINTS` naming another is
/// refused, so a typo cannot make a test pass vacuously).
pub const POINTS: &[&str] = &[
    "sink.flush.before",
    "sink.flush.after",
    "dead_letter.write",
    "stage.state.rename.before",
    "table.snapshot.rename.before",
    "checkpoint.rename.before",
    "checkpoint.rename.after",
    "source.commit.before",
    "source.commit.after",
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Action {
    Exit,
    Error,
}

struct Armed {
    name: String,
    action: Action,
    at: u64,
    hits: AtomicU64,
}

static ARMED: AtomicBool = AtomicBool::new(false);
static TABLE: OnceLock<Vec<Armed>> = OnceLock::new();

/// Reads `SLUICE_FAILPOINTS` once per process (later calls do nothing).
/// An unknown point or action is an error, so a misspelt test fails.
pub fn init() -> anyhow::Result<()> {
    if TABLE.get().is_some() {
        return Ok(());
    }
    let spec = std::env::var(ENV).unwrap_or_default();
    let table = parse(&spec)?;
    let armed = !table.is_empty();
    if armed {
        let names: Vec<&str> = table.iter().map(|a| a.name.as_str()).collect();
        tracing::warn!(points = ?names, "failpoints armed ({ENV})");
    }
    if TABLE.set(table).is_ok() && armed {
        ARMED.store(true, Ordering::Release);
    }
    Ok(())
}

fn parse(spec: &str) -> anyhow::Result<Vec<Armed>> {
    let mut table = Vec::new();
    for item in spec.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, rest) = item
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("{ENV}: `{item}` is not name=action"))?;
        let name = name.trim();
        if !POINTS.contains(&name) {
            anyhow::bail!(
                "{ENV}: unknown failpoint `{name}`; points: {}",
                POINTS.join(", ")
            );
        }
        let (action, at) = match rest.split_once('@') {
            Some((a, n)) => (a.trim(), n.trim().parse::<u64>().ok().filter(|n| *n > 0)),
            None => (rest.trim(), Some(1)),
        };
        let at =
            at.ok_or_else(|| anyhow::anyhow!("{ENV}: `{item}`: @n must be a positive count"))?;
        let action = match action {
            "exit" => Action::Exit,
            "error" => Action::Error,
            other => anyhow::bail!("{ENV}: unknown action `{other}`; actions: exit, error"),
        };
        table.push(Armed {
            name: name.to_string(),
            action,
            at,
            hits: AtomicU64::new(0),
        });
    }
    Ok(table)
}

/// Passes point `name`: returns an error, or ends the process, when it is
/// armed and due; otherwise does nothing.
#[inline]
pub fn hit(name: &'static str) -> anyhow::Result<()> {
    if !ARMED.load(Ordering::Relaxed) {
        return Ok(());
    }
    fire(name)
}

#[cold]
fn fire(name: &'static str) -> anyhow::Result<()> {
    let Some(armed) = TABLE.get().and_then(|t| t.iter().find(|a| a.name == name)) else {
        return Ok(());
    };
    if armed.hits.fetch_add(1, Ordering::SeqCst) + 1 != armed.at {
        return Ok(());
    }
    match armed.action {
        Action::Exit => {
            eprintln!("failpoint `{name}` fired: exiting");
            // SAFETY: `_exit` ends the process without running anything
            // else, which is the point: no destructor or flush may run.
            unsafe { libc::_exit(EXIT_STATUS) }
        }
        Action::Error => Err(anyhow::anyhow!("failpoint `{name}` fired")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_points_actions_and_counts_and_refuses_typos() {
        let t = parse("sink.flush.before=exit; checkpoint.rename.after=error@3").expect("parse");
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].action, t[0].at), (Action::Exit, 1));
        assert_eq!((t[1].action, t[1].at), (Action::Error, 3));
        assert!(parse("").expect("empty").is_empty());
        for bad in [
            "sink.flush=exit",
            "sink.flush.before=panic",
            "sink.flush.before",
            "sink.flush.before=exit@0",
        ] {
            let err = format!("{:#}", parse(bad).err().expect(bad));
            assert!(err.contains(ENV), "{err}");
        }
    }

    #[test]
    fn an_unarmed_point_does_nothing() {
        // No test in this binary arms points.
        assert!(hit("sink.flush.before").is_ok());
    }
}
