//! Server replies that crashed a parser, found with the fuzz targets of `fuzz/` (or while
//! writing them): each is checked through the engine against a scripted server and must
//! end in a verdict, never a panic. The same inputs are in the targets' seed corpora
//! (`fuzz/corpus/TARGET/regression-*`).

use monitor_core::model::recipe::Recipe;
use monitor_core::{CheckResult, Engine, ErrorKind, Status, TcpMonitor};
use monitor_testing::{NoWaitClock, Script, ScriptedServer};

/// Serves `script` to a monitor speaking `recipe`; the result's status and error kind.
async fn check(script: Script, recipe: Recipe) -> CheckResult {
    let server = ScriptedServer::start(script).await.unwrap();
    let spec = TcpMonitor::new("fuzzed", "127.0.0.1", server.port())
        .recipe(recipe)
        .timeouts(2_000, 1_000, 5_000);
    Engine::new()
        .with_clock(NoWaitClock)
        .check(&spec.validate().unwrap())
        .await
}

/// redis.rs read the INFO body as `len + 2` bytes: `$18446744073709551615` overflowed
/// (a panic with overflow checks, a 1-byte read without). It now asks for more than any
/// cap allows, so the server closing first is a closed-early failure.
#[tokio::test]
async fn redis_info_length_of_usize_max_does_not_overflow() {
    let script = Script::new()
        .expect("PING\r\n")
        .send("+PONG\r\n")
        .expect("INFO")
        .send("$18446744073709551615\r\n")
        .close();
    let r = check(script, Recipe::redis()).await;
    assert_eq!(
        (r.status, r.error.as_ref().map(|e| e.kind)),
        (Status::Failed, Some(ErrorKind::ClosedEarly)),
        "{}",
        r.to_json()
    );
    assert!(
        r.error
            .unwrap()
            .message
            .contains("the body of the INFO reply"),
        "the error names what was awaited"
    );
}
