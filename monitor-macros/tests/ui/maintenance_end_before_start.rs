monitor_core::maintenance! {
    id = "xmas-freeze",
    tags = ["db"],
    start = "2026-12-25T02:00:00Z",
    end = "2026-12-24T22:00:00Z",
}

monitor_core::maintenance! {
    id = "long-freeze",
    tags = ["db"],
    start = "2026-12-01T00:00:00Z",
    end = "2026-12-24T00:00:00Z",
}

fn main() {}
