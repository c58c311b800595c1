//! Formats at the edges of a pipeline: event-time templates, Avro schemas
//! and values, the Confluent wire format and a Schema Registry (client and
//! embedded server).

pub mod avro;
pub mod codec;
pub mod registry;
pub mod schema;
pub mod time;
