//! The `monitors` binary: the project's monitors, declared in the modules below, and the
//! monitor command line (`list`, `validate`, `run`, `watch`, `export`, `explain`).

fn main() -> std::process::ExitCode {
    monitor_core::cli::main()
}
