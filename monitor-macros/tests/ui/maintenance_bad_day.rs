monitor_core::maintenance! {
    id = "db-vacuum",
    tags = ["db"],
    days = [sundy, 7, sunday, sunday],
    start = "03:00",
    end = "04:00",
}

fn main() {}
