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

use serde_json::Value;
use sha2::{Digest, Sha256};
use sluice_sdk::json::{JsonParser, Kind, Raw, RawKey};
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
    /// `redact_with` serialized as a JSON string, written for each redaction.
    redact_json: Vec<u8>,
    /// Every rule's index: the rules active at the top level.
    all: Vec<usize>,
    /// Reused buffer for the canonical JSON text of a value being hashed.
    scratch: Vec<u8>,
    /// Reused per event: the view's field table and the output value.
    parser: JsonParser,
    out: Vec<u8>,
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

        let redact_json = serde_json::to_vec(&redact_with).map_err(|e| e.to_string())?;
        Ok(Self {
            all: (0..rules.len()).collect(),
            rules,
            hasher,
            redact_json,
            scratch: Vec::new(),
            parser: JsonParser::new(),
            out: Vec::new(),
        })
    }

    fn process(&mut self, event: &Event<'_>, out: &mut Emitter<'_>) -> Result<(), EventError> {
        if event.is_tombstone() {
            out.forward();
            return Ok(());
        }
        let view = event.view(&mut self.parser)?;
        if !view.is_object() {
            return Err(EventError::Reject(format!(
                "mask expects a JSON object value, found {}",
                view.root().kind().described()
            )));
        }
        let mut splice = Splice {
            rules: &self.rules,
            hasher: self.hasher.as_ref(),
            redact_json: &self.redact_json,
            canonical: &mut self.scratch,
            changed: false,
        };
        self.out.clear();
        splice.object(view.root(), &self.all, 0, &mut self.out);
        if splice.changed {
            out.value(&self.out);
        } else {
            // Nothing matched: keep the original bytes (whitespace included).
            out.forward();
        }
        Ok(())
    }
}

/// One event's rewrite: copies the input's raw slices, replacing or leaving
/// out the values the rules name. Only the objects and arrays on a rule's
/// path are walked; everything else is copied byte for byte.
struct Splice<'r> {
    rules: &'r [Rule],
    hasher: Option<&'r KeyedHash>,
    /// `redact_with` as a JSON string.
    redact_json: &'r [u8],
    /// Reused buffer for the canonical text of a value being hashed.
    canonical: &'r mut Vec<u8>,
    changed: bool,
}

impl Splice<'_> {
    /// Writes `obj` with the rules in `active` (all matched so far down to
    /// segment `depth`) applied to its members.
    fn object(&mut self, obj: Raw<'_>, active: &[usize], depth: usize, out: &mut Vec<u8>) {
        out.push(b'{');
        let mut first = true;
        let mut entries = obj.entries();
        while let Some((key, value)) = entries.next() {
            let hit = active
                .iter()
                .position(|&r| key.is(&self.rules[r].path[depth]));
            let Some(hit) = hit else {
                write_member(out, &mut first, key, value.bytes());
                continue;
            };
            // A named field is written at most once, from its last occurrence
            // (what a tree parse keeps): an earlier duplicate would otherwise
            // carry the unmasked value past the rule.
            if entries
                .clone()
                .any(|(later, _)| later.is(&self.rules[active[hit]].path[depth]))
            {
                self.changed = true;
                continue;
            }
            let rule = &self.rules[active[hit]];
            if rule.path.len() == depth + 1 {
                // Overlapping paths are refused in `new`, so a leaf rule is
                // the only rule naming this field.
                self.leaf(rule.action, key, value, &mut first, out);
                continue;
            }
            match value.kind() {
                Kind::Object | Kind::Array => {
                    let below: Vec<usize> = active
                        .iter()
                        .copied()
                        .filter(|&r| {
                            let path = &self.rules[r].path;
                            path.len() > depth + 1 && key.is(&path[depth])
                        })
                        .collect();
                    open_member(out, &mut first, key);
                    self.nested(value, &below, depth + 1, out);
                }
                _ => write_member(out, &mut first, key, value.bytes()),
            }
        }
        out.push(b'}');
    }

    /// An object or array on a rule's path; an array applies the remaining
    /// path to every element.
    fn nested(&mut self, value: Raw<'_>, active: &[usize], depth: usize, out: &mut Vec<u8>) {
        match value.kind() {
            Kind::Object => self.object(value, active, depth, out),
            Kind::Array => {
                out.push(b'[');
                for (i, item) in value.items().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    self.nested(item, active, depth, out);
                }
                out.push(b']');
            }
            _ => out.extend_from_slice(value.bytes()),
        }
    }

    fn leaf(
        &mut self,
        action: Action,
        key: RawKey<'_>,
        value: Raw<'_>,
        first: &mut bool,
        out: &mut Vec<u8>,
    ) {
        // Hash and redact replace actual values only; `null` stays `null`.
        if action != Action::Drop && value.is_null() {
            write_member(out, first, key, value.bytes());
            return;
        }
        self.changed = true;
        match action {
            Action::Drop => {}
            Action::Hash => {
                // `hasher` is always set when a hash rule exists (checked in `new`).
                let Some(hasher) = self.hasher else {
                    write_member(out, first, key, value.bytes());
                    return;
                };
                self.canonical.clear();
                write_canonical_raw(value, self.canonical);
                open_member(out, first, key);
                out.push(b'"');
                out.extend_from_slice(hasher.token(self.canonical).as_bytes());
                out.push(b'"');
            }
            Action::Redact => write_member(out, first, key, self.redact_json),
        }
    }
}

/// Writes `"key":` (the key as it was written) after a comma if needed.
fn open_member(out: &mut Vec<u8>, first: &mut bool, key: RawKey<'_>) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    out.push(b'"');
    out.extend_from_slice(key.escaped_text());
    out.extend_from_slice(b"\":");
}

fn write_member(out: &mut Vec<u8>, first: &mut bool, key: RawKey<'_>, value: &[u8]) {
    open_member(out, first, key);
    out.extend_from_slice(value);
}

/// The canonical text of a raw value (see [`write_canonical`]). A string
/// without escapes is already canonical (serde_json writes non-ASCII as it
/// is and must escape only quotes, backslashes and controls, which such a
/// string cannot hold); anything else goes through the tree, so the hash is
/// the one the tree path always gave.
fn write_canonical_raw(value: Raw<'_>, out: &mut Vec<u8>) {
    if value.kind() == Kind::String && !value.bytes().contains(&b'\\') {
        out.extend_from_slice(value.bytes());
        return;
    }
    match value.to_value() {
        Ok(tree) => write_canonical(&tree, out),
        // Checked JSON the tree cannot hold (a number beyond f64, `1e400`):
        // its text as written.
        Err(_) => out.extend_from_slice(value.bytes()),
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

sluice_sdk::export_transform!(Mask);
sluice_sdk::declare_field_tables!();

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

    #[test]
    fn untouched_fields_pass_byte_for_byte() {
        // Big integers, number text, key order and inner whitespace of
        // fields no rule names are copied as they are.
        let input = r#"{"z":9007199254740993,"big":18446744073709551615,"price": 50.50,"e":1E+2,"phone":"555","nested":{"b": [1, 2.0],"a":-0}}"#;
        let out = run::<Mask>(&[("drop", "phone")], &[input]).expect("run");
        assert_eq!(
            out.raw_values(),
            vec![
                r#"{"z":9007199254740993,"big":18446744073709551615,"price":50.50,"e":1E+2,"nested":{"b": [1, 2.0],"a":-0}}"#
            ]
        );
        // A nested rule rewrites only the objects on its path.
        let input = r#"{"id":18446744073709551615,"doc":{"cpf":"1","n":9007199254740993},"list":[{"cpf":"2","x":1.10},7]}"#;
        let out = run::<Mask>(&[("redact", "doc.cpf, list.cpf")], &[input]).expect("run");
        assert_eq!(
            out.raw_values(),
            vec![
                r#"{"id":18446744073709551615,"doc":{"cpf":"***","n":9007199254740993},"list":[{"cpf":"***","x":1.10},7]}"#
            ]
        );
    }

    #[test]
    fn a_masked_field_given_twice_keeps_only_the_last_masked() {
        // Last wins, as in a tree; the earlier occurrence must not carry the
        // clear value past the rule.
        let out = run::<Mask>(
            &[("redact", "email, user.tel"), ("drop", "phone")],
            &[
                r#"{"email":"first@x.io","id":1,"email":"last@x.io","phone":"1","phone":"2"}"#,
                r#"{"email":"a@x.io","email":null}"#,
                r#"{"user":{"tel":"1"},"user":{"tel":"2","k":3}}"#,
                r#"{"id":1,"id":2}"#,
            ],
        )
        .expect("run");
        assert_eq!(
            out.raw_values(),
            vec![
                r#"{"id":1,"email":"***"}"#,
                r#"{"email":null}"#,
                r#"{"user":{"tel":"***","k":3}}"#,
                // Untouched duplicates pass as they are (a last-wins reader
                // sees the same value).
                r#"{"id":1,"id":2}"#,
            ]
        );
    }

    #[test]
    fn escaped_keys_and_unicode_values_match_and_hash_like_the_tree() {
        // `\u0065mail` is `email`; the hash of an escaped string is the hash
        // of its canonical text, the same as the unescaped spelling's.
        let out = run::<Mask>(
            &[("hash", "email"), ("hash_key", "k")],
            &[
                r#"{"\u0065mail":"alice@example.com"}"#,
                r#"{"email":"\u0061lice@example.com"}"#,
                r#"{"email":"ação"}"#,
                r#"{"email":"a\u00e7\u00e3o"}"#,
            ],
        )
        .expect("run");
        let raw = out.raw_values();
        assert_eq!(
            raw[0],
            r#"{"\u0065mail":"11f621857b5af0f0a7bd0774cae5cbee"}"#
        );
        assert_eq!(raw[1], r#"{"email":"11f621857b5af0f0a7bd0774cae5cbee"}"#);
        assert_eq!(raw[2], raw[3]);
    }

    #[test]
    fn hostile_values_are_rejected_with_a_reason() {
        let deep_array = format!(r#"{{"a":{}1{}}}"#, "[".repeat(200), "]".repeat(200));
        let deep_object = format!("{}{}", r#"{"a":"#.repeat(200), "}".repeat(200));
        // Nested arrays under a rule's path, within the limit: walked, not
        // a stack overflow.
        let nested_ok = format!(r#"{{"a":{}{{"b":1}}{}}}"#, "[".repeat(100), "]".repeat(100));
        let out = run::<Mask>(
            &[("drop", "a.b")],
            &[
                &deep_array,
                &deep_object,
                r#"{"a":1"#,
                r#"{"a":"\ud800"}"#,
                r#"{"a":1} x"#,
                &nested_ok,
            ],
        )
        .expect("run");
        let rejected = out.rejected();
        assert_eq!(
            rejected.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
        assert!(
            rejected[0].1.contains("recursion limit exceeded"),
            "{rejected:?}"
        );
        assert!(
            rejected[1].1.contains("recursion limit exceeded"),
            "{rejected:?}"
        );
        for (_, reason) in &rejected {
            assert!(reason.starts_with("value is not valid JSON: "), "{reason}");
        }
        assert_eq!(
            out.raw_values(),
            vec![format!(
                r#"{{"a":{}{{}}{}}}"#,
                "[".repeat(100),
                "]".repeat(100)
            )]
        );

        // Bytes that are not UTF-8.
        let mut batch = RawBatch {
            streams: vec!["s".to_string()],
            ..RawBatch::default()
        };
        batch.push_event(None, Some(b"{\"a\":\"\xff\"}"), &[], 0, 0);
        let out = run_batch::<Mask>(&[("drop", "a")], &batch).expect("run");
        assert!(out.values().is_empty());
        assert_eq!(
            out.rejected(),
            vec![(
                0,
                "value is not valid JSON: invalid UTF-8 at byte 6".to_string()
            )]
        );
    }
}
