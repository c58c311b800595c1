//! Building Python plugins with componentize-py.
//!
//! A Python plugin is a directory with a `pyproject.toml` holding a
//! `[tool.sluice]` table and a module (`app.py` by default) that defines one
//! subclass of `sluice.Transform`, or, with `world = "source"` or `"sink"` in
//! the table, of `sluice.Source` or `sluice.Sink` (a custom connector).
//! componentize-py bundles CPython, the plugin, the `sluice` module from
//! `sdk/python/` and the glue modules (`sdk/python/glue/`) that adapt the
//! plugin to the contract: transforms to 0.1.0 (which the host converts),
//! connectors to 0.2.0 (where their worlds exist). `--stub-wasi` replaces every
//! WASI import with a trap, so the component imports only `sluice:plugin/*`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::{BuildContext, Language};

/// What `componentize-py` is installed from, for the error when it is missing.
const INSTALL: &str = "pip install componentize-py==0.25.1\n  \
     (or run scripts/toolchains/python.sh and source ~/.cache/sluice-tools/python/env.sh)";

/// The glue module componentize-py starts from (it exports `describe`).
const APP_MODULE: &str = "sluice_component";
/// Module names the build itself puts on the path; a plugin module cannot use them.
const RESERVED: &[&str] = &[
    "sluice",
    APP_MODULE,
    "sluice_transformer",
    "sluice_reader",
    "sluice_writer",
    "sluice_glue",
    "sluice_build_info",
    "wit_world",
    "componentize_py_types",
    "componentize_py_async_support",
];

/// The Python language.
pub static LANGUAGE: Language = Language {
    name: "python",
    detect,
    build,
    template: &[
        (
            "pyproject.toml",
            include_str!("../../../../sdk/templates/python/pyproject.toml"),
        ),
        (
            "app.py",
            include_str!("../../../../sdk/templates/python/app.py"),
        ),
        (
            "test_app.py",
            include_str!("../../../../sdk/templates/python/test_app.py"),
        ),
        (
            "README.md",
            include_str!("../../../../sdk/templates/python/README.md"),
        ),
        (
            ".gitignore",
            include_str!("../../../../sdk/templates/python/gitignore"),
        ),
        (
            "events.jsonl",
            include_str!("../../../../sdk/templates/events.jsonl"),
        ),
    ],
};

/// `sluice plugin new --kind source --lang python`.
pub static SOURCE_TEMPLATE: &[(&str, &str)] = &[
    (
        "pyproject.toml",
        include_str!("../../../../sdk/templates/python-source/pyproject.toml"),
    ),
    (
        "app.py",
        include_str!("../../../../sdk/templates/python-source/app.py"),
    ),
    (
        "test_app.py",
        include_str!("../../../../sdk/templates/python-source/test_app.py"),
    ),
    (
        "README.md",
        include_str!("../../../../sdk/templates/python-source/README.md"),
    ),
    (
        ".gitignore",
        include_str!("../../../../sdk/templates/python-source/gitignore"),
    ),
];

/// `sluice plugin new --kind sink --lang python`.
pub static SINK_TEMPLATE: &[(&str, &str)] = &[
    (
        "pyproject.toml",
        include_str!("../../../../sdk/templates/python-sink/pyproject.toml"),
    ),
    (
        "app.py",
        include_str!("../../../../sdk/templates/python-sink/app.py"),
    ),
    (
        "test_app.py",
        include_str!("../../../../sdk/templates/python-sink/test_app.py"),
    ),
    (
        "README.md",
        include_str!("../../../../sdk/templates/python-sink/README.md"),
    ),
    (
        ".gitignore",
        include_str!("../../../../sdk/templates/python-sink/gitignore"),
    ),
];

/// `sluice plugin new --kind udf --lang python`.
pub static UDF_TEMPLATE: &[(&str, &str)] = &[
    (
        "pyproject.toml",
        include_str!("../../../../sdk/templates/python-udf/pyproject.toml"),
    ),
    (
        "app.py",
        include_str!("../../../../sdk/templates/python-udf/app.py"),
    ),
    (
        "test_app.py",
        include_str!("../../../../sdk/templates/python-udf/test_app.py"),
    ),
    (
        "README.md",
        include_str!("../../../../sdk/templates/python-udf/README.md"),
    ),
    (
        ".gitignore",
        include_str!("../../../../sdk/templates/python-udf/gitignore"),
    ),
];

/// A Python plugin is marked by a `[tool.sluice]` table in its `pyproject.toml`
/// (a pyproject alone may be any Python project).
fn detect(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("pyproject.toml")).is_ok_and(|text| {
        text.lines()
            .any(|l| table_header(l).as_deref() == Some("tool.sluice"))
    })
}

/// What a Python plugin builds: `[tool.sluice] world`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PyWorld {
    Transform,
    Source,
    Sink,
    Udf,
}

impl PyWorld {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "transform" => Some(Self::Transform),
            "source" => Some(Self::Source),
            "sink" => Some(Self::Sink),
            "udf" => Some(Self::Udf),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Transform => "transform",
            Self::Source => "source",
            Self::Sink => "sink",
            Self::Udf => "udf",
        }
    }

    /// The exported interface and the glue module it is bound to (the module
    /// in `sdk/python/glue/` that implements its resource).
    fn export(self) -> (&'static str, &'static str) {
        match self {
            Self::Transform => ("transformer", "sluice_transformer"),
            Self::Source => ("reader", "sluice_reader"),
            Self::Sink => ("writer", "sluice_writer"),
            Self::Udf => ("scalar", "sluice_scalar"),
        }
    }

    /// What the plugin module defines: the `sluice` class it subclasses, or
    /// its UDF.
    fn class(self) -> &'static str {
        match self {
            Self::Transform => "sluice.Transform subclass",
            Self::Source => "sluice.Source subclass",
            Self::Sink => "sluice.Sink subclass",
            Self::Udf => "function marked @sluice.udf",
        }
    }
}

fn build(cx: &BuildContext<'_>) -> Result<PathBuf> {
    let pyproject = cx.dir.join("pyproject.toml");
    let text = std::fs::read_to_string(&pyproject)
        .with_context(|| format!("reading {}", pyproject.display()))?;
    let meta =
        Metadata::parse(&text, cx.dir).with_context(|| format!("in {}", pyproject.display()))?;

    let module_path = meta.module.replace('.', "/");
    if !cx.dir.join(format!("{module_path}.py")).is_file()
        && !cx.dir.join(&module_path).join("__init__.py").is_file()
    {
        bail!(
            "{}: no module `{}` ({module_path}.py); write the {} there, or name its module with `module = \"...\"` under [tool.sluice]",
            cx.dir.display(),
            meta.module,
            meta.world.class()
        );
    }
    let (interface, export_module) = meta.world.export();

    let sdk = PathBuf::from(super::sdk_path()).join("python");
    if !sdk.join("sluice").join("__init__.py").is_file()
        || !sdk
            .join("glue")
            .join(format!("{export_module}.py"))
            .is_file()
    {
        bail!(
            "the Python SDK is missing from {}; Python plugins build from a sluice source tree",
            sdk.display()
        );
    }

    // Per-build facts the glue reads: the plugin's module and its pyproject metadata.
    let info_dir = tempfile::Builder::new().prefix("sluice-py").tempdir()?;
    let info = format!(
        "# Written by `sluice plugin build` for this build only.\nWORLD = {}\nMODULE = {}\nNAME = {}\nVERSION = {}\nDESCRIPTION = {}\n",
        py_str(meta.world.name()),
        py_str(&meta.module),
        py_str(&meta.name),
        py_str(&meta.version),
        py_str(&meta.description)
    );
    std::fs::write(info_dir.path().join("sluice_build_info.py"), info)?;
    // Transforms speak 0.1.0 (the SDK's batch records); connectors 0.2.0, the
    // first contract with their worlds (the glue packs the batch tables).
    let (wit_dir, version) = match meta.world {
        PyWorld::Transform => (cx.wit_dir.to_path_buf(), contract_version()),
        PyWorld::Source | PyWorld::Sink | PyWorld::Udf => {
            std::fs::write(info_dir.path().join("sluice.wit"), super::WIT)?;
            (info_dir.path().to_path_buf(), CONNECTOR_VERSION)
        }
    };

    // Absolute paths: componentize-py runs in the plugin's directory.
    let dir = cx
        .dir
        .canonicalize()
        .with_context(|| format!("resolving {}", cx.dir.display()))?;
    let out = cx
        .out_dir
        .join(format!("{}.wasm", meta.name.replace(['-', '.'], "_")));
    let out = std::path::absolute(&out).unwrap_or(out);
    let mut cmd = Command::new("componentize-py");
    cmd.current_dir(&dir)
        // A failed import shows as a Python traceback; a Rust backtrace under it only adds noise.
        .env("RUST_BACKTRACE", "0")
        .arg("--wit-path")
        .arg(&wit_dir)
        .args(["--world", meta.world.name(), "--export-interface-name"])
        .arg(format!(
            "sluice:plugin/{interface}@{version}={export_module}"
        ))
        .arg("componentize")
        .arg("--stub-wasi")
        .arg("--python-path")
        .arg(info_dir.path())
        .arg("--python-path")
        .arg(sdk.join("glue"))
        .arg("--python-path")
        .arg(&sdk)
        .arg("--python-path")
        .arg(&dir)
        .arg("--output")
        .arg(&out)
        .arg(APP_MODULE)
        // stdout is reserved for the component's path (the last line).
        .stdout(Stdio::from(std::io::stderr()));
    super::run_tool(&mut cmd, "componentize-py", INSTALL)?;
    if !out.is_file() {
        bail!(
            "componentize-py reported success but wrote no {}",
            out.display()
        );
    }
    Ok(out)
}

/// The contract custom connectors build against (their worlds start there).
const CONNECTOR_VERSION: &str = "0.2.0";

/// The contract version in the embedded WIT (`package sluice:plugin@X;`).
fn contract_version() -> &'static str {
    super::WIT_0_1
        .lines()
        .find_map(|l| l.trim().strip_prefix("package sluice:plugin@"))
        .map_or("0.1.0", |v| v.trim_end_matches(';').trim())
}

/// What the build reads from `pyproject.toml`.
#[derive(Debug, PartialEq, Eq)]
struct Metadata {
    /// `[project] name`, else the directory's name.
    name: String,
    /// `[project] version`, else `0.0.0`.
    version: String,
    /// `[project] description`, else empty.
    description: String,
    /// `[tool.sluice] module`, else `app`.
    module: String,
    /// `[tool.sluice] world`, else `transform`.
    world: PyWorld,
}

impl Metadata {
    /// Reads the few keys the build needs. Not a TOML parser: it understands
    /// table headers and `key = "string"` lines, which is how these keys are
    /// written; a key in any other form keeps its default.
    fn parse(text: &str, dir: &Path) -> Result<Self> {
        let dir_name = dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "plugin".to_string());
        let mut meta = Metadata {
            name: dir_name,
            version: "0.0.0".to_string(),
            description: String::new(),
            module: "app".to_string(),
            world: PyWorld::Transform,
        };
        let mut table = String::new();
        for (n, line) in text.lines().enumerate() {
            if let Some(header) = table_header(line) {
                table = header;
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let key = key.trim().trim_matches('"');
            match (table.as_str(), key) {
                ("project", "name" | "version" | "description") => {
                    if let Some(v) = toml_string(value) {
                        match key {
                            "name" => meta.name = v,
                            "version" => meta.version = v,
                            _ => meta.description = v,
                        }
                    }
                }
                ("tool.sluice", "module") => {
                    meta.module = toml_string(value).with_context(|| {
                        format!(
                            "line {}: [tool.sluice] module: expected a quoted module name",
                            n + 1
                        )
                    })?;
                }
                ("tool.sluice", "world") => {
                    let text = toml_string(value).unwrap_or_default();
                    meta.world = PyWorld::parse(&text).with_context(|| {
                        format!(
                            "line {}: [tool.sluice] world: expected \"transform\", \"source\", \"sink\" or \"udf\", found {}",
                            n + 1,
                            value.split('#').next().unwrap_or_default().trim()
                        )
                    })?;
                }
                ("tool.sluice", other) if !other.is_empty() && !other.starts_with('#') => {
                    bail!(
                        "line {}: unknown key `{other}` under [tool.sluice]; known: module, world",
                        n + 1
                    )
                }
                _ => {}
            }
        }
        let valid = !meta.module.is_empty()
            && meta.module.split('.').all(|part| {
                part.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
        if !valid {
            bail!(
                "[tool.sluice] module `{}`: expected a Python module name such as `app`",
                meta.module
            );
        }
        let top = meta.module.split('.').next().unwrap_or_default();
        if RESERVED.contains(&top) {
            bail!(
                "[tool.sluice] module `{}`: that name is used by the build; rename the module",
                meta.module
            );
        }
        Ok(meta)
    }
}

/// `[a.b]` -> `a.b` (whitespace around names and dots removed); `None` for other
/// lines, array tables included.
fn table_header(line: &str) -> Option<String> {
    let line = line.split('#').next().unwrap_or_default().trim();
    let inner = line.strip_prefix('[')?.strip_suffix(']')?;
    if inner.starts_with('[') {
        return None;
    }
    Some(
        inner
            .split('.')
            .map(|p| p.trim().trim_matches('"'))
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// A TOML basic (`"..."`) or literal (`'...'`) string on one line, unescaped.
fn toml_string(value: &str) -> Option<String> {
    let value = value.trim();
    if let Some(rest) = value.strip_prefix('\'') {
        return rest.split_once('\'').map(|(s, _)| s.to_string());
    }
    let mut chars = value.strip_prefix('"')?.chars();
    let mut out = String::new();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'u' => out.push(hex_char(&mut chars, 4)?),
                'U' => out.push(hex_char(&mut chars, 8)?),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

fn hex_char(chars: &mut std::str::Chars<'_>, n: usize) -> Option<char> {
    let hex: String = chars.by_ref().take(n).collect();
    char::from_u32(u32::from_str_radix(&hex, 16).ok()?)
}

/// A Python string literal for `s` (a JSON string is one).
fn py_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_only_a_pyproject_with_a_tool_sluice_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(!detect(dir.path()));
        std::fs::write(
            dir.path().join("pyproject.toml"),
            "[project]\nname = \"x\"\n",
        )
        .expect("write");
        assert!(!detect(dir.path()));
        std::fs::write(
            dir.path().join("pyproject.toml"),
            "[project]\nname = \"x\"\n\n[ tool.sluice ]  # plugin\n",
        )
        .expect("write");
        assert!(detect(dir.path()));
    }

    #[test]
    fn reads_project_metadata_and_the_module() {
        let text = "[project]\nname = \"normalize\"\nversion = '1.2.3'\ndescription = \"Says \\\"hi\\\" \\u00e9\"\n\
                    [tool.other]\nmodule = \"nope\"\n[tool.sluice]\nmodule = \"pkg.main\"  # here\n";
        let meta = Metadata::parse(text, Path::new("/nonexistent/dir")).expect("parses");
        assert_eq!(
            meta,
            Metadata {
                name: "normalize".into(),
                version: "1.2.3".into(),
                description: "Says \"hi\" é".into(),
                module: "pkg.main".into(),
                world: PyWorld::Transform,
            }
        );
    }

    #[test]
    fn errors_on_unknown_keys_and_bad_or_reserved_module_names() {
        let p = Path::new(".");
        let err = Metadata::parse("[tool.sluice]\nmodel = \"app\"\n", p).expect_err("unknown key");
        assert!(err.to_string().contains("unknown key `model`"), "{err}");
        let err = Metadata::parse("[tool.sluice]\nmodule = \"my-app\"\n", p).expect_err("bad name");
        assert!(
            err.to_string().contains("expected a Python module name"),
            "{err}"
        );
        let err = Metadata::parse("[tool.sluice]\nmodule = \"sluice\"\n", p).expect_err("reserved");
        assert!(err.to_string().contains("used by the build"), "{err}");
    }

    #[test]
    fn reads_the_world_and_refuses_an_unknown_one() {
        let p = Path::new(".");
        for (text, world) in [
            ("world = \"sink\"", PyWorld::Sink),
            ("world = 'source'  # a connector", PyWorld::Source),
            ("world = \"transform\"", PyWorld::Transform),
        ] {
            let meta = Metadata::parse(&format!("[tool.sluice]\n{text}\n"), p).expect("parses");
            assert_eq!(meta.world, world, "{text}");
        }
        let err = Metadata::parse("[tool.sluice]\nworld = \"writer\"\n", p).expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "line 2: [tool.sluice] world: expected \"transform\", \"source\", \"sink\" or \"udf\", found \"writer\""
        );
    }

    #[test]
    fn defaults_without_project_metadata() {
        let meta = Metadata::parse("[tool.sluice]\n", Path::new("/nonexistent")).expect("parses");
        assert_eq!(
            (meta.version.as_str(), meta.module.as_str()),
            ("0.0.0", "app")
        );
        assert_eq!(meta.world, PyWorld::Transform);
    }

    #[test]
    fn contract_version_comes_from_the_wit() {
        assert_eq!(contract_version(), "0.1.0");
    }

    #[test]
    fn python_string_literals_escape_quotes_and_controls() {
        assert_eq!(py_str("a\"b\\c\n"), r#""a\"b\\c\n""#);
    }
}
