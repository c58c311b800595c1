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

/// Days since 1970-01-01 of a (year, month, day) (Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Milliseconds since the epoch of an ISO 8601 date-time:
/// `2024-05-01T10:20:30` (ksqlDB's `yyyy-MM-dd'T'HH:mm:ss`; no zone means
/// UTC), with optional fraction (`.5`, `.123456`), `Z` or `±HH:MM` offset; a
/// space may stand for the `T`; a bare date is midnight UTC.
pub fn parse_timestamp_ms(text: &str) -> Option<i64> {
    let t = text.trim();
    let num = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let date = t.get(..10)?;
    let mut parts = date.split('-');
    let (y, mo, d) = (
        num(parts.next()?)?,
        num(parts.next()?)?,
        num(parts.next()?)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, mo as u32, d as u32);
    let rest = &t[10..];
    if rest.is_empty() {
        return Some(days * 86_400_000);
    }
    let rest = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' '))?;
    let (h, mi, s) = (
        num(rest.get(0..2)?)?,
        num(rest.get(3..5)?)?,
        num(rest.get(6..8)?)?,
    );
    if rest.get(2..3)? != ":" || rest.get(5..6)? != ":" || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut tail = &rest[8..];
    let mut millis = 0;
    if let Some(frac) = tail.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let ms_digits: String = frac[..digits]
            .chars()
            .chain("000".chars())
            .take(3)
            .collect();
        millis = num(&ms_digits)?;
        tail = &frac[digits..];
    }
    let offset_min = match tail {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match tail.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let o = tail[1..].replace(':', "");
            if o.len() != 4 {
                return None;
            }
            sign * (num(&o[..2])? * 60 + num(&o[2..])?)
        }
    };
    Some(((days * 86_400 + h * 3600 + mi * 60 + s) - offset_min * 60) * 1000 + millis)
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

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn timestamps_parse_in_the_documented_forms() {
        assert_eq!(parse_timestamp_ms("1970-01-01T00:00:01"), Some(1000));
        assert_eq!(
            parse_timestamp_ms("2023-05-01T12:00:00"),
            Some(1_682_942_400_000)
        );
        assert_eq!(
            parse_timestamp_ms("2023-05-01 12:00:00.25Z"),
            Some(1_682_942_400_250)
        );
        assert_eq!(
            parse_timestamp_ms("2023-05-01T14:00:00+02:00"),
            Some(1_682_942_400_000)
        );
        assert_eq!(parse_timestamp_ms("2023-05-01"), Some(1_682_899_200_000));
        assert_eq!(parse_timestamp_ms("2023-13-01T00:00:00"), None);
        assert_eq!(parse_timestamp_ms("yesterday"), None);
        for days in [-1000, 0, 19_000, 700_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
