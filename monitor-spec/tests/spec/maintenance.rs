//! Maintenance windows: their JSON form, validation with paths, when they are open and
//! which monitors they cover, and the bundle carrying them.

use monitor_spec::maintenance::{
    AdHocRequest, ListedWindow, MaintenanceWindow, active_window, check_windows, parse_minutes,
};
use monitor_spec::{Bundle, TcpMonitor};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn window(value: Value) -> MaintenanceWindow {
    serde_json::from_value(value).expect("a window's shape")
}

fn at(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap()
}

fn tags(list: &[&str]) -> Vec<String> {
    list.iter().map(|t| (*t).to_owned()).collect()
}

/// Checks whether `input` is open at each instant for monitor `db-1` tagged `db`:
/// `(instant, expected open, expected end)`.
#[track_caller]
fn check(input: Value, cases: &[(&str, Option<&str>)]) {
    let w = window(input);
    assert_eq!(w.problems(), vec![], "{w:?}");
    for (instant, expected) in cases {
        let got = w.open_until(at(instant));
        assert_eq!(got, expected.map(at), "{instant}");
        assert_eq!(
            w.active("db-1", &tags(&["db"]), at(instant)),
            expected.is_some()
        );
    }
}

/// Checks that `input` has exactly these problems, as `path: message part`.
#[track_caller]
fn check_invalid(input: Value, expected: &[(&str, &str)]) {
    let w = window(input);
    let problems = w.problems();
    assert_eq!(problems.len(), expected.len(), "{problems:?}");
    for (p, (path, message)) in problems.iter().zip(expected) {
        assert_eq!(p.path, *path, "{problems:?}");
        assert!(p.message.contains(message), "{p:?} lacks {message:?}");
    }
}

#[test]
fn once_is_open_from_start_to_end() {
    check(
        json!({"id": "upgrade", "tags": ["db"], "schedule": {"once": {
            "start": "2026-12-06T02:00:00Z", "end": "2026-12-06T03:00:00Z"}}}),
        &[
            ("2026-12-06T01:59:59Z", None),
            ("2026-12-06T02:00:00Z", Some("2026-12-06T03:00:00Z")),
            ("2026-12-06T03:30:00+01:00", Some("2026-12-06T03:00:00Z")),
            ("2026-12-06T03:00:00Z", None),
        ],
    );
}

#[test]
fn weekly_opens_on_its_days_in_utc() {
    // 2026-12-06 is a Sunday.
    check(
        json!({"id": "backup", "monitors": ["db-1"], "schedule": {"weekly": {
            "days": ["sunday"], "start": "02:00", "end": "03:00"}}}),
        &[
            ("2026-12-06T01:59:59Z", None),
            ("2026-12-06T02:00:00Z", Some("2026-12-06T03:00:00Z")),
            ("2026-12-06T02:59:59Z", Some("2026-12-06T03:00:00Z")),
            ("2026-12-06T03:00:00Z", None),
            ("2026-12-07T02:30:00Z", None),
            ("2026-12-13T02:30:00Z", Some("2026-12-13T03:00:00Z")),
            ("2026-12-06T04:30:00+02:00", Some("2026-12-06T03:00:00Z")),
        ],
    );
}

#[test]
fn weekly_past_midnight_and_across_the_week() {
    check(
        json!({"id": "night", "tags": ["db"], "schedule": {"weekly": {
            "days": ["sunday", "wednesday"], "start": "23:30", "end": "00:30"}}}),
        &[
            ("2026-12-06T23:45:00Z", Some("2026-12-07T00:30:00Z")),
            ("2026-12-07T00:15:00Z", Some("2026-12-07T00:30:00Z")),
            ("2026-12-07T00:30:00Z", None),
            ("2026-12-09T23:30:00Z", Some("2026-12-10T00:30:00Z")),
            ("2026-12-08T23:45:00Z", None),
        ],
    );
}

#[test]
fn the_selector_covers_by_id_or_tag() {
    let w = window(json!({"id": "w", "tags": ["db", "eu"], "monitors": ["api"],
        "schedule": {"once": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}}}));
    let noon = at("2026-01-01T12:00:00Z");
    assert!(w.active("api", &[], noon));
    assert!(w.active("x", &tags(&["web", "eu"]), noon));
    assert!(!w.active("x", &tags(&["web"]), noon));
    assert!(!w.active("api", &[], at("2026-01-02T00:00:00Z")));
    let windows = [w.clone()];
    assert_eq!(active_window(&windows, "api", &[], noon), Some(&w));
    assert_eq!(active_window(&windows, "web", &[], noon), None);
    assert_eq!(w.display_name(), "w");
}

#[test]
fn invalid_windows_name_every_problem() {
    check_invalid(
        json!({"id": "bad id", "schedule": {"once": {
            "start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}}}),
        &[
            ("id", "contains ` `"),
            ("tags", "at least one tag or monitor id"),
            ("schedule.once.end", "must be after start"),
        ],
    );
    check_invalid(
        json!({"id": "long", "name": " x", "tags": ["db", "db"], "schedule": {"once": {
            "start": "2026-01-01T00:00:00Z", "end": "2026-01-08T00:00:01Z"}}}),
        &[
            ("name", "white space"),
            ("tags[1]", "duplicate of tags[0]"),
            ("schedule.once.end", "at most 7 days"),
        ],
    );
    check_invalid(
        json!({"id": "w", "monitors": ["a", "b c"], "schedule": {"weekly": {
            "days": ["sunday", "sunday"], "start": "24:00", "end": "2:00"}}}),
        &[
            ("monitors[1]", "contains ` `"),
            ("schedule.weekly.days[1]", "duplicate day"),
            ("schedule.weekly.start", "not a time of day"),
            ("schedule.weekly.end", "not a time of day"),
        ],
    );
    check_invalid(
        json!({"id": "w", "tags": ["db"], "schedule": {"weekly": {
            "days": [], "start": "02:00", "end": "02:00"}}}),
        &[
            ("schedule.weekly.days", "1 to 7 days"),
            ("schedule.weekly.end", "must differ from start"),
        ],
    );
    let many: Vec<String> = (0..65).map(|i| format!("t{i}")).collect();
    check_invalid(
        json!({"id": "w", "tags": many, "schedule": {"weekly": {
            "days": ["monday"], "start": "02:00", "end": "03:00"}}}),
        &[("tags", "at most 64")],
    );
}

#[test]
fn unknown_fields_are_refused() {
    for input in [
        json!({"id": "w", "tags": ["db"], "color": 1, "schedule": {"weekly": {
            "days": ["monday"], "start": "02:00", "end": "03:00"}}}),
        json!({"id": "w", "tags": ["db"], "schedule": {"weekly": {
            "days": ["monday"], "start": "02:00", "end": "03:00", "tz": "CET"}}}),
        json!({"id": "w", "tags": ["db"], "schedule": {"daily": {}}}),
        json!({"id": "w", "tags": ["db"], "schedule": {"weekly": {
            "days": ["someday"], "start": "02:00", "end": "03:00"}}}),
    ] {
        assert!(
            serde_json::from_value::<MaintenanceWindow>(input.clone()).is_err(),
            "{input}"
        );
    }
}

#[test]
fn a_bundle_carries_windows_and_stays_the_same_without() {
    let plain = Bundle::new(vec![TcpMonitor::new("db-1", "127.0.0.1", 5432)]);
    let text = plain.to_json();
    assert!(!text.contains("maintenance"), "{text}");
    assert_eq!(Bundle::read_checked(&text).unwrap(), plain);

    let mut with = plain.clone();
    with.maintenance
        .push(window(json!({"id": "backup", "tags": ["db"],
        "schedule": {"weekly": {"days": ["sunday"], "start": "02:00", "end": "03:00"}}})));
    let text = with.to_json();
    assert_eq!(Bundle::read_checked(&text).unwrap(), with);
    assert_eq!(Bundle::from_json(&text).unwrap(), with);
    assert!(with.validate().is_ok());

    with.maintenance.push(with.maintenance[0].clone());
    with.maintenance[1].tags.clear();
    let err = Bundle::read_checked(&with.to_json())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("maintenance[1].tags: a window selects"),
        "{err}"
    );
    assert!(
        err.contains("maintenance[1].id: duplicate id `backup`"),
        "{err}"
    );
    assert!(with.validate().is_err());
    let err = Bundle::read_valid(&with.to_json()).unwrap_err().to_string();
    assert!(
        err.contains("maintenance[1].id: duplicate id `backup`"),
        "{err}"
    );
    let mut valid = with.clone();
    valid.maintenance.truncate(1);
    assert_eq!(Bundle::read_valid(&valid.to_json()).unwrap().len(), 1);
    assert_eq!(check_windows(&with.maintenance).len(), 2);
}

#[test]
fn next_openings_are_the_current_or_the_coming_one() {
    let weekly = window(json!({"id": "w", "tags": ["db"], "schedule": {"weekly": {
        "days": ["sunday", "wednesday"], "start": "23:30", "end": "00:30"}}}));
    for (now, expected) in [
        (
            "2026-12-06T12:00:00Z",
            ("2026-12-06T23:30:00Z", "2026-12-07T00:30:00Z"),
        ),
        (
            "2026-12-07T00:10:00Z",
            ("2026-12-06T23:30:00Z", "2026-12-07T00:30:00Z"),
        ),
        (
            "2026-12-07T00:30:00Z",
            ("2026-12-09T23:30:00Z", "2026-12-10T00:30:00Z"),
        ),
        (
            "2026-12-10T01:00:00.5Z",
            ("2026-12-13T23:30:00Z", "2026-12-14T00:30:00Z"),
        ),
    ] {
        assert_eq!(
            weekly.next_opening(at(now)),
            Some((at(expected.0), at(expected.1))),
            "{now}"
        );
    }
    let once = window(json!({"id": "o", "tags": ["db"], "schedule": {"once": {
        "start": "2026-12-06T02:00:00Z", "end": "2026-12-06T03:00:00Z"}}}));
    let listed = ListedWindow::at(&once, false, at("2026-12-06T02:30:00Z")).unwrap();
    assert!(listed.active);
    assert!(
        !ListedWindow::at(&once, false, at("2026-12-06T01:00:00Z"))
            .unwrap()
            .active
    );
    assert_eq!(
        ListedWindow::at(&once, false, at("2026-12-06T03:00:00Z")),
        None
    );
}

#[test]
fn ad_hoc_requests_open_now_for_their_minutes() {
    let now = at("2026-12-06T07:00:00.25+01:00");
    let request: AdHocRequest =
        serde_json::from_value(json!({"tags": ["db"], "minutes": 30})).unwrap();
    let w = request.window("adhoc-1", now).unwrap();
    assert!(w.active("x", &tags(&["db"]), now));
    assert_eq!(w.open_until(now), Some(at("2026-12-06T06:30:00Z")));
    for (body, path) in [
        (json!({"minutes": 30}), "tags"),
        (json!({"monitors": ["a b"], "minutes": 30}), "monitors[0]"),
        (json!({"tags": ["db"], "minutes": 0}), "minutes"),
        (json!({"tags": ["db"], "minutes": 10081}), "minutes"),
    ] {
        let request: AdHocRequest = serde_json::from_value(body.clone()).unwrap();
        let problems = request.window("adhoc-1", now).unwrap_err();
        assert_eq!(problems.len(), 1, "{body}: {problems:?}");
        assert_eq!(problems[0].path, path, "{body}");
    }
    assert!(serde_json::from_value::<AdHocRequest>(json!({"minutes": 1, "for": 2})).is_err());
    for (text, expected) in [
        ("30m", Ok(30)),
        ("2h", Ok(120)),
        ("7d", Ok(10080)),
        ("8d", Err("from 1m to 7d")),
        ("0m", Err("from 1m to 7d")),
        ("30s", Err("not a duration")),
        ("soon", Err("not a duration")),
    ] {
        match (parse_minutes(text), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{text}"),
            (Err(why), Err(part)) => assert!(why.contains(part), "{text}: {why}"),
            (got, want) => panic!("{text}: got {got:?}, expected {want:?}"),
        }
    }
}
