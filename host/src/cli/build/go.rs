//! Building go plugins (to be filled in).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::{BuildContext, Language};

/// The go language.
pub static LANGUAGE: Language = Language {
    name: "go",
    detect,
    build,
    template: &[],
};

fn detect(_dir: &Path) -> bool {
    false
}

fn build(_cx: &BuildContext<'_>) -> Result<PathBuf> {
    bail!("go plugins are not supported yet")
}
