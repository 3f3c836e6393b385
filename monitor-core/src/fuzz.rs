//! Entry points of the coverage-guided fuzz targets in `fuzz/` (feature `fuzz`, off by
//! default; not part of the API). Each feeds bytes that a server or a disk could hold to
//! the code that reads them in production: a recipe's dialog, a STARTTLS dialog and the
//! legacy TLS probe read an in-memory stream on one current-thread runtime per thread,
//! and the agent's buffer is read from files. They check only that nothing panics; the
//! fuzzer adds that nothing hangs and memory stays bounded.
//!
//! Every stream input opens with one options byte (see [`Options`]); the rest is what
//! the server sends, delivered in chunks of the chosen size and then closed.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context as Task, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::engine::SystemClock;
use crate::engine::legacy::{self, LegacyVersion};
use crate::engine::protocol::fuzz::{Conn, Context, Timing, speak};
use crate::engine::starttls::negotiate;
use monitor_spec::{Recipe, StartTls, TcpMonitor};

/// The read chunk sizes bits 1 to 3 of the options byte choose from.
const CHUNKS: [usize; 8] = [1, 2, 3, 7, 16, 64, 1024, usize::MAX];

/// The small response cap bit 5 of the options byte chooses (the spec's default otherwise).
const SMALL_CAP: usize = 200;

/// What the first byte of a stream input chooses.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Bit 0: run the protocol's STARTTLS dialog first (the recipe then continues on the
    /// same bytes, as it would on the TLS stream); for the legacy probe, TLS 1.1.
    pub starttls: bool,
    /// Bits 1 to 3: the most bytes one read returns.
    pub chunk: usize,
    /// Bit 4: steps follow the recipe (no goodbye).
    pub steps_follow: bool,
    /// Bit 5: a response cap of 200 bytes instead of the spec's default.
    pub small_cap: bool,
    /// Bit 6: Redis authenticates with a password (bit 7: and a user name); PostgreSQL and
    /// the other recipes log in; memcached makes its set/get round trip.
    pub password: bool,
    /// Bit 7: Redis names a user and asks ROLE; PostgreSQL may send a cleartext password.
    pub username: bool,
}

impl Options {
    /// The options of `input` and the bytes the server sends.
    pub fn split(input: &[u8]) -> (Options, &[u8]) {
        let (&first, rest) = input.split_first().unwrap_or((&0, &[]));
        let bit = |n: u8| first & (1 << n) != 0;
        let options = Options {
            starttls: bit(0),
            chunk: CHUNKS[usize::from((first >> 1) & 7)],
            steps_follow: bit(4),
            small_cap: bit(5),
            password: bit(6),
            username: bit(7),
        };
        (options, rest)
    }
}

/// A server in memory: reads return `data` in chunks of at most `chunk` bytes, then the
/// end of the stream; writes are accepted and dropped.
struct Feed<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl AsyncRead for Feed<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Task<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.data.len().min(self.chunk).min(buf.remaining());
        let (head, tail) = self.data.split_at(n);
        buf.put_slice(head);
        self.data = tail;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Feed<'_> {
    fn poll_write(self: Pin<&mut Self>, _: &mut Task<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Task<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Task<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Runs `work` on this thread's runtime (current-thread, with timers), made once.
fn block_on<F: Future>(work: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime can be built");
    }
    RUNTIME.with(|runtime| runtime.block_on(work))
}

/// The STARTTLS protocol that goes with a recipe, if it has one.
fn starttls_of(recipe: &Recipe) -> Option<StartTls> {
    recipe.starttls()
}

/// Speaks `recipe` to a server that sends the input (after its options byte): first the
/// recipe's STARTTLS dialog when the options ask for it and the protocol has one, then
/// the recipe, with every error message formatted as the engine would.
pub fn recipe(recipe: &Recipe, input: &[u8]) {
    let (options, server) = Options::split(input);
    let recipe = match recipe {
        Recipe::Redis { .. } => Recipe::Redis {
            password_env: options.password.then(|| "MONITORS_SECRET_REDIS".to_owned()),
            username: options.username.then(|| "monitor".to_owned()),
            role: options.username,
        },
        // With the password option, the PostgreSQL recipe logs in (SASL, md5, queries);
        // with the username option too, it may send a cleartext password without TLS.
        Recipe::Postgres { user, database, .. } => Recipe::Postgres {
            user: user.clone(),
            database: database.clone(),
            login: options.password.then(|| {
                let login = monitor_spec::login::Login::password_env("MONITORS_SECRET_PG");
                if options.username {
                    login.allow_plaintext()
                } else {
                    login
                }
            }),
        },
        // With the password option, the memcached recipe makes its set/get round trip.
        Recipe::Memcached { .. } => Recipe::Memcached {
            key: options.password.then(|| "monitors:fuzz".to_owned()),
        },
        // With the password option, every other recipe that can log in does.
        other if options.password => other.clone().with_login(
            monitor_spec::login::Login::password_env("MONITORS_SECRET_FUZZ")
                .user("monitor")
                .allow_plaintext(),
        ),
        other => other.clone(),
    };
    let spec = TcpMonitor::new("fuzz", "127.0.0.1", 1).recipe(recipe.clone());
    let cap = if options.small_cap {
        SMALL_CAP
    } else {
        spec.max_response_bytes as usize
    };
    let secret = Ok("hunter2".to_owned());
    let mut stream = Feed {
        data: server,
        chunk: options.chunk,
    };
    block_on(async {
        let negotiated = match starttls_of(&recipe).filter(|_| options.starttls) {
            Some(protocol) => match negotiate(&mut stream, protocol, "fuzz.example").await {
                Ok(negotiated) => Some(negotiated),
                Err(e) => {
                    let _ = e.to_string();
                    return;
                }
            },
            None => None,
        };
        let cx = Context {
            spec: &spec,
            secret: Some(&secret),
            upgraded: negotiated.as_ref(),
            steps_follow: options.steps_follow,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 1)),
            server_cert: None,
        };
        // As the engine opens it: a read timeout within a deadline (never reached, since
        // the input never makes a read wait), reads one byte past the cap.
        let timing = Timing {
            read_timeout: Duration::from_secs(10),
            deadline: tokio::time::Instant::now() + Duration::from_secs(60),
        };
        let mut conn = Conn::new(&mut stream, cap).timed(timing, &SystemClock);
        let mut learned = BTreeMap::new();
        if let Err(e) = speak(&recipe, &mut conn, &cx, &mut learned).await {
            let _ = e.to_string();
        }
    });
}

/// Runs the STARTTLS dialog of `protocol` against a server that sends the input (after
/// its options byte), formatting the error as the engine would.
pub fn starttls(protocol: StartTls, input: &[u8]) {
    let (options, server) = Options::split(input);
    let mut stream = Feed {
        data: server,
        chunk: options.chunk,
    };
    block_on(async {
        if let Err(e) = negotiate(&mut stream, protocol, "fuzz.example").await {
            let _ = e.to_string();
        }
    });
}

/// Sends the legacy ClientHello (TLS 1.0, or 1.1 with options bit 0) and classifies the
/// answer the input holds (after its options byte).
pub fn legacy_probe(input: &[u8]) {
    let (options, server) = Options::split(input);
    let version = if options.starttls {
        LegacyVersion::Tls1_1
    } else {
        LegacyVersion::Tls1_0
    };
    let mut stream = Feed {
        data: server,
        chunk: options.chunk,
    };
    block_on(async {
        match legacy::probe(&mut stream, version, Some("fuzz.example")).await {
            Ok(answer) => {
                let _ = answer.is_accepted();
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    });
}

/// Reads an OCSP response (stapled by a server or sent by a responder) and checks it
/// against a fixed leaf and issuer, as the engine does with `tls.ocsp` on.
pub fn ocsp_response(input: &[u8]) {
    crate::engine::tls::ocsp::fuzz_check(input);
}

/// Reads an agent's buffer directory as an agent restarted after a crash would: the
/// input is a cursor file (its length in the first byte, modulo 32) and then up to two
/// segment files separated by a 0xff byte (which UTF-8 never holds). The directory is
/// under the temporary directory (`TMPDIR`), one per process.
#[cfg(feature = "agent")]
pub fn agent_buffer(input: &[u8]) {
    use std::fs;
    use std::path::PathBuf;
    thread_local! {
        static DIR: PathBuf = std::env::temp_dir()
            .join(format!("monitors-fuzz-{}", std::process::id()));
    }
    let (&n, rest) = input.split_first().unwrap_or((&0, &[]));
    let (cursor, segments) = rest.split_at(usize::from(n % 32).min(rest.len()));
    let (first, second) = match segments.iter().position(|b| *b == 0xff) {
        Some(at) => (&segments[..at], Some(&segments[at + 1..])),
        None => (segments, None),
    };
    DIR.with(|dir| {
        let results = dir.join("results");
        let second_path = results.join(format!("{:020}.jsonl", 2));
        let written = fs::create_dir_all(&results)
            .and_then(|()| fs::write(results.join("cursor"), cursor))
            .and_then(|()| fs::write(results.join(format!("{:020}.jsonl", 1)), first))
            .and_then(|()| match second {
                Some(second) => fs::write(&second_path, second),
                None => fs::remove_file(&second_path).or_else(|e| match e.kind() {
                    io::ErrorKind::NotFound => Ok(()),
                    _ => Err(e),
                }),
            });
        if written.is_ok() {
            let _ = crate::runner::agent::buffered_results(dir);
        }
    });
}
