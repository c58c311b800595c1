//! Avro in the Confluent wire format, as read from Kafka topics other
//! programs write: any bytes against a schema must give an error or a value
//! that becomes valid JSON, and never an allocation the message cannot pay
//! for (run with -malloc_limit_mb).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz::avro_wire(data));
