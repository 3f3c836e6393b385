//! The dialog: the `send`/`expect`/`expect_regex` shorthand and every step of `dialog`,
//! with text kept as written.
#![deny(warnings)]
#![forbid(unsafe_code)]

use monitor_core::prelude::*;
use monitor_core::registry::validate_all;

#[tcp_monitor(
    host = "cache.internal",
    port = 6379,
    send = "PING\r\n",
    expect = "+PONG",
    expect_regex = "^\\+PONG\\r\\n$"
)]
fn shorthand(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "cache.internal", port = 6379, send = r"PING\r\n")]
fn escapes_as_text(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(
    host = "cache.internal",
    port = 6379,
    dialog = [
        send("AUTH secret\r\n"),
        expect("+OK"),
        send_hex("2a 31 0d 0a"),
        expect_regex("^\\+"),
        expect_exact(r"PONG\r\n"),
        expect_hex("0d0a"),
        read_until("\r\n"),
        read_bytes(16),
        read_any(),
        read_close(),
    ],
)]
fn full_dialog(m: TcpMonitor) -> TcpMonitor {
    m
}

fn text(s: &str) -> Payload {
    Payload::Text(s.to_owned())
}

fn main() {
    let valid = validate_all().expect("all valid");
    let steps = |id: &str| {
        valid
            .iter()
            .find(|(d, _)| d.monitor.id == id)
            .unwrap_or_else(|| panic!("{id}"))
            .0
            .monitor
            .steps
            .clone()
    };
    assert_eq!(
        steps("shorthand"),
        [
            Step::Send(text("PING\r\n")),
            Step::Expect(Expect::Contains("+PONG".into())),
            Step::Expect(Expect::Regex(r"^\+PONG\r\n$".into())),
        ]
    );
    assert_eq!(steps("escapes_as_text"), [Step::Send(text("PING\\r\\n"))]);
    assert_eq!(
        steps("full_dialog"),
        [
            Step::Send(text("AUTH secret\r\n")),
            Step::Expect(Expect::Contains("+OK".into())),
            Step::Send(Payload::Hex("2a 31 0d 0a".into())),
            Step::Expect(Expect::Regex(r"^\+".into())),
            Step::Expect(Expect::Exact(text("PONG\\r\\n"))),
            Step::Expect(Expect::Exact(Payload::Hex("0d0a".into()))),
            Step::Read(ReadUntil::Delimiter("\r\n".into())),
            Step::Read(ReadUntil::Bytes(16)),
            Step::Read(ReadUntil::Any),
            Step::Read(ReadUntil::Close),
        ]
    );
}
