//! # mask
//!
//! A Sluice transform that removes or disguises sensitive fields (PII) in JSON
//! object events: `drop` removes fields, `hash` replaces each value with a keyed
//! hash (so equal values still join and group, but cannot be looked up in a
//! dictionary without the key), `redact` replaces each value with a fixed text.
//!
//! Field paths are dotted (`customer.email`); a path that meets an array applies
//! to every element (`contacts.email` masks the email of every contact). A field
//! that is missing is left alone; a field that is `null` stays `null`. Tombstones
//! pass through unchanged; a value that is not a JSON object is rejected.
//!
//! See `README.md` next to this crate for the parameters and an example.
#![deny(missing_docs)]

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sluice_sdk::{Emitter, Event, EventError, Params, Transform};

/// Number of hex characters of the HMAC kept as the replacement value (128 bits).
const HASH_HEX_CHARS: usize = 32;

/// What happens to the value at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Drop,
    Hash,
    Redact,
}

impl Action {
    fn param(self) -> &'static str {
        match self {
            Action::Drop => "drop",
            Action::Hash => "hash",
            Action::Redact => "redact",
        }
    }
}

/// One configured rule: a dotted path split into segments, and its action.
#[derive(Debug, Clone)]
struct Rule {
    path: Vec<String>,
    action: Action,
}

/// The mask transform: drops, hashes (HMAC-SHA256) or redacts configured fields.
pub struct Mask {
    rules: Vec<Rule>,
    hasher: Option<KeyedHash>,
    redact_with: String,
    /// Reused buffer for the canonical JSON text of a value being hashed.
    scratch: Vec<u8>,
}

impl Transform for Mask {
    fn new(params: &Params) -> Result<Self, String> {
        params.only(&["drop", "hash", "hash_key", "redact", "redact_with"])?;

        let mut rules = Vec::new();
        for action in [Action::Drop, Action::Hash, Action::Redact] {
            for path in parse_paths(params, action.param())? {
                rules.push(Rule { path, action });
            }
        }
        if rules.is_empty() {
            return Err(
                "nothing to mask: set at least one of `drop`, `hash`, `redact` to a list of field paths"
                    .to_string(),
            );
        }
        check_overlaps(&rules)?;

        let hashes = rules.iter().any(|r| r.action == Action::Hash);
        let hasher = match (hashes, params.get("hash_key")) {
            (true, None) => {
                return Err(
                    "parameter `hash_key` is required when `hash` is set (use a secret, \
                     e.g. `hash_key: ${MASK_KEY}`)"
                        .to_string(),
                )
            }
            (true, Some(key)) => Some(KeyedHash::new(check_key(key)?.as_bytes())),
            (false, Some(_)) => {
                return Err("parameter `hash_key` is set but `hash` lists no fields".to_string())
            }
            (false, None) => None,
        };

        let redacts = rules.iter().any(|r| r.action == Action::Redact);
        let redact_with = match (redacts, params.get("redact_with")) {
            (_, None) => "***".to_string(),
            (true, Some(text)) => text.to_string(),
            (false, Some(_)) => {
                return Err(
                    "parameter `redact_with` is set but `redact` lists no fields".to_string(),
                )
            }
        };

        Ok(Self {
            rules,
            hasher,
            redact_with,
            scratch: Vec::new(),
        })
    }

    fn process(&mut self, event: &Event<'_>, out: &mut Emitter<'_>) -> Result<(), EventError> {
        if event.is_tombstone() {
            out.forward();
            return Ok(());
        }
        let mut value = event.json()?;
        if !value.is_object() {
            return Err(EventError::Reject(format!(
                "mask expects a JSON object value, found {}",
                kind_of(&value)
            )));
        }
        let mut changed = false;
        for rule in &self.rules {
            let mut leaf = |map: &mut Map<String, Value>, name: &str| -> bool {
                match rule.action {
                    Action::Drop => map.remove(name).is_some(),
                    Action::Hash => match map.get_mut(name) {
                        Some(v) if !v.is_null() => {
                            // `hasher` is always set when a hash rule exists (checked in `new`).
                            let Some(hasher) = &self.hasher else {
                                return false;
                            };
                            self.scratch.clear();
                            write_canonical(v, &mut self.scratch);
                            *v = Value::String(hasher.token(&self.scratch));
                            true
                        }
                        _ => false,
                    },
                    Action::Redact => match map.get_mut(name) {
                        Some(v) if !v.is_null() => {
                            *v = Value::String(self.redact_with.clone());
                            true
                        }
                        _ => false,
                    },
                }
            };
            changed |= apply(&mut value, &rule.path, &mut leaf);
        }
        if changed {
            out.json(&value);
        } else {
            // Nothing matched: keep the original bytes (and number formatting).
            out.forward();
        }
        Ok(())
    }
}

/// Walks `path` from `node` and calls `leaf` on the object holding the last
/// segment. Arrays on the way apply the remaining path to every element.
/// Returns whether anything changed.
fn apply(
    node: &mut Value,
    path: &[String],
    leaf: &mut dyn FnMut(&mut Map<String, Value>, &str) -> bool,
) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    match node {
        Value::Object(map) if rest.is_empty() => leaf(map, first),
        Value::Object(map) => match map.get_mut(first.as_str()) {
            Some(child) => apply(child, rest, leaf),
            None => false,
        },
        Value::Array(items) => {
            let mut changed = false;
            for item in items {
                changed |= apply(item, path, leaf);
            }
            changed
        }
        _ => false,
    }
}

/// Reads a list parameter: a JSON list of strings (`["a","b.c"]`) or a
/// comma-separated string (`a, b.c`). Each entry is a dotted path.
fn parse_paths(params: &Params, name: &str) -> Result<Vec<Vec<String>>, String> {
    let Some(text) = params.get(name) else {
        return Ok(Vec::new());
    };
    let trimmed = text.trim();
    let entries: Vec<String> = if trimmed.starts_with('[') {
        let list: Value = serde_json::from_str(trimmed).map_err(|e| {
            format!("parameter `{name}`: expected a JSON list of field paths ({e})")
        })?;
        let Value::Array(items) = list else {
            return Err(format!(
                "parameter `{name}`: expected a JSON list of field paths"
            ));
        };
        items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                other => Err(format!(
                    "parameter `{name}`: expected field paths as strings, found {other}"
                )),
            })
            .collect::<Result<_, _>>()?
    } else {
        trimmed
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    entries
        .iter()
        .map(|entry| {
            let path: Vec<String> = entry.split('.').map(|s| s.trim().to_string()).collect();
            if path.iter().any(String::is_empty) {
                return Err(format!(
                    "parameter `{name}`: `{entry}` is not a field path (empty segment); \
                     write nested fields as `a.b`"
                ));
            }
            Ok(path)
        })
        .collect()
}

/// Rejects a path listed twice, or nested inside another listed path: the
/// result would depend on the order the rules run in (and a field hashed twice
/// would silently get a different hash).
fn check_overlaps(rules: &[Rule]) -> Result<(), String> {
    for (i, a) in rules.iter().enumerate() {
        for b in &rules[i + 1..] {
            let n = a.path.len().min(b.path.len());
            if a.path[..n] == b.path[..n] {
                let (pa, pb) = (a.path.join("."), b.path.join("."));
                return Err(if pa == pb && a.action == b.action {
                    format!("field `{pa}` is listed twice in `{}`", a.action.param())
                } else {
                    format!(
                        "field paths overlap: `{pa}` (in `{}`) and `{pb}` (in `{}`); \
                         list each field once",
                        a.action.param(),
                        b.action.param()
                    )
                });
            }
        }
    }
    Ok(())
}

/// Validates the hash key.
fn check_key(key: &str) -> Result<&str, String> {
    if key.is_empty() {
        return Err("parameter `hash_key` is empty".to_string());
    }
    let t = key.trim();
    if t.starts_with("${") && t.ends_with('}') {
        return Err(format!(
            "parameter `hash_key` is the literal text `{t}`: the variable was not substituted, \
             and a key anyone can read does not protect the hashed values"
        ));
    }
    Ok(key)
}

/// HMAC-SHA256 (RFC 2104) with the key schedule computed once.
struct KeyedHash {
    /// SHA-256 state after absorbing `key ^ ipad`.
    inner: Sha256,
    /// SHA-256 state after absorbing `key ^ opad`.
    outer: Sha256,
}

impl KeyedHash {
    const BLOCK: usize = 64;

    fn new(key: &[u8]) -> Self {
        let mut block = [0u8; Self::BLOCK];
        if key.len() > Self::BLOCK {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let mut inner = Sha256::new();
        inner.update(block.map(|b| b ^ 0x36));
        let mut outer = Sha256::new();
        outer.update(block.map(|b| b ^ 0x5c));
        Self { inner, outer }
    }

    fn mac(&self, message: &[u8]) -> [u8; 32] {
        let mut inner = self.inner.clone();
        inner.update(message);
        let mut outer = self.outer.clone();
        outer.update(inner.finalize());
        outer.finalize().into()
    }

    /// The replacement text: the first 32 hex characters of the MAC.
    fn token(&self, message: &[u8]) -> String {
        let mac = self.mac(message);
        hex::encode(&mac[..HASH_HEX_CHARS / 2])
    }
}

/// Writes `value` as canonical JSON text: compact, object keys sorted by their
/// UTF-8 bytes (at every depth), so equal values hash equally whatever the key
/// order of the incoming event.
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // Writing into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, k);
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        // Scalars: serde_json's own compact text (strings escaped, numbers as parsed).
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

sluice_sdk::export_transform!(Mask);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::abi::RawBatch;
    use sluice_sdk::testing::{run, run_batch, TestError};

    fn values(params: &[(&str, &str)], input: &[&str]) -> Vec<String> {
        let out = run::<Mask>(params, input).expect("run");
        assert!(out.rejected().is_empty(), "rejected: {:?}", out.rejected());
        out.values()
    }

    fn init_error(params: &[(&str, &str)]) -> String {
        match run::<Mask>(params, &[]) {
            Err(TestError::Init(e)) => e,
            Err(other) => panic!("expected an init error, got {other:?}"),
            Ok(_) => panic!("expected an init error, got a transform"),
        }
    }

    #[test]
    fn hmac_matches_rfc_4231_vectors() {
        let h = KeyedHash::new(b"Jefe");
        assert_eq!(
            hex::encode(h.mac(b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let h = KeyedHash::new(&[0x0b; 20]);
        assert_eq!(
            hex::encode(h.mac(b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // Key longer than a block is hashed first.
        let h = KeyedHash::new(&[0xaa; 131]);
        assert_eq!(
            hex::encode(h.mac(b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn drops_top_level_and_nested_fields() {
        let out = values(
            &[("drop", r#"["phone","address.street"]"#)],
            &[r#"{"id":1,"phone":"555","address":{"street":"Rua A","city":"SP"}}"#],
        );
        assert_eq!(out, vec![r#"{"address":{"city":"SP"},"id":1}"#]);
    }

    #[test]
    fn hashes_with_hmac_of_canonical_json_truncated_to_32_hex_chars() {
        let out = values(
            &[("hash", "email, address.street"), ("hash_key", "k")],
            &[r#"{"email":"alice@example.com","address":{"street":"Rua Augusta 100"}}"#],
        );
        assert_eq!(
            out,
            vec![
                r#"{"address":{"street":"fb8b4ae20226fedb125ab43c516466d2"},"email":"11f621857b5af0f0a7bd0774cae5cbee"}"#
            ]
        );
    }

    #[test]
    fn hashes_numbers_and_objects_canonically() {
        let out = values(
            &[("hash", "n,o"), ("hash_key", "k")],
            &[r#"{"n":42,"o":{"b":1,"a":2}}"#, r#"{"o":{"a":2,"b":1}}"#],
        );
        assert_eq!(
            out,
            vec![
                r#"{"n":"7955074f51169f1f64053d8b2c403d7f","o":"99eae53e0066cee37a164cd6170948f5"}"#,
                r#"{"o":"99eae53e0066cee37a164cd6170948f5"}"#,
            ]
        );
    }

    #[test]
    fn different_keys_give_different_hashes() {
        let out = values(
            &[("hash", "email"), ("hash_key", "other")],
            &[r#"{"email":"alice@example.com"}"#],
        );
        assert_eq!(out, vec![r#"{"email":"b595e6981c9001296682952dc5abecaa"}"#]);
    }

    #[test]
    fn redacts_with_default_and_custom_text() {
        let input = [r#"{"name":"Ana","doc":{"cpf":"123"}}"#];
        assert_eq!(
            values(&[("redact", "name,doc.cpf")], &input),
            vec![r#"{"doc":{"cpf":"***"},"name":"***"}"#]
        );
        assert_eq!(
            values(
                &[("redact", "doc.cpf"), ("redact_with", "[REDACTED]")],
                &input
            ),
            vec![r#"{"doc":{"cpf":"[REDACTED]"},"name":"Ana"}"#]
        );
    }

    #[test]
    fn combines_drop_hash_and_redact() {
        let out = values(
            &[
                ("drop", "phone"),
                ("hash", r#"["email"]"#),
                ("hash_key", "k"),
                ("redact", "name"),
            ],
            &[r#"{"id":7,"name":"Ana","email":"alice@example.com","phone":"+55"}"#],
        );
        assert_eq!(
            out,
            vec![r#"{"email":"11f621857b5af0f0a7bd0774cae5cbee","id":7,"name":"***"}"#]
        );
    }

    #[test]
    fn paths_through_arrays_apply_to_every_element() {
        let out = values(
            &[("hash", "contacts.email"), ("hash_key", "k")],
            &[r#"{"contacts":[{"email":"a@x.io"},{"email":"b@y.io"},{"tel":"1"},3]}"#],
        );
        assert_eq!(
            out,
            vec![
                r#"{"contacts":[{"email":"2fae6622a2d21b44c37b92cbd9a0e19d"},{"email":"619f14df74c24fbab803eb3bb089aedd"},{"tel":"1"},3]}"#
            ]
        );
    }

    #[test]
    fn missing_fields_and_nulls_are_left_alone_and_bytes_kept() {
        // Nothing to change: the original bytes go out, number formatting included.
        let input = r#"{"price": 50.50, "email": null, "address": "flat"}"#;
        let out = run::<Mask>(
            &[
                ("hash", "email"),
                ("hash_key", "k"),
                ("redact", "address.street"),
                ("drop", "phone"),
            ],
            &[input],
        )
        .expect("run");
        assert_eq!(out.raw_values(), vec![input]);
    }

    #[test]
    fn rejects_values_that_are_not_objects() {
        let out = run::<Mask>(
            &[("drop", "a")],
            &[r#"[1,2]"#, r#""text""#, "null", "not json", r#"{"a":1}"#],
        )
        .expect("run");
        assert_eq!(out.values(), vec!["{}"]);
        let rejected = out.rejected();
        assert_eq!(
            rejected[..3],
            [
                (
                    0,
                    "mask expects a JSON object value, found an array".to_string()
                ),
                (
                    1,
                    "mask expects a JSON object value, found a string".to_string()
                ),
                (
                    2,
                    "mask expects a JSON object value, found null".to_string()
                ),
            ]
        );
        assert_eq!(rejected[3].0, 3);
        assert!(rejected[3].1.starts_with("value is not valid JSON"));
    }

    #[test]
    fn forwards_tombstones_with_their_key() {
        let mut batch = RawBatch {
            streams: vec!["people".to_string()],
            ..RawBatch::default()
        };
        batch.push_event(Some(b"42"), None, &[], 5, 0);
        batch.push_event(Some(b"43"), Some(br#"{"email":"x"}"#), &[], 6, 0);
        let out = run_batch::<Mask>(&[("redact", "email")], &batch).expect("run");
        assert_eq!(out.values(), vec!["null", r#"{"email":"***"}"#]);
        assert_eq!(
            out.keys(),
            vec![Some("42".to_string()), Some("43".to_string())]
        );
        assert!(out.raw.events.events[0].value.is_none());
    }

    #[test]
    fn comma_and_json_lists_are_equivalent() {
        let input = [r#"{"a":1,"b":{"c":2},"d":3}"#];
        let json = values(&[("drop", r#"["a", "b.c"]"#)], &input);
        let comma = values(&[("drop", " a , b.c ,")], &input);
        assert_eq!(json, vec![r#"{"b":{},"d":3}"#]);
        assert_eq!(json, comma);
    }

    #[test]
    fn refuses_bad_parameters() {
        assert_eq!(
            init_error(&[("hash", "email")]),
            "parameter `hash_key` is required when `hash` is set (use a secret, e.g. `hash_key: ${MASK_KEY}`)"
        );
        assert_eq!(
            init_error(&[("drop", "a"), ("hash_key", "k")]),
            "parameter `hash_key` is set but `hash` lists no fields"
        );
        assert_eq!(
            init_error(&[("drop", "a"), ("redact_with", "x")]),
            "parameter `redact_with` is set but `redact` lists no fields"
        );
        assert_eq!(
            init_error(&[("drops", "a")]),
            "unknown parameter `drops`; allowed: drop, hash, hash_key, redact, redact_with"
        );
        assert_eq!(
            init_error(&[]),
            "nothing to mask: set at least one of `drop`, `hash`, `redact` to a list of field paths"
        );
        assert_eq!(
            init_error(&[("drop", "a..b")]),
            "parameter `drop`: `a..b` is not a field path (empty segment); write nested fields as `a.b`"
        );
        assert_eq!(
            init_error(&[("drop", "[1]")]),
            "parameter `drop`: expected field paths as strings, found 1"
        );
        assert!(init_error(&[("drop", "[\"a\"")])
            .starts_with("parameter `drop`: expected a JSON list of field paths ("));
        assert_eq!(
            init_error(&[("hash", "email"), ("hash_key", "")]),
            "parameter `hash_key` is empty"
        );
        assert_eq!(
            init_error(&[("hash", "email"), ("hash_key", "${MASK_KEY}")]),
            "parameter `hash_key` is the literal text `${MASK_KEY}`: the variable was not \
             substituted, and a key anyone can read does not protect the hashed values"
        );
    }

    #[test]
    fn refuses_overlapping_paths() {
        assert_eq!(
            init_error(&[("hash", "email,email"), ("hash_key", "k")]),
            "field `email` is listed twice in `hash`"
        );
        assert_eq!(
            init_error(&[("drop", "customer"), ("redact", "customer.email")]),
            "field paths overlap: `customer` (in `drop`) and `customer.email` (in `redact`); \
             list each field once"
        );
    }
}
