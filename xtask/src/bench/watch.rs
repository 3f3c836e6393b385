//! Scheduler scale: `monitors watch --bundle` with many generated monitors at mixed
//! frequencies against loopback PING servers, measured over a bounded window: resident
//! memory, CPU, the schedule lateness quantiles of `/metrics`, and the scrapes themselves.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Env, Plan, Row, cpu_seconds, http_get, memory_mb, row, terminate};

/// A child process stopped by its pid when dropped: SIGTERM, then SIGKILL after `grace`.
struct Guard {
    child: Child,
    grace: Duration,
}

impl Guard {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the process and returns how long it took to exit after SIGTERM.
    fn stop(&mut self) -> Option<Duration> {
        drop(self.child.stdin.take());
        if self.child.try_wait().ok().flatten().is_some() {
            return None;
        }
        let t0 = Instant::now();
        terminate(self.pid());
        while t0.elapsed() < self.grace {
            if self.child.try_wait().ok().flatten().is_some() {
                return Some(t0.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the PING servers print first: the ports they listen on.
#[derive(Deserialize)]
struct Ports {
    ports: Vec<u16>,
}

/// What `gen-bundle` prints: the checks per second the bundle schedules.
#[derive(Deserialize)]
struct Generated {
    checks_per_second: f64,
}

/// One scrape of `/metrics` during the window.
struct Scrape {
    at: f64,
    seconds: f64,
    bytes: usize,
    checks: f64,
    /// Monitors with a result so far (their `probe_success` series).
    reported: usize,
    /// Resident memory just before the scrape, in MB.
    rss: f64,
    /// The peak resident memory during the scrape (VmHWM reset just before), in MB.
    peak: Option<f64>,
    lateness: Option<[f64; 3]>,
}

fn parse_metrics(body: &str) -> (f64, usize, Option<[f64; 3]>) {
    let mut checks = 0.0;
    let mut reported = 0;
    let mut quantiles = [None; 3];
    for line in body.lines() {
        let value = || line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        if line.starts_with("probe_success{") {
            reported += 1;
        } else if line.starts_with("monitor_checks_total{") {
            checks += value().unwrap_or(0.0);
        } else if let Some(rest) =
            line.strip_prefix("monitor_schedule_lateness_seconds{quantile=\"")
        {
            let slot = match rest.split('"').next() {
                Some("0.5") => 0,
                Some("0.99") => 1,
                Some("1") => 2,
                _ => continue,
            };
            quantiles[slot] = value();
        }
    }
    let lateness = match quantiles {
        [Some(a), Some(b), Some(c)] => Some([a, b, c]),
        _ => None,
    };
    (checks, reported, lateness)
}

/// What one measurement of `monitors watch` found.
struct Measured {
    count: usize,
    offered: f64,
    warmup: Duration,
    scraped: String,
    startup: Duration,
    wall: f64,
    cpu: f64,
    rss: Vec<f64>,
    hwm: f64,
    stop: Option<Duration>,
    scrapes: Vec<Scrape>,
}

/// Runs `monitors watch` on a generated bundle of `count` monitors (its file named after
/// `part`) over the plan's window, scraping `/metrics` as the plan says.
fn measure(env: &Env, plan: &Plan, part: &str, count: usize) -> Result<Measured> {
    let window = Duration::from_secs(plan.window);
    let warmup = Duration::from_secs(if plan.quick { 5 } else { 10 });
    // 0: scrape only at the window's start and end.
    let every = match plan.scrape_every {
        0 => window,
        secs => Duration::from_secs(secs),
    };
    let scraped = if every >= window {
        "/metrics scraped at the window's start and end only".to_owned()
    } else {
        format!("/metrics scraped every {} s", every.as_secs())
    };
    eprintln!(
        "{part}: {count} monitors, {} s warm-up, {} s window, {scraped}...",
        warmup.as_secs(),
        window.as_secs(),
    );

    // The listeners every monitor checks, live for the whole window.
    let mut child = Command::new(&env.engine)
        .args(["serve", "--kind", "ping", "--count", "8"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start the PING servers")?;
    let stdout = child.stdout.take().context("server stdout")?;
    let mut servers = Guard {
        child,
        grace: Duration::from_secs(5),
    };
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("cannot read the servers' ports")?;
    let ports = serde_json::from_str::<Ports>(&line)
        .map(|p| p.ports)
        .with_context(|| format!("the servers printed `{}`, not their ports", line.trim()))?;
    let ports_arg = ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");

    let bundle = env.out.join(format!("{part}-bundle.json"));
    let generated = Command::new(&env.engine)
        .args([
            "gen-bundle",
            "--count",
            &count.to_string(),
            "--ports",
            &ports_arg,
        ])
        .arg("--out")
        .arg(&bundle)
        .stderr(Stdio::inherit())
        .output()
        .context("cannot generate the watch bundle")?;
    if !generated.status.success() {
        bail!("generating the watch bundle failed");
    }
    let offered = serde_json::from_slice::<Generated>(&generated.stdout)
        .map_or(f64::NAN, |g| g.checks_per_second);

    let metrics: SocketAddr = {
        let probe = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .context("cannot find a free port")?;
        probe.local_addr()?
    };
    let log = env.out.join(format!("{part}.stderr"));
    let t0 = Instant::now();
    let child = Command::new(&env.monitors)
        .arg("watch")
        .arg("--bundle")
        .arg(&bundle)
        .args(["--metrics-listen", &metrics.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(&log)
                .with_context(|| format!("cannot create {}", log.display()))?,
        )
        .spawn()
        .context("cannot start monitors watch")?;
    let mut watch = Guard {
        child,
        grace: Duration::from_secs(45),
    };
    let pid = watch.pid();
    let startup = loop {
        if http_get(metrics, "/metrics").is_ok() {
            break t0.elapsed();
        }
        if watch.child.try_wait().ok().flatten().is_some() {
            bail!(
                "monitors watch exited early: {}",
                std::fs::read_to_string(&log).unwrap_or_default().trim()
            );
        }
        if t0.elapsed() > Duration::from_secs(300) {
            bail!("monitors watch did not serve /metrics within 300 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!(
        "  watch serves /metrics after {:.1} s",
        startup.as_secs_f64()
    );
    std::thread::sleep(warmup);
    // The peak so far (start-up included), before the scrapes reset it.
    let hwm_startup = memory_mb(pid)?.1;

    let (cpu0, w0) = (cpu_seconds(pid)?, Instant::now());
    let mut rss = Vec::new();
    let mut scrapes: Vec<Scrape> = Vec::new();
    let mut next_scrape = Duration::ZERO;
    loop {
        let at = w0.elapsed();
        if at >= next_scrape {
            // Memory before the scrape, and the peak during it: VmHWM reset to the
            // resident memory first (`5` to clear_refs), when the kernel allows it.
            let reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
            let rss_now = memory_mb(pid)?.0;
            let (took, body) = http_get(metrics, "/metrics").context("scraping /metrics")?;
            let peak = reset.then(|| memory_mb(pid).map(|m| m.1)).transpose()?;
            let (checks, reported, lateness) = parse_metrics(&body);
            scrapes.push(Scrape {
                at: at.as_secs_f64(),
                seconds: took.as_secs_f64(),
                bytes: body.len(),
                checks,
                reported,
                rss: rss_now,
                peak,
                lateness,
            });
            eprintln!(
                "  t={:>3.0} s  rss {rss_now:>6.1} MB (peak in the scrape {:>6.1} MB)  checks {checks:>9.0}  monitors reported {reported:>7}  scrape {:.3} s, {:.1} MB",
                at.as_secs_f64(),
                peak.unwrap_or(f64::NAN),
                took.as_secs_f64(),
                body.len() as f64 / 1e6
            );
            drop(body);
            if at >= window {
                break;
            }
            next_scrape = (next_scrape + every).min(window);
        }
        rss.push(memory_mb(pid)?.0);
        std::thread::sleep(
            Duration::from_millis(1000).min(next_scrape.saturating_sub(w0.elapsed())),
        );
    }
    let wall = w0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid)? - cpu0;
    // After the last scrape: only its peak (VmHWM) is of interest.
    let hwm = memory_mb(pid)?.1.max(hwm_startup);
    let stop = watch.stop();
    let _ = servers.stop();
    // A million monitors' bundle is over a gigabyte: not worth keeping.
    if count > 100_000 {
        let _ = std::fs::remove_file(&bundle);
    }
    Ok(Measured {
        count,
        offered,
        warmup,
        scraped,
        startup,
        wall,
        cpu,
        rss,
        hwm,
        stop,
        scrapes,
    })
}

/// The 100,000-monitor measurement (`--only watch`); returns its rows and details.
pub(super) fn run(env: &Env, plan: &Plan) -> Result<(Vec<Row>, Value)> {
    let m = measure(env, plan, "watch", plan.monitors)?;
    let Measured {
        count,
        offered,
        ref scraped,
        startup,
        wall,
        cpu,
        ref rss,
        hwm,
        ref scrapes,
        ..
    } = m;

    let (first, last) = match (scrapes.first(), scrapes.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => bail!("no scrape of /metrics succeeded"),
    };
    let checks = last.checks - first.checks;
    let rate = checks / (last.at - first.at).max(1e-9);
    let rss_max = rss.iter().copied().fold(0.0, f64::max);
    let [p50, p99, max] = last
        .lateness
        .map(|q| q.map(|s| s * 1000.0))
        .context("/metrics has no monitor_schedule_lateness_seconds")?;
    let scrape_times: Vec<f64> = scrapes.iter().map(|s| s.seconds).collect();
    let kept = last.checks.min(100_000.0);
    let n = super::number(count as f64);
    let lateness_note = format!(
        "over the last {} scheduled starts /metrics keeps (≈ the last {:.0} s)",
        super::number(kept),
        kept / rate.max(1e-9)
    );
    // Monitors that have not run yet hold no result: project the memory of every monitor
    // holding its latest one, linearly in the monitors reported during the window.
    let grown = last.reported.saturating_sub(first.reported);
    let per_monitor = if grown > 0 {
        (last.rss - first.rss).max(0.0) / grown as f64
    } else {
        0.0
    };
    let projected = last.rss + count.saturating_sub(last.reported) as f64 * per_monitor;
    let rows = vec![
        row(
            "watch_rss",
            &format!("watch, {n} monitors: resident memory (max over the window)"),
            "MB",
            ("VmRSS", vec![rss_max]),
            None,
            Some(("< 300 MB", rss_max < 300.0)),
            format!(
                "sampled every second, scrapes included; {} of {n} monitors had a result by its end; peak VmHWM {hwm:.0} MB (start-up and the last scrape included)",
                super::number(last.reported as f64)
            ),
        ),
        row(
            "watch_rss_projected",
            &format!("watch, {n} monitors: resident memory with every monitor holding a result"),
            "MB",
            ("projected", vec![projected]),
            None,
            Some(("< 300 MB", projected < 300.0)),
            format!(
                "resident before the last scrape plus {:.2} KB per monitor still to report, the growth per newly reported monitor between the window's first and last scrape",
                per_monitor * 1024.0
            ),
        ),
        row(
            "watch_cpu",
            &format!("watch, {n} monitors: CPU over the window"),
            "cores",
            ("user + system", vec![cpu / wall]),
            None,
            None,
            format!(
                "{rate:.0} checks/s run ({offered:.0}/s scheduled), {:.3} CPU s per 1,000 checks, {scraped}",
                cpu * 1000.0 / checks.max(1.0),
            ),
        ),
        row(
            "watch_lateness_p50",
            &format!("watch, {n} monitors: schedule lateness p50"),
            "ms",
            ("", vec![p50]),
            None,
            None,
            lateness_note.clone(),
        ),
        row(
            "watch_lateness_p99",
            &format!("watch, {n} monitors: schedule lateness p99"),
            "ms",
            ("", vec![p99]),
            None,
            Some(("< 10 ms", p99 < 10.0)),
            lateness_note.clone(),
        ),
        row(
            "watch_lateness_max",
            &format!("watch, {n} monitors: schedule lateness max"),
            "ms",
            ("", vec![max]),
            None,
            None,
            lateness_note,
        ),
        row(
            "watch_startup",
            &format!(
                "watch, {n} monitors: start-up until /metrics answers (bundle read and validated)"
            ),
            "s",
            ("", vec![startup.as_secs_f64()]),
            None,
            None,
            String::new(),
        ),
        row(
            "watch_scrape",
            &format!("watch, {n} monitors: one /metrics scrape"),
            "s",
            ("", scrape_times.clone()),
            None,
            None,
            format!("{:.1} MB of text", last.bytes as f64 / 1e6),
        ),
    ];
    Ok((rows, detail(&m, checks)))
}

/// The details of a measurement for results.json.
fn detail(m: &Measured, checks: f64) -> Value {
    json!({
        "monitors": m.count,
        "scheduled_checks_per_second": m.offered,
        "warmup_s": m.warmup.as_secs(),
        "window_s": m.wall,
        "startup_s": m.startup.as_secs_f64(),
        "cpu_s": m.cpu,
        "checks_in_window": checks,
        "rss_mb_samples": m.rss,
        "vm_hwm_mb": m.hwm,
        "stopped_after_sigterm_s": m.stop.map(|d| d.as_secs_f64()),
        "scrapes": m.scrapes.iter().map(|s| json!({
            "at_s": s.at, "seconds": s.seconds, "bytes": s.bytes, "checks_total": s.checks,
            "monitors_reported": s.reported, "rss_mb": s.rss, "peak_rss_mb": s.peak,
            "lateness_s": s.lateness,
        })).collect::<Vec<_>>(),
    })
}

/// The million-monitor measurement (`--only million`): resident memory, lateness,
/// start-up and one scrape's extra memory against their targets; returns its rows and
/// details.
pub(super) fn million(env: &Env, plan: &Plan) -> Result<(Vec<Row>, Value)> {
    let m = measure(env, plan, "million", MILLION)?;
    let (first, last) = match (m.scrapes.first(), m.scrapes.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => bail!("no scrape of /metrics succeeded"),
    };
    let checks = last.checks - first.checks;
    let rate = checks / (last.at - first.at).max(1e-9);
    let rss_max = m.rss.iter().copied().fold(0.0, f64::max);
    // Each scrape's p99 covers the last 100,000 starts before it (about 8 s at 12,300
    // checks/s): the window's is the worst of them, the first (at the window's start) aside.
    let p99s: Vec<f64> = m
        .scrapes
        .iter()
        .skip(1)
        .filter_map(|s| s.lateness.map(|q| q[1] * 1000.0))
        .collect();
    let p99 = p99s.iter().copied().fold(f64::NAN, f64::max);
    let max = m
        .scrapes
        .iter()
        .skip(1)
        .filter_map(|s| s.lateness.map(|q| q[2] * 1000.0))
        .fold(f64::NAN, f64::max);
    let extra: Vec<f64> = m
        .scrapes
        .iter()
        .filter_map(|s| s.peak.map(|p| (p - s.rss).max(0.0)))
        .collect();
    let extra_max = extra.iter().copied().fold(f64::NAN, f64::max);
    let scrape_max = m.scrapes.iter().map(|s| s.seconds).fold(0.0, f64::max);
    let n = super::number(m.count as f64);
    let startup = m.startup.as_secs_f64();
    let rows = vec![
        row(
            "million_rss",
            &format!("watch, {n} monitors: resident memory (max over the window)"),
            "MB",
            ("VmRSS", vec![rss_max]),
            None,
            Some(("< 1 GB", rss_max < 1000.0)),
            format!(
                "sampled every second, scrapes included; {} of {n} monitors had a result by its end; peak VmHWM {:.0} MB (start-up included)",
                super::number(last.reported as f64),
                m.hwm
            ),
        ),
        row(
            "million_lateness_p99",
            &format!("watch, {n} monitors: schedule lateness p99 (worst over the window)"),
            "ms",
            ("", vec![p99]),
            None,
            Some(("< 10 ms", p99 < 10.0)),
            format!(
                "from /metrics at each scrape after the first, each over the last 100,000 starts before it; max {max:.1} ms, {}",
                m.scraped
            ),
        ),
        row(
            "million_startup",
            &format!(
                "watch, {n} monitors: start-up until /metrics answers (bundle read and validated)"
            ),
            "s",
            ("", vec![startup]),
            None,
            Some(("< 10 s", startup < 10.0)),
            String::new(),
        ),
        row(
            "million_scrape_memory",
            &format!("watch, {n} monitors: one /metrics scrape's peak extra memory"),
            "MB",
            ("VmHWM − VmRSS", vec![extra_max]),
            None,
            Some(("< 50 MB", extra_max < 50.0)),
            format!(
                "the worst scrape: VmHWM reset (clear_refs 5) just before it, minus VmRSS then (results recorded meanwhile included); {:.1} MB of text, {scrape_max:.1} s at the slowest",
                last.bytes as f64 / 1e6
            ),
        ),
        row(
            "million_cpu",
            &format!("watch, {n} monitors: CPU over the window"),
            "cores",
            ("user + system", vec![m.cpu / m.wall]),
            None,
            None,
            format!(
                "{rate:.0} checks/s run ({:.0}/s scheduled), {:.3} CPU s per 1,000 checks, {}",
                m.offered,
                m.cpu * 1000.0 / checks.max(1.0),
                m.scraped
            ),
        ),
    ];
    Ok((rows, detail(&m, checks)))
}

/// The monitors of the `million` part.
pub(super) const MILLION: usize = 1_000_000;
