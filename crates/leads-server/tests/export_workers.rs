//! The export workers' limits, on both backends: an instance runs at most
//! `--export-concurrency` jobs at once and the rest wait as `pending`; several instances on one
//! database share the jobs, and none is run by two of them.
//!
//! The server under test runs no export worker of its own (`--export-concurrency 0`); the test
//! starts workers over a store that holds every job's snapshot read until it is let go, so the
//! jobs can be seen running.

mod common;

use async_trait::async_trait;
use common::TestApp;
use leads_server::app::Config;
use leads_server::domain::{CompanyId, ExportId};
use leads_server::exports::worker::ExportWorker;
use leads_server::exports::ExportSettings;
use leads_server::storage::exports::{ExportFilter, ExportOutcome, Lease, SnapshotPart};
use leads_server::storage::{ExportRow, ExportStore, LeadFilter, StoreResult};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

conformance!(
    configured by no_export_worker;
    jobs_past_the_concurrency_wait_pending_and_no_job_runs_on_two_instances,
);

fn no_export_worker(config: &mut Config) {
    config.exports.concurrency = 0;
}

/// An export store whose snapshot reads wait until the gate opens, and which notes every job it
/// hands out and every read in progress.
struct Gated {
    inner: Arc<dyn ExportStore>,
    /// Which worker this store serves, for the notes.
    worker: usize,
    gate: watch::Receiver<bool>,
    notes: Arc<Mutex<Notes>>,
}

#[derive(Default)]
struct Notes {
    /// Each export handed out, with the workers it went to, in order.
    claims: BTreeMap<String, Vec<usize>>,
    /// Snapshot reads waiting at the gate, by worker.
    reading: BTreeMap<usize, usize>,
}

#[async_trait]
impl ExportStore for Gated {
    async fn create_export(&self, export: ExportRow) -> StoreResult<()> {
        self.inner.create_export(export).await
    }
    async fn find_export(&self, c: CompanyId, id: ExportId) -> StoreResult<Option<ExportRow>> {
        self.inner.find_export(c, id).await
    }
    async fn export_by_id(&self, id: ExportId) -> StoreResult<Option<ExportRow>> {
        self.inner.export_by_id(id).await
    }
    async fn list_exports(&self, filter: ExportFilter) -> StoreResult<Vec<ExportRow>> {
        self.inner.list_exports(filter).await
    }
    async fn claim_export(&self, lease: Lease, now: i64) -> StoreResult<Option<ExportRow>> {
        let claimed = self.inner.claim_export(lease, now).await?;
        if let Some(row) = &claimed {
            let mut notes = self.notes.lock().unwrap();
            let workers = notes.claims.entry(row.id.to_string()).or_default();
            workers.push(self.worker);
        }
        Ok(claimed)
    }
    async fn renew_export(
        &self,
        id: ExportId,
        token: String,
        until: i64,
        progress: i32,
        now: i64,
    ) -> StoreResult<bool> {
        self.inner
            .renew_export(id, token, until, progress, now)
            .await
    }
    async fn finish_export(
        &self,
        id: ExportId,
        token: String,
        outcome: ExportOutcome,
        now: i64,
    ) -> StoreResult<bool> {
        self.inner.finish_export(id, token, outcome, now).await
    }
    async fn release_export(&self, id: ExportId, token: String, now: i64) -> StoreResult<()> {
        self.inner.release_export(id, token, now).await
    }
    async fn exports_due_to_expire(&self, now: i64, limit: u32) -> StoreResult<Vec<ExportRow>> {
        self.inner.exports_due_to_expire(now, limit).await
    }
    async fn mark_export_expired(&self, id: ExportId, now: i64) -> StoreResult<()> {
        self.inner.mark_export_expired(id, now).await
    }
    async fn link_secret(&self) -> StoreResult<Vec<u8>> {
        self.inner.link_secret().await
    }
    async fn snapshot_leads(
        &self,
        filter: LeadFilter,
        out: mpsc::Sender<SnapshotPart>,
    ) -> StoreResult<()> {
        *self
            .notes
            .lock()
            .unwrap()
            .reading
            .entry(self.worker)
            .or_default() += 1;
        let mut gate = self.gate.clone();
        let _ = gate.wait_for(|open| *open).await;
        *self
            .notes
            .lock()
            .unwrap()
            .reading
            .get_mut(&self.worker)
            .unwrap() -= 1;
        self.inner.snapshot_leads(filter, out).await
    }
}

/// The statuses of `ids`, read through the API, in that order.
async fn statuses(app: &TestApp, key: &str, ids: &[String]) -> Vec<String> {
    let mut seen = Vec::new();
    for id in ids {
        let (_, export) = app.get(&format!("/api/v1/exports/{id}"), Some(key)).await;
        seen.push(export["status"].as_str().unwrap().to_owned());
    }
    seen
}

/// Waits up to 10 s for `done` to hold of the notes.
async fn until(notes: &Mutex<Notes>, what: &str, done: impl Fn(&Notes) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done(&notes.lock().unwrap()) {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn jobs_past_the_concurrency_wait_pending_and_no_job_runs_on_two_instances(app: TestApp) {
    let company = app.company(0, None).await;
    app.leads(&company, &[(1_700_000_000_000, None)]).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let (status, export) = app
            .create_export(&company.key, json!({"resource": "leads"}))
            .await;
        assert_eq!(status, 200, "{export}");
        ids.push(export["id"].as_str().unwrap().to_owned());
    }
    // The server itself runs no job: they all wait.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(statuses(&app, &company.key, &ids).await, ["pending"; 5]);

    // Two instances' workers, running two jobs and one job at once.
    let (open, gate) = watch::channel(false);
    let notes = Arc::new(Mutex::new(Notes::default()));
    let dir = ExportSettings::default().dir_for(&app.database_url);
    let workers: Vec<ExportWorker> = [2, 1]
        .into_iter()
        .enumerate()
        .map(|(worker, concurrency)| {
            let store = Gated {
                inner: app.stores.exports.clone(),
                worker,
                gate: gate.clone(),
                notes: notes.clone(),
            };
            let settings = ExportSettings {
                concurrency,
                ..ExportSettings::default()
            };
            ExportWorker::start(Arc::new(store), settings, dir.clone())
        })
        .collect();
    until(&notes, "three jobs running", |n| {
        n.reading.values().sum::<usize>() == 3
    })
    .await;
    // Past two poll rounds, still exactly three: two on the first worker, one on the second,
    // each job handed out once; the other two wait as pending.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    {
        let n = notes.lock().unwrap();
        assert_eq!(n.reading, BTreeMap::from([(0, 2), (1, 1)]));
        assert_eq!(n.claims.len(), 3, "{:?}", n.claims);
        assert!(n.claims.values().all(|w| w.len() == 1), "{:?}", n.claims);
    }
    let mut seen = statuses(&app, &company.key, &ids).await;
    seen.sort();
    assert_eq!(
        seen,
        [
            "pending",
            "pending",
            "processing",
            "processing",
            "processing"
        ]
    );
    // The oldest are taken first.
    let running: Vec<String> = notes.lock().unwrap().claims.keys().cloned().collect();
    let mut oldest = ids[..3].to_vec();
    oldest.sort();
    assert_eq!(running, oldest);

    // Let go: every job completes, each run by one worker only.
    open.send(true).unwrap();
    for id in &ids {
        let export = app.export_finished(&company.key, id).await;
        assert_eq!(export["status"], "completed", "{export}");
        let file = reqwest::get(export["download_url"].as_str().unwrap())
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(file.lines().count(), 2, "a header and the one lead: {file}");
    }
    let claims = notes.lock().unwrap().claims.clone();
    assert_eq!(claims.len(), 5, "{claims:?}");
    assert!(claims.values().all(|w| w.len() == 1), "{claims:?}");
    for worker in workers {
        worker.shutdown().await;
    }
}
