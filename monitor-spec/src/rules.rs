//! Rules shared by run-time validation, the `#[tcp_monitor]` macro (which validates
//! with this crate), the agents and the control plane, so that all judge hosts, ids,
//! names, durations and frequencies alike.
//!
//! Names people read and routes match (tags, locations, alert channels) hold only
//! printable ASCII from a small set, so that no name can hide a character, reverse the
//! text around it (U+202E) or split into two (`team,oncall` against the `,oncall,`
//! route of an alert manager). Free text (a monitor's name, group and description) may
//! hold any Unicode but no control or format character.

use std::net::IpAddr;

/// Default connect timeout in milliseconds.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u32 = 5_000;
/// Default read timeout (per expect or read step) in milliseconds.
pub const DEFAULT_READ_TIMEOUT_MS: u32 = 5_000;
/// Default timeout for the whole check in milliseconds.
pub const DEFAULT_TOTAL_TIMEOUT_MS: u32 = 10_000;
/// Default degraded response time in milliseconds (Checkly's default).
pub const DEFAULT_DEGRADED_RESPONSE_TIME_MS: u32 = 4_000;
/// Default max response time in milliseconds (Checkly's default).
pub const DEFAULT_MAX_RESPONSE_TIME_MS: u32 = 5_000;
/// The longest retry backoff or retry duration budget, in seconds (Checkly's limit).
pub const MAX_RETRY_SECONDS: u32 = 600;

/// The keys project-wide defaults may set (`monitor_defaults!`, `registry::Defaults`).
pub const DEFAULT_KEYS: [&str; 8] = [
    "frequency",
    "locations",
    "private_locations",
    "tags",
    "retry",
    "alert_channels",
    "expiry_warn_days",
    "expiry_fail_days",
];

/// The frequencies a monitor may run at, shortest first.
pub const FREQUENCIES: [&str; 15] = [
    "10s", "20s", "30s", "1m", "2m", "5m", "10m", "15m", "30m", "1h", "2h", "3h", "6h", "12h",
    "24h",
];

/// Parses a duration such as `250ms`, `5s`, `2m` or `1h` into milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    parse_duration_in(text, &TIME_UNITS[..4], "250ms, 5s or 2m")
}

/// Units of time a duration may be written in, with their length in milliseconds.
pub const TIME_UNITS: [(&str, u64); 5] = [
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

/// Parses a whole number followed by one of `units` into milliseconds; `examples` shows
/// the form in the error.
pub fn parse_duration_in(text: &str, units: &[(&str, u64)], examples: &str) -> Result<u64, String> {
    let names: Vec<&str> = units.iter().map(|(name, _)| *name).collect();
    let names = match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    let allowed = format!("write a whole number followed by {names}, such as {examples}");
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; {allowed}"))?;
    let scale = units
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, ms)| *ms)
        .ok_or_else(|| format!("`{text}` is not a duration; {allowed}"))?;
    n.checked_mul(scale)
        .ok_or_else(|| format!("`{text}` is too long a duration"))
}

/// Checks a logical id: 1 to 128 characters of letters, digits and `-_.:/`.
pub fn check_id(id: &str) -> Result<(), String> {
    let allowed = "use 1 to 128 characters: letters, digits, `-`, `_`, `.`, `:` and `/`";
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_.:/".contains(*c)))
    {
        return Err(format!("`{id}` contains `{c}`; {allowed}"));
    }
    // Only ASCII is left, so bytes are characters.
    if id.is_empty() || id.len() > 128 {
        return Err(format!(
            "must not be empty or longer than 128 characters; {allowed}"
        ));
    }
    Ok(())
}

/// Checks a location name (a monitor's `locations`, an agent's `--location`) or an agent
/// id: 1 to 64 ASCII letters, digits, `.`, `_` and `-`, so that every location a monitor
/// names can have an agent.
pub fn check_place(name: &str) -> Result<(), String> {
    if is_word(name, 64, false) {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a location name: use 1 to 64 ascii letters, digits, `.`, `_` or `-`",
            name.escape_default()
        ))
    }
}

/// The longest tag, in characters (ASCII).
pub const MAX_TAG_CHARS: usize = 64;
/// The characters a tag may hold besides ASCII letters and digits (a space only inside).
pub const TAG_SYMBOLS: &str = " -_.:/=@+";
/// The longest alert channel name, in characters (ASCII).
pub const MAX_CHANNEL_CHARS: usize = 64;

/// Checks a tag: 1 to 64 ASCII letters, digits, spaces and `-_.:/=@+`, not starting or
/// ending with a space. No comma: `--tag a,b` and `list` separate tags with commas.
pub fn check_tag(tag: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || TAG_SYMBOLS.contains(c);
    if tag.trim().is_empty() {
        return Err("must not be empty or blank".to_owned());
    }
    if tag.trim() != tag {
        return Err("must not start or end with white space".to_owned());
    }
    // Before the characters, so that the message below quotes at most 64 of them.
    if tag.chars().nth(MAX_TAG_CHARS).is_some() {
        return Err(format!("is longer than {MAX_TAG_CHARS} characters"));
    }
    if let Some(c) = tag.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "`{}` contains `{}`; a tag is 1 to {MAX_TAG_CHARS} ascii letters, digits, spaces and `-_.:/=@+`",
            tag.escape_default(),
            c.escape_default()
        ));
    }
    Ok(())
}

/// Checks an alert channel name: 1 to 64 ASCII letters, digits, `.`, `_` and `-`. No
/// comma, space or other character: `/metrics` joins a monitor's channels as
/// `,a,b,` for routes such as `alert_channels=~".*,oncall,.*"`, which a name holding
/// a comma would match falsely.
pub fn check_channel(name: &str) -> Result<(), String> {
    if is_word(name, MAX_CHANNEL_CHARS, false) {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not an alert channel name: use 1 to {MAX_CHANNEL_CHARS} ascii letters, digits, `.`, `_` or `-`",
            name.escape_default()
        ))
    }
}

/// Checks free text shown to people (a monitor's name, group and description): no
/// control or format character ([`crate::escape::is_hidden`]), except line breaks and
/// tabs where `lines` allows them (a Markdown description).
pub fn check_text(text: &str, lines: bool) -> Result<(), String> {
    let allowed = |c: char| lines && matches!(c, '\n' | '\r' | '\t');
    match text
        .chars()
        .find(|c| crate::escape::is_hidden(*c) && !allowed(*c))
    {
        Some(c) => Err(format!(
            "contains the invisible character `{}`; control and format characters (such as the bidi controls and zero-width spaces) are not allowed",
            c.escape_unicode()
        )),
        None => Ok(()),
    }
}

/// Checks a project name: 1 to 128 ASCII letters, digits, `-`, `_` and `.`, starting
/// with a letter or digit.
pub fn check_project(name: &str) -> Result<(), String> {
    if is_word(name, 128, true) {
        Ok(())
    } else {
        Err(format!(
            "invalid project name `{}`: use 1 to 128 ascii letters, digits, `-`, `_` or `.`, starting with a letter or digit",
            name.escape_default()
        ))
    }
}

/// The one name rule behind locations, agents and projects: 1 to `max` ASCII letters,
/// digits, `.`, `_` and `-`, the first a letter or digit when `alnum_first`.
fn is_word(name: &str, max: usize, alnum_first: bool) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    !name.is_empty()
        && name.len() <= max
        && (!alnum_first || name.as_bytes()[0].is_ascii_alphanumeric())
        && name.bytes().all(word)
}

/// Checks a host: a DNS name, an IPv4 literal or an IPv6 literal. Returns the address when
/// the host is a literal.
pub fn check_host(host: &str) -> Result<Option<IpAddr>, String> {
    let allowed = "use a DNS name (letters, digits, `-`, `_`, dots), an IPv4 address or an IPv6 address without brackets";
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Some(ip));
    }
    let bad = |why: &str| Err(format!("`{host}` is not a valid host: {why}; {allowed}"));
    if host.is_empty() {
        return Err(format!("must not be empty; {allowed}"));
    }
    if host.starts_with('[') {
        return bad("brackets are not needed");
    }
    if host.contains("://") {
        return bad("a URL scheme is not part of a host");
    }
    if host.contains(':') {
        return bad("a host holds no port (set target.port) and an IPv6 address must be valid");
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.len() > 253 {
        return bad("longer than 253 characters");
    }
    let labels: Vec<&str> = name.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return bad("it has an empty label");
        }
        if label.len() > 63 {
            return bad("a label is longer than 63 characters");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label starts or ends with `-`");
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return bad(&format!("it contains `{c}`"));
        }
    }
    if labels
        .last()
        .is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()))
    {
        return bad("it looks like an IPv4 address but is not one");
    }
    Ok(None)
}
