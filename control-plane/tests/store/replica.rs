//! What replicas share through the store: leases and change notifications (the replicas
//! helper fills it).

crate::store_cases!();
