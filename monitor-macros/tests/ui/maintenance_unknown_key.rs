monitor_core::maintenance! {
    id = "db-vacuum",
    tag = ["db"],
    id = "again",
    days = [sunday],
    start = "03:00",
    end = "04:00",
}

fn main() {}
