//! Runs a measured command as a child process and reads its own resource
//! usage from `wait4`: the CPU time of exactly that process and all its
//! threads, nothing of this one (generating data, comparing outputs).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// What one run of a child cost.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// User CPU time, all threads.
    pub user: Duration,
    /// System CPU time, all threads.
    pub sys: Duration,
    /// Wall-clock time from spawn to exit.
    pub wall: Duration,
    /// Peak resident set, KiB.
    pub max_rss_kib: u64,
}

impl Usage {
    /// User plus system time.
    pub fn cpu(&self) -> Duration {
        self.user + self.sys
    }

    /// CPU microseconds per event for `events` events.
    pub fn us_per_event(&self, events: u64) -> f64 {
        self.cpu().as_secs_f64() * 1e6 / events.max(1) as f64
    }
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
}

/// Runs `cmd` to completion with stdout and stderr in `log`; fails, showing
/// the log's tail, unless it exits with status 0.
pub fn run(cmd: &mut Command, log: &Path) -> Result<Usage> {
    let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;
    let started = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    let pid = libc::pid_t::try_from(child.id()).context("child pid out of range")?;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `usage` are live, writable and of the types
        // wait4 expects; `pid` is our own child, not yet reaped (`child` is
        // never waited on through std).
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).context("waiting for a measured run");
        }
    }
    let wall = started.elapsed();
    drop(child);
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "{cmd:?} failed (wait status {status}); its output ({}) ends with:\n{}",
            log.display(),
            tail.join("\n")
        );
    }
    Ok(Usage {
        user: timeval(usage.ru_utime),
        sys: timeval(usage.ru_stime),
        wall,
        max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
    })
}

/// The `sluice` to measure: `explicit`, else the one beside this executable.
pub fn sluice_exe(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        anyhow::ensure!(p.is_file(), "--sluice {}: no such file", p.display());
        return Ok(p.to_path_buf());
    }
    let me = std::env::current_exe().context("locating sluice-bench")?;
    let exe = me
        .parent()
        .context("sluice-bench has no parent directory")?
        .join(format!("sluice{}", std::env::consts::EXE_SUFFIX));
    anyhow::ensure!(
        exe.is_file(),
        "`{}` does not exist: build it with the same profile as sluice-bench (`cargo build --release -p sluice -p sluice-bench`), or pass --sluice PATH",
        exe.display()
    );
    Ok(exe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_childs_own_cpu_and_reports_failure_with_its_output() {
        let dir = tempfile::tempdir().expect("tmp");
        let log = dir.path().join("log");
        // A busy loop of about 0.2 s of CPU in the child, none in this process.
        let u = run(
            Command::new("sh").args([
                "-c",
                "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo done",
            ]),
            &log,
        )
        .expect("runs");
        assert!(u.cpu() > Duration::from_millis(20), "{u:?}");
        assert!(u.cpu() <= u.wall + Duration::from_millis(50), "{u:?}");
        assert_eq!(std::fs::read_to_string(&log).expect("log"), "done\n");
        let e = run(
            Command::new("sh").args(["-c", "echo broken >&2; exit 3"]),
            &log,
        )
        .expect_err("fails");
        assert!(format!("{e:#}").contains("broken"), "{e:#}");
    }
}
