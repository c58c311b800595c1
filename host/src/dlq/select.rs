//! Which dead letters a command applies to: `--kind`, `--stage`,
//! `--plugin` and a `--filter` expression in the language of the `filter`
//! plugin (`sluice_expr`), evaluated over the letter as `--json` shows it.

use anyhow::{Context, Result};
use serde_json::Value;
use sluice_expr::Expr;

use super::store::Letter;

/// A selection of dead letters; empty selects every one.
#[derive(Debug, Default)]
pub struct Selection {
    /// `sluice.error.kind` equals this.
    pub kind: Option<String>,
    /// `sluice.error.stage` equals this.
    pub stage: Option<String>,
    /// `sluice.error.plugin` (name, hash or version text) contains this.
    pub plugin: Option<String>,
    /// Must be true.
    pub filter: Option<Expr>,
}

impl Selection {
    /// From the command line's options.
    pub fn new(
        kind: Option<String>,
        stage: Option<String>,
        plugin: Option<String>,
        filter: Option<&str>,
    ) -> Result<Self> {
        let filter = filter
            .map(|f| {
                Expr::parse(f).map_err(|e| {
                    anyhow::anyhow!(
                        "--filter: {} at column {} of `{f}`",
                        e.message(),
                        e.column()
                    )
                })
            })
            .transpose()
            .context("the --filter expression")?;
        Ok(Self {
            kind,
            stage,
            plugin,
            filter,
        })
    }

    /// Whether `letter` (with its replay outcome, if any) is selected.
    pub fn matches(&self, letter: &Letter, replayed: Option<&str>) -> bool {
        if self.kind.as_ref().is_some_and(|k| *k != letter.kind)
            || self.stage.as_ref().is_some_and(|s| *s != letter.stage)
            || self.plugin.as_ref().is_some_and(|p| {
                !letter.plugin.contains(p.as_str()) && !letter.version.contains(p.as_str())
            })
        {
            return false;
        }
        match &self.filter {
            None => true,
            Some(expr) => {
                let mut doc = letter.to_json();
                if let Value::Object(o) = &mut doc {
                    o.insert("replayed".into(), replayed.map_or(Value::Null, Value::from));
                }
                expr.matches(&doc)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter() -> Letter {
        Letter {
            id: "0-abcdef".into(),
            offset: 0,
            line: 1,
            len: 1,
            digest: "abcdef0123456789".into(),
            kind: "rejected".into(),
            reason: "no total".into(),
            stage: "price".into(),
            plugin: "project (claims \"sluice-plugin-project@0.1.0\", sha256 1a2b3c4d)".into(),
            version: "0.1.0".into(),
            origin: "orders".into(),
            position: "7".into(),
            time_ms: None,
            timestamp_ms: 0,
            key: Value::Null,
            value: serde_json::json!({"n": 7, "total": "x"}),
            key_text: String::new(),
            value_text: r#"{"n":7,"total":"x"}"#.into(),
            headers: Default::default(),
        }
    }

    #[test]
    fn options_and_expressions_select() {
        let l = letter();
        let sel = |k: Option<&str>, s: Option<&str>, p: Option<&str>, f: Option<&str>| {
            Selection::new(k.map(Into::into), s.map(Into::into), p.map(Into::into), f)
                .expect("valid")
        };
        assert!(sel(None, None, None, None).matches(&l, None));
        assert!(sel(Some("rejected"), Some("price"), Some("1a2b3c4d"), None).matches(&l, None));
        assert!(!sel(Some("trap"), None, None, None).matches(&l, None));
        assert!(!sel(None, Some("other"), None, None).matches(&l, None));
        assert!(!sel(None, None, Some("mask"), None).matches(&l, None));
        assert!(sel(
            None,
            None,
            None,
            Some("value.n > 5 and reason = 'no total'")
        )
        .matches(&l, None));
        assert!(!sel(None, None, None, Some("value.n > 7")).matches(&l, None));
        assert!(sel(None, None, None, Some("replayed is null")).matches(&l, None));
        assert!(!sel(None, None, None, Some("replayed is null")).matches(&l, Some("delivered")));
        let err = Selection::new(None, None, None, Some("value.n >")).expect_err("bad");
        assert!(format!("{err:#}").contains("column"), "{err:#}");
    }
}
