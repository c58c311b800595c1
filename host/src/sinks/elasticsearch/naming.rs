//! Index names from templates and deterministic document ids.

/// Expands `%Y %m %d %H` in an index template from the event timestamp.
pub fn index_name(template: &str, timestamp_ms: i64) -> String {
    crate::format::time::expand(template, timestamp_ms)
}

/// `<origin>-<position>-<n>`: the n-th output derived from that input, so a
/// replay of the same input produces the same ids.
pub fn position_id(origin: &str, position: u64, ordinal: u32) -> String {
    format!("{origin}-{position}-{ordinal}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_expand_and_plain_names_stay() {
        assert_eq!(
            index_name("logs-%Y.%m.%d", 1_585_912_800_000),
            "logs-2020.04.03"
        );
        assert_eq!(index_name("orders", 5), "orders");
        assert_eq!(position_id("orders", 7, 1), "orders-7-1");
    }
}
