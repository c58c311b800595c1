//! Dead letters: the original event plus headers saying what went wrong,
//! where, and in which plugin version.

use std::sync::Arc;

use crate::event::{BatchBuilder, EventView};

/// Header names on every dead letter.
pub mod headers {
    /// `rejected`, `trap`, `limit`, `malformed`...
    pub const KIND: &str = "sluice.error.kind";
    /// Human-readable reason.
    pub const MESSAGE: &str = "sluice.error.message";
    /// Stage (or source) that refused the event.
    pub const STAGE: &str = "sluice.error.stage";
    /// Plugin name.
    pub const PLUGIN: &str = "sluice.error.plugin";
    /// Plugin version.
    pub const PLUGIN_VERSION: &str = "sluice.error.plugin_version";
    /// Source the event came from.
    pub const ORIGIN: &str = "sluice.origin";
    /// Position within that source (e.g. file line).
    pub const POSITION: &str = "sluice.position";
    /// When the event was refused: milliseconds since the Unix epoch (UTC),
    /// so `sluice dlq` can say when, whatever the event's own time.
    pub const TIME: &str = "sluice.error.time";
}

/// A dead letter's reason (its [`headers::MESSAGE`]), or empty.
pub fn reason(letter: &EventView<'_>) -> String {
    letter
        .headers()
        .find(|(n, _)| *n == headers::MESSAGE)
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

/// Now, in milliseconds since the Unix epoch, as header text.
fn now_ms() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
        .to_string()
}

/// Who refused an event.
#[derive(Debug, Clone)]
pub struct Culprit {
    /// Stage or source name.
    pub stage: String,
    /// Plugin name (empty for sources).
    pub plugin: String,
    /// Plugin version (empty for sources).
    pub version: String,
}

/// Collects dead letters for one batch.
pub struct DeadLetters {
    builder: BatchBuilder,
}

impl DeadLetters {
    /// An empty collection for a producer named `stream`.
    pub fn new(stream: &str, origin: Arc<str>) -> Self {
        Self {
            builder: BatchBuilder::new(stream, origin, 4),
        }
    }

    /// Adds `event` with error headers.
    pub fn add(
        &mut self,
        event: &EventView<'_>,
        origin: &str,
        culprit: &Culprit,
        kind: &str,
        reason: &str,
    ) {
        let position = event.position.to_string();
        let time = now_ms();
        let extra: [(&str, &[u8]); 8] = [
            (headers::KIND, kind.as_bytes()),
            (headers::MESSAGE, reason.as_bytes()),
            (headers::STAGE, culprit.stage.as_bytes()),
            (headers::PLUGIN, culprit.plugin.as_bytes()),
            (headers::PLUGIN_VERSION, culprit.version.as_bytes()),
            (headers::ORIGIN, origin.as_bytes()),
            (headers::POSITION, position.as_bytes()),
            (headers::TIME, time.as_bytes()),
        ];
        // The event's own headers of these names (an event read back from
        // a dead-letter file, say) give way to the host's: a dead letter
        // never carries two values for one of them.
        let mut all: Vec<(&str, &[u8])> = event
            .headers()
            .filter(|(n, _)| !extra.iter().any(|(e, _)| n.eq_ignore_ascii_case(e)))
            .collect();
        all.extend_from_slice(&extra);
        self.builder.push(
            event.key,
            event.value,
            &all,
            event.timestamp_ms,
            event.position,
        );
    }

    /// Adds raw bytes that never became an event (malformed input).
    pub fn add_raw(&mut self, bytes: &[u8], position: u64, origin: &str, kind: &str, reason: &str) {
        let position_text = position.to_string();
        let time = now_ms();
        let headers: [(&str, &[u8]); 6] = [
            (headers::KIND, kind.as_bytes()),
            (headers::MESSAGE, reason.as_bytes()),
            (headers::STAGE, origin.as_bytes()),
            (headers::ORIGIN, origin.as_bytes()),
            (headers::POSITION, position_text.as_bytes()),
            (headers::TIME, time.as_bytes()),
        ];
        self.builder.push(None, Some(bytes), &headers, 0, position);
    }

    /// Number collected.
    pub fn len(&self) -> usize {
        self.builder.len()
    }

    /// The batch to send, if any.
    pub fn finish(self) -> Option<crate::event::Batch> {
        (!self.builder.is_empty()).then(|| self.builder.finish())
    }
}

/// Makes sure the dead-letter file at `path` exists and only its owner can
/// read or write it: dead letters are raw events, often the ones that carry
/// what a plugin was meant to mask. Created `0600`; an existing file that
/// others could read (an older run's) is narrowed to `0600`, with a note.
/// Before the file sink opens it, so there is no moment it is readable.
pub fn make_private(path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("opening dead-letter file {}", path.display()))?;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("making {} private (0600)", path.display()))?;
        tracing::info!(
            file = %path.display(),
            "dead-letter file was readable by others (mode {:o}); now 0600",
            mode & 0o777
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn dead_letter_files_are_created_0600_and_narrowed_if_wider() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mode = |p: &std::path::Path| {
            std::fs::metadata(p).expect("exists").permissions().mode() & 0o777
        };
        let fresh = dir.path().join("a/dead.jsonl");
        super::make_private(&fresh).expect("created");
        assert_eq!(mode(&fresh), 0o600);
        let old = dir.path().join("old.jsonl");
        std::fs::write(&old, "{}\n").expect("write");
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        super::make_private(&old).expect("narrowed");
        assert_eq!(mode(&old), 0o600);
        assert_eq!(
            std::fs::read_to_string(&old).expect("read"),
            "{}\n",
            "contents kept"
        );
    }
}
