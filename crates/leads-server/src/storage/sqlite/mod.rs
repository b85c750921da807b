//! The embedded SQLite backend.
//!
//! One file in WAL mode. Reads run on a fixed set of reader threads, each with a read-only
//! connection of its own, so they never wait for writes; a fixed set, not the runtime's blocking
//! pool, which under load grew to dozens of threads (each with memory of its own) for the same
//! handful of concurrent reads. Writes go to one writer thread that commits
//! whatever has queued up together in one transaction (group commit): under load many requests
//! share one fsync, and each is acknowledged only after its transaction is durable.

mod checkpoint;
mod credentials;
mod directory;
mod exports;
mod imports;
mod leads;
mod sessions;
mod stats;
pub(crate) mod webhooks;

pub use leads::{issued_statements, Query};

use super::{Database, PoolStatus, StoreError, StoreResult};
use crate::domain::CompanyId;
use async_trait::async_trait;
use leads_types::Timestamp;
use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, ErrorCode, OpenFlags};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Migrations in order; each runs once, in a transaction, recorded in `schema_migrations`.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../../../migrations/sqlite/0002_idempotency_claims.sql"),
    ),
    (
        3,
        include_str!("../../../migrations/sqlite/0003_credentials.sql"),
    ),
    (
        4,
        include_str!("../../../migrations/sqlite/0004_lead_counts.sql"),
    ),
    (
        5,
        include_str!("../../../migrations/sqlite/0005_search.sql"),
    ),
    (
        6,
        include_str!("../../../migrations/sqlite/0006_webhooks.sql"),
    ),
    (
        7,
        include_str!("../../../migrations/sqlite/0007_exports.sql"),
    ),
    (
        8,
        include_str!("../../../migrations/sqlite/0008_dashboard_sessions.sql"),
    ),
    (
        9,
        include_str!("../../../migrations/sqlite/0009_referrer_indexing_per_commit.sql"),
    ),
    (
        10,
        include_str!("../../../migrations/sqlite/0010_referrer_index_in_batches.sql"),
    ),
];

/// The migration that made the search tables, which the application then fills.
const SEARCH_MIGRATION: i64 = 5;

/// Reader threads, each with its connection. Reads are CPU-bound once the pages are cached, so
/// more than a few per core gain nothing; a few spare cover reads that wait for the disk.
const READERS: usize = 4;
/// Page cache of each reader connection, in KiB (the writer's is 8 MB).
const READER_CACHE_KIB: u32 = 2048;
/// Writes committed in one transaction at most.
const MAX_GROUP: usize = 512;

pub struct SqliteStore {
    readers: crossbeam_channel::Sender<ReadMessage>,
    reader_threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    read_slots: Arc<Semaphore>,
    writer: mpsc::Sender<Message>,
    checkpointer: checkpoint::Checkpointer,
    /// Told when a committed write queued webhook messages.
    wakeup: Arc<tokio::sync::Notify>,
    /// The database file, for reads that need a connection of their own (an export's snapshot).
    path: std::path::PathBuf,
}

/// What a reader thread is asked to do.
enum ReadMessage {
    Read(Box<dyn FnOnce(&Connection) + Send>),
    Stop,
}

/// What the writer thread is asked to do, in order.
enum Message {
    Write(Job),
    /// Stop after the writes before this one; answer once the file is closed.
    Close(oneshot::Sender<()>),
}

/// A unit of work for the writer thread. It runs inside a savepoint and answers whether it
/// succeeded (so a failure rolls back only its own changes) and how to reply once the group's
/// commit has succeeded or failed. Given no connection, it does nothing and replies with the
/// group's error.
type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Reply) + Send>;
type Reply = Box<dyn FnOnce(StoreResult<()>) + Send>;

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: impl AsRef<Path>) -> StoreResult<Self> {
        let path = path.as_ref().to_path_buf();
        let writer_path = path.clone();
        let conn = tokio::task::spawn_blocking(move || open_writer(&writer_path))
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))??;
        let (tx, rx) = mpsc::channel::<Message>(4 * MAX_GROUP);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| StoreError::Internal(format!("cannot start the writer thread: {e}")))?;
        let checkpointer = checkpoint::start(&path)?;
        let (readers, jobs) = crossbeam_channel::unbounded();
        let mut reader_threads = Vec::with_capacity(READERS);
        for n in 0..READERS {
            let conn = open_reader(&path)?;
            let jobs = jobs.clone();
            let thread = std::thread::Builder::new()
                .name(format!("sqlite-reader-{n}"))
                .spawn(move || reader_loop(conn, jobs))
                .map_err(|e| StoreError::Internal(format!("cannot start a reader thread: {e}")))?;
            reader_threads.push(thread);
        }
        Ok(Self {
            checkpointer,
            readers,
            reader_threads: Mutex::new(reader_threads),
            read_slots: Arc::new(Semaphore::new(READERS)),
            writer: tx,
            wakeup: Arc::default(),
            path,
        })
    }

    /// Runs `f` on a read connection, inside one read transaction (one consistent snapshot).
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.on_reader(move |conn| {
            let tx = conn.unchecked_transaction().map_err(sql_error)?;
            let value = f(&tx)?;
            tx.finish().map_err(sql_error)?;
            Ok(value)
        })
        .await
    }

    /// Runs `f` on a read connection with each statement its own snapshot: for reads of one
    /// statement (or whose statements need not agree), saving a `BEGIN` and a `COMMIT`.
    async fn on_reader<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        // The permit keeps the queue in async land: a read waits here, not in the channel.
        let slot = self
            .read_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("the store is closed".into()))?;
        let (tx, rx) = oneshot::channel();
        let job = Box::new(move |conn: &Connection| {
            let _slot = slot;
            let _ = tx.send(f(conn));
        });
        self.readers
            .send(ReadMessage::Read(job))
            .map_err(|_| StoreError::Unavailable("the readers have stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Internal("a reader dropped a read".into()))?
    }

    /// Runs `f` in the writer's next group transaction; answers once that has committed.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Some(conn) => f(conn),
                None => Err(StoreError::Unavailable(
                    "the write transaction failed".into(),
                )),
            };
            let ok = result.is_ok();
            let reply: Reply = Box::new(move |committed| {
                let _ = tx.send(committed.and(result));
            });
            (ok, reply)
        });
        self.writer
            .send(Message::Write(job))
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Internal("the writer dropped a write".into()))?
    }
}

/// A reader thread: runs reads on its connection until told to stop or the store is dropped.
fn reader_loop(conn: Connection, jobs: crossbeam_channel::Receiver<ReadMessage>) {
    while let Ok(ReadMessage::Read(job)) = jobs.recv() {
        // A read that panics loses its answer (its caller gets an error), not the thread.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&conn)));
    }
}

fn configure(conn: &Connection) -> StoreResult<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(sql_error)?;
    // FULL: a commit is on disk before it is acknowledged, even across power loss.
    conn.execute_batch(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA cache_size = -8000;",
    )
    .map_err(sql_error)?;
    conn.set_prepared_statement_cache_capacity(64);
    // Query-planner stability guarantee: otherwise SQLite reads a bound LIMIT while planning
    // and marks the statement to be prepared again (parsed and planned anew) whenever that
    // parameter is bound again, which the statement cache does on every use: a third of a
    // list's CPU went there. Plans here follow the indexes, never the values.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(sql_error)?;
    Ok(())
}

fn open_writer(path: &Path) -> StoreResult<Connection> {
    let mut conn = Connection::open(path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    configure(&conn)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(sql_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Internal(format!(
            "{} cannot use WAL mode (got {mode})",
            path.display()
        )));
    }
    stats::register_functions(&conn)?;
    migrate(&mut conn)?;
    // The checkpoint thread checkpoints instead, so no commit waits for one.
    conn.execute_batch("PRAGMA wal_autocheckpoint = 0")
        .map_err(sql_error)?;
    Ok(conn)
}

/// A read-only connection set up as the server's readers are: what `leads-bench` measures the
/// database alone on.
pub fn open_reader(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    configure(&conn)?;
    // Each reader keeps a cache of its own, and reads spread over all of them, so a large one
    // is that many copies of the same pages (a walk through a million leads filled four 16 MB
    // caches). A page missing here is one `pread` from the operating system's cache, which
    // every connection shares.
    conn.execute_batch(&format!("PRAGMA cache_size = -{READER_CACHE_KIB}"))
        .map_err(sql_error)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql_error)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .map_err(sql_error)?;
    let applied: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |row| row.get(0),
        )
        .map_err(sql_error)?;
    if let Some((latest, _)) = MIGRATIONS.last() {
        if applied > *latest {
            return Err(StoreError::Internal(format!(
                "the database is at schema version {applied}, newer than this build knows ({latest}); upgrade the server"
            )));
        }
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > applied) {
        tx.execute_batch(sql).map_err(sql_error)?;
        if *version == SEARCH_MIGRATION {
            // Folding is the application's: the rows already there are folded here.
            leads::search::backfill(&tx)?;
        }
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![version, Timestamp::now().as_millis()],
        )
        .map_err(sql_error)?;
    }
    let secret: [u8; 32] = rand::random();
    tx.execute(
        "INSERT OR IGNORE INTO settings (key, value) VALUES ('cursor_secret', ?1)",
        params![secret.as_slice()],
    )
    .map_err(sql_error)?;
    tx.commit().map_err(sql_error)
}

/// Commits queued writes in groups until asked to close or every sender has gone.
fn writer_loop(conn: Connection, mut messages: mpsc::Receiver<Message>) {
    let mut closing = None;
    while closing.is_none() {
        let mut group = Vec::new();
        match messages.blocking_recv() {
            Some(Message::Write(job)) => group.push(job),
            Some(Message::Close(done)) => closing = Some(done),
            None => break,
        }
        while closing.is_none() && group.len() < MAX_GROUP {
            match messages.try_recv() {
                Ok(Message::Write(job)) => group.push(job),
                Ok(Message::Close(done)) => closing = Some(done),
                Err(_) => break,
            }
        }
        if group.is_empty() {
            continue;
        }
        let mut replies = Vec::with_capacity(group.len());
        let began = conn.execute_batch("BEGIN IMMEDIATE").map_err(sql_error);
        if let Err(e) = began {
            // Nothing ran; every job in the group hears why.
            for job in group {
                let (_, reply) = job(None);
                replies.push(reply);
            }
            let message = e.to_string();
            let _ = conn.execute_batch("ROLLBACK");
            for reply in replies {
                reply(Err(StoreError::Unavailable(message.clone())));
            }
            continue;
        }
        // A job alone in its group needs no savepoint, whose journal copies every page the job
        // touches (all of a seed batch's): if it fails, the whole transaction rolls back.
        let alone = group.len() == 1;
        let mut lone_job_failed = false;
        for job in group {
            if alone {
                let (ok, reply) = job(Some(&conn));
                lone_job_failed = !ok;
                replies.push(reply);
                continue;
            }
            if conn.execute_batch("SAVEPOINT job").is_err() {
                let (_, reply) = job(None);
                replies.push(reply);
                continue;
            }
            let (ok, reply) = job(Some(&conn));
            if !ok {
                let _ = conn.execute_batch("ROLLBACK TO job");
            }
            let _ = conn.execute_batch("RELEASE job");
            replies.push(reply);
        }
        // A failed lone job keeps nothing; its own error is its answer. Otherwise, once enough
        // referrers wait, this transaction indexes them all in one statement.
        let committed = if lone_job_failed {
            conn.execute_batch("ROLLBACK").map_err(sql_error)
        } else {
            leads::search::index_pending_referrers(&conn, leads::search::REFERRER_BATCH)
                .and_then(|()| conn.execute_batch("COMMIT").map_err(sql_error))
        };
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for reply in replies {
            reply(match &committed {
                Ok(()) => Ok(()),
                Err(e) => Err(StoreError::Unavailable(e.to_string())),
            });
        }
    }
    // Index the referrers still waiting, so that a database at rest has none (searches find
    // them either way); then fold the WAL back into the main file so it is one file again.
    // On a failure they stay pending, where searches still read them (dropping `tx` rolls back).
    if let Ok(tx) =
        rusqlite::Transaction::new_unchecked(&conn, rusqlite::TransactionBehavior::Immediate)
    {
        if leads::search::index_pending_referrers(&tx, 1).is_ok() {
            let _ = tx.commit();
        }
    }
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
    drop(conn);
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// Maps SQLite's errors: busy or locked means try again later; the rest is internal.
pub(crate) fn sql_error(error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable("the database is busy".into())
        }
        Some(ErrorCode::DiskFull) => StoreError::Unavailable("the disk is full".into()),
        Some(ErrorCode::CannotOpen) => StoreError::Unavailable(error.to_string()),
        _ => StoreError::Internal(error.to_string()),
    }
}

fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

fn ts(millis: i64) -> Timestamp {
    Timestamp::from_millis(millis).unwrap_or_else(|| Timestamp::from_millis(0).expect("epoch"))
}

fn company_exists(conn: &Connection, company: &CompanyId) -> StoreResult<()> {
    conn.prepare_cached("SELECT 1 FROM companies WHERE id = ?1")
        .and_then(|mut st| st.exists(params![company.as_str()]))
        .map_err(sql_error)?
        .then_some(())
        .ok_or_else(|| StoreError::NotFound(format!("no company {company}")))
}

#[async_trait]
impl Database for SqliteStore {
    async fn cursor_secret(&self) -> StoreResult<Vec<u8>> {
        self.read(|conn| {
            conn.query_row(
                "SELECT value FROM settings WHERE key = 'cursor_secret'",
                [],
                |row| row.get(0),
            )
            .map_err(sql_error)
        })
        .await
    }

    async fn close(&self) -> StoreResult<()> {
        self.checkpointer.stop();
        // Readers finish what they hold and close their connections before the writer's last
        // checkpoint folds the WAL back.
        self.read_slots.close();
        let threads = std::mem::take(&mut *self.reader_threads.lock().expect("reader threads"));
        for _ in &threads {
            let _ = self.readers.send(ReadMessage::Stop);
        }
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
        let (done, closed) = oneshot::channel();
        if self.writer.send(Message::Close(done)).await.is_ok() {
            let _ = closed.await;
        }
        Ok(())
    }

    fn pool_status(&self) -> Vec<PoolStatus> {
        let queue = 4 * MAX_GROUP;
        vec![
            PoolStatus {
                name: "sqlite_readers",
                size: READERS,
                in_use: READERS - self.read_slots.available_permits(),
            },
            PoolStatus {
                name: "sqlite_write_queue",
                size: queue,
                in_use: queue - self.writer.capacity(),
            },
        ]
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(sql_error)
        })
        .await
    }
}
