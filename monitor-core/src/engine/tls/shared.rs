//! TLS setups shared by monitors whose TLS settings are the same: a run of many monitors
//! that trust one CA builds the trust anchors, the verifier and the client configuration
//! once, not once per monitor, and a watch keeps one copy of them in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use monitor_spec::spec::{PemSource, TcpMonitor, TlsVersion};

use super::Setup;

/// The setups in use, each found by the settings it was built from. It holds them weakly:
/// a setup lives as long as a monitor keeps it, and its entry is dropped at the next
/// sweep. Bound: dead entries are swept once the map reaches twice its live size (at
/// least [`MIN_SWEEP`]), so it holds at most twice the setups alive, plus [`MIN_SWEEP`].
#[derive(Default)]
pub(crate) struct Shared {
    map: Mutex<Map>,
}

/// The map and the size at which it is swept next.
#[derive(Default)]
struct Map {
    setups: HashMap<Key, Weak<Setup>>,
    sweep_at: usize,
}

/// The smallest size at which dead entries are swept.
const MIN_SWEEP: usize = 64;

impl Shared {
    /// The setup of `spec`'s TLS settings: one already built for the same settings while a
    /// monitor still holds it, or a new one from `build`. Settings that name a file (a CA,
    /// a client certificate or key) are never shared: each monitor reads its files when
    /// its setup is built. A setup that failed is not kept.
    pub fn get_or_build(
        &self,
        spec: &TcpMonitor,
        build: impl FnOnce() -> Result<Setup, String>,
    ) -> Result<Arc<Setup>, String> {
        let Some(key) = Key::of(spec) else {
            return build().map(Arc::new);
        };
        if let Some(setup) = self.lock().setups.get(&key).and_then(Weak::upgrade) {
            return Ok(setup);
        }
        // Built outside the lock: monitors with other settings need not wait for it. Two
        // monitors of one setting that race both build; the second one kept wins.
        let setup = Arc::new(build()?);
        let mut map = self.lock();
        if map.setups.len() >= map.sweep_at {
            map.setups.retain(|_, setup| setup.strong_count() > 0);
            map.sweep_at = (2 * map.setups.len()).max(MIN_SWEEP);
        }
        map.setups.insert(key, Arc::downgrade(&setup));
        Ok(setup)
    }

    /// How many entries the map holds, dead or alive (for tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().setups.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Map> {
        // The map stays whole whatever panicked while it was held: an insert or a sweep.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Everything [`Setup::new`] reads of a monitor, when its certificates and keys are given
/// inline.
#[derive(PartialEq, Eq, Hash)]
struct Key {
    /// `tls.ca`'s PEM text; `None` for the system trust store.
    ca: Option<String>,
    /// `tls.client_cert`'s certificate and key PEM texts.
    client: Option<(String, String)>,
    /// The name verified ([`super::verified_name`]).
    name: String,
    min_version: TlsVersion,
    alpn: Vec<String>,
}

impl Key {
    /// The key of `spec`'s TLS settings; `None` when one of them names a file.
    fn of(spec: &TcpMonitor) -> Option<Key> {
        let inline = |source: &PemSource| match source {
            PemSource::Pem(text) => Some(text.clone()),
            PemSource::Path(_) => None,
        };
        let tls = &spec.tls;
        let ca = match &tls.ca {
            None => None,
            Some(source) => Some(inline(source)?),
        };
        let client = match &tls.client_cert {
            None => None,
            Some(cc) => Some((inline(&cc.cert)?, inline(&cc.key)?)),
        };
        Some(Key {
            ca,
            client,
            name: super::verified_name(spec).to_owned(),
            min_version: tls.min_version,
            alpn: tls.alpn.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use monitor_spec::spec::{ClientCert, Tls};
    use rustls::RootCertStore;

    use super::*;

    /// The texts of a test PKI: its root, and a leaf's certificate and key.
    struct Pems {
        root: String,
        cert: String,
        key: String,
    }

    fn pems() -> Pems {
        let pki = monitor_testing::TestPki::new().expect("test PKI");
        let leaf = pki.leaf_for(&["client"], 30).expect("leaf");
        Pems {
            root: pki.root_pem(),
            cert: leaf.cert_pem,
            key: leaf.key_pem,
        }
    }

    /// A TLS monitor of `host`, on a port of its own, with `change` made to its settings.
    fn monitor(port: u16, host: &str, change: impl FnOnce(&mut Tls)) -> TcpMonitor {
        TcpMonitor::new(format!("m-{port}"), host, port)
            .tls_direct()
            .tls_with(change)
    }

    /// Builds `spec`'s setup as the engine does, reading a `Path` source as the text of
    /// its field in `pems`; counts the builds.
    fn setup(shared: &Shared, spec: &TcpMonitor, pems: &Pems, builds: &Cell<usize>) -> Arc<Setup> {
        shared
            .get_or_build(spec, || {
                builds.set(builds.get() + 1);
                let mut system = RootCertStore::empty();
                let root = crate::engine::tls::parse_certs(&pems.root).expect("root");
                system.add_parsable_certificates(root);
                Setup::new(
                    spec,
                    || Arc::new(system),
                    |field, source| match (source, field) {
                        (PemSource::Pem(text), _) => Ok(text.clone()),
                        (PemSource::Path(_), "tls.client_cert.cert") => Ok(pems.cert.clone()),
                        (PemSource::Path(_), "tls.client_cert.key") => Ok(pems.key.clone()),
                        (PemSource::Path(_), _) => Ok(pems.root.clone()),
                    },
                )
            })
            .expect("setup")
    }

    /// Whether the second monitor gets the first one's setup, and how many were built.
    fn check(first: &TcpMonitor, second: &TcpMonitor, pems: &Pems, shared_expected: bool) {
        let (shared, builds) = (Shared::default(), Cell::new(0));
        let a = setup(&shared, first, pems, &builds);
        let b = setup(&shared, second, pems, &builds);
        assert_eq!(
            Arc::ptr_eq(&a, &b),
            shared_expected,
            "{:?} and {:?}",
            first.tls,
            second.tls
        );
        assert_eq!(builds.get(), if shared_expected { 1 } else { 2 });
    }

    #[test]
    fn monitors_share_a_setup_only_when_their_inline_settings_are_the_same() {
        let pems = pems();
        let inline = |t: &mut Tls| t.ca = Some(PemSource::Pem(pems.root.clone()));
        let named = |name: &str| {
            let name = name.to_owned();
            let ca = pems.root.clone();
            move |t: &mut Tls| {
                t.ca = Some(PemSource::Pem(ca));
                t.server_name = Some(name);
            }
        };
        let client = |key: PemSource| {
            let (ca, cert) = (pems.root.clone(), pems.cert.clone());
            move |t: &mut Tls| {
                t.ca = Some(PemSource::Pem(ca));
                t.client_cert = Some(ClientCert {
                    cert: PemSource::Pem(cert),
                    key,
                });
            }
        };
        let key = PemSource::Pem(pems.key.clone());
        let cases: Vec<(TcpMonitor, TcpMonitor, bool)> = vec![
            // The same CA and host, other ids and ports.
            (monitor(1, "db", inline), monitor(2, "db", inline), true),
            // The system store.
            (monitor(1, "db", |_| {}), monitor(2, "db", |_| {}), true),
            // The same server name, other hosts.
            (
                monitor(1, "a", named("db")),
                monitor(2, "b", named("db")),
                true,
            ),
            (
                monitor(1, "db", named("a")),
                monitor(2, "db", named("b")),
                false,
            ),
            (monitor(1, "a", inline), monitor(2, "b", inline), false),
            (
                monitor(1, "db", inline),
                monitor(2, "db", |t| {
                    inline(t);
                    t.min_version = TlsVersion::Tls13;
                }),
                false,
            ),
            (
                monitor(1, "db", inline),
                monitor(2, "db", |t| {
                    inline(t);
                    t.alpn = vec!["h2".to_owned()];
                }),
                false,
            ),
            (monitor(1, "db", inline), monitor(2, "db", |_| {}), false),
            (
                monitor(1, "db", client(key.clone())),
                monitor(2, "db", client(key.clone())),
                true,
            ),
            (
                monitor(1, "db", client(key)),
                monitor(2, "db", inline),
                false,
            ),
            // A file is read for each monitor, even the same file.
            (
                monitor(1, "db", |t| {
                    t.ca = Some(PemSource::Path("/ca.pem".to_owned()))
                }),
                monitor(2, "db", |t| {
                    t.ca = Some(PemSource::Path("/ca.pem".to_owned()))
                }),
                false,
            ),
            (
                monitor(1, "db", client(PemSource::Path("/key.pem".to_owned()))),
                monitor(2, "db", client(PemSource::Path("/key.pem".to_owned()))),
                false,
            ),
        ];
        for (first, second, shared) in &cases {
            check(first, second, &pems, *shared);
        }
    }

    #[test]
    fn a_setup_no_monitor_holds_is_built_again_and_its_entry_swept() {
        let pems = pems();
        let (shared, builds) = (Shared::default(), Cell::new(0));
        let spec = monitor(1, "db", |t| t.ca = Some(PemSource::Pem(pems.root.clone())));
        drop(setup(&shared, &spec, &pems, &builds));
        drop(setup(&shared, &spec, &pems, &builds));
        assert_eq!(builds.get(), 2);
        // Setups of many names, each dropped at once: the map never holds more than the
        // sweep's floor, plus the one just put in.
        for i in 0..5 * MIN_SWEEP {
            let name = format!("host-{i}");
            let spec = monitor(1, &name, |t| t.ca = Some(PemSource::Pem(pems.root.clone())));
            drop(setup(&shared, &spec, &pems, &builds));
            assert!(shared.len() <= MIN_SWEEP + 1, "{} entries", shared.len());
        }
    }

    #[test]
    fn a_setup_that_failed_is_not_kept() {
        let (shared, builds) = (Shared::default(), Cell::new(0));
        let spec = monitor(1, "db", |t| {
            t.ca = Some(PemSource::Pem("not PEM".to_owned()))
        });
        for _ in 0..2 {
            let got = shared.get_or_build(&spec, || {
                builds.set(builds.get() + 1);
                Err("tls.ca: no certificate".to_owned())
            });
            assert_eq!(got.err().as_deref(), Some("tls.ca: no certificate"));
        }
        assert_eq!(builds.get(), 2);
    }
}
