//! Index names from templates and deterministic document ids.

/// (year, month, day, hour) in UTC for milliseconds since the epoch.
pub fn utc_parts(ms: i64) -> (i64, u32, u32, u32) {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let hour = (secs.rem_euclid(86_400) / 3600) as u32;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, hour)
}

/// Expands `%Y %m %d %H` in an index template from the event timestamp.
pub fn index_name(template: &str, timestamp_ms: i64) -> String {
    if !template.contains('%') {
        return template.to_string();
    }
    let (y, m, d, h) = utc_parts(timestamp_ms);
    template
        .replace("%Y", &format!("{y:04}"))
        .replace("%m", &format!("{m:02}"))
        .replace("%d", &format!("{d:02}"))
        .replace("%H", &format!("{h:02}"))
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
    fn civil_dates_are_right_around_epoch_and_leap_days() {
        assert_eq!(utc_parts(0), (1970, 1, 1, 0));
        assert_eq!(utc_parts(951_782_400_000), (2000, 2, 29, 0));
        assert_eq!(utc_parts(1_585_912_800_000 + 3_600_000), (2020, 4, 3, 12));
        assert_eq!(utc_parts(-1), (1969, 12, 31, 23));
    }

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
