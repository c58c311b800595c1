//! `sluice serve` end to end: a real server process, real HTTP, real
//! pipelines; killed with SIGKILL and restarted.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{plugin, sluice};

/// (method, path, token, body, expected status).
type Attempt<'a> = (&'a str, String, &'a str, Option<Vec<u8>>, u16);

const ADMIN: &str = "operator-secret-0123456789";

struct Server {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl Server {
    /// Starts `sluice serve` on `dir/server.toml` and waits for its URL line.
    fn start(dir: &Path) -> Server {
        Self::start_with(dir, &[], &[])
    }

    /// [`Server::start`] with more arguments and environment for `sluice serve`.
    fn start_with(dir: &Path, args: &[&std::ffi::OsStr], envs: &[(&str, &str)]) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .expect("log file");
        let mut child = sluice()
            .args(["serve", "--config"])
            .arg(dir.join("server.toml"))
            .args(args)
            .envs(envs.iter().copied())
            .env("SLUICE_ADMIN_TOKEN", ADMIN)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("sluice serve starts");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read URL line");
        let url = line
            .trim()
            .strip_prefix("SLUICE_SERVER_URL=")
            .unwrap_or_else(|| panic!("no URL line, got {line:?}; log:\n{}", Self::log_of(dir)))
            .to_string();
        Server {
            child,
            url,
            dir: dir.to_path_buf(),
        }
    }

    fn log_of(dir: &Path) -> String {
        std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
    }

    fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(ok.success());
        let status = self.child.wait().expect("exits");
        assert!(
            status.success(),
            "serve exited with {status:?}; log:\n{}",
            Self::log_of(&self.dir)
        );
    }

    /// (status, JSON body) of a request; every body is kept for the echo check.
    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (u16, Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .new_agent();
        let url = format!("{}{path}", self.url);
        let auth = token.map(|t| format!("Bearer {t}"));
        let resp = match (method, body) {
            ("GET", _) => {
                let mut r = agent.get(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            ("DELETE", _) => {
                let mut r = agent.delete(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            (m, body) => {
                let mut r = if m == "PUT" {
                    agent.put(&url)
                } else {
                    agent.post(&url)
                };
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                match body {
                    Some(b) => r.send(&b[..]),
                    None => r.send_empty(),
                }
            }
        };
        let mut resp = resp.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().expect("body");
        let value = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }));
        (status, value)
    }

    fn ok(&self, method: &str, path: &str, token: Option<&str>, body: Option<Vec<u8>>) -> Value {
        let (status, v) = self.call(method, path, token, body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    /// Polls a pipeline's status until `done` holds (or fails after 60 s).
    fn wait_for(
        &self,
        token: &str,
        name: &str,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = self.ok(
                "GET",
                &format!("/v1/pipelines/{name}/status"),
                Some(token),
                None,
            );
            if done(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: never {what}; last status {v}\nlog:\n{}",
                Self::log_of(&self.dir)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(dir: &Path, extra: &str) {
    std::fs::write(
        dir.join("server.toml"),
        format!("listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\n{extra}"),
    )
    .expect("server.toml");
}

fn tenant(s: &Server, name: &str, scope: &str) -> String {
    s.ok(
        "POST",
        "/v1/tenants",
        Some(ADMIN),
        Some(json!({ "name": name }).to_string().into_bytes()),
    );
    token(s, name, scope, ADMIN)
}

fn token(s: &Server, tenant: &str, scope: &str, by: &str) -> String {
    let v = s.ok(
        "POST",
        &format!("/v1/tenants/{tenant}/tokens"),
        Some(by),
        Some(json!({ "scope": scope }).to_string().into_bytes()),
    );
    v["token"].as_str().expect("token").to_string()
}

fn wasm(name: &str) -> Vec<u8> {
    std::fs::read(plugin(name)).expect("plugin bytes")
}

fn customers(name: &str, count: u64, rate: u64, plugin: &str) -> Vec<u8> {
    format!(
        "name: {name}\ncheckpoint_interval_ms: 200\nsources:\n  gen: {{type: datagen, kind: customers, count: {count}, rate: {rate}}}\nstages:\n  copy: {{plugin: {plugin}, inputs: [gen]}}\nsinks:\n  out: {{type: file, path: {name}.jsonl, inputs: [copy]}}\n"
    )
    .into_bytes()
}

fn ids(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l}: {e}"));
            v["id"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .unwrap_or_else(|| panic!("no id in {l}"))
        })
        .collect()
}

#[test]
fn a_deployed_pipeline_survives_kill_9_and_resumes_with_nothing_lost_or_doubled() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), "");
    let s = Server::start(dir.path());
    let t = tenant(&s, "acme", "deploy");
    let up = s.ok(
        "POST",
        "/v1/plugins?name=pass",
        Some(&t),
        Some(wasm("passthrough")),
    );
    assert_eq!(up["world"], "transform");
    assert_eq!(up["sha256"].as_str().map(str::len), Some(64));

    let created = s.ok(
        "POST",
        "/v1/pipelines",
        Some(&t),
        Some(customers("gen", 3000, 400, "pass")),
    );
    assert_eq!(created["desired"], "running");
    // Killed mid-run, after at least one checkpoint.
    s.wait_for(&t, "gen", "checkpointed with output", |v| {
        v["last_checkpoint"].as_u64().is_some() && v["status"]["events_out"].as_u64() > Some(400)
    });
    s.kill9();

    let s = Server::start(dir.path());
    let v = s.wait_for(&t, "gen", "finished", |v| {
        v["status"]["state"] == "finished"
    });
    assert_eq!(v["desired"], "running");
    let out = ids(&dir.path().join("data/tenants/acme/files/gen.jsonl"));
    let mut sorted = out.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        out.len(),
        3000,
        "every event exactly once (duplicates or losses)"
    );
    assert_eq!(sorted, (0..3000).collect::<Vec<u64>>());

    // Stop survives a restart; start resumes; delete frees the plugin.
    s.ok(
        "POST",
        "/v1/pipelines",
        Some(&t),
        Some(customers("slow", 1_000_000, 200, "pass")),
    );
    s.wait_for(&t, "slow", "checkpointed", |v| {
        v["last_checkpoint"].as_u64().is_some()
    });
    let stopped = s.ok("POST", "/v1/pipelines/slow/stop", Some(&t), None);
    assert_eq!(stopped["status"]["state"], "stopped", "{stopped}");
    assert_eq!(stopped["desired"], "stopped");
    let before = ids(&dir.path().join("data/tenants/acme/files/slow.jsonl")).len();
    s.terminate();

    let s = Server::start(dir.path());
    let v = s.ok("GET", "/v1/pipelines/slow", Some(&t), None);
    assert_eq!(
        v["status"]["state"], "stopped",
        "a stopped pipeline stays stopped: {v}"
    );
    s.ok("POST", "/v1/pipelines/slow/start", Some(&t), None);
    s.wait_for(&t, "slow", "running on", |v| {
        v["status"]["events_out"].as_u64() > Some(50)
    });
    let (code, busy) = s.call("DELETE", "/v1/plugins/pass", Some(&t), None);
    assert_eq!(code, 409, "a plugin in use is not deleted: {busy}");
    s.ok("DELETE", "/v1/pipelines/slow", Some(&t), None);
    s.ok("DELETE", "/v1/pipelines/gen", Some(&t), None);
    let after = ids(&dir.path().join("data/tenants/acme/files/slow.jsonl"));
    assert!(after.len() > before);
    let mut sorted = after.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (0..after.len() as u64).collect::<Vec<u64>>(),
        "stop/start lost or doubled events"
    );
    s.ok("DELETE", "/v1/plugins/pass", Some(&t), None);
    let (code, _) = s.call("GET", "/v1/pipelines/slow", Some(&t), None);
    assert_eq!(code, 404);
    s.terminate();
}

#[test]
fn tenants_are_isolated_quotas_hold_and_tokens_are_never_echoed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pass = wasm("passthrough");
    // Tenant b: one pipeline, room for exactly one plugin, small requests.
    write_config(
        dir.path(),
        &format!(
            "[tenants.b]\nmax_pipelines = 1\nmax_plugin_bytes = {}\nmax_request_bytes = 1048576\n",
            pass.len()
        ),
    );
    let s = Server::start(dir.path());
    let mut secrets = vec![];
    let a = tenant(&s, "a", "admin");
    let b = tenant(&s, "b", "admin");
    let a_deploy = token(&s, "a", "deploy", &a);
    let b_read = token(&s, "b", "read", &b);
    let b_deploy = token(&s, "b", "deploy", &b);
    secrets.extend([
        a.clone(),
        b.clone(),
        a_deploy.clone(),
        b_read.clone(),
        b_deploy.clone(),
    ]);
    let (a, b, b_read, b_deploy) = (a.as_str(), b.as_str(), b_read.as_str(), b_deploy.as_str());

    let up = s.ok(
        "POST",
        "/v1/plugins?name=a-plugin",
        Some(&a_deploy),
        Some(pass.clone()),
    );
    let sha = up["sha256"].as_str().expect("sha").to_string();
    s.ok(
        "POST",
        "/v1/pipelines",
        Some(&a_deploy),
        Some(customers("a-pipe", 1_000_000, 100, "a-plugin")),
    );
    let a_tokens = s.ok("GET", "/v1/tenants/a/tokens", Some(a), None);
    let a_token_id = a_tokens["tokens"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();

    let tenant_body = || Some(json!({"name": "c"}).to_string().into_bytes());
    let token_body = || Some(json!({"scope": "admin"}).to_string().into_bytes());
    let yaml = || Some(customers("x", 10, 10, "passthrough"));
    let attempts: Vec<Attempt> = vec![
        ("GET", "/v1/pipelines/a-pipe".into(), b, None, 404),
        ("GET", "/v1/pipelines/a-pipe?spec=true".into(), b, None, 404),
        ("GET", "/v1/pipelines/a-pipe/status".into(), b, None, 404),
        ("POST", "/v1/pipelines/a-pipe/stop".into(), b, None, 404),
        ("POST", "/v1/pipelines/a-pipe/start".into(), b, None, 404),
        ("DELETE", "/v1/pipelines/a-pipe".into(), b, None, 404),
        ("GET", "/v1/plugins/a-plugin".into(), b, None, 404),
        ("GET", format!("/v1/plugins/sha256:{sha}"), b, None, 404),
        ("DELETE", "/v1/plugins/a-plugin".into(), b, None, 404),
        ("DELETE", format!("/v1/plugins/sha256:{sha}"), b, None, 404),
        (
            "POST",
            "/v1/pipelines/a-pipe/stop".into(),
            b_deploy,
            None,
            404,
        ),
        ("DELETE", "/v1/pipelines/a-pipe".into(), b_deploy, None, 404),
        ("DELETE", "/v1/plugins/a-plugin".into(), b_deploy, None, 404),
        ("GET", "/v1/pipelines/a-pipe".into(), b_read, None, 404),
        ("GET", "/v1/tenants".into(), b, None, 403),
        ("POST", "/v1/tenants".into(), b, tenant_body(), 403),
        ("GET", "/v1/tenants/a".into(), b, None, 403),
        ("DELETE", "/v1/tenants/a".into(), b, None, 403),
        ("GET", "/v1/tenants/a/tokens".into(), b, None, 404),
        ("POST", "/v1/tenants/a/tokens".into(), b, token_body(), 404),
        (
            "DELETE",
            format!("/v1/tenants/a/tokens/{a_token_id}"),
            b,
            None,
            404,
        ),
        (
            "DELETE",
            format!("/v1/tenants/b/tokens/{a_token_id}"),
            b,
            None,
            404,
        ),
        ("POST", "/v1/pipelines".into(), b_read, yaml(), 403),
        (
            "POST",
            "/v1/plugins?name=x".into(),
            b_read,
            Some(pass.clone()),
            403,
        ),
        (
            "POST",
            "/v1/tenants/b/tokens".into(),
            b_read,
            token_body(),
            403,
        ),
        (
            "POST",
            "/v1/tenants/b/tokens".into(),
            b_deploy,
            token_body(),
            403,
        ),
        ("GET", "/v1/pipelines".into(), ADMIN, None, 403),
        ("POST", "/v1/pipelines".into(), ADMIN, yaml(), 403),
    ];
    let mut bodies = Vec::new();
    for (method, path, who, body, want) in attempts.iter().cloned() {
        let (code, v) = s.call(method, &path, Some(who), body);
        assert_eq!(code, want, "{method} {path}: {v}");
        bodies.push(v.to_string());
    }
    // 22 against tenant a's resources, 6 beyond the caller's scope or role.
    assert!(attempts.len() >= 28);
    let (code, _) = s.call("GET", "/v1/pipelines", None, None);
    assert_eq!(code, 401);
    let (code, v) = s.call("GET", "/v1/pipelines", Some(&format!("{a}x")), None);
    assert_eq!(code, 401);
    bodies.push(v.to_string());

    // B's pipelines may not reach A's plugin, A's files or the server's.
    let sneaky = format!(
        "name: sneaky\nsources:\n  s: {{type: file, path: ../../a/files/a-pipe.jsonl}}\nstages:\n  t: {{plugin: \"sha256:{sha}\", inputs: [s]}}\nsinks:\n  o: {{type: file, path: /tmp/x.jsonl, inputs: [t]}}\n  e: {{type: stdout, inputs: [t]}}\n"
    );
    let (code, v) = s.call(
        "POST",
        "/v1/pipelines",
        Some(b_deploy),
        Some(sneaky.into_bytes()),
    );
    assert_eq!(code, 400, "{v}");
    let diags: Vec<String> = serde_json::from_value(v["diagnostics"].clone()).expect("diagnostics");
    for want in [
        "sneaky.yaml:3:25: sources.s.path: `../../a/files/a-pipe.jsonl` is outside",
        "sneaky.yaml:5:15: stages.t.plugin: unknown plugin `sha256:",
        "sneaky.yaml:7:25: sinks.o.path: `/tmp/x.jsonl` is outside",
        "sneaky.yaml:8:13: sinks.e.type: connector type `stdout` is not granted",
    ] {
        assert!(
            diags.iter().any(|d| d.starts_with(want)),
            "missing {want} in {diags:#?}"
        );
    }
    let env = b"name: envy\ndata_dir: /\nsources:\n  s: {type: datagen, kind: people, count: 1}\nsinks:\n  o: {type: file, path: \"${HOME}.jsonl\", inputs: [s]}\n";
    let (code, v) = s.call("POST", "/v1/validate", Some(b_read), Some(env.to_vec()));
    assert_eq!(code, 400);
    let text = v.to_string();
    assert!(
        text.contains("envy.yaml:2:1: data_dir: not allowed"),
        "{text}"
    );
    assert!(
        text.contains("envy.yaml:6:25: sinks.o.path: `${...}` is not allowed"),
        "{text}"
    );
    assert!(
        s.ok("GET", "/v1/pipelines", Some(b), None)["pipelines"]
            .as_array()
            .map(Vec::len)
            == Some(0)
    );
    assert!(
        s.ok("GET", "/v1/plugins", Some(b), None)["plugins"]
            .as_array()
            .map(Vec::len)
            == Some(0)
    );

    // Quotas: plugin bytes, pipelines, request size.
    s.ok(
        "POST",
        "/v1/plugins?name=p1",
        Some(b_deploy),
        Some(pass.clone()),
    );
    let (code, v) = s.call(
        "POST",
        "/v1/plugins?name=p2",
        Some(b_deploy),
        Some(wasm("unwrap")),
    );
    assert_eq!(
        (code, v["quota"].as_str()),
        (403, Some("max_plugin_bytes")),
        "{v}"
    );
    s.ok(
        "POST",
        "/v1/pipelines",
        Some(b_deploy),
        Some(customers("b1", 10, 100, "p1")),
    );
    let (code, v) = s.call(
        "POST",
        "/v1/pipelines",
        Some(b_deploy),
        Some(customers("b2", 10, 100, "p1")),
    );
    assert_eq!(
        (code, v["quota"].as_str()),
        (403, Some("max_pipelines")),
        "{v}"
    );
    assert!(v["error"]
        .as_str()
        .unwrap_or_default()
        .contains("max_pipelines"));
    // A declared body over the limit is refused before it is sent.
    let head = format!(
        "POST /v1/validate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {b_deploy}\r\nContent-Length: 1000000000\r\n\r\n"
    );
    let answer = raw(&s.url, head.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("max_request_bytes"), "{answer}");
    assert!(!answer.contains(b_deploy));
    // An endless header is cut at the head limit.
    let mut flood = b"GET /v1/health HTTP/1.1\r\nX-Big: ".to_vec();
    flood.extend(std::iter::repeat_n(b'a', 64 * 1024));
    let answer = raw(&s.url, &flood);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    // A's things are untouched, and nothing echoed a token.
    let v = s.ok("GET", "/v1/pipelines/a-pipe", Some(&a_deploy), None);
    assert_eq!(v["status"]["state"], "running", "{v}");
    s.ok("GET", "/v1/plugins/a-plugin", Some(&a_deploy), None);
    for path in [
        "/v1/whoami",
        "/v1/tenants/a/tokens",
        "/v1/pipelines",
        "/v1/plugins",
    ] {
        bodies.push(s.ok("GET", path, Some(a), None).to_string());
    }
    bodies.push(s.ok("GET", "/v1/tenants", Some(ADMIN), None).to_string());
    s.terminate();
    bodies.push(Server::log_of(dir.path()));
    let catalog = std::fs::read(dir.path().join("data/catalog.redb")).expect("catalog");
    for secret in &secrets {
        let tail = &secret[secret.len() - 32..];
        for body in &bodies {
            assert!(!body.contains(tail), "a token was echoed: {body}");
        }
        assert!(
            !catalog.windows(tail.len()).any(|w| w == tail.as_bytes()),
            "a token is stored in clear"
        );
    }
}

/// Sends `bytes` on a fresh connection and returns what comes back.
fn raw(url: &str, bytes: &[u8]) -> String {
    let addr = url.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    // The server may answer and close before everything is written.
    let _ = conn.write_all(bytes);
    let mut out = Vec::new();
    let _ = conn.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn an_invalid_pipeline_gets_the_validate_diagnostics_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), "");
    let s = Server::start(dir.path());
    let t = tenant(&s, "acme", "deploy");
    let bad = "name: bad\nsources:\n  gen: {type: datagen, kind: people, count: 5}\nstages:\n  f: {plugin: filter, inputs: [gen], params: {nope: 1}}\nsinks:\n  out: {type: file, path: o.jsonl, inputs: [f], colour: red}\n";
    let (code, v) = s.call(
        "POST",
        "/v1/pipelines",
        Some(&t),
        Some(bad.as_bytes().to_vec()),
    );
    assert_eq!(code, 400, "{v}");
    let server_diags: Vec<String> =
        serde_json::from_value(v["diagnostics"].clone()).expect("diagnostics");
    // The same file checked by `sluice validate`.
    std::fs::write(dir.path().join("bad.yaml"), bad).expect("write");
    let out = sluice()
        .current_dir(dir.path())
        .args(["validate", "bad.yaml"])
        .output()
        .expect("validate runs");
    assert!(!out.status.success());
    let cli: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("error: "))
        .filter(|l| l.starts_with("bad.yaml:"))
        .map(str::to_string)
        .collect();
    assert!(!cli.is_empty());
    assert_eq!(server_diags, cli);
    let listed = s.ok("GET", "/v1/pipelines", Some(&t), None);
    assert_eq!(listed["pipelines"], json!([]));
    assert!(!dir.path().join("data/tenants/acme/pipelines/bad").exists());
    let (code, v) = s.call(
        "POST",
        "/v1/plugins?name=junk",
        Some(&t),
        Some(b"\0asm not really".to_vec()),
    );
    assert_eq!(code, 400, "{v}");
    assert_eq!(
        s.ok("GET", "/v1/plugins", Some(&t), None)["plugins"],
        json!([])
    );
    s.terminate();
}

/// Tenants get the operator's ceilings and grants from the same host
/// configuration as the command line (`--host-config`): a stage over a
/// ceiling is refused naming the field, and `${VAR}` reads only what
/// `env.tenants` grants (nothing by default).
#[test]
fn tenants_are_bound_by_the_operators_host_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), "");
    let host = dir.path().join("host.yaml");
    std::fs::write(
        &host,
        "ceilings: {memory_mb: 64, log_kb_per_call: 64}\nenv: {tenants: [\"SLUICE_TENANT_*\"]}\n",
    )
    .expect("host config");
    let mut s = Server::start_with(
        dir.path(),
        &["--host-config".as_ref(), host.as_os_str()],
        &[("SLUICE_TENANT_COUNT", "5")],
    );
    let t = tenant(&s, "acme", "deploy");
    let deploy = |s: &Server, yaml: &str| {
        s.call(
            "POST",
            "/v1/validate",
            Some(&t),
            Some(yaml.as_bytes().to_vec()),
        )
    };
    let pipeline = |count: &str, limits: &str| {
        format!("name: p\nsources:\n  gen: {{type: datagen, kind: orders, count: \"{count}\"}}\nstages:\n  copy: {{plugin: passthrough, inputs: [gen], limits: {{{limits}}}}}\nsinks:\n  out: {{type: file, path: o.jsonl, inputs: [copy]}}\n")
    };
    let text = |v: &Value| v.to_string();
    let (code, v) = deploy(&s, &pipeline("5", "memory_mb: 128"));
    assert_eq!(code, 400, "{v}");
    assert!(
        text(&v).contains("stages.copy.limits.memory_mb")
            && text(&v).contains("128 is above this host's ceiling of 64"),
        "{v}"
    );
    let (code, v) = deploy(&s, &pipeline("5", "memory_mb: 64, log_kb_per_call: 128"));
    assert_eq!(code, 400, "{v}");
    assert!(
        text(&v).contains("stages.copy.limits.log_kb_per_call"),
        "{v}"
    );
    let (code, v) = deploy(&s, &pipeline("${HOME}", "memory_mb: 64"));
    assert_eq!(code, 400, "{v}");
    assert!(
        text(&v).contains("sources.gen.count")
            && text(&v).contains("`${HOME}` is not allowed on a server"),
        "{v}"
    );
    let (code, v) = deploy(&s, &pipeline("${SLUICE_TENANT_COUNT}", "memory_mb: 64"));
    assert_eq!(code, 200, "a granted variable is read: {v}");
    s.terminate();
    // Without the grant, none (the default), whatever the environment holds.
    std::fs::write(&host, "ceilings: {memory_mb: 64}\n").expect("host config");
    s = Server::start_with(
        dir.path(),
        &["--host-config".as_ref(), host.as_os_str()],
        &[("SLUICE_TENANT_COUNT", "5")],
    );
    let (code, v) = deploy(&s, &pipeline("${SLUICE_TENANT_COUNT}", "memory_mb: 64"));
    assert_eq!(code, 400, "{v}");
    assert!(
        text(&v).contains("pipelines cannot read the server's environment"),
        "{v}"
    );
    s.terminate();
}

/// The value of the one sample of `name` with exactly `labels` in a
/// Prometheus exposition.
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let head = format!("{name}{{{labels}}} ");
    text.lines().find_map(|l| l.strip_prefix(&head)).map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("bad value in {name}: {v}"))
    })
}

/// Tenants `acme` and `zeta-corp` (deploy tokens returned), each running a
/// datagen → passthrough → file pipeline at `rate` events/s: acme's is `gen`,
/// zeta-corp's is named `other`.
fn two_tenants_generating(s: &Server, other: &str, rate: u64) -> (String, String) {
    let a = tenant(s, "acme", "deploy");
    let z = tenant(s, "zeta-corp", "deploy");
    for (t, name) in [(&a, "gen"), (&z, other)] {
        s.ok(
            "POST",
            "/v1/plugins?name=pass",
            Some(t),
            Some(wasm("passthrough")),
        );
        s.ok(
            "POST",
            "/v1/pipelines",
            Some(t),
            Some(customers(name, 1_000_000, rate, "pass")),
        );
    }
    (a, z)
}

fn metrics(s: &Server, token: &str) -> String {
    let (code, v) = s.call("GET", "/metrics", Some(token), None);
    assert_eq!(code, 200, "{v}");
    v["raw"].as_str().expect("text, not JSON").to_string()
}

#[test]
fn metrics_show_a_tenant_only_its_own_series_and_pause_holds_its_sources() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), "");
    let s = Server::start(dir.path());
    let (a, z) = two_tenants_generating(&s, "secret-zz", 300);
    let a_read = token(&s, "acme", "read", ADMIN);
    // Names with quotes, line feeds or braces never get as far as a label.
    let hostile = b"name: \"a\\\"b\\nc{}\"\nsources:\n  gen: {type: datagen, kind: customers, count: 1}\nsinks:\n  out: {type: file, path: x.jsonl, inputs: [gen]}\n";
    let (code, v) = s.call("POST", "/v1/pipelines", Some(&a), Some(hostile.to_vec()));
    assert_eq!(code, 400, "{v}");
    let v = s.wait_for(&a, "gen", "checkpointed with a busy stage", |v| {
        v["status"]["checkpoints"].as_u64() > Some(1)
            && v["status"]["components"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["role"] == "stage" && c["events_in"].as_u64() > Some(100))
    });
    // Per-component figures in the status: source, stage, sink.
    let roles: Vec<(&str, &str)> = v["status"]["components"]
        .as_array()
        .expect("components")
        .iter()
        .map(|c| {
            (
                c["role"].as_str().unwrap_or(""),
                c["name"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [("source", "gen"), ("stage", "copy"), ("sink", "out")],
        "{v}"
    );
    let stage = &v["status"]["components"][1];
    assert!(stage["memory_bytes"].as_u64() > Some(0), "{stage}");

    let all = metrics(&s, ADMIN);
    let copy = "tenant=\"acme\",pipeline=\"gen\",stage=\"copy\"";
    let seen = sample(&all, "sluice_stage_events_in_total", copy).expect(&all);
    assert!(seen > 100.0, "{all}");
    assert!(
        sample(&all, "sluice_stage_memory_bytes", copy) > Some(0.0),
        "{all}"
    );
    assert!(
        sample(&all, "sluice_stage_cpu_seconds_total", copy) > Some(0.0),
        "{all}"
    );
    let age = sample(
        &all,
        "sluice_pipeline_checkpoint_age_seconds",
        "tenant=\"acme\",pipeline=\"gen\"",
    )
    .expect(&all);
    assert!((0.0..30.0).contains(&age), "{all}");
    assert!(
        sample(
            &all,
            "sluice_source_events_total",
            "tenant=\"zeta-corp\",pipeline=\"secret-zz\",source=\"gen\""
        )
        .is_some(),
        "the operator sees every tenant: {all}"
    );
    assert!(all.contains("# TYPE sluice_sink_events_written_total counter\n"));
    // A tenant's token, even a read-only one, sees its own series and
    // nothing of another tenant's.
    for t in [&a, &a_read] {
        let mine = metrics(&s, t);
        assert!(
            sample(&mine, "sluice_stage_events_in_total", copy).is_some(),
            "{mine}"
        );
        assert!(
            !mine.contains("zeta") && !mine.contains("secret-zz"),
            "{mine}"
        );
    }
    let theirs = metrics(&s, &z);
    assert!(!theirs.contains("acme"), "{theirs}");
    let (code, _) = s.call("GET", "/metrics", None, None);
    assert_eq!(code, 401);
    let (code, _) = s.call("GET", "/metrics", Some("sluice_0_0"), None);
    assert_eq!(code, 401);

    // Pause: the source stops reading, checkpoints go on; kept across a
    // restart; start resumes.
    let (code, v) = s.call("POST", "/v1/pipelines/gen/pause", Some(&a_read), None);
    assert_eq!(code, 403, "pausing needs `deploy`: {v}");
    let paused = s.ok("POST", "/v1/pipelines/gen/pause", Some(&a), None);
    assert_eq!(paused["status"]["state"], "paused", "{paused}");
    assert_eq!(paused["desired"], "paused");
    let after = |v: &Value, n: u64| v["status"]["checkpoints"].as_u64() >= Some(n);
    // Two checkpoints after the pause, any batch read before it has passed.
    let c0 = paused["status"]["checkpoints"]
        .as_u64()
        .expect("checkpoints");
    let v = s.wait_for(&a, "gen", "checkpointing while paused", |v| {
        after(v, c0 + 2)
    });
    let held = v["status"]["events_in"].as_u64().expect("events_in");
    let c1 = v["status"]["checkpoints"].as_u64().expect("checkpoints");
    let v = s.wait_for(&a, "gen", "checkpointing while paused", |v| {
        after(v, c1 + 3)
    });
    assert_eq!(
        v["status"]["events_in"].as_u64(),
        Some(held),
        "a paused source read: {v}"
    );
    let all = metrics(&s, ADMIN);
    assert_eq!(
        sample(
            &all,
            "sluice_pipeline_paused",
            "tenant=\"acme\",pipeline=\"gen\""
        ),
        Some(1.0),
        "{all}"
    );
    assert_eq!(
        sample(
            &all,
            "sluice_pipeline_paused",
            "tenant=\"zeta-corp\",pipeline=\"secret-zz\""
        ),
        Some(0.0),
        "{all}"
    );
    s.terminate();

    let s = Server::start(dir.path());
    let v = s.wait_for(&a, "gen", "paused again after the restart", |v| {
        v["status"]["state"] == "paused"
    });
    assert_eq!(v["desired"], "paused");
    let resumed = s.ok("POST", "/v1/pipelines/gen/start", Some(&a), None);
    assert_eq!(resumed["status"]["state"], "running", "{resumed}");
    s.wait_for(&a, "gen", "reading again", |v| {
        v["status"]["events_in"].as_u64() > Some(50)
    });
    s.ok("POST", "/v1/pipelines/gen/stop", Some(&a), None);
    let (code, v) = s.call("POST", "/v1/pipelines/gen/pause", Some(&a), None);
    assert_eq!(code, 409, "a stopped pipeline is not paused: {v}");
    s.terminate();
}

#[test]
fn the_openapi_document_matches_the_routes_and_the_api_rate_is_a_quota() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(
        dir.path(),
        "[tenants.slow]\napi_requests_per_s = 1\napi_burst = 3\n",
    );
    let s = Server::start(dir.path());
    let doc = s.ok("GET", "/v1/openapi.json", None, None);
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 17, "{}", paths.len());
    // Every documented method is served, every other one is 405: the
    // document and the router agree (the unit test holds the router's own
    // list to the document).
    for (path, ops) in paths {
        let concrete = path
            .replace("{tenant}", "nobody")
            .replace("{id}", "0")
            .replace("{plugin}", "nothing")
            .replace("{name}", "nothing");
        for method in ["GET", "POST", "PUT", "DELETE"] {
            let (code, v) = s.call(method, &concrete, Some(ADMIN), None);
            let documented = ops.get(method.to_lowercase()).is_some();
            if documented {
                assert!(
                    code != 405
                        && v["error"]
                            .as_str()
                            .is_none_or(|e| !e.contains("no such route")),
                    "{method} {path}: documented but answered {code} {v}"
                );
            } else {
                assert_eq!(code, 405, "{method} {path}: undocumented but answered {v}");
            }
        }
    }

    // The API rate: a burst of 3, then 429 naming the quota with
    // Retry-After; other tenants and the operator are not held up.
    let slow = tenant(&s, "slow", "read");
    let other = tenant(&s, "other", "read");
    let mut refused = None;
    for i in 0..10 {
        let (code, v) = s.call("GET", "/v1/whoami", Some(&slow), None);
        if code == 429 {
            refused = Some((i, v));
            break;
        }
        assert_eq!(code, 200, "{v}");
    }
    let (i, v) = refused.expect("the burst of 3 ran out within 10 requests");
    assert!((3..=4).contains(&i), "refused after {i} requests");
    assert_eq!(v["quota"], "api_requests_per_s", "{v}");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("api_requests_per_s")),
        "{v}"
    );
    let head = raw(
        &s.url,
        format!("GET /v1/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {slow}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("\r\nretry-after: 1\r\n"),
        "{head}"
    );
    s.ok("GET", "/v1/whoami", Some(&other), None);
    s.ok("GET", "/v1/tenants", Some(ADMIN), None);
    // The bucket refills: within a few seconds the tenant is served again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.call("GET", "/v1/whoami", Some(&slow), None).0 == 429 {
        assert!(Instant::now() < deadline, "the bucket never refilled");
        std::thread::sleep(Duration::from_millis(200));
    }
    s.ok("GET", "/v1/health", None, None);
    s.terminate();
}

#[test]
fn byte_quotas_stop_a_tenant_over_them_and_refuse_new_runs_naming_the_quota() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(
        dir.path(),
        "[tenants.full]\nmax_dead_letter_bytes = 2000\n[tenants.tiny]\nmax_state_bytes = 1\n",
    );
    let s = Server::start(dir.path());
    let full = tenant(&s, "full", "deploy");
    let tiny = tenant(&s, "tiny", "deploy");
    let fine = tenant(&s, "fine", "deploy");
    // 200 malformed lines: each is dead-lettered, far over 2000 bytes; the
    // datagen source keeps the run going after the file is read.
    let bad: String = (0..200).map(|i| format!("not json {i}\n")).collect();
    std::fs::write(dir.path().join("data/tenants/full/files/bad.jsonl"), bad).expect("bad.jsonl");
    let two = |name: &str| {
        format!(
            "name: {name}\ncheckpoint_interval_ms: 200\nsources:\n  bad: {{type: file, path: bad.jsonl}}\n  gen: {{type: datagen, kind: customers, rate: 20}}\nsinks:\n  a: {{type: file, path: {name}-a.jsonl, inputs: [bad]}}\n  b: {{type: file, path: {name}-b.jsonl, inputs: [gen]}}\n"
        )
        .into_bytes()
    };
    s.ok("POST", "/v1/pipelines", Some(&full), Some(two("dl")));
    let gen = |name: &str| {
        format!("name: {name}\ncheckpoint_interval_ms: 200\nsources:\n  gen: {{type: datagen, kind: customers, rate: 20}}\nsinks:\n  out: {{type: file, path: {name}.jsonl, inputs: [gen]}}\n").into_bytes()
    };
    s.ok("POST", "/v1/pipelines", Some(&tiny), Some(gen("st")));
    s.ok("POST", "/v1/pipelines", Some(&fine), Some(gen("ok")));

    // The server stops each run over its tenant's quota, and says why.
    for (t, name, quota) in [
        (&full, "dl", "max_dead_letter_bytes"),
        (&tiny, "st", "max_state_bytes"),
    ] {
        let v = s.wait_for(t, name, "stopped over its quota", |v| {
            v["status"]["state"] == "failed"
        });
        let error = v["status"]["error"].as_str().unwrap_or_default();
        assert!(error.contains(&format!("over quota `{quota}`")), "{v}");
        assert_eq!(v["desired"], "stopped", "{v}");
        // Starting it again, or deploying another, is refused naming the quota.
        let (code, v) = s.call(
            "POST",
            &format!("/v1/pipelines/{name}/start"),
            Some(t),
            None,
        );
        assert_eq!((code, v["quota"].as_str()), (403, Some(quota)), "{v}");
        let (code, v) = s.call("POST", "/v1/pipelines", Some(t), Some(gen("another")));
        assert_eq!((code, v["quota"].as_str()), (403, Some(quota)), "{v}");
        let (code, _) = s.call("GET", "/v1/pipelines/another", Some(t), None);
        assert_eq!(code, 404, "a refused deploy changed nothing");
    }
    let usage = s.ok("GET", "/v1/tenants/full", Some(ADMIN), None);
    assert!(usage["dead_letter_bytes"].as_u64() > Some(2000), "{usage}");
    // The server is healthy, another tenant's pipeline runs on, and
    // deleting the pipeline frees the tenant's space.
    s.ok("GET", "/v1/health", None, None);
    let v = s.ok("GET", "/v1/pipelines/ok", Some(&fine), None);
    assert_eq!(v["status"]["state"], "running", "{v}");
    s.ok("DELETE", "/v1/pipelines/dl", Some(&full), None);
    let (code, v) = s.call("POST", "/v1/pipelines", Some(&full), Some(gen("again")));
    assert_eq!(code, 201, "{v}");
    s.terminate();
}

/// The lag of a source that reads an unbounded stream: a real Kafka broker
/// (scripts/services/kafka.sh), a pipeline paused while 300 records arrive.
#[test]
fn a_paused_kafka_pipeline_shows_its_lag_grow_and_drain() {
    use crate::kafka::{brokers, create_topics, json_records, produce, unique};
    let brokers = brokers();
    let topic = unique("lag");
    create_topics(&brokers, &[(&topic, 2)]);
    produce(&brokers, &topic, &json_records(100, 0));

    let dir = tempfile::tempdir().expect("tempdir");
    write_config(
        dir.path(),
        "[tenants.acme]\nconnectors = [\"file\", \"kafka\"]\nhosts = [\"127.0.0.1\"]\n",
    );
    let s = Server::start(dir.path());
    let a = tenant(&s, "acme", "deploy");
    let yaml = format!(
        "name: lagging\ncheckpoint_interval_ms: 200\nsources:\n  orders: {{type: kafka, brokers: \"{brokers}\", topics: [{topic}], group_id: {topic}, start: earliest}}\nsinks:\n  out: {{type: file, path: out.jsonl, inputs: [orders]}}\n"
    );
    s.ok("POST", "/v1/pipelines", Some(&a), Some(yaml.into_bytes()));
    let lag = |v: &Value| -> Option<(u64, String)> {
        let source = v["status"]["components"]
            .as_array()?
            .iter()
            .find(|c| c["role"] == "source")?;
        Some((
            source["lag"]["value"].as_u64()?,
            source["lag"]["unit"].as_str()?.to_string(),
        ))
    };
    let v = s.wait_for(&a, "lagging", "caught up with no lag", |v| {
        v["status"]["events_in"].as_u64() == Some(100) && lag(v).is_some_and(|(n, _)| n == 0)
    });
    assert_eq!(lag(&v), Some((0, "messages".into())), "{v}");

    let paused = s.ok("POST", "/v1/pipelines/lagging/pause", Some(&a), None);
    // A checkpoint barrier passes the source between polls: two after the
    // pause, a poll in flight when it came has ended.
    let c0 = paused["status"]["checkpoints"].as_u64().unwrap_or(0);
    s.wait_for(&a, "lagging", "checkpointing while paused", |v| {
        v["status"]["state"] == "paused" && v["status"]["checkpoints"].as_u64() >= Some(c0 + 2)
    });
    produce(&brokers, &topic, &json_records(300, 100));
    // Paused, the source reads nothing, yet its lag shows what waits.
    let v = s.wait_for(&a, "lagging", "lagging by the 300 new records", |v| {
        lag(v).is_some_and(|(n, _)| n == 300)
    });
    assert_eq!(v["status"]["events_in"].as_u64(), Some(100), "{v}");
    let all = metrics(&s, &a);
    let labels = "tenant=\"acme\",pipeline=\"lagging\",source=\"orders\",unit=\"messages\"";
    assert_eq!(
        sample(&all, "sluice_source_lag", labels),
        Some(300.0),
        "{all}"
    );

    s.ok("POST", "/v1/pipelines/lagging/start", Some(&a), None);
    let v = s.wait_for(&a, "lagging", "drained the lag", |v| {
        v["status"]["events_in"].as_u64() == Some(400) && lag(v).is_some_and(|(n, _)| n == 0)
    });
    assert_eq!(lag(&v), Some((0, "messages".into())), "{v}");
    s.terminate();
}

#[test]
fn top_shows_a_tenant_its_pipelines_with_rates_and_nothing_of_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), "");
    let s = Server::start(dir.path());
    let (a, _z) = two_tenants_generating(&s, "zeta-secret", 500);
    s.wait_for(&a, "gen", "flowing", |v| {
        v["status"]["events_out"].as_u64() > Some(10)
    });
    let out = sluice()
        .args(["--server", &s.url, "top", "--once", "--interval", "1"])
        .env("SLUICE_TOKEN", &a)
        .output()
        .expect("sluice top");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines.first().map(|l| &l[..3]),
        Some(&["PIPELINE", "/", "COMPONENT"][..]),
        "{text}"
    );
    let row = |first: &str, second: &str| -> Vec<&str> {
        lines
            .iter()
            .find(|l| l.first() == Some(&first) && l.get(1) == Some(&second))
            .cloned()
            .unwrap_or_else(|| panic!("no `{first} {second}` row in:\n{text}"))
    };
    let number = |cell: &str| -> f64 {
        cell.parse()
            .unwrap_or_else(|_| panic!("`{cell}` is not a rate in:\n{text}"))
    };
    // datagen at 500 events/s, measured over one second.
    let pipeline = row("gen", "running");
    assert!(number(pipeline[2]) > 0.0, "{text}");
    let source = row("source", "gen");
    assert!(number(source[2]) > 0.0, "{text}");
    let stage = row("stage", "copy");
    assert!(number(stage[2]) > 0.0 && number(stage[3]) > 0.0, "{text}");
    // The stage's memory, in a unit.
    assert!(stage.iter().any(|w| w.ends_with("iB")), "{text}");
    row("sink", "out");
    assert!(!text.contains("zeta-secret"), "{text}");

    // In a terminal (a pty from util-linux's `script`): redrawn in place
    // until `q`.
    let bin = sluice().get_program().to_string_lossy().into_owned();
    let mut live = Command::new("script")
        .args(["-qfec"])
        .arg(format!("{bin} --server {} top --interval 0.3", s.url))
        .arg("/dev/null")
        .env("SLUICE_TOKEN", &a)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script runs");
    let screen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut stdout = live.stdout.take().expect("stdout");
    let reader = {
        let screen = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = screen.lock() {
                    s.extend_from_slice(&buf[..n]);
                }
            }
        })
    };
    let drawn = |times: usize| {
        let text = String::from_utf8_lossy(&screen.lock().expect("screen")).into_owned();
        text.matches("PIPELINE / COMPONENT").count() >= times
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !drawn(2) {
        assert!(Instant::now() < deadline, "top never drew twice");
        std::thread::sleep(Duration::from_millis(50));
    }
    live.stdin
        .as_mut()
        .expect("stdin")
        .write_all(b"q")
        .expect("send q");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = live.try_wait().expect("wait") {
            break st;
        }
        assert!(Instant::now() < deadline, "top did not quit on q");
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = reader.join();
    let screen = String::from_utf8_lossy(&screen.lock().expect("screen")).into_owned();
    assert!(status.success(), "{screen}");
    // Cleared and redrawn, not scrolled, and the cursor given back.
    assert!(
        screen.contains("\x1b[2J") || screen.contains("\x1b[H"),
        "{screen:?}"
    );
    assert!(screen.contains("q to quit"), "{screen:?}");
    assert!(screen.contains("\x1b[?25h"), "{screen:?}");

    let bad = sluice()
        .args(["--server", &s.url, "top", "--interval", "0"])
        .env("SLUICE_TOKEN", &a)
        .output()
        .expect("sluice top");
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--interval 0: expected seconds"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    s.terminate();
}

/// An update that changes only a stage's plugin build swaps it in the
/// running pipeline: no restart (`runs` stays 1), no event lost or doubled,
/// every batch on one build, the old build up to the swap and the new one
/// after. Deploying the same file again changes nothing; a change to
/// anything else restarts the run from its checkpoint.
#[test]
fn an_update_that_changes_only_a_plugin_build_is_a_hot_swap_with_no_loss() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), "");
    let s = Server::start(dir.path());
    let t = tenant(&s, "acme", "deploy");
    // Two builds of one guest: the same name and version, different bytes;
    // each tags its events `a` or `b`.
    let read = |name: &str| std::fs::read(crate::support::guest(name)).expect("guest bytes");
    let a = s.ok(
        "POST",
        "/v1/plugins?name=tag-a",
        Some(&t),
        Some(read("misbehave")),
    );
    let b = s.ok(
        "POST",
        "/v1/plugins?name=tag-b",
        Some(&t),
        Some(read("misbehave-b")),
    );
    assert_ne!(a["sha256"], b["sha256"]);
    let yaml = |plugin: &str, rate: u64| {
        format!(
            "name: swap\ncheckpoint_interval_ms: 200\nbatch_size: 50\nsources:\n  gen: {{type: datagen, kind: customers, count: 6000, rate: {rate}}}\nstages:\n  tag: {{plugin: {plugin}, inputs: [gen]}}\nsinks:\n  out: {{type: file, path: swap.jsonl, inputs: [tag]}}\n"
        )
        .into_bytes()
    };
    let created = s.ok("POST", "/v1/pipelines", Some(&t), Some(yaml("tag-a", 1500)));
    assert_eq!(created["update"]["kind"], "created", "{created}");
    s.wait_for(&t, "swap", "written by build a", |v| {
        v["status"]["events_out"].as_u64() > Some(500)
    });

    let swapped = s.ok(
        "PUT",
        "/v1/pipelines/swap",
        Some(&t),
        Some(yaml("tag-b", 1500)),
    );
    assert_eq!(swapped["update"]["kind"], "hot-swapped", "{swapped}");
    assert_eq!(swapped["update"]["stages"], json!(["tag"]));
    let again = s.ok(
        "PUT",
        "/v1/pipelines/swap",
        Some(&t),
        Some(yaml("tag-b", 1500)),
    );
    assert_eq!(again["update"]["kind"], "unchanged", "{again}");

    let done = s.wait_for(&t, "swap", "finished", |v| {
        v["status"]["state"] == "finished"
    });
    assert_eq!(
        done["status"]["runs"], 1,
        "one run: swapped, not restarted: {done}"
    );
    let log = Server::log_of(dir.path());
    assert!(log.contains("hot-swapped plugin"), "{log}");

    let out = std::fs::read_to_string(dir.path().join("data/tenants/acme/files/swap.jsonl"))
        .expect("output");
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let mut ids: Vec<String> = events
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        (events.len(), ids.len()),
        (6000, 6000),
        "every event exactly once"
    );
    let tags: Vec<&str> = events
        .iter()
        .map(|e| e["tag"].as_str().expect("tag"))
        .collect();
    let first_b = tags
        .iter()
        .position(|t| *t == "b")
        .expect("build b served events after the swap");
    assert!(first_b >= 500, "build a served the events before the swap");
    assert!(
        tags[first_b..].iter().all(|t| *t == "b"),
        "after the swap only build b runs"
    );

    // Any other change restarts the (finished) pipeline on the new file.
    let restarted = s.ok(
        "PUT",
        "/v1/pipelines/swap",
        Some(&t),
        Some(yaml("tag-b", 3000)),
    );
    assert_eq!(restarted["update"]["kind"], "restarted", "{restarted}");
    s.terminate();
}

/// The same component with a custom section appended: another build (another
/// SHA-256) that behaves the same.
fn rebuilt(mut wasm: Vec<u8>) -> Vec<u8> {
    let name = b"sluice-test-build";
    let payload = b"b";
    let size = 1 + name.len() + payload.len();
    wasm.push(0); // custom section
    wasm.push(u8::try_from(size).expect("small section"));
    wasm.push(u8::try_from(name.len()).expect("short name"));
    wasm.extend_from_slice(name);
    wasm.extend_from_slice(payload);
    wasm
}

/// A processor's keyed state, timers and tables are the host's, so an
/// update that changes only its build swaps it in the live run and the new
/// build goes on with the old one's windows: the counts of one window,
/// swapped mid-window, add up to every event.
#[test]
fn a_processors_new_build_takes_over_its_window_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), "");
    let s = Server::start(dir.path());
    let t = tenant(&s, "acme", "deploy");
    let built_in = wasm("window-aggregate");
    let a = s.ok(
        "POST",
        "/v1/plugins?name=agg-a",
        Some(&t),
        Some(built_in.clone()),
    );
    let b = s.ok(
        "POST",
        "/v1/plugins?name=agg-b",
        Some(&t),
        Some(rebuilt(built_in)),
    );
    assert_ne!(a["sha256"], b["sha256"]);
    assert_eq!(b["world"], "processor", "{b}");
    let yaml = |plugin: &str| {
        format!(
            "name: agg\ncheckpoint_interval_ms: 200\nbatch_size: 50\nsources:\n  gen: {{type: datagen, kind: orders, count: 6000, rate: 1500}}\nstages:\n  counts:\n    plugin: {plugin}\n    inputs: [gen]\n    params: {{size_ms: 86400000, group_by: currency, aggregates: count}}\nsinks:\n  out: {{type: file, path: agg.jsonl, inputs: [counts]}}\n"
        )
        .into_bytes()
    };
    s.ok("POST", "/v1/pipelines", Some(&t), Some(yaml("agg-a")));
    s.wait_for(&t, "agg", "counting with build a", |v| {
        v["status"]["events_in"].as_u64() > Some(1500)
    });
    let swapped = s.ok("PUT", "/v1/pipelines/agg", Some(&t), Some(yaml("agg-b")));
    assert_eq!(swapped["update"]["kind"], "hot-swapped", "{swapped}");
    assert_eq!(swapped["update"]["stages"], json!(["counts"]));
    let done = s.wait_for(&t, "agg", "finished", |v| {
        v["status"]["state"] == "finished"
    });
    assert_eq!(done["status"]["runs"], 1, "swapped, not restarted: {done}");
    assert_eq!(done["status"]["dead_letters"], 0, "{done}");
    let log = Server::log_of(dir.path());
    let b_sha = b["sha256"].as_str().expect("sha256");
    assert!(
        log.contains(&format!("-> sha256 {}", &b_sha[..8])),
        "the stage runs build b: {log}"
    );
    // Closed at the end of input: one result per currency (and per day the
    // run spans), adding up to every order whichever build counted it.
    let out = std::fs::read_to_string(dir.path().join("data/tenants/acme/files/agg.jsonl"))
        .expect("output");
    let counted: u64 = out
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("json line");
            v["count"].as_u64().expect("count")
        })
        .sum();
    assert_eq!(counted, 6000, "{out}");
    s.terminate();
}

/// A pipeline's own log lines, the host's about its run and its plugin's,
/// are kept for its tenant: read page by page with `since`, bounded per
/// line and per pipeline, escaped on the terminal by `sluice logs`, and
/// invisible to another tenant.
#[test]
fn a_tenant_reads_its_pipelines_own_logs_bounded_escaped_and_only_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), "");
    let s = Server::start(dir.path());
    let t = tenant(&s, "acme", "deploy");
    let z = tenant(&s, "zeta", "deploy");
    let loud = std::fs::read(crate::support::guest("loud")).expect("guest bytes");
    s.ok("POST", "/v1/plugins?name=loud", Some(&t), Some(loud));
    s.ok(
        "POST",
        "/v1/plugins?name=pass",
        Some(&z),
        Some(wasm("passthrough")),
    );
    let files = dir.path().join("data/tenants/acme/files");
    std::fs::create_dir_all(&files).expect("files dir");
    std::fs::write(
        files.join("in.jsonl"),
        "{\"n\":0}\n{\"n\":1,\"do\":\"forge\"}\n{\"n\":2,\"do\":\"flood\"}\n{\"n\":3}\n",
    )
    .expect("input");
    let noisy = "name: noisy\nbatch_size: 1\nsources:\n  in: {type: file, path: in.jsonl}\nstages:\n  loud:\n    plugin: loud\n    inputs: [in]\n    limits: {memory_mb: 512, cpu_ms_per_call: 20000}\nsinks:\n  out: {type: file, path: out.jsonl, inputs: [loud]}\n";
    s.ok("POST", "/v1/pipelines", Some(&t), Some(noisy.into()));
    s.ok(
        "POST",
        "/v1/pipelines",
        Some(&z),
        Some(customers("quiet", 50, 1000, "pass")),
    );
    s.wait_for(&t, "noisy", "finished", |v| {
        v["status"]["state"] == "finished"
    });
    s.wait_for(&z, "quiet", "finished", |v| {
        v["status"]["state"] == "finished"
    });

    // Every line, page by page: numbered without gaps, each bounded.
    let mut since = 0;
    let mut lines: Vec<Value> = Vec::new();
    loop {
        let page = s.ok(
            "GET",
            &format!("/v1/pipelines/noisy/logs?since={since}&limit=100"),
            Some(&t),
            None,
        );
        let got = page["lines"].as_array().expect("lines").clone();
        assert!(got.len() <= 100, "a page holds at most `limit` lines");
        if got.is_empty() {
            assert_eq!(page["next"], since, "an empty page keeps `next`");
            break;
        }
        since = page["next"].as_u64().expect("next");
        lines.extend(got);
    }
    assert!(
        lines.len() <= 2_000,
        "a pipeline keeps at most 2,000 lines: {}",
        lines.len()
    );
    let seqs: Vec<u64> = lines.iter().filter_map(|l| l["seq"].as_u64()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "numbered without gaps"
    );
    let text: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    assert!(
        text.iter().all(|m| m.len() <= 2_048 + " …[cut]".len()),
        "each line is cut at 2 KiB"
    );
    assert!(
        text.iter().any(|m| m.contains("pipeline starting")),
        "the host's lines about the run: {text:#?}"
    );
    assert!(
        text.iter().any(|m| m.contains("innocent")),
        "the plugin's own lines"
    );
    assert!(
        text.iter()
            .any(|m| m.contains("log bytes dropped from plugin")),
        "the flood's cut is reported"
    );

    // Another tenant sees neither the pipeline nor its lines.
    let (code, _) = s.call("GET", "/v1/pipelines/noisy/logs", Some(&z), None);
    assert_eq!(code, 404, "another tenant's pipeline is not there");
    let quiet = s.ok("GET", "/v1/pipelines/quiet/logs", Some(&z), None);
    let quiet_text = quiet["lines"].to_string();
    assert!(quiet_text.contains("pipeline starting"), "{quiet_text}");
    assert!(!quiet_text.contains("innocent"), "only its own lines");
    let (code, bad) = s.call("GET", "/v1/pipelines/quiet/logs?since=x", Some(&z), None);
    assert_eq!(code, 400, "{bad}");

    // The CLI prints them with control characters escaped.
    let out = sluice()
        .args(["--server", &s.url, "logs", "noisy"])
        .env("SLUICE_TOKEN", &t)
        .output()
        .expect("sluice logs");
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("innocent"), "{printed}");
    assert!(
        !printed.contains('\u{1b}') && !printed.contains('\r'),
        "no raw escape reaches the terminal"
    );

    // Deleting the pipeline forgets its lines.
    s.ok("DELETE", "/v1/pipelines/noisy", Some(&t), None);
    let (code, _) = s.call("GET", "/v1/pipelines/noisy/logs", Some(&t), None);
    assert_eq!(code, 404);
    s.terminate();
}

/// A pipeline's dead letters through the API: every one the last checkpoint
/// covers, page by page, selected as `sluice dlq ls` selects, and nothing of
/// them for another tenant.
#[test]
fn a_tenant_pages_through_its_pipelines_dead_letters_and_only_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), "");
    let s = Server::start(dir.path());
    let t = tenant(&s, "acme", "deploy");
    let z = tenant(&s, "zeta", "deploy");
    // Every third line is not JSON: 10 dead letters, 20 events through.
    let input: String = (0..30)
        .map(|i| {
            if i % 3 == 0 {
                format!("not json {i}\n")
            } else {
                format!("{{\"n\":{i}}}\n")
            }
        })
        .collect();
    let files = dir.path().join("data/tenants/acme/files");
    std::fs::create_dir_all(&files).expect("files dir");
    std::fs::write(files.join("in.jsonl"), input).expect("input");
    let p = "name: mixed\nsources:\n  in: {type: file, path: in.jsonl}\nsinks:\n  out: {type: file, path: out.jsonl, inputs: [in]}\n";
    s.ok("POST", "/v1/pipelines", Some(&t), Some(p.into()));
    s.wait_for(&t, "mixed", "finished", |v| {
        v["status"]["state"] == "finished"
    });

    let read_all = |query: &str| -> Vec<Value> {
        let mut after = 0;
        let mut letters = Vec::new();
        for _ in 0..20 {
            let page = s.ok(
                "GET",
                &format!("/v1/pipelines/mixed/dead-letters?limit=4&after={after}{query}"),
                Some(&t),
                None,
            );
            let got = page["letters"].as_array().expect("letters").clone();
            assert!(got.len() <= 4, "a page holds at most `limit`: {page}");
            assert_eq!(page["bad_lines"], json!([]), "{page}");
            letters.extend(got);
            if page["complete"] == true {
                assert_eq!(page["next"], page["end"], "{page}");
                return letters;
            }
            after = page["next"].as_u64().expect("next");
        }
        panic!("paging never completed");
    };
    let all = read_all("");
    assert_eq!(all.len(), 10, "{all:#?}");
    let ids: std::collections::BTreeSet<&str> =
        all.iter().filter_map(|l| l["id"].as_str()).collect();
    assert_eq!(ids.len(), 10, "each letter once");
    assert!(
        all.iter()
            .all(|l| l["stage"] == "in" && l["replayed"].is_null()),
        "{all:#?}"
    );
    // Reasons name the input relative to the tenant's area, not where the
    // server keeps it.
    let area = dir.path().display().to_string();
    assert!(
        all.iter().all(|l| {
            let reason = l["reason"].as_str().unwrap_or_default();
            reason.contains("at files/in.jsonl line") && !reason.contains(&area)
        }),
        "{all:#?}"
    );
    let raw: Vec<String> = all.iter().map(|l| l["value"].to_string()).collect();
    for i in (0..30).step_by(3) {
        assert!(
            raw.iter().any(|v| v.contains(&format!("not json {i}"))),
            "line {i} is among the letters: {raw:?}"
        );
    }
    // Selections: by kind, and by an expression over the letter.
    let kind = all[0]["kind"].as_str().expect("kind");
    assert_eq!(read_all(&format!("&kind={kind}")).len(), 10);
    assert_eq!(read_all("&kind=no-such-kind").len(), 0);
    let third = all[2]["offset"].as_u64().expect("offset");
    let later = read_all(&format!("&filter=offset%20%3E%3D%20{third}"));
    assert_eq!(later.len(), 8, "{later:#?}");

    // The CLI pages through the same letters, the selection encoded.
    let cli = |args: &[&str]| {
        let out = sluice()
            .args(["--server", &s.url, "dead-letters", "mixed"])
            .args(args)
            .env("SLUICE_TOKEN", &t)
            .output()
            .expect("sluice dead-letters");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let printed = cli(&["--limit", "0", "--json"]);
    let from_cli: Vec<Value> = printed
        .lines()
        .map(|l| serde_json::from_str(l).expect("a letter per line"))
        .collect();
    assert_eq!(from_cli, all, "the CLI prints what the API gives");
    let filter = format!("offset >= {third} and reason != 'a & b'");
    assert_eq!(cli(&["--filter", &filter, "--json"]).lines().count(), 8);
    let table = cli(&["--limit", "3"]);
    assert_eq!(table.lines().count(), 3, "{table}");
    let first_id = all[0]["id"].as_str().expect("id");
    assert!(
        table.starts_with(&format!("{first_id}  malformed  in  ")),
        "{table}"
    );

    // Bad requests are 400s that say what is wrong; nothing of it for zeta.
    for (query, says) in [
        ("after=x", "`after` is a whole number"),
        ("stagee=in", "unknown query parameter"),
        ("filter=offset%20%3E", "`filter`"),
    ] {
        let (code, v) = s.call(
            "GET",
            &format!("/v1/pipelines/mixed/dead-letters?{query}"),
            Some(&t),
            None,
        );
        assert_eq!(code, 400, "{query}: {v}");
        assert!(v.to_string().contains(says), "{query}: {v}");
    }
    let (code, v) = s.call(
        "GET",
        "/v1/pipelines/mixed/dead-letters?after=1",
        Some(&t),
        None,
    );
    assert_eq!(code, 409, "an offset inside a letter: {v}");
    assert!(
        v.to_string().contains("does not start a dead letter"),
        "{v}"
    );
    // Another tenant gets a 404, whatever its query says.
    for query in ["", "?after=x", "?filter=%3E"] {
        let (code, _) = s.call(
            "GET",
            &format!("/v1/pipelines/mixed/dead-letters{query}"),
            Some(&z),
            None,
        );
        assert_eq!(code, 404, "another tenant's pipeline is not there: {query}");
    }
    s.terminate();
}

/// Named connections and their secrets.
mod connections;
/// The fair CPU share between tenants.
mod cpu_share;
/// The tenant's file area through the API.
mod files;
/// Host grants, settings only the operator may use, secrets after a restart.
mod grants;
/// The memory quota, table bounds, and connectors' limits under the ceilings.
mod memory;
/// Several servers on one PostgreSQL catalog.
mod several;
/// The live tap over SSE, and `sluice --server URL tap`.
mod tap;
/// HTTPS on the listener.
mod tls;
/// User-defined functions on a server: uploaded, never loaded by path.
mod udfs;
