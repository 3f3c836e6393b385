//! `cargo xtask dist`: builds `monitors` and `control-plane` (`cargo build --locked`,
//! release by default) and packs what an operator installs into one archive,
//! `OUT_DIR/monitors-VERSION-TARGET.tar.gz`, under the top directory
//! `monitors-VERSION-TARGET/`:
//!
//! - `bin/monitors`, `bin/control-plane` (mode 0755);
//! - `lib/systemd/system/`: the hardened units of `deploy/systemd/`;
//! - `etc/monitors/`: the example environment files of `deploy/etc/monitors/`;
//! - `share/bash-completion/completions/`, `share/zsh/site-functions/`,
//!   `share/fish/vendor_completions.d/`: completions, and `share/man/man1/`: man pages,
//!   all made by the binaries' hidden `generate` command from their own command lines;
//! - `README.md`, `LICENSE`, `CHANGELOG.md`.
//!
//! The archive is reproducible: entries in path order, owner 0:0, mode 0755 for
//! directories and binaries and 0644 for the rest, every time stamp `SOURCE_DATE_EPOCH`
//! (0 when unset). It is written next to its final name and renamed into place.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, bail};
use flate2::Compression;
use flate2::write::GzEncoder;

/// Build the binaries and pack them for a server.
#[derive(Debug, clap::Args)]
pub struct DistArgs {
    /// The cargo profile the binaries are built with: release or dev (a dev archive, of
    /// binaries with full debug info, is compressed at gzip's fastest level)
    #[arg(long, default_value = "release", value_parser = ["release", "dev"])]
    profile: String,
    /// Where the archive is written [default: TARGET_DIR/dist, TARGET_DIR being
    /// CARGO_TARGET_DIR or target]
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

/// The binaries the archive ships, each with a hidden `generate` command.
const BINARIES: [&str; 2] = ["monitors", "control-plane"];

/// The systemd units, from `deploy/systemd/` to `lib/systemd/system/`.
const UNITS: [&str; 3] = [
    "monitors-control-plane.service",
    "monitors-agent.service",
    "monitors-agent@.service",
];

/// The example environment files, from `deploy/etc/monitors/` to `etc/monitors/`.
const ENV_EXAMPLES: [&str; 2] = ["control-plane.env.example", "agent.env.example"];

/// The documents at the archive's top, from the workspace root.
const DOCUMENTS: [&str; 3] = ["README.md", "LICENSE", "CHANGELOG.md"];

/// The most man pages one binary may write (one per command and subcommand; they have
/// under 20): a bound on what is read back from its directory.
const MAX_MAN_PAGES: usize = 64;

/// Where one file of the archive comes from.
enum Source {
    /// A file on disk, streamed.
    File(PathBuf),
    /// Bytes made here (completions).
    Bytes(Vec<u8>),
}

/// One file of the archive: its path under the top directory, its mode, its content.
struct Item {
    path: String,
    mode: u32,
    source: Source,
}

/// Builds the binaries, writes the archive, prints its path and size.
pub fn run(args: &DistArgs, root: &Path) -> Result<ExitCode> {
    build(root, &args.profile)?;
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let bin_dir = target_dir.join(if args.profile == "dev" {
        "debug"
    } else {
        "release"
    });
    let name = format!(
        "monitors-{}-{}",
        env!("CARGO_PKG_VERSION"),
        host_triple(root)?
    );
    let out_dir = args
        .out_dir
        .clone()
        .unwrap_or_else(|| target_dir.join("dist"));
    fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let scratch = target_dir.join("dist-work").join(&name);
    let items = items(root, &bin_dir, &scratch);
    let archive = out_dir.join(format!("{name}.tar.gz"));
    // Release binaries get gzip's default level; dev ones (about 180 MB each, with debug
    // info) its fastest, which packs them in seconds rather than a minute and more.
    let level = if args.profile == "dev" {
        Compression::fast()
    } else {
        Compression::default()
    };
    let written = items.and_then(|items| write_archive(&archive, &name, &items, level));
    let _ = fs::remove_dir_all(&scratch);
    let bytes = written?;
    println!(
        "{} ({bytes} bytes, {:.1} MiB)",
        archive.display(),
        bytes as f64 / f64::from(1 << 20)
    );
    Ok(ExitCode::SUCCESS)
}

/// `cargo build --locked -p monitors -p control-plane` in `profile`.
fn build(root: &Path, profile: &str) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(root)
        .args(["build", "--locked", "--profile", profile]);
    for bin in BINARIES {
        build.args(["-p", bin]);
    }
    crate::clear_cargo_env(&mut build);
    let status = build.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("building {} failed", BINARIES.join(" and "));
    }
    Ok(())
}

/// The host's target triple, from `rustc -vV` (the toolchain of the workspace).
fn host_triple(root: &Path) -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .current_dir(root)
        .arg("-vV")
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run rustc -vV")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|h| h.trim().to_owned())
        .filter(|h| out.status.success() && !h.is_empty())
        .context("rustc -vV printed no `host:` line")
}

/// Every file of the archive, sorted by path; completions and man pages are made by the
/// binaries in `bin_dir` (man pages in `scratch`).
fn items(root: &Path, bin_dir: &Path, scratch: &Path) -> Result<Vec<Item>> {
    let file = |path: String, mode, from: PathBuf| -> Result<Item> {
        if !from.is_file() {
            bail!("{} is missing", from.display());
        }
        Ok(Item {
            path,
            mode,
            source: Source::File(from),
        })
    };
    let mut items = Vec::new();
    for doc in DOCUMENTS {
        items.push(file(doc.to_owned(), 0o644, root.join(doc))?);
    }
    for unit in UNITS {
        let from = root.join("deploy/systemd").join(unit);
        items.push(file(format!("lib/systemd/system/{unit}"), 0o644, from)?);
    }
    for example in ENV_EXAMPLES {
        let from = root.join("deploy/etc/monitors").join(example);
        items.push(file(format!("etc/monitors/{example}"), 0o644, from)?);
    }
    let _ = fs::remove_dir_all(scratch);
    for bin in BINARIES {
        let exe = bin_dir.join(format!("{bin}{}", std::env::consts::EXE_SUFFIX));
        items.push(file(format!("bin/{bin}"), 0o755, exe.clone())?);
        for (shell, path) in [
            ("bash", format!("share/bash-completion/completions/{bin}")),
            ("zsh", format!("share/zsh/site-functions/_{bin}")),
            (
                "fish",
                format!("share/fish/vendor_completions.d/{bin}.fish"),
            ),
        ] {
            let script = generate(&exe, &["completions", shell])?;
            items.push(Item {
                path,
                mode: 0o644,
                source: Source::Bytes(script),
            });
        }
        let man = scratch.join(bin);
        generate(&exe, &[std::ffi::OsStr::new("man"), man.as_os_str()])?;
        for page in man_pages(&man)? {
            let path = format!("share/man/man1/{}", page.display());
            items.push(file(path, 0o644, man.join(page))?);
        }
    }
    items.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(items)
}

/// Runs `exe generate ARGS` and returns its standard output.
fn generate<S: AsRef<std::ffi::OsStr>>(exe: &Path, args: &[S]) -> Result<Vec<u8>> {
    let out = Command::new(exe)
        .arg("generate")
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", exe.display()))?;
    if !out.status.success() || out.stdout.len() > 1 << 20 {
        bail!(
            "`{} generate` failed ({}) or printed over 1 MiB",
            exe.display(),
            out.status
        );
    }
    Ok(out.stdout)
}

/// The `.1` files of `dir` (file names only, sorted), at most [`MAX_MAN_PAGES`].
fn man_pages(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut pages = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let name = PathBuf::from(entry.file_name());
        if name.extension().is_some_and(|e| e == "1") {
            pages.push(name);
        }
        if pages.len() > MAX_MAN_PAGES {
            bail!("{} holds over {MAX_MAN_PAGES} man pages", dir.display());
        }
    }
    if pages.is_empty() {
        bail!("no man page was written into {}", dir.display());
    }
    pages.sort();
    Ok(pages)
}

/// Writes the tar of `items` under `top/`, gzip'd at `level`, to `archive` (through a `.part` file
/// renamed into place) and returns its size in bytes.
fn write_archive(archive: &Path, top: &str, items: &[Item], level: Compression) -> Result<u64> {
    let mtime = source_date_epoch()?;
    let part = archive.with_extension("gz.part");
    let out = File::create(&part).with_context(|| format!("cannot create {}", part.display()))?;
    let gz = GzEncoder::new(BufWriter::new(out), level);
    let mut tar = tar::Builder::new(gz);
    let header = |mode: u32, size: u64, kind: tar::EntryType| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(mtime);
        h.set_uid(0);
        h.set_gid(0);
        h
    };
    let mut dirs: Vec<String> = vec![top.to_owned()];
    for item in items {
        let mut parent = Path::new(&item.path).parent();
        while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
            dirs.push(format!("{top}/{}", dir.display()));
            parent = dir.parent();
        }
    }
    dirs.sort();
    dirs.dedup();
    let written = (|| -> io::Result<()> {
        for dir in &dirs {
            let mut h = header(0o755, 0, tar::EntryType::Directory);
            tar.append_data(&mut h, format!("{dir}/"), io::empty())?;
        }
        for item in items {
            let path = format!("{top}/{}", item.path);
            match &item.source {
                Source::File(from) => {
                    let file = File::open(from)?;
                    let mut h = header(item.mode, file.metadata()?.len(), tar::EntryType::Regular);
                    tar.append_data(&mut h, path, file)?;
                }
                Source::Bytes(bytes) => {
                    let size = bytes.len() as u64;
                    let mut h = header(item.mode, size, tar::EntryType::Regular);
                    tar.append_data(&mut h, path, bytes.as_slice())?;
                }
            }
        }
        tar.into_inner()?.finish()?.flush()
    })();
    written.with_context(|| format!("cannot write {}", part.display()))?;
    fs::rename(&part, archive)
        .with_context(|| format!("cannot rename {} to {}", part.display(), archive.display()))?;
    Ok(fs::metadata(archive)?.len())
}

/// The time stamp of every entry: `SOURCE_DATE_EPOCH` (seconds), 0 when unset.
fn source_date_epoch() -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) => s
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH must be seconds, got `{s}`")),
        Err(_) => Ok(0),
    }
}
