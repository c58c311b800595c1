//! A test guest that attacks the host through what it returns, written on the
//! SDK's raw contract bindings (the `Transform` trait would not let it build
//! these outputs). Per input event, by its `"do"` field:
//!
//! - `fanout`: 20,000 outputs that all point at one shared 1 MiB span
//!   (about 1 MiB in the guest, 20 GB once a sink encodes them);
//! - `reject-many`: 200,000 rejections of that event;
//! - `reject-twice`: two rejections of that event;
//! - `bad-parent`: one output naming parent 1,000,000;
//! - `forge`: forwards the event with forged host headers
//!   (`sluice.error.kind`, `sluice.origin`, `sluice.position`), a routing
//!   header (`sluice.topic`) and an ordinary one (`colour`);
//! - anything else: forwarded unchanged.

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
            Ok(super::attack(&input))
        }
    }

    sluice_sdk::glue::wit::export!(Hostile with_types_in sluice_sdk::glue::wit);
}

#[cfg(target_arch = "wasm32")]
use sluice_sdk::glue::wit::sluice::plugin::types as t;

#[cfg(target_arch = "wasm32")]
fn push(out: &mut t::Batch, bytes: &[u8]) -> t::Span {
    let offset = out.data.len() as u32;
    out.data.extend_from_slice(bytes);
    t::Span {
        offset,
        len: bytes.len() as u32,
    }
}

#[cfg(target_arch = "wasm32")]
fn attack(input: &t::Batch) -> t::Output {
    let mut out = t::Batch {
        data: Vec::new(),
        events: Vec::new(),
        headers: Vec::new(),
        streams: Vec::new(),
    };
    let mut rejected = Vec::new();
    let mut shared: Option<t::Span> = None;
    let none = t::Span { offset: 0, len: 0 };
    for (i, e) in input.events.iter().enumerate() {
        let parent = i as u32;
        let value = e
            .value
            .and_then(|s| {
                input
                    .data
                    .get(s.offset as usize..(s.offset + s.len) as usize)
            })
            .unwrap_or_default();
        let order = serde_json::from_slice::<serde_json::Value>(value)
            .ok()
            .and_then(|v| v.get("do").and_then(|d| d.as_str()).map(str::to_string));
        let forward = |out: &mut t::Batch, headers: &[(&str, &str)], parent: u32| {
            let value = push(out, value);
            let first = out.headers.len() as u32;
            for (n, v) in headers {
                let name = push(out, n.as_bytes());
                let value = push(out, v.as_bytes());
                out.headers.push(t::Header { name, value });
            }
            out.events.push(t::Event {
                key: None,
                value: Some(value),
                headers: t::Span {
                    offset: first,
                    len: headers.len() as u32,
                },
                timestamp_ms: e.timestamp_ms,
                stream: 0,
                parent,
            });
        };
        match order.as_deref() {
            Some("fanout") => {
                let span = *shared.get_or_insert_with(|| push(&mut out, &vec![b'x'; 1 << 20]));
                for _ in 0..20_000 {
                    out.events.push(t::Event {
                        key: None,
                        value: Some(span),
                        headers: none,
                        timestamp_ms: e.timestamp_ms,
                        stream: 0,
                        parent,
                    });
                }
            }
            Some("reject-many") => {
                for _ in 0..200_000 {
                    rejected.push(t::Rejection {
                        index: parent,
                        reason: "no".into(),
                    });
                }
            }
            Some("reject-twice") => {
                for _ in 0..2 {
                    rejected.push(t::Rejection {
                        index: parent,
                        reason: "twice".into(),
                    });
                }
            }
            Some("bad-parent") => forward(&mut out, &[], 1_000_000),
            Some("forge") => forward(
                &mut out,
                &[
                    ("sluice.error.kind", "forged"),
                    ("sluice.origin", "evil"),
                    ("Sluice.Position", "666"),
                    ("sluice.topic", "routed"),
                    ("colour", "blue"),
                ],
                parent,
            ),
            _ => forward(&mut out, &[], parent),
        }
    }
    t::Output {
        events: out,
        rejected,
    }
}
