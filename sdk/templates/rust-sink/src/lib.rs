//! {{name}}: a Sluice sink connector. It POSTs each batch to `url` as a JSON
//! array; replace `write` with your system's protocol. A 5xx asks the host to
//! retry the batch; a 4xx dead-letters the batch's events with the response.

use sluice_sdk::abi::CallError;
use sluice_sdk::connector::http::{self, HttpError, Request};
use sluice_sdk::connector::{Rejections, Sink, Written};
use sluice_sdk::Params;

/// The sink.
pub struct Connector {
    url: String,
}

impl Sink for Connector {
    fn open(params: &Params, _position: Option<&[u8]>) -> Result<Self, String> {
        params.only(&["url"])?;
        Ok(Self {
            url: params.required("url")?.to_string(),
        })
    }

    fn write(&mut self, batch: &Written<'_>, rejected: &mut Rejections) -> Result<(), CallError> {
        let values: Vec<&[u8]> = batch.events().map(|e| e.value().unwrap_or(b"null")).collect();
        let mut body = b"[".to_vec();
        body.extend(values.join(&b","[..]));
        body.push(b']');
        // Only hosts the pipeline grants (`grants: {http: ["host:port"]}`).
        let resp = http::send(Request::post(&self.url, body).header("Content-Type", "application/json"))
            .map_err(|e| match e {
                HttpError::Timeout(m) | HttpError::Failed(m) => CallError::Retry(m),
                other => CallError::Fatal(other.to_string()),
            })?;
        match resp.status {
            200..=299 => Ok(()),
            429 | 500..=599 => Err(CallError::Retry(format!("HTTP {}", resp.status))),
            status => {
                for event in batch.events() {
                    rejected.reject(event.index(), format!("HTTP {status}: {}", resp.text()));
                }
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> Result<Vec<u8>, CallError> {
        // Writes above are synchronous: nothing is buffered.
        Ok(Vec::new())
    }
}

sluice_sdk::export_sink!(Connector);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::connector::http::Response;
    use sluice_sdk::testing::{with_http, SinkHarness};

    #[test]
    fn a_4xx_dead_letters_the_batch() {
        let _http = with_http(|_req| {
            Ok(Response {
                status: 400,
                headers: vec![],
                body: b"bad".to_vec(),
            })
        });
        let mut sink = SinkHarness::<Connector>::open(&[("url", "http://hook.test/in")], None).unwrap();
        assert_eq!(sink.write(&[r#"{"a":1}"#]).unwrap(), vec![(0, "HTTP 400: bad".to_string())]);
    }
}
