//! `webhook-sink`: a sink connector that POSTs each batch of events to an
//! HTTP endpoint as a JSON array of their values.
//!
//! - 2xx: delivered.
//! - 5xx, 429, a timeout or a connection failure: the host writes the same
//!   batch again after a backoff (the pipeline waits; nothing is dropped).
//! - 4xx: the endpoint refuses something in the batch. Each event is then
//!   POSTed alone (as a one-element array), and every event the endpoint
//!   still refuses is dead-lettered with the status and response text.
//!
//! Writes are synchronous, so `flush` has nothing to wait for. Delivery is
//! at least once: a rerun POSTs again what came after the last checkpoint.
//!
//! Parameters: `url` (required), `header.NAME` (extra request headers, e.g.
//! `header.Authorization`; the host never logs parameters).

use sluice_sdk::abi::CallError;
use sluice_sdk::connector::http::{self, HttpError, Request, Response};
use sluice_sdk::connector::{Rejections, Sink, Written};
use sluice_sdk::Params;

/// The sink.
pub struct WebhookSink {
    url: String,
    headers: Vec<(String, String)>,
}

impl WebhookSink {
    fn post(&self, body: Vec<u8>) -> Result<Response, CallError> {
        let mut req = Request::post(&self.url, body).header("Content-Type", "application/json");
        for (n, v) in &self.headers {
            req = req.header(n, v);
        }
        http::send(req).map_err(|e| match e {
            HttpError::Timeout(m) | HttpError::Failed(m) => CallError::Retry(m),
            HttpError::Denied(m) | HttpError::TooLarge(m) => CallError::Fatal(m),
        })
    }
}

/// A JSON array of the values of `events` (tombstones as `null`).
fn array<'a>(values: impl Iterator<Item = Option<&'a [u8]>>) -> Vec<u8> {
    let mut body = vec![b'['];
    for (i, v) in values.enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(v.unwrap_or(b"null"));
    }
    body.push(b']');
    body
}

fn retry_or(resp: &Response) -> Result<bool, CallError> {
    match resp.status {
        200..=299 => Ok(true),
        429 | 500..=599 => Err(CallError::Retry(format!(
            "HTTP {}: {}",
            resp.status,
            short(&resp.text())
        ))),
        _ => Ok(false),
    }
}

fn short(s: &str) -> String {
    s.chars().take(300).collect()
}

impl Sink for WebhookSink {
    fn open(params: &Params, _position: Option<&[u8]>) -> Result<Self, String> {
        let url = params.required("url")?.to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("`url` must start with http:// or https://: {url}"));
        }
        let mut headers = Vec::new();
        for (name, value) in params.iter() {
            match name.strip_prefix("header.") {
                Some(h) => headers.push((h.to_string(), value.to_string())),
                None if name == "url" => {}
                None => {
                    return Err(format!(
                        "unknown parameter `{name}`; expected `url` or `header.NAME`"
                    ))
                }
            }
        }
        Ok(Self { url, headers })
    }

    fn write(&mut self, batch: &Written<'_>, rejected: &mut Rejections) -> Result<(), CallError> {
        if batch.is_empty() {
            return Ok(());
        }
        let resp = self.post(array(batch.events().map(|e| e.value())))?;
        if retry_or(&resp)? {
            return Ok(());
        }
        // Something in the batch was refused: find out what, one by one.
        for event in batch.events() {
            let resp = self.post(array(std::iter::once(event.value())))?;
            if !retry_or(&resp)? {
                rejected.reject(
                    event.index(),
                    format!("HTTP {}: {}", resp.status, short(&resp.text())),
                );
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<Vec<u8>, CallError> {
        Ok(Vec::new())
    }
}

sluice_sdk::export_sink!(WebhookSink);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::testing::{with_http, SinkHarness};

    #[test]
    fn a_refused_batch_is_split_and_only_the_refused_events_dead_lettered() {
        let _http = with_http(|req| {
            let body = String::from_utf8(req.body).expect("test call");
            let status = if body.contains("bad") { 422 } else { 200 };
            Ok(Response {
                status,
                headers: vec![],
                body: format!("got {body}").into_bytes(),
            })
        });
        let mut h = SinkHarness::<WebhookSink>::open(&[("url", "http://hook/in")], None)
            .expect("test call");
        assert!(h
            .write(&[r#"{"a":1}"#, r#"{"a":2}"#])
            .expect("test call")
            .is_empty());
        let refused = h.write(&[r#"{"a":1}"#, r#"{"bad":2}"#]).expect("test call");
        assert_eq!(
            refused,
            vec![(1, r#"HTTP 422: got [{"bad":2}]"#.to_string())]
        );
    }

    #[test]
    fn server_errors_ask_for_a_retry() {
        let _http = with_http(|_| {
            Ok(Response {
                status: 503,
                headers: vec![],
                body: b"busy".to_vec(),
            })
        });
        let mut h = SinkHarness::<WebhookSink>::open(&[("url", "http://hook/in")], None)
            .expect("test call");
        assert_eq!(
            h.write(&["1"]),
            Err(CallError::Retry("HTTP 503: busy".into()))
        );
    }
}
