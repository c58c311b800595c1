//! Contract 0.2.0's parent references end to end, through the library:
//! the built-ins (Rust SDK) declare them, so the host marks their inputs and
//! they answer "this key / value / headers is the parent's" instead of
//! copying the bytes; the host puts the parent's bytes back. What comes out
//! must be exactly what copying gave: keys present and absent, headers,
//! tombstones, timestamps, and for `project` a new value beside the
//! parent's key and headers. The file source has no keys or headers, so
//! the batch is built here.

use std::sync::Arc;

use sluice::config::OnError;
use sluice::event::{Batch, BatchBuilder, EventView};
use sluice::pipeline::process_batch;
use sluice::plugin::{ComponentCache, Limits, TransformInstance, TransformPlugin, WasmEngine};

use crate::support::plugin;

fn instance(name: &str, params: &[(&str, &str)]) -> TransformInstance {
    let engine = WasmEngine::new().expect("engine");
    let cache = ComponentCache::from_env();
    let loaded = TransformPlugin::load(&engine, &cache, &plugin(name)).expect("load");
    assert!(
        loaded.shape.takes_parent_refs,
        "{name} declares parent references (export_transform! puts the section in)"
    );
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    TransformInstance::new(Arc::new(loaded), name, &params, Limits::default()).expect("instance")
}

/// Twelve events: every third without a key, every fourth with two
/// headers, one tombstone with a key and a header, one value that is not
/// JSON (the filter refuses it).
fn input() -> Batch {
    let mut b = BatchBuilder::new("in", Arc::from("test"), 16);
    for i in 0..12u8 {
        let key = format!("key-{i}");
        let key = (i % 3 != 0).then_some(key.as_bytes());
        let cur = if i % 2 == 0 { "aud" } else { "usd" };
        let value = format!(r#"{{"id":{i},"cur":"{cur}","big":9007199254740993}}"#);
        let hv = [i];
        let headers: Vec<(&str, &[u8])> = if i % 4 == 1 {
            vec![("trace", b"abc"), ("n", &hv)]
        } else {
            Vec::new()
        };
        match i {
            7 => b.push(key, None, &[("deleted", b"yes")], 1_000 + i64::from(i), 7),
            9 => b.push(key, Some(b"{not json"), &headers, 1_009, 9),
            _ => b.push(
                key,
                Some(value.as_bytes()),
                &headers,
                1_000 + i64::from(i),
                i.into(),
            ),
        }
    }
    b.finish()
}

fn headers(e: &EventView<'_>) -> Vec<(String, Vec<u8>)> {
    e.headers()
        .map(|(n, v)| (n.to_string(), v.to_vec()))
        .collect()
}

/// The input event `e` derives from (same position), after checking that
/// `e` has its key, headers and timestamp.
fn same_key_headers_and_time<'b>(batch: &'b Batch, e: &EventView<'_>) -> EventView<'b> {
    let parent = batch
        .iter()
        .find(|p| p.position == e.position)
        .expect("parent");
    assert_eq!(e.key, parent.key, "key of {}", e.position);
    assert_eq!(headers(e), headers(&parent), "headers of {}", e.position);
    assert_eq!(e.timestamp_ms, parent.timestamp_ms);
    parent
}

#[test]
fn forwarded_events_come_out_exactly_as_they_went_in() {
    let mut filter = instance("filter", &[("where", "cur != 'aud'")]);
    let batch = input();
    let outcome = process_batch(&mut filter, "keep", OnError::Skip, &batch).expect("call");
    assert_eq!(outcome.skipped, 1, "the value that is not JSON");
    let out = outcome.outputs.first().expect("an output batch");
    // Kept: the odd ids (usd) but 9 (not JSON); 7 is a tombstone, always kept.
    let kept: Vec<u64> = out.iter().map(|e| e.position).collect();
    assert_eq!(kept, vec![1, 3, 5, 7, 11]);
    for e in out.iter() {
        let parent = same_key_headers_and_time(&batch, &e);
        assert_eq!(e.value, parent.value, "value of {}", e.position);
    }
    let tomb = out.iter().find(|e| e.position == 7).expect("tombstone");
    assert_eq!(tomb.key, Some(&b"key-7"[..]));
    assert_eq!(tomb.value, None);
    assert_eq!(headers(&tomb), vec![("deleted".into(), b"yes".to_vec())]);
    let with_headers = out.iter().find(|e| e.position == 5).expect("event 5");
    assert_eq!(
        headers(&with_headers),
        vec![("trace".into(), b"abc".to_vec()), ("n".into(), vec![5])]
    );
    assert_eq!(out.iter().find(|e| e.position == 3).expect("3").key, None);
}

#[test]
fn a_new_value_keeps_its_parents_key_and_headers() {
    let mut project = instance("project", &[("select", "[\"id\", \"big\"]")]);
    let batch = input();
    let outcome = process_batch(&mut project, "shape", OnError::Skip, &batch).expect("call");
    let out = outcome.outputs.first().expect("an output batch");
    let mut seen = 0;
    for e in out.iter() {
        let parent = same_key_headers_and_time(&batch, &e);
        if parent.value.is_some() {
            let want = format!(r#"{{"id":{},"big":9007199254740993}}"#, e.position);
            assert_eq!(e.value, Some(want.as_bytes()), "value of {}", e.position);
        } else {
            assert_eq!(e.value, None, "a tombstone stays one");
        }
        seen += 1;
    }
    assert_eq!(seen, 11, "all but the value that is not JSON");
}
