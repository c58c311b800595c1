//! A test guest that attacks the host through what it returns, written on the
//! SDK's raw contract bindings (the `Transform` trait would not let it build
//! these outputs; contract 0.2.0, whose event table is bytes). Per input
//! event, by its `"do"` field:
//!
//! - `fanout`: 20,000 outputs that all point at one shared 1 MiB span
//!   (about 1 MiB in the guest, 20 GB once a sink encodes them);
//! - `reject-many`: 200,000 rejections of that event;
//! - `reject-twice`: two rejections of that event;
//! - `bad-parent`: one output naming parent 1,000,000;
//! - `forge`: forwards the event with forged host headers
//!   (`sluice.error.kind`, `sluice.origin`, `sluice.position`), a routing
//!   header (`sluice.topic`) and an ordinary one (`colour`);
//! - `table-cut`: the output's event table loses its last byte (not a whole
//!   number of 48-byte records);
//! - `table-huge`: the event table claims 300,000 events (past the default
//!   ceiling of 262,144 per call), all valid records;
//! - `bad-flags`: one event record with a flag bit the contract does not define;
//! - `refs-fanout`: 20,000 outputs that take the event's value (64 KiB) from
//!   it by parent reference (contract 0.2.0, flag 3);
//! - `refs-whole-fanout`: the same, each output taking the event whole (key,
//!   value and headers, flags 2-4), which the host copies in one piece;
//! - `refs-clash`: one output that takes its key from its parent and also
//!   carries one;
//! - `refs-bad-parent`: one output that takes the value of parent 1,000,000;
//! - `echo-refs`: rejects the event, saying whether the host marked it open
//!   to parent references (it declares them: `sluice:parent-refs`);
//! - anything else: forwarded unchanged.

/// Parent references are declared, so the host resolves them (and marks
/// every input event open to them).
#[cfg(target_arch = "wasm32")]
#[link_section = "sluice:parent-refs"]
#[used]
static PARENT_REFS: [u8; 1] = [1];

#[cfg(target_arch = "wasm32")]
mod guest {
    use sluice_sdk::glue::wit;
    use wit::exports::sluice::plugin::transformer::{self as exported, Guest, GuestTransform};
    use wit::sluice::plugin::types as t;

    struct Hostile;

    impl Guest for Hostile {
        type Transform = Hostile;
        fn describe() -> t::PluginInfo {
            sluice_sdk::glue::info(
                env!("CARGO_PKG_NAME"),
                env!("CARGO_PKG_VERSION"),
                env!("CARGO_PKG_DESCRIPTION"),
            )
        }
    }

    impl GuestTransform for Hostile {
        fn create(_params: Vec<t::Param>) -> Result<exported::Transform, String> {
            Ok(exported::Transform::new(Hostile))
        }

        fn process(&self, input: t::Batch) -> Result<t::Output, t::CallError> {
            let input = sluice_sdk::abi::RawBatch::from_tables(
                input.data,
                &input.events,
                &input.headers,
                input.streams,
            );
            let (out, rejected, table) = super::attack(&input);
            let mut events = sluice_sdk::glue::to_wit(out);
            match table {
                super::Table::Whole => {}
                super::Table::Cut => {
                    events.events.pop();
                }
                super::Table::Huge => {
                    // Valid records (parent 0, no key, no value), too many of them.
                    events.events = vec![0; 300_000 * sluice_sdk::abi::EVENT_RECORD];
                }
                super::Table::BadFlags => {
                    if let Some(flags) = events.events.get_mut(40) {
                        // Bits 2-4 are parent references now; 5 is unknown.
                        *flags |= 32;
                    }
                }
            }
            Ok(t::Output {
                events,
                rejected: rejected
                    .into_iter()
                    .map(|r| t::Rejection {
                        index: r.index,
                        reason: r.reason,
                    })
                    .collect(),
            })
        }
    }

    sluice_sdk::glue::wit::export!(Hostile with_types_in sluice_sdk::glue::wit);
}

use sluice_sdk::abi::{
    RawBatch, RawEvent, Rejection, Span, HEADERS_FROM_PARENT, KEY_FROM_PARENT, VALUE_FROM_PARENT,
};

/// What to do to the encoded event table after building the output.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
enum Table {
    Whole,
    Cut,
    Huge,
    BadFlags,
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn attack(input: &RawBatch) -> (RawBatch, Vec<Rejection>, Table) {
    let mut out = RawBatch::default();
    let mut rejected = Vec::new();
    let mut table = Table::Whole;
    let mut shared: Option<Span> = None;
    for (i, e) in input.events.iter().enumerate() {
        let parent = i as u32;
        let value = e
            .value
            .and_then(|s| s.slice(&input.data))
            .unwrap_or_default();
        let order = serde_json::from_slice::<serde_json::Value>(value)
            .ok()
            .and_then(|v| v.get("do").and_then(|d| d.as_str()).map(str::to_string));
        let forward = |out: &mut RawBatch, headers: &[(&str, &[u8])], parent: u32| {
            out.push_event(None, Some(value), headers, e.timestamp_ms, 0);
            if let Some(last) = out.events.last_mut() {
                last.parent = parent;
            }
        };
        match order.as_deref() {
            Some("fanout") => {
                let span = *shared.get_or_insert_with(|| out.push_bytes(&vec![b'x'; 1 << 20]));
                for _ in 0..20_000 {
                    out.events.push(RawEvent {
                        key: None,
                        value: Some(span),
                        headers: Span::default(),
                        timestamp_ms: e.timestamp_ms,
                        stream: 0,
                        parent,
                        field_table: 0,
                        refs: 0,
                        refs_ok: false,
                    });
                }
            }
            // 20,000 outputs naming the parent's value (64 KiB): the host
            // copies it once, and the output ceiling counts every reference.
            Some(what @ ("refs-fanout" | "refs-whole-fanout")) => {
                let refs = match what {
                    "refs-fanout" => VALUE_FROM_PARENT,
                    _ => KEY_FROM_PARENT | VALUE_FROM_PARENT | HEADERS_FROM_PARENT,
                };
                for _ in 0..20_000 {
                    out.events.push(RawEvent {
                        timestamp_ms: e.timestamp_ms,
                        parent,
                        refs,
                        ..RawEvent::default()
                    });
                }
            }
            // A key of its own and the parent's, both.
            Some("refs-clash") => {
                let key = out.push_bytes(b"mine");
                out.events.push(RawEvent {
                    key: Some(key),
                    timestamp_ms: e.timestamp_ms,
                    parent,
                    refs: KEY_FROM_PARENT,
                    ..RawEvent::default()
                });
            }
            Some("refs-bad-parent") => out.events.push(RawEvent {
                timestamp_ms: e.timestamp_ms,
                parent: 1_000_000,
                refs: VALUE_FROM_PARENT,
                ..RawEvent::default()
            }),
            Some("echo-refs") => rejected.push(Rejection {
                index: parent,
                reason: format!("open to parent references: {}", e.refs_ok),
            }),
            Some("reject-many") => {
                for _ in 0..200_000 {
                    rejected.push(Rejection {
                        index: parent,
                        reason: "no".into(),
                    });
                }
            }
            Some("reject-twice") => {
                for _ in 0..2 {
                    rejected.push(Rejection {
                        index: parent,
                        reason: "twice".into(),
                    });
                }
            }
            Some("bad-parent") => forward(&mut out, &[], 1_000_000),
            Some("forge") => forward(
                &mut out,
                &[
                    ("sluice.error.kind", b"forged"),
                    ("sluice.origin", b"evil"),
                    ("Sluice.Position", b"666"),
                    ("sluice.topic", b"routed"),
                    ("colour", b"blue"),
                ],
                parent,
            ),
            Some("table-cut") => {
                forward(&mut out, &[], parent);
                table = Table::Cut;
            }
            Some("table-huge") => table = Table::Huge,
            Some("bad-flags") => {
                forward(&mut out, &[], parent);
                table = Table::BadFlags;
            }
            _ => forward(&mut out, &[], parent),
        }
    }
    (out, rejected, table)
}
