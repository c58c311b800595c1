//! NOTE TO THE ENGINEER IMPLEMENTING THIS (LANG = python): your full task description is in /tmp/lang-common.md — read it first; it says exactly which files to write and how to check your work. Remove this note when done.
//! Building python plugins (to be filled in).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::{BuildContext, Language};

/// The python language.
pub static LANGUAGE: Language = Language {
    name: "python",
    detect,
    build,
    template: &[],
};

fn detect(_dir: &Path) -> bool {
    false
}

fn build(_cx: &BuildContext<'_>) -> Result<PathBuf> {
    bail!("python plugins are not supported yet")
}
