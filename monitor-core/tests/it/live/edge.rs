//! Launchers for the network edge of the acceptance suite (nginx, haproxy) and the
//! reference clients the suite compares against (check_tcp, openssl s_client), plus the
//! throwaway certificates they share.

use std::fs;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use super::{Live, TlsFiles, free_port, require, scratch_dir};

/// The body every request to an [`nginx_tls`] server gets.
pub const NGINX_BODY: &str = "monitors live nginx\n";

/// nginx (master and one worker) serving HTTPS on 127.0.0.1 with `tls`, answering every
/// request `200` with [`NGINX_BODY`]. Its configuration, pid file, temp paths and logs
/// (to stderr, so `server.log`) all stay in the scratch directory.
pub fn nginx_tls(tls: &TlsFiles) -> Live {
    let program = require("nginx", "nginx-light (or nginx)");
    let dir = scratch_dir("nginx");
    let port = free_port();
    let temp = |what: &str| dir.join(format!("temp-{what}")).display().to_string();
    let config = format!(
        "user root;\n\
         worker_processes 1;\n\
         error_log stderr notice;\n\
         pid {pid};\n\
         events {{ worker_connections 64; }}\n\
         http {{\n\
         \x20   access_log off;\n\
         \x20   client_body_temp_path {body};\n\
         \x20   proxy_temp_path {proxy};\n\
         \x20   fastcgi_temp_path {fastcgi};\n\
         \x20   uwsgi_temp_path {uwsgi};\n\
         \x20   scgi_temp_path {scgi};\n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{port} ssl;\n\
         \x20       server_name localhost;\n\
         \x20       ssl_certificate {cert};\n\
         \x20       ssl_certificate_key {key};\n\
         \x20       default_type text/plain;\n\
         \x20       location / {{ return 200 {body_text:?}; }}\n\
         \x20   }}\n\
         }}\n",
        pid = dir.join("nginx.pid").display(),
        body = temp("body"),
        proxy = temp("proxy"),
        fastcgi = temp("fastcgi"),
        uwsgi = temp("uwsgi"),
        scgi = temp("scgi"),
        cert = tls.cert.display(),
        key = tls.key.display(),
        body_text = NGINX_BODY,
    );
    let conf = dir.join("nginx.conf");
    fs::write(&conf, config).expect("write nginx.conf");
    let mut command = Command::new(program);
    command
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&conf)
        .args(["-e", "stderr", "-g", "daemon off;"]);
    Live::spawn("nginx", command, port, dir)
}

/// haproxy in TCP mode terminating TLS on 127.0.0.1 (presenting `tls.combined`) and
/// forwarding the plaintext to `backend`.
pub fn haproxy_tls_front(tls: &TlsFiles, backend: SocketAddr) -> Live {
    let bind = format!("ssl crt {}", tls.combined.display());
    haproxy("haproxy (tls front)", "haproxy-tls", &bind, backend)
}

/// haproxy in TCP mode on 127.0.0.1 requiring a PROXY protocol header (v1 or v2) on
/// every connection before forwarding the rest to `backend`; a connection starting
/// with anything else is closed.
pub fn haproxy_proxy_front(backend: SocketAddr) -> Live {
    haproxy(
        "haproxy (accept-proxy)",
        "haproxy-proxy",
        "accept-proxy",
        backend,
    )
}

fn haproxy(name: &str, scratch: &str, bind_options: &str, backend: SocketAddr) -> Live {
    let program = require("haproxy", "haproxy");
    let dir = scratch_dir(scratch);
    let port = free_port();
    let config = format!(
        "global\n\
         \x20   maxconn 100\n\
         defaults\n\
         \x20   mode tcp\n\
         \x20   timeout connect 5s\n\
         \x20   timeout client 30s\n\
         \x20   timeout server 30s\n\
         frontend front\n\
         \x20   bind 127.0.0.1:{port} {bind_options}\n\
         \x20   default_backend back\n\
         backend back\n\
         \x20   server s1 {backend}\n"
    );
    let conf = dir.join("haproxy.cfg");
    fs::write(&conf, config).expect("write haproxy.cfg");
    let mut command = Command::new(program);
    command.arg("-db").arg("-f").arg(&conf);
    Live::spawn(name, command, port, dir)
}

/// Runs the monitoring-plugins `check_tcp -H 127.0.0.1 -p port` with `extra` arguments
/// (`-S` TLS, `-D days` certificate expiry, `-E -s 'version\r\n' -e VERSION` send and
/// expect, …); returns its exit code (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; -1 if
/// killed) and its output.
pub fn check_tcp(port: u16, extra: &[&str]) -> (i32, String) {
    let program = require("check_tcp", "monitoring-plugins-basic");
    let output = Command::new(program)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("run check_tcp");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.code().unwrap_or(-1), text)
}

/// Runs `openssl s_client -connect 127.0.0.1:port -brief` with `args` (`-starttls
/// smtp`, `-servername`, `-CAfile`, `-verify_return_error`, …), stdin closed so it
/// quits after the handshake, killed after 15 s; returns whether it exited 0 and its
/// stdout and stderr together.
pub fn s_client(port: u16, args: &[&str]) -> (bool, String) {
    let timeout = require("timeout", "coreutils");
    let openssl = require("openssl", "openssl");
    let output = Command::new(timeout)
        .args(["-k", "5", "15"])
        .arg(openssl)
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-brief",
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::sync::Arc;
    use std::time::Duration;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};

    use super::super::data::memcached;
    use super::*;
    use crate::live::TestCerts;

    /// Reads from `stream` until `done` holds for what arrived, the peer closes, or the
    /// read times out; returns what arrived and whether the peer closed cleanly.
    fn read_until(stream: &mut impl Read, done: impl Fn(&[u8]) -> bool) -> (Vec<u8>, bool) {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !done(&got) {
            match stream.read(&mut buf) {
                Ok(0) => return (got, true),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (got, true),
                Err(_) => return (got, false),
            }
        }
        (got, false)
    }

    fn connect(live: &Live) -> TcpStream {
        let stream = TcpStream::connect(live.addr())
            .unwrap_or_else(|e| panic!("connect to {}: {e}\n{}", live.name, live.log()));
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("set timeout");
        stream
    }

    /// A TLS exchange verified against `root_pem` for `localhost`: sends `send`, reads
    /// until `done` or the end of the stream.
    fn tls_exchange(
        live: &Live,
        root_pem: &str,
        send: &[u8],
        done: impl Fn(&[u8]) -> bool,
    ) -> Vec<u8> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(root_pem.as_bytes()).expect("parse root"))
            .expect("add root");
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = ServerName::try_from("localhost").expect("server name");
        let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
        let mut tls = rustls::StreamOwned::new(conn, connect(live));
        tls.write_all(send)
            .unwrap_or_else(|e| panic!("TLS to {}: {e}\n{}", live.name, live.log()));
        read_until(&mut tls, done).0
    }

    #[test]
    fn nginx_serves_https() {
        let certs = TestCerts::new("nginx");
        let server = nginx_tls(&certs.tls);
        let (ok, out) = s_client(server.port, &certs.verify_args());
        assert!(ok, "s_client to nginx:\n{out}\n{}", server.log());
        let got = tls_exchange(
            &server,
            &certs.root_pem,
            b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n",
            |_| false,
        );
        let text = String::from_utf8_lossy(&got);
        assert!(
            text.starts_with("HTTP/1.1 200") && text.ends_with(NGINX_BODY),
            "nginx: {text}\n{}",
            server.log()
        );
        let (code, out) = check_tcp(server.port, &["-S", "-D", "10"]);
        assert_eq!(code, 0, "check_tcp -S -D 10 on nginx: {out}");
    }

    #[test]
    fn haproxy_terminates_tls_for_memcached() {
        let certs = TestCerts::new("haproxy");
        let backend = memcached();
        let front = haproxy_tls_front(&certs.tls, backend.addr());
        let (ok, out) = s_client(front.port, &certs.verify_args());
        assert!(ok, "s_client to haproxy:\n{out}\n{}", front.log());
        let got = tls_exchange(&front, &certs.root_pem, b"version\r\n", |g| {
            g.ends_with(b"\r\n")
        });
        assert!(
            got.starts_with(b"VERSION "),
            "memcached behind haproxy: {got:?}\n{}",
            front.log()
        );
    }

    #[test]
    fn haproxy_wants_proxy_header() {
        let backend = memcached();
        let front = haproxy_proxy_front(backend.addr());
        let line = |g: &[u8]| g.ends_with(b"\r\n");

        let mut bare = connect(&front);
        bare.write_all(b"version\r\n").expect("send");
        let (got, closed) = read_until(&mut bare, line);
        assert!(
            got.is_empty() && closed,
            "no header: {got:?}, closed {closed}"
        );

        let mut v1 = connect(&front);
        v1.write_all(b"PROXY TCP4 127.0.0.1 127.0.0.1 1111 2222\r\nversion\r\n")
            .expect("send");
        let (got, _) = read_until(&mut v1, line);
        assert!(got.starts_with(b"VERSION "), "v1 header: {got:?}");

        let mut header = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
        header.extend_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1]);
        header.extend_from_slice(&1111u16.to_be_bytes());
        header.extend_from_slice(&2222u16.to_be_bytes());
        header.extend_from_slice(b"version\r\n");
        let mut v2 = connect(&front);
        v2.write_all(&header).expect("send");
        let (got, _) = read_until(&mut v2, line);
        assert!(got.starts_with(b"VERSION "), "v2 header: {got:?}");
    }

    #[test]
    fn check_tcp_codes() {
        let server = memcached();
        let (code, out) = check_tcp(server.port, &["-E", "-s", "version\\r\\n", "-e", "VERSION"]);
        assert_eq!(code, 0, "check_tcp on memcached: {out}");
        let (code, out) = check_tcp(free_port(), &[]);
        assert_eq!(code, 2, "check_tcp on a closed port: {out}");
    }
}
