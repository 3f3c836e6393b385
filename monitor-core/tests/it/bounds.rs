//! Results stay within the bounds a control plane accepts (issue 14, finding 6): a
//! server whose replies would make a long message or excerpt gets a result cut to
//! `monitor_spec::limits`.

use monitor_core::engine::protocol::redis::resp_command;
use monitor_core::model::limits::{MAX_EXCERPT_BYTES, MAX_MESSAGE_BYTES, check_result};
use monitor_core::prelude::*;
use monitor_testing::{Script, ScriptedServer};

/// Checks `spec` against a server playing `script` and asserts the result is within the
/// bounds, its message cut (ending in `…`) when `cut`.
async fn check(spec: TcpMonitor, script: Script, cut: bool) -> CheckResult {
    let server = ScriptedServer::start(script).await.unwrap();
    let monitor = spec.pointed_at(server.addr()).validate().unwrap();
    let r = Engine::new().check(&monitor).await;
    assert_eq!(check_result(&r), Ok(()), "{}", r.to_json());
    let e = r.error.as_ref().expect("an error");
    assert!(e.message.len() <= MAX_MESSAGE_BYTES);
    assert_eq!(e.message.ends_with('…'), cut, "{}", e.message);
    assert!(r.response_excerpt.len() <= MAX_EXCERPT_BYTES);
    r
}

#[tokio::test]
async fn long_server_replies_are_cut_to_the_result_bounds() {
    let long = "x".repeat(20_000);
    // Redis answers PING with a 20 kB error, which the message quotes.
    let r = check(
        TcpMonitor::new("redis", "127.0.0.1", 1).recipe(Recipe::redis()),
        Script::new()
            .expect(resp_command(&[b"PING"]))
            .send(format!("-ERR {long}\r\n")),
        true,
    )
    .await;
    assert!(r.error.unwrap().message.contains("xxxx"));
    // A short error is left alone.
    check(
        TcpMonitor::new("redis", "127.0.0.1", 1).recipe(Recipe::redis()),
        Script::new()
            .expect(resp_command(&[b"PING"]))
            .send("-ERR short\r\n"),
        false,
    )
    .await;
}
