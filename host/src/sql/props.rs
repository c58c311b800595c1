//! `WITH (...)` properties: looked up by name, each marked as used, so that
//! whatever is left over is reported as unknown with what is supported.

use super::ast::Prop;
use super::error::{Pos, SqlError};

/// The properties of one statement.
pub struct Props<'a> {
    props: &'a [Prop],
    used: Vec<bool>,
    /// Where the statement is (for missing properties).
    pub at: Pos,
}

impl<'a> Props<'a> {
    /// Wraps a statement's properties; duplicate keys are an error.
    pub fn new(props: &'a [Prop], at: Pos) -> Result<Self, SqlError> {
        for (i, p) in props.iter().enumerate() {
            if props[..i].iter().any(|q| q.key == p.key) {
                return Err(SqlError::new(
                    p.key_at,
                    format!("property `{}` is given twice", p.key),
                ));
            }
        }
        Ok(Self {
            props,
            used: vec![false; props.len()],
            at,
        })
    }

    /// The property `key`, marked used.
    pub fn get(&mut self, key: &str) -> Option<&'a Prop> {
        let i = self.props.iter().position(|p| p.key == key)?;
        self.used[i] = true;
        Some(&self.props[i])
    }

    /// Its value as text.
    pub fn str(&mut self, key: &str) -> Option<String> {
        self.get(key).map(|p| p.value.clone())
    }

    /// A property that must be there.
    pub fn required(&mut self, key: &str, what: &str) -> Result<String, SqlError> {
        self.str(key)
            .ok_or_else(|| SqlError::new(self.at, format!("missing property `{key}` ({what})")))
    }

    /// A whole number, or a `${VAR}` reference to one (kept for the loader).
    pub fn number(&mut self, key: &str) -> Result<Option<NumberOrVar>, SqlError> {
        let Some(p) = self.get(key) else {
            return Ok(None);
        };
        if p.value.contains("${") {
            return Ok(Some(NumberOrVar::Var(p.value.clone())));
        }
        p.value
            .trim()
            .parse::<u64>()
            .map(|n| Some(NumberOrVar::Num(n)))
            .map_err(|_| {
                SqlError::new(
                    p.value_at,
                    format!("`{key}`: expected a whole number, found '{}'", p.value),
                )
            })
    }

    /// `true` or `false`.
    pub fn boolean(&mut self, key: &str) -> Result<Option<bool>, SqlError> {
        let Some(p) = self.get(key) else {
            return Ok(None);
        };
        match p.value.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(SqlError::new(
                p.value_at,
                format!("`{key}`: expected 'true' or 'false', found '{}'", p.value),
            )),
        }
    }

    /// One of `allowed` (case-insensitive), lower-cased.
    pub fn choice(&mut self, key: &str, allowed: &[&str]) -> Result<Option<String>, SqlError> {
        let Some(p) = self.get(key) else {
            return Ok(None);
        };
        let v = p.value.trim().to_ascii_lowercase();
        if allowed.contains(&v.as_str()) {
            Ok(Some(v))
        } else {
            Err(SqlError::new(
                p.value_at,
                format!(
                    "`{key}` = '{}' is not supported; supported: {}",
                    p.value,
                    allowed.join(", ")
                ),
            )
            .suggest(&v, allowed.iter().copied()))
        }
    }

    /// Marks every property whose key starts with one of `prefixes` used:
    /// settings that only matter to a Kafka cluster (converters, registry
    /// URLs), accepted so files run unchanged.
    pub fn accept_prefixed(&mut self, prefixes: &[&str]) {
        for (i, p) in self.props.iter().enumerate() {
            if prefixes.iter().any(|pre| p.key.starts_with(pre)) {
                self.used[i] = true;
            }
        }
    }

    /// Errors for every property not used, naming what `what` supports.
    pub fn leftovers(&self, what: &str, supported: &[&str]) -> Vec<SqlError> {
        self.props
            .iter()
            .zip(&self.used)
            .filter(|(_, used)| !**used)
            .map(|(p, _)| {
                SqlError::new(
                    p.key_at,
                    format!(
                        "unknown property `{}` for {what}; supported: {}",
                        p.key,
                        supported.join(", ")
                    ),
                )
                .suggest(&p.key, supported.iter().copied())
            })
            .collect()
    }
}

/// A number, or a `${VAR}` the loader fills in.
#[derive(Debug, Clone, PartialEq)]
pub enum NumberOrVar {
    /// A literal.
    Num(u64),
    /// `${VAR}`.
    Var(String),
}

impl NumberOrVar {
    /// As a YAML value.
    pub fn yaml(&self) -> super::plan::Y {
        match self {
            NumberOrVar::Num(n) => super::plan::Y::Int(*n),
            NumberOrVar::Var(v) => super::plan::Y::Str(v.clone()),
        }
    }
}
