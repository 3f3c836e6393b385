//! The `monitors` binary: the project's monitors, declared with `#[tcp_monitor]` in the
//! modules below (one per kind of service), and the monitor command line (`list`,
//! `validate`, `run`, `watch`, `export`, `explain`, `demo`).

mod databases;
mod edge;
mod mail;
mod services;

monitor_core::monitor_defaults! {
    frequency = "1m",
    locations = ["eu-west-1", "us-east-1"],
    tags = ["prod"],
    retry = fixed(backoff = "10s", max_retries = 2, max_duration = "2m"),
    alert_channels = ["oncall"],
    expiry_warn_days = 30,
    expiry_fail_days = 7,
}

fn main() -> std::process::ExitCode {
    monitor_core::cli::main()
}

#[cfg(test)]
mod tests {
    /// `cargo test` fails when any registered monitor is invalid.
    #[test]
    fn every_monitor_is_valid() {
        monitor_core::testing::assert_registry_valid();
    }

    #[test]
    fn every_kind_of_service_has_a_monitor() {
        let ids: Vec<String> = monitor_core::registry::monitors()
            .unwrap()
            .into_iter()
            .map(|d| d.monitor.id)
            .collect();
        assert_eq!(ids.len(), 12, "{ids:?}");
    }
}
