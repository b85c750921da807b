//! Exports: the export store and the records it speaks in.
//!
//! An export is a job row. The request path only inserts it (`pending`); a worker of any
//! instance takes it with a lease ([`ExportStore::claim_export`]), renews the lease while it
//! writes the file, and records the outcome; a job whose worker died is taken again once its
//! lease has run out. Every call that changes a taken job names the lease, so a worker that lost
//! its lease (it stalled past it and another took the job) can no longer change the job.

use super::webhooks::EventData;
use super::{LeadFilter, LeadRow, StoreResult};
use crate::domain::search::{EmailQuery, LeadSearch, SearchQuery};
use crate::domain::webhooks::EventType;
use crate::domain::{CompanyId, ExportId, ProductId};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// Where an export is in its life (Whop's `status`): `pending` → `processing` → `completed` or
/// `failed`, then `expired` once its retention has passed and its file is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportStatus {
    Pending,
    Processing,
    Completed,
    Failed,
    Expired,
}

impl ExportStatus {
    pub const ALL: [ExportStatus; 5] = [
        ExportStatus::Pending,
        ExportStatus::Processing,
        ExportStatus::Completed,
        ExportStatus::Failed,
        ExportStatus::Expired,
    ];

    /// The name on the wire and in the database.
    pub fn name(self) -> &'static str {
        match self {
            ExportStatus::Pending => "pending",
            ExportStatus::Processing => "processing",
            ExportStatus::Completed => "completed",
            ExportStatus::Failed => "failed",
            ExportStatus::Expired => "expired",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// What an export writes, fixed when it is created: stored as JSON text beside the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportSpec {
    /// Column names of [`crate::formats::csv::LeadColumn`], in order; empty means all.
    pub columns: Vec<String>,
    /// Only leads of these products; empty means every lead.
    pub product_ids: Vec<String>,
    /// Exclusive bounds in milliseconds, as the list's filters.
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
    /// The list's `query` filter (an extension), as given; absent in specs written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The list's `email` filter (an extension), as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The IANA time zone dates are written in.
    pub timezone: String,
    /// Whether the credential that asked could read emails (`member:email:read`).
    pub include_email: bool,
}

impl ExportSpec {
    /// The lead filter of this spec, for `company`. A `query` or `email` that no longer parses
    /// (each was checked when the export was created) is an error naming it, never a wider
    /// export.
    pub fn lead_filter(&self, company: &CompanyId) -> Result<LeadFilter, String> {
        let query = self
            .query
            .as_deref()
            .map(SearchQuery::parse)
            .transpose()
            .map_err(|why| format!("the query filter {why}"))?;
        let email = self
            .email
            .as_deref()
            .map(EmailQuery::parse)
            .transpose()
            .map_err(|why| format!("the email filter {why}"))?;
        // A search matches emails only when the export shows them, as the list's does.
        let search = (query.is_some() || email.is_some()).then_some(LeadSearch {
            query,
            email,
            emails_visible: self.include_email,
        });
        Ok(LeadFilter {
            company: company.clone(),
            products: self
                .product_ids
                .iter()
                .filter_map(|p| ProductId::parse(p).ok())
                .collect(),
            created_after: self.created_after,
            created_before: self.created_before,
            search,
        })
    }
}

/// An export as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRow {
    pub id: ExportId,
    pub company: CompanyId,
    /// Always `leads` on this server.
    pub resource: String,
    pub status: ExportStatus,
    pub spec: ExportSpec,
    /// 0 to 100.
    pub progress_percent: i32,
    /// Why a `failed` export failed.
    pub failure_reason: Option<String>,
    /// The file's name in the export directory, once `completed`.
    pub file_name: Option<String>,
    /// Leads written, once `completed`.
    pub row_count: Option<i64>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: i64,
}

impl ExportRow {
    /// The export as the API shows it, with `download_url` (a link minted for this reading, or
    /// `null`).
    pub fn to_export(&self, download_url: Option<String>) -> leads_types::exports::Export {
        let time = |millis: i64| {
            crate::domain::Timestamp::from_millis(millis)
                .map(|t| t.to_string())
                .unwrap_or_default()
        };
        leads_types::exports::Export {
            id: self.id.as_str().to_owned(),
            resource: self.resource.clone(),
            status: self.status.name().to_owned(),
            progress_percent: Some(self.progress_percent),
            download_url,
            created_at: time(self.created_at),
            updated_at: time(self.updated_at),
            expires_at: time(self.expires_at),
            failure_reason: self.failure_reason.clone(),
        }
    }

    /// The `data` of the `export.completed` or `export.failed` event this export's end fires:
    /// the export as the API shows it, with `download_url` `null` (a link is minted on each
    /// read: `GET /api/v1/exports/{id}` gives one), and the event that fits its status.
    pub fn ended_event(&self) -> StoreResult<(EventType, EventData)> {
        let event = match self.status {
            ExportStatus::Completed => EventType::ExportCompleted,
            _ => EventType::ExportFailed,
        };
        let text = serde_json::to_string(&self.to_export(None))
            .map_err(|e| super::StoreError::Internal(format!("export {} as JSON: {e}", self.id)))?;
        Ok((event, EventData::same(text)))
    }
}

/// Which of a company's exports a list shows. Time bounds are inclusive milliseconds (Whop:
/// "created at or after"); `after` is the position of the last export of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFilter {
    pub company: CompanyId,
    pub status: Option<ExportStatus>,
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
    /// Oldest first when true; newest first (the default) when false.
    pub ascending: bool,
    pub after: Option<(i64, ExportId)>,
    /// Rows to answer at most; the store answers one more when there is one, so the caller
    /// knows whether a next page exists.
    pub limit: usize,
}

/// A worker's hold on a job: only the holder of `token` may change the job, until `until`
/// (milliseconds) unless renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub token: String,
    pub until: i64,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportOutcome {
    /// The file `file_name` in the export directory holds `row_count` leads.
    Completed { file_name: String, row_count: i64 },
    /// It could not be written; the reason is shown to the client.
    Failed { reason: String },
}

/// What a snapshot read sends, in order: the number of leads, then the leads in batches.
#[derive(Debug)]
pub enum SnapshotPart {
    Total(u64),
    Rows(Vec<LeadRow>),
}

/// Leads sent per [`SnapshotPart::Rows`].
pub const SNAPSHOT_BATCH: usize = 1_000;

/// Exports: the jobs, their leases and outcomes, and the snapshot read they write from.
#[async_trait]
pub trait ExportStore: Send + Sync + 'static {
    /// Records a new `pending` export. An unknown company is
    /// [`StoreError::NotFound`](super::StoreError::NotFound).
    async fn create_export(&self, export: ExportRow) -> StoreResult<()>;

    /// The export `id` if it is `company`'s; `None` when absent or another company's.
    async fn find_export(&self, company: CompanyId, id: ExportId)
        -> StoreResult<Option<ExportRow>>;

    /// The export `id`, whoever's it is: for checking a download link, which names no company.
    async fn export_by_id(&self, id: ExportId) -> StoreResult<Option<ExportRow>>;

    /// A page of `filter`'s exports in list order, with one more row when there is one.
    async fn list_exports(&self, filter: ExportFilter) -> StoreResult<Vec<ExportRow>>;

    /// Takes the oldest job that is `pending`, or `processing` with a lease that ran out before
    /// `now`: it becomes `processing` under `lease`. `None` when there is none.
    async fn claim_export(&self, lease: Lease, now: i64) -> StoreResult<Option<ExportRow>>;

    /// Renews the lease `token` on `id` until `until` and records `progress_percent`; false when
    /// the lease is no longer held (the job must then be abandoned).
    async fn renew_export(
        &self,
        id: ExportId,
        token: String,
        until: i64,
        progress_percent: i32,
        now: i64,
    ) -> StoreResult<bool>;

    /// Records how the job held with `token` ended and drops the lease; false when the lease was
    /// no longer held, and nothing was recorded.
    async fn finish_export(
        &self,
        id: ExportId,
        token: String,
        outcome: ExportOutcome,
        now: i64,
    ) -> StoreResult<bool>;

    /// Gives a job held with `token` back as `pending` (its worker is shutting down), so any
    /// worker takes it at once rather than after the lease runs out.
    async fn release_export(&self, id: ExportId, token: String, now: i64) -> StoreResult<()>;

    /// At most `limit` `completed` or `failed` exports whose `expires_at` is before `now`.
    async fn exports_due_to_expire(&self, now: i64, limit: u32) -> StoreResult<Vec<ExportRow>>;

    /// Marks the export `id` `expired` (its file deleted): no download link from now on.
    async fn mark_export_expired(&self, id: ExportId, now: i64) -> StoreResult<()>;

    /// The secret download links are signed with, made on first use and shared by every
    /// instance on the database.
    async fn link_secret(&self) -> StoreResult<Vec<u8>>;

    /// Reads `filter`'s leads in list order (newest first) in one snapshot (a read transaction
    /// on SQLite, REPEATABLE READ on PostgreSQL) and sends them to `out`: first their number,
    /// then batches of [`SNAPSHOT_BATCH`]. The channel is bounded, so at most a few batches are
    /// in memory whatever the number of leads. A closed channel ends the read quietly.
    async fn snapshot_leads(
        &self,
        filter: LeadFilter,
        out: mpsc::Sender<SnapshotPart>,
    ) -> StoreResult<()>;
}
