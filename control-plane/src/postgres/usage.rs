//! What each table of the PostgreSQL schema takes: `pg_total_relation_size` (heap, TOAST
//! and indexes), summed over the partitions of a partitioned table.

use tokio_postgres::Transaction;

use crate::store::{Holds, StoreError, TableUsage};

/// Every table with its rows and bytes (indexes included), sorted by table.
pub(super) async fn tables(tx: &Transaction<'_>) -> Result<Vec<TableUsage>, StoreError> {
    let sizes = tx
        .query(
            "SELECT c.relname, CASE WHEN c.relkind = 'p' THEN
                        (SELECT COALESCE(sum(pg_total_relation_size(t.relid)), 0)::int8
                         FROM pg_partition_tree(c.oid) t)
                    ELSE pg_total_relation_size(c.oid) END
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
               AND NOT c.relispartition
             ORDER BY c.relname",
            &[],
        )
        .await?;
    let mut out = Vec::with_capacity(sizes.len());
    for r in &sizes {
        let table: String = r.get(0);
        let bytes: i64 = r.get(1);
        let rows: i64 = tx
            .query_one(
                &format!("SELECT count(*) FROM \"{}\"", table.replace('"', "\"\"")),
                &[],
            )
            .await?
            .get(0);
        out.push(TableUsage {
            holds: holds(&table),
            table,
            rows: u64::try_from(rows).unwrap_or(0),
            bytes: u64::try_from(bytes).unwrap_or(0),
        });
    }
    Ok(out)
}

fn holds(table: &str) -> Holds {
    match table {
        "results" => Holds::RawResults,
        "hourly" => Holds::HourlyRollups,
        "daily" => Holds::DailyRollups,
        _ => Holds::Other,
    }
}
