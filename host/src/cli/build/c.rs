//! Building C plugins: `zig cc -target wasm32-wasi` compiles the plugin's `*.c` files
//! with the C SDK (`sdk/c`: `sluice.h`, a JSON library and the checked-in `wit-bindgen c`
//! bindings) to a core module, then `wasm-tools component embed` + `component new` make
//! it a component. The SDK calls no WASI function, so the module imports none and needs
//! no WASI adapter.
//!
//! The world comes from a `SLUICE_WORLD = source` (or `sink`, `transform`) line in the
//! plugin's Makefile, the one project file a C plugin has; without one it is a
//! transform (contract 0.1.0, `sluice.c`). A connector links `sluice_connector.c` and
//! the glue for its world instead, and embeds contract 0.2.0.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::{run_tool, BuildContext, Language};

/// The C language.
pub static LANGUAGE: Language = Language {
    name: "c",
    detect,
    build,
    template: &[
        (
            "{{name}}.c",
            include_str!("../../../../sdk/templates/c/plugin.c"),
        ),
        (
            "{{name}}_test.c",
            include_str!("../../../../sdk/templates/c/plugin_test.c"),
        ),
        (
            "Makefile",
            include_str!("../../../../sdk/templates/c/Makefile"),
        ),
        (
            "README.md",
            include_str!("../../../../sdk/templates/c/README.md"),
        ),
        (
            "events.jsonl",
            include_str!("../../../../sdk/templates/events.jsonl"),
        ),
    ],
};

/// `sluice plugin new --kind source --lang c`.
pub static SOURCE_TEMPLATE: &[(&str, &str)] = &[
    (
        "{{name}}.c",
        include_str!("../../../../sdk/templates/c-source/plugin.c"),
    ),
    (
        "{{name}}_test.c",
        include_str!("../../../../sdk/templates/c-source/plugin_test.c"),
    ),
    (
        "Makefile",
        include_str!("../../../../sdk/templates/c-source/Makefile"),
    ),
    (
        "README.md",
        include_str!("../../../../sdk/templates/c-source/README.md"),
    ),
    (".gitignore", "target/\n"),
];

/// `sluice plugin new --kind sink --lang c`.
pub static SINK_TEMPLATE: &[(&str, &str)] = &[
    (
        "{{name}}.c",
        include_str!("../../../../sdk/templates/c-sink/plugin.c"),
    ),
    (
        "{{name}}_test.c",
        include_str!("../../../../sdk/templates/c-sink/plugin_test.c"),
    ),
    (
        "Makefile",
        include_str!("../../../../sdk/templates/c-sink/Makefile"),
    ),
    (
        "README.md",
        include_str!("../../../../sdk/templates/c-sink/README.md"),
    ),
    (".gitignore", "target/\n"),
];

/// The world a C plugin builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CWorld {
    Transform,
    Source,
    Sink,
}

/// Reads `SLUICE_WORLD` from the plugin's Makefile (`=`, `:=`, `?=` or `::=`; a `#`
/// comment after the value is ignored). No Makefile, or no such line: a transform.
fn world_of(dir: &Path) -> Result<CWorld> {
    let path = dir.join("Makefile");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(CWorld::Transform);
    };
    for line in text.lines() {
        let Some(rest) = line.trim_start().strip_prefix("SLUICE_WORLD") else {
            continue;
        };
        let rest = rest.trim_start();
        let Some(value) = ["::=", ":=", "?=", "="]
            .iter()
            .find_map(|op| rest.strip_prefix(op))
        else {
            continue;
        };
        let value = value.split('#').next().unwrap_or("").trim();
        return match value {
            "transform" => Ok(CWorld::Transform),
            "source" => Ok(CWorld::Source),
            "sink" => Ok(CWorld::Sink),
            other => bail!(
                "{}: `SLUICE_WORLD`: expected \"transform\", \"source\" or \"sink\", found \"{other}\"",
                path.display()
            ),
        };
    }
    Ok(CWorld::Transform)
}

/// How to get `zig` and `wasm-tools` (pinned versions, under ~/.cache/sluice-tools/c).
fn install_hint() -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/toolchains/c.sh");
    format!(
        "{} && source ${{SLUICE_TOOLS:-$HOME/.cache/sluice-tools}}/c/env.sh",
        script.display()
    )
}

/// The C SDK shipped with this build of sluice.
fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/c")
}

/// The plugin's sources: every `*.c` file in `dir` except native tests (`*_test.c`).
fn sources(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".c") && !name.ends_with("_test.c")
        })
        .collect();
    files.sort();
    files
}

/// A C plugin is a directory of `*.c` files; `go.mod` marks a Go plugin (with cgo
/// files) instead. Rust, Python and JS markers are checked before this one.
fn detect(dir: &Path) -> bool {
    !dir.join("go.mod").exists() && !sources(dir).is_empty()
}

fn build(cx: &BuildContext<'_>) -> Result<PathBuf> {
    let files = sources(cx.dir);
    if files.is_empty() {
        bail!("no .c files (other than *_test.c) in {}", cx.dir.display());
    }
    let sdk = sdk_dir();
    if !sdk.join("sluice.h").is_file() {
        bail!(
            "the C SDK is missing at {} (this sluice build expects its repository there)",
            sdk.display()
        );
    }
    // The component is named after the only source file, else after the directory.
    let canonical = cx
        .dir
        .canonicalize()
        .with_context(|| format!("reading {}", cx.dir.display()))?;
    let stem = match files.as_slice() {
        [one] => one.file_stem(),
        _ => canonical.file_name(),
    };
    let name: String = stem
        .and_then(|n| n.to_str())
        .unwrap_or("plugin")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let core = cx.out_dir.join(format!("{name}.core.wasm"));
    let embedded = cx.out_dir.join(format!("{name}.embed.wasm"));
    let component = cx.out_dir.join(format!("{name}.wasm"));
    let hint = install_hint();

    let world = world_of(cx.dir)?;
    let mut cc = Command::new("zig");
    cc.args([
        "cc",
        "-target",
        "wasm32-wasi",
        "-mexec-model=reactor",
        "-std=gnu11",
        "-Wall",
    ]);
    if cx.release {
        cc.args(["-Os", "-s"]);
    } else {
        // -O0 keeps libc code that imports WASI; -O1 with debug info imports none.
        cc.args(["-O1", "-g"]);
    }
    // No stack protector: its canary is seeded from WASI random_get, which the host
    // links as a trap.
    cc.arg("-fno-stack-protector");
    cc.arg("-I").arg(&sdk).arg("-I").arg(cx.dir);
    cc.args(&files);
    cc.arg(sdk.join("sluice_json.c"))
        .arg(sdk.join("sluice_view.c"));
    // Transforms speak 0.1.0 (cx.wit_dir, sluice.c); connectors 0.2.0.
    let (wit, world_name) = match world {
        CWorld::Transform => {
            cc.arg(sdk.join("sluice.c"))
                .arg(sdk.join("bindings/transform.c"));
            (cx.wit_dir.join("sluice.wit"), "transform")
        }
        CWorld::Source | CWorld::Sink => {
            let (name, define) = if world == CWorld::Source {
                ("source", "-DSLUICE_WORLD_SOURCE")
            } else {
                ("sink", "-DSLUICE_WORLD_SINK")
            };
            cc.arg(define)
                .arg(sdk.join("sluice_connector.c"))
                .arg(sdk.join("sluice_connector_glue.c"))
                .arg(sdk.join(format!("bindings/{name}.c")));
            let wit = cx.out_dir.join("sluice-0.2.0.wit");
            std::fs::write(&wit, super::WIT)
                .with_context(|| format!("writing {}", wit.display()))?;
            (wit, name)
        }
    };
    cc.arg("-o").arg(&core);
    run_tool(&mut cc, "zig", &hint)?;

    let mut embed = Command::new("wasm-tools");
    embed
        .args(["component", "embed"])
        .arg(&wit)
        .args(["--world", world_name])
        .arg(&core)
        .arg("-o")
        .arg(&embedded);
    run_tool(&mut embed, "wasm-tools", &hint)?;
    if world != CWorld::Transform {
        let _ = std::fs::remove_file(&wit);
    }

    let mut new = Command::new("wasm-tools");
    new.args(["component", "new"])
        .arg(&embedded)
        .arg("-o")
        .arg(&component);
    run_tool(&mut new, "wasm-tools", &hint).context(
        "making a component failed; if it names `wasi_snapshot_preview1`, the plugin calls a WASI \
         function (printf, fopen, time, ...): the host grants none, use sluice_log for output",
    )?;
    Ok(component)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(makefile: Option<&str>) -> Result<CWorld> {
        let dir = tempfile::tempdir().expect("tempdir");
        if let Some(text) = makefile {
            std::fs::write(dir.path().join("Makefile"), text).expect("write Makefile");
        }
        world_of(dir.path())
    }

    #[test]
    fn the_makefile_names_the_world() {
        assert_eq!(world(None).ok(), Some(CWorld::Transform));
        assert_eq!(
            world(Some("test:\n\tcc x.c\n")).ok(),
            Some(CWorld::Transform)
        );
        assert_eq!(
            world(Some("SLUICE_WORLD = source\n")).ok(),
            Some(CWorld::Source)
        );
        assert_eq!(
            world(Some("SLUICE_WORLD?=sink # a sink\n")).ok(),
            Some(CWorld::Sink)
        );
        assert_eq!(
            world(Some("  SLUICE_WORLD ::= transform\n")).ok(),
            Some(CWorld::Transform)
        );
        // Another variable that starts the same is not the field.
        assert_eq!(
            world(Some("SLUICE_WORLDS = sink\n")).ok(),
            Some(CWorld::Transform)
        );
        let err = world(Some("SLUICE_WORLD := \n")).expect_err("an empty world");
        assert!(
            err.to_string()
                .ends_with("Makefile: `SLUICE_WORLD`: expected \"transform\", \"source\" or \"sink\", found \"\""),
            "{err}"
        );
    }
}
