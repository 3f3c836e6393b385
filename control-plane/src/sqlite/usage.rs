//! What each table of the SQLite file takes, from SQLite's `dbstat` table (pages of each
//! table and of its indexes).

use rusqlite::Transaction;

use super::rows::to_u64;
use crate::store::{Holds, StoreError, TableUsage};

/// Every table with its rows and bytes (indexes included), sorted by table.
pub(super) fn tables(tx: &Transaction<'_>) -> Result<Vec<TableUsage>, StoreError> {
    let mut stmt = tx.prepare(
        "SELECT m.tbl_name, SUM(d.pgsize) FROM dbstat d
         JOIN sqlite_master m ON m.name = d.name
         WHERE m.type IN ('table', 'index')
         GROUP BY m.tbl_name ORDER BY m.tbl_name",
    )?;
    let sizes: Vec<(String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(sizes.len());
    for (table, bytes) in sizes {
        let rows: i64 = tx.query_row(
            &format!("SELECT COUNT(*) FROM \"{}\"", table.replace('"', "\"\"")),
            [],
            |r| r.get(0),
        )?;
        out.push(TableUsage {
            holds: holds(&table),
            table,
            rows: to_u64(rows)?,
            bytes: to_u64(bytes)?,
        });
    }
    Ok(out)
}

fn holds(table: &str) -> Holds {
    match table {
        "raw_results" => Holds::RawResults,
        "rollups_hourly" => Holds::HourlyRollups,
        "rollups_daily" => Holds::DailyRollups,
        _ => Holds::Other,
    }
}
