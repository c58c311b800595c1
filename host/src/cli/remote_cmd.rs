//! The remote CLI: `sluice --server URL ...` talks to `sluice serve` with
//! the token in `SLUICE_TOKEN`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// The environment variable holding the tenant token.
pub const TOKEN_ENV: &str = "SLUICE_TOKEN";

/// A server and the token to use with it.
pub struct Remote {
    url: String,
    token: String,
    agent: ureq::Agent,
}

/// Names a PEM file of the CA that signed an HTTPS server's certificate,
/// trusted instead of the built-in roots (a server with its own CA).
pub const CA_ENV: &str = "SLUICE_SERVER_CA";

/// How the CLI checks an HTTPS server: against [`CA_ENV`]'s certificates
/// when it is set, else the built-in web roots.
fn tls_config() -> Result<ureq::tls::TlsConfig> {
    let builder = ureq::tls::TlsConfig::builder();
    let Some(path) = std::env::var_os(CA_ENV).filter(|p| !p.is_empty()) else {
        return Ok(builder.build());
    };
    let path = std::path::PathBuf::from(path);
    let pem =
        std::fs::read(&path).with_context(|| format!("{CA_ENV}: reading {}", path.display()))?;
    let certs = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{CA_ENV}: {} is not PEM", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{CA_ENV}: {} holds no certificate", path.display());
    }
    Ok(builder
        .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
        .build())
}

impl Remote {
    /// `url` with the token from `SLUICE_TOKEN`.
    pub fn new(url: &str) -> Result<Self> {
        let token = std::env::var(TOKEN_ENV)
            .ok()
            .filter(|t| !t.trim().is_empty())
            .with_context(|| format!("set {TOKEN_ENV} to a tenant token (the operator creates them: POST /v1/tenants/NAME/tokens)"))?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .tls_config(tls_config()?)
            .build()
            .new_agent();
        Ok(Self {
            url: url.trim_end_matches('/').to_string(),
            token: token.trim().to_string(),
            agent,
        })
    }

    /// (status, JSON body).
    fn call(&self, method: &str, path: &str, body: Option<&[u8]>) -> Result<(u16, Value)> {
        let url = format!("{}{path}", self.url);
        let auth = format!("Bearer {}", self.token);
        let resp = match method {
            "GET" => self.agent.get(&url).header("Authorization", &auth).call(),
            "DELETE" => self
                .agent
                .delete(&url)
                .header("Authorization", &auth)
                .call(),
            "PUT" => self
                .agent
                .put(&url)
                .header("Authorization", &auth)
                .send(body.unwrap_or_default()),
            _ => {
                let r = self.agent.post(&url).header("Authorization", &auth);
                match body {
                    Some(b) => r.send(b),
                    None => r.send_empty(),
                }
            }
        };
        let mut resp = resp.with_context(|| format!("{method} {url}"))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_string()
            .context("reading the server's answer")?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    /// Streams the body of a 2xx answer to `GET path` into `to`; returns
    /// its bytes. Otherwise the server's error.
    pub(super) fn download(&self, path: &str, to: &mut dyn std::io::Write) -> Result<u64> {
        let url = format!("{}{path}", self.url);
        let mut resp = self
            .agent
            .get(&url)
            .header("Authorization", &format!("Bearer {}", self.token))
            .call()
            .with_context(|| format!("GET {url}"))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let text = resp
                .body_mut()
                .with_config()
                .limit(1 << 20)
                .read_to_string()
                .unwrap_or_default();
            return Err(refusal(status, text));
        }
        let mut reader = resp.body_mut().with_config().limit(u64::MAX).reader();
        std::io::copy(&mut reader, to).context("reading the file from the server")
    }

    /// The body of a 2xx answer; otherwise the server's error (and
    /// diagnostics) on stderr and `Err`.
    pub(super) fn ok(&self, method: &str, path: &str, body: Option<&[u8]>) -> Result<Value> {
        let (status, v) = self.call(method, path, body)?;
        if (200..300).contains(&status) {
            return Ok(v);
        }
        if let Some(diags) = v["diagnostics"].as_array() {
            for d in diags {
                eprintln!("{}", d.as_str().unwrap_or_default());
            }
        }
        let msg = v["error"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string());
        bail!("{status}: {msg}")
    }
}

/// A non-2xx answer's body as an error: its `error` field, else the text.
fn refusal(status: u16, text: String) -> anyhow::Error {
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    let msg = v["error"]
        .as_str()
        .map_or_else(|| v.to_string(), str::to_string);
    anyhow::anyhow!("{status}: {msg}")
}

fn state_line(v: &Value) -> String {
    let st = &v["status"];
    format!(
        "{:<24} {:<8} {:<9} {:>10} {:>10} {:>6} {:>10}",
        v["name"].as_str().unwrap_or_default(),
        v["desired"].as_str().unwrap_or_default(),
        st["state"].as_str().unwrap_or_default(),
        st["events_in"].as_u64().unwrap_or(0),
        st["events_out"].as_u64().unwrap_or(0),
        st["dead_letters"].as_u64().unwrap_or(0),
        v["last_checkpoint"]
            .as_u64()
            .map_or("-".to_string(), |c| c.to_string()),
    )
}

const HEADER: &str =
    "NAME                     DESIRED  STATE             IN        OUT   DEAD CHECKPOINT";

/// `sluice --server URL plugin push FILE [--name NAME]`.
pub fn push(url: &str, wasm: &Path, name: Option<&str>) -> Result<ExitCode> {
    let r = Remote::new(url)?;
    let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let stem = wasm.file_stem().map(|s| s.to_string_lossy().into_owned());
    let name = name.map(str::to_string).or(stem).unwrap_or_default();
    let v = r.ok("POST", &format!("/v1/plugins?name={name}"), Some(&bytes))?;
    println!(
        "{} sha256:{} ({}, {} bytes)",
        v["name"].as_str().unwrap_or_default(),
        v["sha256"].as_str().unwrap_or_default(),
        v["world"].as_str().unwrap_or_default(),
        v["size"]
    );
    Ok(ExitCode::SUCCESS)
}

/// `sluice --server URL deploy FILE`: creates or updates the pipeline named
/// by the file's `name:` (else its file name).
pub fn deploy(url: &str, file: &Path) -> Result<ExitCode> {
    let r = Remote::new(url)?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let declared = crate::config::parse_yaml(&text).ok().and_then(|root| {
        root.get("name")
            .and_then(|n| n.as_str())
            .map(str::to_string)
    });
    let name = declared
        .or_else(|| file.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let v = r.ok(
        "PUT",
        &format!("/v1/pipelines/{name}"),
        Some(text.as_bytes()),
    )?;
    println!("{HEADER}\n{}", state_line(&v));
    let update = &v["update"];
    match update["kind"].as_str() {
        Some("hot-swapped") => {
            let stages: Vec<&str> = update["stages"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            println!(
                "hot-swapped: {} (each at its next batch; no restart)",
                stages.join(", ")
            );
        }
        Some(kind) => println!("{kind}"),
        None => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// A log line as the terminal gets it: control characters (a plugin's
/// escape sequences, say) escaped.
fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() && c != '\t' {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// `sluice --server URL logs NAME [--since N] [--follow]`.
pub fn logs(url: &str, name: &str, since: u64, follow: bool) -> Result<ExitCode> {
    let r = Remote::new(url)?;
    let mut since = since;
    loop {
        let v = r.ok(
            "GET",
            &format!("/v1/pipelines/{name}/logs?since={since}&limit=1000"),
            None,
        )?;
        if let Some(n) = v["dropped"].as_u64().filter(|n| *n > 0) {
            println!("… {n} older lines were pushed out before they were read");
        }
        let lines = v["lines"].as_array().cloned().unwrap_or_default();
        for l in &lines {
            let ms = l["time_ms"].as_u64().unwrap_or(0);
            let time = crate::dlq::store::utc(i64::try_from(ms).unwrap_or(0));
            println!(
                "{time} {:>5} {}",
                l["level"].as_str().unwrap_or_default(),
                printable(l["message"].as_str().unwrap_or_default())
            );
        }
        since = v["next"].as_u64().unwrap_or(since);
        if !follow {
            return Ok(ExitCode::SUCCESS);
        }
        if lines.len() < 1000 {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// `sluice --server URL dead-letters NAME`: pages through the API until
/// `limit` letters (0: all) or the last checkpoint's end.
pub fn dead_letters(
    url: &str,
    name: &str,
    select: &super::dlq_cmd::SelectArgs,
    limit: usize,
    json: bool,
) -> Result<ExitCode> {
    let r = Remote::new(url)?;
    let selection = select.query_string();
    let (mut after, mut printed) = (0u64, 0usize);
    loop {
        let page = match limit {
            0 => 500,
            n => (n - printed).min(500),
        };
        let v = r.ok(
            "GET",
            &format!("/v1/pipelines/{name}/dead-letters?after={after}&limit={page}{selection}"),
            None,
        )?;
        for b in v["bad_lines"].as_array().into_iter().flatten() {
            eprintln!(
                "line at byte {} ({} bytes): {}",
                b["offset"],
                b["len"],
                printable(b["error"].as_str().unwrap_or_default())
            );
        }
        for l in v["letters"].as_array().into_iter().flatten() {
            if json {
                println!("{l}");
            } else {
                println!(
                    "{}  {}  {}  {}  {}",
                    l["id"].as_str().unwrap_or_default(),
                    l["kind"].as_str().unwrap_or_default(),
                    printable(l["stage"].as_str().unwrap_or_default()),
                    printable(&cut(l["reason"].as_str().unwrap_or_default(), 120)),
                    printable(&cut(&l["value"].to_string(), 120)),
                );
            }
            printed += 1;
        }
        let next = v["next"].as_u64().unwrap_or(after);
        if v["complete"] == true || (limit > 0 && printed >= limit) || next == after {
            if !json && printed == 0 {
                eprintln!("no dead letters (up to the last checkpoint) match");
            }
            return Ok(ExitCode::SUCCESS);
        }
        after = next;
    }
}

/// `text` cut to at most `max` characters, marked when cut.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// `sluice --server URL ps`.
pub fn ps(url: &str) -> Result<ExitCode> {
    let r = Remote::new(url)?;
    let v = r.ok("GET", "/v1/pipelines", None)?;
    println!("{HEADER}");
    for p in v["pipelines"].as_array().into_iter().flatten() {
        println!("{}", state_line(p));
    }
    Ok(ExitCode::SUCCESS)
}

/// `sluice --server URL status NAME`: the full status as JSON.
pub fn status(url: &str, name: &str) -> Result<ExitCode> {
    let r = Remote::new(url)?;
    let v = r.ok("GET", &format!("/v1/pipelines/{name}"), None)?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(ExitCode::SUCCESS)
}

/// `sluice --server URL start|stop|pause NAME`.
pub fn act(url: &str, name: &str, action: &str) -> Result<ExitCode> {
    let r = Remote::new(url)?;
    let v = r.ok("POST", &format!("/v1/pipelines/{name}/{action}"), None)?;
    println!("{HEADER}\n{}", state_line(&v));
    Ok(ExitCode::SUCCESS)
}

/// `sluice --server URL rm NAME`.
pub fn rm(url: &str, name: &str) -> Result<ExitCode> {
    let r = Remote::new(url)?;
    r.ok("DELETE", &format!("/v1/pipelines/{name}"), None)?;
    println!("deleted {name}");
    Ok(ExitCode::SUCCESS)
}

/// `sluice --server URL tap PIPELINE[.STAGE]` (`staged`: `PIPELINE STAGE`,
/// the stage in `args`): the server's live tap (`GET
/// /v1/pipelines/NAME/tap`, Server-Sent Events) printed as the same JSON
/// lines as a local tap. A stream the server ends at its time limit (or a
/// connection it closes) is opened again; the pipeline stopping ends the
/// command.
pub fn tap(
    url: &str,
    target: &str,
    staged: bool,
    args: &super::tap_cmd::TapArgs<'_>,
) -> Result<ExitCode> {
    use crate::pipeline::tap::percent_encode;
    use std::io::{BufRead, BufReader, Write};

    let r = Remote::new(url)?;
    let (pipeline, component) = if staged {
        (target.to_string(), args.component.to_string())
    } else {
        split_target(&r, target)?
    };
    let args = super::tap_cmd::TapArgs {
        component: &component,
        ..*args
    };
    let pipeline = pipeline.as_str();
    // No overall timeout: the stream lasts; the server sends a comment
    // every 15 s of quiet and ends it after its `max_seconds`.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .tls_config(tls_config()?)
        .build()
        .new_agent();
    let mut path = format!(
        "/v1/pipelines/{}/tap?rate={}",
        percent_encode(pipeline),
        args.rate
    );
    // Without one, the server's 400 lists the sources and stages.
    if !args.component.is_empty() {
        path.push_str(&format!("&component={}", percent_encode(args.component)));
    }
    if let Some(f) = args.filter {
        path.push_str(&format!("&filter={}", percent_encode(f)));
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut shown = 0u64;
    let mut told_rate = false;
    loop {
        let resp = agent
            .get(format!("{}{path}", r.url))
            .header("Authorization", format!("Bearer {}", r.token))
            .call()
            .with_context(|| format!("GET {}{path}", r.url))?;
        let status = resp.status().as_u16();
        if status != 200 {
            let text = resp
                .into_body()
                .with_config()
                .limit(1 << 20)
                .read_to_string()
                .unwrap_or_default();
            return Err(refusal(status, text));
        }
        let reader = BufReader::new(resp.into_body().into_reader());
        let (mut event, mut data) = (String::new(), String::new());
        let mut ended = None;
        for line in reader.lines() {
            // A connection the server cut (its 120 s bound) is opened again.
            let Ok(line) = line else { break };
            if let Some(v) = line.strip_prefix("event:") {
                event = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
            } else if line.is_empty() && !data.is_empty() {
                let v: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                match event.as_str() {
                    "" => {
                        writeln!(out, "{data}")?;
                        out.flush()?;
                        shown += 1;
                        if args.limit > 0 && shown >= args.limit {
                            return Ok(ExitCode::SUCCESS);
                        }
                    }
                    "open" => {
                        let granted = v["rate"].as_u64().unwrap_or(0);
                        if granted < u64::from(args.rate) && !told_rate {
                            eprintln!("tap: the server caps the rate at {granted} events/s");
                            told_rate = true;
                        }
                    }
                    "lost" => eprintln!(
                        "tap: {} events lost so far (this reader fell behind)",
                        v["lost"]
                    ),
                    "end" => ended = v["reason"].as_str().map(str::to_string),
                    _ => {}
                }
                event.clear();
                data.clear();
            }
        }
        if ended.as_deref() == Some("stopped") {
            eprintln!("tap: pipeline `{pipeline}` stopped");
            return Ok(ExitCode::SUCCESS);
        }
        // Not a tight loop against a server that keeps closing at once.
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `PIPELINE[.STAGE]` as (pipeline, stage or ""): pipeline and stage names
/// may both hold dots, so the pipeline is the longest of the caller's
/// pipelines the text starts with.
fn split_target(r: &Remote, target: &str) -> Result<(String, String)> {
    if !target.contains('.') {
        return Ok((target.to_string(), String::new()));
    }
    let v = r.ok("GET", "/v1/pipelines", None)?;
    let best = v["pipelines"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .filter(|p| target == *p || target.starts_with(&format!("{p}.")))
        .max_by_key(|p| p.len());
    Ok(match best {
        Some(p) => (
            p.to_string(),
            target.get(p.len() + 1..).unwrap_or_default().to_string(),
        ),
        // None of the caller's: the first dot, and the server's 404.
        None => match target.split_once('.') {
            Some((p, c)) => (p.to_string(), c.to_string()),
            None => (target.to_string(), String::new()),
        },
    })
}
