//! Outbound HTTP for custom connectors (`sluice:plugin/http`): what a
//! pipeline grants, and the host side of `send`, which refuses any host
//! outside the grant and bounds every request in time and size.
//!
//! A small host import rather than `wasi:http` through wasmtime-wasi-http:
//! that crate needs wasmtime's `async` feature (a rebuild of wasmtime and of
//! everything on it), wasmtime-wasi with its cap-std family, and an async
//! runtime per call, while `ureq` is already in the tree. docs/connectors.md
//! says what a connector gives up (streaming bodies, wasi:http guest crates).

use std::io::Read;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::bindings::v2::source::sluice::plugin::http;
use super::host::HostState;

/// What a connector may reach: `host:port` pairs (`api.example.com:443`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Hosts the connector may send HTTP requests to, each `host:port`.
    #[serde(default)]
    pub http: Vec<String>,
    /// The connector may read the time (`sluice:plugin/clock`).
    #[serde(default)]
    pub clock: bool,
}

impl Grants {
    /// Checks every entry is `host:port`; the error names the entry.
    pub fn check(&self) -> Result<(), String> {
        for entry in &self.http {
            parse_host_port(entry).map_err(|why| {
                format!("grants.http entry `{entry}` {why}; write `host:port`, e.g. `api.example.com:443`")
            })?;
        }
        Ok(())
    }

    /// The hosts granted: the host refuses every request outside them.
    pub fn endpoints(&self) -> crate::connector::endpoint::Reach {
        use crate::connector::endpoint;
        endpoint::all(self.http.iter().map(|g| endpoint::list(g, None)))
    }

    /// True when `host:port` is granted (host names compare without case).
    pub fn allows(&self, host: &str, port: u16) -> bool {
        self.http.iter().any(|g| {
            parse_host_port(g).is_ok_and(|(h, p)| p == port && h.eq_ignore_ascii_case(host))
        })
    }
}

fn parse_host_port(entry: &str) -> Result<(String, u16), &'static str> {
    let (host, port) = entry.rsplit_once(':').ok_or("has no port")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains('/') || host.contains('*') {
        return Err("is not a host name");
    }
    let port: u16 = port.parse().map_err(|_| "has no valid port")?;
    Ok((host.to_string(), port))
}

/// Time and size bounds of a connector's HTTP requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpLimits {
    /// Most milliseconds to connect (TCP and TLS).
    #[serde(default = "default_connect_ms")]
    pub connect_ms: u64,
    /// Most milliseconds from sending the request to the response headers.
    #[serde(default = "default_first_byte_ms")]
    pub first_byte_ms: u64,
    /// Most milliseconds to receive the response body.
    #[serde(default = "default_body_ms")]
    pub body_ms: u64,
    /// Largest response body, in KiB; a larger one fails with `too-large`.
    #[serde(default = "default_max_response_kb")]
    pub max_response_kb: u64,
}

fn default_connect_ms() -> u64 {
    5_000
}
fn default_first_byte_ms() -> u64 {
    30_000
}
fn default_body_ms() -> u64 {
    30_000
}
fn default_max_response_kb() -> u64 {
    16 * 1024
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            connect_ms: default_connect_ms(),
            first_byte_ms: default_first_byte_ms(),
            body_ms: default_body_ms(),
            max_response_kb: default_max_response_kb(),
        }
    }
}

/// Most request body bytes a guest may send in one request.
const MAX_REQUEST_BYTES: usize = 64 << 20;

/// A connector instance's network: its grant, its bounds, and how long its
/// current call has waited on the network (which its CPU budget excludes).
pub struct Net {
    grants: Grants,
    limits: HttpLimits,
    agent: ureq::Agent,
    /// Wall time spent in `send` not yet credited to the CPU deadline.
    pub(crate) waited: Duration,
}

impl Net {
    /// The network of a connector granted `grants`.
    pub fn new(grants: Grants, limits: HttpLimits) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_millis(limits.connect_ms)))
            .timeout_recv_response(Some(Duration::from_millis(limits.first_byte_ms)))
            .timeout_recv_body(Some(Duration::from_millis(limits.body_ms)))
            .http_status_as_error(false)
            // A redirect could leave the grant; the connector sees the 3xx.
            .max_redirects(0)
            // The grant names where requests go; a proxy from the
            // environment would send them elsewhere.
            .proxy(None)
            .build()
            .new_agent();
        Self {
            grants,
            limits,
            agent,
            waited: Duration::ZERO,
        }
    }

    /// Sends `req` if its host is granted.
    pub fn send(&mut self, req: http::Request) -> Result<http::Response, http::HttpError> {
        let started = Instant::now();
        let result = self.send_inner(req);
        self.waited += started.elapsed();
        result
    }

    fn send_inner(&self, req: http::Request) -> Result<http::Response, http::HttpError> {
        use http::HttpError;
        let uri: ureq::http::Uri = req
            .url
            .parse()
            .map_err(|e| HttpError::Failed(format!("invalid URL `{}`: {e}", req.url)))?;
        let default_port = match uri.scheme_str() {
            Some("http") => 80,
            Some("https") => 443,
            _ => {
                return Err(HttpError::Failed(format!(
                    "URL `{}` is not http:// or https://",
                    req.url
                )))
            }
        };
        let host = uri.host().unwrap_or_default();
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let host = host.as_str();
        let port = uri.port_u16().unwrap_or(default_port);
        if !self.grants.allows(host, port) {
            return Err(HttpError::Denied(format!(
                "{host}:{port} is not in this connector's grant (grants.http: [{}]); add it to the pipeline's `grants.http` if the connector should reach it",
                self.grants.http.join(", ")
            )));
        }
        if req.body.len() > MAX_REQUEST_BYTES {
            return Err(HttpError::TooLarge(format!(
                "request body of {} bytes is over the {MAX_REQUEST_BYTES}-byte bound",
                req.body.len()
            )));
        }
        let method = req.method.to_ascii_uppercase();
        if !["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].contains(&method.as_str()) {
            return Err(HttpError::Failed(format!(
                "method `{method}` is not allowed"
            )));
        }
        let mut builder = ureq::http::Request::builder()
            .method(method.as_str())
            .uri(uri);
        for (name, value) in &req.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = builder
            .body(req.body)
            .map_err(|e| HttpError::Failed(format!("invalid request: {e}")))?;
        let mut resp = self
            .agent
            .run(request)
            .map_err(|e| classify(e, &self.limits, host, port))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let max = self.limits.max_response_kb.saturating_mul(1024);
        let mut body = Vec::new();
        resp.body_mut()
            .as_reader()
            .take(max.saturating_add(1))
            .read_to_end(&mut body)
            .map_err(
                |e| match e.into_inner().map(|inner| inner.downcast::<ureq::Error>()) {
                    Some(Ok(inner)) => classify(*inner, &self.limits, host, port),
                    Some(Err(other)) => HttpError::Failed(format!(
                        "reading the response from {host}:{port}: {other}"
                    )),
                    None => {
                        HttpError::Failed(format!("reading the response from {host}:{port} failed"))
                    }
                },
            )?;
        if body.len() as u64 > max {
            return Err(HttpError::TooLarge(format!(
                "the response from {host}:{port} is larger than http_limits.max_response_kb ({} KiB)",
                self.limits.max_response_kb
            )));
        }
        Ok(http::Response {
            status,
            headers,
            body,
        })
    }
}

fn classify(e: ureq::Error, limits: &HttpLimits, host: &str, port: u16) -> http::HttpError {
    use http::HttpError;
    match e {
        ureq::Error::Timeout(kind) => {
            let what = match kind {
                ureq::Timeout::Connect | ureq::Timeout::Resolve => {
                    format!("connect_ms of {} ms", limits.connect_ms)
                }
                ureq::Timeout::RecvBody => format!("body_ms of {} ms", limits.body_ms),
                _ => format!("first_byte_ms of {} ms", limits.first_byte_ms),
            };
            HttpError::Timeout(format!(
                "{host}:{port} did not answer within http_limits.{what}"
            ))
        }
        other => HttpError::Failed(format!("{host}:{port}: {other}")),
    }
}

impl http::Host for HostState {
    fn send(&mut self, req: http::Request) -> Result<http::Response, http::HttpError> {
        match self.net.as_mut() {
            Some(net) => net.send(req),
            // Only linked when granted; an instance without a network never
            // gets here, but answer rather than panic if it does.
            None => Err(http::HttpError::Denied(
                "this connector has no http grant".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_name_host_and_port() {
        let g = Grants {
            http: vec!["127.0.0.1:8080".into(), "API.example.com:443".into()],
            ..Grants::default()
        };
        assert!(g.check().is_ok());
        assert!(g.allows("127.0.0.1", 8080));
        assert!(g.allows("api.example.com", 443));
        assert!(!g.allows("127.0.0.1", 8081));
        assert!(!g.allows("evil.example.com", 443));
        let bad = Grants {
            http: vec!["example.com".into()],
            ..Grants::default()
        };
        assert!(bad
            .check()
            .expect_err("no port")
            .contains("`example.com` has no port"));
    }

    #[test]
    fn a_request_outside_the_grant_is_refused_naming_host_and_grant() {
        let mut net = Net::new(
            Grants {
                http: vec!["127.0.0.1:9".into()],
                ..Grants::default()
            },
            HttpLimits::default(),
        );
        let err = net
            .send(http::Request {
                method: "GET".into(),
                url: "http://example.com/x".into(),
                headers: vec![],
                body: vec![],
            })
            .expect_err("refused");
        let http::HttpError::Denied(m) = err else {
            panic!("expected denied, got {err:?}");
        };
        assert!(m.contains("example.com:80"), "{m}");
        assert!(m.contains("127.0.0.1:9"), "{m}");
    }
}
