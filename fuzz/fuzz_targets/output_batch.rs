//! A guest's output is the most hostile input the host reads: every span,
//! index and count in it is chosen by the plugin. Whatever `output_check`
//! accepts, the host must be able to turn into a batch and read back without
//! a panic, and no host-owned header may survive.
#![no_main]

use std::sync::Arc;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sluice::event::abi::{Event, Frame, Header, Output, Rejection, Span};
use sluice::event::{Batch, BatchBuilder};
use sluice::plugin::limits::Limits;
use sluice::plugin::output_check::{self, MAX_REASON_BYTES};

/// Small spans reach the paths behind the range checks; raw ones probe the
/// arithmetic at the edges of u32.
#[derive(Arbitrary, Debug)]
enum FSpan {
    Small(u8, u8),
    Raw(u32, u32),
}

impl FSpan {
    fn span(&self) -> Span {
        match *self {
            FSpan::Small(offset, len) => Span {
                offset: offset.into(),
                len: len.into(),
            },
            FSpan::Raw(offset, len) => Span { offset, len },
        }
    }
}

#[derive(Arbitrary, Debug)]
struct FEvent {
    key: Option<FSpan>,
    value: Option<FSpan>,
    headers: FSpan,
    timestamp_ms: i64,
    stream: u32,
    parent: u8,
}

#[derive(Arbitrary, Debug)]
struct Case {
    inputs: u8,
    data: Vec<u8>,
    events: Vec<FEvent>,
    headers: Vec<(FSpan, FSpan)>,
    rejected: Vec<(u16, String)>,
}

fuzz_target!(|case: Case| {
    let mut input = BatchBuilder::new("upstream", Arc::from("source"), case.inputs.into());
    for i in 0..case.inputs {
        input.push(Some(&[i]), Some(b"{}"), &[], 0, i.into());
    }
    let input = input.finish();
    let mut out = Output {
        events: Frame {
            data: case.data,
            events: case
                .events
                .iter()
                .map(|e| Event {
                    key: e.key.as_ref().map(FSpan::span),
                    value: e.value.as_ref().map(FSpan::span),
                    headers: e.headers.span(),
                    timestamp_ms: e.timestamp_ms,
                    stream: e.stream,
                    parent: e.parent.into(),
                })
                .collect(),
            headers: case
                .headers
                .iter()
                .map(|(name, value)| Header {
                    name: name.span(),
                    value: value.span(),
                })
                .collect(),
            streams: Vec::new(),
        },
        rejected: case
            .rejected
            .into_iter()
            .map(|(index, reason)| Rejection {
                index: index.into(),
                reason,
            })
            .collect(),
    };
    if output_check::check(&mut out, input.len(), &Limits::default()).is_err() {
        return;
    }
    for r in &out.rejected {
        assert!(
            r.reason.len() <= MAX_REASON_BYTES + "… (cut)".len(),
            "a reason of {} bytes passed the check",
            r.reason.len()
        );
        assert!((r.index as usize) < input.len());
    }
    let batch = match Batch::from_output(&input, "stage", out.events) {
        Ok(batch) => batch,
        Err(e) => panic!("output_check accepted an output the host then refused: {e}"),
    };
    for event in batch.iter() {
        for (name, _) in event.headers() {
            assert!(
                !output_check::is_reserved(name.as_bytes()),
                "host-owned header `{name}` survived the check"
            );
        }
    }
});
