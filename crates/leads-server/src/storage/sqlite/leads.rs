//! Lead queries for SQLite: the keyset page, its flag checks, one lead by id, and bulk seeding.
//!
//! Every list reads one range of `leads_by_company_time` (or, filtered by products, one range of
//! `leads_by_company_product_time` per product, merged), so a page costs the same at any depth.

use super::sql_error;
use crate::domain::{CompanyId, LeadId};
use crate::pagination::{self, FlagCheck, Order, PageRequest, Position, Scan};
use crate::storage::{LeadFilter, LeadPage, LeadRow, SeedBatch, StoreResult};
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::fmt::Write;

const LEAD_COLUMNS: &str = "l.id, l.created_at, l.updated_at, l.referrer, l.metadata,
       u.id, u.email, u.name, u.username, p.id, p.title, m.id";

/// The joins that turn a page of `leads` rows (aliased `l`) into full leads.
const LEAD_JOINS: &str = "JOIN users u ON u.id = l.user_id
  LEFT JOIN products p ON p.id = l.product_id
  LEFT JOIN members m ON m.company_id = l.company_id AND m.user_id = l.user_id";

pub(super) fn list(
    conn: &Connection,
    filter: &LeadFilter,
    page: &PageRequest,
) -> StoreResult<LeadPage> {
    let rows = scan(conn, &scan_query(filter, &pagination::plan(page)))?;
    let settled = pagination::settle(page, rows);
    Ok(LeadPage {
        has_next_page: flag(conn, filter, &settled.has_next)?,
        has_previous_page: flag(conn, filter, &settled.has_previous)?,
        rows: settled.rows,
    })
}

/// The statements [`list`] issues for `filter` and `page`, in order: the scan, then each flag
/// check the scan leaves open. Which checks those are depends on the rows found, so the scan
/// runs here once. For measuring the database alone with the server's very SQL (`leads-bench`).
pub fn issued_statements(
    conn: &Connection,
    filter: &LeadFilter,
    page: &PageRequest,
) -> StoreResult<Vec<Query>> {
    let scan_query = scan_query(filter, &pagination::plan(page));
    let rows = scan(conn, &scan_query)?;
    let settled = pagination::settle(page, rows);
    let mut statements = vec![scan_query];
    for check in [&settled.has_next, &settled.has_previous] {
        if let Some(query) = flag_query(filter, check) {
            statements.push(query);
        }
    }
    Ok(statements)
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

/// The conditions of the filter and bounds on a table aliased `l`, except the product.
fn conditions(
    q: &mut Query,
    filter: &LeadFilter,
    older_than: Option<&Position>,
    newer_than: Option<&Position>,
) -> String {
    let mut sql = format!(
        "l.company_id = {}",
        q.bind(filter.company.as_str().to_owned())
    );
    if let Some(user) = &filter.user {
        let _ = write!(sql, " AND l.user_id = {}", q.bind(user.as_str().to_owned()));
    }
    if let Some(after) = filter.created_after {
        let _ = write!(sql, " AND l.created_at > {}", q.bind(after));
    }
    if let Some(before) = filter.created_before {
        let _ = write!(sql, " AND l.created_at < {}", q.bind(before));
    }
    // `<=` on created_at alone is what lets SQLite seek the index; the OR then trims ties.
    if let Some(p) = older_than {
        let (t, id) = (q.bind(p.created_at), q.bind(p.id.as_str().to_owned()));
        let _ = write!(
            sql,
            " AND l.created_at <= {t} AND (l.created_at < {t} OR l.id < {id})"
        );
    }
    if let Some(p) = newer_than {
        let (t, id) = (q.bind(p.created_at), q.bind(p.id.as_str().to_owned()));
        let _ = write!(
            sql,
            " AND l.created_at >= {t} AND (l.created_at > {t} OR l.id > {id})"
        );
    }
    sql
}

fn scan_query(filter: &LeadFilter, scan: &Scan) -> Query {
    let mut q = Query::default();
    let order = match scan.order {
        Order::NewestFirst => "l.created_at DESC, l.id DESC",
        Order::OldestFirst => "l.created_at ASC, l.id ASC",
    };
    let base = conditions(
        &mut q,
        filter,
        scan.older_than.as_ref(),
        scan.newer_than.as_ref(),
    );
    let limit = q.bind(scan.limit as i64);
    let page = if filter.user.is_some() {
        // One user's leads in the company, in list order, products checked as they pass.
        let products = products_condition(&mut q, filter);
        format!(
            "SELECT l.* FROM leads l INDEXED BY leads_by_user_company_time
             WHERE {base}{products} ORDER BY {order} LIMIT {limit}"
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
    q.sql = format!("SELECT {LEAD_COLUMNS} FROM ({page}) l {LEAD_JOINS} ORDER BY {order}");
    q
}

fn scan(conn: &Connection, q: &Query) -> StoreResult<Vec<LeadRow>> {
    let mut statement = conn.prepare_cached(&q.sql).map_err(sql_error)?;
    let rows = statement
        .query_map(rusqlite::params_from_iter(q.params.iter()), lead_row)
        .map_err(sql_error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql_error)
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

fn flag(conn: &Connection, filter: &LeadFilter, check: &FlagCheck) -> StoreResult<bool> {
    let Some(q) = flag_query(filter, check) else {
        return Ok(matches!(check, FlagCheck::Known(true)));
    };
    conn.prepare_cached(&q.sql)
        .and_then(|mut st| {
            st.query_row(rusqlite::params_from_iter(q.params.iter()), |row| {
                row.get(0)
            })
        })
        .map_err(sql_error)
}

/// The statement that answers `check`, or `None` when it is already known.
fn flag_query(filter: &LeadFilter, check: &FlagCheck) -> Option<Query> {
    let (older_than, newer_than) = match check {
        FlagCheck::Known(_) => return None,
        FlagCheck::ExistsOlderThan(p) => (Some(p), None),
        FlagCheck::ExistsNewerThan(p) => (None, Some(p)),
    };
    let mut q = Query::default();
    let conditions = conditions(&mut q, filter, older_than, newer_than);
    let products = products_condition(&mut q, filter);
    let index = if filter.user.is_some() {
        "INDEXED BY leads_by_user_company_time"
    } else {
        ""
    };
    q.sql = format!("SELECT EXISTS (SELECT 1 FROM leads l {index} WHERE {conditions}{products})");
    Some(q)
}

pub(super) fn insert_seed(conn: &Connection, batch: &SeedBatch) -> StoreResult<()> {
    // Bulk inserts land all over the id indexes; a large page cache keeps them in memory
    // instead of re-reading pages from disk for every row. Only seeding processes do this.
    conn.execute_batch("PRAGMA cache_size = -262144")
        .map_err(sql_error)?;
    let mut companies = conn
        .prepare_cached("INSERT INTO companies (id, title, created_at) VALUES (?1, ?2, ?3)")
        .map_err(sql_error)?;
    for c in &batch.companies {
        companies
            .execute(params![c.id, c.title, c.created_at.as_millis()])
            .map_err(sql_error)?;
    }
    let mut products = conn
        .prepare_cached(
            "INSERT INTO products (id, company_id, title, created_at) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(sql_error)?;
    for p in &batch.products {
        products
            .execute(params![
                p.id,
                p.company_id,
                p.title,
                p.created_at.as_millis()
            ])
            .map_err(sql_error)?;
    }
    let mut users = conn
        .prepare_cached(
            "INSERT INTO users (id, username, email, name, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(sql_error)?;
    // Rows in id order touch each page of the random-id indexes once per batch.
    let mut sorted_users: Vec<_> = batch.users.iter().collect();
    sorted_users.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    for u in sorted_users {
        users
            .execute(params![
                u.id,
                u.username,
                u.email,
                u.name,
                u.created_at.as_millis()
            ])
            .map_err(sql_error)?;
    }
    let mut members = conn
        .prepare_cached(
            "INSERT INTO members (id, company_id, user_id, created_at) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(sql_error)?;
    for m in &batch.members {
        members
            .execute(params![
                m.id,
                m.company_id,
                m.user_id,
                m.created_at.as_millis()
            ])
            .map_err(sql_error)?;
    }
    let mut leads = conn
        .prepare_cached(
            "INSERT INTO leads (id, company_id, user_id, product_id, referrer, metadata, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        )
        .map_err(sql_error)?;
    let mut sorted_leads: Vec<_> = batch.leads.iter().collect();
    sorted_leads.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    for l in sorted_leads {
        leads
            .execute(params![
                l.id.as_str(),
                l.company_id,
                l.user_id,
                l.product_id,
                l.referrer,
                l.metadata,
                l.created_at
            ])
            .map_err(sql_error)?;
    }
    let mut keys = conn
        .prepare_cached(
            "INSERT INTO api_keys (id, company_id, secret_hash, permissions, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(sql_error)?;
    for k in &batch.keys {
        keys.execute(params![
            k.id.as_str(),
            k.company_id.as_str(),
            k.secret_hash.as_slice(),
            k.permissions.to_string(),
            k.created_at.as_millis()
        ])
        .map_err(sql_error)?;
    }
    Ok(())
}
