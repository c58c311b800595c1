//! {{name}}: a Sluice source connector. It reads `GET {url}?cursor=C` pages
//! of `{"items": [...], "next": "C2"}`; replace `poll` with your system's
//! protocol. The position (here the cursor) is checkpointed by the host and
//! handed back to `open` after a restart, so nothing is lost.

use sluice_sdk::abi::CallError;
use sluice_sdk::connector::http::{self, HttpError, Request};
use sluice_sdk::connector::{Poll, Source};
use sluice_sdk::Params;

/// The source.
pub struct Connector {
    url: String,
    cursor: String,
}

impl Source for Connector {
    fn open(params: &Params, position: Option<&[u8]>) -> Result<Self, String> {
        params.only(&["url"])?;
        let cursor = position
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default();
        Ok(Self {
            url: params.required("url")?.to_string(),
            cursor,
        })
    }

    fn poll(&mut self, _max: usize, out: &mut Poll) -> Result<(), CallError> {
        let url = format!("{}?cursor={}", self.url, self.cursor);
        // Only hosts the pipeline grants (`grants: {http: ["host:port"]}`).
        let resp = http::send(Request::get(&url)).map_err(|e| match e {
            HttpError::Timeout(m) | HttpError::Failed(m) => CallError::Retry(m),
            other => CallError::Fatal(other.to_string()),
        })?;
        if resp.status >= 500 {
            return Err(CallError::Retry(format!("HTTP {}", resp.status)));
        }
        let page: serde_json::Value = serde_json::from_slice(&resp.body)
            .map_err(|e| CallError::Fatal(format!("{url}: not JSON: {e}")))?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        for item in &items {
            if item.is_object() {
                out.json(None, item);
            } else {
                out.malformed(item.to_string().as_bytes(), "item is not a JSON object");
            }
        }
        if let Some(next) = page["next"].as_str() {
            self.cursor = next.to_string();
            out.position(self.cursor.as_bytes());
        }
        if items.is_empty() {
            out.caught_up();
        }
        Ok(())
    }
}

sluice_sdk::export_source!(Connector);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::connector::http::Response;
    use sluice_sdk::testing::{with_http, SourceHarness};

    #[test]
    fn reads_a_page_and_moves_the_cursor() {
        let _http = with_http(|_req| {
            Ok(Response {
                status: 200,
                headers: vec![],
                body: br#"{"items": [{"id": 1}], "next": "c1"}"#.to_vec(),
            })
        });
        let mut source = SourceHarness::<Connector>::open(&[("url", "http://api.test/items")], None).unwrap();
        let polled = source.poll(100).unwrap();
        assert_eq!(polled.values(), vec![r#"{"id":1}"#]);
        assert_eq!(polled.position, b"c1");
    }
}
