//! The OpenAPI 3.0 document served at `/v1/openapi.json`.
//!
//! It is hand-written JSON (`openapi.json` next to this file) rather than
//! generated with a crate such as utoipa: the handlers take raw bodies and
//! answer `serde_json::Value`s, so derive macros would describe little
//! without a rewrite, and they would add proc-macro crates to every build.
//! What keeps it true: the test below holds it to the routes the router
//! serves, method by method, and `scripts/fuzz-api.sh` runs schemathesis
//! against the live server to check every answer against it.

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_document_lists_exactly_the_routes_and_methods_the_router_serves() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("valid JSON");
        assert_eq!(doc["openapi"], "3.0.3");
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .expect("operations")
                    .keys()
                    .filter(|m| *m != "parameters")
                    .map(move |m| (path.clone(), m.to_uppercase()))
            })
            .collect();
        let served: BTreeSet<(String, String)> = crate::server::api::routes()
            .served
            .iter()
            // axum's catch-all `{*path}` is OpenAPI's `{path}`.
            .flat_map(|(path, methods)| {
                methods
                    .iter()
                    .map(|m| (path.replace("{*", "{"), m.to_string()))
            })
            .collect();
        let missing: Vec<_> = served.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&served).collect();
        assert!(missing.is_empty(), "served but not documented: {missing:?}");
        assert!(extra.is_empty(), "documented but not served: {extra:?}");
        // Every `$ref` points at a schema that exists.
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for (at, _) in DOCUMENT.match_indices("#/components/schemas/") {
            let rest = &DOCUMENT[at + "#/components/schemas/".len()..];
            let name = &rest[..rest.find('"').expect("closing quote")];
            assert!(schemas.contains_key(name), "dangling $ref to {name}");
        }
    }

    /// The `Name` schema is what clients (and schemathesis) generate names from:
    /// a name it allows and the server refuses fails a valid request.
    #[test]
    fn the_name_pattern_accepts_exactly_what_the_server_accepts() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("valid JSON");
        let pattern = doc["components"]["schemas"]["Name"]["pattern"]
            .as_str()
            .expect("Name has a pattern");
        let re = regex_lite::Regex::new(pattern).expect("pattern compiles");
        let long = "a".repeat(64);
        let too_long = "a".repeat(65);
        for name in [
            "a",
            "A9",
            "orders.v2",
            "x-_.",
            &long,
            &too_long,
            "",
            "-W_FI",
            ".hidden",
            "_x",
            "a b",
            "a/b",
            "..",
            "é",
            "a\n",
            "tenant\u{0}",
        ] {
            assert_eq!(
                re.is_match(name),
                crate::server::policy::is_name(name),
                "document and server disagree on {name:?}"
            );
        }
    }
}
