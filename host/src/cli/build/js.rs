//! Building js plugins (to be filled in).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::{BuildContext, Language};

/// The js language.
pub static LANGUAGE: Language = Language {
    name: "js",
    detect,
    build,
    template: &[],
};

fn detect(_dir: &Path) -> bool {
    false
}

fn build(_cx: &BuildContext<'_>) -> Result<PathBuf> {
    bail!("js plugins are not supported yet")
}

/// TypeScript: the same toolchain after `tsc`.
pub static TS_LANGUAGE: Language = Language {
    name: "ts",
    detect,
    build,
    template: &[],
};
