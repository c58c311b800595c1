//! Writing the tree path's output in the style of the splicing path (and of
//! `filter`, which passes the input's bytes): keys in the input's order,
//! untouched values as the input wrote them. `serde_json`'s own writer would
//! sort the keys (its map is a `BTreeMap` in this build) and rewrite numbers
//! and escapes (`1.50` as `1.5`, `"\u00e9"` as `"é"`), so one pipeline would
//! emit two styles depending on which path a `project` stage takes.

use serde_json::{Map, Value};
use sluice_sdk::json::{Kind, Raw};

/// Where the stage wants keys that the input's order does not place.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The `select` paths, each as its names, in `select` order: at each
    /// level the selected names come first, in this order.
    pub selected: Vec<Vec<String>>,
    /// The names of renamed, then computed, top-level fields: written last,
    /// spelled as given, even where the input had a field of that name.
    pub added: Vec<String>,
    /// The top-level parents of nested renamed or computed fields: where the
    /// input has them, they stay in place; where not, they follow `added`.
    pub parents: Vec<String>,
}

/// Writes `value` as compact JSON into `out`, in the splicing path's style.
/// `input` is the event's value as it arrived. An object's keys come in
/// this order: the selected names at its path (in `select` order), the
/// input object's other keys at the same path (in the input's order and
/// spelling), the added names (top level only), then any left, in
/// alphabetical order. A value equal to the input's at the same path is
/// written as the input's text.
pub fn write(value: &Value, input: Option<Raw<'_>>, plan: &Plan, out: &mut Vec<u8>) {
    let mut path = Vec::new();
    write_at(value, input, plan, &mut path, out);
}

fn write_at<'v>(
    value: &'v Value,
    input: Option<Raw<'_>>,
    plan: &Plan,
    path: &mut Vec<&'v str>,
    out: &mut Vec<u8>,
) {
    // An object or array the stage did not touch is written as the input
    // wrote it (its spacing too), as the splicing path copies it.
    let selects_below = || {
        plan.selected
            .iter()
            .any(|s| s.len() > path.len() && s.iter().zip(path.iter()).all(|(s, p)| s == p))
    };
    if !path.is_empty() && (value.is_object() || value.is_array()) && !selects_below() {
        if let Some(raw) = input.filter(|r| r.to_value().is_ok_and(|v| v == *value)) {
            out.extend_from_slice(raw.bytes());
            return;
        }
    }
    match value {
        Value::Object(map) => write_object(map, input, plan, path, out),
        Value::Array(items) => {
            out.push(b'[');
            let mut from = input.filter(|r| r.kind() == Kind::Array).map(|r| r.items());
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let raw = from.as_mut().and_then(Iterator::next);
                // Below an array no name is selected or added.
                let mut below = vec!["\0[]"];
                write_at(item, raw, plan, &mut below, out);
            }
            out.push(b']');
        }
        leaf => match input.filter(|r| same_leaf(*r, leaf)) {
            Some(raw) => out.extend_from_slice(raw.bytes()),
            None => serialize(leaf, out),
        },
    }
}

fn write_object<'m, 'i>(
    map: &'m Map<String, Value>,
    input: Option<Raw<'i>>,
    plan: &Plan,
    path: &mut Vec<&'m str>,
    out: &mut Vec<u8>,
) {
    let input = input.filter(|r| r.kind() == Kind::Object);
    let depth = path.len();
    let top = depth == 0;
    // Each key once, with the input's own spelling of it when it has one
    // (`"caf\u00e9"` stays escaped, as the splicing path copies it).
    let mut order: Vec<(&'m str, Option<&'i [u8]>)> = Vec::with_capacity(map.len());
    let push =
        |k: &str, spelled: Option<&'i [u8]>, order: &mut Vec<(&'m str, Option<&'i [u8]>)>| {
            if let Some((key, _)) = map.get_key_value(k) {
                match order.iter_mut().find(|(o, _)| *o == key.as_str()) {
                    Some(entry) => {
                        if entry.1.is_none() {
                            entry.1 = spelled;
                        }
                    }
                    None => order.push((key.as_str(), spelled)),
                }
            }
        };
    let added = |k: &str| top && plan.added.iter().any(|a| a == k);
    for selected in &plan.selected {
        let under_here =
            selected.len() > depth && selected.iter().zip(path.iter()).all(|(s, p)| s == p);
        if under_here && !added(&selected[depth]) {
            push(&selected[depth], None, &mut order);
        }
    }
    if let Some(raw) = input {
        for (key, _) in raw.entries() {
            let text = key.text();
            if !added(&text) {
                push(&text, Some(key.escaped_text()), &mut order);
            }
        }
    }
    if top {
        for k in plan.added.iter().chain(&plan.parents) {
            push(k, None, &mut order);
        }
    }
    // Sorted here: `serde_json`'s map is ordered by insertion when a build
    // unifies its `preserve_order` feature in, and by key otherwise.
    let mut rest: Vec<&String> = map.keys().collect();
    rest.sort_unstable();
    for k in rest {
        push(k, None, &mut order);
    }
    out.push(b'{');
    for (i, (k, spelled)) in order.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match spelled {
            Some(text) if !added(k) => {
                out.push(b'"');
                out.extend_from_slice(text);
                out.push(b'"');
            }
            _ => serialize(&Value::String((*k).to_string()), out),
        }
        out.push(b':');
        let child = input.filter(|_| !added(k)).and_then(|r| r.get(k));
        if let Some(v) = map.get(*k) {
            path.push(k);
            write_at(v, child, plan, path, out);
            path.truncate(depth);
        }
    }
    out.push(b'}');
}

/// Writes `value` in the canonical style: compact, keys sorted at every
/// level, numbers and strings as `serde_json` writes them. Sorted here
/// rather than left to `serde_json`, whose map order depends on a feature
/// another crate in the build may turn on.
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serialize(&Value::String(k.clone()), out);
                out.push(b':');
                if let Some(v) = map.get(k) {
                    write_canonical(v, out);
                }
            }
            out.push(b'}');
        }
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
        leaf => serialize(leaf, out),
    }
}

/// True when `raw` is the same scalar as `leaf`, so its text can be kept.
fn same_leaf(raw: Raw<'_>, leaf: &Value) -> bool {
    match (raw.kind(), leaf) {
        (Kind::Null, Value::Null) => true,
        (Kind::Bool, Value::Bool(b)) => raw.as_bool() == Some(*b),
        (Kind::String, Value::String(s)) => raw.as_str().is_some_and(|r| r == s.as_str()),
        (Kind::Number, Value::Number(_)) => raw.to_value().is_ok_and(|v| v == *leaf),
        _ => false,
    }
}

fn serialize(v: &Value, out: &mut Vec<u8>) {
    // Writing a `Value` into a `Vec` cannot fail (no I/O, string keys).
    let _ = serde_json::to_writer(&mut *out, v);
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::json::JsonView;

    fn styled(input: &str, value: Value, plan: &Plan) -> String {
        let view = JsonView::parse(input.as_bytes()).expect("input");
        let mut out = Vec::new();
        write(&value, Some(view.root()), plan, &mut out);
        String::from_utf8(out).expect("utf-8")
    }

    fn names(paths: &[&str]) -> Vec<Vec<String>> {
        paths
            .iter()
            .map(|p| p.split('.').map(str::to_string).collect())
            .collect()
    }

    #[test]
    fn keys_keep_the_inputs_order_and_new_keys_follow() {
        let input = r#"{"z": 1, "a": {"y": 2, "b": 3}, "m": [ {"q": 1, "c": 2} ]}"#;
        let value = serde_json::json!({
            "z": 1, "a": {"y": 2, "b": 3, "new": true}, "m": [{"q": 1, "c": 2}], "added": 0
        });
        // The untouched array keeps its text, spacing included.
        assert_eq!(
            styled(input, value, &Plan::default()),
            r#"{"z":1,"a":{"y":2,"b":3,"new":true},"m":[ {"q": 1, "c": 2} ],"added":0}"#
        );
    }

    #[test]
    fn selected_names_come_first_at_each_level_and_added_ones_last() {
        let input = r#"{"a": 1, "b": {"x": 1, "y": 2}, "c": 3}"#;
        let value = serde_json::json!({"a": 1, "b": {"x": 1, "y": 2}, "c": 3, "n": 4, "m": 5});
        let plan = Plan {
            selected: names(&["c", "b.y", "b.x", "missing"]),
            added: vec!["n".into(), "m".into()],
            parents: Vec::new(),
        };
        assert_eq!(
            styled(input, value, &plan),
            r#"{"c":3,"b":{"y":2,"x":1},"a":1,"n":4,"m":5}"#
        );
        // An added field the input also had goes last, spelled as given.
        let input = r#"{"caf\u00e9": 1, "b": 2}"#;
        let value = serde_json::json!({"café": 3, "b": 2});
        let plan = Plan {
            selected: Vec::new(),
            added: vec!["café".into()],
            parents: Vec::new(),
        };
        assert_eq!(styled(input, value, &plan), r#"{"b":2,"café":3}"#);
    }

    #[test]
    fn untouched_scalars_keep_their_text_and_changed_ones_do_not() {
        let input = r#"{"price": 1.50, "big": 9007199254740993, "name": "caf\u00e9", "n": 2}"#;
        let mut value: Value = serde_json::from_str(input).expect("json");
        value["n"] = serde_json::json!(3);
        assert_eq!(
            styled(input, value, &Plan::default()),
            r#"{"price":1.50,"big":9007199254740993,"name":"caf\u00e9","n":3}"#
        );
    }

    #[test]
    fn with_no_input_it_is_plain_compact_json() {
        let mut out = Vec::new();
        write(
            &serde_json::json!({"b": [1, "x"], "a": null}),
            None,
            &Plan::default(),
            &mut out,
        );
        assert_eq!(out, br#"{"a":null,"b":[1,"x"]}"#);
    }
}
