monitor_core::maintenance! {
    id = "db-vacuum",
    days = [sunday],
    start = "03:00",
    end = "04:00",
}

monitor_core::maintenance! {
    id = "freeze",
    tags = [],
    days = [sunday],
    start = "03:00",
    end = "04:00",
}

fn main() {}
