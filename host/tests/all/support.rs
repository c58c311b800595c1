//! Shared helpers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn sluice() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sluice"));
    c.env("SLUICE_CACHE_DIR", target_dir().join("test-cache"));
    c.env("NO_COLOR", "1");
    c
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// A built component; fails loudly (never skips) when it was not built.
pub fn component(dir: &str, name: &str) -> PathBuf {
    let p = target_dir().join(dir).join(format!("{name}.wasm"));
    assert!(
        p.is_file(),
        "{} is missing: run scripts/build-plugins.sh --test-guests first",
        p.display()
    );
    p
}

pub fn plugin(name: &str) -> PathBuf {
    component("plugins", name)
}

pub fn guest(name: &str) -> PathBuf {
    component("test-guests", name)
}

/// What a service script printed on `start` (`VAR=value`), read from the environment.
/// A service-backed test never skips: without its service it fails, and the message
/// names the script that starts the service. `script` is the file name under
/// `scripts/services/` without `.sh`.
pub fn service(var: &str, script: &str) -> String {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => value,
        _ => panic!(
            "{var} is not set: start the service with scripts/services/{script}.sh start and export what it prints, \
             e.g. `export \"$(scripts/services/{script}.sh start)\"` (scripts/test.sh does)"
        ),
    }
}

/// The Python interpreter of a service's venv (it has that service's reference client
/// libraries): `override_var` when set, else the path the script's `start` wrote to
/// `$SLUICE_SERVICES_DIR/<script>.python`. Fails, never skips, when neither is there.
pub fn service_python(script: &str, override_var: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(override_var) {
        return PathBuf::from(p);
    }
    let dir =
        std::env::var("SLUICE_SERVICES_DIR").unwrap_or_else(|_| "/tmp/sluice-services".into());
    let file = Path::new(&dir).join(format!("{script}.python"));
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}): start the service with scripts/services/{script}.sh start, or set {override_var}",
            file.display()
        )
    });
    PathBuf::from(text.trim())
}

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(rel)
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("sluice runs");
    assert!(
        out.status.success(),
        "sluice failed: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    lines(path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
        .collect()
}

/// Writes `n` events `{"n": i, "pad": "..."}` as JSON lines.
pub fn numbered_events(path: &Path, n: usize) {
    use std::io::Write;
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).expect("create input"));
    for i in 0..n {
        writeln!(
            w,
            r#"{{"n":{i},"pad":"the quick brown fox jumps over the lazy dog"}}"#
        )
        .expect("write");
    }
}

/// A path as a YAML double-quoted scalar.
pub fn q(p: &Path) -> String {
    serde_json::Value::from(p.display().to_string()).to_string()
}

/// Writes a pipeline file `p.yaml` into `dir`.
pub fn write_pipeline(dir: &Path, body: &str) -> PathBuf {
    let p = dir.join("p.yaml");
    std::fs::write(&p, body).expect("write pipeline");
    p
}

/// Runs `cmd`, which must fail, and returns its stderr.
pub fn run_failing(cmd: &mut Command) -> String {
    let out = cmd.output().expect("sluice runs");
    assert!(
        !out.status.success(),
        "expected a failure:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Polls `fact` until it gives a value or `within` passes; the panic names what
/// was awaited. Tests wait on facts (a log line, a file, a count), never on a
/// sleep that hopes the pipeline got somewhere.
pub fn wait_for<T>(
    what: &str,
    within: std::time::Duration,
    mut fact: impl FnMut() -> Option<T>,
) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = fact() {
            return v;
        }
        assert!(
            start.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A child's stderr, read by a thread as it comes: the child never blocks on a
/// full pipe, and a test can wait for a line while the child runs.
pub struct Stderr {
    text: std::sync::Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Stderr {
    /// Takes `child`'s piped stderr (spawn it with `.stderr(Stdio::piped())`).
    pub fn drain(child: &mut std::process::Child) -> Stderr {
        use std::io::BufRead;
        let pipe = child
            .stderr
            .take()
            .expect("spawn the child with .stderr(Stdio::piped())");
        let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = text.clone();
        let reader = std::thread::spawn(move || {
            let mut pipe = std::io::BufReader::new(pipe);
            let mut line = Vec::new();
            // Bytes, not `lines()`: a non-UTF-8 byte must not end the draining.
            while matches!(pipe.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                if let Ok(mut t) = sink.lock() {
                    t.push_str(&String::from_utf8_lossy(&line));
                }
                line.clear();
            }
        });
        Stderr {
            text,
            reader: Some(reader),
        }
    }

    /// What the child wrote so far.
    pub fn text(&self) -> String {
        self.text.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Waits until a line containing `needle` was written; returns that line.
    pub fn wait_for_line(&self, needle: &str, within: std::time::Duration) -> String {
        let start = std::time::Instant::now();
        loop {
            let text = self.text();
            if let Some(l) = text.lines().find(|l| l.contains(needle)) {
                return l.to_string();
            }
            assert!(
                start.elapsed() < within,
                "no line with {needle:?} on stderr after {within:?}:\n{text}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Everything, once the child has exited: waits (bounded) for the reader
    /// to reach the end of the pipe, for callers that cannot give up `self`.
    pub fn text_at_exit(&self) -> String {
        let start = std::time::Instant::now();
        while self.reader.as_ref().is_some_and(|r| !r.is_finished())
            && start.elapsed() < std::time::Duration::from_secs(10)
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        self.text()
    }

    /// Everything, once the child has exited (the pipe is then at its end).
    pub fn finish(mut self) -> String {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.text()
    }
}

/// A port the OS has just handed out and released: a private server started on
/// it does not collide with another run of the suite.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}
