//! UTC calendar arithmetic for event-time templates (index names, object
//! paths) without a date-time dependency.

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, exact for every day an `i64` can count).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day, hour) in UTC for milliseconds since the epoch.
pub fn utc_parts(ms: i64) -> (i64, u32, u32, u32) {
    let secs = ms.div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    (y, m, d, (secs.rem_euclid(86_400) / 3600) as u32)
}

/// Expands `%Y %m %d %H` (UTC) in `template` from an event timestamp.
pub fn expand(template: &str, timestamp_ms: i64) -> String {
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
    fn templates_expand_and_plain_text_stays() {
        assert_eq!(
            expand("logs-%Y.%m.%d", 1_585_912_800_000),
            "logs-2020.04.03"
        );
        assert_eq!(
            expand("year=%Y/hour=%H", 1_585_912_800_000),
            "year=2020/hour=11"
        );
        assert_eq!(expand("orders", 5), "orders");
    }
}
