//! HTTP to the search server: auth, TLS, timeouts, and retry with backoff for
//! transient failures (connection errors, 429, 5xx), forever, logged.

use crate::connector::Backoff;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use base64::Engine as _;

use super::config::{Auth, ElasticsearchSinkConfig};

/// A response: status and body text.
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// An HTTP client for one sink.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    auth: Option<String>,
    backoff: Backoff,
    name: String,
}

impl Client {
    /// A client per `config`, for the sink named `name` (used in logs).
    pub fn new(config: &ElasticsearchSinkConfig, name: &str) -> Result<Self> {
        let mut tls = ureq::tls::TlsConfig::builder();
        if config.tls.insecure_skip_verify {
            tls = tls.disable_verification(true);
        }
        if let Some(ca) = &config.tls.ca_file {
            let pem = std::fs::read(ca)
                .with_context(|| format!("reading tls.ca_file {}", ca.display()))?;
            let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                anyhow::bail!("tls.ca_file {} holds no PEM certificate", ca.display());
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_millis(config.timeout_ms)))
            .http_status_as_error(false)
            .tls_config(tls.build())
            .build()
            .new_agent();
        let auth = config.auth.as_ref().map(|a| match a {
            Auth::Basic { username, password } => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            ),
            Auth::ApiKey { api_key } => format!("ApiKey {api_key}"),
        });
        Ok(Self {
            agent,
            base: config.url.trim_end_matches('/').to_string(),
            auth,
            backoff: Backoff::from_millis(config.initial_backoff_ms, config.max_backoff_ms),
            name: name.to_string(),
        })
    }

    /// One request, no retries. `Err` only for transport failures.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Option<&[u8]>,
    ) -> Result<Reply> {
        let url = format!("{}{path}", self.base);
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Content-Type", content_type);
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        let req = req
            .body(body.map(<[u8]>::to_vec).unwrap_or_default())
            .map_err(|e| anyhow!("building request to {url}: {e}"))?;
        let mut resp = self
            .agent
            .run(req)
            .map_err(|e| anyhow!("{method} {url}: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| anyhow!("reading the reply from {url}: {e}"))?;
        Ok(Reply { status, body })
    }

    /// Sends until the server answers with something other than a transport
    /// failure, 429 or 5xx: those are retried with exponential backoff and
    /// jitter, without limit (the pipeline waits, it does not fail).
    pub fn send_retrying(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Option<&[u8]>,
    ) -> Reply {
        let mut attempt: u32 = 0;
        loop {
            let problem = match self.send(method, path, content_type, body) {
                Ok(r) if r.status == 429 || r.status >= 500 => {
                    format!("HTTP {}: {}", r.status, short(&r.body))
                }
                Ok(r) => return r,
                Err(e) => format!("{e:#}"),
            };
            attempt += 1;
            let wait = self.backoff(attempt);
            tracing::warn!(sink = %self.name, attempt, "search server unavailable ({problem}); retrying in {wait:?}");
            std::thread::sleep(wait);
        }
    }

    /// Delay before retry `attempt` (1-based), per the shared policy.
    pub fn backoff(&mut self, attempt: u32) -> Duration {
        self.backoff.delay(attempt)
    }
}

/// The first 300 characters of a body, for messages.
pub fn short(body: &str) -> String {
    body.chars().take(300).collect()
}
