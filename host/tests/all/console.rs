//! The web console (`/console/`) of `sluice serve`: its headers and the API
//! route it adds over plain HTTP, then the whole console in a real headless
//! Chromium (host/tests/console/console.mjs, driven by playwright-core; the
//! browser and the driver come from `scripts/services/chromium.sh start`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{plugin, service, sluice, target_dir};

const ADMIN: &str = "operator-secret-console-0123";
/// In a file name, so that it reaches dead letters' reasons.
const XSS: &str = "<img src=x onerror=window.__pwned=1>";

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(dir: &Path) -> Server {
        std::fs::write(
            dir.join("server.toml"),
            "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\n",
        )
        .expect("server.toml");
        let log = std::fs::File::create(dir.join("server.log")).expect("log");
        let mut child = sluice()
            .args(["serve", "--config"])
            .arg(dir.join("server.toml"))
            .env("SLUICE_ADMIN_TOKEN", ADMIN)
            // Charts get a sample every 200 ms rather than every 10 s.
            .env("SLUICE_HISTORY_INTERVAL_MS", "200")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("sluice serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("URL line");
        let url = line
            .trim()
            .strip_prefix("SLUICE_SERVER_URL=")
            .unwrap_or_else(|| panic!("no URL line: {line:?}"))
            .to_string();
        Server { child, url }
    }

    /// (status, headers, body) of a request.
    fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> (u16, Vec<(String, String)>, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .new_agent();
        let url = format!("{}{path}", self.url);
        let auth = token.map(|t| format!("Bearer {t}"));
        let resp = if method == "GET" {
            let mut r = agent.get(&url);
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.call()
        } else {
            let mut r = agent.post(&url);
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.send(body.unwrap_or_default())
        };
        let mut resp = resp.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect();
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().expect("body");
        (status, headers, text)
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> (u16, Value) {
        let (status, _, text) = self.raw(method, path, token, body);
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text })),
        )
    }

    fn ok(&self, method: &str, path: &str, token: Option<&str>, body: Option<&[u8]>) -> Value {
        let (status, v) = self.call(method, path, token, body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    fn tenant(&self, name: &str) -> String {
        self.ok(
            "POST",
            "/v1/tenants",
            Some(ADMIN),
            Some(json!({ "name": name }).to_string().as_bytes()),
        );
        let v = self.ok(
            "POST",
            &format!("/v1/tenants/{name}/tokens"),
            Some(ADMIN),
            Some(br#"{"scope":"deploy"}"#),
        );
        v["token"].as_str().expect("token").to_string()
    }

    fn names(&self, token: &str) -> Vec<String> {
        let v = self.ok("GET", "/v1/pipelines", Some(token), None);
        let mut names: Vec<String> = v["pipelines"]
            .as_array()
            .expect("pipelines")
            .iter()
            .filter_map(|p| p["name"].as_str().map(str::to_string))
            .collect();
        names.sort();
        names
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map_or("", |(_, v)| v.as_str())
}

const ORDERS: &str = "name: orders\ncheckpoint_interval_ms: 200\nsources:\n  gen: {type: datagen, kind: people, rate: 40}\nstages:\n  copy: {plugin: pass, inputs: [gen]}\nsinks:\n  out: {type: file, path: orders.jsonl, inputs: [copy]}\n";

#[test]
fn the_console_is_served_with_strict_headers_and_the_graph_is_tenant_scoped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path());
    let acme = s.tenant("acme");
    let zeta = s.tenant("zeta");

    let (code, headers, _) = s.raw("GET", "/", None, None);
    assert_eq!(code, 308);
    assert_eq!(header(&headers, "location"), "/console/");
    for (path, status, kind) in [
        ("/console/", 200, "text/html; charset=utf-8"),
        ("/console/app.js", 200, "text/javascript; charset=utf-8"),
        ("/console/style.css", 200, "text/css; charset=utf-8"),
        ("/console/index.html", 200, "text/html; charset=utf-8"),
        ("/console/..%2Fcatalog.redb", 404, "application/json"),
        ("/console/%3Cscript%3E", 404, "application/json"),
    ] {
        let (code, headers, body) = s.raw("GET", path, None, None);
        assert_eq!(
            (code, header(&headers, "content-type")),
            (status, kind),
            "{path}"
        );
        assert_eq!(
            header(&headers, "content-security-policy"),
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'",
            "{path}"
        );
        assert_eq!(
            header(&headers, "x-content-type-options"),
            "nosniff",
            "{path}"
        );
        assert_eq!(header(&headers, "x-frame-options"), "DENY", "{path}");
        if status == 200 {
            // Nothing from the network beside the server (the SVG namespace
            // is a name, not a fetch).
            let rest = body.replace("'http://www.w3.org/2000/svg'", "");
            assert!(
                !rest.contains("http:") && !rest.contains("https:"),
                "{path}"
            );
        }
    }
    let (_, _, page) = s.raw("GET", "/console/", None, None);
    // One script, from a file: the policy forbids inline ones.
    assert_eq!(page.matches("<script").count(), 1, "{page}");
    assert!(page.contains(r#"<script type="module" src="/console/app.js"></script>"#));
    assert!(
        !page.contains("onclick") && !page.contains("style="),
        "{page}"
    );

    // The graph: the caller's own pipelines only, bounded names refused as absent.
    s.ok(
        "POST",
        "/v1/plugins?name=pass",
        Some(&acme),
        Some(&std::fs::read(plugin("passthrough")).expect("plugin")),
    );
    s.ok(
        "POST",
        "/v1/pipelines",
        Some(&acme),
        Some(ORDERS.as_bytes()),
    );
    let g = s.ok("GET", "/v1/pipelines/orders/graph", Some(&acme), None);
    assert_eq!(
        g,
        json!({
            "name": "orders",
            "nodes": [
                {"role": "source", "name": "gen", "kind": "datagen"},
                {"role": "stage", "name": "copy", "kind": "pass"},
                {"role": "sink", "name": "out", "kind": "file"},
            ],
            "edges": [{"from": "gen", "to": "copy"}, {"from": "copy", "to": "out"}],
            "truncated": false,
        })
    );
    let long = "a".repeat(10_000);
    for (path, token, status) in [
        (
            "/v1/pipelines/orders/graph".to_string(),
            Some(zeta.as_str()),
            404,
        ),
        ("/v1/pipelines/orders/graph".to_string(), None, 401),
        (
            "/v1/pipelines/orders/graph".to_string(),
            Some("sluice_x_y"),
            401,
        ),
        (
            "/v1/pipelines/..%2F..%2Facme%2Forders/graph".to_string(),
            Some(&acme),
            404,
        ),
        (
            "/v1/pipelines/orders%00/graph".to_string(),
            Some(&acme),
            404,
        ),
        (format!("/v1/pipelines/{long}/graph"), Some(&acme), 404),
    ] {
        let (code, v) = s.call("GET", &path, token, None);
        assert_eq!(code, status, "{path}: {v}");
        assert!(
            !v.to_string().contains("gen"),
            "nothing of the graph leaks: {v}"
        );
    }
    // The history: a sample per interval, rates between them, the
    // caller's own pipelines only.
    let deadline = Instant::now() + Duration::from_secs(30);
    let history = loop {
        let v = s.ok("GET", "/v1/pipelines/orders/history", Some(&acme), None);
        let positive = v["samples"]
            .as_array()
            .expect("samples")
            .iter()
            .filter(|x| x["out_per_s"].as_f64().is_some_and(|r| r > 0.0))
            .count();
        if positive >= 3 {
            break v;
        }
        assert!(Instant::now() < deadline, "no rates in the history: {v}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(history["interval_ms"], 200);
    let samples = history["samples"].as_array().expect("samples");
    assert!(samples.len() <= 360);
    assert!(
        samples
            .windows(2)
            .all(|w| w[0]["t_ms"].as_u64() < w[1]["t_ms"].as_u64()),
        "{history}"
    );
    assert!(
        samples.iter().all(|x| x["lag"].is_null()),
        "datagen has no lag: {history}"
    );
    for (path, token, status) in [
        ("/v1/pipelines/orders/history", Some(zeta.as_str()), 404),
        ("/v1/pipelines/orders/history", None, 401),
        ("/v1/pipelines/..%2Facme%2Forders/history", Some(&acme), 404),
        ("/v1/pipelines/nothing/history", Some(&acme), 404),
    ] {
        let (code, v) = s.call("GET", path, token, None);
        assert_eq!(code, status, "{path}: {v}");
        assert!(v.get("samples").is_none(), "{v}");
    }
    // The validate answer carries each problem's line for the deploy form.
    let (code, v) = s.call(
        "POST",
        "/v1/validate",
        Some(&acme),
        Some(ORDERS.replace("plugin: pass", "plugin: nosuch").as_bytes()),
    );
    assert_eq!(code, 400, "{v}");
    assert_eq!(
        v["problems"],
        json!([{
            "line": 6, "col": 18, "field": "stages.copy.plugin",
            "message": "unknown plugin `nosuch`: upload it first (`sluice plugin push`, POST /v1/plugins?name=nosuch) or name a built-in plugin",
        }])
    );
}

/// Where the browser test leaves its screenshots (kept after the run).
fn screenshots(test: &str) -> PathBuf {
    let dir = target_dir().join("console-screenshots").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_tenant_signs_in_watches_its_pipelines_reads_dead_letters_as_text_and_deploys_in_chromium() {
    let chromium = service("SLUICE_CHROMIUM", "chromium");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console/console.mjs");
    assert!(
        script
            .with_file_name("node_modules/playwright-core/package.json")
            .is_file(),
        "playwright-core is not installed: run scripts/services/chromium.sh start"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path());
    let acme = s.tenant("acme");
    let zeta = s.tenant("zeta");
    s.ok(
        "POST",
        "/v1/plugins?name=pass",
        Some(&acme),
        Some(&std::fs::read(plugin("passthrough")).expect("plugin")),
    );
    s.ok(
        "POST",
        "/v1/pipelines",
        Some(&acme),
        Some(ORDERS.as_bytes()),
    );
    // Two lines that are not JSON: two dead letters whose reason names the
    // file, HTML and all.
    let files = dir.path().join("data/tenants/acme/files");
    std::fs::create_dir_all(&files).expect("files");
    std::fs::write(
        files.join(format!("{XSS}.jsonl")),
        "not json 1\n{\"n\":2}\nnope <b>3</b>\n",
    )
    .expect("input");
    let bad = format!("name: bad-input\nsources:\n  in: {{type: file, path: \"{XSS}.jsonl\"}}\nsinks:\n  out: {{type: file, path: out.jsonl, inputs: [in]}}\n");
    s.ok("POST", "/v1/pipelines", Some(&acme), Some(bad.as_bytes()));
    write_tags(&files, 100);
    s.ok(
        "POST",
        "/v1/pipelines",
        Some(&acme),
        Some(tagging("meta.tag").as_bytes()),
    );
    let secret = "name: zeta-secret\nsources:\n  gen: {type: datagen, kind: people, rate: 5}\nsinks:\n  out: {type: file, path: z.jsonl, inputs: [gen]}\n";
    s.ok(
        "POST",
        "/v1/pipelines",
        Some(&zeta),
        Some(secret.as_bytes()),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, v) = s.call(
            "GET",
            "/v1/pipelines/bad-input/dead-letters",
            Some(&acme),
            None,
        );
        if v["letters"].as_array().map(Vec::len) == Some(2) {
            break;
        }
        assert!(Instant::now() < deadline, "no dead letters: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let out_dir = screenshots("signs_in_and_deploys");
    let out = Command::new("node")
        .arg(&script)
        .env("SLUICE_URL", &s.url)
        .env("SLUICE_CHROMIUM", &chromium)
        .env("TOKEN_ACME", &acme)
        .env("TOKEN_ZETA", &zeta)
        .env("OUT_DIR", &out_dir)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser test failed (screenshots in {}):\n{stdout}\n{}\nserver log:\n{}",
        out_dir.display(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "ok wrong token",
            "ok pipelines list",
            "ok pipeline page",
            "ok live tap",
            "ok dead letters",
            "ok plugins",
            "ok deploy",
            "ok replay",
            "ok second tenant",
            "ok no console errors",
        ]
    );
    for shot in [
        "01-login-error",
        "03-pipeline",
        "06-deploy-diagnostic",
        "08-replayed",
        "09-other-tenant",
    ] {
        assert!(out_dir.join(format!("{shot}.png")).is_file(), "{shot}");
    }
    // What the browser deployed is there, for acme only.
    assert_eq!(s.names(&acme), ["bad-input", "fixed", "orders", "tagging"]);
    // The replay the browser asked for delivered each refused event once.
    let counts = tagged_counts(&files);
    assert_eq!(counts.len(), 100, "every event delivered");
    assert!(counts.values().all(|c| *c == 1), "each once: {counts:?}");
    assert_eq!(s.names(&zeta), ["zeta-secret"]);
}

/// Numbered events, every fifth with `meta` a string: the `project` stage of
/// [`tagging`] with `meta.tag` refuses those (it cannot write into a
/// string), the one with `tag` takes every event.
fn write_tags(files: &Path, events: u64) {
    std::fs::create_dir_all(files).expect("files");
    let text: String = (0..events)
        .map(|i| {
            if i % 5 == 0 {
                format!("{{\"n\":{i},\"meta\":\"legacy\"}}\n")
            } else {
                format!("{{\"n\":{i},\"meta\":{{\"src\":\"web\"}}}}\n")
            }
        })
        .collect();
    std::fs::write(files.join("tags.jsonl"), text).expect("tags.jsonl");
}

fn tagging(field: &str) -> String {
    format!(
        "name: tagging\ncheckpoint_interval_ms: 200\nsources:\n  in: {{type: file, path: tags.jsonl}}\nstages:\n  tag:\n    plugin: project\n    inputs: [in]\n    params:\n      set:\n        {field}: \"'x'\"\nsinks:\n  out: {{type: file, path: tagged.jsonl, inputs: [tag]}}\n"
    )
}

/// How many times each `n` is in the tenant's `tagged.jsonl`.
fn tagged_counts(files: &Path) -> std::collections::BTreeMap<u64, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for line in std::fs::read_to_string(files.join("tagged.jsonl"))
        .expect("tagged.jsonl")
        .lines()
    {
        let v: Value = serde_json::from_str(line).expect("a JSON line");
        *counts.entry(v["n"].as_u64().expect("n")).or_default() += 1;
    }
    counts
}

impl Server {
    fn wait_state(&self, token: &str, name: &str, state: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, v) = self.call(
                "GET",
                &format!("/v1/pipelines/{name}/status"),
                Some(token),
                None,
            );
            if v["status"]["state"] == state {
                return;
            }
            assert!(Instant::now() < deadline, "{name} never {state}: {v}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn dead_letters_are_replayed_once_after_a_fix_and_purged_through_the_api_by_their_owner_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path());
    let acme = s.tenant("acme");
    let zeta = s.tenant("zeta");
    let reader = s.ok(
        "POST",
        "/v1/tenants/acme/tokens",
        Some(ADMIN),
        Some(br#"{"scope":"read"}"#),
    )["token"]
        .as_str()
        .expect("token")
        .to_string();
    let files = dir.path().join("data/tenants/acme/files");
    write_tags(&files, 100);
    s.ok(
        "POST",
        "/v1/pipelines",
        Some(&acme),
        Some(tagging("meta.tag").as_bytes()),
    );
    let running = "name: orders\nsources:\n  gen: {type: datagen, kind: people, rate: 20}\nsinks:\n  out: {type: file, path: orders.jsonl, inputs: [gen]}\n";
    s.ok(
        "POST",
        "/v1/pipelines",
        Some(&acme),
        Some(running.as_bytes()),
    );
    s.wait_state(&acme, "tagging", "finished");
    assert_eq!(tagged_counts(&files).len(), 80);

    // Hostile or wrong requests change nothing and say why.
    let replay = "/v1/pipelines/tagging/dead-letters/replay";
    let purge = "/v1/pipelines/tagging/dead-letters/purge";
    for (path, token, status, says) in [
        (
            format!("{replay}?stagee=tag"),
            &acme,
            400,
            "unknown query parameter `stagee`",
        ),
        (
            format!("{replay}?after=0"),
            &acme,
            400,
            "unknown query parameter `after`",
        ),
        (
            format!("{replay}?filter=value.n%20%3E"),
            &acme,
            400,
            "`filter`: ",
        ),
        (
            format!("{replay}?dry_run=yes"),
            &acme,
            400,
            "`dry_run` is `true` or `false`",
        ),
        (purge.to_string(), &acme, 400, "say which letters to purge"),
        (
            format!("{purge}?all=1"),
            &acme,
            400,
            "`all` is `true` or `false`",
        ),
        (
            format!("{replay}?to=nosuch"),
            &acme,
            400,
            "`to`: pipeline `tagging` has no stage or sink `nosuch`; it has ",
        ),
        (replay.to_string(), &reader, 403, "`deploy` scope"),
        (replay.to_string(), &zeta, 404, "no pipeline `tagging`"),
        (
            format!("{replay}?stagee=x"),
            &zeta,
            404,
            "no pipeline `tagging`",
        ),
        (
            format!("{purge}?all=true"),
            &zeta,
            404,
            "no pipeline `tagging`",
        ),
        (
            "/v1/pipelines/..%2Facme%2Ftagging/dead-letters/replay".to_string(),
            &acme,
            404,
            "no pipeline",
        ),
        (
            "/v1/pipelines/orders/dead-letters/replay".to_string(),
            &acme,
            409,
            "is running; stop it first",
        ),
        (
            "/v1/pipelines/orders/dead-letters/purge?all=true".to_string(),
            &acme,
            409,
            "is running; stop it first",
        ),
    ] {
        let (code, v) = s.call("POST", &path, Some(token), None);
        assert_eq!(code, status, "{path}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|e| e.contains(says)),
            "{path}: {v}"
        );
        assert!(
            !v.to_string().contains(&dir.path().display().to_string()),
            "no server path: {v}"
        );
    }
    let dry = s.ok("POST", &format!("{replay}?dry_run=true"), Some(&acme), None);
    assert_eq!(
        (&dry["run"], &dry["planned"]),
        (&json!(0), &json!({"tag": 20})),
        "{dry}"
    );
    assert_eq!(tagged_counts(&files).len(), 80, "a dry run sends nothing");

    // Deploy the fix (the run restarts from its checkpoint and finishes
    // again), then replay: each refused event reaches the output once.
    s.ok(
        "POST",
        "/v1/pipelines",
        Some(&acme),
        Some(tagging("tag").as_bytes()),
    );
    s.wait_state(&acme, "tagging", "finished");
    let done = s.ok("POST", replay, Some(&acme), None);
    assert_eq!(done["run"], 1, "{done}");
    assert_eq!(done["outcomes"], json!({"delivered": 20}), "{done}");
    assert_eq!(
        (&done["letters_listed"], &done["letters_total"]),
        (&json!(20), &json!(20))
    );
    let counts = tagged_counts(&files);
    assert_eq!(counts.len(), 100, "every event delivered");
    assert!(counts.values().all(|c| *c == 1), "each once: {counts:?}");
    // Again: nothing more is sent.
    let twice = s.ok("POST", replay, Some(&acme), None);
    assert_eq!(
        (&twice["run"], &twice["already_replayed"]),
        (&json!(0), &json!(20)),
        "{twice}"
    );
    assert_eq!(tagged_counts(&files), counts);
    let page = s.ok(
        "GET",
        "/v1/pipelines/tagging/dead-letters?limit=500",
        Some(&acme),
        None,
    );
    let letters = page["letters"].as_array().expect("letters");
    assert_eq!(letters.len(), 20);
    assert!(
        letters.iter().all(|l| l["replayed"] == "delivered"),
        "{page}"
    );

    // Purge what was replayed; the pipeline starts again on the shorter file.
    let dry = s.ok(
        "POST",
        &format!("{purge}?replayed=true&dry_run=true"),
        Some(&acme),
        None,
    );
    assert_eq!(
        (&dry["removed"], &dry["kept"]),
        (&json!(20), &json!(0)),
        "{dry}"
    );
    let purged = s.ok("POST", &format!("{purge}?replayed=true"), Some(&acme), None);
    assert_eq!(
        (&purged["removed"], &purged["bytes_after"]),
        (&json!(20), &json!(0)),
        "{purged}"
    );
    let page = s.ok(
        "GET",
        "/v1/pipelines/tagging/dead-letters",
        Some(&acme),
        None,
    );
    assert_eq!(page["letters"], json!([]), "{page}");
    s.ok("POST", "/v1/pipelines/tagging/start", Some(&acme), None);
    s.wait_state(&acme, "tagging", "finished");
    assert_eq!(
        tagged_counts(&files),
        counts,
        "the rerun reads and writes nothing again"
    );
}
