//! Real servers that logins are tried against: Dovecot (IMAP with STARTTLS and imaps, POP3
//! with STLS) with a passwd-file user and a maildir of a few messages, Exim with PLAIN and
//! LOGIN authenticators offered only over TLS, vsftpd with a local system user over
//! `AUTH TLS`. Each in a scratch directory on free loopback ports.

use std::fs;
use std::process::Command;
use std::sync::Mutex;

use super::mail::{chown_to, wait_also};
use super::{Live, TlsFiles, free_port, require, scratch_dir};

/// The user every server here accepts.
pub const USER: &str = "monlogin";
/// The password of [`USER`] (on Dovecot, Exim and vsftpd alike).
pub const PASSWORD: &str = "mail-secret-4b7e";
/// How many messages the user's INBOX holds on Dovecot.
pub const MESSAGES: usize = 3;

/// A running Dovecot serving IMAP, imaps and POP3 from one master process.
pub struct MailServer {
    /// The master process; its `port` is the IMAP port.
    pub live: Live,
    /// IMAP with STARTTLS.
    pub imap_port: u16,
    /// IMAP over TLS from the first byte.
    pub imaps_port: u16,
    /// POP3 with STLS.
    pub pop3_port: u16,
    /// The size of the INBOX's messages, in bytes (POP3 STAT's second number).
    pub maildrop_bytes: usize,
}

/// A free port not in `taken`.
fn port_besides(taken: &[u16]) -> u16 {
    loop {
        let port = free_port();
        if !taken.contains(&port) {
            return port;
        }
    }
}

/// The message files of the user's maildir: `MESSAGES` short mails, their total size.
fn write_maildir(home: &std::path::Path) -> usize {
    let maildir = home.join(USER).join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(maildir.join(sub)).expect("create maildir");
    }
    let mut total = 0;
    for n in 0..MESSAGES {
        let mail = format!(
            "From: sender@example.test\r\nTo: {USER}@example.test\r\nSubject: test {n}\r\n\r\nbody {n}\r\n"
        );
        total += mail.len();
        fs::write(
            maildir
                .join("new")
                .join(format!("170000000{n}.M{n}P1.test")),
            mail,
        )
        .expect("write mail");
    }
    let status = Command::new("chown")
        .args(["-R", "dovecot:dovecot"])
        .arg(home)
        .status()
        .expect("run chown");
    assert!(status.success(), "chown the maildir");
    total
}

/// Starts Dovecot (`dovecot -F -c`) with [`USER`] in a passwd-file, [`MESSAGES`] mails in
/// its INBOX, STARTTLS/STLS and imaps with `tls`; `max_userip`, when given, is
/// `mail_max_userip_connections`. Returns once the auth process answers.
pub fn dovecot(tls: &TlsFiles, max_userip: Option<u32>) -> MailServer {
    let program = require("dovecot", "dovecot-core");
    require("/usr/lib/dovecot/imap", "dovecot-imapd");
    require("/usr/lib/dovecot/pop3", "dovecot-pop3d");
    let dir = scratch_dir("dovecot-login");
    let imap_port = free_port();
    let imaps_port = port_besides(&[imap_port]);
    let pop3_port = port_besides(&[imap_port, imaps_port]);
    let home = dir.join("home");
    fs::create_dir_all(&home).expect("create dovecot home");
    let maildrop_bytes = write_maildir(&home);
    chown_to(&home, "dovecot");
    fs::write(dir.join("passwd"), format!("{USER}:{{PLAIN}}{PASSWORD}\n"))
        .expect("write dovecot passwd");
    let limit = max_userip
        .map(|n| format!("mail_max_userip_connections = {n}\n"))
        .unwrap_or_default();
    let d = dir.display();
    let config = format!(
        "base_dir = {d}/run
state_dir = {d}/state
log_path = /dev/stderr
protocols = imap pop3
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 1
first_valid_gid = 1
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
{limit}passdb {{
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
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
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
",
        cert = tls.cert.display(),
        key = tls.key.display(),
    );
    let conf = dir.join("dovecot.conf");
    fs::write(&conf, config).expect("write dovecot.conf");
    let mut command = Command::new(program);
    command.arg("-F").arg("-c").arg(&conf);
    let mut live = Live::spawn("dovecot", command, imap_port, dir);
    wait_also(&mut live, imaps_port);
    wait_also(&mut live, pop3_port);
    wait_for_auth(&live, imap_port);
    MailServer {
        live,
        imap_port,
        imaps_port,
        pop3_port,
        maildrop_bytes,
    }
}

/// Waits until imap-login's greeting is the final one (the auth process answers).
fn wait_for_auth(live: &Live, port: u16) {
    use std::io::{BufRead, BufReader};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};
    let start = Instant::now();
    loop {
        let greeting = TcpStream::connect(("127.0.0.1", port)).ok().and_then(|s| {
            s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            let mut line = String::new();
            BufReader::new(s).read_line(&mut line).ok()?;
            Some(line)
        });
        if greeting.is_some_and(|g| g.starts_with("* OK [CAPABILITY")) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "dovecot never gave its ready IMAP greeting:\n{}",
            live.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts Exim (`exim4 -C conf -bdf`) offering STARTTLS with `tls`, and AUTH LOGIN (and
/// PLAIN with `plain`; plaintext authenticators checking [`USER`] and [`PASSWORD`]) only
/// once the session is encrypted. It accepts no mail.
pub fn exim(tls: &TlsFiles, plain: bool) -> Live {
    let program = require("exim4", "exim4-daemon-light");
    let dir = scratch_dir("exim-login");
    let port = free_port();
    for sub in ["spool", "logs"] {
        fs::create_dir_all(dir.join(sub)).expect("create exim dir");
        chown_to(&dir.join(sub), "Debian-exim");
    }
    let d = dir.display();
    let config = format!(
        "keep_environment =
primary_hostname = localhost
spool_directory = {d}/spool
log_file_path = {d}/logs/%slog
local_interfaces = <; 127.0.0.1
daemon_smtp_ports = {port}
tls_advertise_hosts = *
tls_certificate = {cert}
tls_privatekey = {key}

begin acl

begin routers

begin transports

begin authenticators

plain_server:
  driver = plaintext
  public_name = {plain_name}
  server_prompts = :
  server_condition = ${{if and {{{{eq{{$auth2}}{{{USER}}}}}{{eq{{$auth3}}{{{PASSWORD}}}}}}}}}
  server_set_id = $auth2
  server_advertise_condition = ${{if def:tls_in_cipher}}

login_server:
  driver = plaintext
  public_name = LOGIN
  server_prompts = Username:: : Password::
  server_condition = ${{if and {{{{eq{{$auth1}}{{{USER}}}}}{{eq{{$auth2}}{{{PASSWORD}}}}}}}}}
  server_set_id = $auth1
  server_advertise_condition = ${{if def:tls_in_cipher}}
",
        cert = tls.cert.display(),
        key = tls.key.display(),
        // A name no client asks for stands in for leaving PLAIN out.
        plain_name = if plain { "PLAIN" } else { "X-UNUSED-PLAIN" },
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

/// Makes [`USER`] a local system user (home under the temporary directory, a login
/// shell PAM accepts) with [`PASSWORD`], once per test process.
fn system_user() {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return;
    }
    let home = std::env::temp_dir().join(format!("monitors-live-{USER}-home"));
    let exists = Command::new("id")
        .arg(USER)
        .output()
        .is_ok_and(|o| o.status.success());
    if !exists {
        let status = Command::new(require("useradd", "passwd"))
            .args(["-M", "-s", "/bin/bash", "-d"])
            .arg(&home)
            .arg(USER)
            .status()
            .expect("run useradd");
        assert!(status.success(), "useradd {USER}");
    }
    fs::create_dir_all(&home).expect("create the user's home");
    let status = Command::new("chown")
        .arg(format!("{USER}:"))
        .arg(&home)
        .status()
        .expect("run chown");
    assert!(status.success(), "chown the user's home");
    let mut chpasswd = Command::new(require("chpasswd", "passwd"))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("run chpasswd");
    {
        use std::io::Write;
        let mut stdin = chpasswd.stdin.take().expect("chpasswd stdin");
        writeln!(stdin, "{USER}:{PASSWORD}").expect("write to chpasswd");
    }
    assert!(chpasswd.wait().expect("chpasswd").success(), "chpasswd");
    *done = true;
}

/// The home directory of [`USER`] (vsftpd's working directory after login).
pub fn system_home() -> String {
    std::env::temp_dir()
        .join(format!("monitors-live-{USER}-home"))
        .display()
        .to_string()
}

/// Starts vsftpd for the local user [`USER`] (made here when missing) with explicit FTPS
/// (`AUTH TLS` with `tls`; logins over plaintext allowed too) and at most `max_per_ip`
/// sessions from one address.
///
/// `seccomp_sandbox=NO`: vsftpd 3.0.3's filter kills its session process on `getrandom`
/// (see `live::shell::vsftpd`).
pub fn vsftpd(tls: &TlsFiles, max_per_ip: u32) -> Live {
    let program = require("vsftpd", "vsftpd");
    system_user();
    let dir = scratch_dir("vsftpd-login");
    let port = free_port();
    for sub in ["empty", "logs"] {
        fs::create_dir_all(dir.join(sub)).expect("create vsftpd dir");
    }
    let d = dir.display();
    let config = format!(
        "listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port={port}
background=NO
seccomp_sandbox=NO
anonymous_enable=NO
local_enable=YES
write_enable=NO
pam_service_name=vsftpd
max_per_ip={max_per_ip}
secure_chroot_dir={d}/empty
vsftpd_log_file={d}/logs/vsftpd.log
ssl_enable=YES
rsa_cert_file={cert}
rsa_private_key_file={key}
ssl_ciphers=HIGH
force_local_logins_ssl=NO
force_local_data_ssl=NO
require_ssl_reuse=NO
",
        cert = tls.cert.display(),
        key = tls.key.display(),
    );
    let conf = dir.join("vsftpd.conf");
    fs::write(&conf, config).expect("write vsftpd.conf");
    let mut command = Command::new(program);
    command.arg(&conf);
    Live::spawn("vsftpd", command, port, dir)
}
