//! Compile errors: each with the line and column it is about and, when a
//! misspelt name is close to a known one, a suggestion.

use std::fmt;

/// A position in the statement file (1-based).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    /// Line.
    pub line: usize,
    /// Column, in characters.
    pub col: usize,
}

/// One problem in a statement file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SqlError {
    /// Where it is.
    pub at: Pos,
    /// What is wrong and what was expected.
    pub message: String,
    /// A known name close to the one written.
    pub suggestion: Option<String>,
}

impl SqlError {
    /// An error at `at`.
    pub fn new(at: Pos, message: impl Into<String>) -> Self {
        Self {
            at,
            message: message.into(),
            suggestion: None,
        }
    }

    /// Adds the known name closest to `written`, if one is close enough.
    pub fn suggest<'a>(mut self, written: &str, known: impl IntoIterator<Item = &'a str>) -> Self {
        self.suggestion = closest(written, known);
        self
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.at.line, self.at.col, self.message)?;
        if let Some(s) = &self.suggestion {
            write!(f, " (did you mean `{s}`?)")?;
        }
        Ok(())
    }
}

/// Every problem found in a file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SqlErrors(pub Vec<SqlError>);

impl SqlErrors {
    /// Formats each error prefixed with the file name.
    pub fn render(&self, file: &str) -> String {
        let mut sorted = self.0.clone();
        sorted.sort_by_key(|e| e.at);
        let mut out = String::new();
        for e in &sorted {
            out.push_str(&format!("error: {file}:{e}\n"));
        }
        out.push_str(&format!(
            "{} problem(s) found; nothing was run",
            sorted.len()
        ));
        out
    }
}

impl From<SqlError> for SqlErrors {
    fn from(e: SqlError) -> Self {
        Self(vec![e])
    }
}

/// The known name closest to `written` (case-insensitive), when it is close
/// enough to be a likely typo.
pub fn closest<'a>(written: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let w = written.to_ascii_lowercase();
    known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(&w, &k.to_ascii_lowercase()), k))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_names_are_suggested_and_distant_ones_are_not() {
        assert_eq!(
            closest("custmers", ["customers", "orders"]).as_deref(),
            Some("customers")
        );
        assert_eq!(closest("zebra", ["customers", "orders"]), None);
        let e = SqlError::new(Pos { line: 3, col: 7 }, "unknown stream `ordrs`")
            .suggest("ordrs", ["orders"]);
        assert_eq!(
            e.to_string(),
            "3:7: unknown stream `ordrs` (did you mean `orders`?)"
        );
    }
}
