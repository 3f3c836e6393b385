//! Turning what went wrong into a [`ProbeError`]: the kind, one line naming host, port and
//! address, and hints an on-call engineer can act on, ending with a command to reproduce.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use super::dialog::DialogError;
pub(crate) use super::place::place;
use monitor_spec::escape::escape_excerpt;
use monitor_spec::result::{ErrorKind, ProbeError};
use monitor_spec::spec::{Payload, Step, TcpMonitor};

/// Why one address could not be connected to.
#[derive(Debug)]
pub(crate) enum AttemptError {
    Io(io::Error),
    TimedOut,
}

pub(crate) fn error(
    kind: ErrorKind,
    message: String,
    mut hints: Vec<String>,
    spec: &TcpMonitor,
) -> ProbeError {
    hints.push(reproduce(spec));
    ProbeError {
        kind,
        message,
        hints,
    }
}

/// The shell command that repeats the check by hand: `nc -vz` for a bare connect, the
/// sends piped into `nc` for a dialog.
pub(crate) fn reproduce(spec: &TcpMonitor) -> String {
    let t = &spec.target;
    if let Some(recipe) = &spec.recipe {
        return format!("reproduce by hand: {}", by_hand(spec, recipe));
    }
    let mut sent = String::new();
    for step in &spec.steps {
        if let Step::Send(p) = step {
            let bytes = match p {
                Payload::Text(t) => monitor_spec::escape::unescape(t).unwrap_or_default(),
                Payload::Hex(h) => monitor_spec::escape::from_hex(h).unwrap_or_default(),
            };
            sent.push_str(&escape_excerpt(&bytes, usize::MAX).replace('\'', "'\\''"));
        }
    }
    let wait = spec.timeouts.read_ms.div_ceil(1000).max(1);
    if spec.steps.is_empty() {
        format!("reproduce by hand: nc -vz -w {wait} {} {}", t.host, t.port)
    } else if sent.is_empty() {
        format!("reproduce by hand: nc -w {wait} {} {}", t.host, t.port)
    } else {
        format!(
            "reproduce by hand: printf '{sent}' | nc -w {wait} {} {}",
            t.host, t.port
        )
    }
}

/// The psql command that repeats a login (the password named, never shown): the
/// engine's last hint for a PostgreSQL monitor with a login.
fn psql_command(
    spec: &TcpMonitor,
    user: &str,
    database: &str,
    login: &monitor_spec::login::Login,
) -> String {
    let sslmode = if spec.tls.mode == monitor_spec::spec::TlsMode::None {
        "disable"
    } else {
        "require"
    };
    let conninfo = format!(
        "host={} port={} user={user} dbname={database} sslmode={sslmode}",
        spec.target.host, spec.target.port
    );
    let password = match (&login.password_env, &login.password_file) {
        (Some(var), _) => format!("PGPASSWORD=\"${var}\" "),
        (None, Some(file)) => format!("PGPASSWORD=\"$(head -n1 {file})\" "),
        (None, None) => String::new(),
    };
    let query = login
        .query_or(monitor_spec::login::DEFAULT_POSTGRES_QUERY)
        .replace('"', "\\\"");
    format!("{password}psql \"{conninfo}\" -c \"{query}\"")
}

/// `mongosh` pinging as the login's user, the password named as `"$VAR"` or
/// `"$(head -n1 FILE)"`, never its value.
fn mongosh_command(spec: &TcpMonitor, login: &monitor_spec::login::Login) -> String {
    let database = login.database.as_deref().unwrap_or("admin");
    let user = login.user.as_deref().unwrap_or_default();
    let tls = if spec.tls.mode == monitor_spec::spec::TlsMode::None {
        ""
    } else {
        " --tls"
    };
    let password = match (&login.password_env, &login.password_file) {
        (Some(var), _) => format!(" --password \"${var}\""),
        (None, Some(file)) => format!(" --password \"$(head -n1 {file})\""),
        (None, None) => String::new(),
    };
    format!(
        "mongosh \"mongodb://{user}@{}:{}/?authSource={database}\"{tls}{password} --eval 'db.runCommand({{ping:1}})'",
        spec.target.host, spec.target.port
    )
}

/// `ldapsearch` binding and searching as the LDAP recipe does, the password named as
/// `-y FILE` or `-w "$VAR"`, never its value.
fn ldapsearch_command(spec: &TcpMonitor, login: Option<&monitor_spec::login::Login>) -> String {
    use monitor_spec::spec::TlsMode;
    let (scheme, starttls) = match spec.tls.mode {
        TlsMode::None => ("ldap", ""),
        TlsMode::Starttls => ("ldap", " -ZZ"),
        _ => ("ldaps", ""),
    };
    let mut cmd = format!(
        "ldapsearch -H {scheme}://{}:{}{starttls} -x",
        spec.target.host, spec.target.port
    );
    if let Some(dn) = login.and_then(|l| l.user.as_deref()) {
        cmd.push_str(&format!(" -D \"{dn}\""));
    }
    match login.map(|l| (&l.password_env, &l.password_file)) {
        Some((Some(var), _)) => cmd.push_str(&format!(" -w \"${var}\"")),
        Some((None, Some(file))) => cmd.push_str(&format!(" -y {file}")),
        _ => {}
    }
    let base = login.and_then(|l| l.query.as_deref()).unwrap_or_default();
    cmd.push_str(&format!(" -b \"{base}\" -s base 1.1"));
    cmd
}

/// The curl command that repeats an SMTP, IMAP, POP3 or FTP login (the password named as
/// `"$VAR"` or `"$(head -n1 FILE)"`, never shown): the engine's last hint for those
/// recipes with a login.
fn curl_command(
    spec: &TcpMonitor,
    recipe: &crate::Recipe,
    login: &monitor_spec::login::Login,
) -> String {
    use monitor_spec::spec::TlsMode;
    let t = &spec.target;
    let host = if t.host.contains(':') {
        format!("[{}]", t.host)
    } else {
        t.host.clone()
    };
    let direct = spec.tls.mode == TlsMode::Direct;
    let scheme = recipe.name().to_owned() + if direct { "s" } else { "" };
    let path = match recipe {
        crate::Recipe::Imap { .. } => format!(
            "/{}",
            login
                .query_or("INBOX")
                .replace('%', "%25")
                .replace(' ', "%20")
        ),
        crate::Recipe::Ftp { .. } => "/".to_owned(),
        _ => String::new(),
    };
    let ssl = if spec.tls.mode == TlsMode::Starttls {
        " --ssl-reqd"
    } else {
        ""
    };
    let user = login
        .user
        .as_deref()
        .unwrap_or_default()
        .replace('"', "\\\"");
    let credentials = match (&login.password_env, &login.password_file) {
        (Some(var), _) => format!("\"{user}:${var}\""),
        (None, Some(file)) => format!("\"{user}:$(head -n1 {file})\""),
        (None, None) => format!("\"{user}\""),
    };
    format!(
        "curl --url {scheme}://{host}:{}{path}{ssl} --user {credentials}",
        t.port
    )
}

/// The mysql command that repeats a login (the password named, never shown): the
/// engine's last hint for a MySQL monitor with a login.
fn mysql_command(spec: &TcpMonitor, login: &monitor_spec::login::Login) -> String {
    let t = &spec.target;
    let password = match (&login.password_env, &login.password_file) {
        (Some(var), _) => format!("MYSQL_PWD=\"${var}\" "),
        (None, Some(file)) => format!("MYSQL_PWD=\"$(head -n1 {file})\" "),
        (None, None) => String::new(),
    };
    let user = login.user.as_deref().unwrap_or_default();
    let mut cmd = format!(
        "{password}mysql --host={} --port={} --user={user}",
        t.host, t.port
    );
    if let Some(db) = &login.database {
        cmd.push_str(&format!(" --database={db}"));
    }
    if spec.tls.mode != monitor_spec::spec::TlsMode::None {
        cmd.push_str(" --ssl");
    }
    let query = login.query_or("SELECT 1").replace('"', "\\\"");
    format!("{cmd} -e \"{query}\"")
}

/// The native client command that speaks a recipe's protocol to the target.
fn by_hand(spec: &TcpMonitor, recipe: &crate::Recipe) -> String {
    use crate::Recipe as R;
    use monitor_spec::spec::TlsMode;
    let (h, p) = (&spec.target.host, spec.target.port);
    let tls = spec.tls.mode != TlsMode::None;
    let s_client = |starttls: &str| {
        let flag = if spec.tls.mode == TlsMode::Starttls {
            format!(" -starttls {starttls}")
        } else {
            String::new()
        };
        format!("openssl s_client -connect {}{flag} -crlf", spec.target)
    };
    match recipe {
        R::Postgres {
            user,
            database,
            login: Some(login),
        } => psql_command(spec, user, database.as_deref().unwrap_or(user), login),
        R::Postgres { user, database, .. } => format!(
            "pg_isready -h {h} -p {p} -U {user} -d {}",
            database.as_deref().unwrap_or(user)
        ),
        R::Smtp {
            login: Some(login), ..
        }
        | R::Imap { login: Some(login) }
        | R::Pop3 { login: Some(login) }
        | R::Ftp { login: Some(login) } => curl_command(spec, recipe, login),
        R::Mysql { login: Some(login) } => mysql_command(spec, login),
        R::Mysql { .. } => format!("mysqladmin --host={h} --port={p} --connect-timeout=5 ping"),
        R::Mongodb { login: Some(login) } => mongosh_command(spec, login),
        R::Ldap { login } => ldapsearch_command(spec, login.as_ref()),
        R::Mongodb { .. } => format!(
            "mongosh --host {h} --port {p}{} --eval 'db.hello()'",
            if tls { " --tls" } else { "" }
        ),
        R::Redis {
            password_env,
            username,
            role,
        } => {
            let mut cmd = format!("redis-cli -h {h} -p {p}");
            if tls {
                cmd.push_str(" --tls");
            }
            if let Some(user) = username {
                cmd.push_str(&format!(" --user {user}"));
            }
            if let Some(var) = password_env {
                cmd = format!("REDISCLI_AUTH=\"${var}\" {cmd}");
            }
            cmd + if *role { " role" } else { " ping" }
        }
        R::Memcached { .. } if !tls => format!("printf 'version\\r\\n' | nc -w 2 {h} {p}"),
        R::Ssh => format!("ssh-keyscan -p {p} {h}"),
        _ if tls => s_client(recipe.name()),
        _ => format!("nc -C {h} {p}"),
    }
}

pub(crate) fn dns_failure(spec: &TcpMonitor, why: &str) -> ProbeError {
    let host = &spec.target.host;
    error(
        ErrorKind::DnsFailure,
        format!(
            "could not resolve `{host}` (port {}): {why}",
            spec.target.port
        ),
        vec![
            format!("check that the name is spelled right and exists: getent hosts {host}"),
            "check that this machine's resolver (/etc/resolv.conf) answers".to_owned(),
            "a new or changed DNS record may not have propagated yet".to_owned(),
        ],
        spec,
    )
}

pub(crate) fn no_address_in_family(spec: &TcpMonitor, found: &[SocketAddr]) -> ProbeError {
    let family = match spec.target.ip_family {
        monitor_spec::spec::IpFamily::Ipv4 => "IPv4",
        _ => "IPv6",
    };
    let list: Vec<String> = found.iter().map(|a| a.ip().to_string()).collect();
    error(
        ErrorKind::DnsFailure,
        format!(
            "`{}` resolved to {} but to no {family} address, and ip_family allows only {family}",
            spec.target.host,
            if list.is_empty() {
                "nothing".to_owned()
            } else {
                list.join(", ")
            }
        ),
        vec![
            format!("add a {family} record for the name, or set ip_family to `any`"),
            format!("look at the records: getent ahosts {}", spec.target.host),
        ],
        spec,
    )
}

pub(crate) fn connect_failure(
    spec: &TcpMonitor,
    failures: &[(SocketAddr, AttemptError)],
    connect_timeout: Duration,
) -> ProbeError {
    let target = spec.target.to_string();
    let port = spec.target.port;
    let kinds: Vec<ErrorKind> = failures.iter().map(|(_, e)| attempt_kind(e)).collect();
    // The most telling kind wins: a refusal proves the host is reachable.
    let kind = [
        ErrorKind::Refused,
        ErrorKind::ConnectTimeout,
        ErrorKind::Reset,
        ErrorKind::Unreachable,
    ]
    .into_iter()
    .find(|k| kinds.contains(k))
    .unwrap_or(ErrorKind::Io);
    let each: Vec<String> = failures
        .iter()
        .map(|(addr, e)| match e {
            AttemptError::TimedOut => format!("{addr} timed out"),
            AttemptError::Io(e) => format!("{addr} {}", io_words(e)),
        })
        .collect();
    // Name the addresses only where they add something to the target.
    let at = match failures {
        [(addr, _)] if addr.to_string() == target => String::new(),
        [(addr, _)] => format!(" ({addr})"),
        _ => format!(" ({})", each.join(", ")),
    };
    let ms = connect_timeout.as_millis();
    let (message, hints) = match kind {
        ErrorKind::Refused => (
            format!("connection to {target} refused{at}"),
            vec![
                format!(
                    "the service is down or not listening on port {port}: on the server, run ss -tlnp | grep :{port}"
                ),
                "a firewall rule may reject the port (REJECT answers with a refusal)".to_owned(),
                format!("check the monitor's host and port: is {target} the right place?"),
            ],
        ),
        ErrorKind::ConnectTimeout => (
            format!("connecting to {target} timed out after {ms} ms{at}"),
            vec![
                "a firewall may silently drop packets to the port (DROP gives timeouts, not refusals)".to_owned(),
                "the host may be down, or the service overloaded with its accept queue full".to_owned(),
                format!("latency or packet loss on the path: mtr {}", spec.target.host),
                format!("the connect timeout ({ms} ms) may be too low for this path"),
            ],
        ),
        ErrorKind::Unreachable => (
            format!("{target} is unreachable from here{at}"),
            vec![
                format!(
                    "no route to the host: check routing, VPN and security groups (ip route get {})",
                    failures.first().map_or_else(String::new, |(a, _)| a.ip().to_string())
                ),
                "for an IPv6 address, this machine may have no IPv6 connectivity: set ip_family to ipv4".to_owned(),
            ],
        ),
        ErrorKind::Reset => (
            format!("connection to {target} was reset while connecting{at}"),
            vec![
                "a firewall or load balancer may reset connections to this port".to_owned(),
                "the service may be restarting".to_owned(),
            ],
        ),
        _ => (
            format!("could not connect to {target}{at}"),
            vec!["check the network configuration of this machine".to_owned()],
        ),
    };
    error(kind, message, hints, spec)
}

fn attempt_kind(e: &AttemptError) -> ErrorKind {
    match e {
        AttemptError::TimedOut => ErrorKind::ConnectTimeout,
        AttemptError::Io(e) => match e.kind() {
            io::ErrorKind::ConnectionRefused => ErrorKind::Refused,
            io::ErrorKind::TimedOut => ErrorKind::ConnectTimeout,
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => ErrorKind::Reset,
            io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::AddrNotAvailable
            | io::ErrorKind::NetworkDown => ErrorKind::Unreachable,
            _ => ErrorKind::Io,
        },
    }
}

/// A short lower-case description of an I/O error.
fn io_words(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "refused".to_owned(),
        io::ErrorKind::ConnectionReset => "reset".to_owned(),
        io::ErrorKind::HostUnreachable => "host unreachable".to_owned(),
        io::ErrorKind::NetworkUnreachable => "network unreachable".to_owned(),
        io::ErrorKind::AddrNotAvailable => "address not available here".to_owned(),
        _ => {
            let s = e.to_string();
            // Drop the "(os error N)" suffix and lower the first letter.
            let s = s.split(" (os error").next().unwrap_or(&s).to_owned();
            let mut c = s.chars();
            c.next()
                .map(|f| f.to_lowercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        }
    }
}

/// The hint for a connection closed or reset before any byte on a monitor that sends no
/// PROXY protocol header.
const PROXY_HINT: &str = "a load balancer expecting the PROXY protocol closes connections without its header: set proxy_protocol = \"v1\" or \"v2\" (as the balancer's accept-proxy or proxy_protocol expects) if one sits in front of this port";

/// Puts the PROXY protocol hint second in `hints` when the server closed or reset the
/// connection before sending any byte and the monitor sends no PROXY header: the dialog,
/// the STARTTLS upgrade and the TLS handshake all meet such a balancer the same way.
pub(crate) fn proxy_hint(spec: &TcpMonitor, received_nothing: bool, hints: &mut Vec<String>) {
    if received_nothing && spec.proxy_protocol.is_none() {
        hints.insert(1.min(hints.len()), PROXY_HINT.to_owned());
    }
}

pub(crate) fn dialog_failure(
    spec: &TcpMonitor,
    addr: SocketAddr,
    e: DialogError,
    received: &[u8],
) -> ProbeError {
    let target = place(spec, Some(addr));
    let got = if received.is_empty() {
        "nothing received".to_owned()
    } else {
        format!(
            "received {} bytes: `{}`",
            received.len(),
            escape_excerpt(received, 120)
        )
    };
    let read_ms = spec.timeouts.read_ms;
    // A close or reset before the server's first byte may be a balancer that waits for a
    // PROXY protocol header first.
    let proxy = |mut hints: Vec<String>| {
        proxy_hint(spec, received.is_empty(), &mut hints);
        hints
    };
    match e {
        DialogError::Timeout {
            waiting_for,
            sending,
            total,
        } => {
            let limit = if total {
                format!("the total timeout of {} ms ran out", spec.timeouts.total_ms)
            } else {
                format!("the read timeout of {read_ms} ms ran out")
            };
            let message = if sending {
                format!("{target} did not accept our data in time: {limit} while {waiting_for} ({got})")
            } else {
                format!("{target} did not send {waiting_for}: {limit} ({got})")
            };
            error(
                ErrorKind::ReadTimeout,
                message,
                vec![
                    "the service may be slow or overloaded; check its load and logs".to_owned(),
                    "the expectation may not match what the service sends: compare it with what was received".to_owned(),
                    "the service may be waiting for input first: does the dialog send before it expects?".to_owned(),
                    format!(
                        "the timeout may be too low for this service (read {read_ms} ms, total {} ms)",
                        spec.timeouts.total_ms
                    ),
                ],
                spec,
            )
        }
        DialogError::Closed { waiting_for } => error(
            ErrorKind::ClosedEarly,
            format!("{target} closed the connection before sending {waiting_for} ({got})"),
            proxy(vec![
                "the service may refuse this client: connection limit, access list, or it expects TLS".to_owned(),
                "the dialog may not match the protocol: check what it sends and expects".to_owned(),
                "the service may have crashed or restarted mid-connection; check its logs".to_owned(),
            ]),
            spec,
        ),
        DialogError::TooLarge { waiting_for } => error(
            ErrorKind::ResponseTooLarge,
            format!(
                "{target} sent more than max_response_bytes ({} bytes) while we waited for {waiting_for}",
                spec.max_response_bytes
            ),
            vec![
                "the expectation may never match, so the response was read until the cap".to_owned(),
                "if the service really sends this much, raise max_response_bytes".to_owned(),
                "a wrong service may be listening on this port".to_owned(),
            ],
            spec,
        ),
        DialogError::Said(said) => said,
        DialogError::Unexpected { expected, got } => error(
            ErrorKind::UnexpectedResponse,
            format!(
                "{target} sent `{}` where exactly `{}` was expected",
                escape_excerpt(&got, 64),
                escape_excerpt(&expected, 64)
            ),
            vec![
                "a different service or version may be listening on this port".to_owned(),
                "check the expected bytes against the protocol's documentation".to_owned(),
            ],
            spec,
        ),
        DialogError::Io {
            error: io_err,
            sending,
            waiting_for,
        } => {
            let during = if sending {
                waiting_for
            } else {
                format!("waiting for {waiting_for}")
            };
            if matches!(
                io_err.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
            ) {
                error(
                    ErrorKind::Reset,
                    format!("{target} reset the connection while {during} ({got})"),
                    proxy(vec![
                        "the service crashed or dropped the connection abruptly; check its logs".to_owned(),
                        "a proxy, load balancer or firewall in between may reset the connection".to_owned(),
                        "the service may reject what was sent: check the send steps follow its protocol, or whether it expects TLS".to_owned(),
                    ]),
                    spec,
                )
            } else if io_err.kind() == io::ErrorKind::BrokenPipe {
                error(
                    ErrorKind::ClosedEarly,
                    format!("{target} closed the connection while {during} ({got})"),
                    proxy(vec![
                        "the service closed the connection before reading what was sent".to_owned(),
                        "the service may refuse this client: connection limit, access list, or it expects TLS".to_owned(),
                    ]),
                    spec,
                )
            } else {
                error(
                    ErrorKind::Io,
                    format!(
                        "I/O error with {target} while {during}: {}",
                        io_words(&io_err)
                    ),
                    vec!["check the network path and the service's logs".to_owned()],
                    spec,
                )
            }
        }
    }
}

/// Hints for a `tls_policy_violation`: one per kind of finding, then the command that
/// repeats the scan by hand (`sslyze`, with `--starttls auto` for a STARTTLS monitor).
pub(crate) fn policy_hints(
    spec: &TcpMonitor,
    report: &monitor_spec::result::PolicyReport,
) -> Vec<String> {
    let has = |code: &str| report.findings.iter().any(|f| f.code == code);
    let mut hints = Vec::new();
    if has("legacy_version") {
        hints.push("disable TLS 1.0 and 1.1 in the service's configuration (for example ssl_protocols TLSv1.2 TLSv1.3)".to_owned());
    }
    if has("weak_key") {
        hints.push(
            "issue the certificate with an RSA key of 2048 bits or more, or an EC key (P-256)"
                .to_owned(),
        );
    }
    if has("weak_signature") {
        hints.push("reissue the certificates signed with SHA-1 or MD5 with SHA-256".to_owned());
    }
    if has("weak_cipher") {
        hints.push("allow only ECDHE suites with AES-GCM or ChaCha20 (for example ssl_ciphers ECDHE+AESGCM:ECDHE+CHACHA20)".to_owned());
    }
    if has("chain_order") {
        hints.push(
            "list the certificate file leaf first, each certificate followed by its issuer"
                .to_owned(),
        );
    }
    let starttls = if spec.tls.mode == monitor_spec::spec::TlsMode::Starttls {
        "--starttls auto "
    } else {
        ""
    };
    hints.push(format!("scan by hand: sslyze {starttls}{}", spec.target));
    hints
}
