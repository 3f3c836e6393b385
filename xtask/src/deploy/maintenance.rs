//! `cargo xtask maintenance start|list|end`: opens an ad-hoc maintenance window over the
//! monitors with some tags or ids (`POST /v1/projects/{project}/maintenance`), lists the
//! deployed and ad-hoc windows open now or later (`GET .../maintenance`), and ends an
//! ad-hoc one (`DELETE .../maintenance/{id}`), printing one line per window.

use std::fmt::Write;
use std::process::ExitCode;

use anyhow::anyhow;
use monitor_spec::maintenance::{AdHocRequest, ListedWindow, MaintenanceWindow, WindowList};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::api::{Action, shown};
use super::config::{Args, Format, MaintenanceCommand, MaintenanceFlags};
use super::{Failure, Outcome, connect};

/// Runs `maintenance start`, `list` or `end`.
pub(super) fn run(
    args: &Args,
    flags: &MaintenanceFlags,
    env: &dyn Fn(&str) -> Option<String>,
) -> Outcome {
    match &flags.command {
        MaintenanceCommand::Start(f) => {
            let request = AdHocRequest {
                name: f.name.clone(),
                tags: f.tags.clone(),
                monitors: f.monitors.clone(),
                minutes: f.minutes,
            };
            check(&request)?;
            let api = connect(args, env)?;
            let opened = api.start_maintenance(&request)?;
            println!("opened {}", line(&opened));
            eprintln!(
                "it ends by itself; to end it early: cargo xtask maintenance end {}",
                shown(&opened.window.id)
            );
        }
        MaintenanceCommand::List(_) => {
            let api = connect(args, env)?;
            let list: WindowList = api.get(&["maintenance"], Action::MaintenanceList)?;
            match args.format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&list)
                        .map_err(|e| Failure::local(anyhow!("cannot write the JSON: {e}")))?
                ),
                Format::Text => print!("{}", render(api.project(), &list)),
            }
        }
        MaintenanceCommand::End(f) => {
            let api = connect(args, env)?;
            match api.end_maintenance(&f.id)? {
                Some(ended) => println!("ended {}", line(&ended)),
                None => println!("ended window {}", shown(&f.id)),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The spec's own problems of the request (tags, ids, name, minutes), before anything is
/// sent: a local error (exit 2) listing each with its flag.
fn check(request: &AdHocRequest) -> Result<(), Failure> {
    let Err(problems) = request.window("ad-hoc", OffsetDateTime::UNIX_EPOCH) else {
        return Ok(());
    };
    let mut message = "the window is invalid:".to_owned();
    for p in problems {
        let flag = match p.path.split(['[', '.']).next().unwrap_or_default() {
            "tags" => "--tag",
            "monitors" => "--monitor",
            "name" => "--name",
            _ => "--for",
        };
        let _ = write!(message, "\n  {flag} ({}): {}", p.path, p.message);
    }
    Err(Failure::local(anyhow!(message)))
}

/// An instant as RFC 3339.
fn instant(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

/// `tags db, cache; monitors pg-primary`, every string shown safely.
fn covers(w: &MaintenanceWindow) -> String {
    let join = |list: &[String]| list.iter().map(|s| shown(s)).collect::<Vec<_>>().join(", ");
    let mut parts = Vec::new();
    if !w.tags.is_empty() {
        parts.push(format!("tags {}", join(&w.tags)));
    }
    if !w.monitors.is_empty() {
        parts.push(format!("monitors {}", join(&w.monitors)));
    }
    parts.join("; ")
}

/// One window on one line: id (and name), ad hoc or deployed, open now or next, its
/// opening, and what it covers.
fn line(listed: &ListedWindow) -> String {
    let w = &listed.window;
    let mut out = shown(&w.id);
    if let Some(name) = &w.name {
        let _ = write!(out, " ({})", shown(name));
    }
    let _ = write!(
        out,
        "  {}  {} {} → {}  covers {}",
        if listed.ad_hoc { "ad hoc" } else { "deployed" },
        if listed.active { "open now" } else { "next" },
        instant(listed.start),
        instant(listed.end),
        covers(w)
    );
    out
}

/// `list` for people: a header and one line per window, or a line saying there is none.
fn render(project: &str, list: &WindowList) -> String {
    if list.windows.is_empty() {
        return format!("project `{project}` has no maintenance window open now or later\n");
    }
    let mut out = format!("maintenance windows of project `{project}`, open ones first:\n");
    for w in &list.windows {
        let _ = writeln!(out, "  {}", line(w));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::config::{ClientCli, ClientCommand};
    use crate::deploy::tests::{api_at, one_shot, split_request};
    use clap::Parser;
    use monitor_spec::maintenance::{Weekday, WindowSchedule};

    /// The parsed `maintenance` command of `words`, or clap's error as text.
    fn parse(words: &[&str]) -> Result<MaintenanceCommand, String> {
        let words = std::iter::once("maintenance").chain(words.iter().copied());
        match ClientCli::try_parse_from(words) {
            Ok(ClientCli {
                command: ClientCommand::Maintenance(flags),
            }) => Ok(flags.command),
            Ok(other) => Err(format!("not maintenance: {other:?}")),
            Err(e) => Err(e.render().to_string()),
        }
    }

    /// What `start` reads: tags, monitors, minutes and name.
    type Start<'a> = (&'a [&'a str], &'a [&'a str], u32, Option<&'a str>);

    /// Checks that `words` parse into a request with `expected` (tags, monitors,
    /// minutes, name), or fail with an error containing this text.
    fn check_start(words: &[&str], expected: Result<Start<'_>, &str>) {
        let got = parse(words).map(|c| match c {
            MaintenanceCommand::Start(f) => (f.tags, f.monitors, f.minutes, f.name),
            other => panic!("{words:?}: {other:?}"),
        });
        match (got, expected) {
            (Ok(got), Ok((tags, monitors, minutes, name))) => assert_eq!(
                got,
                (
                    tags.iter().map(|s| (*s).to_owned()).collect(),
                    monitors.iter().map(|s| (*s).to_owned()).collect(),
                    minutes,
                    name.map(str::to_owned)
                ),
                "{words:?}"
            ),
            (Err(got), Err(expected)) => assert!(got.contains(expected), "{words:?}: {got}"),
            (got, _) => panic!("{words:?}: unexpected {got:?}"),
        }
    }

    #[test]
    fn start_needs_a_selector_and_a_duration() {
        check_start(
            &["start", "--tag", "db", "--for", "30m"],
            Ok((&["db"], &[], 30, None)),
        );
        check_start(
            &[
                "start",
                "--tag",
                "db",
                "--tag",
                "cache",
                "--monitor",
                "pg-primary",
                "--for",
                "2h",
                "--name",
                "Restart",
            ],
            Ok((&["db", "cache"], &["pg-primary"], 120, Some("Restart"))),
        );
        check_start(
            &["start", "--monitor", "a", "--for", "1d"],
            Ok((&[], &["a"], 1440, None)),
        );
        check_start(
            &["start", "--for", "30m"],
            Err("the following required arguments were not provided"),
        );
        check_start(&["start", "--tag", "db"], Err("--for <DURATION>"));
        check_start(
            &["start", "--tag", "db", "--for", "8d"],
            Err("`8d` must be a whole number of minutes from 1m to 7d"),
        );
        check_start(
            &["start", "--tag", "db", "--for", "90s"],
            Err("invalid value '90s'"),
        );
        assert!(matches!(
            parse(&["list", "--format", "json"]),
            Ok(MaintenanceCommand::List(_))
        ));
        assert!(
            matches!(parse(&["end", "adhoc-1"]), Ok(MaintenanceCommand::End(f)) if f.id == "adhoc-1")
        );
        assert!(parse(&["end"]).is_err());
        assert!(parse(&["stop", "x"]).is_err());
    }

    #[test]
    fn requests_are_checked_before_they_are_sent() {
        let request = |tags: &[&str], minutes| AdHocRequest {
            name: None,
            tags: tags.iter().map(|s| (*s).to_owned()).collect(),
            monitors: Vec::new(),
            minutes,
        };
        assert!(check(&request(&["db"], 30)).is_ok());
        let failure = check(&request(&["db", ""], 30))
            .err()
            .map(|f| format!("{:#}", f.error));
        assert_eq!(
            failure.as_deref(),
            Some("the window is invalid:\n  --tag (tags[1]): must not be empty or blank")
        );
    }

    fn listed(ad_hoc: bool, active: bool, name: Option<&str>) -> ListedWindow {
        let at = |s: &str| OffsetDateTime::parse(s, &Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        ListedWindow {
            window: MaintenanceWindow {
                id: if ad_hoc {
                    "adhoc-7".into()
                } else {
                    "db-weekly".into()
                },
                name: name.map(str::to_owned),
                tags: vec!["db".into()],
                monitors: if ad_hoc {
                    vec!["pg\u{1b}[31m".into()]
                } else {
                    Vec::new()
                },
                schedule: WindowSchedule::Weekly {
                    days: vec![Weekday::Sunday],
                    start: "03:00".into(),
                    end: "04:00".into(),
                },
            },
            ad_hoc,
            active,
            start: at("2026-12-13T03:00:00Z"),
            end: at("2026-12-13T04:00:00Z"),
        }
    }

    #[test]
    fn windows_are_one_line_each() {
        let check = |w: ListedWindow, expected: &str| assert_eq!(line(&w), expected);
        check(
            listed(false, false, Some("Weekly vacuum")),
            "db-weekly (Weekly vacuum)  deployed  next 2026-12-13T03:00:00Z → 2026-12-13T04:00:00Z  covers tags db",
        );
        check(
            listed(true, true, None),
            "adhoc-7  ad hoc  open now 2026-12-13T03:00:00Z → 2026-12-13T04:00:00Z  covers tags db; monitors pg\\u{1b}[31m",
        );
        assert_eq!(
            render(
                "shop",
                &WindowList {
                    windows: Vec::new()
                }
            ),
            "project `shop` has no maintenance window open now or later\n"
        );
        let text = render(
            "shop",
            &WindowList {
                windows: vec![listed(true, true, None), listed(false, false, None)],
            },
        );
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.starts_with("maintenance windows of project `shop`, open ones first:\n  adhoc-7  ad hoc  open now"), "{text}");
    }

    #[test]
    fn start_posts_the_request_and_reads_the_window() {
        let answer = r#"{"window":{"id":"adhoc-1","tags":["db"],"schedule":{"once":{"start":"2026-12-06T09:00:00Z","end":"2026-12-06T09:30:00Z"}}},"ad_hoc":true,"active":true,"start":"2026-12-06T09:00:00Z","end":"2026-12-06T09:30:00Z"}"#;
        let (url, server) = one_shot("201 Created", answer);
        let api = api_at(&url, "tok-abcdef123456");
        let request = AdHocRequest {
            name: None,
            tags: vec!["db".into()],
            monitors: Vec::new(),
            minutes: 30,
        };
        let opened = api
            .start_maintenance(&request)
            .unwrap_or_else(|f| panic!("{:#}", f.error));
        assert_eq!(
            line(&opened),
            "adhoc-1  ad hoc  open now 2026-12-06T09:00:00Z → 2026-12-06T09:30:00Z  covers tags db"
        );
        let (head, body) = split_request(&server.join().unwrap_or_default());
        assert!(
            head.starts_with("post /v1/projects/shop/maintenance http/1.1"),
            "{head}"
        );
        assert_eq!(body, br#"{"tags":["db"],"minutes":30}"#);
    }

    #[test]
    fn end_reads_an_empty_answer_and_explains_refusals() {
        let (url, server) = one_shot("204 No Content", "");
        let api = api_at(&url, "tok-abcdef123456");
        assert_eq!(api.end_maintenance("adhoc-1").ok(), Some(None));
        let (head, _) = split_request(&server.join().unwrap_or_default());
        assert!(
            head.starts_with("delete /v1/projects/shop/maintenance/adhoc-1 http/1.1"),
            "{head}"
        );
        for (status, expected) in [
            (
                "404 Not Found",
                "project `shop` has no such maintenance window (404: no window `x`); `cargo xtask maintenance list` shows the open ones",
            ),
            (
                "409 Conflict",
                "the window is deployed, not opened ad hoc (409: no window `x`); it ends when a deploy no longer declares it (remove its `maintenance!`)",
            ),
        ] {
            let (url, server) = one_shot(status, r#"{"error":"no window `x`","problems":[]}"#);
            let failure = api_at(&url, "tok-abcdef123456").end_maintenance("x").err();
            let _ = server.join();
            assert_eq!(
                failure.map(|f| (f.code, format!("{:#}", f.error))),
                Some((super::super::EXIT_REMOTE, expected.to_owned()))
            );
        }
    }
}
