//! The expression language (filter `where`, project `set`) is written by
//! pipeline authors; parsing and evaluating any text must never panic or
//! recurse without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use sluice_expr::Expr;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = Expr::parse(source) else {
        return;
    };
    let events = [
        json!({"amount": 12.5, "name": "Ada", "tags": ["a", "b"], "nested": {"x": 1}}),
        json!({"amount": "12", "name": null, "nested": [1, 2, 3]}),
        json!([1, {"x": -0.0}]),
        json!("text"),
    ];
    for event in &events {
        let _ = expr.eval(event);
        let _ = expr.matches(event);
        let bytes = event.to_string();
        if let Ok(partial) = expr.parse_input(bytes.as_bytes()) {
            assert_eq!(
                expr.eval(&partial),
                expr.eval(event),
                "partial parsing changed the result of `{source}` on {event}"
            );
        }
    }
});
