//! What every login test shares: a check with the password handed out by variable name
//! and the engine's logs captured at TRACE level, the assertion that no secret leaks
//! into the result, the spec (`explain`) or the logs, and reading facts and failures.

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use monitor_core::{CheckResult, Engine, ErrorKind, TcpMonitor};

/// A writer into a shared buffer, for the engine's logs.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Checks `spec` with `password` in the variable `var`, logging everything at trace
/// level, and asserts that none of `secrets` (nor `password`), as it is or in base64,
/// appears in the result, the spec or the logs.
pub(crate) async fn check_secret(
    spec: TcpMonitor,
    var: &'static str,
    password: &'static str,
    secrets: &[&str],
) -> CheckResult {
    let valid = spec.validate().expect("valid monitor");
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let engine = Engine::new().with_secrets(move |name| (name == var).then(|| password.to_owned()));
    let r = engine.check(&valid).await;
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    let (json, spec) = (r.to_json(), spec.to_json());
    for secret in secrets.iter().chain([&password]) {
        for form in [secret.to_string(), STANDARD.encode(secret)] {
            assert!(!json.contains(&form), "password in the result: {json}");
            assert!(!spec.contains(&form), "password in explain");
            assert!(!logged.contains(&form), "password in the logs: {logged}");
        }
    }
    r
}

/// The fact `name` of `r`, which must be there.
pub(crate) fn fact<'a>(r: &'a CheckResult, name: &str) -> &'a str {
    r.facts
        .get(name)
        .unwrap_or_else(|| panic!("no fact `{name}` in {}", r.to_json()))
}

/// The kind and message of `r`'s error, asserting its last hint (the command that
/// reproduces the login by hand) holds each of `command`.
pub(crate) fn failure(r: &CheckResult, command: &[&str]) -> (ErrorKind, String) {
    let e = r
        .error
        .as_ref()
        .unwrap_or_else(|| panic!("no error in {}", r.to_json()));
    let last = e.hints.last().expect("hints");
    for part in command {
        assert!(last.contains(part), "`{part}` not in the last hint: {last}");
    }
    (e.kind, e.message.clone())
}
