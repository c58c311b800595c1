//! `http-poll`: a source connector that reads a paginated JSON REST API.
//!
//! It asks `GET {url}?cursor={cursor}&limit={n}` and expects
//! `{"items": [...], "next": "<cursor>"}`: the items after `cursor`, and the
//! cursor after them. Each item (a JSON object) becomes one event, keyed by
//! `key_field` when set. The cursor is the checkpointed position, so after a
//! crash (even `kill -9`) a rerun asks for the page after the last
//! checkpoint, and nothing is lost.
//!
//! Parameters: `url` (required), `page_size` (default 100), `key_field`,
//! `stop_when_caught_up` (`true`: a bounded read that ends at the first
//! empty page; default: keep polling for new items).
//!
//! Errors: a 5xx, 429, timeout or connection failure asks the host to poll
//! again with backoff; a host outside the grant, another status or a page
//! that is not the expected JSON stops the pipeline with the reason. An item
//! that is not a JSON object is dead-lettered as malformed.

use sluice_sdk::abi::CallError;
use sluice_sdk::connector::http::{self, HttpError, Request};
use sluice_sdk::connector::{Poll, Source};
use sluice_sdk::Params;

/// The source.
pub struct HttpPoll {
    url: String,
    page_size: usize,
    key_field: Option<String>,
    stop_when_caught_up: bool,
    cursor: String,
}

impl Source for HttpPoll {
    fn open(params: &Params, position: Option<&[u8]>) -> Result<Self, String> {
        params.only(&["url", "page_size", "key_field", "stop_when_caught_up"])?;
        let url = params.required("url")?.to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("`url` must start with http:// or https://: {url}"));
        }
        let page_size = match params.get("page_size") {
            None => 100,
            Some(v) => v
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("`page_size` must be a positive number: {v}"))?,
        };
        let cursor = match position {
            None => String::new(),
            Some(p) => String::from_utf8(p.to_vec())
                .map_err(|_| "the checkpointed cursor is not UTF-8".to_string())?,
        };
        Ok(Self {
            url,
            page_size,
            key_field: params.get("key_field").map(str::to_string),
            stop_when_caught_up: params.bool_or("stop_when_caught_up", false)?,
            cursor,
        })
    }

    fn poll(&mut self, max: usize, out: &mut Poll) -> Result<(), CallError> {
        let limit = self.page_size.min(max.max(1));
        let sep = if self.url.contains('?') { '&' } else { '?' };
        let url = format!(
            "{}{sep}cursor={}&limit={limit}",
            self.url,
            encode(&self.cursor)
        );
        let resp = http::send(Request::get(&url).header("Accept", "application/json")).map_err(
            |e| match e {
                HttpError::Timeout(m) | HttpError::Failed(m) => CallError::Retry(m),
                HttpError::Denied(m) | HttpError::TooLarge(m) => CallError::Fatal(m),
            },
        )?;
        match resp.status {
            200..=299 => {}
            429 | 500..=599 => {
                return Err(CallError::Retry(format!(
                    "GET {url}: HTTP {}: {}",
                    resp.status,
                    short(&resp.text())
                )))
            }
            s => {
                return Err(CallError::Fatal(format!(
                    "GET {url}: HTTP {s}: {}",
                    short(&resp.text())
                )))
            }
        }
        let page: serde_json::Value = serde_json::from_slice(&resp.body)
            .map_err(|e| CallError::Fatal(format!("GET {url}: the page is not JSON: {e}")))?;
        let (Some(items), Some(next)) = (
            page.get("items").and_then(|i| i.as_array()),
            page.get("next").and_then(|n| n.as_str()),
        ) else {
            return Err(CallError::Fatal(format!(
                "GET {url}: expected {{\"items\": [...], \"next\": \"cursor\"}}, got {}",
                short(&page.to_string())
            )));
        };
        if items.len() > limit {
            return Err(CallError::Fatal(format!(
                "GET {url}: asked for {limit} items, got {}",
                items.len()
            )));
        }
        for item in items {
            if !item.is_object() {
                out.malformed(
                    item.to_string().as_bytes(),
                    format!("item after cursor `{}` is not a JSON object", self.cursor),
                );
                continue;
            }
            let key = self
                .key_field
                .as_ref()
                .and_then(|f| item.get(f))
                .map(|k| match k {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
            out.json(key.as_deref().map(str::as_bytes), item);
        }
        self.cursor = next.to_string();
        out.position(self.cursor.as_bytes());
        if items.is_empty() {
            out.caught_up();
            if self.stop_when_caught_up {
                out.done();
            }
        }
        Ok(())
    }
}

/// Percent-encodes a cursor for a query string.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn short(s: &str) -> String {
    s.chars().take(300).collect()
}

sluice_sdk::export_source!(HttpPoll);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::connector::http::Response;
    use sluice_sdk::testing::{with_http, SourceHarness};

    fn page(items: &str, next: &str) -> Response {
        Response {
            status: 200,
            headers: vec![],
            body: format!(r#"{{"items": {items}, "next": "{next}"}}"#).into_bytes(),
        }
    }

    #[test]
    fn reads_pages_and_resumes_from_the_cursor() {
        let _http = with_http(|req| {
            Ok(if req.url.contains("cursor=&") {
                page(r#"[{"id": 1}, 7]"#, "c2")
            } else if req.url.contains("cursor=c2&") {
                page("[]", "c2")
            } else {
                panic!("unexpected {}", req.url)
            })
        });
        let params = [("url", "http://api.test/items"), ("key_field", "id")];
        let mut h = SourceHarness::<HttpPoll>::open(&params, None).expect("test call");
        let first = h.poll(10).expect("test call");
        assert_eq!(first.values(), vec![r#"{"id":1}"#]);
        assert_eq!(first.malformed.len(), 1);
        assert_eq!(first.position, b"c2");
        assert!(!first.caught_up);
        let mut h = SourceHarness::<HttpPoll>::open(&params, Some(b"c2")).expect("test call");
        let second = h.poll(10).expect("test call");
        assert!(second.is_empty() && second.caught_up && !second.done);
    }

    #[test]
    fn server_errors_are_retried_and_client_errors_are_fatal() {
        let _http = with_http(|req| {
            Ok(Response {
                status: if req.url.starts_with("http://a") {
                    503
                } else {
                    404
                },
                headers: vec![],
                body: b"nope".to_vec(),
            })
        });
        let mut a =
            SourceHarness::<HttpPoll>::open(&[("url", "http://a/x")], None).expect("test call");
        assert!(matches!(a.poll(5), Err(CallError::Retry(m)) if m.contains("HTTP 503: nope")));
        let mut b =
            SourceHarness::<HttpPoll>::open(&[("url", "http://b/x")], None).expect("test call");
        assert!(matches!(b.poll(5), Err(CallError::Fatal(m)) if m.contains("HTTP 404")));
    }
}
