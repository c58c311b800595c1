//! Avro in the Confluent wire format, as read from Kafka topics other
//! programs write: any bytes against a schema must give an error or a value
//! that becomes valid JSON, and never an allocation the message cannot pay
//! for (run with -malloc_limit_mb).
#![no_main]

use std::sync::OnceLock;

use apache_avro::Schema;
use libfuzzer_sys::fuzz_target;
use sluice::event::check_json;
use sluice::format::avro;

const SCHEMAS: &[&str] = &[
    r#"{"type":"record","name":"Order","fields":[
        {"name":"id","type":"long"},
        {"name":"name","type":"string"},
        {"name":"price","type":["null","double"],"default":null},
        {"name":"tags","type":{"type":"array","items":"string"}},
        {"name":"attrs","type":{"type":"map","values":"int"}},
        {"name":"raw","type":"bytes"},
        {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B","C"]}},
        {"name":"hash","type":{"type":"fixed","name":"Hash","size":4}},
        {"name":"ok","type":"boolean"},
        {"name":"ratio","type":"float"}
    ]}"#,
    r#"{"type":"record","name":"Logical","fields":[
        {"name":"day","type":{"type":"int","logicalType":"date"}},
        {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
        {"name":"at_us","type":{"type":"long","logicalType":"timestamp-micros"}},
        {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
        {"name":"uid","type":{"type":"string","logicalType":"uuid"}}
    ]}"#,
    r#"{"type":"record","name":"Node","fields":[
        {"name":"value","type":"int"},
        {"name":"next","type":["null","Node"],"default":null}
    ]}"#,
    r#"{"type":"array","items":{"type":"map","values":["null","string","long"]}}"#,
];

fn schemas() -> &'static [Schema] {
    static PARSED: OnceLock<Vec<Schema>> = OnceLock::new();
    PARSED.get_or_init(|| {
        SCHEMAS
            .iter()
            .map(|s| Schema::parse_str(s).expect("the fuzz schemas are valid"))
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, message)) = data.split_first() else {
        return;
    };
    let schemas = schemas();
    let schema = &schemas[usize::from(pick) % schemas.len()];
    let Ok((_id, body)) = avro::split_wire(message) else {
        return;
    };
    if let Ok(value) = avro::decode(schema, body) {
        let json = avro::to_json(&value).to_string();
        if let Err(e) = check_json(json.as_bytes()) {
            panic!("a decoded Avro value became invalid JSON: {e}");
        }
    }
});
