//! Leads for SQLite: the keyset page with its flag probes, one lead by id, whose a lead is, and
//! (in [`writes`]) creating, updating and deleting leads.
//!
//! Every list reads one range of `leads_by_company_time` (or, filtered by products, one range of
//! `leads_by_company_product_time` per product, merged), so a page costs the same at any depth.
//! A page is one statement, its own snapshot: the probes that answer its flags are uncorrelated
//! subqueries in its select list, which SQLite runs once.

pub(super) mod search;
mod writes;

use super::{sql_error, stats, webhooks, SqliteStore};
use crate::domain::webhooks::EventType;
use crate::domain::{CompanyId, IdempotencyClaim, KeyId, LeadChange, LeadId, NewLead, UserId};
use crate::pagination::{self, Edge, Order, PageRequest, ProbeAnswers, Probes};
use crate::storage::webhooks::EventData;
use crate::storage::{
    CreatedLead, LeadFilter, LeadPage, LeadParties, LeadRow, LeadStore, StoreResult,
};
use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::fmt::Write;

#[async_trait]
impl LeadStore for SqliteStore {
    async fn lead_parties(&self, id: LeadId) -> StoreResult<Option<LeadParties>> {
        self.read(move |conn| lead_parties(conn, &id)).await
    }

    async fn list_leads(
        &self,
        filter: LeadFilter,
        page: PageRequest,
        recheck: Option<KeyId>,
    ) -> StoreResult<Option<LeadPage>> {
        if filter.search.is_some() {
            // A search's look-ups and its page share one snapshot.
            return self
                .read(move |conn| list(conn, &filter, &page, recheck.as_ref()))
                .await;
        }
        // The page is one statement; the key's re-check need not share its snapshot.
        self.on_reader(move |conn| list(conn, &filter, &page, recheck.as_ref()))
            .await
    }

    async fn find_lead(&self, company: CompanyId, id: LeadId) -> StoreResult<Option<LeadRow>> {
        self.on_reader(move |conn| find(conn, &company, &id)).await
    }

    async fn create_lead(
        &self,
        lead: NewLead,
        claim: Option<IdempotencyClaim>,
    ) -> StoreResult<CreatedLead> {
        let wakeup = self.wakeup.clone();
        let (created, queued) = self
            .write(move |conn| writes::create(conn, lead, claim.as_ref()))
            .await?;
        if queued {
            wakeup.notify_one();
        }
        Ok(created)
    }

    async fn update_lead(
        &self,
        company: CompanyId,
        id: LeadId,
        change: LeadChange,
    ) -> StoreResult<Option<LeadRow>> {
        let wakeup = self.wakeup.clone();
        let (row, queued) = self
            .write(move |conn| {
                // A new referrer may move the lead to another host's counts, in the same
                // transaction.
                stats::change_referrer(conn, &company, &id, &change)?;
                writes::update(conn, &company, &id, &change)
            })
            .await?;
        if queued {
            wakeup.notify_one();
        }
        Ok(row)
    }

    async fn forget_idempotency_claims(&self, before: i64, limit: u32) -> StoreResult<u64> {
        self.write(move |conn| writes::forget_claims(conn, before, limit))
            .await
    }

    async fn delete_lead(&self, id: LeadId) -> StoreResult<bool> {
        let wakeup = self.wakeup.clone();
        let (deleted, queued) = self
            .write(move |conn| {
                let Some(parties) = lead_parties(conn, &id)? else {
                    return Ok((false, false));
                };
                stats::forget_lead(conn, &id)?;
                conn.execute("DELETE FROM leads WHERE id = ?1", params![id.as_str()])
                    .map_err(sql_error)?;
                let now = crate::domain::Timestamp::now().as_millis();
                let queued =
                    webhooks::enqueue(conn, &parties.company, EventType::LeadDeleted, now, || {
                        Ok(EventData::deleted(id.as_str()))
                    })?;
                Ok((true, queued))
            })
            .await?;
        if queued {
            wakeup.notify_one();
        }
        Ok(deleted)
    }
}

const LEAD_COLUMNS: &str = "l.id, l.created_at, l.updated_at, l.referrer, l.metadata,
       u.id, u.email, u.name, u.username, p.id, p.title, m.id";

/// The joins that turn a page of `leads` rows (aliased `l`) into full leads.
const LEAD_JOINS: &str = "JOIN users u ON u.id = l.user_id
  LEFT JOIN products p ON p.id = l.product_id
  LEFT JOIN members m ON m.company_id = l.company_id AND m.user_id = l.user_id";

/// A page of `filter`'s leads. With `recheck`, `None` when that key has been revoked.
pub(super) fn list(
    conn: &Connection,
    filter: &LeadFilter,
    page: &PageRequest,
    recheck: Option<&KeyId>,
) -> StoreResult<Option<LeadPage>> {
    if let Some(key) = recheck {
        if !key_is_valid(conn, key)? {
            return Ok(None);
        }
    }
    let plan = match &filter.search {
        Some(s) => search::plan(conn, filter.company.as_str(), s)?,
        None => search::Plan::Walk,
    };
    let q = page_query(filter, page, &plan);
    let mut statement = conn.prepare_cached(&q.sql).map_err(sql_error)?;
    let mut found = ProbeAnswers::default();
    let rows = statement
        .query_map(rusqlite::params_from_iter(q.params.iter()), |row| {
            found = ProbeAnswers {
                at_or_older: row.get(12)?,
                at_or_newer: row.get(13)?,
            };
            lead_row(row)
        })
        .map_err(sql_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_error)?;
    let settled = pagination::settle(page, rows, found);
    Ok(Some(LeadPage {
        rows: settled.rows,
        has_next_page: settled.has_next,
        has_previous_page: settled.has_previous,
    }))
}

const KEY_IS_VALID: &str = "SELECT revoked_at IS NULL FROM api_keys WHERE id = ?1";

/// Whether the API key `id` exists and is not revoked.
pub(super) fn key_is_valid(conn: &Connection, key: &KeyId) -> StoreResult<bool> {
    conn.prepare_cached(KEY_IS_VALID)
        .and_then(|mut st| st.query_row([key.as_str()], |row| row.get(0)).optional())
        .map(|valid| valid == Some(true))
        .map_err(sql_error)
}

/// The statements [`list`] issues for `filter` and `page`, in order: the key's re-check if there
/// is one, then the page (for a search, as the walk plan reads it). For measuring the database
/// alone with the server's very SQL (`leads-bench`).
pub fn issued_statements(
    filter: &LeadFilter,
    page: &PageRequest,
    recheck: Option<&KeyId>,
) -> Vec<Query> {
    let recheck = recheck.map(|key| Query {
        sql: KEY_IS_VALID.to_owned(),
        params: vec![Value::Text(key.as_str().to_owned())],
    });
    recheck
        .into_iter()
        .chain(std::iter::once(page_query(
            filter,
            page,
            &search::Plan::Walk,
        )))
        .collect()
}

/// SQL text and its parameters, built together so placeholders always match.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub sql: String,
    pub params: Vec<Value>,
}

impl Query {
    fn bind(&mut self, value: impl Into<Value>) -> String {
        self.params.push(value.into());
        format!("?{}", self.params.len())
    }
}

/// How ids compare at an edge: `strict` (`<` or `>`), or with `=` when the edge is inclusive.
fn id_op(edge: Edge<'_>, strict: &str) -> String {
    if edge.inclusive {
        format!("{strict}=")
    } else {
        strict.to_owned()
    }
}

/// The conditions of the filter and bounds on a table aliased `l`, except the product.
fn conditions(
    q: &mut Query,
    filter: &LeadFilter,
    older_than: Option<Edge<'_>>,
    newer_than: Option<Edge<'_>>,
) -> String {
    let mut sql = format!(
        "l.company_id = {}",
        q.bind(filter.company.as_str().to_owned())
    );
    if let Some(after) = filter.created_after {
        let _ = write!(sql, " AND l.created_at > {}", q.bind(after));
    }
    if let Some(before) = filter.created_before {
        let _ = write!(sql, " AND l.created_at < {}", q.bind(before));
    }
    // `<=` on created_at alone is what lets SQLite seek the index; the OR then trims ties.
    if let Some(edge) = older_than {
        let p = edge.at;
        let (t, id) = (q.bind(p.created_at), q.bind(p.id.as_str().to_owned()));
        let op = id_op(edge, "<");
        let _ = write!(
            sql,
            " AND l.created_at <= {t} AND (l.created_at < {t} OR l.id {op} {id})"
        );
    }
    if let Some(edge) = newer_than {
        let p = edge.at;
        let (t, id) = (q.bind(p.created_at), q.bind(p.id.as_str().to_owned()));
        let op = id_op(edge, ">");
        let _ = write!(
            sql,
            " AND l.created_at >= {t} AND (l.created_at > {t} OR l.id {op} {id})"
        );
    }
    if let Some(s) = &filter.search {
        let _ = write!(sql, " AND {}", search::condition(q, s));
    }
    sql
}

/// The page's one statement: the scan's rows, each with the probes' answers (columns 12 and 13).
fn page_query(filter: &LeadFilter, page: &PageRequest, plan: &search::Plan) -> Query {
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
    let limit = q.bind(scan.limit as i64);
    let rows = if let search::Plan::Candidates(rowids) = plan {
        // The few candidates by rowid (NOT INDEXED leaves SQLite only the rowid to seek by),
        // sorted.
        let candidates = q.bind(serde_json::to_string(rowids).expect("integers serialize"));
        let products = products_condition(&mut q, filter);
        format!(
            "SELECT l.* FROM leads l NOT INDEXED
             WHERE l.rowid IN (SELECT value FROM json_each({candidates})) AND {base}{products}
             ORDER BY {order} LIMIT {limit}"
        )
    } else if filter.products.is_empty() {
        format!("SELECT l.* FROM leads l WHERE {base} ORDER BY {order} LIMIT {limit}")
    } else {
        // One bounded seek per product, merged: never a scan over the company's other leads.
        let parts: Vec<String> = filter
            .products
            .iter()
            .map(|product| {
                let p = q.bind(product.as_str().to_owned());
                format!(
                    "SELECT * FROM (SELECT l.* FROM leads l INDEXED BY leads_by_company_product_time
                     WHERE {base} AND l.product_id = {p} ORDER BY {order} LIMIT {limit})"
                )
            })
            .collect();
        format!(
            "SELECT * FROM ({}) l ORDER BY {order} LIMIT {limit}",
            parts.join(" UNION ALL ")
        )
    };
    let Probes {
        at_or_older_than,
        at_or_newer_than,
    } = pagination::probes(page);
    let older = at_or_older_than.map_or("0".into(), |at| {
        probe(&mut q, filter, plan, Some(Edge::from(&at)), None)
    });
    let newer = at_or_newer_than.map_or("0".into(), |at| {
        probe(&mut q, filter, plan, None, Some(Edge::from(&at)))
    });
    q.sql = format!(
        "SELECT {LEAD_COLUMNS}, {older}, {newer} FROM ({rows}) l {LEAD_JOINS} ORDER BY {order}"
    );
    q
}

/// A row of `SELECT {LEAD_COLUMNS}` as a lead.
fn lead_row(row: &Row<'_>) -> rusqlite::Result<LeadRow> {
    Ok(LeadRow {
        id: LeadId::from_trusted(row.get(0)?),
        created_at: row.get(1)?,
        updated_at: row.get(2)?,
        referrer: row.get(3)?,
        metadata: row.get(4)?,
        user_id: row.get(5)?,
        user_email: row.get(6)?,
        user_name: row.get(7)?,
        user_username: row.get(8)?,
        product_id: row.get(9)?,
        product_title: row.get(10)?,
        member_id: row.get(11)?,
    })
}

/// The lead `id` if it is `company`'s.
pub(super) fn find(
    conn: &Connection,
    company: &CompanyId,
    id: &LeadId,
) -> StoreResult<Option<LeadRow>> {
    conn.prepare_cached(&format!(
        "SELECT {LEAD_COLUMNS} FROM leads l {LEAD_JOINS} WHERE l.id = ?1 AND l.company_id = ?2"
    ))
    .and_then(|mut st| {
        st.query_row(params![id.as_str(), company.as_str()], lead_row)
            .optional()
    })
    .map_err(sql_error)
}

/// Every lead of `user` in `company`, as they now are.
pub(super) fn of_user(conn: &Connection, company: &str, user: &str) -> StoreResult<Vec<LeadRow>> {
    conn.prepare_cached(&format!(
        "SELECT {LEAD_COLUMNS} FROM leads l {LEAD_JOINS} WHERE l.company_id = ?1 AND l.user_id = ?2"
    ))
    .and_then(|mut st| {
        st.query_map(params![company, user], lead_row)?
            .collect::<Result<Vec<_>, _>>()
    })
    .map_err(sql_error)
}

/// ` AND l.product_id IN (...)` for a product filter, or nothing.
fn products_condition(q: &mut Query, filter: &LeadFilter) -> String {
    if filter.products.is_empty() {
        return String::new();
    }
    let products: Vec<String> = filter
        .products
        .iter()
        .map(|p| q.bind(p.as_str().to_owned()))
        .collect();
    format!(" AND l.product_id IN ({})", products.join(", "))
}

/// A probe as a boolean expression: whether a lead matching the filter lies in the range.
fn probe(
    q: &mut Query,
    filter: &LeadFilter,
    plan: &search::Plan,
    older_than: Option<Edge<'_>>,
    newer_than: Option<Edge<'_>>,
) -> String {
    let conditions = conditions(q, filter, older_than, newer_than);
    let products = products_condition(q, filter);
    match plan {
        search::Plan::Walk => {
            format!("EXISTS (SELECT 1 FROM leads l WHERE {conditions}{products})")
        }
        search::Plan::Candidates(rowids) => {
            let candidates = q.bind(serde_json::to_string(rowids).expect("integers serialize"));
            format!(
                "EXISTS (SELECT 1 FROM leads l NOT INDEXED
                 WHERE l.rowid IN (SELECT value FROM json_each({candidates})) AND {conditions}{products})"
            )
        }
    }
}

pub(super) fn lead_parties(conn: &Connection, id: &LeadId) -> StoreResult<Option<LeadParties>> {
    conn.prepare_cached("SELECT company_id, user_id FROM leads WHERE id = ?1")
        .and_then(|mut st| {
            st.query_row(params![id.as_str()], |row| {
                Ok(LeadParties {
                    company: CompanyId::from_trusted(row.get(0)?),
                    user: UserId::from_trusted(row.get(1)?),
                })
            })
            .optional()
        })
        .map_err(sql_error)
}

/// The two statements of an export's snapshot of `filter`'s leads: how many there are, and all
/// of them in list order. Run in one read transaction, they agree.
pub(super) fn snapshot_queries(filter: &LeadFilter) -> (Query, Query) {
    let mut count = Query::default();
    let conditions = conditions(&mut count, filter, None, None);
    let products = products_condition(&mut count, filter);
    count.sql = format!("SELECT COUNT(*) FROM leads l WHERE {conditions}{products}");
    let rows = Query {
        sql: format!(
            "SELECT {LEAD_COLUMNS} FROM leads l {LEAD_JOINS} WHERE {conditions}{products}
             ORDER BY l.created_at DESC, l.id DESC"
        ),
        params: count.params.clone(),
    };
    (count, rows)
}

/// A row of [`snapshot_queries`]'s second statement as a lead.
pub(super) fn snapshot_row(row: &Row<'_>) -> rusqlite::Result<LeadRow> {
    lead_row(row)
}
