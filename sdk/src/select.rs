//! Field selections for plugins that combine several inputs (joins):
//! `order_id, price, customer.name as customer_name, shipment.origin`.
//!
//! Each item is `[source.]field [as name]`; `source` is one of the names the
//! plugin allows (e.g. the two sides of a join), and a bare field comes from
//! the first. The output name defaults to the field name. A field or name
//! holding `,`, `.` or ` as ` is written between backquotes
//! ([`crate::names`]): `` table.`my region` as `the region` ``.

use serde_json::{Map, Value};

/// One selected field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Index of its source in the plugin's list.
    pub source: usize,
    /// Field in that source's value.
    pub field: String,
    /// Name in the output.
    pub name: String,
}

/// A parsed selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection(pub Vec<Item>);

impl Selection {
    /// Parses `text` against the allowed `sources`; errors name the item.
    pub fn parse(param: &str, text: &str, sources: &[&str]) -> Result<Self, String> {
        let mut items = Vec::new();
        for part in crate::names::split(text, ',') {
            let (expr, alias) = match crate::names::split_once(part, " as ") {
                Some((e, a)) => (e.trim(), Some(a.trim())),
                None => (part, None),
            };
            let (source, field) = match crate::names::split_once(expr, ".") {
                Some((s, f)) => match sources.iter().position(|x| *x == s) {
                    Some(i) => (i, f),
                    None => {
                        return Err(format!(
                            "`{param}`: `{part}` names `{s}`, expected one of {}",
                            sources.join(", ")
                        ))
                    }
                },
                None => (0, expr),
            };
            let field = crate::names::name(field).map_err(|e| format!("`{param}`: {e}"))?;
            let alias = alias
                .map(crate::names::name)
                .transpose()
                .map_err(|e| format!("`{param}`: {e}"))?;
            if field.is_empty() || alias.as_ref().is_some_and(String::is_empty) {
                return Err(format!(
                    "`{param}`: `{part}` is not `[source.]field [as name]`"
                ));
            }
            items.push(Item {
                source,
                name: alias.unwrap_or_else(|| field.clone()),
                field,
            });
        }
        if items.is_empty() {
            return Err(format!("`{param}` is empty"));
        }
        Ok(Self(items))
    }

    /// Builds the output object; a missing source or field gives `null`.
    pub fn apply(&self, values: &[Option<&Value>]) -> Value {
        let mut out = Map::with_capacity(self.0.len());
        for item in &self.0 {
            let v = values
                .get(item.source)
                .copied()
                .flatten()
                .and_then(|v| v.get(&item.field))
                .cloned()
                .unwrap_or(Value::Null);
            out.insert(item.name.clone(), v);
        }
        Value::Object(out)
    }
}

/// A field's value as lookup text: strings as they are, other JSON as written.
pub fn key_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selections_pick_from_named_sources() {
        let s = Selection::parse(
            "fields",
            "order_id, customer.name as customer_name",
            &["order", "customer"],
        )
        .expect("parse");
        let order = json!({"order_id": 1, "x": 2});
        assert_eq!(
            s.apply(&[Some(&order), None]),
            json!({"order_id": 1, "customer_name": null})
        );
        assert!(Selection::parse("fields", "nope.x", &["a"]).is_err());
        let s = Selection::parse(
            "fields",
            "`my region`, customer.`a.b, c` as `x y`",
            &["order", "customer"],
        )
        .expect("parse");
        assert_eq!(
            s.0,
            vec![
                Item {
                    source: 0,
                    field: "my region".into(),
                    name: "my region".into()
                },
                Item {
                    source: 1,
                    field: "a.b, c".into(),
                    name: "x y".into()
                },
            ]
        );
        assert_eq!(key_text(&json!(5)), Some("5".into()));
        assert_eq!(key_text(&json!("5")), Some("5".into()));
    }
}
