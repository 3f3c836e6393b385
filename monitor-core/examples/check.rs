//! Checks the monitors of JSON spec files once and prints each result as JSON; invalid
//! specs print every problem with its field path. Exit code 1 when a check failed, 2 for
//! an invalid spec.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use monitor_core::{Engine, Status, TcpMonitor};

#[tokio::main]
async fn main() {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: check SPEC.json...");
        std::process::exit(2);
    }
    let engine = Engine::new();
    let mut code = 0;
    for path in &paths {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{path}: cannot read: {e}");
                std::process::exit(2);
            }
        };
        let monitor = match TcpMonitor::from_json(&text).map(|m| m.validate()) {
            Ok(Ok(m)) => m,
            Ok(Err(errors)) => {
                eprintln!("{path}: {errors}");
                std::process::exit(2);
            }
            Err(e) => {
                eprintln!("{path}: {e}");
                std::process::exit(2);
            }
        };
        let result = engine.check(&monitor).await;
        println!("{}", result.to_json());
        if result.status == Status::Failed {
            code = 1;
        }
    }
    std::process::exit(code);
}
