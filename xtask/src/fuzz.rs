//! `cargo xtask fuzz`: builds the fuzz targets of `fuzz/` with libFuzzer's coverage
//! instrumentation (the flags cargo-fuzz passes, all stable, so the pinned toolchain
//! builds them) and runs each for a bounded time, one after the other, on a scratch
//! corpus under the target directory seeded from the committed `fuzz/corpus/TARGET/`
//! (which a run never changes). Prints runs, executions per second, corpus size and
//! crashes per target; a crash, hang or memory blow-up names the input libFuzzer saved
//! and the command that replays it, and makes the exit code 1.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Build and run the fuzz targets.
#[derive(Debug, clap::Args)]
pub struct FuzzArgs {
    /// Seconds each target runs (libFuzzer -max_total_time).
    #[arg(long, default_value_t = 60, value_name = "N")]
    seconds: u64,
    /// Seconds one input may take before it counts as a hang (libFuzzer -timeout).
    #[arg(long, default_value_t = 10, value_name = "N")]
    timeout: u64,
    /// Memory a target may use, in MiB (libFuzzer -rss_limit_mb).
    #[arg(long, default_value_t = 2048, value_name = "MIB")]
    rss_limit_mb: u64,
    /// Longest input in bytes (default: 16384 for the JSON targets, 4096 for the others).
    #[arg(long, value_name = "BYTES")]
    max_len: Option<usize>,
    /// Only build the targets.
    #[arg(long)]
    build_only: bool,
    /// The targets to run (default: every file of fuzz/fuzz_targets).
    #[arg(value_name = "TARGET")]
    targets: Vec<String>,
}

/// The instrumentation cargo-fuzz uses (without a sanitizer: the workspace forbids
/// unsafe code), plus `--cfg fuzzing`, debug assertions and overflow checks.
const RUSTFLAGS: &[&str] = &[
    "--cfg",
    "fuzzing",
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "-Cdebug-assertions",
    "-Coverflow-checks",
];

/// How long past `--seconds` a target may run before it is killed as stuck (libFuzzer
/// stops itself; this only catches a process that wedged outside an input).
const GRACE: Duration = Duration::from_secs(60);

/// What one target's run gave.
#[derive(Debug, Default)]
struct Outcome {
    runs: Option<u64>,
    exec_per_sec: Option<u64>,
    corpus: Option<u64>,
    peak_rss_mb: Option<u64>,
    /// Why it stopped early and the input it saved, if it did.
    crash: Option<(String, Option<PathBuf>)>,
}

/// Builds the targets, runs them, prints the table; exit code 1 on any crash.
pub fn run(args: &FuzzArgs, root: &Path) -> Result<ExitCode> {
    let fuzz = root.join("fuzz");
    let all = targets(&fuzz)?;
    let chosen: Vec<String> = if args.targets.is_empty() {
        all.clone()
    } else {
        for t in &args.targets {
            if !all.contains(t) {
                bail!("no fuzz target `{t}`; the targets are: {}", all.join(", "));
            }
        }
        args.targets.clone()
    };
    let work = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("fuzz"),
        None => root.join("target").join("fuzz"),
    };
    let started = Instant::now();
    let bin_dir = build(&fuzz, &work)?;
    println!(
        "built {} fuzz targets in {:.0} s",
        all.len(),
        started.elapsed().as_secs_f64()
    );
    if args.build_only {
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = Vec::new();
    for target in &chosen {
        println!("fuzzing {target} for {} s", args.seconds);
        let outcome = run_target(args, &fuzz, &work, &bin_dir, target)?;
        rows.push((target.clone(), outcome));
    }
    print_table(&rows);
    let mut failed = false;
    for (target, outcome) in &rows {
        if let Some((why, input)) = &outcome.crash {
            failed = true;
            let log = work.join("logs").join(format!("{target}.log"));
            println!("\n{target}: {why} (libFuzzer's log: {})", log.display());
            match input {
                Some(input) => {
                    let binary = bin_dir.join(target);
                    println!("  input: {}", input.display());
                    println!("  replay: {} {}", binary.display(), input.display());
                    println!(
                        "  then: fix the bug, add the input as a regression test in the crate that owns the parser, and copy it to fuzz/corpus/{target}/"
                    );
                }
                None => println!("  libFuzzer saved no input; read the log"),
            }
        }
    }
    println!(
        "fuzzed {} targets in {:.0} s",
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The targets: the files of `fuzz/fuzz_targets`, sorted.
fn targets(fuzz: &Path) -> Result<Vec<String>> {
    let dir = fuzz.join("fuzz_targets");
    let mut names = Vec::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rs")
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
        {
            names.push(stem.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// The host's target triple, which the build names so that the instrumentation reaches
/// the targets' code and not build scripts or proc macros.
fn host_triple() -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .context("cannot run rustc")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV names no host")
}

/// Builds every target (release, instrumented) into `work`; returns where the binaries are.
fn build(fuzz: &Path, work: &Path) -> Result<PathBuf> {
    let triple = host_triple()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut flags = std::env::var("RUSTFLAGS").unwrap_or_default();
    for f in RUSTFLAGS {
        flags.push(' ');
        flags.push_str(f);
    }
    let mut build = Command::new(cargo);
    // Not `--locked`: fuzz/Cargo.lock pins what the targets add (libfuzzer-sys), and a
    // dependency the workspace's crates gain later is added to it rather than failing.
    build
        .args(["build", "--release", "--bins", "--target"])
        .arg(&triple)
        .arg("--manifest-path")
        .arg(fuzz.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", work)
        .env("RUSTFLAGS", flags.trim())
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    crate::clear_cargo_env(&mut build);
    let status = build.status().context("cannot run cargo")?;
    if !status.success() {
        bail!(
            "building the fuzz targets failed; the compiler's errors above name the file and line"
        );
    }
    Ok(work.join(triple).join("release"))
}

/// The longest input of `target` unless `--max-len` says otherwise.
fn max_len(args: &FuzzArgs, target: &str) -> usize {
    args.max_len.unwrap_or(if target.ends_with("_json") {
        16384
    } else {
        4096
    })
}

/// Runs one target: scratch corpus first (where libFuzzer writes), committed seeds
/// second (read only); its output goes to `work/logs/TARGET.log`.
fn run_target(
    args: &FuzzArgs,
    fuzz: &Path,
    work: &Path,
    bin_dir: &Path,
    target: &str,
) -> Result<Outcome> {
    let scratch = work.join("corpus").join(target);
    let artifacts = work.join("artifacts").join(target);
    let tmp = work.join("tmp").join(target);
    let logs = work.join("logs");
    for dir in [&scratch, &artifacts, &tmp, &logs] {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let seeds = fuzz.join("corpus").join(target);
    let log_path = logs.join(format!("{target}.log"));
    let log =
        File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let mut command = Command::new(bin_dir.join(target));
    command
        .arg(format!("-max_total_time={}", args.seconds))
        .arg(format!("-timeout={}", args.timeout))
        .arg(format!("-rss_limit_mb={}", args.rss_limit_mb))
        .arg(format!("-max_len={}", max_len(args, target)))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .arg(&scratch);
    if seeds.is_dir() {
        command.arg(&seeds);
    }
    let mut child = command
        .env("TMPDIR", &tmp)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot run the fuzz target {target}"))?;
    let limit = Duration::from_secs(args.seconds) + GRACE;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = fs::remove_dir_all(&tmp);
    let text = fs::read_to_string(&log_path).unwrap_or_default();
    let mut outcome = parse_log(&text);
    match status {
        None => {
            outcome.crash = Some((
                format!("still running {} s past its time, killed", GRACE.as_secs()),
                None,
            ));
        }
        Some(status) if !status.success() => {
            let why =
                crash_reason(&text).unwrap_or_else(|| format!("libFuzzer exited with {status}"));
            let input = text
                .lines()
                .filter_map(|l| l.split_once("Test unit written to ").map(|(_, p)| p))
                .next_back()
                .map(|p| PathBuf::from(p.trim()));
            outcome.crash = Some((why, input));
        }
        Some(_) => {}
    }
    Ok(outcome)
}

/// The final statistics (`-print_final_stats=1`) and the corpus size of the last status
/// line of a libFuzzer log.
fn parse_log(text: &str) -> Outcome {
    let stat = |name: &str| {
        text.lines()
            .filter_map(|l| l.strip_prefix(name))
            .filter_map(|v| v.trim().parse().ok())
            .next_back()
    };
    let corpus = text
        .lines()
        .filter_map(|l| l.split_once(" corp: ").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split('/').next()?.parse().ok())
        .next_back();
    Outcome {
        runs: stat("stat::number_of_executed_units:"),
        exec_per_sec: stat("stat::average_exec_per_sec:"),
        corpus,
        peak_rss_mb: stat("stat::peak_rss_mb:"),
        crash: None,
    }
}

/// libFuzzer's one-line reason for stopping (a panic, a timeout, out of memory).
fn crash_reason(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let panic = lines
        .iter()
        .position(|l| l.contains("panicked at"))
        .map(|i| {
            lines[i..]
                .iter()
                .take(2)
                .map(|l| l.trim())
                .collect::<Vec<_>>()
                .join(" ")
        });
    let error = text.lines().find_map(|l| {
        l.split_once("ERROR: libFuzzer: ")
            .map(|(_, why)| why.trim().to_owned())
    });
    match (error, panic) {
        (Some(error), Some(panic)) => Some(format!("{error}: {panic}")),
        (error, panic) => error.or(panic),
    }
}

fn print_table(rows: &[(String, Outcome)]) {
    let show = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
    println!(
        "\n{:<14} {:>12} {:>9} {:>7} {:>8} {:>8}",
        "target", "runs", "exec/s", "corpus", "rss MiB", "crashes"
    );
    for (target, o) in rows {
        println!(
            "{:<14} {:>12} {:>9} {:>7} {:>8} {:>8}",
            target,
            show(o.runs),
            show(o.exec_per_sec),
            show(o.corpus),
            show(o.peak_rss_mb),
            u8::from(o.crash.is_some())
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
INFO: Seed: 1234
#2\tINITED cov: 120 ft: 130 corp: 12/480b exec/s: 0 rss: 40Mb
#40000\tNEW    cov: 300 ft: 500 corp: 57/3100b lim: 4096 exec/s: 20000 rss: 60Mb
#1200000\tDONE   cov: 310 ft: 520 corp: 61/3300b lim: 4096 exec/s: 19672 rss: 64Mb
Done 1200000 runs in 61 second(s)
stat::number_of_executed_units: 1200000
stat::average_exec_per_sec:     19672
stat::new_units_added:          49
stat::slowest_unit_time_sec:    0
stat::peak_rss_mb:              64
";

    #[test]
    fn reads_the_final_statistics() {
        let o = parse_log(LOG);
        assert_eq!(o.runs, Some(1_200_000));
        assert_eq!(o.exec_per_sec, Some(19672));
        assert_eq!(o.corpus, Some(61));
        assert_eq!(o.peak_rss_mb, Some(64));
    }

    #[test]
    fn names_the_panic_of_a_crash() {
        let log = "\
thread '<unnamed>' panicked at monitor-core/src/engine/protocol/redis.rs:131:20:
attempt to add with overflow
==4242== ERROR: libFuzzer: deadly signal
artifact_prefix='/t/'; Test unit written to /t/crash-0123
";
        assert_eq!(
            crash_reason(log).as_deref(),
            Some(
                "deadly signal: thread '<unnamed>' panicked at monitor-core/src/engine/protocol/redis.rs:131:20: attempt to add with overflow"
            )
        );
        assert_eq!(parse_log(log).runs, None);
    }
}
