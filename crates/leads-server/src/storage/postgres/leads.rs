//! Lead queries for PostgreSQL: the keyset page, its flag checks, one lead by id, and bulk
//! seeding.
//!
//! A list reads one range of `leads_by_company_time`, or, filtered by products, one bounded range
//! of `leads_by_company_product_time` per product (a LATERAL join over the product ids, so the
//! statement is the same for any number of products), merged. Cursor bounds are row comparisons
//! `(created_at, id) < ($t, $id)`, which the btree seeks to directly, so a page costs the same at
//! any depth and in a company of any size. Statements are prepared once per connection; the
//! shapes are few (which optional bounds are present), and parameters carry the values.

use super::pg_error;
use crate::domain::{CompanyId, LeadId};
use crate::pagination::{self, FlagCheck, Order, PageRequest, Position, Scan};
use crate::storage::{LeadFilter, LeadPage, LeadRow, SeedBatch, StoreResult};
use bytes::BytesMut;
use deadpool_postgres::GenericClient;
use std::fmt::Write;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{IsolationLevel, Row};

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

pub(super) async fn list(
    client: &mut deadpool_postgres::Client,
    filter: &LeadFilter,
    page: &PageRequest,
) -> StoreResult<LeadPage> {
    let scan_plan = pagination::plan(page);
    // Without a cursor, `settle` answers both flags from the scan alone, so the one statement is
    // its own snapshot. With one, the flag checks must see what the scan saw: one snapshot.
    if page.after.is_none() && page.before.is_none() {
        let rows = scan(&*client, filter, &scan_plan).await?;
        let settled = pagination::settle(page, rows);
        return Ok(LeadPage {
            has_next_page: flag(&*client, filter, &settled.has_next).await?,
            has_previous_page: flag(&*client, filter, &settled.has_previous).await?,
            rows: settled.rows,
        });
    }
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(pg_error)?;
    let rows = scan(&tx, filter, &scan_plan).await?;
    let settled = pagination::settle(page, rows);
    let page = LeadPage {
        has_next_page: flag(&tx, filter, &settled.has_next).await?,
        has_previous_page: flag(&tx, filter, &settled.has_previous).await?,
        rows: settled.rows,
    };
    tx.commit().await.map_err(pg_error)?;
    Ok(page)
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

    async fn run(&self, client: &impl GenericClient) -> StoreResult<Vec<Row>> {
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

/// The conditions of the filter and bounds on a table aliased `l`, except the product.
///
/// The time filters and the cursor bounds are folded into at most one row comparison on each
/// side: the index range is then plain to any planner (PostgreSQL's btree would pick the tighter
/// of two bounds on one column itself; a planner that started at the looser one would read every
/// row in between, a cost growing with the cursor's depth), and there are fewer statement shapes
/// to prepare.
fn conditions(
    q: &mut Query,
    filter: &LeadFilter,
    older_than: Option<&Position>,
    newer_than: Option<&Position>,
) -> String {
    let mut sql = format!("l.company_id = {}", q.bind_text(filter.company.as_str()));
    if let Some(user) = &filter.user {
        let _ = write!(sql, " AND l.user_id = {}", q.bind_text(user.as_str()));
    }
    // created_at < b  <=>  (created_at, id) < (b, ''), as no id sorts before ''.
    let upper = [
        older_than.map(|p| Bound {
            created_at: p.created_at,
            id: p.id.as_str().to_owned(),
        }),
        filter.created_before.map(|b| Bound {
            created_at: b,
            id: String::new(),
        }),
    ]
    .into_iter()
    .flatten()
    .min();
    // created_at > a  <=>  (created_at, id) >= (a + 1, ''), timestamps being whole milliseconds.
    let lower = [
        newer_than.map(|p| {
            (
                Bound {
                    created_at: p.created_at,
                    id: p.id.as_str().to_owned(),
                },
                ">",
            )
        }),
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
    if let Some(bound) = upper {
        let (t, id) = (
            q.bind(Param::Int(bound.created_at)),
            q.bind(Param::Text(bound.id)),
        );
        let _ = write!(sql, " AND (l.created_at, l.id) < ({t}, {id})");
    }
    if let Some((bound, op)) = lower {
        let (t, id) = (
            q.bind(Param::Int(bound.created_at)),
            q.bind(Param::Text(bound.id)),
        );
        let _ = write!(sql, " AND (l.created_at, l.id) {op} ({t}, {id})");
    }
    sql
}

/// The page scan.
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
    let limit = q.bind(Param::Int(scan.limit as i64));
    let page = if filter.products.is_empty() {
        format!("SELECT l.* FROM leads l WHERE {base} ORDER BY {order} LIMIT {limit}")
    } else if filter.user.is_some() {
        // One user's leads in the company (`leads_by_user_company_time`), products checked as
        // they pass: a user has few leads, however many the company has.
        let products = q.bind_products(filter);
        format!(
            "SELECT l.* FROM leads l WHERE {base} AND l.product_id = ANY({products}::text[])
             ORDER BY {order} LIMIT {limit}"
        )
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
    q.sql = format!("SELECT {LEAD_COLUMNS} FROM ({page}) l {LEAD_JOINS} ORDER BY {order}");
    q
}

async fn scan(
    client: &impl GenericClient,
    filter: &LeadFilter,
    scan: &Scan,
) -> StoreResult<Vec<LeadRow>> {
    scan_query(filter, scan)
        .run(client)
        .await?
        .iter()
        .map(lead_row)
        .collect()
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
pub(super) async fn find(
    client: &impl GenericClient,
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

/// The check whether any matching lead lies beyond a position: the first row past it in index
/// order, if any. Not `EXISTS`, whose subquery PostgreSQL strips of its ORDER BY and LIMIT and
/// may then plan as a sequential scan hoping for an early match. Filtered by products, it is one
/// seek per product, like the scan, however rare the products are.
fn flag_query(
    filter: &LeadFilter,
    older_than: Option<&Position>,
    newer_than: Option<&Position>,
) -> Query {
    let mut q = Query::default();
    let conditions = conditions(&mut q, filter, older_than, newer_than);
    let order = if older_than.is_some() {
        "l.created_at DESC, l.id DESC"
    } else {
        "l.created_at ASC, l.id ASC"
    };
    q.sql = if filter.products.is_empty() {
        format!("SELECT 1 FROM leads l WHERE {conditions} ORDER BY {order} LIMIT 1")
    } else if filter.user.is_some() {
        let products = q.bind_products(filter);
        format!(
            "SELECT 1 FROM leads l WHERE {conditions} AND l.product_id = ANY({products}::text[])
             ORDER BY {order} LIMIT 1"
        )
    } else {
        let products = q.bind_products(filter);
        format!(
            "SELECT 1 FROM unnest({products}::text[]) AS f(product_id)
             CROSS JOIN LATERAL (
                 SELECT 1 FROM leads l WHERE {conditions} AND l.product_id = f.product_id
                 ORDER BY {order} LIMIT 1) l
             LIMIT 1"
        )
    };
    q
}

async fn flag(
    client: &impl GenericClient,
    filter: &LeadFilter,
    check: &FlagCheck,
) -> StoreResult<bool> {
    let q = match check {
        FlagCheck::Known(known) => return Ok(*known),
        FlagCheck::ExistsOlderThan(p) => flag_query(filter, Some(p), None),
        FlagCheck::ExistsNewerThan(p) => flag_query(filter, None, Some(p)),
    };
    Ok(!q.run(client).await?.is_empty())
}

/// What [`list`] issues for one request: its statements in order (the scan, then each flag check
/// the scan leaves open), and whether they run in one `REPEATABLE READ, READ ONLY` transaction.
#[derive(Debug, Clone)]
pub struct IssuedStatements {
    pub in_transaction: bool,
    pub statements: Vec<Query>,
}

/// The statements [`list`] issues for `filter` and `page`. Which flag checks run depends on the
/// rows found, so the scan runs here once. For measuring the database alone with the server's
/// very SQL (`leads-bench`).
pub(super) async fn issued_statements(
    client: &impl GenericClient,
    filter: &LeadFilter,
    page: &PageRequest,
) -> StoreResult<IssuedStatements> {
    let scan_plan = pagination::plan(page);
    let rows = scan(client, filter, &scan_plan).await?;
    let settled = pagination::settle(page, rows);
    let mut statements = vec![scan_query(filter, &scan_plan)];
    for check in [&settled.has_next, &settled.has_previous] {
        match check {
            FlagCheck::Known(_) => {}
            FlagCheck::ExistsOlderThan(p) => statements.push(flag_query(filter, Some(p), None)),
            FlagCheck::ExistsNewerThan(p) => statements.push(flag_query(filter, None, Some(p))),
        }
    }
    Ok(IssuedStatements {
        in_transaction: page.after.is_some() || page.before.is_some(),
        statements,
    })
}

/// The statements a list request can run, for `EXPLAIN` in tests and benchmarks: its page scan
/// and, when it has a cursor, both flag checks at that cursor's position.
pub fn list_statements(filter: &LeadFilter, page: &PageRequest) -> Vec<Query> {
    let mut out = vec![scan_query(filter, &pagination::plan(page))];
    if let Some(at) = page.after.as_ref().or(page.before.as_ref()) {
        out.push(flag_query(filter, Some(at), None));
        out.push(flag_query(filter, None, Some(at)));
    }
    out
}

pub(super) async fn insert_seed(
    client: &mut deadpool_postgres::Client,
    batch: &SeedBatch,
) -> StoreResult<()> {
    // One statement per table, each row's values as arrays: one round trip for thousands of rows.
    let tx = client.transaction().await.map_err(pg_error)?;
    let companies = &batch.companies;
    insert_rows(
        &tx,
        companies.len(),
        "INSERT INTO companies (id, title, created_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])",
        &[
            &companies.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            &companies
                .iter()
                .map(|c| c.title.as_str())
                .collect::<Vec<_>>(),
            &companies
                .iter()
                .map(|c| c.created_at.as_millis())
                .collect::<Vec<_>>(),
        ],
    )
    .await?;
    let products = &batch.products;
    insert_rows(
        &tx,
        products.len(),
        "INSERT INTO products (id, company_id, title, created_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])",
        &[
            &products.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
            &products
                .iter()
                .map(|p| p.company_id.as_str())
                .collect::<Vec<_>>(),
            &products
                .iter()
                .map(|p| p.title.as_str())
                .collect::<Vec<_>>(),
            &products
                .iter()
                .map(|p| p.created_at.as_millis())
                .collect::<Vec<_>>(),
        ],
    )
    .await?;
    let users = &batch.users;
    insert_rows(
        &tx,
        users.len(),
        "INSERT INTO users (id, username, email, name, created_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])",
        &[
            &users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
            &users
                .iter()
                .map(|u| u.username.as_str())
                .collect::<Vec<_>>(),
            &users.iter().map(|u| u.email.as_deref()).collect::<Vec<_>>(),
            &users.iter().map(|u| u.name.as_deref()).collect::<Vec<_>>(),
            &users
                .iter()
                .map(|u| u.created_at.as_millis())
                .collect::<Vec<_>>(),
        ],
    )
    .await?;
    let members = &batch.members;
    insert_rows(
        &tx,
        members.len(),
        "INSERT INTO members (id, company_id, user_id, created_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])",
        &[
            &members.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
            &members
                .iter()
                .map(|m| m.company_id.as_str())
                .collect::<Vec<_>>(),
            &members
                .iter()
                .map(|m| m.user_id.as_str())
                .collect::<Vec<_>>(),
            &members
                .iter()
                .map(|m| m.created_at.as_millis())
                .collect::<Vec<_>>(),
        ],
    )
    .await?;
    let leads = &batch.leads;
    insert_rows(
        &tx,
        leads.len(),
        "INSERT INTO leads (id, company_id, user_id, product_id, referrer, metadata, created_at, updated_at)
         SELECT id, company_id, user_id, product_id, referrer, metadata, created_at, created_at
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[])
           AS t(id, company_id, user_id, product_id, referrer, metadata, created_at)",
        &[
            &leads.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
            &leads.iter().map(|l| l.company_id.as_str()).collect::<Vec<_>>(),
            &leads.iter().map(|l| l.user_id.as_str()).collect::<Vec<_>>(),
            &leads.iter().map(|l| l.product_id.as_deref()).collect::<Vec<_>>(),
            &leads.iter().map(|l| l.referrer.as_deref()).collect::<Vec<_>>(),
            &leads.iter().map(|l| l.metadata.as_deref()).collect::<Vec<_>>(),
            &leads.iter().map(|l| l.created_at).collect::<Vec<_>>(),
        ],
    )
    .await?;
    let keys = &batch.keys;
    insert_rows(
        &tx,
        keys.len(),
        "INSERT INTO api_keys (id, company_id, secret_hash, permissions, created_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::bigint[])",
        &[
            &keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
            &keys
                .iter()
                .map(|k| k.company_id.as_str())
                .collect::<Vec<_>>(),
            &keys
                .iter()
                .map(|k| k.secret_hash.as_slice())
                .collect::<Vec<_>>(),
            &keys
                .iter()
                .map(|k| k.permissions.to_string())
                .collect::<Vec<_>>(),
            &keys
                .iter()
                .map(|k| k.created_at.as_millis())
                .collect::<Vec<_>>(),
        ],
    )
    .await?;
    tx.commit().await.map_err(pg_error)
}

/// Runs one bulk insert, unless it has no rows.
async fn insert_rows(
    tx: &deadpool_postgres::Transaction<'_>,
    rows: usize,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> StoreResult<()> {
    if rows > 0 {
        tx.execute(sql, params).await.map_err(pg_error)?;
    }
    Ok(())
}
