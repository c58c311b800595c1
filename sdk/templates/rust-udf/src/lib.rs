//! `{{name_snake}}(text)`: a Sluice user-defined function (the `udf` world).
//! Replace the body with yours; keep the signature.

use serde_json::Value;

/// The arguments come as JSON values; return one, or an error that
/// dead-letters the event whose expression made the call.
pub fn {{name_snake}}(args: &[Value]) -> Result<Value, String> {
    match args {
        // SQL's rule for scalar functions: null in, null out.
        [Value::Null] => Ok(Value::Null),
        [Value::String(s)] => Ok(Value::String(s.chars().rev().collect())),
        _ => Err("{{name_snake}}(text) takes one string".into()),
    }
}

sluice_sdk::export_udf!({{name_snake}});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverses_text() {
        // Bytes in, bytes out: exactly what the component runs.
        assert_eq!(
            sluice_sdk::udf::run_udf({{name_snake}}, br#"["abc"]"#),
            Ok(br#""cba""#.to_vec())
        );
        assert_eq!({{name_snake}}(&[Value::Null]), Ok(Value::Null));
        assert!({{name_snake}}(&[Value::from(1)]).is_err());
    }
}
