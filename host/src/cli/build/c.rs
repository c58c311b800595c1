//! Building c plugins (to be filled in).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::{BuildContext, Language};

/// The c language.
pub static LANGUAGE: Language = Language {
    name: "c",
    detect,
    build,
    template: &[],
};

fn detect(_dir: &Path) -> bool {
    false
}

fn build(_cx: &BuildContext<'_>) -> Result<PathBuf> {
    bail!("c plugins are not supported yet")
}
