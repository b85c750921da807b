//! The export worker: takes jobs from the database, writes their files, records how they ended,
//! and expires old ones. One runs inside every `leads serve`; any instance may take any job.
//!
//! A job is held with a lease, renewed about every second while its file is written, together
//! with `progress_percent`. A worker that crashes leaves a lease that runs out, and the job is
//! taken again from the start by whichever worker looks next; a worker that shuts down gives its
//! jobs back at once. The file is written beside its final name and renamed only once whole and
//! on disk, so a download never sees half a file.

use super::{file_name, ExportSettings};
use crate::domain::ids::random_base62;
use crate::domain::{ExportId, Timestamp};
use crate::formats::csv::{LeadColumn, LeadCsvOptions, LeadCsvWriter};
use crate::storage::exports::{ExportOutcome, ExportRow, ExportStore, Lease, SnapshotPart};
use crate::storage::StoreError;
use chrono_tz::Tz;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

/// How often the worker looks for jobs when it has room for one.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// How often exports past their retention are looked for.
const EXPIRE_EVERY: Duration = Duration::from_secs(60);
/// Exports expired per look.
const EXPIRE_BATCH: u32 = 100;
/// Batches of leads in flight between the snapshot read and the file at most: the memory a job
/// holds is this many batches, whatever the number of leads.
const BATCHES_IN_FLIGHT: usize = 4;
/// Progress and lease are written at most this often.
const RENEW_EVERY: Duration = Duration::from_secs(1);

/// A running worker. [`ExportWorker::shutdown`] stops it; dropping the handle leaves it running
/// until the runtime ends.
pub struct ExportWorker {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ExportWorker {
    /// Starts the worker over `store`, writing files to `dir`.
    pub fn start(store: Arc<dyn ExportStore>, settings: ExportSettings, dir: PathBuf) -> Self {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(store, settings, dir, stopped));
        Self { stop, task }
    }

    /// Stops taking jobs, stops the running ones (giving them back as `pending`, so another
    /// instance or the next start takes them at once) and waits until they have.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn run(
    store: Arc<dyn ExportStore>,
    settings: ExportSettings,
    dir: PathBuf,
    mut stopped: watch::Receiver<bool>,
) {
    // None at all (0) leaves the jobs to other instances.
    let slots = Arc::new(Semaphore::new(settings.concurrency));
    let mut jobs = JoinSet::new();
    let mut poll = tokio::time::interval(POLL_EVERY);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut expire = tokio::time::interval(EXPIRE_EVERY);
    expire.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A dropped handle can no longer stop the worker: it then runs as long as the runtime.
    let mut stoppable = true;
    loop {
        tokio::select! {
            changed = stopped.changed(), if stoppable => match changed {
                Ok(()) => break,
                Err(_) => stoppable = false,
            },
            _ = poll.tick() => {
                // Take jobs while there is room and there are jobs.
                while let Ok(slot) = slots.clone().try_acquire_owned() {
                    let lease = Lease {
                        token: random_base62(24),
                        until: Timestamp::now().as_millis() + settings.lease.as_millis() as i64,
                    };
                    match store.claim_export(lease.clone(), Timestamp::now().as_millis()).await {
                        Ok(Some(job)) => {
                            tracing::info!(export = %job.id, "export started");
                            let job = Job {
                                store: store.clone(),
                                settings: settings.clone(),
                                dir: dir.clone(),
                                row: job,
                                lease,
                                stopped: stopped.clone(),
                            };
                            jobs.spawn(async move {
                                job.run().await;
                                drop(slot);
                            });
                        }
                        Ok(None) => break,
                        Err(error) => {
                            tracing::warn!(%error, "looking for export jobs failed; will retry");
                            break;
                        }
                    }
                }
            }
            _ = expire.tick() => expire_due(store.as_ref(), &dir, Timestamp::now().as_millis()).await,
            Some(_) = jobs.join_next(), if !jobs.is_empty() => {}
        }
    }
    // The running jobs see the same stop and give their jobs back.
    while jobs.join_next().await.is_some() {}
}

/// Deletes the files (in `dir`) of exports whose retention has passed at `now` (milliseconds)
/// and marks them `expired`, up to a batch at a time; the worker runs it every minute. A file
/// that cannot be deleted leaves its export as it was, to be tried again.
pub async fn expire_due(store: &dyn ExportStore, dir: &Path, now: i64) {
    let due = match store.exports_due_to_expire(now, EXPIRE_BATCH).await {
        Ok(due) => due,
        Err(error) => {
            tracing::warn!(%error, "looking for expired exports failed; will retry");
            return;
        }
    };
    for export in due {
        if let Some(name) = &export.file_name {
            match tokio::fs::remove_file(dir.join(name)).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    tracing::warn!(export = %export.id, %error, "cannot delete an expired export's file; will retry");
                    continue;
                }
            }
        }
        match store.mark_export_expired(export.id.clone(), now).await {
            Ok(()) => tracing::info!(export = %export.id, "export expired"),
            Err(error) => {
                tracing::warn!(export = %export.id, %error, "cannot mark an export expired")
            }
        }
    }
}

/// How writing a job's file ended, short of success.
enum Stop {
    /// The job cannot succeed: record it `failed` with this reason.
    Failed(String),
    /// The worker is shutting down, or the database is unavailable: give the job back.
    GiveBack,
    /// Another worker holds the job now: touch nothing.
    LostLease,
}

impl From<StoreError> for Stop {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => Stop::GiveBack,
            other => {
                tracing::error!(error = %other, "an export's read failed");
                Stop::Failed("The leads could not be read.".into())
            }
        }
    }
}

/// One job being run.
struct Job {
    store: Arc<dyn ExportStore>,
    settings: ExportSettings,
    dir: PathBuf,
    row: ExportRow,
    lease: Lease,
    stopped: watch::Receiver<bool>,
}

impl Job {
    async fn run(self) {
        let outcome = match self.write().await {
            Ok((file_name, row_count)) => ExportOutcome::Completed {
                file_name,
                row_count,
            },
            Err(Stop::Failed(reason)) => ExportOutcome::Failed { reason },
            Err(Stop::GiveBack) => {
                let now = Timestamp::now().as_millis();
                if let Err(error) = self
                    .store
                    .release_export(self.row.id.clone(), self.lease.token.clone(), now)
                    .await
                {
                    tracing::warn!(export = %self.row.id, %error, "cannot give an export back; its lease will run out");
                }
                tracing::info!(export = %self.row.id, "export given back unfinished");
                return;
            }
            Err(Stop::LostLease) => {
                tracing::warn!(export = %self.row.id, "export taken over by another worker");
                return;
            }
        };
        finish(self.store.as_ref(), &self.row.id, &self.lease, outcome).await;
    }

    /// Writes the file; answers its name and how many leads it holds.
    async fn write(&self) -> Result<(String, i64), Stop> {
        let spec = &self.row.spec;
        let columns = spec
            .columns
            .iter()
            .map(|name| name.parse::<LeadColumn>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Stop::Failed(e.to_string()))?;
        let zone: Tz = spec
            .timezone
            .parse()
            .map_err(|_| Stop::Failed(format!("unknown time zone {:?}", spec.timezone)))?;
        let include_email = spec.include_email;
        let final_name = file_name(&self.row.id);
        let part = self
            .dir
            .join(format!("{final_name}.{}.part", &self.lease.token[..8]));
        let dir = self.dir.clone();
        let opened = part.clone();
        let file = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            File::create(&opened)
        })
        .await
        .map_err(|e| Stop::Failed(format!("the file could not be created: {e}")))?
        .map_err(|e| file_error("created", &e))?;
        let mut csv = LeadCsvWriter::new(
            BufWriter::with_capacity(256 * 1024, file),
            LeadCsvOptions {
                columns,
                time_zone: Some(zone),
                ..LeadCsvOptions::default()
            },
        );
        let written = async move {
            csv.write_header().map_err(|e| file_error("written", &e))?;
            let (tx, mut rx) = mpsc::channel(BATCHES_IN_FLIGHT);
            let store = self.store.clone();
            let filter = spec.lead_filter(&self.row.company).map_err(Stop::Failed)?;
            let read = tokio::spawn(async move { store.snapshot_leads(filter, tx).await });
            let mut total = 0u64;
            let mut count = 0u64;
            let mut renewed = Instant::now();
            while let Some(part) = rx.recv().await {
                if *self.stopped.borrow() {
                    return Err(Stop::GiveBack);
                }
                let batch = match part {
                    SnapshotPart::Total(n) => {
                        total = n;
                        continue;
                    }
                    SnapshotPart::Rows(batch) => batch,
                };
                count += batch.len() as u64;
                csv = tokio::task::spawn_blocking(move || {
                    for row in batch {
                        let id = row.id.clone();
                        let lead = row.into_lead(include_email).map_err(|e| {
                            tracing::error!(lead = %id, error = %e, "a stored lead cannot be shown");
                            Stop::Failed("A lead could not be read.".into())
                        })?;
                        csv.write_lead(&lead).map_err(|e| file_error("written", &e))?;
                    }
                    Ok::<_, Stop>(csv)
                })
                .await
                .map_err(|e| Stop::Failed(format!("writing the file failed: {e}")))??;
                if renewed.elapsed() >= RENEW_EVERY {
                    renewed = Instant::now();
                    self.renew(progress(count, total)).await?;
                }
            }
            read.await
                .map_err(|e| Stop::Failed(format!("reading the leads failed: {e}")))??;
            Ok((csv, count))
        }
        .await;
        let (csv, count) = match written {
            Ok(done) => done,
            Err(stop) => {
                let _ = tokio::fs::remove_file(&part).await;
                return Err(stop);
            }
        };
        let target = self.dir.join(&final_name);
        let finished = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let file = csv.into_inner()?.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            std::fs::rename(&part, &target).inspect_err(|_| {
                let _ = std::fs::remove_file(&part);
            })
        })
        .await
        .map_err(|e| Stop::Failed(format!("finishing the file failed: {e}")))?;
        finished.map_err(|e| file_error("finished", &e))?;
        Ok((final_name, count as i64))
    }

    /// Renews the lease and records progress; a lost lease stops the job.
    async fn renew(&self, progress_percent: i32) -> Result<(), Stop> {
        let now = Timestamp::now().as_millis();
        let until = now + self.settings.lease.as_millis() as i64;
        let held = self
            .store
            .renew_export(
                self.row.id.clone(),
                self.lease.token.clone(),
                until,
                progress_percent,
                now,
            )
            .await?;
        if held {
            Ok(())
        } else {
            Err(Stop::LostLease)
        }
    }
}

/// Percent done, 0 to 99 while running (100 is for `completed`).
fn progress(done: u64, total: u64) -> i32 {
    if total == 0 {
        return 0;
    }
    ((done.min(total) * 100 / total) as i32).min(99)
}

fn file_error(what: &str, error: &std::io::Error) -> Stop {
    tracing::error!(%error, "an export file could not be {what}");
    Stop::Failed(format!("The file could not be {what} ({}).", error.kind()))
}

/// Records how the job `id` held with `lease` ended. The one place a job finishes or fails: the
/// `export.completed` and `export.failed` events belong here.
async fn finish(store: &dyn ExportStore, id: &ExportId, lease: &Lease, outcome: ExportOutcome) {
    let now = Timestamp::now().as_millis();
    let completed = matches!(outcome, ExportOutcome::Completed { .. });
    match store
        .finish_export(id.clone(), lease.token.clone(), outcome, now)
        .await
    {
        Ok(true) if completed => tracing::info!(export = %id, "export completed"),
        Ok(true) => tracing::warn!(export = %id, "export failed"),
        Ok(false) => {
            tracing::warn!(export = %id, "export finished after its lease was lost; another worker has it")
        }
        Err(error) => {
            tracing::warn!(export = %id, %error, "cannot record how an export ended; its lease will run out and it will run again")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::progress;

    #[test]
    fn progress_moves_from_0_to_99_and_never_claims_done() {
        assert_eq!(progress(0, 0), 0);
        assert_eq!(progress(0, 10), 0);
        assert_eq!(progress(5, 10), 50);
        assert_eq!(progress(10, 10), 99);
        assert_eq!(progress(11, 10), 99);
    }
}
