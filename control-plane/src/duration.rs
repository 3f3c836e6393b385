//! Durations as the command line writes them: a whole number and a unit, `500ms`, `3s`,
//! `2m`, `1h`, `7d`.

use std::time::Duration;

/// Parses `N` followed by `ms`, `s`, `m`, `h` or `d`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let allowed = "write a whole number and a unit: ms, s, m, h or d (such as 500ms, 15s or 7d)";
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{}` is not a duration; {allowed}", text.escape_default()))?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "`{}` is not a duration; {allowed}",
                text.escape_default()
            ));
        }
    };
    n.checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{}` is too long a duration", text.escape_default()))
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
