//! Real mail servers on loopback ports: Dovecot for IMAP and POP3, Exim for SMTP, plus
//! the raw-dialog and `openssl s_client` helpers the launcher tests share.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Live, TlsFiles, free_port, require, scratch_dir};

/// The mailbox user Dovecot accepts (passwd-file, plaintext login allowed).
pub const USER: &str = "monitor";
/// The password of [`USER`].
pub const PASSWORD: &str = "secret";

/// A running Dovecot serving IMAP and POP3 from one master process.
pub struct Dovecot {
    /// The master process; its `port` is the IMAP port.
    pub live: Live,
    /// The IMAP port (plain, STARTTLS when configured).
    pub imap_port: u16,
    /// The POP3 port (plain, STLS when configured).
    pub pop3_port: u16,
}

/// Starts Dovecot in the foreground (`dovecot -F -c`) with IMAP and POP3 on free ports
/// of 127.0.0.1 and everything (config, sockets, state, mail) in a scratch directory.
///
/// With `tls` and `starttls` both set, IMAP offers STARTTLS and POP3 offers STLS using
/// that certificate; otherwise `ssl = no` and neither is offered. Returns once both
/// ports accept connections and the auth process answers, so the IMAP greeting is the
/// final `* OK [CAPABILITY ...] ... ready.` one.
pub fn dovecot(tls: Option<&TlsFiles>, starttls: bool) -> Dovecot {
    let program = require("dovecot", "dovecot-core");
    require("/usr/lib/dovecot/imap", "dovecot-imapd");
    require("/usr/lib/dovecot/pop3", "dovecot-pop3d");
    let dir = scratch_dir("dovecot");
    let imap_port = free_port();
    let pop3_port = other_port(imap_port);
    let home = dir.join("home");
    fs::create_dir_all(&home).expect("create dovecot home");
    chown_to(&home, "dovecot");
    fs::write(dir.join("passwd"), format!("{USER}:{{PLAIN}}{PASSWORD}\n"))
        .expect("write dovecot passwd");
    let ssl = match tls {
        Some(files) if starttls => format!(
            "ssl = yes\nssl_cert = <{}\nssl_key = <{}\n",
            files.cert.display(),
            files.key.display()
        ),
        _ => "ssl = no\n".to_owned(),
    };
    let d = dir.display();
    let config = format!(
        "base_dir = {d}/run
state_dir = {d}/state
log_path = /dev/stderr
protocols = imap pop3
listen = 127.0.0.1
{ssl}default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 1
first_valid_gid = 1
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = {d}/passwd
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={d}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"
    );
    let conf = dir.join("dovecot.conf");
    fs::write(&conf, config).expect("write dovecot.conf");
    let mut command = Command::new(program);
    command.arg("-F").arg("-c").arg(&conf);
    let mut live = Live::spawn("dovecot", command, imap_port, dir);
    wait_also(&mut live, pop3_port);
    // Until the auth process is up, imap-login greets with "Waiting for authentication
    // process to respond.." and leaves out the mechanisms; wait for the real greeting.
    let start = Instant::now();
    loop {
        let greeting = TcpStream::connect(("127.0.0.1", imap_port))
            .ok()
            .and_then(|s| {
                s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
                let mut line = String::new();
                BufReader::new(s).read_line(&mut line).ok()?;
                Some(line)
            });
        if greeting.is_some_and(|g| g.starts_with("* OK [CAPABILITY")) {
            break;
        }
        if start.elapsed() > Duration::from_secs(30) {
            panic!(
                "dovecot never gave its ready IMAP greeting:\n{}",
                full_log(&live)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Dovecot {
        live,
        imap_port,
        pop3_port,
    }
}

/// Starts the Exim daemon in the foreground (`exim4 -C conf -bdf`) on a free port of
/// 127.0.0.1 with its spool and logs in a scratch directory: a `220` banner, `EHLO`
/// listing STARTTLS exactly when `tls` is given, `221` on QUIT. It accepts no mail.
///
/// Exim keeps root for a `-C` configuration only when root starts it, but its
/// per-connection processes run as `Debian-exim`, so the spool and log directories
/// belong to that user and the TLS files must be readable by it. Exim's own logs are
/// in `dir/logs` (see [`full_log`]); `server.log` only has its standard error.
pub fn smtp(tls: Option<&TlsFiles>) -> Live {
    let program = require("exim4", "exim4-daemon-light");
    let dir = scratch_dir("exim");
    let port = free_port();
    for sub in ["spool", "logs"] {
        fs::create_dir_all(dir.join(sub)).expect("create exim dir");
        chown_to(&dir.join(sub), "Debian-exim");
    }
    let tls = match tls {
        Some(files) => format!(
            "tls_advertise_hosts = *\ntls_certificate = {}\ntls_privatekey = {}\n",
            files.cert.display(),
            files.key.display()
        ),
        None => "tls_advertise_hosts =\n".to_owned(),
    };
    let d = dir.display();
    let config = format!(
        "keep_environment =
primary_hostname = localhost
spool_directory = {d}/spool
log_file_path = {d}/logs/%slog
local_interfaces = <; 127.0.0.1
daemon_smtp_ports = {port}
{tls}
begin acl

begin routers

begin transports
"
    );
    let conf = dir.join("exim.conf");
    fs::write(&conf, config).expect("write exim.conf");
    let mut command = Command::new(program);
    command
        .arg("-C")
        .arg(&conf)
        .arg("-bdf")
        .arg("-oP")
        .arg(dir.join("exim.pid"));
    Live::spawn("exim", command, port, dir)
}

/// The server's `server.log` followed by every file in its `dir/logs` (where Exim and
/// vsftpd write their own logs), for failure messages.
pub fn full_log(live: &Live) -> String {
    let mut out = live.log();
    let mut extra: Vec<PathBuf> = fs::read_dir(live.dir.join("logs"))
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    extra.sort();
    for path in extra {
        let text = fs::read_to_string(&path).unwrap_or_default();
        out.push_str(&format!("--- {} ---\n{text}", path.display()));
    }
    out
}

/// Waits until `port`, a second port of `live`'s process, accepts connections too;
/// panics with the log if the process exits first or 30 s pass.
pub fn wait_also(live: &mut Live, port: u16) {
    let main = live.port;
    live.port = port;
    live.wait_listening(Duration::from_secs(30));
    live.port = main;
}

/// A free port other than `taken`.
fn other_port(taken: u16) -> u16 {
    loop {
        let port = free_port();
        if port != taken {
            return port;
        }
    }
}

/// Gives `path` to the system account `user` (and its primary group).
pub fn chown_to(path: &Path, user: &str) {
    let passwd = fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    let ids = passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() > 3 && fields[0] == user)
            .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
            .flatten()
    });
    let (uid, gid) = ids.unwrap_or_else(|| panic!("no system user {user} in /etc/passwd"));
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {} to {user}: {e}", path.display()));
}

/// A line-by-line client for raw protocol dialogs in tests; every failure panics with
/// the server's logs.
pub struct Dialog<'a> {
    live: &'a Live,
    port: u16,
    reader: BufReader<TcpStream>,
}

impl<'a> Dialog<'a> {
    /// Connects to `port` of `live` with 5 s read and write timeouts.
    pub fn open(live: &'a Live, port: u16) -> Dialog<'a> {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| {
            panic!(
                "connect to {} on {port}: {e}\n{}",
                live.name,
                full_log(live)
            )
        });
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("set read timeout");
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .expect("set write timeout");
        Dialog {
            live,
            port,
            reader: BufReader::new(stream),
        }
    }

    /// Sends `line` followed by CRLF.
    pub fn send(&mut self, line: &str) {
        let result = self
            .reader
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes());
        if let Err(e) = result {
            self.fail(&format!("send {line:?}: {e}"));
        }
    }

    /// The next line, without its line ending.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => self.fail("connection closed"),
            Ok(_) => line.trim_end_matches(['\r', '\n']).to_owned(),
            Err(e) => self.fail(&format!("read: {e}")),
        }
    }

    /// Lines up to and including the first for which `last` holds.
    pub fn until(&mut self, last: impl Fn(&str) -> bool) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line();
            let done = last(&line);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// Panics with `what`, naming the server and including its logs.
    pub fn fail(&self, what: &str) -> ! {
        panic!(
            "{} on port {}: {what}\n{}",
            self.live.name,
            self.port,
            full_log(self.live)
        )
    }
}

/// Runs `openssl s_client -starttls proto` against `port` of `live`, trusting only
/// `ca` and checking the certificate is for 127.0.0.1; panics with openssl's output
/// and the server's logs unless the handshake and verification succeed.
pub fn assert_starttls_verifies(live: &Live, port: u16, proto: &str, ca: &Path) {
    let output = Command::new("timeout")
        .arg("15")
        .arg(require("openssl", "openssl"))
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-starttls", proto, "-CAfile"])
        .arg(ca)
        .args(["-verify_return_error", "-verify_ip", "127.0.0.1", "-brief"])
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() || !text.contains("Verification: OK") {
        panic!(
            "{} on port {port}: openssl s_client -starttls {proto} failed ({}):\n{text}\n{}",
            live.name,
            output.status,
            full_log(live)
        );
    }
}

/// Stops `live` and panics unless SIGTERM to its process ended it, and every process it
/// had started, well within the 10 s grace, leaving its port closed.
pub fn assert_stops(mut live: Live) {
    let pid = live.pid().expect("server still running");
    let workers = children(pid);
    let start = Instant::now();
    live.stop();
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "{} took {took:?} to stop on SIGTERM:\n{}",
        live.name,
        full_log(&live)
    );
    let left = || {
        workers
            .iter()
            .copied()
            .filter(|&w| alive(w))
            .collect::<Vec<_>>()
    };
    while !left().is_empty() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        left().is_empty(),
        "{} (pid {pid}) left processes {:?} running after SIGTERM:\n{}",
        live.name,
        left(),
        full_log(&live)
    );
    assert!(
        TcpStream::connect(live.addr()).is_err(),
        "{} still accepts connections on {} after stopping",
        live.name,
        live.port
    );
}

/// The `/proc/<pid>/stat` fields after the command name: state, parent pid, ...
fn proc_stat(pid: u32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| proc_stat(p).is_some_and(|f| f.get(1) == Some(&pid.to_string())))
        .collect()
}

/// Whether `pid` is still a running (not zombie) process.
fn alive(pid: u32) -> bool {
    proc_stat(pid).is_some_and(|f| f.first().is_some_and(|s| s != "Z" && s != "X"))
}

mod tests {
    use super::*;
    use crate::live::TestCerts;

    fn imap_capabilities(dialog: &mut Dialog<'_>) -> String {
        dialog.send("a CAPABILITY");
        let lines = dialog.until(|l| l.starts_with("a "));
        if !lines.last().is_some_and(|l| l.starts_with("a OK")) {
            dialog.fail(&format!("CAPABILITY: {lines:?}"));
        }
        lines.join("\n")
    }

    fn check_dovecot(tls: Option<&TestCerts>, starttls: bool) {
        let server = dovecot(tls.map(|t| &t.tls), starttls);
        let offers = tls.is_some() && starttls;
        {
            let mut imap = Dialog::open(&server.live, server.imap_port);
            let greeting = imap.line();
            if !greeting.starts_with("* OK") {
                imap.fail(&format!("IMAP greeting {greeting:?}"));
            }
            let caps = imap_capabilities(&mut imap);
            if caps.contains("STARTTLS") != offers {
                imap.fail(&format!("STARTTLS offered should be {offers}: {caps}"));
            }
            imap.send(&format!("b LOGIN {USER} {PASSWORD}"));
            let login = imap.until(|l| l.starts_with("b "));
            if !login.last().is_some_and(|l| l.starts_with("b OK")) {
                imap.fail(&format!("LOGIN: {login:?}"));
            }
            imap.send("c SELECT INBOX");
            let select = imap.until(|l| l.starts_with("c "));
            if !select.last().is_some_and(|l| l.starts_with("c OK")) {
                imap.fail(&format!("SELECT: {select:?}"));
            }
            imap.send("d LOGOUT");
            imap.until(|l| l.starts_with("d "));

            let mut pop3 = Dialog::open(&server.live, server.pop3_port);
            let greeting = pop3.line();
            if !greeting.starts_with("+OK") {
                pop3.fail(&format!("POP3 greeting {greeting:?}"));
            }
            pop3.send("CAPA");
            let caps = pop3.until(|l| l == "." || l.starts_with("-ERR"));
            if caps.iter().any(|l| l == "STLS") != offers {
                pop3.fail(&format!("STLS offered should be {offers}: {caps:?}"));
            }
            pop3.send(&format!("USER {USER}"));
            pop3.line();
            pop3.send(&format!("PASS {PASSWORD}"));
            let pass = pop3.line();
            if !pass.starts_with("+OK") {
                pop3.fail(&format!("PASS: {pass:?}"));
            }
            pop3.send("QUIT");
            pop3.line();
        }
        if let Some(tls) = tls.filter(|_| starttls) {
            assert_starttls_verifies(&server.live, server.imap_port, "imap", &tls.ca);
            assert_starttls_verifies(&server.live, server.pop3_port, "pop3", &tls.ca);
        }
        assert_stops(server.live);
    }

    #[test]
    fn dovecot_plain_serves_imap_and_pop3_without_starttls() {
        check_dovecot(None, false);
    }

    #[test]
    fn dovecot_with_tls_offers_starttls_and_stls() {
        check_dovecot(Some(&TestCerts::new("dovecot")), true);
    }

    #[test]
    fn dovecot_with_tls_but_no_starttls_offers_neither() {
        check_dovecot(Some(&TestCerts::new("dovecot-nostarttls")), false);
    }

    fn check_smtp(tls: Option<&TestCerts>) {
        let server = smtp(tls.map(|t| &t.tls));
        {
            let mut smtp = Dialog::open(&server, server.port);
            let banner = smtp.line();
            if !banner.starts_with("220 ") {
                smtp.fail(&format!("banner {banner:?}"));
            }
            smtp.send("EHLO monitor.test");
            let ehlo = smtp.until(|l| !l.starts_with("250-"));
            if !ehlo.last().is_some_and(|l| l.starts_with("250 ")) {
                smtp.fail(&format!("EHLO: {ehlo:?}"));
            }
            if ehlo.iter().any(|l| l[4..].starts_with("STARTTLS")) != tls.is_some() {
                smtp.fail(&format!(
                    "STARTTLS offered should be {}: {ehlo:?}",
                    tls.is_some()
                ));
            }
            smtp.send("QUIT");
            let bye = smtp.line();
            if !bye.starts_with("221") {
                smtp.fail(&format!("QUIT: {bye:?}"));
            }
        }
        if let Some(tls) = tls {
            assert_starttls_verifies(&server, server.port, "smtp", &tls.ca);
        }
        assert_stops(server);
    }

    #[test]
    fn smtp_plain_has_no_starttls() {
        check_smtp(None);
    }

    #[test]
    fn smtp_with_tls_offers_starttls() {
        check_smtp(Some(&TestCerts::new("exim")));
    }
}
