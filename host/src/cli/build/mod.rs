//! `sluice plugin build` and `sluice plugin new`, one module per language.
//! Each language builds with its own toolchain and installs nothing behind
//! the user's back: a missing tool is an error that says what to install.

mod c;
mod go;
mod js;
mod python;
mod rust;
mod rust_sdk;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The contract the Rust SDK speaks (0.2.0), embedded for SDK copies.
pub const WIT: &str = include_str!("../../../../wit/sluice.wit");

/// The contract the Python, JS, C and Go SDKs speak (0.1.0, which the host
/// still runs by converting at the boundary), embedded so their toolchains
/// get the exact WIT their SDK was written against.
pub const WIT_0_1: &str = include_str!("../../../../wit/0.1.0/sluice.wit");

/// One supported plugin language.
pub struct Language {
    /// Name used by `--lang`.
    pub name: &'static str,
    /// True when `dir` holds a plugin in this language.
    pub detect: fn(&Path) -> bool,
    /// Builds the plugin; returns the component's path.
    pub build: fn(&BuildContext<'_>) -> Result<PathBuf>,
    /// Files of a new project: (relative path, contents with `{{name}}` placeholders).
    pub template: &'static [(&'static str, &'static str)],
}

/// What a language's build gets.
pub struct BuildContext<'a> {
    /// The plugin's directory.
    pub dir: &'a Path,
    /// Optimized build.
    pub release: bool,
    /// A directory holding `sluice.wit` (the contract).
    pub wit_dir: &'a Path,
    /// Where to put the component (`DIR/target/sluice`, created).
    pub out_dir: PathBuf,
}

/// Every language, in detection order.
pub fn languages() -> [&'static Language; 6] {
    [
        &rust::LANGUAGE,
        &python::LANGUAGE,
        &js::TS_LANGUAGE,
        &js::LANGUAGE,
        &c::LANGUAGE,
        &go::LANGUAGE,
    ]
}

fn names() -> String {
    languages()
        .iter()
        .map(|l| l.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds the plugin in `dir`.
pub fn build(dir: &Path, release: bool) -> Result<PathBuf> {
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let Some(lang) = languages().into_iter().find(|l| (l.detect)(dir)) else {
        bail!(
            "cannot tell the language of the plugin in {}; supported: {} (start one with `sluice plugin new --lang LANG NAME`)",
            dir.display(),
            names()
        );
    };
    let wit_dir = tempfile::Builder::new().prefix("sluice-wit").tempdir()?;
    std::fs::write(wit_dir.path().join("sluice.wit"), WIT_0_1)?;
    let out_dir = dir.join("target").join("sluice");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message(format!(
        "building the {} plugin in {}",
        lang.name,
        dir.display()
    ));
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let result = (lang.build)(&BuildContext {
        dir,
        release,
        wit_dir: wit_dir.path(),
        out_dir,
    });
    spinner.finish_and_clear();
    result
}

/// Scaffolds a new `lang` plugin called `name` in directory `name`: a
/// `kind` of `transform` (any language), or a custom
/// connector, `source` or `sink` (any language).
pub fn scaffold_kind(lang: &str, kind: &str, name: &str) -> Result<PathBuf> {
    let Some(language) = languages().into_iter().find(|l| l.name == lang) else {
        bail!("unknown language `{lang}`; expected one of {}", names());
    };
    let template = match (kind, lang) {
        ("transform", _) => language.template,
        ("source", "rust") => rust::SOURCE_TEMPLATE,
        ("sink", "rust") => rust::SINK_TEMPLATE,
        ("source", "python") => python::SOURCE_TEMPLATE,
        ("sink", "python") => python::SINK_TEMPLATE,
        ("source", "js") => js::SOURCE_TEMPLATE,
        ("sink", "js") => js::SINK_TEMPLATE,
        ("source", "ts") => js::TS_SOURCE_TEMPLATE,
        ("sink", "ts") => js::TS_SINK_TEMPLATE,
        ("source", "go") => go::SOURCE_TEMPLATE,
        ("sink", "go") => go::SINK_TEMPLATE,
        ("source", "c") => c::SOURCE_TEMPLATE,
        ("sink", "c") => c::SINK_TEMPLATE,
        ("udf", "rust") => rust::UDF_TEMPLATE,
        ("udf", "python") => python::UDF_TEMPLATE,
        ("udf", _) => bail!(
            "a user-defined function can be scaffolded in Rust or Python only (`--lang rust` or `python`); other languages implement the `udf` world of wit/sluice.wit with their component toolchain"
        ),
        _ => bail!("unknown kind `{kind}`; expected transform, source, sink or udf"),
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("plugin name `{name}`: expected letters, digits, `-` or `_`");
    }
    let dir = PathBuf::from(name);
    if dir.exists() {
        bail!(
            "{} already exists; choose another name or remove it",
            dir.display()
        );
    }
    let snake = name.replace('-', "_");
    // Rust projects get a relative or copied SDK (see rust_sdk); only the other
    // languages' templates still use the SDK's absolute path.
    let rust_sdk = if language.name == rust::LANGUAGE.name {
        let absolute = std::env::current_dir()
            .context("reading the current directory")?
            .canonicalize()
            .context("resolving the current directory")?
            .join(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Some(rust_sdk::place(&absolute)?)
    } else {
        None
    };
    let (rust_sdk_path, rust_sdk_note) = rust_sdk
        .as_ref()
        .map_or(("", ""), |d| (d.path.as_str(), d.note));
    for (rel, text) in template {
        let rel = rel.replace("{{name}}", name);
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let body = text
            .replace("{{name}}", name)
            .replace("{{name_snake}}", &snake)
            .replace("{{rust_sdk_path}}", rust_sdk_path)
            .replace("{{rust_sdk_note}}", rust_sdk_note)
            .replace("{{sdk_path}}", &sdk_path());
        std::fs::write(&path, body).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(dir)
}

/// Where this build of sluice's SDK sources live (for path dependencies).
fn sdk_path() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../sdk")
        .display()
        .to_string()
}

/// Runs a toolchain command, naming the tool and how to install it if missing.
pub fn run_tool(cmd: &mut Command, tool: &str, install: &str) -> Result<()> {
    let status = match cmd.status() {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("`{tool}` is not installed (or not on PATH); install it with:\n  {install}")
        }
        Err(e) => return Err(e).with_context(|| format!("running {tool}")),
    };
    if !status.success() {
        bail!("`{tool}` failed ({status}); its output is above");
    }
    Ok(())
}

#[cfg(test)]
mod readme_tests {
    /// A generated README is read and shared; a checkout path in it is
    /// meaningless on the reader's machine (build files may need one).
    #[test]
    fn no_template_readme_embeds_the_checkout_path() {
        let templates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/templates");
        let mut seen = 0;
        for lang in std::fs::read_dir(&templates)
            .expect("sdk/templates")
            .flatten()
        {
            let readme = lang.path().join("README.md");
            if let Ok(text) = std::fs::read_to_string(&readme) {
                seen += 1;
                assert!(
                    !text.contains("{{sdk_path}}") && !text.contains("{{rust_sdk_path}}"),
                    "{} embeds the SDK's absolute path",
                    readme.display()
                );
            }
        }
        assert!(seen >= 5, "only {seen} template READMEs");
    }
}
