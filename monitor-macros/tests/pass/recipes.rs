//! Recipes and the PROXY protocol: every recipe, with and without arguments, STARTTLS
//! in the recipe's protocol (named or taken from the recipe), direct TLS and plain.
#![deny(warnings)]
#![forbid(unsafe_code)]

use monitor_core::prelude::*;
use monitor_core::registry::validate_all;

#[tcp_monitor(
    host = "cache.internal",
    port = 6379,
    recipe = redis(password_env = "REDIS_PASSWORD", username = "monitor"),
    proxy_protocol = "v2"
)]
fn cache(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "cache.internal", port = 6380, recipe = redis)]
fn cache_open(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(
    host = "db.internal",
    port = 5432,
    recipe = postgres(user = "probe", database = "app"),
    tls = "starttls"
)]
fn db(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(
    host = "db.internal",
    port = 5434,
    recipe = postgres(
        user = "probe",
        database = "app",
        login = login(password_env = "MONITORS_SECRET_PG", query = "SELECT count(*) FROM jobs")
    )
)]
fn db_login(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "db.internal", port = 5433, recipe = postgres())]
fn db_default(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(
    host = "mail.internal",
    port = 25,
    recipe = smtp(helo = "probe.example.com"),
    starttls = "smtp",
    proxy_protocol = "v1"
)]
fn mail(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "mail.internal", port = 587, recipe = smtp)]
fn submission(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "mail.internal", port = 993, recipe = imap(), tls = "direct")]
fn imaps(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "mail.internal", port = 110, recipe = pop3, tls = "starttls")]
fn pop3(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "db.internal", port = 3306, recipe = mysql())]
fn mysql(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "db.internal", port = 27017, recipe = mongodb(), tls = "direct")]
fn mongodb(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "cache.internal", port = 11211, recipe = memcached())]
fn memcached(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "git.internal", port = 22, recipe = ssh(), tls = "none")]
fn ssh(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(host = "files.internal", port = 21, recipe = ftp())]
fn ftp(m: TcpMonitor) -> TcpMonitor {
    m
}

#[tcp_monitor(
    host = "ldap.internal",
    port = 636,
    tls = "direct",
    recipe = ldap(login = login(
        user = "cn=monitor,dc=example,dc=org",
        password_file = "ldap.pass",
        query = "ou=people,dc=example,dc=org"
    ))
)]
fn directory(m: TcpMonitor) -> TcpMonitor {
    m.assert(entry_count().equals(1))
}

#[tcp_monitor(host = "cache.internal", port = 6381, recipe = redis(role = true))]
fn cache_replica(m: TcpMonitor) -> TcpMonitor {
    m.assert(role().equals("replica"))
        .assert(replication_lag().less_than(seconds(10)))
}

#[tcp_monitor(
    host = "db.internal",
    port = 5435,
    recipe = postgres(user = "probe", login = login(password_env = "MONITORS_SECRET_PG"))
)]
fn db_primary(m: TcpMonitor) -> TcpMonitor {
    m.assert(writable())
}

#[tcp_monitor(host = "web.internal", port = 80)]
fn plain(m: TcpMonitor) -> TcpMonitor {
    m
}

fn main() {
    let valid = validate_all().expect("all valid");
    let monitor = |id: &str| {
        valid
            .iter()
            .find(|(d, _)| d.monitor.id == id)
            .unwrap_or_else(|| panic!("{id}"))
            .0
            .monitor
            .clone()
    };
    let spec = |id: &str| {
        let m = monitor(id);
        (m.recipe, m.proxy_protocol, m.tls.mode, m.tls.starttls)
    };
    assert_eq!(
        spec("cache"),
        (
            Some(Recipe::Redis {
                password_env: Some("REDIS_PASSWORD".into()),
                username: Some("monitor".into()),
                role: false,
            }),
            Some(ProxyProtocol::V2),
            TlsMode::None,
            None
        )
    );
    assert_eq!(
        spec("cache_open"),
        (Some(Recipe::redis()), None, TlsMode::None, None)
    );
    assert_eq!(
        spec("db"),
        (
            Some(Recipe::Postgres {
                user: "probe".into(),
                database: Some("app".into()),
                login: None,
            }),
            None,
            TlsMode::Starttls,
            Some(StartTls::Postgres)
        )
    );
    assert_eq!(
        spec("db_login").0,
        Some(Recipe::postgres_login(
            "probe",
            Some("app"),
            monitor_core::model::login::Login::password_env("MONITORS_SECRET_PG")
                .query("SELECT count(*) FROM jobs"),
        ))
    );
    assert_eq!(
        spec("db_default"),
        (Some(Recipe::postgres()), None, TlsMode::None, None)
    );
    assert_eq!(
        spec("mail"),
        (
            Some(Recipe::Smtp { helo: "probe.example.com".into(), login: None }),
            Some(ProxyProtocol::V1),
            TlsMode::Starttls,
            Some(StartTls::Smtp)
        )
    );
    assert_eq!(
        spec("submission"),
        (Some(Recipe::smtp()), None, TlsMode::None, None)
    );
    assert_eq!(
        spec("imaps"),
        (Some(Recipe::imap()), None, TlsMode::Direct, None)
    );
    assert_eq!(
        spec("pop3"),
        (
            Some(Recipe::pop3()),
            None,
            TlsMode::Starttls,
            Some(StartTls::Pop3)
        )
    );
    assert_eq!(spec("mysql").0, Some(Recipe::mysql()));
    assert_eq!(
        spec("mongodb"),
        (Some(Recipe::mongodb()), None, TlsMode::Direct, None)
    );
    assert_eq!(spec("memcached").0, Some(Recipe::memcached()));
    assert_eq!(spec("ssh"), (Some(Recipe::Ssh), None, TlsMode::None, None));
    assert_eq!(spec("ftp").0, Some(Recipe::ftp()));
    assert_eq!(spec("plain"), (None, None, TlsMode::None, None));
    assert_eq!(
        spec("directory").0,
        Some(
            Recipe::ldap().with_login(
                Login::password_file("ldap.pass")
                    .user("cn=monitor,dc=example,dc=org")
                    .query("ou=people,dc=example,dc=org")
            )
        )
    );
    assert_eq!(monitor("directory").assertions, [entry_count().equals(1)]);
    assert_eq!(
        monitor("cache_replica").assertions,
        [
            role().equals("replica"),
            replication_lag().less_than(10_000)
        ]
    );
    assert_eq!(monitor("db_primary").assertions, [read_only().equals("no")]);

    // Every recipe of monitor_core is declared above.
    let mut names: Vec<&str> = valid
        .iter()
        .filter_map(|(d, _)| d.monitor.recipe.as_ref().map(Recipe::name))
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut all = monitor_core::model::RECIPES.to_vec();
    all.sort_unstable();
    assert_eq!(names, all);
}
