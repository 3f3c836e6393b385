//! SSH (RFC 4253): the identification line parsed, and the recipe that reads it.

use tokio::io::{AsyncRead, AsyncWrite};

use super::super::conn::Conn;
use super::super::dialog::DialogError;
use super::super::speak::{Context, Learned, MAX_LINES, Outcome, mismatch, unavailable};

/// SSH: the parts of an identification line `SSH-protoversion-softwareversion SP comments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshIdent<'a> {
    /// `2.0`, or `1.99` for a server that also speaks protocol 1.
    pub protocol: &'a str,
    /// Such as `OpenSSH_9.2p1`.
    pub software: &'a str,
    /// Such as `Debian-2+deb12u3`.
    pub comments: Option<&'a str>,
}

/// Parses an SSH identification line (without CRLF); `None` when it is not one.
pub fn ssh_ident(line: &str) -> Option<SshIdent<'_>> {
    let rest = line.strip_prefix("SSH-")?;
    let (protocol, rest) = rest.split_once('-')?;
    let (software, comments) = match rest.split_once(' ') {
        Some((s, c)) => (s, Some(c)),
        None => (rest, None),
    };
    (!protocol.is_empty() && !software.is_empty()).then_some(SshIdent {
        protocol,
        software,
        comments,
    })
}

/// The SSH recipe: the identification line, after any lines a server may send first.
pub(crate) async fn recipe<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    learned: &mut Learned,
) -> Outcome {
    // RFC 4253 4.2: a server may send other lines before its identification.
    let mut before = Vec::new();
    for _ in 0..MAX_LINES {
        let line = match s.line("the SSH identification line").await {
            Ok(line) => line,
            Err(DialogError::Closed { .. }) if !before.is_empty() => {
                let text: String = before.join(" ");
                return Err(unavailable(
                    cx,
                    "SSH",
                    &text,
                    vec!["the server turned the connection away before identifying itself: check MaxStartups and its access rules".to_owned()],
                ));
            }
            Err(e) => return Err(e),
        };
        if let Some(ident) = ssh_ident(&line) {
            learned.insert("protocol_version".into(), ident.protocol.to_owned());
            learned.insert("software".into(), ident.software.to_owned());
            if let Some(c) = ident.comments {
                learned.insert("comments".into(), c.to_owned());
            }
            if !matches!(ident.protocol, "2.0" | "1.99") {
                return Err(unavailable(
                    cx,
                    "SSH",
                    &format!(
                        "the server speaks only SSH protocol {}, which is insecure and unsupported",
                        ident.protocol
                    ),
                    vec!["upgrade the SSH server".to_owned()],
                ));
            }
            return Ok(());
        }
        if line.starts_with("SSH-") || before.len() > 8 {
            return Err(mismatch(cx, "an SSH identification line", &line));
        }
        before.push(line);
    }
    Err(mismatch(
        cx,
        "an SSH identification line",
        &before.join(" "),
    ))
}
