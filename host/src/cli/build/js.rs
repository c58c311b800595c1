//! Building JavaScript and TypeScript plugins.
//!
//! A plugin is a directory with a `package.json`. TypeScript (`src/index.ts` or
//! `index.ts`) is type-checked and compiled with `tsc` first. `esbuild` then
//! bundles the plugin, its npm dependencies and the SDK (`sdk/js`, imported as
//! `@sluice/plugin`) into one ES module behind a generated entry that exports
//! the world's interface, and `componentize-js` turns that module into a
//! component with every WASI feature disabled, so it imports only
//! `sluice:plugin/*`. The toolchain is pinned by `scripts/toolchains/js.sh`.
//!
//! `"sluice": {"world": ...}` in `package.json` picks the world: `transform`
//! (the default; contract 0.1.0, which the host converts), or `source` /
//! `sink`, a custom connector (contract 0.2.0, where those worlds start; the
//! entry exports `reader` / `writer` and hands the SDK the host's `http` and
//! `clock` imports).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::{BuildContext, Language};

/// The JavaScript language (`package.json` without a TypeScript entry).
pub static LANGUAGE: Language = Language {
    name: "js",
    detect: detect_js,
    build: build_js,
    template: &[
        (
            "package.json",
            include_str!("../../../../sdk/templates/js/package.json"),
        ),
        (
            "src/index.js",
            include_str!("../../../../sdk/templates/js/src/index.js"),
        ),
        (
            "test/plugin.test.js",
            include_str!("../../../../sdk/templates/js/test/plugin.test.js"),
        ),
        (
            "README.md",
            include_str!("../../../../sdk/templates/js/README.md"),
        ),
        (
            ".gitignore",
            include_str!("../../../../sdk/templates/js/gitignore"),
        ),
        (
            "events.jsonl",
            include_str!("../../../../sdk/templates/events.jsonl"),
        ),
    ],
};

/// TypeScript: the same toolchain after `tsc`.
pub static TS_LANGUAGE: Language = Language {
    name: "ts",
    detect: detect_ts,
    build: build_ts,
    template: &[
        (
            "package.json",
            include_str!("../../../../sdk/templates/ts/package.json"),
        ),
        (
            "tsconfig.json",
            include_str!("../../../../sdk/templates/ts/tsconfig.json"),
        ),
        (
            "src/index.ts",
            include_str!("../../../../sdk/templates/ts/src/index.ts"),
        ),
        (
            "test/plugin.test.js",
            include_str!("../../../../sdk/templates/ts/test/plugin.test.js"),
        ),
        (
            "README.md",
            include_str!("../../../../sdk/templates/ts/README.md"),
        ),
        (
            ".gitignore",
            include_str!("../../../../sdk/templates/ts/gitignore"),
        ),
        (
            "events.jsonl",
            include_str!("../../../../sdk/templates/events.jsonl"),
        ),
    ],
};

/// `plugin new --kind source --lang js`: a paginated-API source.
pub static SOURCE_TEMPLATE: &[(&str, &str)] = &[
    (
        "package.json",
        include_str!("../../../../sdk/templates/js-source/package.json"),
    ),
    (
        "src/index.js",
        include_str!("../../../../sdk/templates/js-source/src/index.js"),
    ),
    (
        "test/source.test.js",
        include_str!("../../../../sdk/templates/js-source/test/source.test.js"),
    ),
    (
        "README.md",
        include_str!("../../../../sdk/templates/js-source/README.md"),
    ),
    (
        ".gitignore",
        include_str!("../../../../sdk/templates/js-source/gitignore"),
    ),
];

/// `plugin new --kind sink --lang js`: a sink POSTing batches as JSON arrays.
pub static SINK_TEMPLATE: &[(&str, &str)] = &[
    (
        "package.json",
        include_str!("../../../../sdk/templates/js-sink/package.json"),
    ),
    (
        "src/index.js",
        include_str!("../../../../sdk/templates/js-sink/src/index.js"),
    ),
    (
        "test/sink.test.js",
        include_str!("../../../../sdk/templates/js-sink/test/sink.test.js"),
    ),
    (
        "README.md",
        include_str!("../../../../sdk/templates/js-sink/README.md"),
    ),
    (
        ".gitignore",
        include_str!("../../../../sdk/templates/js-sink/gitignore"),
    ),
];

/// `plugin new --kind source --lang ts`: the JS source, typed.
pub static TS_SOURCE_TEMPLATE: &[(&str, &str)] = &[
    (
        "package.json",
        include_str!("../../../../sdk/templates/ts-source/package.json"),
    ),
    (
        "tsconfig.json",
        include_str!("../../../../sdk/templates/ts-source/tsconfig.json"),
    ),
    (
        "src/index.ts",
        include_str!("../../../../sdk/templates/ts-source/src/index.ts"),
    ),
    (
        "test/source.test.js",
        include_str!("../../../../sdk/templates/ts-source/test/source.test.js"),
    ),
    (
        "README.md",
        include_str!("../../../../sdk/templates/ts-source/README.md"),
    ),
    (
        ".gitignore",
        include_str!("../../../../sdk/templates/ts-source/gitignore"),
    ),
];

/// `plugin new --kind sink --lang ts`: the JS sink, typed.
pub static TS_SINK_TEMPLATE: &[(&str, &str)] = &[
    (
        "package.json",
        include_str!("../../../../sdk/templates/ts-sink/package.json"),
    ),
    (
        "tsconfig.json",
        include_str!("../../../../sdk/templates/ts-sink/tsconfig.json"),
    ),
    (
        "src/index.ts",
        include_str!("../../../../sdk/templates/ts-sink/src/index.ts"),
    ),
    (
        "test/sink.test.js",
        include_str!("../../../../sdk/templates/ts-sink/test/sink.test.js"),
    ),
    (
        "README.md",
        include_str!("../../../../sdk/templates/ts-sink/README.md"),
    ),
    (
        ".gitignore",
        include_str!("../../../../sdk/templates/ts-sink/gitignore"),
    ),
];

/// Where a TypeScript plugin's entry may be, in order.
const TS_ENTRIES: [&str; 2] = ["src/index.ts", "index.ts"];
/// Where a JavaScript plugin's entry may be when `package.json` names no `main`.
const JS_ENTRIES: [&str; 4] = ["src/index.js", "src/index.mjs", "index.js", "index.mjs"];
/// The WASI features componentize-js would otherwise import; the host grants none.
const DISABLED_FEATURES: [&str; 5] = ["stdio", "random", "clocks", "http", "fetch-event"];

fn ts_entry(dir: &Path) -> Option<PathBuf> {
    TS_ENTRIES.iter().map(|e| dir.join(e)).find(|p| p.is_file())
}

fn detect_ts(dir: &Path) -> bool {
    dir.join("package.json").is_file() && ts_entry(dir).is_some()
}

fn detect_js(dir: &Path) -> bool {
    dir.join("package.json").is_file() && ts_entry(dir).is_none()
}

/// What a JS/TS plugin builds: `package.json` `sluice.world`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsWorld {
    Transform,
    Source,
    Sink,
}

impl JsWorld {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "transform" => Some(Self::Transform),
            "source" => Some(Self::Source),
            "sink" => Some(Self::Sink),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Transform => "transform",
            Self::Source => "source",
            Self::Sink => "sink",
        }
    }

    /// The generated entry's body after its imports: what it exports, built
    /// by the SDK from the plugin module.
    fn entry(self, info: &serde_json::Value) -> String {
        match self {
            Self::Transform => format!(
                "import {{ log }} from \"sluice:plugin/log@0.1.0\";\n\
                 import {{ exportTransformer }} from \"@sluice/plugin\";\n\
                 export const transformer = exportTransformer(plugin, {info}, log);\n"
            ),
            Self::Source => format!(
                "import {{ log }} from \"sluice:plugin/log@{CONNECTOR_VERSION}\";\n\
                 import {{ send }} from \"sluice:plugin/http@{CONNECTOR_VERSION}\";\n\
                 import {{ nowMs, monotonicNs }} from \"sluice:plugin/clock@{CONNECTOR_VERSION}\";\n\
                 import {{ exportReader }} from \"@sluice/plugin\";\n\
                 export const reader = exportReader(plugin, {info}, log, send, {{ nowMs, monotonicNs }});\n"
            ),
            Self::Sink => format!(
                "import {{ log }} from \"sluice:plugin/log@{CONNECTOR_VERSION}\";\n\
                 import {{ send }} from \"sluice:plugin/http@{CONNECTOR_VERSION}\";\n\
                 import {{ nowMs, monotonicNs }} from \"sluice:plugin/clock@{CONNECTOR_VERSION}\";\n\
                 import {{ exportWriter }} from \"@sluice/plugin\";\n\
                 export const writer = exportWriter(plugin, {info}, log, send, {{ nowMs, monotonicNs }});\n"
            ),
        }
    }
}

/// The contract custom connectors build against (their worlds start there).
const CONNECTOR_VERSION: &str = "0.2.0";

/// What `describe()` reports, from `package.json`, and the world it builds.
struct Package {
    name: String,
    version: String,
    description: String,
    main: Option<String>,
    world: JsWorld,
}

fn read_package(dir: &Path) -> Result<Package> {
    let path = dir.join("package.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not valid JSON", path.display()))?;
    let field = |k: &str| {
        json.get(k)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    let Some(name) = field("name").filter(|n| !n.is_empty()) else {
        bail!(
            "{}: `name` is required (it names the plugin in errors and dead letters)",
            path.display()
        );
    };
    Ok(Package {
        name,
        version: field("version").unwrap_or_else(|| "0.0.0".into()),
        description: field("description").unwrap_or_default(),
        main: field("main"),
        world: read_world(&json).with_context(|| path.display().to_string())?,
    })
}

/// `sluice.world` of a parsed `package.json`; `transform` when absent.
fn read_world(json: &serde_json::Value) -> Result<JsWorld> {
    const EXPECTED: &str = "expected \"transform\", \"source\" or \"sink\"";
    let Some(sluice) = json.get("sluice") else {
        return Ok(JsWorld::Transform);
    };
    let Some(table) = sluice.as_object() else {
        bail!("`sluice`: expected an object such as {{\"world\": \"source\"}}, found {sluice}");
    };
    if let Some(other) = table.keys().find(|k| k.as_str() != "world") {
        bail!("`sluice.{other}`: unknown field; known: world");
    }
    match table.get("world") {
        None => Ok(JsWorld::Transform),
        Some(value) => value
            .as_str()
            .and_then(JsWorld::parse)
            .with_context(|| format!("`sluice.world`: {EXPECTED}, found {value}")),
    }
}

/// The directory holding the SDK's JavaScript sources.
fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/js")
}

/// How to install the toolchain, for error messages.
fn install_hint() -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/toolchains/js.sh");
    format!(
        "bash {} && . \"${{SLUICE_TOOLS:-$HOME/.cache/sluice-tools}}/js/env.sh\"",
        script.display()
    )
}

/// `tool` from PATH, or from the toolchain directory the install script uses
/// when its `env.sh` was not sourced.
fn tool(name: &str) -> Command {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(name).is_file()));
    if !on_path {
        let root = std::env::var_os("SLUICE_TOOLS")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/sluice-tools"))
            });
        if let Some(bin) = root
            .map(|r| r.join("js/node_modules/.bin").join(name))
            .filter(|b| b.is_file())
        {
            return Command::new(bin);
        }
    }
    Command::new(name)
}

/// Runs a toolchain command with its stdout sent to stderr, so the
/// component path stays the last line of our stdout.
fn run(mut cmd: Command, name: &str) -> Result<()> {
    cmd.stdout(std::io::stderr());
    super::run_tool(&mut cmd, name, &install_hint())
}

fn build_js(cx: &BuildContext<'_>) -> Result<PathBuf> {
    let pkg = read_package(cx.dir)?;
    let candidates = pkg.main.iter().map(String::as_str).chain(JS_ENTRIES);
    let Some(entry) = candidates.map(|e| cx.dir.join(e)).find(|p| p.is_file()) else {
        bail!(
            "{}: no entry module; set `main` in package.json or create one of {}",
            cx.dir.display(),
            JS_ENTRIES.join(", ")
        );
    };
    bundle_and_componentize(cx, &pkg, &entry)
}

fn build_ts(cx: &BuildContext<'_>) -> Result<PathBuf> {
    let pkg = read_package(cx.dir)?;
    let Some(entry) = ts_entry(cx.dir) else {
        bail!(
            "{}: no TypeScript entry ({})",
            cx.dir.display(),
            TS_ENTRIES.join(" or ")
        );
    };
    let dir =
        std::fs::canonicalize(cx.dir).with_context(|| format!("resolving {}", cx.dir.display()))?;
    let entry = std::fs::canonicalize(&entry)?;
    let out_dir = std::fs::canonicalize(&cx.out_dir)?;
    let js_dir = out_dir.join("tsc");
    // Our settings win over the plugin's own tsconfig.json, which is extended
    // when present (strictness, lib, etc. stay the author's).
    let mut config = serde_json::json!({
        "compilerOptions": {
            "target": "es2022",
            "module": "es2022",
            "moduleResolution": "bundler",
            "strict": true,
            "skipLibCheck": true,
            "noEmitOnError": true,
            "declaration": false,
            "sourceMap": false,
            "types": [],
            "rootDir": dir,
            "outDir": js_dir,
            "paths": {
                "@sluice/plugin": [sdk_dir().join("index.d.ts")],
                "@sluice/plugin/testing": [sdk_dir().join("testing.d.ts")],
            },
        },
        "files": [entry],
        "include": [],
    });
    let user_config = dir.join("tsconfig.json");
    if user_config.is_file() {
        config["extends"] = serde_json::json!(user_config);
    }
    let config_path = out_dir.join("tsconfig.json");
    std::fs::write(&config_path, serde_json::to_string_pretty(&config)?)?;
    let mut tsc = tool("tsc");
    tsc.arg("-p").arg(&config_path);
    run(tsc, "tsc")?;
    let rel = entry
        .strip_prefix(&dir)
        .unwrap_or(&entry)
        .with_extension("js");
    bundle_and_componentize(cx, &pkg, &js_dir.join(rel))
}

/// esbuild (plugin + SDK + generated export glue) then componentize-js.
fn bundle_and_componentize(cx: &BuildContext<'_>, pkg: &Package, entry: &Path) -> Result<PathBuf> {
    let entry =
        std::fs::canonicalize(entry).with_context(|| format!("resolving {}", entry.display()))?;
    let out_dir = std::fs::canonicalize(&cx.out_dir)?;
    let info = serde_json::json!({
        "name": pkg.name,
        "version": pkg.version,
        "description": pkg.description,
    });
    let glue = format!(
        "// Generated by `sluice plugin build`: exports the plugin in world `{world}`.\n\
         import * as plugin from {entry};\n{body}",
        world = pkg.world.name(),
        entry = serde_json::json!(entry.to_string_lossy()),
        body = pkg.world.entry(&info),
    );
    let glue_path = out_dir.join("entry.js");
    std::fs::write(&glue_path, glue)?;

    let bundle = out_dir.join("bundle.js");
    let mut esbuild = tool("esbuild");
    esbuild
        .arg(&glue_path)
        .args([
            "--bundle",
            "--format=esm",
            "--platform=neutral",
            "--main-fields=module,main",
        ])
        .args([
            "--target=es2022",
            "--external:sluice:plugin/*",
            "--log-level=warning",
        ])
        .arg(format!(
            "--alias:@sluice/plugin={}",
            sdk_dir().join("index.js").display()
        ))
        .arg(format!("--outfile={}", bundle.display()))
        .current_dir(cx.dir);
    if cx.release {
        esbuild.arg("--minify-syntax");
    }
    run(esbuild, "esbuild")?;

    let file = pkg
        .name
        .rsplit('/')
        .next()
        .unwrap_or(&pkg.name)
        .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_");
    let wasm = out_dir.join(format!("{file}.wasm"));
    // Transforms speak 0.1.0 (the SDK's batch records); connectors 0.2.0,
    // the first contract with their worlds (the SDK packs the batch tables).
    let wit = match pkg.world {
        JsWorld::Transform => cx.wit_dir.join("sluice.wit"),
        JsWorld::Source | JsWorld::Sink => {
            let wit = out_dir.join("sluice-0.2.0.wit");
            std::fs::write(&wit, super::WIT)?;
            wit
        }
    };
    let mut componentize = tool("componentize-js");
    componentize
        .arg(&bundle)
        .arg("--wit")
        .arg(&wit)
        .args(["--world-name", pkg.world.name(), "--disable"])
        .args(DISABLED_FEATURES)
        .arg("--out")
        .arg(&wasm)
        .current_dir(&out_dir);
    run(componentize, "componentize-js")?;
    if !wasm.is_file() {
        bail!(
            "componentize-js reported success but wrote no {}",
            wasm.display()
        );
    }
    Ok(wasm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(text: &str) -> Result<JsWorld> {
        read_world(&serde_json::from_str(text).expect("json"))
    }

    #[test]
    fn reads_the_world_from_package_json_and_refuses_an_unknown_one() {
        assert_eq!(world(r#"{"name":"a"}"#).expect("none"), JsWorld::Transform);
        assert_eq!(
            world(r#"{"sluice":{}}"#).expect("empty"),
            JsWorld::Transform
        );
        for (w, expected) in [
            ("source", JsWorld::Source),
            ("sink", JsWorld::Sink),
            ("transform", JsWorld::Transform),
        ] {
            let text = format!(r#"{{"sluice":{{"world":"{w}"}}}}"#);
            assert_eq!(world(&text).expect(w), expected);
        }
        let err = world(r#"{"sluice":{"world":"writer"}}"#).expect_err("unknown");
        assert_eq!(
            err.to_string(),
            r#"`sluice.world`: expected "transform", "source" or "sink", found "writer""#
        );
        let err = world(r#"{"sluice":{"wrld":"sink"}}"#).expect_err("typo");
        assert_eq!(
            err.to_string(),
            "`sluice.wrld`: unknown field; known: world"
        );
        let err = world(r#"{"sluice":"sink"}"#).expect_err("not an object");
        assert_eq!(
            err.to_string(),
            r#"`sluice`: expected an object such as {"world": "source"}, found "sink""#
        );
    }
}
