//! The deploy workflow with the real client (issue 21): `deploy --preview` shows each
//! change as old → new per field, creations and deletions in full, and the same as JSON
//! with `--format json`; `versions` lists the versions and `versions show N` prints a
//! version's change against the one before it.

use monitor_core::Bundle;
use monitor_core::prelude::*;
use serde_json::Value;

use super::{Server, abc, redis};

#[test]
fn preview_shows_old_and_new_values_and_versions_show_each_change() {
    let (server, tokens) = Server::start(&["shop"]);
    let client = server.client("shop", &tokens[0]);
    let first = client.deploy(&abc(), &[]);
    assert_eq!(first.code, Some(0), "{first}");

    // `a` changes its frequency and tags, `b` goes, `d` comes.
    let second = Bundle::new(vec![
        redis("a", 6379).frequency(Frequency::S30).tag("prod"),
        redis("c", 6381),
        redis("d", 6382),
    ]);
    let preview = client.deploy(&second, &["--preview"]);
    assert_eq!(preview.code, Some(0), "{preview}");
    for line in [
        "  ~ update  a",
        "      frequency: 10m → 30s",
        "      tags: +prod",
        "  + create  d",
        "      target.port: 6382",
        "  - delete  b",
        "      target.port: 6380",
        "  1 to create, 1 to update, 1 to delete, 1 unchanged",
        "preview only: nothing was applied",
    ] {
        assert!(
            preview.stdout.lines().any(|l| l == line),
            "no line {line:?}\n{preview}"
        );
    }
    let json = client.deploy(&second, &["--preview", "--format", "json"]);
    assert_eq!(json.code, Some(0), "{json}");
    let json: Value = serde_json::from_str(&json.stdout).expect("one JSON document");
    assert_eq!(json["updated"][0]["id"], "a");
    assert!(
        json["updated"][0]["changes"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"path": "frequency", "old": "10m", "new": "30s"})),
        "{json}"
    );
    assert_eq!(json["created"][0]["monitor"]["target"]["port"], 6382);
    assert_eq!(json["deleted"][0]["id"], "b");
    assert_eq!(json["unchanged"], 1);
    assert_eq!(client.versions().len(), 1, "a preview applies nothing");

    let applied = client.deploy(&second, &["--force"]);
    assert_eq!(applied.code, Some(0), "{applied}");
    let list = client.xtask(&["versions"]);
    assert_eq!(list.code, Some(0), "{list}");
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert!(
        lines[1].starts_with("  version 2  ") && lines[1].contains("3 monitors"),
        "{list}"
    );
    assert!(lines[2].starts_with("  version 1  "), "{list}");

    let show = client.xtask(&["versions", "show", "2"]);
    assert_eq!(show.code, Some(0), "{show}");
    for line in [
        "against version 1:",
        "      frequency: 10m → 30s",
        "  + create  d",
        "  - delete  b",
    ] {
        assert!(
            show.stdout.lines().any(|l| l == line),
            "no line {line:?}\n{show}"
        );
    }
    let first = client.xtask(&["versions", "show", "1"]);
    assert!(first.stdout.contains("the first version:"), "{first}");
    assert!(first.stdout.contains("3 to create, 0 to update"), "{first}");
    let missing = client.xtask(&["versions", "show", "9"]);
    assert_eq!(missing.code, Some(1), "{missing}");
    assert!(missing.stderr.contains("has no version 9"), "{missing}");
    let bad = client.xtask(&["versions", "show", "x"]);
    assert_eq!(bad.code, Some(2), "{bad}");

    // A change of the maintenance windows alone is a change: previewed, applied, shown.
    let window = |start: &str| {
        serde_json::from_value(serde_json::json!({"id": "vacuum", "tags": ["prod"],
            "schedule": {"weekly": {"days": ["sunday"], "start": start, "end": "04:00"}}}))
        .expect("a window")
    };
    let mut third = second.clone();
    third.maintenance = vec![window("03:00")];
    let created = client.deploy(&third, &["--force"]);
    assert_eq!(created.code, Some(0), "{created}");
    assert!(
        created.stdout.contains("  + create  window vacuum"),
        "{created}"
    );
    assert!(
        created.stdout.contains("maintenance windows: 1 created"),
        "{created}"
    );
    third.maintenance = vec![window("02:30")];
    let preview = client.deploy(&third, &["--preview"]);
    assert_eq!(preview.code, Some(0), "{preview}");
    for line in [
        "  ~ update  window vacuum",
        "      schedule.weekly.start: 03:00 → 02:30",
        "  0 to create, 0 to update, 0 to delete, 3 unchanged; maintenance windows: 0 to create, 1 to update, 0 to delete",
    ] {
        assert!(
            preview.stdout.lines().any(|l| l == line),
            "no line {line:?}\n{preview}"
        );
    }
    let applied = client.deploy(&third, &["--force"]);
    assert_eq!(applied.code, Some(0), "{applied}");
    assert_eq!(client.versions().len(), 4, "{applied}");
    let show = client.xtask(&["versions", "show", "4"]);
    assert!(show.stdout.contains("  ~ update  window vacuum"), "{show}");
}

#[test]
fn a_bundle_with_five_mixed_errors_is_refused_with_all_five() {
    let (server, tokens) = Server::start(&["shop"]);
    let client = server.client("shop", &tokens[0]);
    let monitor = |id: &str, extra: &str| {
        format!(
            r#"{{"schema_version":1,"id":"{id}","name":"{id}","target":{{"host":"h","port":1}}{extra}}}"#
        )
    };
    let bad = format!(
        "{{\"schema_version\":1,\"monitors\":[\n{}\n]}}\n",
        [
            monitor("a", r#","frequency":"7m""#),
            monitor("b", "").replace(r#""port":1"#, r#""port":"x""#),
            monitor("c", "").replace(r#""port":1"#, r#""port":0"#),
            monitor("d", r#","colour":"blue""#),
            monitor(
                "e",
                r#","timeouts":{"connect_ms":0,"read_ms":1000,"total_ms":10000}"#
            ),
        ]
        .join(",\n")
    );
    let file = server.dir.0.join("five-errors.json");
    std::fs::write(&file, bad).unwrap();
    let run = client.xtask(&["deploy", "--bundle", file.to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("5 problems:"), "{run}");
    for path in [
        "  monitors[0].frequency: ",
        "  monitors[1].target.port: ",
        "  monitors[2].target.port: ",
        "  monitors[3].colour: ",
        "  monitors[4].timeouts.connect_ms: ",
    ] {
        assert!(
            run.stderr.lines().any(|l| l.starts_with(path)),
            "no line {path:?}\n{run}"
        );
    }
    assert!(client.versions().is_empty(), "nothing deployed");
}
