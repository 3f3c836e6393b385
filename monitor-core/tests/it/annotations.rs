//! The GitHub reporter's workflow commands: `::error` for failed results and `::warning`
//! for degraded ones, at the file and line each monitor was declared on, with the title
//! and message encoded as the Actions toolkit does.

use monitor_core::report::{MAX_ANNOTATION_BYTES, github_annotations};
use monitor_core::{CheckResult, ErrorKind, ProbeError, Status};

use super::report::awkward;

/// The annotations of `results`, each declared at `monitors/src/<id>.rs:<n>` (`n` its
/// position from 10), except `undeclared`.
fn check(results: &[CheckResult], expected: &[&str]) {
    let declared = |id: &str| {
        let n = results.iter().position(|r| &*r.id == id)?;
        (id != "undeclared").then(|| (format!("monitors/src/{id}.rs"), 10 + n as u32))
    };
    let text = github_annotations(results, &declared);
    assert_eq!(text.lines().collect::<Vec<_>>(), expected, "{text}");
}

fn result(id: &str, status: Status, error: Option<(ErrorKind, &str, &[&str])>) -> CheckResult {
    let mut r = awkward();
    r.id = id.into();
    r.name = format!("{id} answers").into();
    r.target = "db.internal:5432".into();
    r.status = status;
    r.timings.total_ms = 12.5;
    r.error = error.map(|(kind, message, hints)| ProbeError {
        kind,
        message: message.into(),
        hints: hints.iter().map(|h| (*h).to_owned()).collect(),
    });
    r
}

#[test]
fn annotations_point_at_the_declaring_line() {
    check(
        &[
            result("ok", Status::Passed, None),
            result(
                "db",
                Status::Failed,
                Some((
                    ErrorKind::Refused,
                    "connection refused",
                    &["is it up?", "100% sure"],
                )),
            ),
            result("slow", Status::Degraded, None),
            result(
                "undeclared",
                Status::Failed,
                Some((ErrorKind::ConnectTimeout, "a,b: c\r\nd", &[])),
            ),
        ],
        &[
            "::error file=monitors/src/db.rs,line=11,title=monitor db failed%3A refused::db answers (db.internal:5432): connection refused%0Ahint: is it up?%0Ahint: 100%25 sure",
            "::warning file=monitors/src/slow.rs,line=12,title=monitor slow degraded::slow answers (db.internal:5432): degraded in 12.5 ms",
            "::error title=monitor undeclared failed%3A connect_timeout::undeclared answers (db.internal:5432): a,b: c%0D%0Ad",
        ],
    );
    // Nothing for a run that passed.
    check(&[result("ok", Status::Passed, None)], &[]);
}

#[test]
fn annotations_stay_on_one_line_and_within_their_bound() {
    // Every awkward character (controls, escapes, line breaks) of a hand-built result.
    let weird = awkward();
    let text = github_annotations(std::slice::from_ref(&weird), &|_| {
        Some(("a,b:c.rs".to_owned(), 3))
    });
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with("::error file=a%2Cb%3Ac.rs,line=3,title="),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "{text}");
    let long = result(
        "long",
        Status::Failed,
        Some((ErrorKind::Refused, &"é".repeat(5000), &[])),
    );
    let text = github_annotations(&[long], &|_| None);
    let message = text
        .trim_end()
        .split_once("::")
        .unwrap()
        .1
        .split_once("::")
        .unwrap()
        .1;
    assert!(
        message.len() <= MAX_ANNOTATION_BYTES + '…'.len_utf8(),
        "{}",
        message.len()
    );
    assert!(message.ends_with('…'));
}
