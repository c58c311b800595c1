//! Object bodies: JSON lines, Avro object container files, Parquet files.

use std::sync::Arc;

use anyhow::{Context, Result};
use apache_avro::schema::Schema;
use serde_json::{Map, Value};
use sha2::Digest;

use crate::format::schema::{cell, flat_record, to_avro_value, Cell, Columns, Kind};

/// An Avro object container file of `rows`. The schema is `given` or derived
/// from the rows. The sync marker comes from `key`, so the same rows under the
/// same key give the same bytes (a replay rewrites identical objects).
pub fn avro(rows: &[Value], given: Option<&Schema>, record: &str, key: &str) -> Result<Vec<u8>> {
    let derived;
    let (schema, columns) = match given {
        Some(s) => (s, None),
        None => {
            let cols = Columns::derive(rows.iter().filter_map(Value::as_object));
            derived = cols
                .to_avro(record)
                .map_err(|e| anyhow::anyhow!("deriving an Avro schema: {e}"))?;
            (&derived, Some(cols))
        }
    };
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut marker = [0u8; 16];
    marker.copy_from_slice(&digest[..16]);
    let mut writer = apache_avro::Writer::builder()
        .schema(schema)
        .writer(Vec::new())
        .marker(marker)
        .build()
        .context("starting an Avro file")?;
    for row in rows {
        let value = match &columns {
            Some(cols) => {
                let obj = row.as_object().cloned().unwrap_or_default();
                flat_record(&obj, cols)
            }
            None => to_avro_value(row, schema).map_err(|e| anyhow::anyhow!(e))?,
        };
        writer
            .append_value(value)
            .context("encoding an Avro record")?;
    }
    writer.into_inner().context("finishing an Avro file")
}

/// A Parquet file (one row group, no compression) of `rows` with `given`
/// columns or columns derived from the rows. Every column is OPTIONAL.
pub fn parquet(rows: &[Value], given: Option<&Columns>) -> Result<Vec<u8>> {
    use parquet::basic::{LogicalType, Repetition, Type as Physical};
    use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::types::Type;

    let derived;
    let cols = match given {
        Some(c) => c,
        None => {
            derived = Columns::derive(rows.iter().filter_map(Value::as_object));
            &derived
        }
    };
    anyhow::ensure!(
        !cols.0.is_empty(),
        "the events have no fields, and a Parquet file needs at least one column"
    );
    let fields = cols
        .0
        .iter()
        .map(|c| {
            let physical = match c.kind {
                Kind::Long => Physical::INT64,
                Kind::Double => Physical::DOUBLE,
                Kind::Boolean => Physical::BOOLEAN,
                Kind::String => Physical::BYTE_ARRAY,
            };
            let mut b = Type::primitive_type_builder(&c.name, physical)
                .with_repetition(Repetition::OPTIONAL);
            if c.kind == Kind::String {
                b = b.with_logical_type(Some(LogicalType::String));
            }
            b.build().map(Arc::new)
        })
        .collect::<parquet::errors::Result<Vec<_>>>()?;
    let schema = Type::group_type_builder("schema")
        .with_fields(fields)
        .build()?;
    let props = WriterProperties::builder()
        .set_created_by("sluice".into())
        .build();
    let mut writer = SerializedFileWriter::new(Vec::new(), Arc::new(schema), Arc::new(props))?;
    let mut group = writer.next_row_group()?;
    let empty = Map::new();
    for c in &cols.0 {
        let mut column = group
            .next_column()?
            .context("the Parquet writer has fewer columns than the schema")?;
        let mut defs = Vec::with_capacity(rows.len());
        let cells = rows.iter().map(|r| {
            let obj = r.as_object().unwrap_or(&empty);
            cell(obj.get(&c.field), c.kind, &c.field).unwrap_or(Cell::Null)
        });
        macro_rules! put {
            ($t:ty, $variant:ident, $conv:expr) => {{
                let mut values = Vec::with_capacity(rows.len());
                for x in cells {
                    match x {
                        Cell::$variant(v) => {
                            defs.push(1i16);
                            values.push($conv(v));
                        }
                        _ => defs.push(0),
                    }
                }
                column
                    .typed::<$t>()
                    .write_batch(&values, Some(&defs), None)?;
            }};
        }
        match c.kind {
            Kind::Long => put!(Int64Type, Long, |v: i64| v),
            Kind::Double => put!(DoubleType, Double, |v: f64| v),
            Kind::Boolean => put!(BoolType, Boolean, |v: bool| v),
            Kind::String => put!(ByteArrayType, String, |v: String| ByteArray::from(
                v.into_bytes()
            )),
        }
        column.close()?;
    }
    group.close()?;
    Ok(writer.into_inner()?)
}
