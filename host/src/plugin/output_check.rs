//! Checks every output a guest returns before the host acts on it.
//!
//! By the time an output reaches the host it has been lifted out of guest
//! memory, so its own size is bounded by the stage's memory cap. What is not
//! bounded is what it *refers to*: 20,000 events may all point at one 1 MiB
//! span (20 GB once a sink encodes them), 200,000 rejections may all name one
//! 100 KB input event (each becomes a dead letter holding a copy). So every
//! ceiling here counts references, not the bytes the guest sent, and nothing
//! proportional to the references is allocated before the check passes.
//!
//! Host-owned headers (`sluice.error.*`, `sluice.origin`, ...) are stripped
//! from outputs: a plugin may read them, never forge them.

use super::bindings::{Batch, Output, Span};
use super::limits::Limits;

/// Most header references (events × their headers) one call may return.
pub const MAX_HEADER_REFS_PER_CALL: usize = 1 << 20;

/// Longest rejection reason kept, in bytes; longer ones are cut.
pub const MAX_REASON_BYTES: usize = 4096;

/// `sluice.*` headers a plugin may set or rewrite: the source metadata that
/// sinks route by (`topic_header: sluice.topic`), and that a processor
/// downstream with state in a changelog routes by (`sluice.assignment`
/// too): a transform between must be able to pass them on. Every other
/// `sluice.*` name belongs to the host.
pub const PLUGIN_WRITABLE_HEADERS: &[&str] = &[
    "sluice.topic",
    "sluice.partition",
    "sluice.offset",
    "sluice.assignment",
];

/// The prefix of host-owned header names (matched without regard to case).
pub const RESERVED_PREFIX: &str = "sluice.";

/// Why an output was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputFault {
    /// A ceiling was exceeded; the text names it with its value.
    Limit(String),
    /// The output contradicts the contract (a span outside the data, a
    /// parent or rejection index that names no input event, a duplicate).
    Invalid(String),
}

/// What [`check`] changed in an accepted output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checked {
    /// Host-owned headers removed.
    pub stripped_headers: usize,
    /// Rejection reasons cut to [`MAX_REASON_BYTES`].
    pub truncated_reasons: usize,
}

/// True for a header name a plugin may not write.
pub fn is_reserved(name: &[u8]) -> bool {
    name.len() >= RESERVED_PREFIX.len()
        && name[..RESERVED_PREFIX.len()].eq_ignore_ascii_case(RESERVED_PREFIX.as_bytes())
        && !PLUGIN_WRITABLE_HEADERS
            .iter()
            .any(|w| name.eq_ignore_ascii_case(w.as_bytes()))
}

/// Checks `out`, the answer to a call with `inputs` input events, against
/// `limits`; strips host-owned headers and cuts long reasons in place.
pub fn check(out: &mut Output, inputs: usize, limits: &Limits) -> Result<Checked, OutputFault> {
    let mut checked = Checked::default();
    check_rejections(out, inputs, &mut checked)?;
    check_events(&out.events, inputs, limits)?;
    checked.stripped_headers = strip_reserved(&mut out.events);
    Ok(checked)
}

fn check_rejections(
    out: &mut Output,
    inputs: usize,
    checked: &mut Checked,
) -> Result<(), OutputFault> {
    if out.rejected.len() > inputs {
        return Err(OutputFault::Limit(format!(
            "rejection ceiling of one per input event (the call returned {} rejections for {inputs} input events)",
            out.rejected.len()
        )));
    }
    let mut seen = vec![false; inputs];
    for r in &mut out.rejected {
        match seen.get_mut(r.index as usize) {
            None => {
                return Err(OutputFault::Invalid(format!(
                    "rejection of event {} but the input had {inputs} events",
                    r.index
                )))
            }
            Some(true) => {
                return Err(OutputFault::Invalid(format!(
                    "event {} rejected more than once",
                    r.index
                )))
            }
            Some(s) => *s = true,
        }
        if r.reason.len() > MAX_REASON_BYTES {
            let mut cut = MAX_REASON_BYTES;
            while !r.reason.is_char_boundary(cut) {
                cut -= 1;
            }
            r.reason.truncate(cut);
            r.reason.push_str("… (cut)");
            checked.truncated_reasons += 1;
        }
    }
    Ok(())
}

fn check_events(batch: &Batch, inputs: usize, limits: &Limits) -> Result<(), OutputFault> {
    let n = batch.events.len();
    if n as u64 > limits.output_events_per_call {
        return Err(OutputFault::Limit(format!(
            "output ceiling of {} events per call (the call returned {n})",
            limits.output_events_per_call
        )));
    }
    let data_len = batch.data.len();
    let in_range = |s: &Span| {
        (s.offset as usize)
            .checked_add(s.len as usize)
            .is_some_and(|end| end <= data_len)
    };
    for (i, h) in batch.headers.iter().enumerate() {
        if !in_range(&h.name) || !in_range(&h.value) {
            return Err(OutputFault::Invalid(format!(
                "output header {i} refers outside the batch data"
            )));
        }
    }
    // Header references are counted before they are walked: a few events
    // each naming a million headers would otherwise cost CPU, not memory.
    let mut refs: usize = 0;
    for (i, e) in batch.events.iter().enumerate() {
        let hs = e.headers.offset as usize;
        if hs
            .checked_add(e.headers.len as usize)
            .is_none_or(|end| end > batch.headers.len())
        {
            return Err(OutputFault::Invalid(format!(
                "output event {i} refers to headers that do not exist"
            )));
        }
        refs = refs.saturating_add(e.headers.len as usize);
        if refs > MAX_HEADER_REFS_PER_CALL {
            return Err(OutputFault::Limit(format!(
                "output ceiling of {MAX_HEADER_REFS_PER_CALL} header references per call"
            )));
        }
    }
    let max_bytes = limits.output_bytes();
    let mut bytes: u64 = 0;
    for (i, e) in batch.events.iter().enumerate() {
        if e.key.as_ref().is_some_and(|s| !in_range(s))
            || e.value.as_ref().is_some_and(|s| !in_range(s))
        {
            return Err(OutputFault::Invalid(format!(
                "output event {i} refers outside the batch data"
            )));
        }
        if e.parent as usize >= inputs {
            return Err(OutputFault::Invalid(format!(
                "output event {i} names parent {} but the input had {inputs} events",
                e.parent
            )));
        }
        let hs = e.headers.offset as usize;
        let headers = &batch.headers[hs..hs + e.headers.len as usize];
        let event_bytes = e.key.map_or(0, |s| u64::from(s.len))
            + e.value.map_or(0, |s| u64::from(s.len))
            + headers
                .iter()
                .map(|h| u64::from(h.name.len) + u64::from(h.value.len))
                .sum::<u64>();
        bytes = bytes.saturating_add(event_bytes);
        if bytes > max_bytes {
            return Err(OutputFault::Limit(format!(
                "output ceiling of {} MiB per call (its first {} output events already refer to {bytes} bytes; overlapping spans count every time)",
                limits.output_mb(),
                i + 1
            )));
        }
    }
    Ok(())
}

/// Removes host-owned headers from every event; returns how many references
/// were dropped. Spans were checked by [`check_events`].
fn strip_reserved(batch: &mut Batch) -> usize {
    let reserved = |data: &[u8], s: Span| {
        data.get(s.offset as usize..(s.offset as usize).saturating_add(s.len as usize))
            .is_some_and(is_reserved)
    };
    if !batch.headers.iter().any(|h| reserved(&batch.data, h.name)) {
        return 0;
    }
    let old = std::mem::take(&mut batch.headers);
    let mut stripped = 0;
    for e in &mut batch.events {
        let hs = e.headers.offset as usize;
        let start = batch.headers.len();
        for h in old.get(hs..hs + e.headers.len as usize).unwrap_or(&[]) {
            if reserved(&batch.data, h.name) {
                stripped += 1;
            } else {
                batch.headers.push(*h);
            }
        }
        e.headers = Span {
            offset: u32::try_from(start).unwrap_or(u32::MAX),
            len: u32::try_from(batch.headers.len() - start).unwrap_or(u32::MAX),
        };
    }
    stripped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::bindings::{Event, Header, Rejection};

    fn span(offset: usize, len: usize) -> Span {
        Span {
            offset: offset as u32,
            len: len as u32,
        }
    }

    fn event(value: Span, headers: Span, parent: u32) -> Event {
        Event {
            key: None,
            value: Some(value),
            headers,
            timestamp_ms: 0,
            stream: 0,
            parent,
        }
    }

    fn output(data: Vec<u8>, events: Vec<Event>, headers: Vec<Header>) -> Output {
        Output {
            events: Batch {
                data,
                events,
                headers,
                streams: vec![],
            },
            rejected: vec![],
        }
    }

    #[test]
    fn overlapping_spans_count_every_time_they_are_referred_to() {
        let limits = Limits {
            output_mb_per_call: Some(1),
            ..Limits::default()
        };
        // 3 events of 512 KiB, all the same span: 1.5 MiB of references.
        let data = vec![b'x'; 512 << 10];
        let events = (0..3)
            .map(|_| event(span(0, 512 << 10), span(0, 0), 0))
            .collect();
        let mut out = output(data, events, vec![]);
        match check(&mut out, 1, &limits) {
            Err(OutputFault::Limit(m)) => assert!(m.contains("1 MiB per call"), "{m}"),
            other => panic!("expected a limit, got {other:?}"),
        }
        out.events.events.truncate(2);
        assert!(
            check(&mut out, 1, &limits).is_ok(),
            "1 MiB exactly is allowed"
        );
    }

    #[test]
    fn event_count_ceiling() {
        let limits = Limits {
            output_events_per_call: 10,
            ..Limits::default()
        };
        let events = (0..11).map(|_| event(span(0, 0), span(0, 0), 0)).collect();
        let mut out = output(vec![], events, vec![]);
        assert!(
            matches!(check(&mut out, 1, &limits), Err(OutputFault::Limit(m)) if m.contains("10 events"))
        );
    }

    #[test]
    fn rejections_are_bounded_unique_and_in_range() {
        let reject = |index: u32| Rejection {
            index,
            reason: "no".into(),
        };
        let mut out = output(vec![], vec![], vec![]);
        out.rejected = vec![reject(0), reject(0)];
        assert!(
            matches!(check(&mut out, 5, &Limits::default()), Err(OutputFault::Invalid(m)) if m.contains("more than once"))
        );
        out.rejected = vec![reject(0), reject(1), reject(2)];
        assert!(
            matches!(check(&mut out, 2, &Limits::default()), Err(OutputFault::Limit(m)) if m.contains("3 rejections for 2"))
        );
        out.rejected = vec![reject(7)];
        assert!(
            matches!(check(&mut out, 2, &Limits::default()), Err(OutputFault::Invalid(m)) if m.contains("event 7"))
        );
        out.rejected = vec![Rejection {
            index: 1,
            reason: "é".repeat(MAX_REASON_BYTES),
        }];
        let c = check(&mut out, 2, &Limits::default()).expect("valid");
        assert_eq!(c.truncated_reasons, 1);
        assert!(out.rejected[0].reason.len() < MAX_REASON_BYTES + 16);
    }

    #[test]
    fn bad_parent_and_spans_are_invalid() {
        let mut out = output(
            b"abc".to_vec(),
            vec![event(span(0, 3), span(0, 0), 4)],
            vec![],
        );
        assert!(
            matches!(check(&mut out, 4, &Limits::default()), Err(OutputFault::Invalid(m)) if m.contains("parent 4"))
        );
        let mut out = output(
            b"abc".to_vec(),
            vec![event(span(2, 3), span(0, 0), 0)],
            vec![],
        );
        assert!(matches!(
            check(&mut out, 1, &Limits::default()),
            Err(OutputFault::Invalid(_))
        ));
        let mut out = output(
            b"abc".to_vec(),
            vec![event(span(0, 1), span(0, 2), 0)],
            vec![],
        );
        assert!(
            matches!(check(&mut out, 1, &Limits::default()), Err(OutputFault::Invalid(m)) if m.contains("headers that do not exist"))
        );
    }

    #[test]
    fn host_owned_headers_are_stripped_and_routing_headers_kept() {
        let data = b"vsluice.error.kindforgedsluice.topicordersSLUICE.Originxcolour1".to_vec();
        let at = |s: &str| {
            let i = data
                .windows(s.len())
                .position(|w| w == s.as_bytes())
                .expect("in data");
            span(i, s.len())
        };
        let headers = vec![
            Header {
                name: at("sluice.error.kind"),
                value: at("forged"),
            },
            Header {
                name: at("sluice.topic"),
                value: at("orders"),
            },
            Header {
                name: at("SLUICE.Origin"),
                value: at("x"),
            },
            Header {
                name: at("colour"),
                value: at("1"),
            },
        ];
        let events = vec![event(at("v"), span(0, 4), 0), event(at("v"), span(1, 3), 0)];
        let mut out = output(data.clone(), events, headers);
        let c = check(&mut out, 1, &Limits::default()).expect("valid");
        assert_eq!(
            c.stripped_headers, 3,
            "two forged names, one of them shared"
        );
        let names: Vec<Vec<&[u8]>> = out
            .events
            .events
            .iter()
            .map(|e| {
                let hs = e.headers.offset as usize;
                out.events.headers[hs..hs + e.headers.len as usize]
                    .iter()
                    .map(|h| &data[h.name.offset as usize..(h.name.offset + h.name.len) as usize])
                    .collect()
            })
            .collect();
        let want: Vec<&[u8]> = vec![b"sluice.topic", b"colour"];
        assert_eq!(names, vec![want.clone(), want]);
    }

    #[test]
    fn header_references_are_capped_before_they_are_walked() {
        let headers = vec![
            Header {
                name: span(0, 0),
                value: span(0, 0)
            };
            1 << 16
        ];
        let events = (0..17)
            .map(|_| event(span(0, 0), span(0, 1 << 16), 0))
            .collect();
        let mut out = output(vec![], events, headers);
        assert!(
            matches!(check(&mut out, 1, &Limits::default()), Err(OutputFault::Limit(m)) if m.contains("header references"))
        );
    }
}
