//! The JSON Schemas committed under `monitor-spec/schema/`, made from the types: a monitor,
//! a result, a bundle, the deploy request and response, and the API's error answer. A test
//! (`UPDATE_SCHEMA=1 cargo test -p monitor-spec` rewrites them) keeps the files in sync.

/// The JSON Schema of a spec, as committed in `schema/tcp-monitor.schema.json`.
pub fn spec_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(crate::spec::TcpMonitor)).unwrap_or_default()
}

/// The JSON Schema of a result, as committed in `schema/check-result.schema.json`.
pub fn result_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(crate::result::CheckResult)).unwrap_or_default()
}

/// The JSON Schema of a bundle (`cargo xtask export`), as committed in
/// `schema/bundle.schema.json`.
pub fn bundle_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(crate::bundle::Bundle)).unwrap_or_default()
}

/// The JSON Schema of a deploy request (`POST /v1/projects/{project}/deploy`), as
/// committed in `schema/deploy-request.schema.json`.
pub fn deploy_request_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(crate::api::DeployRequest)).unwrap_or_default()
}

/// The JSON Schema of a deploy's or rollback's answer, as committed in
/// `schema/deploy-response.schema.json`.
pub fn deploy_response_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(crate::api::DeployResponse)).unwrap_or_default()
}

/// The JSON Schema of the API's error answer (`{"error", "problems"}`, with a 422's list of
/// problems by path), as committed in `schema/error.schema.json`.
pub fn error_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(crate::api::ErrorBody)).unwrap_or_default()
}
