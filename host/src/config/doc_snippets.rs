//! Every ```yaml block in README.md, docs/ and plugins/*/README.md is a
//! pipeline the validator accepts, unless the line before it is
//! `<!-- fragment -->` (see docs/pipeline-file.md, "Examples in the docs").
//!
//! A block may show one section: one without `sources:` gets a datagen
//! source for each input it names, one without `sinks:` gets a stdout sink
//! reading its stages (or sources). Plugin files are stand-ins (their
//! parameters are checked by `sluice validate`, not here), and input files
//! are not looked for (their data is not beside the docs).

use std::path::{Path, PathBuf};

use super::*;

/// What marks a block that is not a pipeline (a parameter, a line of one).
const FRAGMENT: &str = "<!-- fragment -->";

struct Block {
    file: PathBuf,
    line: usize,
    text: String,
}

fn markdown_files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    let mut out = vec![root.join("README.md")];
    walk(&root.join("docs"), &mut out);
    if let Ok(rd) = std::fs::read_dir(root.join("plugins")) {
        for e in rd.flatten() {
            let readme = e.path().join("README.md");
            if readme.is_file() {
                out.push(readme);
            }
        }
    }
    out.sort();
    out
}

/// The ```yaml blocks not marked as fragments.
fn blocks(file: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(file).expect("read markdown");
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let fence = lines[i].trim_start();
        if fence == "```yaml" || fence == "```yml" {
            let indent = lines[i].len() - fence.len();
            let marked = i > 0 && lines[i - 1].trim() == FRAGMENT;
            let start = i + 1;
            let mut end = start;
            while end < lines.len() && lines[end].trim_start() != "```" {
                end += 1;
            }
            if !marked {
                let body: Vec<&str> = lines[start..end]
                    .iter()
                    .map(|l| l.get(indent..).unwrap_or(l.trim_start()))
                    .collect();
                out.push(Block {
                    file: file.to_path_buf(),
                    line: start + 1,
                    text: body.join("\n") + "\n",
                });
            }
            i = end;
        }
        i += 1;
    }
    out
}

fn keys(root: &Node, section: &str) -> Vec<String> {
    root.get(section)
        .and_then(Node::as_map)
        .map(|m| {
            m.iter()
                .filter_map(|(k, _)| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The names a block's stages, sinks and tables read.
fn inputs(root: &Node) -> Vec<String> {
    let mut out = Vec::new();
    for section in ["stages", "sinks", "tables"] {
        for (_, body) in root.get(section).and_then(Node::as_map).unwrap_or_default() {
            for key in ["inputs", "input"] {
                match body.get(key).map(|n| &n.kind) {
                    Some(yaml::Kind::Seq(items)) => {
                        out.extend(items.iter().filter_map(|n| n.as_str().map(str::to_string)))
                    }
                    Some(yaml::Kind::Scalar { text, .. }) => out.push(text.clone()),
                    _ => {}
                }
            }
        }
    }
    out
}

/// The block as a whole pipeline, plus the plugin paths it names.
fn completed(block: &Block) -> Result<(String, Vec<String>), String> {
    let root = yaml::parse(&block.text).map_err(|e| format!("invalid YAML: {}", e.message))?;
    if root.as_map().is_none()
        || !["sources", "stages", "sinks", "tables"]
            .iter()
            .any(|s| root.get(s).is_some())
    {
        return Err(format!(
            "not a pipeline (no sources, stages, sinks or tables); if it is a fragment on purpose, put `{FRAGMENT}` on the line before the block"
        ));
    }
    let mut text = block.text.clone();
    let mut sources = keys(&root, "sources");
    if root.get("sources").is_none() {
        let defined: Vec<String> = keys(&root, "stages");
        let mut wanted: Vec<String> = inputs(&root)
            .into_iter()
            .filter(|i| !defined.contains(i))
            .collect();
        wanted.sort();
        wanted.dedup();
        if wanted.is_empty() {
            wanted.push("snippet_in".into());
        }
        text.push_str("sources:\n");
        for w in &wanted {
            text.push_str(&format!("  {w}: {{type: datagen, kind: orders}}\n"));
        }
        sources = wanted;
    }
    if root.get("sinks").is_none() {
        let mut from = keys(&root, "stages");
        if from.is_empty() {
            from = sources;
        }
        if from.is_empty() {
            from.push("snippet_in".into());
        }
        text.push_str(&format!(
            "sinks:\n  snippet_out: {{type: stdout, inputs: [{}]}}\n",
            from.join(", ")
        ));
    }
    // Stages' and user-defined functions' plugin files.
    let plugins = ["stages", "udfs"]
        .iter()
        .flat_map(|section| {
            root.get(section)
                .and_then(Node::as_map)
                .unwrap_or_default()
                .iter()
                .filter_map(|(_, s)| s.get("plugin").and_then(Node::as_str).map(str::to_string))
                .collect::<Vec<_>>()
        })
        .filter(|p| p.ends_with(".wasm") || p.contains('/'))
        .collect();
    Ok((text, plugins))
}

#[test]
fn every_yaml_example_in_the_docs_validates_or_is_marked_a_fragment() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let plugins = tempfile::tempdir().expect("tempdir");
    for name in BUILTIN_PLUGINS {
        std::fs::write(plugins.path().join(format!("{name}.wasm")), b"").expect("write");
    }
    let options = LoadOptions {
        plugin_path: vec![plugins.path().to_path_buf()],
        skip_input_files: true,
        ..Default::default()
    };
    let mut failures = Vec::new();
    let mut checked = 0;
    for file in markdown_files(&root) {
        for block in blocks(&file) {
            let rel = block
                .file
                .strip_prefix(&root)
                .unwrap_or(&block.file)
                .display()
                .to_string();
            let (text, own_plugins) = match completed(&block) {
                Ok(t) => t,
                Err(e) => {
                    failures.push(format!("{rel}:{}: {e}", block.line));
                    continue;
                }
            };
            let dir = tempfile::tempdir().expect("tempdir");
            for p in own_plugins {
                let path = dir.path().join(p);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).expect("mkdir");
                }
                std::fs::write(path, b"").expect("write");
            }
            let env = |_: &str| Some("secret".to_string());
            if let Err(d) = load_str(&dir.path().join("snippet.yaml"), &text, &options, &env) {
                for d in d.0 {
                    // Lines past the block are the ones added to complete it.
                    failures.push(format!(
                        "{rel}:{}: {}: {}",
                        block.line + d.at.line.saturating_sub(1),
                        d.field,
                        d.message
                    ));
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} examples found");
    assert!(
        failures.is_empty(),
        "{} problem(s) in the docs' examples:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
