//! A test sink connector that POSTs each batch (a JSON array of values) to
//! `url` and panics when the server answers 418, so a test server decides
//! when it crashes. `flush` returns how many flushes this instance made.

use sluice_sdk::abi::CallError;
use sluice_sdk::connector::http::{self, Request};
use sluice_sdk::connector::{Rejections, Sink, Written};
use sluice_sdk::Params;

/// The crashing sink.
pub struct ConnSinkMisbehave {
    url: String,
    flushes: u64,
}

impl Sink for ConnSinkMisbehave {
    fn open(params: &Params, _position: Option<&[u8]>) -> Result<Self, String> {
        Ok(Self {
            url: params.required("url")?.to_string(),
            flushes: 0,
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
        let resp = http::send(Request::post(&self.url, body))
            .map_err(|e| CallError::Retry(e.to_string()))?;
        if resp.status == 418 {
            panic!("the server told this sink to crash");
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<Vec<u8>, CallError> {
        self.flushes += 1;
        Ok(self.flushes.to_string().into_bytes())
    }
}

sluice_sdk::export_sink!(ConnSinkMisbehave);
