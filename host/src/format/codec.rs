//! Message bodies at the Kafka edges: JSON, Kafka Connect's JSON with schema
//! (`{"schema": .., "payload": ..}`), and Avro in the Confluent wire format
//! with a Schema Registry. Sources decode into the JSON events flow in;
//! sinks encode from them.

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::schema::Schema;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::avro;
use super::registry::{RegistryClient, RegistryError, SubjectNaming};
use super::schema::{flat_record, to_avro_value, Columns};

/// A body format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// UTF-8 JSON, passed through (checked at sources).
    #[default]
    Json,
    /// Kafka Connect's JsonConverter with `schemas.enable=true`.
    JsonSchema,
    /// Avro, Confluent wire format, schemas in a Schema Registry.
    Avro,
    /// Bytes as they are (keys: any bytes; values must still be JSON to be
    /// useful to plugins).
    Raw,
}

/// Why a body could not be converted.
#[derive(Debug)]
pub enum CodecError {
    /// This body is bad (dead letter it with the reason).
    Bad(String),
    /// The registry is unreachable: retry later.
    Unavailable(String),
}

impl From<RegistryError> for CodecError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Refused(m) => CodecError::Bad(m),
            RegistryError::Unavailable(m) => CodecError::Unavailable(m),
        }
    }
}

/// Decodes bodies into JSON.
pub struct Decoder {
    format: Format,
    registry: Option<RegistryClient>,
}

impl Decoder {
    /// A decoder for `format`; Avro needs `registry` (its URL).
    pub fn new(format: Format, registry: Option<&str>) -> Self {
        Self {
            format,
            registry: registry.map(RegistryClient::new),
        }
    }

    /// The JSON bytes of `bytes`, or why not. `Ok(None)` leaves the body as it is.
    pub fn decode(&mut self, bytes: &[u8]) -> Result<Option<Vec<u8>>, CodecError> {
        match self.format {
            Format::Raw => Ok(None),
            Format::Json => crate::event::check_json(bytes)
                .map(|()| None)
                .map_err(|e| CodecError::Bad(format!("not JSON: {e}"))),
            Format::JsonSchema => {
                let v: Value = serde_json::from_slice(bytes)
                    .map_err(|e| CodecError::Bad(format!("not JSON: {e}")))?;
                match v {
                    Value::Object(mut m) if m.contains_key("payload") => {
                        let payload = m.remove("payload").unwrap_or(Value::Null);
                        Ok(Some(payload.to_string().into_bytes()))
                    }
                    _ => Err(CodecError::Bad(
                        "not Kafka Connect JSON with schema: expected an object with `schema` and `payload`".into(),
                    )),
                }
            }
            Format::Avro => {
                let (id, body) = avro::split_wire(bytes).map_err(CodecError::Bad)?;
                let registry = self
                    .registry
                    .as_mut()
                    .ok_or_else(|| CodecError::Bad("format avro needs `schema_registry`".into()))?;
                let schema = registry.schema(id)?;
                let value = avro::decode(&schema, body)
                    .map_err(|e| CodecError::Bad(format!("schema id {id}: {e}")))?;
                Ok(Some(avro::to_json(&value).to_string().into_bytes()))
            }
        }
    }
}

/// Encodes JSON events into bodies.
pub struct Encoder {
    format: Format,
    registry: Option<RegistryClient>,
    naming: SubjectNaming,
    given: Option<Arc<Schema>>,
    record_name: Option<String>,
    is_key: bool,
    /// Derived schemas by column signature: (schema, columns).
    derived: HashMap<String, (Arc<Schema>, Columns)>,
}

impl Encoder {
    /// An encoder for `format`; Avro needs `registry`, and uses `schema` if
    /// given or derives a record schema (every field nullable) from each event.
    pub fn new(
        format: Format,
        registry: Option<&str>,
        naming: SubjectNaming,
        schema: Option<Schema>,
        record_name: Option<String>,
        is_key: bool,
    ) -> Self {
        Self {
            format,
            registry: registry.map(RegistryClient::new),
            naming,
            given: schema.map(Arc::new),
            record_name,
            is_key,
            derived: HashMap::new(),
        }
    }

    /// The body for `topic` from the event bytes `json`.
    pub fn encode(&mut self, topic: &str, bytes: &[u8]) -> Result<Vec<u8>, CodecError> {
        match self.format {
            Format::Raw | Format::Json => Ok(bytes.to_vec()),
            Format::JsonSchema => {
                let v: Value = serde_json::from_slice(bytes)
                    .map_err(|e| CodecError::Bad(format!("event is not JSON: {e}")))?;
                Ok(json!({"schema": connect_schema(&v, None), "payload": v})
                    .to_string()
                    .into_bytes())
            }
            Format::Avro => {
                let v: Value = serde_json::from_slice(bytes)
                    .map_err(|e| CodecError::Bad(format!("event is not JSON: {e}")))?;
                let (schema, value) = match &self.given {
                    Some(s) => {
                        let value = to_avro_value(&v, s).map_err(CodecError::Bad)?;
                        (s.clone(), value)
                    }
                    None => {
                        let Value::Object(obj) = &v else {
                            return Err(CodecError::Bad(
                                "a derived Avro schema needs a JSON object event; give `schema` for other shapes".into(),
                            ));
                        };
                        let (schema, cols) = self.derive(topic, obj)?;
                        (schema, flat_record(obj, &cols))
                    }
                };
                let subject = self.naming.subject(topic, &schema, self.is_key);
                let registry = self
                    .registry
                    .as_mut()
                    .ok_or_else(|| CodecError::Bad("format avro needs `schema_registry`".into()))?;
                let id = registry.register(&subject, &schema)?;
                let body = avro::encode(&schema, value).map_err(CodecError::Bad)?;
                Ok(avro::frame(id, &body))
            }
        }
    }

    fn derive(
        &mut self,
        topic: &str,
        obj: &Map<String, Value>,
    ) -> Result<(Arc<Schema>, Columns), CodecError> {
        let cols = Columns::derive(std::iter::once(obj));
        let signature: String = cols
            .0
            .iter()
            .map(|c| format!("{}:{:?};", c.field, c.kind))
            .collect();
        if let Some((s, c)) = self.derived.get(&signature) {
            return Ok((s.clone(), c.clone()));
        }
        let name = self
            .record_name
            .clone()
            .unwrap_or_else(|| topic.to_string());
        let schema = Arc::new(cols.to_avro(&name).map_err(CodecError::Bad)?);
        self.derived
            .insert(signature, (schema.clone(), cols.clone()));
        Ok((schema, cols))
    }
}

/// A Kafka Connect schema describing `v` (every field optional).
pub fn connect_schema(v: &Value, field: Option<&str>) -> Value {
    let mut s = match v {
        Value::Null => json!({"type": "string"}),
        Value::Bool(_) => json!({"type": "boolean"}),
        Value::Number(n) if n.is_i64() || n.is_u64() => json!({"type": "int64"}),
        Value::Number(_) => json!({"type": "double"}),
        Value::String(_) => json!({"type": "string"}),
        Value::Array(items) => json!({
            "type": "array",
            "items": items.first().map_or(json!({"type": "string", "optional": true}), |i| connect_schema(i, None)),
        }),
        Value::Object(m) => json!({
            "type": "struct",
            "fields": m.iter().map(|(k, x)| connect_schema(x, Some(k))).collect::<Vec<_>>(),
        }),
    };
    if let Value::Object(o) = &mut s {
        o.insert("optional".into(), Value::Bool(field.is_some()));
        if let Some(f) = field {
            o.insert("field".into(), Value::String(f.into()));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_schema_wraps_and_unwraps() {
        let mut enc = Encoder::new(
            Format::JsonSchema,
            None,
            SubjectNaming::Topic,
            None,
            None,
            false,
        );
        let body = enc
            .encode("t", br#"{"id":1,"name":"a","tags":["x"],"x":1.5}"#)
            .unwrap_or_default();
        let v: Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(v["schema"]["type"], "struct");
        assert_eq!(v["schema"]["fields"][0]["type"], "int64");
        let mut dec = Decoder::new(Format::JsonSchema, None);
        let out = dec.decode(&body).ok().flatten().unwrap_or_default();
        assert_eq!(
            serde_json::from_slice::<Value>(&out).unwrap_or_default(),
            json!({"id":1,"name":"a","tags":["x"],"x":1.5})
        );
        assert!(matches!(dec.decode(b"{\"id\":1}"), Err(CodecError::Bad(_))));
        let mut json = Decoder::new(Format::Json, None);
        assert!(matches!(json.decode(b"{nope"), Err(CodecError::Bad(_))));
    }
}
