//! Checkpoints off the writer's path.
//!
//! SQLite's automatic checkpoint runs inside whichever COMMIT pushes the WAL past its threshold:
//! that commit then copies pages back into the database file and fsyncs it, and every write
//! queued behind it waits. Here the writer never checkpoints; a thread of its own does, every
//! [`CHECKPOINT_EVERY`], with its own connection. PASSIVE checkpoints never block the writer or
//! readers, and the writer restarts the WAL from its beginning once a checkpoint has caught up.

use super::{configure, sql_error};
use crate::storage::{StoreError, StoreResult};
use rusqlite::Connection;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// The checkpoint thread; it stops when this is dropped or [`Checkpointer::stop`]ped.
pub(super) struct Checkpointer {
    stop: mpsc::Sender<()>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    /// Stops the thread and waits for it (at most one checkpoint), closing its connection, so
    /// the writer's last checkpoint at close has the file to itself.
    pub(super) fn stop(&self) {
        let _ = self.stop.send(());
        let thread = self
            .thread
            .lock()
            .expect("checkpointer lock poisoned")
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// Starts checkpointing the database at `path`, whose writer has automatic checkpoints off.
pub(super) fn start(path: &Path) -> StoreResult<Checkpointer> {
    let conn = Connection::open(path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    configure(&conn)?;
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || loop {
            match stopped.recv_timeout(CHECKPOINT_EVERY) {
                Err(RecvTimeoutError::Timeout) => {
                    let done = conn
                        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                        .map_err(sql_error);
                    if let Err(error) = done {
                        tracing::warn!(%error, "WAL checkpoint failed; will retry");
                    }
                }
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
        })
        .map_err(|e| StoreError::Internal(format!("cannot start the checkpoint thread: {e}")))?;
    Ok(Checkpointer {
        stop,
        thread: Mutex::new(Some(thread)),
    })
}
