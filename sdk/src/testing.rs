//! A stub host for native unit tests: runs a [`Transform`] over JSON values
//! with the same batch loop the Wasm build uses, no runtime needed.

use crate::abi::{CallError, RawBatch, RawOutput};
use crate::{run_transform, Params, Transform};

/// What a transform produced in a test run.
#[derive(Debug, Clone)]
pub struct TestOutput {
    /// The raw output batch.
    pub raw: RawOutput,
}

impl TestOutput {
    /// Output values as UTF-8 strings (`"null"` stands for a tombstone).
    pub fn values(&self) -> Vec<String> {
        self.raw
            .events
            .events
            .iter()
            .map(
                |e| match e.value.and_then(|s| s.slice(&self.raw.events.data)) {
                    Some(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                    None => "null".to_string(),
                },
            )
            .collect()
    }

    /// Output values parsed as JSON (tombstones as `Value::Null`).
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.values()
            .iter()
            .map(|v| serde_json::from_str(v).unwrap_or(serde_json::Value::Null))
            .collect()
    }

    /// Output keys as UTF-8 strings.
    pub fn keys(&self) -> Vec<Option<String>> {
        self.raw
            .events
            .events
            .iter()
            .map(|e| {
                e.key
                    .and_then(|s| s.slice(&self.raw.events.data))
                    .map(|b| String::from_utf8_lossy(b).into_owned())
            })
            .collect()
    }

    /// (input index, reason) of every rejected input event.
    pub fn rejected(&self) -> Vec<(u32, String)> {
        self.raw
            .rejected
            .iter()
            .map(|r| (r.index, r.reason.clone()))
            .collect()
    }
}

/// Why a test run failed before producing output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestError {
    /// `Transform::new` refused the parameters.
    Init(String),
    /// The call failed as a whole.
    Call(CallError),
}

/// Builds a transform from `params` and runs it over `values` (JSON text;
/// `"null"`... is a JSON null value, use [`run_batch`] for tombstones).
pub fn run<T: Transform>(
    params: &[(&str, &str)],
    values: &[&str],
) -> Result<TestOutput, TestError> {
    let mut batch = RawBatch {
        streams: vec!["test".to_string()],
        ..RawBatch::default()
    };
    for v in values {
        batch.push_event(None, Some(v.as_bytes()), &[], 0, 0);
    }
    run_batch::<T>(params, &batch)
}

/// Builds a transform from `params` and runs it over a hand-built batch.
pub fn run_batch<T: Transform>(
    params: &[(&str, &str)],
    batch: &RawBatch,
) -> Result<TestOutput, TestError> {
    let params = Params::new(params.iter().copied());
    let mut transform = T::new(&params).map_err(TestError::Init)?;
    let raw = run_transform(&mut transform, batch).map_err(TestError::Call)?;
    Ok(TestOutput { raw })
}
