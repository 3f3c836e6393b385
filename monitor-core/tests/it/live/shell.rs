//! Real login and file-transfer servers on loopback ports: OpenSSH's sshd and vsftpd.

use std::fs;
use std::process::Command;

use super::{Live, TlsFiles, free_port, require, scratch_dir};

/// Starts OpenSSH's sshd in the foreground (`sshd -D -e -f conf`) on a free port of
/// 127.0.0.1 with a fresh ed25519 host key and its configuration in a scratch
/// directory; it greets with `SSH-2.0-OpenSSH_...`. Nobody can log in (no PAM, no
/// passwords, no authorized keys).
///
/// sshd insists on its compiled-in privilege separation directory `/run/sshd`, the one
/// path outside the scratch directory: it is created (empty, root-owned) if missing.
pub fn sshd() -> Live {
    let program = require("sshd", "openssh-server");
    let keygen = require("ssh-keygen", "openssh-client");
    fs::create_dir_all("/run/sshd").expect("create /run/sshd (sshd privilege separation)");
    let dir = scratch_dir("sshd");
    let port = free_port();
    let key = dir.join("host_ed25519");
    let made = Command::new(keygen)
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .output()
        .expect("run ssh-keygen");
    assert!(
        made.status.success(),
        "ssh-keygen for sshd failed: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let config = format!(
        "HostKey {key}
ListenAddress 127.0.0.1
Port {port}
PidFile {dir}/sshd.pid
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile none
",
        key = key.display(),
        dir = dir.display()
    );
    let conf = dir.join("sshd_config");
    fs::write(&conf, config).expect("write sshd_config");
    let mut command = Command::new(program);
    command.arg("-D").arg("-e").arg("-f").arg(&conf);
    Live::spawn("sshd", command, port, dir)
}

/// Starts vsftpd in the foreground (`listen=YES`, `background=NO`, the config file as
/// its argument) on a free port of 127.0.0.1, serving an empty anonymous root from a
/// scratch directory; its own log is `dir/logs/vsftpd.log`.
///
/// With `tls` it offers explicit FTPS (`AUTH TLS` answers `234`, anonymous users may
/// use TLS but need not); without, `AUTH TLS` is refused with `530`.
///
/// `seccomp_sandbox=NO`: vsftpd 3.0.3's filter kills its session process (SIGSYS) on
/// `getrandom`, which OpenSSL 3 calls in the TLS handshake, and on `alarm`.
pub fn vsftpd(tls: Option<&TlsFiles>) -> Live {
    vsftpd_with(tls, false)
}

/// vsftpd speaking TLS from the first byte (`implicit_ssl`), its banner right after the
/// handshake; like every vsftpd over TLS it asks for a client certificate and goes on
/// without one.
pub fn vsftpd_implicit_tls(tls: &TlsFiles) -> Live {
    vsftpd_with(Some(tls), true)
}

fn vsftpd_with(tls: Option<&TlsFiles>, implicit: bool) -> Live {
    let program = require("vsftpd", "vsftpd");
    let dir = scratch_dir("vsftpd");
    let port = free_port();
    for sub in ["empty", "root", "logs"] {
        fs::create_dir_all(dir.join(sub)).expect("create vsftpd dir");
    }
    let ssl = match tls {
        Some(files) => format!(
            "ssl_enable=YES
implicit_ssl={}
rsa_cert_file={}
rsa_private_key_file={}
ssl_ciphers=HIGH
allow_anon_ssl=YES
force_anon_logins_ssl=NO
force_anon_data_ssl=NO
require_ssl_reuse=NO
",
            if implicit { "YES" } else { "NO" },
            files.cert.display(),
            files.key.display()
        ),
        None => "ssl_enable=NO\n".to_owned(),
    };
    let d = dir.display();
    let config = format!(
        "listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port={port}
background=NO
seccomp_sandbox=NO
anonymous_enable=YES
anon_root={d}/root
local_enable=NO
write_enable=NO
secure_chroot_dir={d}/empty
vsftpd_log_file={d}/logs/vsftpd.log
{ssl}"
    );
    let conf = dir.join("vsftpd.conf");
    fs::write(&conf, config).expect("write vsftpd.conf");
    let mut command = Command::new(program);
    command.arg(&conf);
    Live::spawn("vsftpd", command, port, dir)
}

mod tests {
    use super::super::TestCerts;
    use super::super::mail::{Dialog, assert_starttls_verifies, assert_stops};
    use super::*;

    #[test]
    fn sshd_greets_with_an_openssh_banner() {
        let server = sshd();
        {
            let mut ssh = Dialog::open(&server, server.port);
            let banner = ssh.line();
            if !banner.starts_with("SSH-2.0-OpenSSH_") {
                ssh.fail(&format!("banner {banner:?}"));
            }
        }
        assert_stops(server);
    }

    fn check_vsftpd(tls: Option<&TestCerts>) {
        let server = vsftpd(tls.map(|t| &t.tls));
        {
            let mut ftp = Dialog::open(&server, server.port);
            let greeting = ftp.line();
            if !greeting.starts_with("220 ") {
                ftp.fail(&format!("greeting {greeting:?}"));
            }
            ftp.send("AUTH TLS");
            let auth = ftp.line();
            let expected = if tls.is_some() { "234" } else { "530" };
            if !auth.starts_with(expected) {
                ftp.fail(&format!("AUTH TLS answered {auth:?}, expected {expected}"));
            }
            if tls.is_none() {
                ftp.send("USER anonymous");
                ftp.line();
                ftp.send("PASS monitor@example.test");
                let pass = ftp.line();
                if !pass.starts_with("230") {
                    ftp.fail(&format!("anonymous login: {pass:?}"));
                }
                ftp.send("QUIT");
                ftp.line();
            }
        }
        if let Some(tls) = tls {
            assert_starttls_verifies(&server, server.port, "ftp", &tls.ca);
        }
        assert_stops(server);
    }

    #[test]
    fn vsftpd_plain_refuses_auth_tls() {
        check_vsftpd(None);
    }

    #[test]
    fn vsftpd_with_tls_accepts_auth_tls() {
        check_vsftpd(Some(&TestCerts::new("vsftpd")));
    }
}
