//! A network path with a known delay and chosen losses, for tests of what the kernel
//! measures (the kernel here has no netem): a client and a server namespace joined through
//! a relay namespace whose threads move frames between two veths with packet sockets,
//! holding each for a set delay and dropping the first data segments the client sends.
//!
//! Needs root (`ip netns`, from the Debian package iproute2; raw sockets; `setns`).
//! Everything made is removed on drop: deleting a namespace deletes its veths.

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The client's address in its namespace.
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 18, 0, 1);
/// The server's address in its namespace.
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 18, 0, 2);

/// The largest frame the relay moves: a GSO frame of 64 KiB and its headers.
const MAX_FRAME: usize = 65_536 + 256;

/// How often a relay thread looks whether it should stop.
const POLL: Duration = Duration::from_millis(50);

/// The most frames held at once in each direction; more are dropped, as a full queue would.
const MAX_HELD: usize = 4_096;

/// Namespaces made by this process so far, for unique names.
static MADE: AtomicUsize = AtomicUsize::new(0);

/// What the relay does to frames.
#[derive(Debug, Clone, Copy, Default)]
pub struct PathConfig {
    /// How long each frame is held, each way.
    pub delay: Duration,
    /// How many of the client's first TCP segments carrying data are dropped.
    pub drop_client_data: usize,
}

/// A client and a server namespace joined by a relay (see the module docs).
pub struct DelayedPath {
    client: String,
    server: String,
    relay: String,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    dropped: Arc<AtomicUsize>,
}

/// Why the path could not be made.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// `ip` failed or is missing.
    #[error("ip {args}: {why}")]
    Ip {
        /// Its arguments.
        args: String,
        /// What it said.
        why: String,
    },
    /// A system call failed.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: io::Error,
    },
}

fn ip(args: &[&str]) -> Result<String, NetnsError> {
    let failed = |why: String| NetnsError::Ip {
        args: args.join(" "),
        why,
    };
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| failed(e.to_string()))?;
    if !out.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn sys(what: &'static str) -> impl FnOnce(io::Error) -> NetnsError {
    move |source| NetnsError::Sys { what, source }
}

/// Moves the calling thread into the named namespace.
fn enter(name: &str) -> Result<(), NetnsError> {
    let ns = File::open(format!("/run/netns/{name}")).map_err(sys("opening the namespace"))?;
    monitor_sys::enter_net_namespace(ns.as_fd()).map_err(sys("setns"))
}

impl DelayedPath {
    /// Makes the three namespaces, their veths and addresses, and starts the relay.
    pub fn new(config: PathConfig) -> Result<Self, NetnsError> {
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let base = format!("mt{}-{n}", std::process::id());
        let mut path = DelayedPath {
            client: format!("{base}-client"),
            server: format!("{base}-server"),
            relay: format!("{base}-relay"),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
            dropped: Arc::new(AtomicUsize::new(0)),
        };
        // Dropping `path` on an error below removes whatever was made.
        for ns in [&path.client, &path.server, &path.relay] {
            ip(&["netns", "add", ns])?;
        }
        let (c, s, r) = (&path.client, &path.server, &path.relay);
        ip(&[
            "link", "add", "c0", "netns", c, "type", "veth", "peer", "name", "rc", "netns", r,
        ])?;
        ip(&[
            "link", "add", "s0", "netns", s, "type", "veth", "peer", "name", "rs", "netns", r,
        ])?;
        ip(&[
            "-n",
            c,
            "addr",
            "add",
            &format!("{CLIENT_IP}/24"),
            "dev",
            "c0",
        ])?;
        ip(&[
            "-n",
            s,
            "addr",
            "add",
            &format!("{SERVER_IP}/24"),
            "dev",
            "s0",
        ])?;
        for (ns, dev) in [
            (c, "c0"),
            (c, "lo"),
            (s, "s0"),
            (s, "lo"),
            (r, "rc"),
            (r, "rs"),
        ] {
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        // Static neighbours: no ARP exchange (delayed too) before the first SYN.
        let (c_mac, s_mac) = (mac(c, "c0")?, mac(s, "s0")?);
        let (cip, sip) = (CLIENT_IP.to_string(), SERVER_IP.to_string());
        ip(&[
            "-n",
            c,
            "neigh",
            "replace",
            &sip,
            "lladdr",
            &s_mac,
            "dev",
            "c0",
            "nud",
            "permanent",
        ])?;
        ip(&[
            "-n",
            s,
            "neigh",
            "replace",
            &cip,
            "lladdr",
            &c_mac,
            "dev",
            "s0",
            "nud",
            "permanent",
        ])?;
        let rc = ifindex(r, "rc")?;
        let rs = ifindex(r, "rs")?;
        let relay = r.clone();
        let sockets = std::thread::scope(|scope| {
            scope
                .spawn(|| -> Result<(OwnedFd, OwnedFd), NetnsError> {
                    enter(&relay)?;
                    let open =
                        |i| monitor_sys::packet_socket(i, POLL).map_err(sys("packet socket"));
                    Ok((open(rc)?, open(rs)?))
                })
                .join()
                .unwrap_or_else(|_| {
                    Err(NetnsError::Sys {
                        what: "the relay's setup thread",
                        source: io::Error::other("panicked"),
                    })
                })
        })?;
        let (rc, rs) = (Arc::new(sockets.0), Arc::new(sockets.1));
        path.direction(
            rc.clone(),
            rs.clone(),
            config.delay,
            config.drop_client_data,
        );
        path.direction(rs, rc, config.delay, 0);
        Ok(path)
    }

    /// Starts the two threads of one direction: one receives and stamps frames, dropping
    /// the first `drop_data` TCP segments with data, the other sends each `delay` after it
    /// arrived.
    fn direction(
        &mut self,
        from: Arc<OwnedFd>,
        to: Arc<OwnedFd>,
        delay: Duration,
        drop_data: usize,
    ) {
        let (tx, rx) = mpsc::sync_channel::<(Instant, Vec<u8>)>(MAX_HELD);
        let (stop, dropped) = (self.stop.clone(), self.dropped.clone());
        self.threads.push(std::thread::spawn(move || {
            // Best effort: without it, a busy machine delays frames by its wake-up latency.
            let _ = monitor_sys::run_realtime();
            let mut buf = vec![0u8; MAX_FRAME];
            let mut to_drop = drop_data;
            while !stop.load(Ordering::Relaxed) {
                let n = match monitor_sys::recv(from.as_fd(), &mut buf) {
                    Ok(n) => n,
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock
                                | io::ErrorKind::TimedOut
                                | io::ErrorKind::Interrupted
                        ) =>
                    {
                        continue;
                    }
                    Err(_) => return,
                };
                let at = Instant::now();
                let frame = buf.get(..n).unwrap_or_default();
                if to_drop > 0 && tcp_payload(frame).is_some_and(|len| len > 0) {
                    to_drop -= 1;
                    dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                // A full queue drops the frame, as a full router queue would.
                let _ = tx.try_send((at, frame.to_vec()));
            }
        }));
        self.threads.push(std::thread::spawn(move || {
            let _ = monitor_sys::run_realtime();
            for (at, frame) in rx {
                let due = at + delay;
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                let _ = monitor_sys::send(to.as_fd(), &frame);
            }
        }));
    }

    /// How many frames the relay dropped on purpose so far.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Runs `work` on a new thread inside the client's namespace: sockets it makes (a
    /// tokio runtime it builds, say) live there. The thread's result is `work`'s, or why
    /// it could not enter the namespace (then `work` does not run).
    pub fn in_client<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<Result<T, NetnsError>> {
        in_namespace(&self.client, work)
    }

    /// Runs `work` on a new thread inside the server's namespace, as [`Self::in_client`].
    pub fn in_server<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<Result<T, NetnsError>> {
        in_namespace(&self.server, work)
    }
}

/// `work` on a new thread that entered the namespace `name` first.
fn in_namespace<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<Result<T, NetnsError>> {
    let name = name.to_owned();
    std::thread::spawn(move || {
        enter(&name)?;
        Ok(work())
    })
}

/// The index of `dev` in namespace `ns`.
fn ifindex(ns: &str, dev: &str) -> Result<u32, NetnsError> {
    let out = ip(&["-n", ns, "-o", "link", "show", dev])?;
    out.split(':')
        .next()
        .and_then(|i| i.trim().parse().ok())
        .ok_or_else(|| NetnsError::Ip {
            args: format!("-n {ns} -o link show {dev}"),
            why: format!("no index in `{}`", out.trim()),
        })
}

/// The Ethernet address of `dev` in namespace `ns`.
fn mac(ns: &str, dev: &str) -> Result<String, NetnsError> {
    let out = ip(&["-n", ns, "-o", "link", "show", dev])?;
    let mut words = out.split_whitespace();
    words
        .find(|w| *w == "link/ether")
        .and_then(|_| words.next())
        .map(str::to_owned)
        .ok_or_else(|| NetnsError::Ip {
            args: format!("-n {ns} -o link show {dev}"),
            why: format!("no link/ether in `{}`", out.trim()),
        })
}

/// The TCP payload length of a frame read from a packet socket (a virtio-net header, then
/// Ethernet and IPv4), or `None` when it is not TCP over IPv4.
fn tcp_payload(frame: &[u8]) -> Option<usize> {
    let eth = frame.get(monitor_sys::VNET_HDR_LEN..)?;
    if eth.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip4 = eth.get(14..)?;
    let ihl = usize::from(ip4.first()? & 0x0f) * 4;
    if *ip4.get(9)? != 6 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([*ip4.get(2)?, *ip4.get(3)?]));
    let doff = usize::from(ip4.get(ihl + 12)? >> 4) * 4;
    total.checked_sub(ihl + doff)
}

impl Drop for DelayedPath {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Receivers stop within POLL; senders when their receiver is gone.
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        for ns in [&self.client, &self.server, &self.relay] {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// Whether this process can make the path: root, with `ip` from iproute2.
pub fn available() -> bool {
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    });
    root && Command::new("ip")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}
