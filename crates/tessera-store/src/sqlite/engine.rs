//! The engine under [`SqliteStore`](super::SqliteStore): one writer thread that commits the writes
//! queued behind each other together, and a few reader connections.
//!
//! Every write is a job sent to the writer thread. The thread takes all the jobs waiting (up to
//! [`MAX_BATCH`]), runs them in one `BEGIN IMMEDIATE … COMMIT`, each in a savepoint of its own so
//! that a failing job undoes only its own work, and answers them once the commit is on disk
//! (`synchronous = FULL`: the commit `fsync`s the write-ahead log). Under load many writes share
//! one commit and one `fsync`; alone, a write pays one of each, as it would on its own connection.
//!
//! Reads run on reader connections of their own (WAL mode lets them read beside the writer), on the
//! blocking thread pool. An in-memory database lives in one connection: there, reads are jobs of the
//! writer too.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{oneshot, Semaphore};

use crate::{PoolUsage, StoreError, StoreResult};

/// Jobs committed together at most: bounds how long the first of them waits for the last.
const MAX_BATCH: usize = 256;

/// Reads on the blocking pool at once, at most (more only add threads for the cores to switch
/// between).
const READERS: u32 = 4;

/// How long a connection waits for a lock another process holds (the CLI writing beside a
/// running server, another node's migration) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Prepared statements kept per connection (the store has about sixty distinct ones).
const STATEMENT_CACHE: usize = 128;

/// The migrations, in order; `PRAGMA user_version` is the number of the last one applied.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/sqlite/0002_single_logout.sql"),
    ),
    (3, include_str!("../../migrations/sqlite/0003_proxy.sql")),
    (4, include_str!("../../migrations/sqlite/0004_oidc.sql")),
    (
        5,
        include_str!("../../migrations/sqlite/0005_service_theme.sql"),
    ),
    (
        6,
        include_str!("../../migrations/sqlite/0006_registry_version.sql"),
    ),
    (
        7,
        include_str!("../../migrations/sqlite/0007_service_tickets_by_key.sql"),
    ),
];

/// Work for a connection: its result, or an error that undoes what it wrote.
pub(super) type Work<T> = Box<dyn FnOnce(&Connection) -> StoreResult<T> + Send>;

/// The SQLite engine: a queue to the writer thread, and the readers.
#[derive(Debug)]
pub(super) struct Engine {
    jobs: Sender<Box<dyn Job>>,
    /// `None` for an in-memory database, which the writer's connection alone holds.
    readers: Option<Arc<Readers>>,
    /// False once the writer thread has stopped.
    writer_alive: Arc<AtomicBool>,
}

impl Engine {
    /// Opens the database at `path` (`:memory:` for one in memory), migrates it and starts the
    /// writer thread. Blocking.
    pub(super) fn open(path: &str) -> StoreResult<Self> {
        let memory = path == ":memory:";
        let mut writer = open_connection(Path::new(path), Role::Writer)?;
        migrate(&mut writer)?;
        let (jobs, queue) = std::sync::mpsc::channel();
        let writer_alive = Arc::new(AtomicBool::new(true));
        let alive = AliveWhileHeld(writer_alive.clone());
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run_writer(&writer, &queue, alive))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the SQLite writer: {e}")))?;
        let readers = (!memory).then(|| {
            Arc::new(Readers {
                path: PathBuf::from(path),
                idle: Mutex::new(Vec::new()),
                opened: AtomicU32::new(0),
                permits: Semaphore::new(READERS as usize),
            })
        });
        Ok(Self {
            jobs,
            readers,
            writer_alive,
        })
    }

    /// Runs `work` on the writer, committed (with whatever else was queued) before this returns;
    /// if it fails, nothing it wrote stays.
    pub(super) async fn write<T: Send + 'static>(&self, work: Work<T>) -> StoreResult<T> {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            work: Some(work),
            outcome: None,
            reply,
        });
        self.jobs.send(job).map_err(|_| writer_stopped())?;
        answer.await.map_err(|_| writer_stopped())?
    }

    /// Runs `work`, a lookup of a few rows by key, on a reader connection on the calling thread.
    /// It sees every write whose call has returned.
    ///
    /// Such a read takes microseconds (its pages are in SQLite's cache or the kernel's): less
    /// than handing it to another thread and back, which is what [`read`](Self::read) costs.
    pub(super) async fn lookup<T: Send + 'static>(&self, work: Work<T>) -> StoreResult<T> {
        match &self.readers {
            Some(readers) => readers.run(work),
            None => self.write(work).await,
        }
    }

    /// Runs `work`, a read of any size, on a reader connection on the blocking thread pool. It
    /// sees every write whose call has returned.
    pub(super) async fn read<T: Send + 'static>(&self, work: Work<T>) -> StoreResult<T> {
        let Some(readers) = &self.readers else {
            return self.write(work).await;
        };
        let _permit = readers
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite readers are closed".into()))?;
        let readers = readers.clone();
        tokio::task::spawn_blocking(move || readers.run(work))
            .await
            .map_err(|e| StoreError::Unavailable(format!("an SQLite read stopped: {e}")))?
    }

    /// Whether the writer thread still takes work.
    pub(super) fn writer_alive(&self) -> bool {
        self.writer_alive.load(Ordering::SeqCst)
    }

    /// The connections open (the writer's and the readers'), and how many are idle.
    pub(super) fn usage(&self) -> PoolUsage {
        let (opened, idle) = self.readers.as_ref().map_or((0, 0), |r| {
            let idle = r.idle.lock().unwrap_or_else(PoisonError::into_inner).len();
            (
                r.opened.load(Ordering::SeqCst),
                u32::try_from(idle).unwrap_or(u32::MAX),
            )
        });
        PoolUsage {
            connections: opened + 1,
            idle,
        }
    }
}

fn writer_stopped() -> StoreError {
    StoreError::Unavailable("the SQLite writer has stopped".into())
}

/// What a connection is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Writer,
    Reader,
}

/// Opens a connection to `path`, created if missing, set up for its role.
fn open_connection(path: &Path, role: Role) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "foreign_keys", true)?;
    match role {
        Role::Writer => {
            let mode: String =
                conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
                tracing::warn!(journal_mode = %mode, "SQLite could not switch to WAL mode");
            }
            // Each commit `fsync`s the log: a batch is on disk when its callers are answered.
            conn.pragma_update(None, "synchronous", "FULL")?;
            // Each job of a batch runs in a savepoint, whose undo copies (the statement journal)
            // SQLite would spill to a temporary file on disk past 64 KiB: created, written and
            // deleted for most batches. In memory they are a copy of the pages the job changes.
            conn.pragma_update(None, "temp_store", "MEMORY")?;
        }
        Role::Reader => conn.pragma_update(None, "query_only", true)?,
    }
    Ok(conn)
}

/// Applies the migrations the database lacks, each in a transaction with its new version.
///
/// A database that earlier versions of Tessera migrated kept its record in sqlx's
/// `_sqlx_migrations` table instead of `user_version`: that record is taken over once.
fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let failed = |version: i64| {
        move |e: rusqlite::Error| StoreError::MigrationFailed {
            version,
            reason: e.to_string(),
        }
    };
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(failed(0))?;
    let mut applied: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(failed(0))?;
    if applied == 0 {
        let tracked_by_sqlx: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
                [],
                |row| row.get(0),
            )
            .map_err(failed(0))?;
        if tracked_by_sqlx {
            applied = tx
                .query_row(
                    "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success",
                    [],
                    |row| row.get(0),
                )
                .map_err(failed(0))?;
        }
    }
    let known = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if applied > known {
        return Err(StoreError::MigrationFailed {
            version: applied,
            reason: format!(
                "the database was migrated by a newer Tessera (to version {applied}; this one \
                 knows up to {known}); run that version, or restore a backup"
            ),
        });
    }
    let pending = MIGRATIONS.iter().filter(|(v, _)| *v > applied);
    for (version, sql) in pending.collect::<Vec<_>>() {
        tx.execute_batch(sql).map_err(failed(*version))?;
        applied = *version;
    }
    tx.pragma_update(None, "user_version", applied)
        .map_err(failed(applied))?;
    tx.commit().map_err(failed(applied))?;
    Ok(())
}

// --- the writer ---------------------------------------------------------------------------

/// A write waiting for the writer thread, type-erased.
trait Job: Send {
    /// Runs the work; whether it succeeded (its writes stay) or failed (they are undone).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Records why the work could not run.
    fn fail(&mut self, error: StoreError);
    /// Answers the caller once the batch's transaction has ended: committed, or not.
    fn answer(self: Box<Self>, committed: Result<(), &rusqlite::Error>);
}

impl std::fmt::Debug for dyn Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

struct Pending<T> {
    work: Option<Work<T>>,
    outcome: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T: Send> Job for Pending<T> {
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| work(conn))).unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "a database write panicked; it was undone".into(),
            ))
        });
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn fail(&mut self, error: StoreError) {
        self.work = None;
        self.outcome = Some(Err(error));
    }

    fn answer(self: Box<Self>, committed: Result<(), &rusqlite::Error>) {
        let outcome = match (committed, self.outcome) {
            (_, Some(Err(e))) => Err(e),
            (Ok(()), Some(Ok(value))) => Ok(value),
            (Err(e), Some(Ok(_))) => Err(StoreError::Sqlite(copy_error(e))),
            (_, None) => Err(StoreError::Unavailable("the write did not run".into())),
        };
        // The caller may have gone (its request was cancelled): the write stands regardless.
        let _ = self.reply.send(outcome);
    }
}

/// The same error, for each of the callers one failure concerns.
fn copy_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}

/// Sets the flag to false when dropped: when the writer thread ends, even by a panic.
struct AliveWhileHeld(Arc<AtomicBool>);

impl Drop for AliveWhileHeld {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// The writer thread: commits the queued jobs batch by batch, until every sender is gone.
fn run_writer(conn: &Connection, queue: &Receiver<Box<dyn Job>>, _alive: AliveWhileHeld) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        batch.extend(queue.try_iter().take(MAX_BATCH - 1));
        commit_batch(conn, batch);
    }
}

/// Runs `batch` in one transaction, each job in a savepoint, and answers every job after the
/// commit (or its failure).
fn commit_batch(conn: &Connection, mut batch: Vec<Box<dyn Job>>) {
    if let Err(e) = run_statement(conn, "BEGIN IMMEDIATE") {
        answer_all(batch, Err(&e));
        return;
    }
    for job in &mut batch {
        if let Err(e) = run_statement(conn, "SAVEPOINT job") {
            job.fail(e.into());
            continue;
        }
        let ok = job.run(conn);
        let ended = if ok {
            run_statement(conn, "RELEASE job")
        } else {
            run_statement(conn, "ROLLBACK TO job").and_then(|()| run_statement(conn, "RELEASE job"))
        };
        if let Err(e) = ended {
            job.fail(e.into());
        }
        if conn.is_autocommit() {
            // SQLite rolled the whole transaction back (an I/O error, a full disk): nothing of
            // this batch was kept, and no job may run outside a transaction.
            let lost = rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                Some("the transaction was rolled back".into()),
            );
            answer_all(batch, Err(&lost));
            return;
        }
    }
    let committed = run_statement(conn, "COMMIT");
    if committed.is_err() && !conn.is_autocommit() {
        let _ = run_statement(conn, "ROLLBACK");
    }
    answer_all(batch, committed.as_ref().map(|_| ()));
}

fn answer_all(batch: Vec<Box<dyn Job>>, committed: Result<(), &rusqlite::Error>) {
    for job in batch {
        job.answer(committed);
    }
}

fn run_statement(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

// --- the readers --------------------------------------------------------------------------

/// Reader connections, opened on demand and kept idle: as many as reads ever ran at once (at most
/// [`READERS`] on the blocking pool, one per permit, and one per async worker thread for lookups).
#[derive(Debug)]
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    opened: AtomicU32,
    permits: Semaphore,
}

impl Readers {
    /// Runs `work` on an idle connection (or a new one). Blocking.
    fn run<T>(&self, work: Work<T>) -> StoreResult<T> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = open_connection(&self.path, Role::Reader)?;
                self.opened.fetch_add(1, Ordering::SeqCst);
                conn
            }
        };
        let outcome = work(&conn);
        if conn.is_autocommit() {
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
        } else {
            // A read left a transaction open (it failed half-way): close the connection.
            self.opened.fetch_sub(1, Ordering::SeqCst);
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn memory() -> Engine {
        Engine::open(":memory:").unwrap()
    }

    #[tokio::test]
    async fn a_failed_job_undoes_only_its_own_writes() {
        let engine = memory();
        engine
            .write(Box::new(|c| {
                c.execute_batch("CREATE TABLE t (v INTEGER PRIMARY KEY)")?;
                Ok(())
            }))
            .await
            .unwrap();
        // Queue three jobs at once so that they share a batch; the middle one fails after writing.
        let insert = |v: i64, fail: bool| -> Work<()> {
            Box::new(move |c| {
                c.execute("INSERT INTO t (v) VALUES (?)", [v])?;
                if fail {
                    return Err(StoreError::Conflict(format!("value {v}")));
                }
                Ok(())
            })
        };
        let (a, b, c) = tokio::join!(
            engine.write(insert(1, false)),
            engine.write(insert(2, true)),
            engine.write(insert(3, false)),
        );
        a.unwrap();
        assert!(matches!(b, Err(StoreError::Conflict(_))));
        c.unwrap();
        let values: Vec<i64> = engine
            .read(Box::new(|c| {
                let mut stmt = c.prepare("SELECT v FROM t ORDER BY v")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            }))
            .await
            .unwrap();
        assert_eq!(values, [1, 3]);
    }

    /// A job that changes far more than SQLite's statement journal keeps in memory by default
    /// (64 KiB) and then fails is undone alone, its batch's other jobs committed: the journal
    /// is held in memory (`temp_store`), not spilled to a temporary file.
    #[tokio::test]
    async fn a_failed_job_that_changed_many_pages_is_undone_in_a_file_database() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path().join("t.db").to_str().unwrap()).unwrap();
        let temp_store: i64 = engine
            .write(Box::new(|c| {
                c.execute_batch(
                    "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB NOT NULL);
                     WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 400)
                     INSERT INTO t SELECT k, zeroblob(1000) FROM n;",
                )?;
                Ok(c.pragma_query_value(None, "temp_store", |r| r.get(0))?)
            }))
            .await
            .unwrap();
        assert_eq!(temp_store, 2, "the writer keeps temporary data in memory");
        let rewrite_all_then = |fail: bool| -> Work<()> {
            Box::new(move |c| {
                c.execute("UPDATE t SET v = randomblob(1000)", [])?;
                if fail {
                    return Err(StoreError::Conflict("after rewriting every row".into()));
                }
                Ok(())
            })
        };
        let marker = |k: i64| -> Work<()> {
            Box::new(move |c| {
                c.execute("INSERT INTO t (k, v) VALUES (?, x'01')", [k])?;
                Ok(())
            })
        };
        let (a, b, c) = tokio::join!(
            engine.write(marker(1001)),
            engine.write(rewrite_all_then(true)),
            engine.write(marker(1002)),
        );
        a.unwrap();
        assert!(matches!(b, Err(StoreError::Conflict(_))));
        c.unwrap();
        let (zeroed, markers): (i64, i64) = engine
            .read(Box::new(|c| {
                Ok(c.query_row(
                    "SELECT count(*) FILTER (WHERE k <= 400 AND v = zeroblob(1000)),
                            count(*) FILTER (WHERE k > 1000) FROM t",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?)
            }))
            .await
            .unwrap();
        assert_eq!((zeroed, markers), (400, 2));
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_the_writer_goes_on() {
        let engine = memory();
        let err = engine
            .write::<()>(Box::new(|_| panic!("boom")))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        assert!(engine.writer_alive());
        let one: i64 = engine
            .write(Box::new(|c| Ok(c.query_row("SELECT 1", [], |r| r.get(0))?)))
            .await
            .unwrap();
        assert_eq!(one, 1);
    }

    #[tokio::test]
    async fn a_database_of_a_newer_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = Engine::open(path.to_str().unwrap()).unwrap_err();
        assert!(err.to_string().contains("newer Tessera"), "{err}");
    }

    #[tokio::test]
    async fn migrations_recorded_by_sqlx_are_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            // A database an earlier Tessera migrated to version 2, with sqlx's record of it.
            let conn = Connection::open(&path).unwrap();
            for (_, sql) in &MIGRATIONS[..2] {
                conn.execute_batch(sql).unwrap();
            }
            conn.execute_batch(
                "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, success BOOLEAN NOT NULL);
                 INSERT INTO _sqlx_migrations VALUES (1, TRUE), (2, TRUE);",
            )
            .unwrap();
        }
        let engine = Engine::open(path.to_str().unwrap()).unwrap();
        let version: i64 = engine
            .read(Box::new(|c| {
                Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?)
            }))
            .await
            .unwrap();
        assert_eq!(version, MIGRATIONS.last().unwrap().0);
    }

    #[tokio::test]
    async fn service_tickets_keep_their_rows_when_rekeyed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            // A database at version 6: service tickets still cascade from their session.
            let conn = Connection::open(&path).unwrap();
            for (_, sql) in &MIGRATIONS[..6] {
                conn.execute_batch(sql).unwrap();
            }
            conn.execute_batch(
                "PRAGMA user_version = 6;
                 INSERT INTO sessions VALUES ('s1', 'tgt', 'alice', '{}', 1, 1, 0, 0, 9);
                 INSERT INTO service_tickets VALUES
                     ('k1', 'https://a/', 's1', 'alice', '{}', 1, 0, 1, 9, '[\"https://p/\"]');",
            )
            .unwrap();
        }
        let engine = Engine::open(path.to_str().unwrap()).unwrap();
        let kept: (String, String, String) = engine
            .write(Box::new(|c| {
                // No foreign key any more: a ticket may outlive its session until the sweep.
                c.execute_batch(
                    "DELETE FROM sessions;
                     INSERT INTO service_tickets (ticket_key, service, session_id, username,
                         attributes, from_new_login, long_term, authenticated_at, expires_at)
                     VALUES ('k2', 'https://b/', 'gone', 'bob', '{}', 0, 0, 1, 9);",
                )?;
                Ok(c.query_row(
                    "SELECT service, session_id, proxies FROM service_tickets WHERE ticket_key = 'k1'",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?)
            }))
            .await
            .unwrap();
        assert_eq!(
            kept,
            ("https://a/".into(), "s1".into(), r#"["https://p/"]"#.into())
        );
    }
}
