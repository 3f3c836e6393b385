//! A small Chrome DevTools Protocol driver for page tests: it launches Debian's headless
//! Chromium, opens pages at a width, reads the DOM, runs scripts, submits forms and saves
//! full-page screenshots; [`non_blank`] checks a screenshot shows something.
//!
//! The browser listens for DevTools on a loopback port it picks itself
//! (`--remote-debugging-port=0`); the driver reads the address from Chromium's standard
//! error and speaks JSON over one websocket, to one page (a flat session). Every wait is
//! bounded by [`WAIT`] and says what it waited for; the browser is stopped on drop.
//!
//! ```no_run
//! use monitor_testing::browser::{Browser, non_blank, screenshot_dir};
//!
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let mut browser = Browser::launch()?;
//! let page = browser.open("http://127.0.0.1:8080/", 375)?;
//! assert_eq!(page.status, 200);
//! assert!(browser.html()?.contains("<table"));
//! let shot = screenshot_dir().join("overview-375.png");
//! browser.screenshot(&shot)?;
//! non_blank(&shot)?;
//! # Ok(())
//! # }
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, BufRead, BufReader};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// Where Debian's package `chromium` installs the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The longest any single wait of the driver lasts.
pub const WAIT: Duration = Duration::from_secs(30);

/// The height of the viewport; screenshots still cover the whole page.
const VIEWPORT_HEIGHT: u32 = 900;

/// The tallest screenshot taken, in CSS pixels.
const MAX_SHOT_HEIGHT: f64 = 16_384.0;

/// How many of Chromium's last standard error lines an error quotes.
const STDERR_LINES: usize = 20;

/// What went wrong driving the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrowserError {
    /// The browser is not installed at this path.
    NotInstalled(PathBuf),
    /// A wait ran out; the text names what was awaited.
    Timeout(String),
    /// Anything else: launching, the protocol, a failed command or script, a file.
    Failed(String),
}

impl fmt::Display for BrowserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrowserError::NotInstalled(path) => write!(
                f,
                "chromium not found at {}: install the debian package chromium (apt-get install chromium)",
                path.display()
            ),
            BrowserError::Timeout(what) => {
                write!(f, "timed out after {}s {what}", WAIT.as_secs())
            }
            BrowserError::Failed(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for BrowserError {}

fn failed(message: impl Into<String>) -> BrowserError {
    BrowserError::Failed(message.into())
}

/// The main document a navigation ended on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Navigation {
    /// The HTTP status of the final document (after redirects); 0 when it did not come
    /// over HTTP (`about:`, `data:`).
    pub status: u16,
    /// The URL of the final document.
    pub url: String,
}

/// A headless Chromium with one page, stopped on drop.
pub struct Browser {
    child: Child,
    profile: PathBuf,
    socket: WebSocket<TcpStream>,
    session: String,
    frame: String,
    next_id: u64,
    events: VecDeque<Value>,
    width: u32,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl fmt::Debug for Browser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Browser")
            .field("pid", &self.child.id())
            .field("profile", &self.profile)
            .field("width", &self.width)
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// Launches Debian's Chromium ([`CHROMIUM`], or the program named by the environment
    /// variable `MONITOR_TESTING_CHROMIUM`) headless with a fresh profile and one blank page
    /// 1280 pixels wide. It takes any HTTPS certificate (tests serve ones of a test PKI)
    /// and uses no proxy.
    pub fn launch() -> Result<Browser, BrowserError> {
        let program = std::env::var_os("MONITOR_TESTING_CHROMIUM")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(CHROMIUM));
        Browser::launch_with(&program)
    }

    /// Launches the Chromium at `program`.
    pub fn launch_with(program: &Path) -> Result<Browser, BrowserError> {
        if !program.is_file() {
            return Err(BrowserError::NotInstalled(program.to_path_buf()));
        }
        let profile = fresh_profile_dir()
            .map_err(|e| failed(format!("cannot create a browser profile directory: {e}")))?;
        let mut child = match Command::new(program)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-dev-shm-usage",
                "--no-proxy-server",
                "--hide-scrollbars",
                // Tests serve HTTPS with certificates of a throwaway test PKI.
                "--ignore-certificate-errors",
                "--mute-audio",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&profile);
                return Err(failed(format!("cannot start {}: {e}", program.display())));
            }
        };
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let (found, endpoint) = mpsc::channel();
        if let Some(pipe) = child.stderr.take() {
            let lines = Arc::clone(&stderr);
            std::thread::spawn(move || read_stderr(pipe, lines, found));
        }
        let url = match endpoint.recv_timeout(WAIT) {
            Ok(url) => url,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_dir_all(&profile);
                let why = match e {
                    mpsc::RecvTimeoutError::Timeout => "it did not announce its DevTools address",
                    mpsc::RecvTimeoutError::Disconnected => "it exited before listening",
                };
                return Err(failed(format!(
                    "chromium did not start: {why}; its last output: {}",
                    last_lines(&stderr)
                )));
            }
        };
        let socket = match connect(&url) {
            Ok(socket) => socket,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_dir_all(&profile);
                return Err(e);
            }
        };
        let mut browser = Browser {
            child,
            profile,
            socket,
            session: String::new(),
            frame: String::new(),
            next_id: 0,
            events: VecDeque::new(),
            width: 1280,
            stderr,
        };
        browser.attach()?;
        Ok(browser)
    }

    /// Opens a page target, attaches to it and turns on the events the driver waits for.
    fn attach(&mut self) -> Result<(), BrowserError> {
        let target = self.call_browser("Target.createTarget", json!({"url": "about:blank"}))?;
        let target_id = string_at(&target, "/targetId", "Target.createTarget")?;
        let attached = self.call_browser(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        )?;
        self.session = string_at(&attached, "/sessionId", "Target.attachToTarget")?;
        self.call("Page.enable", json!({}))?;
        self.call("Network.enable", json!({}))?;
        self.call("Runtime.enable", json!({}))?;
        let tree = self.call("Page.getFrameTree", json!({}))?;
        self.frame = string_at(&tree, "/frameTree/frame/id", "Page.getFrameTree")?;
        self.set_width(self.width)
    }

    /// The process id of the browser.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The current viewport width in CSS pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Sets the viewport width (CSS pixels, device scale 1) for what follows.
    pub fn set_width(&mut self, width: u32) -> Result<(), BrowserError> {
        if width == 0 || width > 10_000 {
            return Err(failed(format!(
                "a viewport width of {width} is out of range"
            )));
        }
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": VIEWPORT_HEIGHT, "deviceScaleFactor": 1, "mobile": false}),
        )?;
        self.width = width;
        Ok(())
    }

    /// Emulates `prefers-color-scheme: dark` (true) or `light` (false) for what follows.
    pub fn prefers_dark(&mut self, dark: bool) -> Result<(), BrowserError> {
        let value = if dark { "dark" } else { "light" };
        self.call(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": value}]}),
        )?;
        Ok(())
    }

    /// Navigates to `url` with a viewport `width` pixels wide and waits for the load event;
    /// returns the status and URL of the final document (redirects are followed).
    pub fn open(&mut self, url: &str, width: u32) -> Result<Navigation, BrowserError> {
        self.set_width(width)?;
        self.events.clear();
        let started = Instant::now();
        let navigated = self.call("Page.navigate", json!({"url": url}))?;
        if let Some(error) = navigated.get("errorText").and_then(Value::as_str)
            && !error.is_empty()
        {
            return Err(failed(format!("opening {url} failed: {error}")));
        }
        self.wait_load(started, &format!("waiting for {url} to load"))
    }

    /// The document as HTML (`document.documentElement.outerHTML`).
    pub fn html(&mut self) -> Result<String, BrowserError> {
        match self.eval("document.documentElement.outerHTML")? {
            Value::String(html) => Ok(html),
            other => Err(failed(format!("the document has no html: {other}"))),
        }
    }

    /// Evaluates a script expression in the page (promises are awaited) and returns its
    /// value as JSON (`null` for `undefined` and values JSON cannot hold).
    pub fn eval(&mut self, script: &str) -> Result<Value, BrowserError> {
        let answer = self.call(
            "Runtime.evaluate",
            json!({"expression": script, "returnByValue": true, "awaitPromise": true}),
        )?;
        if let Some(details) = answer.get("exceptionDetails") {
            let message = details
                .pointer("/exception/description")
                .and_then(Value::as_str)
                .or_else(|| details.get("text").and_then(Value::as_str))
                .unwrap_or("an exception");
            return Err(failed(format!("the script failed: {message}")));
        }
        Ok(answer
            .pointer("/result/value")
            .cloned()
            .unwrap_or(Value::Null))
    }

    /// Fills the inputs of the page's first form (by name) and submits it as a user would
    /// (`requestSubmit`), then waits for the page it leads to and returns it.
    pub fn submit_form(&mut self, fields: &[(&str, &str)]) -> Result<Navigation, BrowserError> {
        let fields: Vec<Value> = fields
            .iter()
            .map(|(name, value)| json!([name, value]))
            .collect();
        let script = format!(
            "(function (fields) {{
                const form = document.forms[0];
                if (!form) return 'the page has no form';
                for (const [name, value] of fields) {{
                    const input = form.elements.namedItem(name);
                    if (!input) return 'the form has no input named ' + name;
                    input.value = value;
                }}
                setTimeout(() => form.requestSubmit ? form.requestSubmit() : form.submit(), 0);
                return '';
            }})({})",
            Value::Array(fields)
        );
        self.events.clear();
        let started = Instant::now();
        match self.eval(&script)? {
            Value::String(problem) if problem.is_empty() => {}
            Value::String(problem) => return Err(failed(problem)),
            other => return Err(failed(format!("filling the form answered {other}"))),
        }
        self.wait_load(
            started,
            "waiting for the page after submitting the form (did its validation stop it?)",
        )
    }

    /// Saves a PNG of the whole page (beyond the viewport) at the current width.
    pub fn screenshot(&mut self, path: &Path) -> Result<(), BrowserError> {
        let metrics = self.call("Page.getLayoutMetrics", json!({}))?;
        let size = metrics
            .get("cssContentSize")
            .or_else(|| metrics.get("contentSize"))
            .ok_or_else(|| failed("Page.getLayoutMetrics answered no content size"))?;
        let height = size.get("height").and_then(Value::as_f64).unwrap_or(0.0);
        let width = size.get("width").and_then(Value::as_f64).unwrap_or(0.0);
        let width = width.max(f64::from(self.width)).ceil();
        let height = height.clamp(1.0, MAX_SHOT_HEIGHT).ceil();
        let shot = self.call(
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            }),
        )?;
        let data = string_at(&shot, "/data", "Page.captureScreenshot")?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_bytes())
            .map_err(|e| failed(format!("the screenshot is not base64: {e}")))?;
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| failed(format!("cannot create {}: {e}", parent.display())))?;
        }
        std::fs::write(path, png)
            .map_err(|e| failed(format!("cannot write {}: {e}", path.display())))
    }

    /// Waits until the main frame has loaded a document and returns its status and URL:
    /// the last document response of the main frame before its load event.
    fn wait_load(&mut self, started: Instant, what: &str) -> Result<Navigation, BrowserError> {
        let deadline = started + WAIT;
        let mut document: Option<Navigation> = None;
        loop {
            let event = self.next_event(deadline, what)?;
            let params = event.get("params").cloned().unwrap_or(Value::Null);
            match event.get("method").and_then(Value::as_str) {
                Some("Network.responseReceived")
                    if params.get("type").and_then(Value::as_str) == Some("Document")
                        && params.get("frameId").and_then(Value::as_str) == Some(&self.frame) =>
                {
                    let status = params.pointer("/response/status").and_then(Value::as_f64);
                    let url = params.pointer("/response/url").and_then(Value::as_str);
                    document = Some(Navigation {
                        status: status.map(|s| s as u16).unwrap_or(0),
                        url: url.unwrap_or_default().to_string(),
                    });
                }
                Some("Network.loadingFailed")
                    if params.get("type").and_then(Value::as_str) == Some("Document")
                        && params.get("canceled").and_then(Value::as_bool) != Some(true) =>
                {
                    let error = params
                        .get("errorText")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    return Err(failed(format!("loading the page failed: {error}")));
                }
                Some("Page.loadEventFired") => {
                    let url = self.eval("location.href")?;
                    return Ok(document.unwrap_or(Navigation {
                        status: 0,
                        url: url.as_str().unwrap_or_default().to_string(),
                    }));
                }
                _ => {}
            }
        }
    }

    /// The next event of the page, from the queue or the socket.
    fn next_event(&mut self, deadline: Instant, what: &str) -> Result<Value, BrowserError> {
        if let Some(event) = self.events.pop_front() {
            return Ok(event);
        }
        loop {
            let message = self.read(deadline, what)?;
            if message.get("method").is_some() && message.get("id").is_none() {
                return Ok(message);
            }
        }
    }

    /// Sends a command to the page and returns its result.
    fn call(&mut self, method: &str, params: Value) -> Result<Value, BrowserError> {
        let session = self.session.clone();
        self.command(Some(&session), method, params)
    }

    /// Sends a command to the browser itself and returns its result.
    fn call_browser(&mut self, method: &str, params: Value) -> Result<Value, BrowserError> {
        self.command(None, method, params)
    }

    fn command(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, BrowserError> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = Value::from(session);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .map_err(|e| self.lost(&format!("sending {method}"), &e.to_string()))?;
        let deadline = Instant::now() + WAIT;
        let what = format!("waiting for the answer to {method}");
        loop {
            let message = self.read(deadline, &what)?;
            if message.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(error) = message.get("error") {
                    let text = error.get("message").and_then(Value::as_str).unwrap_or("");
                    return Err(failed(format!("{method} failed: {text}")));
                }
                return Ok(message.get("result").cloned().unwrap_or(Value::Null));
            }
            if message.get("method").is_some() && message.get("id").is_none() {
                self.events.push_back(message);
            }
        }
    }

    /// Reads one JSON message from the socket before the deadline.
    fn read(&mut self, deadline: Instant, what: &str) -> Result<Value, BrowserError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(BrowserError::Timeout(what.to_string()));
            }
            let _ = self
                .socket
                .get_mut()
                .set_read_timeout(Some(left.max(Duration::from_millis(1))));
            match self.socket.read() {
                Ok(Message::Text(text)) => {
                    return serde_json::from_str(text.as_str())
                        .map_err(|e| failed(format!("chromium sent invalid json: {e}")));
                }
                Ok(Message::Close(_)) => return Err(self.lost(what, "the connection closed")),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(self.lost(what, &e.to_string())),
            }
        }
    }

    /// An error for a broken DevTools connection, with the browser's last words.
    fn lost(&mut self, what: &str, why: &str) -> BrowserError {
        let exited = match self.child.try_wait() {
            Ok(Some(status)) => format!(" (chromium exited: {status})"),
            _ => String::new(),
        };
        failed(format!(
            "lost chromium {what}: {why}{exited}; its last output: {}",
            last_lines(&self.stderr)
        ))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ask politely, then make sure.
        let _ = self.socket.send(Message::text(
            json!({"id": u64::MAX, "method": "Browser.close", "params": {}}).to_string(),
        ));
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Chromium's helper processes may still write to the profile for a moment.
        for _ in 0..40 {
            let _ = std::fs::remove_dir_all(&self.profile);
            if !self.profile.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Connects the websocket to Chromium's DevTools address `ws://127.0.0.1:PORT/...`.
fn connect(url: &str) -> Result<WebSocket<TcpStream>, BrowserError> {
    let authority = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .ok_or_else(|| failed(format!("chromium announced an odd DevTools address: {url}")))?;
    let addr: SocketAddr = authority
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| failed(format!("chromium announced an odd DevTools address: {url}")))?;
    let stream = TcpStream::connect_timeout(&addr, WAIT)
        .map_err(|e| failed(format!("cannot connect to chromium at {addr}: {e}")))?;
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(WAIT));
    let _ = stream.set_write_timeout(Some(WAIT));
    // Screenshots of long pages arrive as one message of several MiB.
    let config = tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(256 << 20))
        .max_frame_size(Some(256 << 20));
    let (socket, _) = tungstenite::client::client_with_config(url, stream, Some(config))
        .map_err(|e| failed(format!("the DevTools handshake with chromium failed: {e}")))?;
    Ok(socket)
}

/// Keeps Chromium's last standard error lines and passes on its DevTools address.
fn read_stderr(
    pipe: impl io::Read,
    lines: Arc<Mutex<VecDeque<String>>>,
    found: mpsc::Sender<String>,
) {
    const PREFIX: &str = "DevTools listening on ";
    for line in BufReader::new(pipe).lines() {
        let Ok(line) = line else { break };
        if let Some(url) = line.trim().strip_prefix(PREFIX) {
            let _ = found.send(url.to_string());
        }
        if let Ok(mut lines) = lines.lock() {
            if lines.len() == STDERR_LINES {
                lines.pop_front();
            }
            lines.push_back(line);
        }
    }
}

fn last_lines(lines: &Mutex<VecDeque<String>>) -> String {
    match lines.lock() {
        Ok(lines) if !lines.is_empty() => lines.iter().cloned().collect::<Vec<_>>().join(" | "),
        _ => "nothing".to_string(),
    }
}

fn string_at(value: &Value, pointer: &str, method: &str) -> Result<String, BrowserError> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| failed(format!("{method} answered without {pointer}")))
}

fn fresh_profile_dir() -> io::Result<PathBuf> {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "monitor-testing-chromium-{}-{}-{nanos}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Where tests save screenshots: `$CARGO_TARGET_DIR/screenshots`, or the workspace's
/// `target/screenshots`; created if missing.
pub fn screenshot_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace.join(dir),
        _ => workspace.join("target"),
    };
    let dir = target.join("screenshots");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// Checks a PNG shows something: fails when fewer than 1% of its pixels differ from its
/// most common colour, or when it has fewer than 8 distinct colours.
pub fn non_blank(png_path: &Path) -> Result<(), String> {
    let name = png_path.display();
    let file = std::fs::File::open(png_path).map_err(|e| format!("cannot open {name}: {e}"))?;
    let mut decoder = png::Decoder::new(BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("{name} is not a png: {e}"))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| format!("{name} is too large"))?;
    let mut pixels = vec![0; size];
    let frame = reader
        .next_frame(&mut pixels)
        .map_err(|e| format!("{name} is not a png: {e}"))?;
    let channels = frame.color_type.samples();
    let data = &pixels[..frame.buffer_size()];
    let mut counts: HashMap<&[u8], usize> = HashMap::new();
    for pixel in data.chunks_exact(channels) {
        *counts.entry(pixel).or_default() += 1;
    }
    let total: usize = counts.values().sum();
    let common = counts.values().copied().max().unwrap_or(0);
    let differ = total - common;
    if total == 0 || differ * 100 < total || counts.len() < 8 {
        return Err(format!(
            "{name} looks blank: {} x {} pixels, {} distinct colours, {differ} pixels differ from the most common colour",
            frame.width,
            frame.height,
            counts.len()
        ));
    }
    Ok(())
}
