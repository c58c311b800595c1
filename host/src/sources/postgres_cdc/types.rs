//! PostgreSQL values (in their text form, as both `pgoutput` and the
//! snapshot's text-mode reads deliver them) to JSON. One mapping serves the
//! snapshot and the stream, so a row reads the same either way.
//!
//! | PostgreSQL | JSON |
//! |---|---|
//! | `smallint`, `integer`, `bigint`, `oid` | number |
//! | `real`, `double precision` | number (`NaN`/`Infinity` as strings) |
//! | `numeric` | number (`decimal_handling: double`, default) or string (`string`) |
//! | `boolean` | `true` / `false` |
//! | `text`, `varchar`, `char`, `name`, `uuid`, enums, others | string |
//! | `json`, `jsonb` | the JSON value itself |
//! | `bytea` | base64 string |
//! | `timestamp` | `"2024-05-01T10:20:30.123456"` (no zone) |
//! | `timestamptz` | `"2024-05-01T10:20:30.123456Z"` (UTC) |
//! | `date` | `"2024-05-01"` |
//! | `time` | `"10:20:30.123456"` |
//! | arrays of any of these | array of the element mapping (`NULL` → null) |

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::Value;

/// How a type's text form becomes JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeKind {
    /// true / false.
    Bool,
    /// Integer number.
    Int,
    /// Floating point number.
    Float,
    /// Arbitrary precision number.
    Numeric,
    /// A string as is.
    Text,
    /// Parsed JSON.
    Json,
    /// Base64 of the bytes.
    Bytea,
    /// Timestamp without zone.
    Timestamp,
    /// Timestamp with zone, normalised to UTC.
    TimestampTz,
    /// Calendar date.
    Date,
    /// An array of the element kind.
    Array(Box<TypeKind>),
}

/// How `numeric` values are represented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecimalHandling {
    /// A JSON number (may lose digits beyond double precision).
    #[default]
    Double,
    /// The exact decimal as a string.
    String,
}

/// Known type OIDs, extended with the database's own types as they are seen.
#[derive(Debug, Clone)]
pub struct TypeRegistry {
    kinds: HashMap<u32, TypeKind>,
    decimals: DecimalHandling,
}

/// Built-in type OIDs and their kinds (element types first, then arrays).
const BUILTIN: &[(u32, &TypeKind)] = &[
    (16, &TypeKind::Bool),
    (20, &TypeKind::Int),
    (21, &TypeKind::Int),
    (23, &TypeKind::Int),
    (26, &TypeKind::Int),
    (700, &TypeKind::Float),
    (701, &TypeKind::Float),
    (1700, &TypeKind::Numeric),
    (25, &TypeKind::Text),
    (1043, &TypeKind::Text),
    (1042, &TypeKind::Text),
    (19, &TypeKind::Text),
    (18, &TypeKind::Text),
    (2950, &TypeKind::Text),
    (1083, &TypeKind::Text),
    (114, &TypeKind::Json),
    (3802, &TypeKind::Json),
    (17, &TypeKind::Bytea),
    (1114, &TypeKind::Timestamp),
    (1184, &TypeKind::TimestampTz),
    (1082, &TypeKind::Date),
];

/// Array type OID → element type OID, for the built-ins above.
const BUILTIN_ARRAYS: &[(u32, u32)] = &[
    (1000, 16),
    (1016, 20),
    (1005, 21),
    (1007, 23),
    (1021, 700),
    (1022, 701),
    (1231, 1700),
    (1009, 25),
    (1015, 1043),
    (1014, 1042),
    (2951, 2950),
    (199, 114),
    (3807, 3802),
    (1001, 17),
    (1115, 1114),
    (1185, 1184),
    (1182, 1082),
];

impl TypeRegistry {
    /// The built-in types.
    pub fn new(decimals: DecimalHandling) -> Self {
        let mut kinds: HashMap<u32, TypeKind> =
            BUILTIN.iter().map(|(o, k)| (*o, (*k).clone())).collect();
        for (arr, elem) in BUILTIN_ARRAYS {
            if let Some(k) = kinds.get(elem).cloned() {
                kinds.insert(*arr, TypeKind::Array(Box::new(k)));
            }
        }
        Self { kinds, decimals }
    }

    /// Whether `oid` is known (others are looked up in `pg_type`).
    pub fn knows(&self, oid: u32) -> bool {
        self.kinds.contains_key(&oid)
    }

    /// Records a database type: `category` is `pg_type.typcategory`, `elem`
    /// the element type of an array.
    pub fn learn(&mut self, oid: u32, category: &str, elem: Option<u32>) {
        let kind = match (category, elem) {
            ("A", Some(e)) => TypeKind::Array(Box::new(self.kind(e))),
            ("B", _) => TypeKind::Bool,
            _ => TypeKind::Text,
        };
        self.kinds.insert(oid, kind);
    }

    fn kind(&self, oid: u32) -> TypeKind {
        self.kinds.get(&oid).cloned().unwrap_or(TypeKind::Text)
    }

    /// The JSON for `text`, a value of type `oid`.
    pub fn to_json(&self, oid: u32, text: &str) -> Value {
        convert(&self.kind(oid), text, self.decimals)
    }
}

fn convert(kind: &TypeKind, text: &str, decimals: DecimalHandling) -> Value {
    let string = || Value::String(text.to_string());
    match kind {
        TypeKind::Bool => Value::Bool(text == "t" || text == "true"),
        TypeKind::Int => text
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| string()),
        TypeKind::Float => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(string),
        TypeKind::Numeric => match decimals {
            DecimalHandling::String => string(),
            DecimalHandling::Double => {
                // Integers keep every digit; fractions go through f64.
                if let Ok(i) = text.parse::<i64>() {
                    Value::from(i)
                } else {
                    text.parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map(Value::Number)
                        .unwrap_or_else(string)
                }
            }
        },
        TypeKind::Text => string(),
        TypeKind::Json => serde_json::from_str(text).unwrap_or_else(|_| string()),
        TypeKind::Bytea => match text.strip_prefix("\\x").and_then(|h| hex::decode(h).ok()) {
            Some(bytes) => Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
            None => string(),
        },
        TypeKind::Timestamp => Value::String(text.replacen(' ', "T", 1)),
        TypeKind::TimestampTz => Value::String(timestamptz(text)),
        TypeKind::Date => string(),
        TypeKind::Array(elem) => match parse_array(text) {
            Some(items) => Value::Array(
                items
                    .into_iter()
                    .map(|item| match item {
                        None => Value::Null,
                        Some(s) => convert(elem, &s, decimals),
                    })
                    .collect(),
            ),
            None => string(),
        },
    }
}

/// `2024-05-01 10:20:30.5+00` (the session runs in UTC) → `2024-05-01T10:20:30.500000Z`:
/// six fraction digits always, as Debezium writes a `timestamptz` of default precision.
fn timestamptz(text: &str) -> String {
    let t = text.replacen(' ', "T", 1);
    let Some(base) = t.strip_suffix("+00") else {
        // Not UTC (or `infinity`): left as the server wrote it.
        return t;
    };
    let (whole, fraction) = base.split_once('.').unwrap_or((base, ""));
    if fraction.len() > 6 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return format!("{base}Z");
    }
    format!("{whole}.{fraction:0<6}Z")
}

/// Parses a one-dimensional array literal: `{1,2,NULL,"a,b","q\"x"}`.
/// Multi-dimensional arrays come back as nested strings' parents: `None`
/// makes the caller keep the literal as a string.
pub fn parse_array(text: &str) -> Option<Vec<Option<String>>> {
    let inner = text.strip_prefix('{')?.strip_suffix('}')?;
    if inner.starts_with('{') {
        return None;
    }
    let mut items = Vec::new();
    if inner.is_empty() {
        return Some(items);
    }
    let mut chars = inner.chars().peekable();
    loop {
        let mut item = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            loop {
                match chars.next()? {
                    '\\' => item.push(chars.next()?),
                    '"' => break,
                    c => item.push(c),
                }
            }
            items.push(Some(item));
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                item.push(c);
                chars.next();
            }
            items.push((item != "NULL").then_some(item));
        }
        match chars.next() {
            Some(',') => continue,
            None => break,
            Some(_) => return None,
        }
    }
    Some(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_map_as_documented() {
        let r = TypeRegistry::new(DecimalHandling::Double);
        assert_eq!(r.to_json(23, "42"), json!(42));
        assert_eq!(r.to_json(16, "t"), json!(true));
        assert_eq!(r.to_json(1700, "50.50"), json!(50.5));
        assert_eq!(
            r.to_json(1700, "12345678901234567"),
            json!(12345678901234567i64)
        );
        assert_eq!(r.to_json(3802, r#"{"a": [1]}"#), json!({"a": [1]}));
        assert_eq!(r.to_json(17, "\\x68690a"), json!("aGkK"));
        assert_eq!(
            r.to_json(1114, "2024-05-01 10:20:30.5"),
            json!("2024-05-01T10:20:30.5")
        );
        assert_eq!(
            r.to_json(1184, "2024-05-01 10:20:30+00"),
            json!("2024-05-01T10:20:30.000000Z")
        );
        assert_eq!(
            r.to_json(1184, "2024-05-01 10:20:30.5+00"),
            json!("2024-05-01T10:20:30.500000Z")
        );
        assert_eq!(r.to_json(1184, "infinity"), json!("infinity"));
        assert_eq!(r.to_json(701, "NaN"), json!("NaN"));
        let s = TypeRegistry::new(DecimalHandling::String);
        assert_eq!(s.to_json(1700, "50.50"), json!("50.50"));
    }

    #[test]
    fn arrays_and_learned_types() {
        let mut r = TypeRegistry::new(DecimalHandling::Double);
        assert_eq!(r.to_json(1007, "{1,NULL,3}"), json!([1, null, 3]));
        assert_eq!(
            r.to_json(1009, r#"{plain,"with,comma","q\"uote",NULL}"#),
            json!(["plain", "with,comma", "q\"uote", null])
        );
        assert_eq!(r.to_json(1009, "{}"), json!([]));
        assert_eq!(r.to_json(1007, "{{1,2},{3,4}}"), json!("{{1,2},{3,4}}"));
        r.learn(90001, "E", None);
        r.learn(90002, "A", Some(90001));
        assert_eq!(r.to_json(90001, "sad"), json!("sad"));
        assert_eq!(r.to_json(90002, "{sad,ok}"), json!(["sad", "ok"]));
    }
}
