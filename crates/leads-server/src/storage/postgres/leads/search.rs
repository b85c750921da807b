//! Search for PostgreSQL: the `query` and `email` filters of a list (see `domain/search.rs`).
//!
//! A search is answered by one of two plans, chosen per request:
//!
//! - **Candidates**, for rare terms: the users the term matches come from an index (pg_trgm's
//!   GIN indexes `user_search_*_trigrams` for three or more characters, the btree indexes of
//!   `user_search` for a prefix or an email), then their leads in the company from
//!   `leads_by_user_company_time`, and the leads whose referrer matches from
//!   `leads_referrer_trigrams`. When those come to at most [`SEARCH_CANDIDATE_LIMIT`] leads, the
//!   page reads only them, by primary key, and sorts them. Users with no lead in the company do
//!   not count, up to [`SEARCH_USER_LIMIT`] matching users.
//! - **Walk**, for common terms: past that many, the page walks the company's leads newest first
//!   (as an unfiltered list does) and keeps those that match; a term that common fills a page
//!   soon.
//!
//! The look-ups are one statement ([`candidates_lookup`]), sent unprepared in one exchange, so
//! PostgreSQL plans it for the very term (pg_trgm estimates how many rows a pattern matches),
//! never with a generic plan that guesses. Either way
//! the page applies the match condition itself, in its own snapshot, so a candidate that stopped
//! matching since it was found is not shown.

use super::super::sql::Sql;
use super::{Param, Query};
use crate::domain::{fold, LeadSearch, MatchKind};
use crate::storage::postgres::pg_error;
use crate::storage::{StoreResult, SEARCH_CANDIDATE_LIMIT, SEARCH_USER_LIMIT};

/// How a search's page finds its rows: candidates are lead ids.
pub type Plan = crate::storage::SearchPlan<String>;

/// The condition that a lead aliased `l` matches `search`, as SQL with its parameters bound.
pub(super) fn condition(q: &mut Query, search: &LeadSearch) -> String {
    let mut parts = Vec::new();
    if let Some(email) = &search.email {
        let e = q.bind_text(email.folded());
        parts.push(format!(
            "COALESCE((SELECT s.email = {e} FROM user_search s WHERE s.user_id = l.user_id), false)"
        ));
    }
    if let Some(query) = &search.query {
        let t = q.bind_text(query.folded());
        let fields: Vec<String> = search
            .user_fields()
            .iter()
            .map(|f| format!("s.{f}"))
            .collect();
        let test = |f: &str| match query.kind() {
            MatchKind::Prefix => format!("starts_with({f}, {t}::text)"),
            MatchKind::Substring => format!("strpos({f}, {t}::text) > 0"),
        };
        let any = fields
            .iter()
            .map(|f| test(f))
            .collect::<Vec<_>>()
            .join(" OR ");
        // A scalar subquery on the user's one row, not EXISTS: PostgreSQL may run an EXISTS
        // once for all users (a "hashed SubPlan" reading user_search whole); this is one
        // primary-key look-up for each lead the page reads.
        let user = format!(
            "COALESCE((SELECT {any} FROM user_search s WHERE s.user_id = l.user_id), false)"
        );
        parts.push(match query.kind() {
            MatchKind::Prefix => user,
            MatchKind::Substring => format!("({} OR {user})", test("l.referrer_folded")),
        });
    }
    parts.join(" AND ")
}

/// `term` as a LIKE pattern matching any text that contains it: its `%`, `_` and `\` escaped
/// (backslash is LIKE's default escape character).
pub fn contains_pattern(term: &str) -> String {
    let mut pattern = String::with_capacity(term.len() + 2);
    pattern.push('%');
    for c in term.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The statement that finds a search's matching users (at most one more than
/// [`SEARCH_USER_LIMIT`]), with its parameters; `None` when the search names no user.
pub fn user_lookup(search: &LeadSearch) -> Option<Query> {
    let cap = Param::Int(SEARCH_USER_LIMIT as i64 + 1);
    if let Some(email) = &search.email {
        // Every match is a lead of these users, whatever the query says besides.
        return Some(Query {
            sql: "SELECT user_id FROM user_search WHERE email = $1 LIMIT $2".into(),
            params: vec![Param::Text(email.folded().to_owned()), cap],
        });
    }
    let query = search.query.as_ref()?;
    let fields = search.user_fields();
    Some(match query.kind() {
        MatchKind::Prefix => {
            // UNION ALL, not UNION: it stops at the limit (a user counted twice only makes the
            // walk a little likelier).
            let sql = fields
                .iter()
                .map(|f| {
                    format!(
                        "(SELECT user_id FROM user_search WHERE {f} >= $1 AND {f} < $2 LIMIT $3)"
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL ");
            Query {
                sql: format!("{sql} LIMIT $3"),
                params: vec![
                    Param::Text(query.folded().to_owned()),
                    Param::Text(format!("{}{}", query.folded(), char::MAX)),
                    cap,
                ],
            }
        }
        MatchKind::Substring => {
            let any = fields
                .iter()
                .map(|f| format!("{f} LIKE $1"))
                .collect::<Vec<_>>()
                .join(" OR ");
            Query {
                sql: format!("SELECT user_id FROM user_search WHERE {any} LIMIT $2"),
                params: vec![Param::Text(contains_pattern(query.folded())), cap],
            }
        }
    })
}

/// The statement that finds the leads of `company` whose referrer contains the search's term
/// (at most one more than [`SEARCH_CANDIDATE_LIMIT`]); `None` when the search does not look at
/// referrers (an `email`, or a term of one or two characters).
pub fn referrer_lookup(company: &str, search: &LeadSearch) -> Option<Query> {
    let query = search.referrer_term()?;
    Some(Query {
        sql: "SELECT id FROM leads WHERE company_id = $1 AND referrer_folded LIKE $2 LIMIT $3"
            .into(),
        params: vec![
            Param::Text(company.to_owned()),
            Param::Text(contains_pattern(query.folded())),
            Param::Int(SEARCH_CANDIDATE_LIMIT as i64 + 1),
        ],
    })
}

/// The one statement that finds a search's candidate leads in `company`, in one exchange: the
/// company's leads of its matching users ([`user_lookup`]; the users are read as they come, one
/// seek of `leads_by_user_company_time` each, until [`SEARCH_CANDIDATE_LIMIT`] + 1 leads are
/// found) and the leads whose referrer matches ([`referrer_lookup`]). One row: the two arrays of
/// lead ids, each at most one more than the limit, then, only when the first has fewer, how many
/// users the term matches (at most one more than [`SEARCH_USER_LIMIT`]; else 0). The referrers
/// are not looked at once the users' leads are too many. `None` when the search names no user.
pub fn candidates_lookup(company: &str, search: &LeadSearch) -> Option<Query> {
    let mut q = user_lookup(search)?;
    let looks_at_referrers = search.referrer_term().is_some();
    let users = q.sql.clone();
    let company = q.bind_text(company);
    let cap = q.bind(Param::Int(SEARCH_CANDIDATE_LIMIT as i64 + 1));
    // A referrer look-up comes only with a substring term, whose user look-up has the same
    // pattern as its $1.
    let referred = if looks_at_referrers {
        format!(
            "CASE WHEN cardinality(f.ids) < {cap} THEN ARRAY(
                 SELECT id FROM leads
                 WHERE company_id = {company} AND referrer_folded LIKE $1 LIMIT {cap})
             ELSE ARRAY[]::text[] END"
        )
    } else {
        "ARRAY[]::text[]".to_owned()
    };
    // MATERIALIZED: f is used three times, and an inlined f would copy its look-up into each.
    q.sql = format!(
        "WITH f AS MATERIALIZED (
             SELECT ARRAY(SELECT l.id FROM ({users}) u CROSS JOIN LATERAL (
                              SELECT id FROM leads l
                              WHERE l.user_id = u.user_id AND l.company_id = {company}
                              LIMIT {cap}) l
                          LIMIT {cap}) AS ids)
         SELECT f.ids,
                {referred},
                CASE WHEN cardinality(f.ids) < {cap}
                     THEN (SELECT count(*) FROM ({users}) n) ELSE 0 END
         FROM f"
    );
    Some(q)
}

/// Chooses the plan for `search` in `company`: the candidate leads when there are at most
/// [`SEARCH_CANDIDATE_LIMIT`], else the walk; also the walk, uncounted, when the term matches
/// more than [`SEARCH_USER_LIMIT`] users in all companies. One statement
/// ([`candidates_lookup`]), sent unprepared so that PostgreSQL plans it for the very term.
pub(crate) async fn plan(
    client: &impl Sql,
    company: &str,
    search: &LeadSearch,
) -> StoreResult<Plan> {
    let cap = SEARCH_CANDIDATE_LIMIT + 1;
    let Some(lookup) = candidates_lookup(company, search) else {
        return Ok(Plan::Candidates(Vec::new()));
    };
    let rows = client
        .query_unprepared(&lookup.sql, &lookup.typed_params())
        .await
        .map_err(pg_error)?;
    let row = rows.first().ok_or_else(|| {
        crate::storage::StoreError::Internal("the search look-up answered no row".into())
    })?;
    let mut leads: Vec<String> = row.try_get(0).map_err(pg_error)?;
    let users: i64 = row.try_get(2).map_err(pg_error)?;
    if leads.len() >= cap || users > SEARCH_USER_LIMIT as i64 {
        return Ok(Plan::Walk);
    }
    leads.extend(row.try_get::<_, Vec<String>>(1).map_err(pg_error)?);
    leads.sort_unstable();
    leads.dedup();
    Ok(if leads.len() >= cap {
        Plan::Walk
    } else {
        Plan::Candidates(leads)
    })
}

/// Adds users' folded usernames, names and emails to the search table: one row per entry of
/// `ids` (the other slices run beside it).
pub(in crate::storage::postgres) async fn index_users(
    client: &impl Sql,
    ids: &[&str],
    usernames: &[&str],
    names: &[Option<&str>],
    emails: &[Option<&str>],
) -> StoreResult<()> {
    let statement = client
        .prepare_cached(
            "INSERT INTO user_search (user_id, username, name, email)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])",
        )
        .await
        .map_err(pg_error)?;
    let usernames: Vec<String> = usernames.iter().map(|u| fold(u)).collect();
    let names: Vec<Option<String>> = names.iter().map(|n| n.map(fold)).collect();
    let emails: Vec<Option<String>> = emails.iter().map(|e| e.map(fold)).collect();
    client
        .execute(&statement, &[&ids, &usernames, &names, &emails])
        .await
        .map_err(pg_error)?;
    Ok(())
}

/// Folds what the search compares of every user and lead written before search existed; run in
/// the transaction of the migration that made the search tables.
pub(in crate::storage::postgres) async fn backfill(
    client: &impl Sql,
) -> Result<(), tokio_postgres::Error> {
    let users = client
        .query("SELECT id, username, name, email FROM users", &[])
        .await?;
    for chunk in users.chunks(10_000) {
        let ids: Vec<&str> = chunk.iter().map(|r| r.get(0)).collect();
        let usernames: Vec<String> = chunk.iter().map(|r| fold(r.get(1))).collect();
        let names: Vec<Option<String>> = chunk
            .iter()
            .map(|r| r.get::<_, Option<&str>>(2).map(fold))
            .collect();
        let emails: Vec<Option<String>> = chunk
            .iter()
            .map(|r| r.get::<_, Option<&str>>(3).map(fold))
            .collect();
        client
            .execute(
                "INSERT INTO user_search (user_id, username, name, email)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])",
                &[&ids, &usernames, &names, &emails],
            )
            .await?;
    }
    let leads = client
        .query(
            "SELECT id, referrer FROM leads WHERE referrer IS NOT NULL",
            &[],
        )
        .await?;
    for chunk in leads.chunks(10_000) {
        let ids: Vec<&str> = chunk.iter().map(|r| r.get(0)).collect();
        let folded: Vec<String> = chunk.iter().map(|r| fold(r.get(1))).collect();
        client
            .execute(
                "UPDATE leads SET referrer_folded = f.folded
                 FROM unnest($1::text[], $2::text[]) AS f(id, folded) WHERE leads.id = f.id",
                &[&ids, &folded],
            )
            .await?;
    }
    Ok(())
}

/// The search parameter of the candidates plan.
pub(super) fn candidates_param(ids: &[String]) -> Param {
    Param::Texts(ids.to_vec())
}
