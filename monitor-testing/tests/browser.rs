//! Proves the headless Chromium driver against a tiny loopback HTTP server: opening pages
//! (with a redirect and a 404), reading the DOM, running scripts, submitting a form that
//! answers 303, dark mode, screenshots at two widths and the blank-page check.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use monitor_testing::browser::{Browser, BrowserError, non_blank, screenshot_dir};

const HOME: &str = r#"<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>home</title>
<style>
body { font: 16px sans-serif; margin: 0; padding: 1em; background: #fff; color: #222 }
.row { display: flex; flex-wrap: wrap; gap: 4px }
.row div { width: 120px; height: 40px }
@media (prefers-color-scheme: dark) { body { background: #111; color: #eee } }
</style></head><body>
<h1>Status of everything</h1>
<div class="row"><div style="background:#2a2"></div><div style="background:#c33"></div>
<div style="background:#e90"></div><div style="background:#36c"></div></div>
<form method="post" action="/submit"><label>user <input name="user" required></label>
<input type="hidden" name="next" value="/done"><button>go</button></form>
<p>Some words so the page has text in more than one colour.</p></body></html>"#;

const BLANK: &str = r#"<!doctype html><html><head><title>blank</title></head>
<body style="background:#fff;margin:0"></body></html>"#;

/// A loopback HTTP/1.1 server answering each request on its own connection.
struct Site {
    port: u16,
    posted: Arc<Mutex<Vec<String>>>,
}

impl Site {
    fn start() -> Site {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local address").port();
        let posted = Arc::new(Mutex::new(Vec::new()));
        let bodies = Arc::clone(&posted);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let bodies = Arc::clone(&bodies);
                std::thread::spawn(move || answer(stream, &bodies));
            }
        });
        Site { port, posted }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

fn answer(stream: TcpStream, posted: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream);
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut parts = request.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, extra, page) = match (method, target) {
        ("GET", "/") => ("200 OK", String::new(), HOME.to_string()),
        ("GET", "/blank") => ("200 OK", String::new(), BLANK.to_string()),
        ("GET", "/moved") => ("302 Found", "Location: /\r\n".to_string(), String::new()),
        ("POST", "/submit") => {
            let body = String::from_utf8_lossy(&body).to_string();
            posted.lock().expect("lock").push(body.clone());
            let location = format!("Location: /done?{body}\r\n");
            ("303 See Other", location, String::new())
        }
        ("GET", done) if done.starts_with("/done?") => {
            let query = done.trim_start_matches("/done?");
            let user = query
                .split('&')
                .find_map(|pair| pair.strip_prefix("user="))
                .unwrap_or("")
                .replace('+', " ");
            let user = user.replace("%3C", "&lt;").replace("%3E", "&gt;");
            let page = format!(
                "<!doctype html><html><head><title>done</title></head><body><p id=hello>hello {user}</p></body></html>"
            );
            ("200 OK", String::new(), page)
        }
        _ => (
            "404 Not Found",
            String::new(),
            "<p>no such page</p>".to_string(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
        page.len()
    );
    let mut stream = reader.into_inner();
    let _ = stream.write_all(response.as_bytes());
}

fn png_size(path: &Path) -> (u32, u32) {
    let decoder = png::Decoder::new(BufReader::new(std::fs::File::open(path).expect("open")));
    let reader = decoder.read_info().expect("png header");
    (reader.info().width, reader.info().height)
}

/// Named `browser::` so the suite filter of `.ci/packages.toml` (needs chromium) selects them.
mod browser {
    use super::*;

    #[test]
    fn opens_reads_submits_and_shoots_pages() {
        let site = Site::start();
        let mut browser = Browser::launch().expect("chromium starts");

        let home = browser.open(&site.url("/"), 1280).expect("open home");
        assert_eq!(home.status, 200);
        assert_eq!(home.url, site.url("/"));
        assert!(
            browser
                .html()
                .expect("html")
                .contains("<h1>Status of everything</h1>")
        );
        assert_eq!(browser.eval("document.title").expect("eval"), "home");
        assert_eq!(browser.eval("window.innerWidth").expect("eval"), 1280);
        assert_eq!(browser.eval("Promise.resolve(6 * 7)").expect("await"), 42);
        let thrown = browser
            .eval("no_such_name.x")
            .expect_err("a failing script is an error");
        assert!(thrown.to_string().contains("no_such_name"), "{thrown}");

        let moved = browser
            .open(&site.url("/moved"), 1280)
            .expect("open a redirect");
        assert_eq!(
            (moved.status, moved.url.as_str()),
            (200, site.url("/").as_str())
        );
        let missing = browser.open(&site.url("/nope"), 1280).expect("open a 404");
        assert_eq!(missing.status, 404);

        browser.open(&site.url("/"), 1280).expect("open home again");
        let done = browser
            .submit_form(&[("user", "ada <b>")])
            .expect("submit the form");
        assert_eq!(done.status, 200);
        assert!(done.url.starts_with(&site.url("/done?")), "{}", done.url);
        let hello = browser
            .eval("document.getElementById('hello').textContent")
            .expect("eval");
        assert_eq!(hello, "hello ada <b>");
        assert_eq!(
            site.posted.lock().expect("lock").as_slice(),
            ["user=ada+%3Cb%3E&next=%2Fdone"]
        );
        browser.open(&site.url("/"), 1280).expect("open home");
        let unknown = browser
            .submit_form(&[("password", "x")])
            .expect_err("no such input");
        assert!(
            unknown.to_string().contains("no input named password"),
            "{unknown}"
        );

        let dir = screenshot_dir();
        assert!(
            dir.is_dir() && dir.ends_with("screenshots"),
            "{}",
            dir.display()
        );
        for width in [1280, 375] {
            browser.open(&site.url("/"), width).expect("open home");
            assert_eq!(browser.eval("window.innerWidth").expect("eval"), width);
            let shot = dir.join(format!("monitor-testing-home-{width}.png"));
            browser.screenshot(&shot).expect("screenshot");
            assert_eq!(png_size(&shot).0, width);
            non_blank(&shot).expect("the home page shows something");
        }

        // A page taller than the viewport is shot whole.
        browser.open(&site.url("/"), 375).expect("open home");
        browser
            .eval("document.body.style.height = '3000px'")
            .expect("make the page tall");
        let tall = dir.join("monitor-testing-tall-375.png");
        browser.screenshot(&tall).expect("screenshot");
        assert!(png_size(&tall).1 >= 3000, "{:?}", png_size(&tall));

        browser.prefers_dark(true).expect("dark");
        browser.open(&site.url("/"), 375).expect("open home");
        let dark = "matchMedia('(prefers-color-scheme: dark)').matches";
        assert_eq!(browser.eval(dark).expect("eval"), true);
        let background = "getComputedStyle(document.body).backgroundColor";
        assert_eq!(browser.eval(background).expect("eval"), "rgb(17, 17, 17)");
        browser.prefers_dark(false).expect("light");
        assert_eq!(browser.eval(dark).expect("eval"), false);

        browser.open(&site.url("/blank"), 1280).expect("open blank");
        let blank = dir.join("monitor-testing-blank.png");
        browser.screenshot(&blank).expect("screenshot");
        let verdict = non_blank(&blank).expect_err("a white page is blank");
        assert!(verdict.contains("looks blank"), "{verdict}");
    }

    #[test]
    fn errors_are_clear() {
        let missing =
            Browser::launch_with(Path::new("/nonexistent/chromium")).expect_err("no browser");
        assert_eq!(
            missing,
            BrowserError::NotInstalled("/nonexistent/chromium".into())
        );
        assert!(
            missing.to_string().contains("debian package chromium"),
            "{missing}"
        );

        let not_png = std::env::temp_dir().join(format!("not-a-png-{}.png", std::process::id()));
        std::fs::write(&not_png, b"hello").expect("write");
        let verdict = non_blank(&not_png).expect_err("not a png");
        assert!(verdict.contains("is not a png"), "{verdict}");
        let _ = std::fs::remove_file(&not_png);

        let mut browser = Browser::launch().expect("chromium starts");
        let refused = monitor_testing::refusing_port().expect("a refusing port");
        let error = browser
            .open(&format!("http://127.0.0.1:{refused}/"), 800)
            .expect_err("nothing listens");
        assert!(
            error.to_string().contains("ERR_CONNECTION_REFUSED"),
            "{error}"
        );
        let pid = browser.pid();
        drop(browser);
        assert!(!Path::new(&format!("/proc/{pid}")).exists() || is_zombie_free(pid));
    }

    /// True when the process with this pid is gone or no longer chromium (pids are reused).
    fn is_zombie_free(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .map(|cmdline| !cmdline.contains("remote-debugging-port"))
            .unwrap_or(true)
    }
}
