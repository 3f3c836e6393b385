//! Durations as the command line writes them: a whole number and a unit, `500ms`, `3s`,
//! `2m`, `1h`, `7d`.

use std::time::Duration;

/// Parses `N` followed by `ms`, `s`, `m`, `h` or `d`.
pub fn parse(text: &str) -> Result<Duration, String> {
    use monitor_spec::rules::{TIME_UNITS, parse_duration_in};
    parse_duration_in(text, &TIME_UNITS, "500ms, 15s or 7d").map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Option<u64>) {
        assert_eq!(
            parse(text).ok().map(|d| d.as_millis() as u64),
            expected,
            "{text}"
        );
    }

    #[test]
    fn durations() {
        for (text, millis) in [
            ("500ms", Some(500)),
            ("0s", Some(0)),
            ("3s", Some(3_000)),
            ("2m", Some(120_000)),
            ("1h", Some(3_600_000)),
            ("7d", Some(604_800_000)),
            ("", None),
            ("s", None),
            ("5", None),
            ("5 s", None),
            ("-5s", None),
            ("1.5s", None),
            ("5w", None),
            ("99999999999999999999d", None),
            ("999999999999999d", None),
        ] {
            check(text, millis);
        }
        assert!(parse("5w").unwrap_err().contains("ms, s, m, h or d"));
    }
}
