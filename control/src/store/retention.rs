//! The event log's byte bound: the log's size is kept in `meta` by triggers (see `schema`), so
//! checking it after each batch costs one read, and compaction reads only the rows it removes.

use rusqlite::{Connection, OptionalExtension};

use super::error::StoreError;
use super::tables;

/// The log's size in bytes (its events' objects and keys), as the triggers keep it.
pub(crate) fn event_bytes(conn: &Connection) -> Result<u64, StoreError> {
    let value: Option<i64> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'event_bytes'")
        .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)).optional())
        .map_err(StoreError::sql("reading the event log's size"))?;
    // Absent only before the migration that adds it, which opening always runs.
    Ok(value.map_or(0, |bytes| u64::try_from(bytes).unwrap_or(0)))
}

/// Compacts the oldest events until the log holds at most `bound` bytes, keeping the event of
/// `newest` (the last resourceVersion written) whatever its size, so a watcher that is up to
/// date never expires. Returns the compaction floor when it moved.
pub(crate) fn compact_to_bytes(
    conn: &Connection,
    bound: u64,
    newest: u64,
) -> Result<Option<u64>, StoreError> {
    let total = event_bytes(conn)?;
    let Some(excess) = total.checked_sub(bound).filter(|excess| *excess > 0) else {
        return Ok(None);
    };
    let newest = i64::try_from(newest).unwrap_or(i64::MAX);
    let mut statement = conn
        .prepare_cached(
            "SELECT resource_version, octet_length(object) + octet_length(resource)
                                      + octet_length(namespace) + octet_length(name)
             FROM events WHERE resource_version < ?1 ORDER BY resource_version",
        )
        .map_err(StoreError::sql("sizing the oldest events"))?;
    let mut rows = statement
        .query([newest])
        .map_err(StoreError::sql("sizing the oldest events"))?;
    let mut freed = 0u64;
    let mut through = None;
    while freed < excess {
        let Some(row) = rows
            .next()
            .map_err(StoreError::sql("sizing the oldest events"))?
        else {
            break;
        };
        let rv: i64 = row
            .get(0)
            .map_err(StoreError::sql("sizing the oldest events"))?;
        let bytes: i64 = row
            .get(1)
            .map_err(StoreError::sql("sizing the oldest events"))?;
        freed = freed.saturating_add(u64::try_from(bytes).unwrap_or(0));
        through = u64::try_from(rv).ok();
    }
    drop(rows);
    match through {
        Some(through) => tables::compact(conn, through).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::event::{Event, EventType};
    use crate::store::key::ObjectKey;
    use crate::store::schema;

    fn append(conn: &Connection, rv: u64, size: usize) {
        let key = ObjectKey::new("v1/configmaps", "default", "big");
        let json = format!("\"{}\"", "x".repeat(size));
        let event = Event {
            kind: EventType::Modified,
            key,
            resource_version: rv,
            object: serde_json::Value::Null,
            json,
        };
        tables::append_event(conn, &event).expect("append");
    }

    fn summed(conn: &Connection) -> u64 {
        conn.query_row(
            "SELECT COALESCE(SUM(octet_length(object) + octet_length(resource)
                                 + octet_length(namespace) + octet_length(name)), 0) FROM events",
            [],
            |row| row.get::<_, i64>(0),
        )
        .map(|bytes| u64::try_from(bytes).expect("non-negative"))
        .expect("sum")
    }

    #[test]
    fn the_tracked_size_follows_appends_and_compactions() {
        let conn = schema::open_memory().expect("open");
        assert_eq!(event_bytes(&conn).expect("size"), 0);
        for rv in 1..=10 {
            append(&conn, rv, 1000 * usize::try_from(rv).expect("small"));
        }
        assert_eq!(event_bytes(&conn).expect("size"), summed(&conn));
        tables::compact(&conn, 4).expect("compact");
        assert_eq!(event_bytes(&conn).expect("size"), summed(&conn));
        assert!(summed(&conn) > 0);
    }

    #[test]
    fn compaction_removes_the_oldest_past_the_bound_and_keeps_the_newest() {
        let conn = schema::open_memory().expect("open");
        for rv in 1..=10 {
            append(&conn, rv, 10_000);
        }
        let bound = 35_000;
        let floor = compact_to_bytes(&conn, bound, 10).expect("compact");
        assert_eq!(floor, Some(7), "events 8, 9 and 10 fit");
        assert!(event_bytes(&conn).expect("size") <= bound);
        assert_eq!(event_bytes(&conn).expect("size"), summed(&conn));
        assert_eq!(compact_to_bytes(&conn, bound, 10).expect("again"), None);

        // One event larger than the bound stays: it is the newest.
        append(&conn, 11, 100_000);
        compact_to_bytes(&conn, bound, 11).expect("compact");
        assert_eq!(tables::compacted_through(&conn).expect("floor"), 10);
        assert_eq!(event_bytes(&conn).expect("size"), summed(&conn));
        let left: i64 = conn
            .query_row("SELECT COUNT(*) FROM events", [], |row| row.get(0))
            .expect("count");
        assert_eq!(left, 1);
    }

    #[test]
    fn a_database_from_before_the_bound_has_its_log_sized_by_the_migration() {
        let conn = schema::open_memory().expect("open");
        append(&conn, 1, 500);
        conn.execute("DELETE FROM meta WHERE key = 'event_bytes'", [])
            .expect("forget");
        conn.execute_batch(
            "DROP TRIGGER event_bytes_insert; DROP TRIGGER event_bytes_delete;
             PRAGMA user_version = 2;",
        )
        .expect("downgrade");
        let mut conn = conn;
        schema::migrate(&mut conn).expect("migrate");
        assert_eq!(event_bytes(&conn).expect("size"), summed(&conn));
        assert!(summed(&conn) > 500);
    }
}
