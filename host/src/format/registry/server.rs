//! An embedded Schema Registry speaking the subset of Confluent's REST API
//! that serializers and operators use: subjects, versions, ids, lookups and
//! compatibility settings (BACKWARD, FORWARD, FULL, NONE and their
//! `_TRANSITIVE` forms), checked with Avro schema resolution. State is one
//! JSON file in the data directory, replaced atomically on every change.
//!
//! Exposure: request heads and bodies are bounded (see [`super::http`]; a
//! body over [`Options::max_body_bytes`] is answered 413 from its
//! `Content-Length`, without reading it), and with a secret configured every request
//! (or, with `public_reads`, every non-GET request) must carry it as a bearer
//! token or as the password of HTTP basic auth, else 401. Without a secret
//! the registry only listens on a loopback address.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Result};
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::http::{BodyError, Conn, Head, HeadError};
use super::store::{Compatibility, Registered, Store};

/// The default cap on a request body: real schemas are a few KiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1 << 20;

/// How the registry is exposed.
#[derive(Clone)]
pub struct Options {
    /// Larger request bodies get 413.
    pub max_body_bytes: u64,
    /// The shared secret clients must present; `None` allows only a
    /// loopback listen address.
    pub token: Option<String>,
    /// With a secret: let GET requests through without it.
    pub public_reads: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            token: None,
            public_reads: false,
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("token", &self.token.as_ref().map(|_| "<secret>"))
            .field("public_reads", &self.public_reads)
            .finish()
    }
}

/// A running registry.
pub struct Registry {
    listener: TcpListener,
    store: Arc<Mutex<Store>>,
    options: Arc<Options>,
    /// The address it listens on.
    pub addr: SocketAddr,
}

type Reply = (u16, Value);

fn error(status: u16, code: u32, message: impl Into<String>) -> Reply {
    (
        status,
        json!({"error_code": code, "message": message.into()}),
    )
}

impl Registry {
    /// Binds `listen` (port 0 picks one) with state in `dir`, default options
    /// (no secret, so `listen` must be a loopback address).
    pub fn bind(listen: &str, dir: &Path) -> Result<Self> {
        Self::bind_with(listen, dir, Options::default())
    }

    /// Binds `listen` with state in `dir`, exposed as `options` says.
    pub fn bind_with(listen: &str, dir: &Path, options: Options) -> Result<Self> {
        if options.token.as_deref().is_some_and(str::is_empty) {
            bail!("schema registry: the authentication token is empty");
        }
        let store = Store::open(dir)?;
        let listener = TcpListener::bind(listen)
            .map_err(|e| anyhow!("schema registry: cannot listen on {listen}: {e}"))?;
        let addr = listener.local_addr()?;
        if options.token.is_none() && !addr.ip().is_loopback() {
            bail!("schema registry: refusing to listen on {addr} without authentication, since anyone who can reach it could delete or replace schemas; pass --auth-token-file FILE (or set SLUICE_REGISTRY_TOKEN), or listen on a loopback address such as 127.0.0.1");
        }
        Ok(Self {
            listener,
            store: Arc::new(Mutex::new(store)),
            options: Arc::new(options),
            addr,
        })
    }

    /// Serves requests on `threads` threads until the process ends.
    pub fn serve(self, threads: usize) -> Result<()> {
        let threads = threads.max(1);
        // Accepting blocks while every worker is busy and the queue is full,
        // so connections wait in the kernel's backlog, not in memory here.
        let (tx, rx) = std::sync::mpsc::sync_channel::<TcpStream>(threads);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            let store = self.store.clone();
            let options = self.options.clone();
            std::thread::Builder::new()
                .name(format!("registry-{i}"))
                .spawn(move || loop {
                    let next = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    match next {
                        Ok(stream) => handle(Conn::new(stream), &store, &options),
                        Err(_) => return,
                    }
                })?;
        }
        for stream in self.listener.incoming() {
            match stream {
                Ok(s) => {
                    if tx.send(s).is_err() {
                        bail!("schema registry: every request thread has stopped");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "registry: accept failed"),
            }
        }
        Ok(())
    }

    /// Serves in the background (tests and embedding).
    pub fn spawn(self, threads: usize) -> SocketAddr {
        let addr = self.addr;
        std::thread::spawn(move || self.serve(threads));
        addr
    }
}

/// Compares digests rather than the secrets, so the time taken says nothing
/// about how much of a guess was right.
fn same_secret(given: &str, token: &str) -> bool {
    Sha256::digest(given.as_bytes()) == Sha256::digest(token.as_bytes())
}

/// Whether a request with `head` may proceed under `options`.
fn authorized(head: &Head, options: &Options) -> bool {
    let Some(token) = options.token.as_deref() else {
        return true;
    };
    if options.public_reads && matches!(head.method.as_str(), "GET" | "HEAD") {
        return true;
    }
    let Some(value) = head.header("authorization").map(str::trim) else {
        return false;
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("Bearer") {
        return same_secret(rest, token);
    }
    if scheme.eq_ignore_ascii_case("Basic") {
        // Any user name; the password is the token (what Confluent clients
        // send from `basic.auth.user.info` or `http://user:token@host`).
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
            return false;
        };
        let Ok(text) = String::from_utf8(decoded) else {
            return false;
        };
        return text
            .split_once(':')
            .is_some_and(|(_, password)| same_secret(password, token));
    }
    false
}

const NO_HEADERS: &[(&str, &str)] = &[];

fn handle(mut conn: Conn, store: &Mutex<Store>, options: &Options) {
    let head = match conn.head() {
        Ok(h) => h,
        Err(HeadError::Gone) => return,
        Err(HeadError::Refuse(status, why)) => {
            return conn.respond(text(error(status, u32::from(status), why)), NO_HEADERS)
        }
    };
    let (method, url) = (head.method.as_str(), head.target.as_str());
    if !authorized(&head, options) {
        tracing::warn!(%method, %url, remote = %head.remote, "registry request refused: no valid credentials");
        return conn.respond(
            text(error(401, 40101, "Unauthorized: this registry needs its token, as `Authorization: Bearer TOKEN` or as the basic-auth password")),
            &[("WWW-Authenticate", "Basic realm=\"sluice schema registry\"")],
        );
    }
    let bytes = match conn.body(&head, options.max_body_bytes) {
        Ok(b) => b,
        Err(BodyError::Gone) => return,
        Err(BodyError::Refuse(status, why)) => {
            return conn.respond(text(error(status, u32::from(status), why)), NO_HEADERS)
        }
        Err(BodyError::TooLarge { len, max }) => {
            tracing::warn!(%method, %url, remote = %head.remote, len, limit = max, "registry request refused: body too large");
            return conn.respond(
                text(error(
                    413,
                    41301,
                    format!("request body of {len} bytes is larger than this registry's limit of {max} bytes"),
                )),
                NO_HEADERS,
            );
        }
    };
    let path = url.split('?').next().unwrap_or("");
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode_segment)
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let reply = if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(Value::Null)
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| error(400, 400, format!("request body is not JSON: {e}")))
    };
    let (status, reply) = match reply {
        Err(r) => r,
        Ok(body) => match store.lock() {
            Ok(mut s) => route(&mut s, method, &segs, &body),
            Err(_) => error(500, 50001, "registry state poisoned"),
        },
    };
    tracing::debug!(%method, %url, status, "registry request");
    conn.respond((status, reply.to_string()), NO_HEADERS);
}

fn text((status, reply): Reply) -> (u16, String) {
    (status, reply.to_string())
}

fn decode_segment(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn schema_text(body: &Value) -> Result<&str, Reply> {
    if let Some(t) = body.get("schemaType").and_then(Value::as_str) {
        if !t.eq_ignore_ascii_case("AVRO") {
            return Err(error(
                422,
                42201,
                format!("schemaType {t} is not supported; this registry holds Avro schemas"),
            ));
        }
    }
    body.get("schema")
        .and_then(Value::as_str)
        .ok_or_else(|| error(422, 42201, "expected a JSON body with a `schema` string"))
}

fn saved(s: &Store, reply: Reply) -> Reply {
    match s.save() {
        Ok(()) => reply,
        Err(e) => error(500, 50001, format!("saving the registry: {e:#}")),
    }
}

fn version_index(s: &Store, subject: &str, v: &str) -> Result<(u32, usize), Reply> {
    let Some(ids) = s.state.subjects.get(subject) else {
        return Err(error(404, 40401, format!("Subject '{subject}' not found.")));
    };
    let n = if v == "latest" || v == "-1" {
        ids.len()
    } else {
        v.parse::<usize>()
            .map_err(|_| error(422, 42202, format!("invalid version `{v}`")))?
    };
    match n.checked_sub(1).and_then(|i| ids.get(i)) {
        Some(id) => Ok((*id, n)),
        None => Err(error(404, 40402, format!("Version {v} not found."))),
    }
}

fn described(s: &Store, subject: &str, id: u32, version: usize) -> Value {
    json!({
        "subject": subject,
        "version": version,
        "id": id,
        "schema": s.state.schemas.get(&id).cloned().unwrap_or_default(),
    })
}

fn route(s: &mut Store, method: &str, segs: &[&str], body: &Value) -> Reply {
    match (method, segs) {
        ("GET", []) => (200, json!({})),
        ("GET", ["subjects"]) => (200, json!(s.state.subjects.keys().collect::<Vec<_>>())),
        ("GET", ["schemas", "types"]) => (200, json!(["AVRO"])),
        ("GET", ["schemas", "ids", id]) | ("GET", ["schemas", "ids", id, "schema"]) => {
            let Some(text) = id.parse::<u32>().ok().and_then(|i| s.state.schemas.get(&i)) else {
                return error(404, 40403, format!("Schema {id} not found"));
            };
            if segs.len() == 4 {
                let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
                return (200, v);
            }
            (200, json!({"schema": text}))
        }
        ("GET", ["schemas", "ids", id, "versions"]) => {
            let Ok(id) = id.parse::<u32>() else {
                return error(404, 40403, format!("Schema {id} not found"));
            };
            let found: Vec<Value> = s
                .state
                .subjects
                .iter()
                .flat_map(|(subject, ids)| {
                    ids.iter()
                        .enumerate()
                        .filter(move |(_, i)| **i == id)
                        .map(move |(v, _)| json!({"subject": subject, "version": v + 1}))
                })
                .collect();
            if found.is_empty() {
                return error(404, 40403, format!("Schema {id} not found"));
            }
            (200, Value::Array(found))
        }
        ("GET", ["subjects", subject, "versions"]) => match s.state.subjects.get(*subject) {
            Some(ids) => (200, json!((1..=ids.len()).collect::<Vec<_>>())),
            None => error(404, 40401, format!("Subject '{subject}' not found.")),
        },
        ("GET", ["subjects", subject, "versions", v]) => match version_index(s, subject, v) {
            Ok((id, n)) => (200, described(s, subject, id, n)),
            Err(r) => r,
        },
        ("GET", ["subjects", subject, "versions", v, "schema"]) => {
            match version_index(s, subject, v) {
                Ok((id, _)) => (
                    200,
                    serde_json::from_str(s.state.schemas.get(&id).map_or("null", String::as_str))
                        .unwrap_or(Value::Null),
                ),
                Err(r) => r,
            }
        }
        ("POST", ["subjects", subject, "versions"]) => {
            let text = match schema_text(body) {
                Ok(t) => t,
                Err(r) => return r,
            };
            match s.register(subject, text) {
                Registered::Ok { id, version } => {
                    saved(s, (200, json!({"id": id, "version": version})))
                }
                Registered::Invalid(m) => error(422, 42201, m),
                Registered::Incompatible(m) => error(
                    409,
                    409,
                    format!("Schema being registered is incompatible with an earlier schema for subject \"{subject}\": {m}"),
                ),
            }
        }
        ("POST", ["subjects", subject]) => {
            let text = match schema_text(body) {
                Ok(t) => t,
                Err(r) => return r,
            };
            if !s.state.subjects.contains_key(*subject) {
                return error(404, 40401, format!("Subject '{subject}' not found."));
            }
            match s.lookup(subject, text) {
                Ok(Some((id, v))) => (200, described(s, subject, id, v)),
                Ok(None) => error(404, 40403, "Schema not found"),
                Err(m) => error(422, 42201, m),
            }
        }
        ("DELETE", ["subjects", subject]) => match s.state.subjects.remove(*subject) {
            Some(ids) => {
                s.state.subject_compatibility.remove(*subject);
                saved(s, (200, json!((1..=ids.len()).collect::<Vec<_>>())))
            }
            None => error(404, 40401, format!("Subject '{subject}' not found.")),
        },
        ("POST", ["compatibility", "subjects", subject, "versions", v]) => {
            let text = match schema_text(body) {
                Ok(t) => t,
                Err(r) => return r,
            };
            let new = match apache_avro::Schema::parse_str(text) {
                Ok(n) => n,
                Err(e) => return error(422, 42201, format!("invalid Avro schema: {e}")),
            };
            let against: Vec<apache_avro::Schema> = if *v == "latest" {
                s.state
                    .subjects
                    .get(*subject)
                    .map(|ids| {
                        ids.iter()
                            .filter_map(|id| s.state.schemas.get(id))
                            .filter_map(|t| apache_avro::Schema::parse_str(t).ok())
                            .collect()
                    })
                    .unwrap_or_default()
            } else {
                match version_index(s, subject, v) {
                    Ok((id, _)) => s
                        .state
                        .schemas
                        .get(&id)
                        .and_then(|t| apache_avro::Schema::parse_str(t).ok())
                        .into_iter()
                        .collect(),
                    Err(r) => return r,
                }
            };
            let result = s.level(subject).check(&new, &against);
            (
                200,
                json!({"is_compatible": result.is_ok(), "messages": result.err().into_iter().collect::<Vec<_>>()}),
            )
        }
        ("GET", ["config"]) => (
            200,
            json!({"compatibilityLevel": s.state.compatibility.name()}),
        ),
        ("GET", ["config", subject]) => match s.state.subject_compatibility.get(*subject) {
            Some(c) => (200, json!({"compatibilityLevel": c.name()})),
            None => error(
                404,
                40408,
                format!("Subject '{subject}' does not have subject-level compatibility configured"),
            ),
        },
        ("PUT", ["config"]) | ("PUT", ["config", _]) => {
            let Some(level) = body
                .get("compatibility")
                .or_else(|| body.get("compatibilityLevel"))
                .and_then(Value::as_str)
                .and_then(Compatibility::parse)
            else {
                return error(
                    422,
                    42203,
                    "expected {\"compatibility\": BACKWARD | BACKWARD_TRANSITIVE | FORWARD | FORWARD_TRANSITIVE | FULL | FULL_TRANSITIVE | NONE}",
                );
            };
            match segs {
                [_, subject] => {
                    s.state
                        .subject_compatibility
                        .insert((*subject).to_string(), level);
                }
                _ => s.state.compatibility = level,
            }
            saved(s, (200, json!({"compatibility": level.name()})))
        }
        ("DELETE", ["config", subject]) => match s.state.subject_compatibility.remove(*subject) {
            Some(c) => saved(s, (200, json!({"compatibilityLevel": c.name()}))),
            None => error(404, 40401, format!("Subject '{subject}' not found.")),
        },
        _ => error(
            404,
            404,
            format!(
                "{method} /{} is not part of this registry's API",
                segs.join("/")
            ),
        ),
    }
}
