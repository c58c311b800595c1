//! An embedded Schema Registry speaking the subset of Confluent's REST API
//! that serializers and operators use: subjects, versions, ids, lookups and
//! compatibility settings (BACKWARD, FORWARD, FULL, NONE and their
//! `_TRANSITIVE` forms), checked with Avro schema resolution. State is one
//! JSON file in the data directory, replaced atomically on every change.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Result};
use serde_json::{json, Value};

use super::store::{Compatibility, Registered, Store};

/// A running registry.
pub struct Registry {
    server: Arc<tiny_http::Server>,
    store: Arc<Mutex<Store>>,
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
    /// Binds `listen` (port 0 picks one) with state in `dir`.
    pub fn bind(listen: &str, dir: &Path) -> Result<Self> {
        let store = Store::open(dir)?;
        let server = tiny_http::Server::http(listen)
            .map_err(|e| anyhow!("schema registry: cannot listen on {listen}: {e}"))?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| anyhow!("schema registry: not a TCP address"))?;
        Ok(Self {
            server: Arc::new(server),
            store: Arc::new(Mutex::new(store)),
            addr,
        })
    }

    /// Serves requests on `threads` threads until the process ends.
    pub fn serve(self, threads: usize) -> Result<()> {
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let server = self.server.clone();
            let store = self.store.clone();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("registry-{i}"))
                    .spawn(move || {
                        while let Ok(req) = server.recv() {
                            handle(req, &store);
                        }
                    })?,
            );
        }
        for h in handles {
            let _ = h.join();
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

fn handle(mut req: tiny_http::Request, store: &Mutex<Store>) {
    let method = req.method().as_str().to_string();
    let url = req.url().to_string();
    let mut body = String::new();
    let (status, reply) = if req.as_reader().read_to_string(&mut body).is_err() {
        error(400, 400, "unreadable request body")
    } else {
        let path = url.split('?').next().unwrap_or("");
        let segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(decode_segment)
            .collect();
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        let body: Value = if body.trim().is_empty() {
            Value::Null
        } else {
            match serde_json::from_str(&body) {
                Ok(v) => v,
                Err(e) => {
                    respond(
                        req,
                        error(400, 400, format!("request body is not JSON: {e}")),
                    );
                    return;
                }
            }
        };
        match store.lock() {
            Ok(mut s) => route(&mut s, &method, &segs, &body),
            Err(_) => error(500, 50001, "registry state poisoned"),
        }
    };
    tracing::debug!(%method, %url, status, "registry request");
    respond(req, (status, reply));
}

fn respond(req: tiny_http::Request, (status, reply): Reply) {
    let header = tiny_http::Header::from_bytes(
        &b"Content-Type"[..],
        &b"application/vnd.schemaregistry.v1+json"[..],
    )
    .ok();
    let mut resp = tiny_http::Response::from_string(reply.to_string()).with_status_code(status);
    if let Some(h) = header {
        resp = resp.with_header(h);
    }
    let _ = req.respond(resp);
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
