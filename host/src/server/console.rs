//! The web console at `/console/`: plain HTML, CSS and JavaScript files under
//! `console/assets/`, embedded in the binary with `include_bytes!`, so the
//! server needs nothing beside itself and the browser nothing but the server
//! (no build step, no framework, no CDN).
//!
//! The console is a client of the `/v1` API like any other: it holds the
//! tenant's token in `sessionStorage` and sends it as a bearer header, so
//! these files are served without a token and carry no data. What protects a
//! tenant's data in the browser is the headers every console response
//! carries ([`SECURITY_HEADERS`]: a Content-Security-Policy that allows only
//! the console's own script and style files and no framing) and the script's
//! rule of writing server data with `textContent` only.
//!
//! [`graph`] gives the console a pipeline's DAG (`GET
//! /v1/pipelines/NAME/graph`), read from the stored file.

use axum::extract::Path;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::Server;
use crate::config::{self, Node, NodeKind};

/// The console's files: (name, content type, bytes).
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("console/assets/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("console/assets/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("console/assets/style.css"),
    ),
];

/// Headers on every console response, files and errors alike. The policy
/// allows scripts and styles from the server only (no inline script, no
/// `eval`), API calls to the server only, and no framing (clickjacking).
pub const SECURITY_HEADERS: [(&str, &str); 5] = [
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-cache"),
];

fn secured(mut r: Response) -> Response {
    let h = r.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        h.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    r
}

fn file(name: &str) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, bytes)) => {
            secured(([(header::CONTENT_TYPE, *kind)], *bytes).into_response())
        }
        None => secured(
            ApiError::NotFound(format!("no console file `{}`", name.escape_debug()))
                .into_response(),
        ),
    }
}

/// `GET /console/`: the console's page.
pub async fn index() -> Response {
    file("index.html")
}

/// `GET /console/{asset}`: one of its files.
pub async fn asset(Path(name): Path<String>) -> Response {
    file(&name)
}

/// `GET /`: to the console.
pub async fn home() -> Response {
    secured(
        (
            StatusCode::PERMANENT_REDIRECT,
            [(header::LOCATION, "/console/")],
        )
            .into_response(),
    )
}

/// Most nodes a graph answer lists; a file over the request size quota
/// could not hold many more, this keeps the answer bounded whatever the
/// quota.
pub const MAX_NODES: usize = 1_000;

/// The names an `inputs` field lists: a sequence of names or one name.
fn inputs(body: &Node) -> Vec<String> {
    match body.get("inputs").map(|n| &n.kind) {
        Some(NodeKind::Seq(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        Some(NodeKind::Scalar { text, .. }) => vec![text.clone()],
        _ => Vec::new(),
    }
}

/// The nodes and edges of a pipeline file: sources, stages, tables and
/// sinks with their `type` (or `plugin`) and `inputs`. Read from the file as
/// written, so a stored pipeline that today's policy would refuse still has
/// its graph; at most [`MAX_NODES`] nodes, and edges between them only.
pub fn graph_of(yaml: &str) -> Value {
    let Ok(root) = config::parse_yaml(yaml) else {
        return json!({ "nodes": [], "edges": [], "truncated": false });
    };
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    let mut truncated = false;
    for (section, role) in [
        ("sources", "source"),
        ("tables", "table"),
        ("stages", "stage"),
        ("sinks", "sink"),
    ] {
        for (name, body) in root
            .get(section)
            .and_then(Node::as_map)
            .into_iter()
            .flatten()
        {
            let Some(name) = name.as_str() else { continue };
            if nodes.len() >= MAX_NODES {
                truncated = true;
                break;
            }
            let kind = body
                .get("type")
                .or_else(|| body.get("plugin"))
                .and_then(Node::as_str)
                .unwrap_or_default();
            nodes.push(json!({ "role": role, "name": name, "kind": kind }));
            for from in inputs(body) {
                edges.push(json!({ "from": from, "to": name }));
            }
        }
    }
    let known: std::collections::HashSet<&str> =
        nodes.iter().filter_map(|n| n["name"].as_str()).collect();
    edges.retain(|e| {
        e["from"].as_str().is_some_and(|f| known.contains(f))
            && e["to"].as_str().is_some_and(|t| known.contains(t))
    });
    json!({ "nodes": nodes, "edges": edges, "truncated": truncated })
}

/// `GET /v1/pipelines/NAME/graph`. A pipeline that is not the caller's is a 404.
pub fn graph(s: &Server, tenant: &str, name: &str) -> ApiResult {
    let rec = s
        .store
        .pipeline(tenant, name)?
        .ok_or_else(|| ApiError::NotFound(format!("no pipeline `{}`", name.escape_debug())))?;
    let mut v = graph_of(&rec.yaml);
    v["name"] = json!(rec.name);
    Ok((StatusCode::OK, Json(v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_graph_lists_each_component_and_only_edges_between_them() {
        let g = graph_of(
            "name: p\nsources:\n  gen: {type: datagen}\nstages:\n  a: {plugin: pass, inputs: [gen, ghost]}\n  b: {plugin: mask, inputs: a}\nsinks:\n  out: {type: file, path: o.jsonl, inputs: [a, b]}\n",
        );
        assert_eq!(
            g,
            json!({
                "nodes": [
                    {"role": "source", "name": "gen", "kind": "datagen"},
                    {"role": "stage", "name": "a", "kind": "pass"},
                    {"role": "stage", "name": "b", "kind": "mask"},
                    {"role": "sink", "name": "out", "kind": "file"},
                ],
                "edges": [
                    {"from": "gen", "to": "a"},
                    {"from": "a", "to": "b"},
                    {"from": "a", "to": "out"},
                    {"from": "b", "to": "out"},
                ],
                "truncated": false,
            })
        );
        assert_eq!(
            graph_of("{not yaml"),
            json!({"nodes": [], "edges": [], "truncated": false})
        );
        let many: String = (0..MAX_NODES + 5)
            .map(|i| format!("  s{i}: {{type: datagen}}\n"))
            .collect();
        let g = graph_of(&format!("name: p\nsources:\n{many}"));
        assert_eq!(g["nodes"].as_array().map(Vec::len), Some(MAX_NODES));
        assert_eq!(g["truncated"], true);
    }

    #[test]
    fn every_console_response_carries_the_security_headers() {
        for r in [file("index.html"), file("app.js"), file("../catalog.redb")] {
            let h = r.headers();
            let csp = h["content-security-policy"].to_str().expect("ascii");
            assert!(csp.contains("script-src 'self';"), "{csp}");
            assert!(!csp.contains("unsafe-inline"), "{csp}");
            assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
            assert_eq!(h["x-content-type-options"], "nosniff");
            assert_eq!(h["x-frame-options"], "DENY");
        }
        assert_eq!(file("../catalog.redb").status(), StatusCode::NOT_FOUND);
        assert_eq!(
            file("app.js").headers()["content-type"],
            "text/javascript; charset=utf-8"
        );
    }
}
