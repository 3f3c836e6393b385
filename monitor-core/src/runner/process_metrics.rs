//! The process's own Prometheus families, which every `/metrics` of `watch` and of an
//! agent serves from the first scrape, before any check has run: `monitors_build_info`,
//! `monitors_monitors_loaded`, `monitors_checks_due_per_second` and the
//! `monitor_schedule_lateness_seconds` summary (NaN quantiles and a zero count until a
//! check starts), the scheduler's load (`monitors_schedule_overloaded`,
//! `monitors_schedule_deficit_checks_per_second`, `monitors_checks_waiting`) and
//! `monitor_check_overruns_total` for each monitor that overran its interval. Also the
//! agent's `/metrics` server, with `watch`'s limits.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use monitor_spec::prometheus::{family, labels, number};

/// The most connections a `/metrics` of `watch` or of an agent keeps open at once
/// (Prometheus needs one or two); the next is answered 503.
pub const METRICS_MAX_CONNECTIONS: usize = 64;

/// How many lateness samples are kept for the quantiles (the count and sum cover all).
pub const LATENESS_SAMPLES: usize = 100_000;

/// The binary's name in `monitors_build_info`, set once by the command line.
static BINARY: OnceLock<&'static str> = OnceLock::new();

/// Names the binary in `monitors_build_info` (the first call wins; `monitors` without).
pub fn set_binary(name: &'static str) {
    let _ = BINARY.set(name);
}

/// What the process schedules and how late its checks start.
#[derive(Debug, Default)]
pub struct ProcessMetrics {
    /// The monitors scheduled.
    loaded: AtomicU64,
    /// The checks due per second, as `f64` bits.
    due_per_second: AtomicU64,
    lateness: Mutex<Lateness>,
    /// The scheduler's last load report.
    load: Mutex<Load>,
    /// Ticks each monitor skipped because its previous check was still waiting or
    /// running; only monitors that overran are kept (at most one entry per monitor).
    overruns: Mutex<BTreeMap<Box<str>, u64>>,
}

/// How the scheduler keeps up, over its last window ([`crate::runner::schedule`] reports
/// it every minute): checks due against checks started, and the checks waiting for a
/// permit at the window's end.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Load {
    /// Ticks due per second over the window, skipped ones included.
    pub due_per_second: f64,
    /// Checks started per second over the window.
    pub started_per_second: f64,
    /// Checks per second the machine fell short by: ticks skipped while the previous
    /// check still waited for a permit, plus the growth of the checks waiting, per second.
    pub deficit_per_second: f64,
    /// Checks waiting for a permit at the window's end.
    pub waiting: u64,
    /// Whether the deficit is real: over 0 with checks still waiting, or ticks skipped
    /// for want of a permit.
    pub overloaded: bool,
}

/// Lateness samples: the most recent [`LATENESS_SAMPLES`], and the count and sum of all.
#[derive(Debug, Default)]
struct Lateness {
    recent: VecDeque<f64>,
    count: u64,
    sum: f64,
}

impl ProcessMetrics {
    /// Records what is scheduled: `monitors` of them, with checks due at
    /// `due_per_second` (the sum of each one's checks per second).
    pub fn set_loaded(&self, monitors: usize, due_per_second: f64) {
        self.loaded.store(
            u64::try_from(monitors).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.due_per_second
            .store(due_per_second.to_bits(), Ordering::Relaxed);
    }

    /// Records how late a check started, in seconds.
    pub fn late(&self, seconds: f64) {
        let mut l = self.lateness.lock().unwrap_or_else(PoisonError::into_inner);
        if l.recent.len() == LATENESS_SAMPLES {
            l.recent.pop_front();
        }
        l.recent.push_back(seconds);
        l.count += 1;
        l.sum += seconds;
    }

    /// Records the scheduler's load over its last window.
    pub fn set_load(&self, load: &Load) {
        *self.load.lock().unwrap_or_else(PoisonError::into_inner) = *load;
    }

    /// The scheduler's last load report (all zero before the first).
    pub fn load(&self) -> Load {
        *self.load.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a tick `monitor` skipped because its previous check was still waiting for
    /// a permit or running.
    pub fn overrun(&self, monitor: &str) {
        let mut o = self.overruns.lock().unwrap_or_else(PoisonError::into_inner);
        match o.get_mut(monitor) {
            Some(n) => *n += 1,
            None => {
                o.insert(monitor.into(), 1);
            }
        }
    }

    /// The ticks `monitor` skipped so far.
    pub fn overruns(&self, monitor: &str) -> u64 {
        let o = self.overruns.lock().unwrap_or_else(PoisonError::into_inner);
        o.get(monitor).copied().unwrap_or(0)
    }

    /// Lateness quantiles (0.5, 0.99, 1.0) in seconds over the kept samples; `None`
    /// before the first.
    pub fn lateness_quantiles(&self) -> Option<[f64; 3]> {
        let mut samples: Vec<f64> = {
            let l = self.lateness.lock().unwrap_or_else(PoisonError::into_inner);
            l.recent.iter().copied().collect()
        };
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Some([at(0.5), at(0.99), at(1.0)])
    }

    /// The process's families in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        family(
            &mut text,
            "monitors_build_info",
            "gauge",
            "The binary, its version and the git revision it was built from.",
            vec![(
                labels(&[
                    ("binary", BINARY.get().copied().unwrap_or("monitors")),
                    ("version", env!("CARGO_PKG_VERSION")),
                    ("revision", env!("MONITORS_REVISION")),
                ]),
                "1".to_owned(),
            )],
        );
        family(
            &mut text,
            "monitors_monitors_loaded",
            "gauge",
            "Monitors this process schedules.",
            vec![(
                String::new(),
                self.loaded.load(Ordering::Relaxed).to_string(),
            )],
        );
        family(
            &mut text,
            "monitors_checks_due_per_second",
            "gauge",
            "Checks due per second: the sum over the scheduled monitors of one over the interval.",
            vec![(
                String::new(),
                number(f64::from_bits(self.due_per_second.load(Ordering::Relaxed))),
            )],
        );
        let quantiles = self.lateness_quantiles();
        let (count, sum) = {
            let l = self.lateness.lock().unwrap_or_else(PoisonError::into_inner);
            (l.count, l.sum)
        };
        let name = "monitor_schedule_lateness_seconds";
        let _ = writeln!(
            text,
            "# HELP {name} How late checks started against their schedule."
        );
        let _ = writeln!(text, "# TYPE {name} summary");
        // Before the first sample the quantiles are NaN, as Prometheus' clients write them.
        let [p50, p99, max] = quantiles.unwrap_or([f64::NAN; 3]);
        for (q, v) in [("0.5", p50), ("0.99", p99), ("1", max)] {
            let _ = writeln!(text, "{name}{} {}", labels(&[("quantile", q)]), number(v));
        }
        let _ = writeln!(text, "{name}_sum {}", number(sum));
        let _ = writeln!(text, "{name}_count {count}");
        let load = self.load();
        family(
            &mut text,
            "monitors_schedule_overloaded",
            "gauge",
            "1 when checks fell due faster than they could start over the last minute.",
            vec![(String::new(), u8::from(load.overloaded).to_string())],
        );
        family(
            &mut text,
            "monitors_schedule_deficit_checks_per_second",
            "gauge",
            "Checks per second the scheduler fell short by over the last minute.",
            vec![(String::new(), number(load.deficit_per_second))],
        );
        family(
            &mut text,
            "monitors_checks_waiting",
            "gauge",
            "Checks due and waiting for a concurrency permit at the end of the last minute.",
            vec![(String::new(), load.waiting.to_string())],
        );
        let overruns: Vec<(String, String)> = self
            .overruns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(id, n)| (labels(&[("monitor", id)]), n.to_string()))
            .collect();
        if !overruns.is_empty() {
            family(
                &mut text,
                "monitor_check_overruns_total",
                "counter",
                "Ticks skipped because the monitor's previous check was still waiting or running.",
                overruns,
            );
        }
        text
    }
}

/// Serves `render()` at `/metrics` on `listener` with `watch`'s limits (gzip when asked)
/// ([`METRICS_MAX_CONNECTIONS`], the server's default timeouts) until `shutdown`.
#[cfg(feature = "agent")]
pub(crate) async fn serve_text(
    listener: tokio::net::TcpListener,
    render: impl Fn() -> String + Clone + Send + Sync + 'static,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(move |request: axum::http::HeaderMap| {
            let render = render.clone();
            async move {
                let mut text = Some(render());
                super::metrics_body::response(&request, move || text.take())
            }
        }),
    );
    let limits = super::http::Limits {
        max_connections: METRICS_MAX_CONNECTIONS,
        ..super::http::Limits::default()
    };
    super::http::serve(listener, app, limits, shutdown).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_families_are_there_before_any_check() {
        let m = ProcessMetrics::default();
        m.set_loaded(3, 0.5);
        let text = m.render();
        let expected = format!(
            "# HELP monitors_build_info The binary, its version and the git revision it was built from.
# TYPE monitors_build_info gauge
monitors_build_info{{binary=\"monitors\",version=\"{}\",revision=\"{}\"}} 1
# HELP monitors_monitors_loaded Monitors this process schedules.
# TYPE monitors_monitors_loaded gauge
monitors_monitors_loaded 3
# HELP monitors_checks_due_per_second Checks due per second: the sum over the scheduled monitors of one over the interval.
# TYPE monitors_checks_due_per_second gauge
monitors_checks_due_per_second 0.5
# HELP monitor_schedule_lateness_seconds How late checks started against their schedule.
# TYPE monitor_schedule_lateness_seconds summary
monitor_schedule_lateness_seconds{{quantile=\"0.5\"}} NaN
monitor_schedule_lateness_seconds{{quantile=\"0.99\"}} NaN
monitor_schedule_lateness_seconds{{quantile=\"1\"}} NaN
monitor_schedule_lateness_seconds_sum 0
monitor_schedule_lateness_seconds_count 0
# HELP monitors_schedule_overloaded 1 when checks fell due faster than they could start over the last minute.
# TYPE monitors_schedule_overloaded gauge
monitors_schedule_overloaded 0
# HELP monitors_schedule_deficit_checks_per_second Checks per second the scheduler fell short by over the last minute.
# TYPE monitors_schedule_deficit_checks_per_second gauge
monitors_schedule_deficit_checks_per_second 0
# HELP monitors_checks_waiting Checks due and waiting for a concurrency permit at the end of the last minute.
# TYPE monitors_checks_waiting gauge
monitors_checks_waiting 0
",
            env!("CARGO_PKG_VERSION"),
            env!("MONITORS_REVISION")
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn lateness_counts_every_sample_and_keeps_the_recent_ones() {
        let m = ProcessMetrics::default();
        for i in 0..LATENESS_SAMPLES + 10 {
            m.late(if i < 10 { 100.0 } else { 0.25 });
        }
        // The ten early outliers fell out of the quantiles, not out of the count.
        assert_eq!(m.lateness_quantiles(), Some([0.25, 0.25, 0.25]));
        let text = m.render();
        assert!(
            text.contains(&format!(
                "monitor_schedule_lateness_seconds_count {}\n",
                LATENESS_SAMPLES + 10
            )),
            "{text}"
        );
        assert!(
            text.contains("monitor_schedule_lateness_seconds{quantile=\"0.99\"} 0.25\n"),
            "{text}"
        );
    }
}
