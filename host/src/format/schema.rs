//! Record schemas for Avro (the `s3` sink's files, Kafka's Confluent wire
//! format) and Parquet: given in the pipeline file or derived from events.

use apache_avro::schema::Schema;
use serde_json::{Map, Value};

/// The type of a derived (or flat) column. Every column is nullable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 64-bit integer.
    Long,
    /// 64-bit float.
    Double,
    /// true/false.
    Boolean,
    /// UTF-8 text; nested values and mixed types are written as JSON text.
    String,
}

/// One column: the JSON field it reads and its (Avro-safe) name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Field name in the event.
    pub field: String,
    /// Name in the written schema (the field name made a valid Avro name).
    pub name: String,
    /// Its type.
    pub kind: Kind,
}

/// Flat, nullable columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Columns(pub Vec<Column>);

/// Parses an Avro schema given as a JSON mapping or as JSON text; it must be a record.
pub fn parse_avro(v: &Value) -> Result<Schema, String> {
    let schema = match v {
        Value::String(text) => Schema::parse_str(text),
        other => Schema::parse(other),
    }
    .map_err(|e| e.to_string())?;
    match schema {
        Schema::Record(_) => Ok(schema),
        _ => Err("expected a schema of `type: record`".into()),
    }
}

/// `s` as an Avro name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn avro_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn kind_of(v: &Value) -> Option<Kind> {
    match v {
        Value::Null => None,
        Value::Bool(_) => Some(Kind::Boolean),
        Value::Number(n) if n.is_i64() => Some(Kind::Long),
        Value::Number(_) => Some(Kind::Double),
        _ => Some(Kind::String),
    }
}

fn merge(a: Kind, b: Kind) -> Kind {
    match (a, b) {
        (a, b) if a == b => a,
        (Kind::Long, Kind::Double) | (Kind::Double, Kind::Long) => Kind::Double,
        _ => Kind::String,
    }
}

impl Columns {
    /// Columns of every top-level field of `rows`, in order of first
    /// appearance (fields new in the same event in name order, as parsed
    /// JSON objects keep them), typed by all their non-null values (all
    /// null: string).
    pub fn derive<'a>(rows: impl IntoIterator<Item = &'a Map<String, Value>>) -> Self {
        let mut cols: Vec<(String, Option<Kind>)> = Vec::new();
        let mut at = std::collections::HashMap::new();
        for row in rows {
            for (field, v) in row {
                let i = *at.entry(field.clone()).or_insert_with(|| {
                    cols.push((field.clone(), None));
                    cols.len() - 1
                });
                if let Some(k) = kind_of(v) {
                    let slot = &mut cols[i].1;
                    *slot = Some(slot.map_or(k, |old| merge(old, k)));
                }
            }
        }
        let mut names = std::collections::HashSet::new();
        Columns(
            cols.into_iter()
                .map(|(field, kind)| {
                    let base = avro_name(&field);
                    let mut name = base.clone();
                    let mut n = 2;
                    while !names.insert(name.clone()) {
                        name = format!("{base}_{n}");
                        n += 1;
                    }
                    Column {
                        field,
                        name,
                        kind: kind.unwrap_or(Kind::String),
                    }
                })
                .collect(),
        )
    }

    /// Columns of a flat Avro record schema (primitive fields, optionally
    /// in a union with null).
    pub fn from_avro(schema: &Schema) -> Result<Self, String> {
        let Schema::Record(record) = schema else {
            return Err("expected a record schema".into());
        };
        let mut out = Vec::new();
        for f in &record.fields {
            let mut s = &f.schema;
            if let Schema::Union(u) = s {
                let non_null: Vec<&Schema> = u
                    .variants()
                    .iter()
                    .filter(|v| **v != Schema::Null)
                    .collect();
                match non_null.as_slice() {
                    [one] => s = one,
                    _ => {
                        return Err(format!(
                            "field `{}`: only unions of null and one type are supported",
                            f.name
                        ))
                    }
                }
            }
            let kind = match s {
                Schema::Long | Schema::Int => Kind::Long,
                Schema::Double | Schema::Float => Kind::Double,
                Schema::Boolean => Kind::Boolean,
                Schema::String => Kind::String,
                other => {
                    return Err(format!(
                        "field `{}`: type {other:?} is not supported (long, int, double, float, boolean, string)",
                        f.name
                    ))
                }
            };
            out.push(Column {
                field: f.name.clone(),
                name: f.name.clone(),
                kind,
            });
        }
        Ok(Columns(out))
    }

    /// The Avro record schema of these columns (every field `["null", T]`, default null).
    pub fn to_avro(&self, record_name: &str) -> Result<Schema, String> {
        let fields: Vec<Value> = self
            .0
            .iter()
            .map(|c| {
                let t = match c.kind {
                    Kind::Long => "long",
                    Kind::Double => "double",
                    Kind::Boolean => "boolean",
                    Kind::String => "string",
                };
                serde_json::json!({"name": c.name, "type": ["null", t], "default": null})
            })
            .collect();
        let json = serde_json::json!({
            "type": "record",
            "name": avro_name(record_name),
            "fields": fields,
        });
        Schema::parse(&json).map_err(|e| e.to_string())
    }
}

/// A column value from a JSON value, or why it does not fit.
pub enum Cell {
    /// Absent or null.
    Null,
    /// Integer.
    Long(i64),
    /// Float.
    Double(f64),
    /// Boolean.
    Boolean(bool),
    /// Text.
    String(String),
}

/// `v` as a cell of `kind`.
pub fn cell(v: Option<&Value>, kind: Kind, field: &str) -> Result<Cell, String> {
    let bad = |v: &Value| {
        Err(format!(
            "field `{field}` is {v}, which is not a {}",
            match kind {
                Kind::Long => "whole number",
                Kind::Double => "number",
                Kind::Boolean => "boolean",
                Kind::String => "string",
            }
        ))
    };
    Ok(match (v, kind) {
        (None | Some(Value::Null), _) => Cell::Null,
        (Some(Value::Number(n)), Kind::Long) => match n.as_i64() {
            Some(i) => Cell::Long(i),
            None => return bad(&Value::Number(n.clone())),
        },
        (Some(Value::Number(n)), Kind::Double) => match n.as_f64() {
            Some(f) => Cell::Double(f),
            None => return bad(&Value::Number(n.clone())),
        },
        (Some(Value::Bool(b)), Kind::Boolean) => Cell::Boolean(*b),
        (Some(Value::String(s)), Kind::String) => Cell::String(s.clone()),
        (Some(other), Kind::String) => Cell::String(other.to_string()),
        (Some(other), _) => return bad(other),
    })
}

/// `v` as an Avro value of `schema` (records, arrays, maps, unions, enums and primitives).
pub fn to_avro_value(v: &Value, schema: &Schema) -> Result<apache_avro::types::Value, String> {
    use apache_avro::types::Value as A;
    let mismatch = || {
        Err(format!(
            "{} does not fit the schema type {}",
            short(v),
            schema_name(schema)
        ))
    };
    Ok(match (schema, v) {
        (Schema::Null, Value::Null) => A::Null,
        (Schema::Boolean, Value::Bool(b)) => A::Boolean(*b),
        (Schema::Long, Value::Number(n)) => match n.as_i64() {
            Some(i) => A::Long(i),
            None => return mismatch(),
        },
        (Schema::Int, Value::Number(n)) => match n.as_i64().and_then(|i| i32::try_from(i).ok()) {
            Some(i) => A::Int(i),
            None => return mismatch(),
        },
        (Schema::Double, Value::Number(n)) => A::Double(n.as_f64().unwrap_or(f64::NAN)),
        (Schema::Float, Value::Number(n)) => A::Float(n.as_f64().unwrap_or(f64::NAN) as f32),
        (Schema::String, Value::String(s)) => A::String(s.clone()),
        (Schema::Bytes, Value::String(s)) => A::Bytes(s.clone().into_bytes()),
        (Schema::Enum(e), Value::String(s)) => match e.symbols.iter().position(|x| x == s) {
            Some(i) => A::Enum(i as u32, s.clone()),
            None => return mismatch(),
        },
        (Schema::Array(a), Value::Array(items)) => A::Array(
            items
                .iter()
                .map(|i| to_avro_value(i, &a.items))
                .collect::<Result<_, _>>()?,
        ),
        (Schema::Map(m), Value::Object(o)) => A::Map(
            o.iter()
                .map(|(k, i)| Ok((k.clone(), to_avro_value(i, &m.types)?)))
                .collect::<Result<_, String>>()?,
        ),
        (Schema::Record(r), Value::Object(o)) => A::Record(
            r.fields
                .iter()
                .map(|f| {
                    let value = o.get(&f.name).unwrap_or(&Value::Null);
                    let value = match (value, &f.default) {
                        (Value::Null, Some(d)) if !o.contains_key(&f.name) => d,
                        _ => value,
                    };
                    to_avro_value(value, &f.schema)
                        .map(|x| (f.name.clone(), x))
                        .map_err(|e| format!("field `{}`: {e}", f.name))
                })
                .collect::<Result<_, _>>()?,
        ),
        (Schema::Union(u), _) => {
            let mut last = String::new();
            for (i, variant) in u.variants().iter().enumerate() {
                match to_avro_value(v, variant) {
                    Ok(x) => return Ok(A::Union(i as u32, Box::new(x))),
                    Err(e) => last = e,
                }
            }
            return Err(last);
        }
        _ => return mismatch(),
    })
}

fn schema_name(s: &Schema) -> String {
    match s {
        Schema::Record(r) => format!("record {}", r.name.name()),
        Schema::Enum(e) => format!("enum {}", e.name.name()),
        other => format!("{:?}", apache_avro::schema::SchemaKind::from(other)).to_lowercase(),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        let mut end = 60;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s
    }
}

/// `row` as an Avro record of `cols`, every field an optional union
/// (`["null", T]`); a value that does not fit its column becomes null.
/// Shared by the Kafka Avro encoder and the S3 Avro writer.
pub fn flat_record(row: &Map<String, Value>, cols: &Columns) -> apache_avro::types::Value {
    use apache_avro::types::Value as A;
    A::Record(
        cols.0
            .iter()
            .map(|c| {
                let v = match cell(row.get(&c.field), c.kind, &c.field) {
                    Ok(Cell::Long(i)) => A::Union(1, Box::new(A::Long(i))),
                    Ok(Cell::Double(f)) => A::Union(1, Box::new(A::Double(f))),
                    Ok(Cell::Boolean(b)) => A::Union(1, Box::new(A::Boolean(b))),
                    Ok(Cell::String(s)) => A::Union(1, Box::new(A::String(s))),
                    Ok(Cell::Null) | Err(_) => A::Union(0, Box::new(A::Null)),
                };
                (c.name.clone(), v)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_columns_merge_types_and_keep_first_appearance_order() {
        let rows: Vec<Map<String, Value>> = [
            serde_json::json!({"id": 1, "name": "a", "x": null}),
            serde_json::json!({"id": 2, "score": 1.5, "x": {"y": 1}, "first-name": "b"}),
            serde_json::json!({"id": 3, "score": 2, "ok": true}),
        ]
        .into_iter()
        .filter_map(|v| v.as_object().cloned())
        .collect();
        let cols = Columns::derive(rows.iter());
        let got: Vec<(&str, &str, Kind)> = cols
            .0
            .iter()
            .map(|c| (c.field.as_str(), c.name.as_str(), c.kind))
            .collect();
        assert_eq!(
            got,
            vec![
                ("id", "id", Kind::Long),
                ("name", "name", Kind::String),
                ("x", "x", Kind::String),
                ("score", "score", Kind::Double),
                ("first-name", "first_name", Kind::String),
                ("ok", "ok", Kind::Boolean),
            ]
        );
        let avro = cols.to_avro("users-1").expect("a valid schema");
        let nullable = |name: &str, t: &str| serde_json::json!({"name": name, "type": ["null", t], "default": null});
        assert_eq!(
            serde_json::to_value(&avro).expect("serializes"),
            serde_json::json!({"type": "record", "name": "users_1", "fields": [
                nullable("id", "long"), nullable("name", "string"), nullable("x", "string"),
                nullable("score", "double"), nullable("first_name", "string"),
                nullable("ok", "boolean"),
            ]}),
            "one nullable field per column, names made valid Avro names"
        );
    }

    #[test]
    fn given_schemas_must_be_flat_records_for_parquet() {
        let s = parse_avro(&serde_json::json!({"type":"record","name":"u","fields":[
            {"name":"id","type":"long"},{"name":"n","type":["null","string"]}]}))
        .expect("parses");
        assert_eq!(Columns::from_avro(&s).expect("flat").0.len(), 2);
        let nested = parse_avro(&serde_json::json!({"type":"record","name":"u","fields":[
            {"name":"tags","type":{"type":"array","items":"string"}}]}))
        .expect("parses");
        let err = Columns::from_avro(&nested).expect_err("an array is not a column");
        assert!(
            err.starts_with("field `tags`: type Array")
                && err.ends_with("is not supported (long, int, double, float, boolean, string)"),
            "{err}"
        );
        assert_eq!(
            parse_avro(&serde_json::json!("\"long\"")).expect_err("not a record"),
            "expected a schema of `type: record`"
        );
    }
}
