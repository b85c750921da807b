//! Leads: the lead store and the records it speaks in.

use super::StoreResult;
use crate::domain::{
    CompanyId, IdempotencyClaim, KeyId, LeadChange, LeadId, LeadSearch, NewLead, ProductId, UserId,
};
use crate::pagination::{PageRequest, Position, Positioned};
use async_trait::async_trait;

/// Whose a lead is: the company that recorded it and the user it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadParties {
    pub company: CompanyId,
    pub user: UserId,
}

/// A lead with everything a response shows of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadRow {
    pub id: LeadId,
    pub created_at: i64,
    pub updated_at: i64,
    pub referrer: Option<String>,
    /// Verbatim JSON object text.
    pub metadata: Option<String>,
    pub user_id: String,
    pub user_email: Option<String>,
    pub user_name: Option<String>,
    pub user_username: String,
    pub product_id: Option<String>,
    pub product_title: Option<String>,
    pub member_id: Option<String>,
}

impl LeadRow {
    /// The lead as the API shows it; `user.email` only with `show_email`. Fails only on stored
    /// data that is not what the store writes (metadata that is not JSON, a time out of range).
    pub fn into_lead(self, show_email: bool) -> Result<leads_types::Lead, String> {
        self.to_lead(show_email)
    }

    /// [`LeadRow::into_lead`], borrowing the row.
    pub fn to_lead(&self, show_email: bool) -> Result<leads_types::Lead, String> {
        let metadata = self
            .metadata
            .clone()
            .map(serde_json::value::RawValue::from_string)
            .transpose()
            .map_err(|e| format!("stored metadata of {} is not JSON: {e}", self.id))?;
        let time = |millis: i64| {
            leads_types::Timestamp::from_millis(millis)
                .ok_or_else(|| format!("stored time {millis} out of range"))
        };
        Ok(leads_types::Lead {
            created_at: time(self.created_at)?,
            updated_at: time(self.updated_at)?,
            id: self.id.as_str().to_owned(),
            referrer: self.referrer.clone(),
            metadata,
            user: leads_types::LeadUser {
                id: self.user_id.clone(),
                email: self.user_email.clone().filter(|_| show_email),
                name: self.user_name.clone(),
                username: self.user_username.clone(),
            },
            product: self
                .product_id
                .clone()
                .zip(self.product_title.clone())
                .map(|(id, title)| leads_types::LeadProduct { id, title }),
            member: self
                .member_id
                .clone()
                .map(|id| leads_types::LeadMember { id }),
        })
    }
}

impl Positioned for LeadRow {
    fn position(&self) -> Position {
        Position {
            created_at: self.created_at,
            id: self.id.clone(),
        }
    }
}

/// What [`LeadStore::create_lead`] did: wrote the lead, or found the one an earlier request with
/// the same idempotency key wrote (`replayed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedLead {
    pub row: LeadRow,
    pub replayed: bool,
}

/// Which of a company's leads a list shows. Bounds are exclusive milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadFilter {
    pub company: CompanyId,
    /// Empty means every product, and leads without one.
    pub products: Vec<ProductId>,
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
    /// The `query` and `email` filters (an extension), if either was given.
    pub search: Option<LeadSearch>,
}

/// Past this many candidate leads (the leads in the company of the users a search matches, and
/// those whose referrer it matches), a search walks the company's leads newest first and filters
/// them instead of merging the candidates: a term that common fills a page within a few hundred
/// leads of the walk.
pub const SEARCH_CANDIDATE_LIMIT: usize = 1000;

/// The most users a search's candidate count looks at. Users are shared by companies, so a term
/// may match many users without a lead in the company searched: their leads there are sought
/// (one index seek a user, stopping at [`SEARCH_CANDIDATE_LIMIT`] leads) for up to this many
/// users, so such a term still merges its few candidates rather than walking the whole company.
/// Only a term matching more users than this, in all companies together, walks uncounted.
pub const SEARCH_USER_LIMIT: usize = 10_000;

/// How a search's page finds its rows (see the backends' `leads/search.rs`). `K` is how a
/// backend names a lead: SQLite's rowid, PostgreSQL's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchPlan<K> {
    /// Walk the company's leads in list order, keeping those that match.
    Walk,
    /// Read only these leads, which hold every match.
    Candidates(Vec<K>),
}

/// A page of leads in list order with its exact flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadPage {
    pub rows: Vec<LeadRow>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

/// A company's leads: reading them a page or one at a time, writing them, and the idempotency
/// claims that make creates safe to retry.
#[async_trait]
pub trait LeadStore: Send + Sync + 'static {
    /// The company and user of the lead `id`, or `None` when there is no such lead. Only for
    /// deciding whether a credential may see the lead: never shown to a client as such.
    async fn lead_parties(&self, id: LeadId) -> StoreResult<Option<LeadParties>>;

    /// A page of `filter`'s leads. With `recheck`, the read also asks whether that company API
    /// key still exists unrevoked, in the same round trip, and answers `None` when it does not:
    /// an instance that remembers a key it looked up earlier still refuses it once revoked.
    async fn list_leads(
        &self,
        filter: LeadFilter,
        page: PageRequest,
        recheck: Option<KeyId>,
    ) -> StoreResult<Option<LeadPage>>;

    /// The lead `id` if it belongs to `company`; `None` when it does not exist or is another
    /// company's, which callers must not tell apart.
    async fn find_lead(&self, company: CompanyId, id: LeadId) -> StoreResult<Option<LeadRow>>;

    /// Records a lead, stamping `created_at` and `updated_at` with the time of the write, and
    /// answers once it is durable. An unknown user, or a product that is not the company's, is
    /// [`StoreError::Invalid`](super::StoreError::Invalid) and writes nothing.
    ///
    /// With a claim, the claim is recorded in the same transaction as the lead. If the claim's
    /// credential has used its key before, nothing is written: the lead created then comes back
    /// (`replayed`) when the fingerprints match, and
    /// [`StoreError::Conflict`](super::StoreError::Conflict) when they do not.
    async fn create_lead(
        &self,
        lead: NewLead,
        claim: Option<IdempotencyClaim>,
    ) -> StoreResult<CreatedLead>;

    /// Applies `change` to the lead `id` of `company` and answers the lead as it now is.
    /// `updated_at` moves strictly forward (to now, or one millisecond past its previous value if
    /// the clock has not moved on); `created_at` never changes. `None` as for [`Self::find_lead`].
    async fn update_lead(
        &self,
        company: CompanyId,
        id: LeadId,
        change: LeadChange,
    ) -> StoreResult<Option<LeadRow>>;

    /// Forgets at most `limit` idempotency claims made before `before` (milliseconds), oldest
    /// first, and answers how many it forgot. Callers repeat it until it answers less than
    /// `limit`, so no single transaction holds the writer for long.
    async fn forget_idempotency_claims(&self, before: i64, limit: u32) -> StoreResult<u64>;

    /// Erases a lead for good (for example on a data-deletion request). False when absent.
    async fn delete_lead(&self, id: LeadId) -> StoreResult<bool>;
}
