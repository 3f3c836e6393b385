monitor_core::maintenance! {
    id = "db-vacuum",
    tags = ["db"],
    days = [sunday],
    start = "3:00",
    end = "24:00",
}

monitor_core::maintenance! {
    id = "freeze",
    tags = ["db"],
    start = "03:00",
    end = "2026-12-25 02:00",
}

fn main() {}
