//! Stage parameters from the pipeline file.

/// The parameters a stage was configured with, as text.
#[derive(Debug, Clone, Default)]
pub struct Params {
    entries: Vec<(String, String)>,
}

impl Params {
    /// Builds parameters from (name, value) pairs.
    pub fn new<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            entries: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, or an error saying it is required.
    pub fn required(&self, name: &str) -> Result<&str, String> {
        self.get(name)
            .ok_or_else(|| format!("parameter `{name}` is required"))
    }

    /// The value of `name` parsed as a boolean (`true`/`false`), or `default`.
    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool, String> {
        match self.get(name) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(format!(
                "parameter `{name}`: expected `true` or `false`, found `{other}`"
            )),
        }
    }

    /// The value of `name` parsed as JSON (lists and maps arrive this way).
    pub fn json(&self, name: &str) -> Result<Option<serde_json::Value>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(text) => serde_json::from_str(text)
                .map(Some)
                .map_err(|e| format!("parameter `{name}`: expected JSON ({e})")),
        }
    }

    /// Fails when a parameter outside `allowed` is set, naming the allowed ones,
    /// so a typo fails the deployment instead of being ignored.
    pub fn only(&self, allowed: &[&str]) -> Result<(), String> {
        for (name, _) in &self.entries {
            if !allowed.contains(&name.as_str()) {
                return Err(format!(
                    "unknown parameter `{name}`; allowed: {}",
                    allowed.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// All parameters in the order given.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}
