//! {{name}}: a Sluice transform. Edit `process`; run `cargo test`, then
//! `sluice plugin build .` and `sluice plugin test <wasm> --input events.jsonl`.

use sluice_sdk::{Emitter, Event, EventError, Params, Transform};

/// The transform's state, built once from the stage's parameters.
pub struct Plugin {
    field: String,
}

impl Transform for Plugin {
    fn new(params: &Params) -> Result<Self, String> {
        params.only(&["field"])?;
        Ok(Self { field: params.get("field").unwrap_or("seen").to_string() })
    }

    fn process(&mut self, event: &Event<'_>, out: &mut Emitter<'_>) -> Result<(), EventError> {
        if event.is_tombstone() {
            out.forward(); // deletes must survive a transform
            return Ok(());
        }
        let mut value = event.json()?; // invalid JSON is dead-lettered with the reason
        let Some(obj) = value.as_object_mut() else {
            return Err("expected a JSON object".into());
        };
        obj.insert(self.field.clone(), true.into());
        out.json(&value);
        Ok(())
    }
}

sluice_sdk::export_transform!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_objects_and_rejects_the_rest() {
        let out = sluice_sdk::testing::run::<Plugin>(&[], &[r#"{"a":1}"#, "[1]"]).expect("runs");
        assert_eq!(out.values(), vec![r#"{"a":1,"seen":true}"#]);
        assert_eq!(out.rejected(), vec![(1, "expected a JSON object".to_string())]);
    }
}
