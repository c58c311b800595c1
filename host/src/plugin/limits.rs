//! A stage's sandbox limits: what one plugin instance may use per call.
//!
//! They belong to the runtime (the plugin module enforces them); the pipeline
//! configuration only reads them from `limits:`.

use serde::Deserialize;

/// Per-stage sandbox limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Linear memory cap of one plugin instance, in MiB.
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u64,
    /// Wall-clock CPU budget of one call (one batch): milliseconds, or
    /// `unlimited` for trusted plugins (no epoch checks compiled in: faster,
    /// but a runaway plugin is no longer stopped).
    #[serde(default)]
    pub cpu_ms_per_call: CpuBudget,
}

/// A per-call CPU budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuBudget {
    /// At most this many milliseconds per call.
    Millis(u64),
    /// No budget (trusted plugins only).
    Unlimited,
}

impl Default for CpuBudget {
    fn default() -> Self {
        CpuBudget::Millis(2000)
    }
}

impl std::fmt::Display for CpuBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CpuBudget::Millis(ms) => write!(f, "{ms} ms per call"),
            CpuBudget::Unlimited => f.write_str("unlimited"),
        }
    }
}

impl<'de> Deserialize<'de> for CpuBudget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = CpuBudget;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("milliseconds (a positive integer) or `unlimited`")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<CpuBudget, E> {
                if v == 0 {
                    return Err(E::custom(
                        "0 ms would stop every call; expected milliseconds > 0 or `unlimited`",
                    ));
                }
                Ok(CpuBudget::Millis(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<CpuBudget, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom("expected milliseconds > 0 or `unlimited`"))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CpuBudget, E> {
                match v {
                    "unlimited" => Ok(CpuBudget::Unlimited),
                    other => Err(E::custom(format!(
                        "unknown value `{other}`; expected milliseconds or `unlimited`"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

fn default_memory_mb() -> u64 {
    128
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mb: default_memory_mb(),
            cpu_ms_per_call: CpuBudget::default(),
        }
    }
}
