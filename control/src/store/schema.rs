//! Opening connections: the pragmas that make the database durable and concurrent, and the
//! versioned schema with its migrations.
//!
//! Durability. SQLite in WAL mode with `synchronous=NORMAL` never loses a committed transaction
//! to a *process* crash (the WAL frames are in the OS page cache, which outlives the process),
//! but an OS crash or power loss can roll back the last commits, because the WAL is only fsynced
//! at checkpoints. With `synchronous=FULL` every commit fsyncs the WAL before it returns, so an
//! acknowledged write survives power loss too. We pick **FULL**: a Kubernetes API server
//! acknowledges a write only once it is durable (etcd fsyncs first), and the writer thread's
//! group commit (see `writer`) makes one fsync cover every write queued meanwhile, so the cost is
//! paid per batch, not per write. A kill -9 at any instant is covered either way.
//!
//! The schema's version lives in `PRAGMA user_version`; [`MIGRATIONS`] takes a database of any
//! older version to the current one, each step in its own transaction. There are no foreign
//! keys: events deliberately outlive the objects they describe.

use std::fs::{self, DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::error::StoreError;

/// Migration `i` takes the schema from version `i` to `i + 1`; the current version is their
/// count. Append to this list, never edit an entry that has shipped.
const MIGRATIONS: &[&str] = &[
    // 0 → 1: objects, the event log, and the counters.
    "CREATE TABLE meta (
         key   TEXT PRIMARY KEY NOT NULL,
         value INTEGER NOT NULL
     );
     -- resource_version: the last one handed out (global across resources).
     -- compacted_through: events at or below it have been deleted from the log.
     INSERT INTO meta (key, value) VALUES ('resource_version', 0), ('compacted_through', 0);

     CREATE TABLE objects (
         resource         TEXT NOT NULL,
         namespace        TEXT NOT NULL,
         name             TEXT NOT NULL,
         resource_version INTEGER NOT NULL,
         object           TEXT NOT NULL,
         PRIMARY KEY (resource, namespace, name)
     );

     -- Append-only: one row per resourceVersion, deleted only by compaction.
     CREATE TABLE events (
         resource_version INTEGER PRIMARY KEY NOT NULL,
         type             TEXT NOT NULL CHECK (type IN ('ADDED', 'MODIFIED', 'DELETED')),
         resource         TEXT NOT NULL,
         namespace        TEXT NOT NULL,
         name             TEXT NOT NULL,
         object           TEXT NOT NULL
     );
     CREATE INDEX events_by_resource ON events (resource, resource_version);",
    // 1 → 2: who owns what, kept by triggers in the same transaction as every object write,
    // so the garbage collector finds an owner's dependents by index instead of reading every
    // object in the namespace (at 10,000 Services that read was a second per delete).
    "CREATE TABLE owner_refs (
         owner_uid TEXT NOT NULL,
         resource  TEXT NOT NULL,
         namespace TEXT NOT NULL,
         name      TEXT NOT NULL,
         PRIMARY KEY (owner_uid, resource, namespace, name)
     ) WITHOUT ROWID;
     CREATE INDEX owner_refs_by_object ON owner_refs (resource, namespace, name);

     CREATE TRIGGER owner_refs_insert AFTER INSERT ON objects BEGIN
         INSERT OR IGNORE INTO owner_refs (owner_uid, resource, namespace, name)
         SELECT json_extract(value, '$.uid'), new.resource, new.namespace, new.name
         FROM json_each(new.object, '$.metadata.ownerReferences')
         WHERE json_type(value, '$.uid') = 'text';
     END;
     CREATE TRIGGER owner_refs_update AFTER UPDATE OF object ON objects BEGIN
         DELETE FROM owner_refs
         WHERE resource = old.resource AND namespace = old.namespace AND name = old.name;
         INSERT OR IGNORE INTO owner_refs (owner_uid, resource, namespace, name)
         SELECT json_extract(value, '$.uid'), new.resource, new.namespace, new.name
         FROM json_each(new.object, '$.metadata.ownerReferences')
         WHERE json_type(value, '$.uid') = 'text';
     END;
     CREATE TRIGGER owner_refs_delete AFTER DELETE ON objects BEGIN
         DELETE FROM owner_refs
         WHERE resource = old.resource AND namespace = old.namespace AND name = old.name;
     END;

     INSERT OR IGNORE INTO owner_refs (owner_uid, resource, namespace, name)
     SELECT json_extract(refs.value, '$.uid'), objects.resource, objects.namespace, objects.name
     FROM objects, json_each(objects.object, '$.metadata.ownerReferences') AS refs
     WHERE json_type(refs.value, '$.uid') = 'text';",
    // 2 → 3: the event log's size in bytes, kept by triggers as events are appended and
    // compacted, so bounding the log by bytes never sums the whole table.
    "INSERT INTO meta (key, value)
     SELECT 'event_bytes', COALESCE(SUM(octet_length(object) + octet_length(resource)
                                        + octet_length(namespace) + octet_length(name)), 0)
     FROM events;

     CREATE TRIGGER event_bytes_insert AFTER INSERT ON events BEGIN
         UPDATE meta SET value = value + octet_length(new.object) + octet_length(new.resource)
                                       + octet_length(new.namespace) + octet_length(new.name)
         WHERE key = 'event_bytes';
     END;
     CREATE TRIGGER event_bytes_delete AFTER DELETE ON events BEGIN
         UPDATE meta SET value = value - octet_length(old.object) - octet_length(old.resource)
                                       - octet_length(old.namespace) - octet_length(old.name)
         WHERE key = 'event_bytes';
     END;",
];

/// The schema version this build writes.
pub(crate) fn current_version() -> i64 {
    // The list is a handful of entries long; the conversion cannot truncate.
    MIGRATIONS.len() as i64
}

/// Opens (creating if needed) the database file for the writer, and brings its schema up to date.
pub(crate) fn open_writer(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty())
        && !dir.is_dir()
    {
        DirBuilder::new()
            .recursive(true)
            .mode(PRIVATE_DIR)
            .create(dir)
            .and_then(|()| fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_DIR)))
            .map_err(|e| StoreError::storage("creating the database's directory", e))?;
    }
    make_private(path)?;
    let mut conn = Connection::open(path).map_err(StoreError::sql("opening the database"))?;
    configure(&conn, busy_timeout)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(StoreError::sql("switching to WAL mode"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::storage(
            "switching to WAL mode",
            std::io::Error::other(format!(
                "SQLite kept journal mode {mode:?} (is the file on a network file system?)"
            )),
        ));
    }
    // See the module doc: FULL so an acknowledged write survives power loss as well.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(StoreError::sql("setting synchronous=FULL"))?;
    // A batch of large writes grows the WAL; a checkpoint rewinds it but keeps the file's
    // size unless told otherwise. Past this, the file is cut back after each checkpoint.
    let _: i64 = conn
        .pragma_update_and_check(None, "journal_size_limit", WAL_SIZE_LIMIT, |row| row.get(0))
        .map_err(StoreError::sql("setting journal_size_limit"))?;
    migrate(&mut conn)?;
    // WAL mode has made the -wal and -shm files by now; SQLite gives them the database's mode,
    // and files left by an older version are tightened here.
    make_private(path)?;
    Ok(conn)
}

/// Bytes the WAL file keeps after a checkpoint (64 MiB).
const WAL_SIZE_LIMIT: i64 = 64 << 20;

/// Mode of a directory the store creates for its database.
const PRIVATE_DIR: u32 = 0o700;
/// Mode of the database and its -wal and -shm files: only the owner reads the objects.
const PRIVATE_FILE: u32 = 0o600;

/// Creates the database file with mode 0600 before SQLite does (SQLite would use 0644 less the
/// umask, and gives its -wal and -shm files the database's mode), and sets 0600 on the database
/// and those files where they already exist, whatever mode they were made with.
fn make_private(path: &Path) -> Result<(), StoreError> {
    let fail = |e| StoreError::storage("making the database files private (mode 0600)", e);
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE_FILE)
        .open(path)
        .map_err(fail)?;
    let mut companions = [path.as_os_str().to_owned(), path.as_os_str().to_owned()];
    companions[0].push("-wal");
    companions[1].push("-shm");
    let files = std::iter::once(path.to_path_buf()).chain(companions.into_iter().map(Into::into));
    for file in files {
        match fs::set_permissions(&file, fs::Permissions::from_mode(PRIVATE_FILE)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(fail(e)),
        }
    }
    Ok(())
}

/// Opens another connection to the same file for reads only.
pub(crate) fn open_reader(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(StoreError::sql("opening a read connection"))?;
    configure(&conn, busy_timeout)?;
    // Read-write flags (a read-only connection cannot recover a WAL on its own) but no writes.
    conn.pragma_update(None, "query_only", true)
        .map_err(StoreError::sql("making a read connection query-only"))?;
    Ok(conn)
}

/// An in-memory database with the current schema (tests; nothing survives the process).
pub(crate) fn open_memory() -> Result<Connection, StoreError> {
    let mut conn =
        Connection::open_in_memory().map_err(StoreError::sql("opening an in-memory database"))?;
    migrate(&mut conn)?;
    Ok(conn)
}

fn configure(conn: &Connection, busy_timeout: Duration) -> Result<(), StoreError> {
    // Readers and the writer share the file; a lock held for a moment (a checkpoint, WAL
    // recovery) is waited out rather than reported.
    conn.busy_timeout(busy_timeout)
        .map_err(StoreError::sql("setting the busy timeout"))
}

/// Applies every migration the database has not seen yet.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::sql("starting a schema migration"))?;
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(StoreError::sql("reading the schema version"))?;
        if version > current_version() {
            return Err(StoreError::SchemaTooNew {
                found: version,
                supported: current_version(),
            });
        }
        let Some(step) = usize::try_from(version)
            .ok()
            .and_then(|index| MIGRATIONS.get(index))
        else {
            return Ok(());
        };
        tx.execute_batch(step)
            .map_err(StoreError::sql("migrating the schema"))?;
        tx.pragma_update(None, "user_version", version + 1)
            .map_err(StoreError::sql("recording the schema version"))?;
        tx.commit()
            .map_err(StoreError::sql("committing a schema migration"))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_a_fresh_database_and_is_idempotent() {
        let mut conn = open_memory().expect("open");
        migrate(&mut conn).expect("second run is a no-op");
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .expect("user_version");
        assert_eq!(version, current_version());
    }

    #[test]
    fn owner_references_of_objects_stored_before_the_index_are_indexed_by_the_migration() {
        let mut conn = Connection::open_in_memory().expect("open");
        let first = MIGRATIONS.first().expect("the first migration");
        conn.execute_batch(first).expect("version 1");
        conn.pragma_update(None, "user_version", 1).expect("set");
        conn.execute(
            "INSERT INTO objects VALUES ('pods', 'default', 'p', 1, ?1)",
            [r#"{"metadata":{"name":"p","ownerReferences":[{"uid":"a"},{"uid":"b"},{"name":"no uid"}]}}"#],
        )
        .expect("insert");
        migrate(&mut conn).expect("migrate");
        let owners: Vec<String> = conn
            .prepare("SELECT owner_uid FROM owner_refs ORDER BY owner_uid")
            .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
            .expect("owners");
        assert_eq!(owners, ["a", "b"]);
    }

    #[test]
    fn refuses_a_schema_from_the_future() {
        let mut conn = open_memory().expect("open");
        conn.pragma_update(None, "user_version", current_version() + 1)
            .expect("set");
        let err = migrate(&mut conn).expect_err("newer schema");
        assert!(matches!(err, StoreError::SchemaTooNew { .. }), "{err}");
    }

    #[test]
    fn file_databases_use_wal_and_full_sync() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn =
            open_writer(&dir.path().join("nested/state.db"), Duration::from_secs(1)).expect("open");
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .expect("journal_mode");
        assert_eq!(mode, "wal");
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |row| row.get(0))
            .expect("synchronous");
        assert_eq!(sync, 2, "FULL");
        let limit: i64 = conn
            .pragma_query_value(None, "journal_size_limit", |row| row.get(0))
            .expect("journal_size_limit");
        assert_eq!(limit, WAL_SIZE_LIMIT);
    }
}
