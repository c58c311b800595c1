//! Object keys, laid out as the Kafka Connect S3 sink writes them.

/// Expands `%Y %m %d %H` from the event timestamp (UTC).
pub fn time_path(template: &str, timestamp_ms: i64) -> String {
    crate::format::time::expand(template, timestamp_ms)
}

/// A field value as one path segment: `/` and characters S3 tools choke on
/// become `_`.
pub fn segment(value: &str) -> String {
    let s: String = value
        .chars()
        .map(|c| {
            if c.is_control()
                || matches!(
                    c,
                    '/' | '\\'
                        | '{'
                        | '}'
                        | '^'
                        | '%'
                        | '`'
                        | '['
                        | ']'
                        | '"'
                        | '<'
                        | '>'
                        | '~'
                        | '#'
                        | '|'
                )
            {
                '_'
            } else {
                c
            }
        })
        .collect();
    match s.as_str() {
        "" => "_".into(),
        "." | ".." => s.replace('.', "_"),
        _ => s,
    }
}

/// `<prefix>/<stream>/<partition path>/<stream>+<p>+<first, 10 digits>.<ext>`.
pub fn object_key(
    prefix: &str,
    stream: &str,
    partition_path: &str,
    partition: u32,
    first: u64,
    ext: &str,
) -> String {
    let stream = segment(stream);
    let prefix = prefix.trim_matches('/');
    let lead = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    format!("{lead}{stream}/{partition_path}/{stream}+{partition}+{first:010}.{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_laid_out_like_kafka_connect() {
        assert_eq!(
            object_key("topics", "P_USERS", "partition=0", 0, 6, "json"),
            "topics/P_USERS/partition=0/P_USERS+0+0000000006.json"
        );
        assert_eq!(
            object_key("", "u", "country=NZ", 0, 12_345_678_901, "avro"),
            "u/country=NZ/u+0+12345678901.avro"
        );
    }

    #[test]
    fn time_paths_and_segments() {
        assert_eq!(
            time_path(
                "year=%Y/month=%m/day=%d/hour=%H",
                1_585_912_800_000 + 3_600_000
            ),
            "year=2020/month=04/day=03/hour=12"
        );
        assert_eq!(time_path("dt=%Y-%m-%d", -1), "dt=1969-12-31");
        assert_eq!(segment("a/b"), "a_b");
        assert_eq!(segment(".."), "__");
        assert_eq!(segment(""), "_");
    }
}
