//! Leads for PostgreSQL: the keyset page with its flag probes, one lead by id, whose a lead is,
//! and (in [`writes`]) creating, updating and deleting leads.
//!
//! A list reads one range of `leads_by_company_time`, or, filtered by products, one bounded range
//! of `leads_by_company_product_time` per product (a LATERAL join over the product ids, so the
//! statement is the same for any number of products), merged. Cursor bounds are row comparisons
//! `(created_at, id) < ($t, $id)`, which the btree seeks to directly, so a page costs the same at
//! any depth and in a company of any size. Statements are prepared once per connection; the
//! shapes are few (which optional bounds are present), and parameters carry the values.
//!
//! A page is one statement, so one round trip and one snapshot: the probes that answer its
//! flags, and the re-check of a remembered API key, are scalar subqueries in its select list,
//! which PostgreSQL runs once (as init plans) beside the scan.

pub mod search;
mod writes;

use super::sql::{PgClient, Sql};
use super::{pg_error, query_opt, stats, webhooks, PgStore};
use crate::domain::webhooks::EventType;
use crate::domain::Timestamp;
use crate::domain::{CompanyId, IdempotencyClaim, KeyId, LeadChange, LeadId, NewLead, UserId};
use crate::pagination::{self, Edge, Order, PageRequest, Position, ProbeAnswers, Probes};
use crate::storage::webhooks::{previous_attributes, EventData};
use crate::storage::{
    CreatedLead, LeadFilter, LeadPage, LeadParties, LeadRow, LeadStore, StoreResult,
};
use async_trait::async_trait;
use bytes::BytesMut;
use std::fmt::Write;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::Row;

#[async_trait]
impl LeadStore for PgStore {
    async fn lead_parties(&self, id: LeadId) -> StoreResult<Option<LeadParties>> {
        lead_parties(&self.client().await?, &id).await
    }

    async fn list_leads(
        &self,
        filter: LeadFilter,
        page: PageRequest,
        recheck: Option<KeyId>,
    ) -> StoreResult<Option<LeadPage>> {
        let (filter, page, recheck) = (&filter, &page, recheck.as_ref());
        self.retrying(|client| async move { list(&client, filter, page, recheck).await })
            .await
    }

    async fn find_lead(&self, company: CompanyId, id: LeadId) -> StoreResult<Option<LeadRow>> {
        let (company, id) = (&company, &id);
        self.retrying(|client| async move { find(&client, company, id).await })
            .await
    }

    async fn create_lead(
        &self,
        lead: NewLead,
        claim: Option<IdempotencyClaim>,
    ) -> StoreResult<CreatedLead> {
        // The whole transaction, claim included, is run again on a serialization failure.
        let (created, queued) = self
            .retrying(|mut client| {
                let (lead, claim) = (lead.clone(), claim.clone());
                async move { writes::create(&mut client, lead, claim).await }
            })
            .await?;
        if queued {
            self.wakeup.notify_one();
        }
        Ok(created)
    }

    async fn update_lead(
        &self,
        company: CompanyId,
        id: LeadId,
        change: LeadChange,
    ) -> StoreResult<Option<LeadRow>> {
        let (company, id, change) = (&company, &id, &change);
        if change.referrer.is_none() {
            // Most updates: one statement, its own transaction, made only when nobody is told
            // of it; a company with an endpoint on lead.updated takes the transaction below.
            let fast = self
                .retrying(|client| async move {
                    let row = writes::update(&client, company, id, change, true).await?;
                    let subscribed = match row {
                        Some(_) => false,
                        None => {
                            webhooks::subscribed(&client, company, EventType::LeadUpdated).await?
                        }
                    };
                    Ok((row, subscribed))
                })
                .await?;
            if let (row, false) = fast {
                return Ok(row);
            }
        }
        let (row, queued) = self
            .retrying(|mut client| async move {
                // A new referrer may move the lead to another host's counts, and `lead.updated`
                // is queued, in the same transaction.
                let tx = client.transaction().await.map_err(pg_error)?;
                if change.referrer.is_some() {
                    stats::change_referrer(&tx, company, id, change).await?;
                }
                let before = if webhooks::subscribed(&tx, company, EventType::LeadUpdated).await? {
                    find(&tx, company, id).await?
                } else {
                    None
                };
                let row = writes::update(&tx, company, id, change, false).await?;
                let mut queued = false;
                if let (Some(row), Some(before)) = (&row, before) {
                    queued = webhooks::enqueue(
                        &tx,
                        company,
                        EventType::LeadUpdated,
                        row.updated_at,
                        || EventData::lead(row, Some(&previous_attributes(&before, row))),
                    )
                    .await?;
                }
                tx.commit().await.map_err(pg_error)?;
                Ok((row, queued))
            })
            .await?;
        if queued {
            self.wakeup.notify_one();
        }
        Ok(row)
    }

    async fn forget_idempotency_claims(&self, before: i64, limit: u32) -> StoreResult<u64> {
        let client = self.client().await?;
        writes::forget_claims(&client, before, limit).await
    }

    async fn delete_lead(&self, id: LeadId) -> StoreResult<bool> {
        let id = &id;
        self.retrying(|mut client| async move {
            // The lead leaves its statistics in the same transaction.
            let tx = client.transaction().await.map_err(pg_error)?;
            stats::forget_lead(&tx, id).await?;
            let statement = tx
                .prepare_cached("DELETE FROM leads WHERE id = $1 RETURNING company_id")
                .await
                .map_err(pg_error)?;
            let Some(deleted) = tx
                .query_opt(&statement, &[&id.as_str()])
                .await
                .map_err(pg_error)?
            else {
                return Ok((false, false));
            };
            let company = CompanyId::from_trusted(deleted.try_get(0).map_err(pg_error)?);
            let queued = webhooks::enqueue(
                &tx,
                &company,
                EventType::LeadDeleted,
                Timestamp::now().as_millis(),
                || Ok(EventData::deleted(id.as_str())),
            )
            .await?;
            tx.commit().await.map_err(pg_error)?;
            Ok((true, queued))
        })
        .await
        .map(|(deleted, queued)| {
            if queued {
                self.wakeup.notify_one();
            }
            deleted
        })
    }
}

pub(super) const LEAD_COLUMNS: &str = "l.id, l.created_at, l.updated_at, l.referrer, l.metadata,
       u.id, u.email, u.name, u.username, p.id, p.title, m.id";

/// The joins that turn a page of `leads` rows (aliased `l`) into full leads: one primary-key or
/// unique-index lookup per row. Each is a LATERAL subquery with a LIMIT, which the planner
/// cannot flatten into an ordinary join; so even a generic plan, which guesses how many rows
/// `LIMIT $n` gives, cannot choose to hash whole tables instead.
pub(super) const LEAD_JOINS: &str = "CROSS JOIN LATERAL (
      SELECT u.id, u.email, u.name, u.username FROM users u WHERE u.id = l.user_id LIMIT 1) u
  LEFT JOIN LATERAL (
      SELECT p.id, p.title FROM products p WHERE p.id = l.product_id LIMIT 1) p ON true
  LEFT JOIN LATERAL (
      SELECT m.id FROM members m
      WHERE m.company_id = l.company_id AND m.user_id = l.user_id LIMIT 1) m ON true";

/// A page of `filter`'s leads. With `recheck`, `None` when that key has been revoked.
pub(super) async fn list(
    client: &PgClient,
    filter: &LeadFilter,
    page: &PageRequest,
    recheck: Option<&KeyId>,
) -> StoreResult<Option<LeadPage>> {
    let plan = match &filter.search {
        Some(s) => search::plan(client, filter.company.as_str(), s).await?,
        None => search::Plan::Walk,
    };
    let rows = page_query(filter, page, &plan, recheck).run(client).await?;
    let key_valid = match (recheck, rows.first()) {
        (None, _) => true,
        (Some(_), Some(row)) => row.try_get::<_, Option<bool>>(14).map_err(pg_error)? == Some(true),
        // An empty page says nothing of the key: ask on its own.
        (Some(key), None) => key_is_valid(client, key).await?,
    };
    if !key_valid {
        return Ok(None);
    }
    let found = match rows.first() {
        Some(row) => ProbeAnswers {
            at_or_older: row.try_get(12).map_err(pg_error)?,
            at_or_newer: row.try_get(13).map_err(pg_error)?,
        },
        None => ProbeAnswers::default(),
    };
    let rows = rows.iter().map(lead_row).collect::<StoreResult<_>>()?;
    let settled = pagination::settle(page, rows, found);
    Ok(Some(LeadPage {
        rows: settled.rows,
        has_next_page: settled.has_next,
        has_previous_page: settled.has_previous,
    }))
}

/// Whether the API key `id` exists and is not revoked.
pub(super) async fn key_is_valid(client: &impl Sql, key: &KeyId) -> StoreResult<bool> {
    let statement = client
        .prepare_cached("SELECT revoked_at IS NULL FROM api_keys WHERE id = $1")
        .await
        .map_err(pg_error)?;
    let row = client
        .query_opt(&statement, &[&key.as_str()])
        .await
        .map_err(pg_error)?;
    Ok(row.is_some_and(|row| row.get::<_, bool>(0)))
}

/// A parameter of a list statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Text(String),
    Int(i64),
    Texts(Vec<String>),
}

impl Param {
    /// The value as an SQL literal, for `EXECUTE` of a statement prepared by hand (to see its
    /// generic plan). The texts are ids, but quotes are escaped all the same.
    pub fn literal(&self) -> String {
        let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
        match self {
            Param::Text(s) => quote(s),
            Param::Int(n) => n.to_string(),
            Param::Texts(items) => format!(
                "ARRAY[{}]::text[]",
                items
                    .iter()
                    .map(|s| quote(s))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

impl ToSql for Param {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::Text(s) => s.to_sql_checked(ty, out),
            Param::Int(n) => n.to_sql_checked(ty, out),
            Param::Texts(items) => items.to_sql_checked(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        String::accepts(ty) || i64::accepts(ty) || Vec::<String>::accepts(ty)
    }

    to_sql_checked!();
}

impl Param {
    /// The parameter's PostgreSQL type, for statements sent unprepared.
    pub fn sql_type(&self) -> Type {
        match self {
            Param::Text(_) => Type::TEXT,
            Param::Int(_) => Type::INT8,
            Param::Texts(_) => Type::TEXT_ARRAY,
        }
    }
}

/// SQL text and its parameters, built together so placeholders always match.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub sql: String,
    pub params: Vec<Param>,
}

impl Query {
    fn bind(&mut self, value: Param) -> String {
        self.params.push(value);
        format!("${}", self.params.len())
    }

    fn bind_text(&mut self, text: &str) -> String {
        self.bind(Param::Text(text.to_owned()))
    }

    fn bind_products(&mut self, filter: &LeadFilter) -> String {
        let ids = filter
            .products
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect();
        self.bind(Param::Texts(ids))
    }

    /// The parameters as `query` takes them.
    pub fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p as &(dyn ToSql + Sync))
            .collect()
    }

    /// The parameters with their types, as [`Sql::query_unprepared`] takes them.
    pub fn typed_params(&self) -> Vec<(&(dyn ToSql + Sync), Type)> {
        self.params
            .iter()
            .map(|p| (p as &(dyn ToSql + Sync), p.sql_type()))
            .collect()
    }

    async fn run(&self, client: &impl Sql) -> StoreResult<Vec<Row>> {
        let statement = client.prepare_cached(&self.sql).await.map_err(pg_error)?;
        client
            .query(&statement, &self.params())
            .await
            .map_err(pg_error)
    }
}

/// One end of the range of `(created_at, id)` a query reads.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Bound {
    created_at: i64,
    /// An id, or "" which sorts before every id.
    id: String,
}

/// The row-comparison bound of an edge.
fn bound(edge: Edge<'_>) -> Bound {
    Bound {
        created_at: edge.at.created_at,
        id: edge.at.id.as_str().to_owned(),
    }
}

/// The conditions of the filter and bounds on a table aliased `l`, except the product.
///
/// The time filters and the cursor bounds are folded into at most one row comparison on each
/// side: the index range is then plain to any planner (PostgreSQL's btree would pick the tighter
/// of two bounds on one column itself; a planner that started at the looser one would read every
/// row in between, a cost growing with the cursor's depth), and there are fewer statement shapes
/// to prepare. A time bound and a cursor never tie: no id is "".
fn conditions(
    q: &mut Query,
    filter: &LeadFilter,
    older_than: Option<Edge<'_>>,
    newer_than: Option<Edge<'_>>,
) -> String {
    let mut sql = format!("l.company_id = {}", q.bind_text(filter.company.as_str()));
    // created_at < b  <=>  (created_at, id) < (b, ''), as no id sorts before ''.
    let upper = [
        older_than.map(|e| (bound(e), if e.inclusive { "<=" } else { "<" })),
        filter.created_before.map(|b| {
            (
                Bound {
                    created_at: b,
                    id: String::new(),
                },
                "<",
            )
        }),
    ]
    .into_iter()
    .flatten()
    .min_by(|a, b| a.0.cmp(&b.0));
    // created_at > a  <=>  (created_at, id) >= (a + 1, ''), timestamps being whole milliseconds.
    let lower = [
        newer_than.map(|e| (bound(e), if e.inclusive { ">=" } else { ">" })),
        filter.created_after.map(|a| {
            (
                Bound {
                    created_at: a.saturating_add(1),
                    id: String::new(),
                },
                ">=",
            )
        }),
    ]
    .into_iter()
    .flatten()
    .max_by(|a, b| a.0.cmp(&b.0));
    for (bound, op) in upper.into_iter().chain(lower) {
        let (t, id) = (
            q.bind(Param::Int(bound.created_at)),
            q.bind(Param::Text(bound.id)),
        );
        let _ = write!(sql, " AND (l.created_at, l.id) {op} ({t}, {id})");
    }
    if let Some(s) = &filter.search {
        let _ = write!(sql, " AND {}", search::condition(q, s));
    }
    sql
}

/// Which way a probe looks from its cursor.
#[derive(Debug, Clone, Copy)]
enum Side<'a> {
    /// At the position or older.
    Older(&'a Position),
    /// At the position or newer.
    Newer(&'a Position),
}

/// ` AND l.product_id = ANY(...)` for a product filter, or nothing.
fn products_condition(q: &mut Query, filter: &LeadFilter) -> String {
    if filter.products.is_empty() {
        return String::new();
    }
    let products = q.bind_products(filter);
    format!(" AND l.product_id = ANY({products}::text[])")
}

/// A probe as a boolean expression: whether a lead matching the filter lies on `side`. It reads
/// the first row there in index order, if any; not `EXISTS`, whose subquery PostgreSQL strips of
/// its ORDER BY and LIMIT and may then plan as a sequential scan hoping for an early match.
/// Filtered by products, it is one seek per product, like the scan, however rare the products.
fn probe(q: &mut Query, filter: &LeadFilter, plan: &search::Plan, side: Side<'_>) -> String {
    let (conditions, order) = match side {
        Side::Older(at) => (
            conditions(q, filter, Some(Edge::from(at)), None),
            "l.created_at DESC, l.id DESC",
        ),
        Side::Newer(at) => (
            conditions(q, filter, None, Some(Edge::from(at))),
            "l.created_at ASC, l.id ASC",
        ),
    };
    let first = if let search::Plan::Candidates(ids) = plan {
        let candidates = q.bind(search::candidates_param(ids));
        let products = products_condition(q, filter);
        format!(
            "SELECT true FROM unnest({candidates}::text[]) AS c(id)
             CROSS JOIN LATERAL (
                 SELECT 1 FROM leads l WHERE l.id = c.id AND {conditions}{products}) l
             LIMIT 1"
        )
    } else if filter.products.is_empty() {
        format!("SELECT true FROM leads l WHERE {conditions} ORDER BY {order} LIMIT 1")
    } else {
        let products = q.bind_products(filter);
        format!(
            "SELECT true FROM unnest({products}::text[]) AS f(product_id)
             CROSS JOIN LATERAL (
                 SELECT 1 FROM leads l WHERE {conditions} AND l.product_id = f.product_id
                 ORDER BY {order} LIMIT 1) l
             LIMIT 1"
        )
    };
    format!("COALESCE(({first}), false)")
}

/// The page's one statement: the scan's rows, each with the probes' answers (columns 12 and 13)
/// and, with `recheck`, whether that key is still valid (column 14).
fn page_query(
    filter: &LeadFilter,
    page: &PageRequest,
    plan: &search::Plan,
    recheck: Option<&KeyId>,
) -> Query {
    let mut q = Query::default();
    let scan = &pagination::plan(page);
    let order = match scan.order {
        Order::NewestFirst => "l.created_at DESC, l.id DESC",
        Order::OldestFirst => "l.created_at ASC, l.id ASC",
    };
    let base = conditions(
        &mut q,
        filter,
        scan.older_than.as_ref().map(Edge::beyond),
        scan.newer_than.as_ref().map(Edge::beyond),
    );
    let limit = q.bind(Param::Int(scan.limit as i64));
    let rows = if let search::Plan::Candidates(ids) = plan {
        // The few candidates by primary key, sorted.
        let candidates = q.bind(search::candidates_param(ids));
        let products = products_condition(&mut q, filter);
        format!(
            "SELECT l.* FROM unnest({candidates}::text[]) AS c(id)
             CROSS JOIN LATERAL (
                 SELECT * FROM leads l WHERE l.id = c.id AND {base}{products}) l
             ORDER BY {order} LIMIT {limit}"
        )
    } else if filter.products.is_empty() {
        format!("SELECT l.* FROM leads l WHERE {base} ORDER BY {order} LIMIT {limit}")
    } else {
        // One bounded seek per product, merged: never a scan over the company's other leads.
        let products = q.bind_products(filter);
        format!(
            "SELECT l.* FROM unnest({products}::text[]) AS f(product_id)
             CROSS JOIN LATERAL (
                 SELECT * FROM leads l WHERE {base} AND l.product_id = f.product_id
                 ORDER BY {order} LIMIT {limit}) l
             ORDER BY {order} LIMIT {limit}"
        )
    };
    let Probes {
        at_or_older_than,
        at_or_newer_than,
    } = pagination::probes(page);
    let older = at_or_older_than.map_or("false".into(), |at| {
        probe(&mut q, filter, plan, Side::Older(&at))
    });
    let newer = at_or_newer_than.map_or("false".into(), |at| {
        probe(&mut q, filter, plan, Side::Newer(&at))
    });
    let key = recheck.map_or("NULL::boolean".into(), |key| {
        format!(
            "(SELECT revoked_at IS NULL FROM api_keys WHERE id = {})",
            q.bind_text(key.as_str())
        )
    });
    q.sql = format!(
        "SELECT {LEAD_COLUMNS}, {older}, {newer}, {key} FROM ({rows}) l {LEAD_JOINS} ORDER BY {order}"
    );
    q
}

/// A row of `SELECT {LEAD_COLUMNS}` as a lead.
pub(super) fn lead_row(row: &Row) -> StoreResult<LeadRow> {
    let get = || -> Result<LeadRow, tokio_postgres::Error> {
        Ok(LeadRow {
            id: LeadId::from_trusted(row.try_get(0)?),
            created_at: row.try_get(1)?,
            updated_at: row.try_get(2)?,
            referrer: row.try_get(3)?,
            metadata: row.try_get(4)?,
            user_id: row.try_get(5)?,
            user_email: row.try_get(6)?,
            user_name: row.try_get(7)?,
            user_username: row.try_get(8)?,
            product_id: row.try_get(9)?,
            product_title: row.try_get(10)?,
            member_id: row.try_get(11)?,
        })
    };
    get().map_err(pg_error)
}

/// The lead `id` if it is `company`'s.
/// Every lead of `user` in `company`, as they now are.
pub(super) async fn of_user(
    client: &impl Sql,
    company: &CompanyId,
    user: &UserId,
) -> StoreResult<Vec<LeadRow>> {
    let statement = client
        .prepare_cached(&format!(
            "SELECT {LEAD_COLUMNS} FROM leads l {LEAD_JOINS} WHERE l.company_id = $1 AND l.user_id = $2"
        ))
        .await
        .map_err(pg_error)?;
    client
        .query(&statement, &[&company.as_str(), &user.as_str()])
        .await
        .map_err(pg_error)?
        .iter()
        .map(lead_row)
        .collect()
}

pub(super) async fn find(
    client: &impl Sql,
    company: &CompanyId,
    id: &LeadId,
) -> StoreResult<Option<LeadRow>> {
    let statement = client
        .prepare_cached(&format!(
            "SELECT {LEAD_COLUMNS} FROM leads l {LEAD_JOINS} WHERE l.id = $1 AND l.company_id = $2"
        ))
        .await
        .map_err(pg_error)?;
    let row = client
        .query_opt(&statement, &[&id.as_str(), &company.as_str()])
        .await
        .map_err(pg_error)?;
    row.as_ref().map(lead_row).transpose()
}

/// The one statement [`list`] issues for `filter` and `page` (with a key to re-check, as for a
/// remembered API key). For measuring the database alone with the server's very SQL
/// (`leads-bench`).
pub fn issued_statement(filter: &LeadFilter, page: &PageRequest, recheck: Option<&KeyId>) -> Query {
    page_query(filter, page, &search::Plan::Walk, recheck)
}

/// The statements a list request can run, for `EXPLAIN` in tests: its page statement, then each
/// probe it holds on its own, so that the plan of each can be checked closely.
pub fn list_statements(filter: &LeadFilter, page: &PageRequest, plan: &search::Plan) -> Vec<Query> {
    let mut out = vec![page_query(filter, page, plan, None)];
    let probes = pagination::probes(page);
    let sides = [
        probes.at_or_older_than.as_ref().map(Side::Older),
        probes.at_or_newer_than.as_ref().map(Side::Newer),
    ];
    for side in sides.into_iter().flatten() {
        let mut q = Query::default();
        let probe = probe(&mut q, filter, plan, side);
        q.sql = format!("SELECT {probe}");
        out.push(q);
    }
    out
}

pub(super) async fn lead_parties(
    client: &PgClient,
    id: &LeadId,
) -> StoreResult<Option<LeadParties>> {
    let row = query_opt(
        client,
        "SELECT company_id, user_id FROM leads WHERE id = $1",
        &[&id.as_str()],
    )
    .await?;
    row.map(|row| {
        Ok(LeadParties {
            company: CompanyId::from_trusted(row.try_get(0).map_err(pg_error)?),
            user: UserId::from_trusted(row.try_get(1).map_err(pg_error)?),
        })
    })
    .transpose()
}

/// The two statements of an export's snapshot of `filter`'s leads: how many there are, and all
/// of them in list order. Run in one REPEATABLE READ transaction, they agree.
pub(super) fn snapshot_queries(filter: &LeadFilter) -> (Query, Query) {
    let mut count = Query::default();
    let mut conditions = conditions(&mut count, filter, None, None);
    if !filter.products.is_empty() {
        let products = count.bind_products(filter);
        let _ = write!(conditions, " AND l.product_id = ANY({products})");
    }
    count.sql = format!("SELECT COUNT(*) FROM leads l WHERE {conditions}");
    let rows = Query {
        sql: format!(
            "SELECT {LEAD_COLUMNS} FROM leads l {LEAD_JOINS} WHERE {conditions}
             ORDER BY l.created_at DESC, l.id DESC"
        ),
        params: count.params.clone(),
    };
    (count, rows)
}
