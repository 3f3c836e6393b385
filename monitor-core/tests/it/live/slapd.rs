//! A Debian OpenLDAP server (`slapd`) for the LDAP recipe's tests: a slapd.conf made in a
//! scratch directory (mdb backend, suffix `dc=example,dc=org`, a bind DN with a
//! `slappasswd` hash, people only the bind DN may read), listening on `ldap://` (with
//! StartTLS) and `ldaps://` with the test PKI.

use std::fs;
use std::process::Command;

use super::{Live, TestCerts, free_port, require, scratch_dir};

/// The suffix.
pub const SUFFIX: &str = "dc=example,dc=org";
/// The DN the monitor binds as.
pub const BIND_DN: &str = "cn=monitor,dc=example,dc=org";
/// Its password.
pub const BIND_PASSWORD: &str = "ldap-secret-3b8e";
/// The subtree anonymous may not read.
pub const PEOPLE: &str = "ou=people,dc=example,dc=org";

/// A running slapd: its `ldap://` server (the handle that stops it), its `ldaps://` port
/// and the PKI its certificate comes from.
pub struct Slapd {
    /// The server, on its `ldap://` port.
    pub live: Live,
    /// The `ldaps://` port.
    pub ldaps_port: u16,
    /// The PKI (its root signs the server's certificate for `localhost`).
    pub certs: TestCerts,
}

/// Runs `command`, panicking with its output when it fails.
fn run(what: &str, command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Slapd {
    /// Configures, fills and starts a slapd.
    pub fn start() -> Slapd {
        let slapd = require("slapd", "slapd");
        let slapadd = require("slapadd", "slapd");
        let slappasswd = require("slappasswd", "slapd");
        let certs = TestCerts::new("slapd");
        let dir = scratch_dir("slapd");
        let data = dir.join("data");
        fs::create_dir_all(&data).expect("create the data directory");
        let hash = run(
            "slappasswd",
            Command::new(slappasswd).args(["-s", BIND_PASSWORD]),
        );
        let conf = format!(
            "include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile {dir}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile {ca}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
database mdb
maxsize 10485760
suffix \"{SUFFIX}\"
rootdn \"cn=admin,{SUFFIX}\"
directory {data}
access to attrs=userPassword by self read by anonymous auth by * none
access to dn.subtree=\"{PEOPLE}\" by dn.exact=\"{BIND_DN}\" read by * none
access to * by * read
",
            dir = dir.display(),
            ca = certs.ca.display(),
            cert = certs.tls.cert.display(),
            key = certs.tls.key.display(),
            data = data.display(),
        );
        let conf_path = dir.join("slapd.conf");
        fs::write(&conf_path, conf).expect("write slapd.conf");
        let ldif = format!(
            "dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: {BIND_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: monitor
userPassword: {hash}

dn: {PEOPLE}
objectClass: organizationalUnit
ou: people

dn: uid=alice,{PEOPLE}
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: Example

dn: uid=bob,{PEOPLE}
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: Example
",
            hash = hash.trim()
        );
        let ldif_path = dir.join("data.ldif");
        fs::write(&ldif_path, ldif).expect("write data.ldif");
        run(
            "slapadd",
            Command::new(slapadd)
                .arg("-f")
                .arg(&conf_path)
                .arg("-l")
                .arg(&ldif_path),
        );
        let (port, ldaps_port) = (free_port(), free_port());
        let mut command = Command::new(slapd);
        command
            .arg("-f")
            .arg(&conf_path)
            .arg("-h")
            .arg(format!(
                "ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{ldaps_port}/"
            ))
            .args(["-d", "256"]);
        let live = Live::spawn("slapd", command, port, dir);
        Slapd {
            live,
            ldaps_port,
            certs,
        }
    }

    /// How many entries `ldapsearch` finds as `BIND_DN` searching `base` alone.
    pub fn ldapsearch_count(&self, base: &str) -> usize {
        let ldapsearch = require("ldapsearch", "ldap-utils");
        let out = run(
            "ldapsearch",
            Command::new(ldapsearch)
                .arg("-H")
                .arg(format!("ldap://127.0.0.1:{}", self.live.port))
                .args(["-x", "-D", BIND_DN, "-w", BIND_PASSWORD, "-b", base])
                .args(["-s", "base", "-LLL", "1.1"]),
        );
        out.lines().filter(|l| l.starts_with("dn:")).count()
    }
}
