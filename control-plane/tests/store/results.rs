//! Results in the store: storing batches (duplicates ignored), the latest result per
//! monitor and location, history, rollups, uptime and retention.

use control_plane::Store;

fn projects_start_empty(store: &dyn Store) {
    assert!(store.latest_results("p").unwrap().is_empty());
}

crate::store_cases!(projects_start_empty);
