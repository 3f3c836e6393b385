//! Names that cannot lie (issue 14, finding 8): tags, locations and alert channels hold
//! only printable ASCII from a small set, so no name can hide a character, turn the text
//! around it (U+202E) or match a route meant for another (`team,oncall` against
//! `,oncall,`); a monitor's name, group and description hold no control or format
//! character.

use monitor_spec::rules::{check_channel, check_tag, check_text};
use monitor_spec::*;

/// Checks `rule` on each input: `None` for accepted, or text the refusal contains.
#[track_caller]
fn check(rule: fn(&str) -> Result<(), String>, cases: &[(&str, Option<&str>)]) {
    for (input, expected) in cases {
        match (rule(input), expected) {
            (Ok(()), None) => {}
            (Err(why), Some(text)) => {
                assert!(why.contains(text), "{input:?}: {why:?} lacks {text:?}");
                assert!(
                    !why.chars().any(monitor_spec::escape::is_hidden),
                    "{input:?}: the message shows a hidden character raw: {why:?}"
                );
            }
            (got, _) => panic!("{input:?}: got {got:?}, expected {expected:?}"),
        }
    }
}

#[test]
fn tags_are_printable_ascii_words() {
    let allowed = "a tag is 1 to 64 ascii letters, digits, spaces and `-_.:/=@+`";
    check(
        check_tag,
        &[
            ("prod", None),
            ("team-7", None),
            ("env=prod", None),
            ("owner:sre@example.com", None),
            ("tier/1+2_x.y", None),
            ("two words", None),
            (&"t".repeat(64), None),
            ("a,b", Some(&format!("`a,b` contains `,`; {allowed}"))),
            ("é", Some("`\\u{e9}` contains `\\u{e9}`")),
            ("abc\u{202e}fed", Some("contains `\\u{202e}`")),
            ("zero\u{200b}width", Some("contains `\\u{200b}`")),
            ("bell\u{7}", Some("contains `\\u{7}`")),
            ("new\nline", Some("contains `\\n`")),
            ("", Some("must not be empty or blank")),
            ("  ", Some("must not be empty or blank")),
            (" lead", Some("must not start or end with white space")),
            ("trail ", Some("must not start or end with white space")),
            (&"t".repeat(65), Some("is longer than 64 characters")),
            (&",".repeat(100_000), Some("is longer than 64 characters")),
        ],
    );
}

#[test]
fn alert_channels_are_ascii_words_without_commas() {
    let allowed =
        "is not an alert channel name: use 1 to 64 ascii letters, digits, `.`, `_` or `-`";
    check(
        check_channel,
        &[
            ("oncall", None),
            ("ops-email", None),
            ("team.sre_1", None),
            (&"c".repeat(64), None),
            ("team,oncall", Some(&format!("`team,oncall` {allowed}"))),
            ("on call", Some(allowed)),
            ("ops\u{202e}", Some("`ops\\u{202e}` is not")),
            ("ops\u{1b}[2J", Some("`ops\\u{1b}[2J` is not")),
            ("", Some(allowed)),
            (&"c".repeat(65), Some(allowed)),
        ],
    );
}

#[test]
fn free_text_holds_no_hidden_character() {
    let text = |lines: bool| -> fn(&str) -> Result<(), String> {
        if lines {
            |t| check_text(t, true)
        } else {
            |t| check_text(t, false)
        }
    };
    let hidden = "contains the invisible character";
    check(
        text(false),
        &[
            ("Redis cache answers PING", None),
            ("Café ☕ (eu)", None),
            ("abc\u{202e}fed", Some(&format!("{hidden} `\\u{{202e}}`"))),
            ("a\u{2066}b", Some("`\\u{2066}`")),
            ("a\u{feff}", Some("`\\u{feff}`")),
            ("tab\there", Some("`\\u{9}`")),
            ("a\u{85}", Some("`\\u{85}`")),
        ],
    );
    check(
        text(true),
        &[
            ("line one\nline two\r\n\tindented", None),
            ("a\u{200d}b", Some("`\\u{200d}`")),
            ("bell\u{7}", Some("`\\u{7}`")),
        ],
    );
}

/// Validation applies the rules at the path of each entry, and the same spec fails the
/// same way as JSON, as the control plane receives it.
#[test]
fn validation_names_each_lying_name() {
    let mut m = TcpMonitor::new("id", "127.0.0.1", 6379);
    m.name = "Redis\u{202e}".into();
    m.group = Some("\u{200b}".into());
    m.description = Some("**bold**\n\u{2067}".into());
    m.tags = vec!["prod".into(), "a,b".into()];
    m.locations = vec!["eu-west-1".into(), "eu\u{202e}".into()];
    m.private_locations = vec!["dc,1".into()];
    m.alert_channels = vec!["oncall".into(), "team,oncall".into(), "team,oncall".into()];
    let json = m.to_json();
    let errors = TcpMonitor::from_json(&json)
        .unwrap()
        .validate()
        .unwrap_err()
        .0;
    let problems: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| (e.path.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(
        problems,
        [
            (
                "name",
                "contains the invisible character `\\u{202e}`; control and format characters (such as the bidi controls and zero-width spaces) are not allowed"
            ),
            (
                "description",
                "contains the invisible character `\\u{2067}`; control and format characters (such as the bidi controls and zero-width spaces) are not allowed"
            ),
            (
                "tags[1]",
                "`a,b` contains `,`; a tag is 1 to 64 ascii letters, digits, spaces and `-_.:/=@+`"
            ),
            (
                "group",
                "contains the invisible character `\\u{200b}`; control and format characters (such as the bidi controls and zero-width spaces) are not allowed"
            ),
            (
                "locations[1]",
                "`eu\\u{202e}` is not a location name: use 1 to 64 ascii letters, digits, `.`, `_` or `-`"
            ),
            (
                "private_locations[0]",
                "`dc,1` is not a location name: use 1 to 64 ascii letters, digits, `.`, `_` or `-`"
            ),
            (
                "alert_channels[1]",
                "`team,oncall` is not an alert channel name: use 1 to 64 ascii letters, digits, `.`, `_` or `-`"
            ),
            (
                "alert_channels[2]",
                "`team,oncall` is not an alert channel name: use 1 to 64 ascii letters, digits, `.`, `_` or `-`"
            ),
            (
                "alert_channels[2]",
                "duplicate of alert_channels[1] (`team,oncall`)"
            ),
        ]
    );
}
