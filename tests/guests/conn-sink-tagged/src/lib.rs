//! A test sink connector that POSTs each batch (a JSON array of values) to
//! `url` with two headers: `x-build`, the build-time `CONN_SINK_TAG` (so
//! two builds can be told apart in a hot-reload test), and `x-opened-at`,
//! the position this instance was opened at. Its position is the number of
//! events written, counted on from the position it was opened at.
//!
//! The build with `CONN_SINK_TAG=trap-open` panics in `open`: a broken build
//! that loads and links but cannot start.

use sluice_sdk::abi::CallError;
use sluice_sdk::connector::http::{self, Request};
use sluice_sdk::connector::{Rejections, Sink, Written};
use sluice_sdk::Params;

const TAG: &str = match option_env!("CONN_SINK_TAG") {
    Some(t) => t,
    None => "a",
};

/// The tagged sink.
pub struct ConnSinkTagged {
    url: String,
    opened_at: String,
    written: u64,
}

impl Sink for ConnSinkTagged {
    fn open(params: &Params, position: Option<&[u8]>) -> Result<Self, String> {
        if TAG == "trap-open" {
            panic!("this build traps in open");
        }
        let opened_at = match position {
            Some(p) => String::from_utf8_lossy(p).into_owned(),
            None => "none".to_string(),
        };
        let written = match position {
            Some(p) => String::from_utf8_lossy(p)
                .parse()
                .map_err(|e| format!("position is not a count: {e}"))?,
            None => 0,
        };
        Ok(Self {
            url: params.required("url")?.to_string(),
            opened_at,
            written,
        })
    }

    fn write(&mut self, batch: &Written<'_>, _rejected: &mut Rejections) -> Result<(), CallError> {
        let values: Vec<&[u8]> = batch
            .events()
            .map(|e| e.value().unwrap_or(b"null"))
            .collect();
        let mut body = b"[".to_vec();
        body.extend(values.join(&b","[..]));
        body.push(b']');
        let req = Request::post(&self.url, body)
            .header("x-build", TAG)
            .header("x-opened-at", &self.opened_at);
        let resp = http::send(req).map_err(|e| CallError::Retry(e.to_string()))?;
        if !(200..300).contains(&resp.status) {
            return Err(CallError::Retry(format!("HTTP {}", resp.status)));
        }
        self.written += values.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> Result<Vec<u8>, CallError> {
        Ok(self.written.to_string().into_bytes())
    }
}

sluice_sdk::export_sink!(ConnSinkTagged);
