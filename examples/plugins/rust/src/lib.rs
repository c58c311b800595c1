//! The reference `normalize` transform (see ../SPEC.md): masks `email`,
//! turns `price` into integer `price_cents` by currency, drops `aud`, and
//! emits one event per element of `items`.

use serde_json::{Map, Value};
use sluice_sdk::{Emitter, Event, EventError, Params, Transform};

/// The transform; it has no parameters.
pub struct Normalize;

fn factor(currency: &str) -> Option<f64> {
    match currency {
        "usd" | "eur" | "gbp" | "brl" => Some(100.0),
        "jpy" => Some(1.0),
        _ => None,
    }
}

fn mask(email: &str) -> String {
    match (email.chars().next(), email.rfind('@')) {
        (Some(first), Some(at)) => format!("{first}***@{}", &email[at + 1..]),
        _ => "***".to_string(),
    }
}

impl Transform for Normalize {
    fn new(params: &Params) -> Result<Self, String> {
        params.only(&[])?;
        Ok(Normalize)
    }

    fn process(&mut self, event: &Event<'_>, out: &mut Emitter<'_>) -> Result<(), EventError> {
        if event.is_tombstone() {
            out.forward();
            return Ok(());
        }
        let Ok(Value::Object(mut obj)) = event.json() else {
            return Err("expected a JSON object".into());
        };
        let currency = match obj.get("currency") {
            Some(Value::String(c)) => c.to_lowercase(),
            _ => return Err("currency must be a string".into()),
        };
        if currency == "aud" {
            return Ok(());
        }
        let Some(factor) = factor(&currency) else {
            return Err(format!("unknown currency {currency}").into());
        };
        let price = match obj.get("price").and_then(Value::as_f64) {
            Some(p) if p >= 0.0 => p,
            _ => return Err("price must be a non-negative number".into()),
        };
        obj.remove("price");
        obj.insert(
            "price_cents".into(),
            Value::from((price * factor + 0.5).floor() as i64),
        );
        obj.insert("currency".into(), Value::from(currency.to_uppercase()));
        if let Some(Value::String(email)) = obj.get("email") {
            let masked = mask(email);
            obj.insert("email".into(), Value::from(masked));
        }
        match obj.remove("items") {
            Some(Value::Array(items)) => {
                for (i, item) in items.into_iter().enumerate() {
                    let mut one: Map<String, Value> = obj.clone();
                    one.insert("item".into(), item);
                    one.insert("item_index".into(), Value::from(i));
                    out.json(&Value::Object(one));
                }
            }
            Some(other) => {
                obj.insert("items".into(), other);
                out.json(&Value::Object(obj));
            }
            None => out.json(&Value::Object(obj)),
        }
        Ok(())
    }
}

sluice_sdk::export_transform!(Normalize);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_masks_drops_aud_and_fans_out_items() {
        let out = sluice_sdk::testing::run::<Normalize>(
            &[],
            &[
                r#"{"price":50.5,"currency":"usd","email":"bill@example.com"}"#,
                r#"{"price":1,"currency":"aud"}"#,
                r#"{"price":1,"currency":"jpy","items":["a","b"]}"#,
                r#"[1]"#,
            ],
        )
        .expect("runs");
        assert_eq!(
            out.values(),
            vec![
                r#"{"currency":"USD","email":"b***@example.com","price_cents":5050}"#,
                r#"{"currency":"JPY","item":"a","item_index":0,"price_cents":1}"#,
                r#"{"currency":"JPY","item":"b","item_index":1,"price_cents":1}"#,
            ]
        );
        assert_eq!(
            out.rejected(),
            vec![(3, "expected a JSON object".to_string())]
        );
    }
}
