//! Maintenance windows in deployed bundles: the bundle's rules apply to them (each
//! problem by path), and until the control plane applies them a bundle declaring any is
//! refused rather than deployed without them.

use super::*;

fn weekly(id: &str, tags: Value) -> Value {
    json!({"id": id, "tags": tags,
        "schedule": {"weekly": {"days": ["sunday"], "start": "02:00", "end": "03:00"}}})
}

/// The `(path, message)` of each problem of a 422 answer.
fn problems(body: &Value) -> Vec<(String, String)> {
    body["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|p| {
            (
                p["path"].as_str().unwrap().to_owned(),
                p["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn bundles_with_maintenance_windows_are_checked_then_refused() {
    let dir = TempDir::new("maintenance");
    let token = create_token(&dir.db(), "shop");
    let server = Server::start(&dir.db(), &[], &[]);
    let api = Api::new(&server, "shop", &token);
    api.ok_deploy(&bundle(vec![db()]), "");
    let before = api.snapshot();

    let mut invalid = bundle(vec![db()]);
    invalid["maintenance"] = json!([weekly("backup", json!([])), weekly("backup", json!(["db"]))]);
    let body = expect_error(api.deploy(&invalid, ""), StatusCode::UNPROCESSABLE_ENTITY);
    let got = problems(&body);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, "maintenance[0].tags");
    assert!(
        got[0].1.contains("at least one tag or monitor id"),
        "{got:?}"
    );
    assert_eq!(got[1].0, "maintenance[1].id");
    assert!(got[1].1.contains("duplicate id `backup`"), "{got:?}");

    let mut valid = bundle(vec![db()]);
    valid["maintenance"] = json!([weekly("backup", json!(["db"]))]);
    let body = expect_error(api.deploy(&valid, ""), StatusCode::UNPROCESSABLE_ENTITY);
    let got = problems(&body);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "maintenance");
    assert!(
        got[0].1.contains("does not apply maintenance windows yet"),
        "{got:?}"
    );
    assert_eq!(api.snapshot(), before);
}
