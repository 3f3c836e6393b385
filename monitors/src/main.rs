//! The `monitors` binary: the project's monitors, declared with `#[tcp_monitor]` in the
//! modules below (one per kind of service) with their maintenance windows (`maintenance!`),
//! and the monitor command line (`list`,
//! `validate`, `run`, `watch`, `agent`, `export`, `explain`, `demo`).

mod databases;
mod directory;
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
        monitor_testing::assert_registry_valid();
    }

    /// Every window is valid, names only declared monitors, and covers the monitors its
    /// comment says.
    #[test]
    fn every_maintenance_window_is_valid() {
        use monitor_core::registry;
        let monitors: Vec<_> = registry::monitors()
            .unwrap()
            .into_iter()
            .map(|d| d.monitor)
            .collect();
        let windows = registry::maintenance().unwrap();
        assert_eq!(registry::check_windows(&windows, &monitors), Ok(Vec::new()));
        let covered = |id: &str| -> Vec<&str> {
            let w = windows.iter().find(|w| w.window.id == id).unwrap();
            monitors
                .iter()
                .filter(|m| w.window.covers(&m.id, &m.tags))
                .map(|m| m.id.as_str())
                .collect()
        };
        assert_eq!(windows.len(), 1);
        assert_eq!(
            covered("db-weekly"),
            [
                "databases::mongodb",
                "databases::mysql",
                "databases::postgres",
                "databases::postgres_primary",
                "databases::postgres_replica"
            ]
        );
        assert_eq!(windows[0].location.file, "monitors/src/databases.rs");
    }

    #[test]
    fn every_kind_of_service_has_a_monitor() {
        let monitors: Vec<_> = monitor_core::registry::monitors()
            .unwrap()
            .into_iter()
            .map(|d| d.monitor)
            .collect();
        let ids: Vec<&str> = monitors.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids.len(), 16, "{ids:?}");
        // Every protocol recipe is shown by one monitor.
        let mut recipes: Vec<&str> = monitors
            .iter()
            .filter_map(|m| m.recipe.as_ref().map(monitor_core::Recipe::name))
            .collect();
        recipes.sort_unstable();
        recipes.dedup();
        let mut all = monitor_core::model::RECIPES.to_vec();
        all.sort_unstable();
        assert_eq!(recipes, all, "{ids:?}");
        // The custom protocol and the load balancer speak no recipe; a backend behind the
        // balancer takes a PROXY v2 header.
        let bare: Vec<&str> = monitors
            .iter()
            .filter(|m| m.recipe.is_none())
            .map(|m| m.id.as_str())
            .collect();
        assert_eq!(bare, ["edge::load_balancer", "ledger-protocol"]);
        assert!(monitors.iter().any(|m| m.id == "edge::imap_backend"
            && m.proxy_protocol == Some(monitor_core::ProxyProtocol::V2)));
    }
}
