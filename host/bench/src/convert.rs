//! Batches for the modes that call components and plugin crates directly:
//! host batches from JSON lines, and the host's batch layout to the SDK's
//! and back (what the native side of `--joins` and `--kafka` runs on).

use std::sync::Arc;

use sluice::event::{Batch, BatchBuilder};
use sluice::plugin::bindings;
use sluice_sdk::abi::{RawBatch, RawEvent, RawHeader, Span as SdkSpan};

/// Cuts `values` into batches of `size` events; positions count from 0.
pub fn into_batches(
    stream: &str,
    size: usize,
    values: impl IntoIterator<Item = String>,
) -> Vec<Batch> {
    let origin: Arc<str> = Arc::from("bench");
    let size = size.max(1);
    let mut batches = Vec::new();
    let mut b = BatchBuilder::new(stream, origin.clone(), size);
    for (i, value) in values.into_iter().enumerate() {
        b.push(None, Some(value.as_bytes()), &[], 0, i as u64);
        if b.len() == size {
            batches.push(
                std::mem::replace(&mut b, BatchBuilder::new(stream, origin.clone(), size)).finish(),
            );
        }
    }
    if !b.is_empty() {
        batches.push(b.finish());
    }
    batches
}
/// Converts a host batch to the SDK's layout (the native path's input).
pub fn to_sdk(b: &bindings::Batch) -> RawBatch {
    let span = |s: bindings::Span| SdkSpan {
        offset: s.offset,
        len: s.len,
    };
    RawBatch {
        data: b.data.clone(),
        events: b
            .events
            .iter()
            .map(|e| RawEvent {
                key: e.key.map(span),
                value: e.value.map(span),
                headers: span(e.headers),
                timestamp_ms: e.timestamp_ms,
                stream: e.stream,
                parent: e.parent,
                field_table: 0,
                refs: 0,
                refs_ok: false,
            })
            .collect(),
        headers: b
            .headers
            .iter()
            .map(|h| RawHeader {
                name: span(h.name),
                value: span(h.value),
            })
            .collect(),
        streams: b.streams.clone(),
    }
}

/// Converts the SDK's output back to the host's layout.
pub fn from_sdk(out: sluice_sdk::abi::RawOutput) -> bindings::Output {
    let span = |s: SdkSpan| bindings::Span {
        offset: s.offset,
        len: s.len,
    };
    let b = out.events;
    bindings::Output {
        events: bindings::Batch {
            data: b.data,
            events: b
                .events
                .into_iter()
                .map(|e| bindings::Event {
                    key: e.key.map(span),
                    value: e.value.map(span),
                    headers: span(e.headers),
                    timestamp_ms: e.timestamp_ms,
                    stream: e.stream,
                    parent: e.parent,
                })
                .collect(),
            headers: b
                .headers
                .into_iter()
                .map(|h| bindings::Header {
                    name: span(h.name),
                    value: span(h.value),
                })
                .collect(),
            streams: b.streams,
        },
        rejected: out
            .rejected
            .into_iter()
            .map(|r| bindings::Rejection {
                index: r.index,
                reason: r.reason,
            })
            .collect(),
    }
}
