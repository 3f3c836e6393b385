//! Loopback servers for testing monitors like code: a [`ScriptedServer`] that plays a
//! [`Script`] to every connection, a port that refuses, and a port whose handshake never
//! completes.
//!
//! ```no_run
//! use monitor_core::prelude::*;
//! use monitor_core::testing::{Script, ScriptedServer};
//!
//! # async fn demo() -> std::io::Result<()> {
//! let server = ScriptedServer::start(Script::new().expect("PING\r\n").send("+PONG\r\n")).await?;
//! let monitor = TcpMonitor::new("redis", "127.0.0.1", server.port())
//!     .send("PING\\r\\n")
//!     .expect("+PONG")
//!     .validate()
//!     .expect("valid monitor");
//! assert_eq!(Engine::new().check(&monitor).await.status, Status::Passed);
//! # Ok(())
//! # }
//! ```

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// One thing a scripted server does on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes.
    Send(Vec<u8>),
    /// Read until these bytes have arrived (the connection ends if the client closes).
    Expect(Vec<u8>),
    /// Wait.
    Sleep(Duration),
    /// Write these bytes one at a time, waiting between them.
    Drip(Vec<u8>, Duration),
    /// Write without end until the client goes away.
    Flood,
    /// Echo every byte back until the client closes.
    Echo,
    /// Close the connection (FIN).
    Close,
    /// Reset the connection (RST).
    Reset,
}

/// What a scripted server does on each connection, in order. When the script ends without
/// closing, the server keeps the connection open until the client closes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script(pub Vec<Action>);

impl Script {
    /// An empty script: accept and wait for the client to close.
    pub fn new() -> Self {
        Script(Vec::new())
    }
    fn then(mut self, action: Action) -> Self {
        self.0.push(action);
        self
    }
    /// Writes bytes.
    pub fn send(self, bytes: impl AsRef<[u8]>) -> Self {
        self.then(Action::Send(bytes.as_ref().to_vec()))
    }
    /// Reads until the bytes have arrived.
    pub fn expect(self, bytes: impl AsRef<[u8]>) -> Self {
        self.then(Action::Expect(bytes.as_ref().to_vec()))
    }
    /// Waits.
    pub fn sleep(self, duration: Duration) -> Self {
        self.then(Action::Sleep(duration))
    }
    /// Writes bytes one at a time with a pause between them.
    pub fn drip(self, bytes: impl AsRef<[u8]>, every: Duration) -> Self {
        self.then(Action::Drip(bytes.as_ref().to_vec(), every))
    }
    /// Writes without end.
    pub fn flood(self) -> Self {
        self.then(Action::Flood)
    }
    /// Echoes until the client closes.
    pub fn echo(self) -> Self {
        self.then(Action::Echo)
    }
    /// Closes the connection.
    pub fn close(self) -> Self {
        self.then(Action::Close)
    }
    /// Resets the connection.
    pub fn reset(self) -> Self {
        self.then(Action::Reset)
    }
}

/// A server on loopback that plays a script to every connection. Stops when dropped.
#[derive(Debug)]
pub struct ScriptedServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl ScriptedServer {
    /// Starts on 127.0.0.1 on a free port.
    pub async fn start(script: Script) -> io::Result<Self> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), script).await
    }

    /// Starts on the given address (port 0 for a free one), for example `[::1]:0`.
    pub async fn start_on(addr: SocketAddr, script: Script) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        let script = Arc::new(script);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let script = script.clone();
                tokio::spawn(async move {
                    // A client going away mid-script is normal for a test server.
                    let _ = play(stream, &script).await;
                });
            }
        });
        Ok(ScriptedServer {
            addr,
            connections,
            task,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// How many connections it has accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn play(mut stream: TcpStream, script: &Script) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut seen = Vec::new();
    for action in &script.0 {
        match action {
            Action::Send(bytes) => stream.write_all(bytes).await?,
            Action::Expect(want) => loop {
                if let Some(at) = memchr::memmem::find(&seen, want) {
                    seen.drain(..at + want.len());
                    break;
                }
                let mut buf = [0u8; 4096];
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    return Ok(());
                }
                seen.extend_from_slice(&buf[..n]);
            },
            Action::Sleep(d) => tokio::time::sleep(*d).await,
            Action::Drip(bytes, every) => {
                for b in bytes {
                    stream.write_all(&[*b]).await?;
                    tokio::time::sleep(*every).await;
                }
            }
            Action::Flood => {
                let chunk = [b'x'; 8192];
                loop {
                    stream.write_all(&chunk).await?;
                }
            }
            Action::Echo => {
                let mut buf = [0u8; 4096];
                loop {
                    let n = stream.read(&mut buf).await?;
                    if n == 0 {
                        return Ok(());
                    }
                    stream.write_all(&buf[..n]).await?;
                }
            }
            Action::Close => {
                stream.shutdown().await?;
                return Ok(());
            }
            Action::Reset => {
                stream.set_zero_linger()?;
                drop(stream);
                return Ok(());
            }
        }
    }
    // Hold the connection until the client closes it.
    let mut buf = [0u8; 4096];
    while stream.read(&mut buf).await? > 0 {}
    Ok(())
}

/// A loopback port on which nothing listens: connecting is refused.
pub fn refusing_port() -> io::Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// A loopback listener whose accept queue is full, so a new connection's handshake never
/// completes and connecting times out. Keeps its filler connections while alive.
#[derive(Debug)]
pub struct Unresponsive {
    addr: SocketAddr,
    _listener: TcpListener,
    _fillers: Vec<TcpStream>,
}

impl Unresponsive {
    /// Binds on 127.0.0.1 with the smallest backlog and fills it.
    pub async fn start() -> io::Result<Self> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Binds on the given address with the smallest backlog and fills it.
    pub async fn start_on(addr: SocketAddr) -> io::Result<Self> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.bind(addr)?;
        let listener = socket.listen(0)?;
        let addr = listener.local_addr()?;
        let mut fillers = Vec::new();
        // Connect until one handshake stalls: the queue is then full.
        for _ in 0..16 {
            match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
                Ok(Ok(s)) => fillers.push(s),
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Ok(Unresponsive {
                        addr,
                        _listener: listener,
                        _fillers: fillers,
                    });
                }
            }
        }
        Err(io::Error::other("the accept queue never filled up"))
    }

    /// The address whose handshake never completes.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}
