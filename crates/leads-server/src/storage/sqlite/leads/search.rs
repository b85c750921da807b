//! Search for SQLite: the `query` and `email` filters of a list (see `domain/search.rs`).
//!
//! A search is answered by one of two plans, chosen per request:
//!
//! - **Candidates**, for rare terms: the users the term matches come from an index (the FTS5
//!   trigram table `user_search_trigrams` for three or more characters, the btree indexes of
//!   `user_search` for a prefix or an email), then their leads in the company from
//!   `leads_by_user_company_time`, and the leads whose referrer may hold the term from
//!   `lead_referrer_trigrams` and, for the leads not indexed yet, `lead_referrer_pending`. When
//!   those come to at most [`SEARCH_CANDIDATE_LIMIT`] leads, the page reads only them, by rowid,
//!   and sorts them.
//! - **Walk**, for common terms: past that many, the page walks the company's leads newest first
//!   (as an unfiltered list does) and keeps those that match; a term that common fills a page
//!   soon.
//!
//! Either way the page applies the match condition itself, in its own snapshot, so a candidate
//! that stopped matching since it was found is not shown.

use super::Query;
use crate::domain::{fold, LeadSearch, MatchKind};
use crate::storage::sqlite::sql_error;
use crate::storage::{StoreResult, SEARCH_CANDIDATE_LIMIT, SEARCH_USER_LIMIT};
use rusqlite::types::Value;
use rusqlite::{params, Connection};

/// How a search's page finds its rows: candidates are lead rowids.
pub type Plan = crate::storage::SearchPlan<i64>;

/// The condition that a lead aliased `l` matches `search`, as SQL with its parameters bound.
pub(super) fn condition(q: &mut Query, search: &LeadSearch) -> String {
    let mut parts = Vec::new();
    if let Some(email) = &search.email {
        let e = q.bind(email.folded().to_owned());
        parts.push(format!(
            "EXISTS (SELECT 1 FROM user_search s WHERE s.user_id = l.user_id AND s.email = {e})"
        ));
    }
    if let Some(query) = &search.query {
        let t = q.bind(query.folded().to_owned());
        let fields: Vec<String> = search
            .user_fields()
            .iter()
            .map(|f| format!("s.{f}"))
            .collect();
        match query.kind() {
            MatchKind::Prefix => {
                let n = q.bind(query.folded().chars().count() as i64);
                let any = fields
                    .iter()
                    .map(|f| format!("substr({f}, 1, {n}) = {t}"))
                    .collect::<Vec<_>>()
                    .join(" OR ");
                parts.push(format!(
                    "EXISTS (SELECT 1 FROM user_search s WHERE s.user_id = l.user_id AND ({any}))"
                ));
            }
            MatchKind::Substring => {
                let any = fields
                    .iter()
                    .map(|f| format!("instr({f}, {t}) > 0"))
                    .collect::<Vec<_>>()
                    .join(" OR ");
                parts.push(format!(
                    "(instr(l.referrer_folded, {t}) > 0 OR EXISTS (
                        SELECT 1 FROM user_search s WHERE s.user_id = l.user_id AND ({any})))"
                ));
            }
        }
    }
    parts.join(" AND ")
}

/// A term as an FTS5 phrase: in double quotes, with its double quotes doubled, so nothing in it
/// is read as query syntax.
fn phrase(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
}

/// An FTS5 expression for `lead_referrer_trigrams`, which keeps no positions (`detail=none`)
/// and so answers no phrase: every distinct trigram of `term` (of three or more characters),
/// each as a phrase of one token, joined by AND. It finds every referrer that holds `term`,
/// and some that hold its trigrams apart; the page's own condition leaves those out.
fn all_trigrams(term: &str) -> String {
    trigrams(term)
        .iter()
        .map(|t| phrase(t))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The distinct runs of three characters in `text`, sorted: what the trigram tokenizer
/// (`case_sensitive 1`) makes of it.
fn trigrams(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut trigrams: Vec<String> = chars.windows(3).map(|w| w.iter().collect()).collect();
    trigrams.sort_unstable();
    trigrams.dedup();
    trigrams
}

/// The smallest text above every text that starts with `prefix`, in byte order.
pub(super) fn prefix_end(prefix: &str) -> String {
    format!("{prefix}{}", char::MAX)
}

/// The users with an email (folded), at most `?2`.
const USERS_BY_EMAIL: &str = "SELECT user_id FROM user_search WHERE email = ?1 LIMIT ?2";
/// The users an FTS5 expression `?1` matches, at most `?2`. CROSS JOIN keeps the full-text
/// table the outer loop: SQLite never reads `user_search` in order to probe it.
const USERS_BY_TRIGRAMS: &str = "SELECT s.user_id FROM user_search_trigrams f
     CROSS JOIN user_search s ON s.rowid = f.rowid
     WHERE user_search_trigrams MATCH ?1 LIMIT ?2";
/// The leads in company `?2` whose referrer the FTS5 expression `?1` ([`all_trigrams`])
/// matches, at most `?3`; the full-text table is the outer loop, never the company's leads.
const LEADS_BY_REFERRER: &str = "SELECT l.rowid FROM lead_referrer_trigrams f
     CROSS JOIN leads l ON l.rowid = f.rowid
     WHERE lead_referrer_trigrams MATCH ?1 AND l.company_id = ?2 LIMIT ?3";
/// The leads in company `?2` not indexed yet whose referrer holds `?1`, at most `?3`: fewer
/// than [`REFERRER_BATCH`] pending leads are read, never the company's.
const PENDING_LEADS_BY_REFERRER: &str = "SELECT l.rowid FROM lead_referrer_pending p
     CROSS JOIN leads l ON l.rowid = p.lead_rowid
     WHERE l.company_id = ?2 AND instr(l.referrer_folded, ?1) > 0 LIMIT ?3";

/// The users one of whose `fields` starts with `?1` (`?2` being [`prefix_end`] of it), at most
/// `?3`. UNION ALL, not UNION: it stops at the limit (a user counted twice only makes the walk
/// a little likelier).
fn users_by_prefix(fields: &[&str]) -> String {
    let sql = fields
        .iter()
        .map(|f| format!("SELECT user_id FROM user_search WHERE {f} >= ?1 AND {f} < ?2"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    format!("{sql} LIMIT ?3")
}

/// The leads in company `?{company}` of the users `users` answers (a statement whose own
/// parameters come before `?{company}`), at most `?{limit}`: the users are read as they come (a
/// co-routine), one seek of `leads_by_user_company_time` each, until the limit is reached.
fn leads_of_users(users: &str, company: usize, limit: usize) -> String {
    format!(
        "SELECT l.rowid FROM ({users}) u
         CROSS JOIN leads l INDEXED BY leads_by_user_company_time
             ON l.user_id = u.user_id AND l.company_id = ?{company}
         LIMIT ?{limit}"
    )
}

/// The statement that finds the users `search` names, at most `limit` of them, with its
/// parameters; `None` when it names none (a search of referrers alone cannot be: every term
/// of three or more characters looks at users too).
fn user_lookup(search: &LeadSearch, limit: i64) -> Option<(String, Vec<Value>)> {
    let text = |t: &str| Value::Text(t.to_owned());
    if let Some(email) = &search.email {
        // Every match is a lead of these users, whatever the query says besides.
        let params = vec![text(email.folded()), Value::Integer(limit)];
        return Some((USERS_BY_EMAIL.to_owned(), params));
    }
    let query = search.query.as_ref()?;
    let fields = search.user_fields();
    Some(match query.kind() {
        MatchKind::Prefix => {
            let end = prefix_end(query.folded());
            let params = vec![text(query.folded()), text(&end), Value::Integer(limit)];
            (users_by_prefix(fields), params)
        }
        MatchKind::Substring => {
            let columns = format!("{{{}}} : {}", fields.join(" "), phrase(query.folded()));
            let params = vec![text(&columns), Value::Integer(limit)];
            (USERS_BY_TRIGRAMS.to_owned(), params)
        }
    })
}

/// Chooses the plan for `search` in `company`: the candidate leads when there are at most
/// [`SEARCH_CANDIDATE_LIMIT`], else the walk.
///
/// The candidates are the company's leads of the first [`SEARCH_USER_LIMIT`] users the term
/// matches, and the leads whose referrer it matches. When the term matches more users than that
/// (in all companies), the walk is taken without counting.
pub(super) fn plan(conn: &Connection, company: &str, search: &LeadSearch) -> StoreResult<Plan> {
    let cap = SEARCH_CANDIDATE_LIMIT as i64 + 1;
    let mut leads: Vec<i64> = Vec::new();
    if let Some((users, mut params)) = user_lookup(search, SEARCH_USER_LIMIT as i64 + 1) {
        let n = params.len();
        let of_users = leads_of_users(&users, n + 1, n + 2);
        params.extend([Value::Text(company.to_owned()), Value::Integer(cap)]);
        leads = first_column(conn, &of_users, rusqlite::params_from_iter(&params))?;
        if leads.len() as i64 >= cap {
            return Ok(Plan::Walk);
        }
        // Few leads here: were all the term's users looked at, or only the first
        // SEARCH_USER_LIMIT? (Counted only now: a common term stopped above, soon.)
        params.truncate(n);
        let count = format!("SELECT count(*) FROM ({users})");
        let found: i64 = conn
            .prepare_cached(&count)
            .and_then(|mut st| st.query_row(rusqlite::params_from_iter(&params), |r| r.get(0)))
            .map_err(sql_error)?;
        if found > SEARCH_USER_LIMIT as i64 {
            return Ok(Plan::Walk);
        }
    }
    if let Some(term) = search.referrer_term().map(|q| q.folded()) {
        leads.extend(first_column::<i64>(
            conn,
            LEADS_BY_REFERRER,
            params![all_trigrams(term), company, cap],
        )?);
        leads.extend(first_column::<i64>(
            conn,
            PENDING_LEADS_BY_REFERRER,
            params![term, company, cap],
        )?);
    }
    leads.sort_unstable();
    leads.dedup();
    Ok(if leads.len() as i64 >= cap {
        Plan::Walk
    } else {
        Plan::Candidates(leads)
    })
}

/// The first column of every row of `sql`.
fn first_column<T: rusqlite::types::FromSql>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<T>> {
    let mut st = conn.prepare_cached(sql).map_err(sql_error)?;
    let rows = st
        .query_map(params, |row| row.get::<_, T>(0))
        .map_err(sql_error)?;
    rows.collect::<Result<_, _>>().map_err(sql_error)
}

/// Adds `user_id`'s folded username, name and email to the search tables.
pub(in crate::storage::sqlite) fn index_user(
    conn: &Connection,
    user_id: &str,
    username: &str,
    name: Option<&str>,
    email: Option<&str>,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO user_search (user_id, username, name, email) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut st| {
        st.execute(params![
            user_id,
            fold(username),
            name.map(fold),
            email.map(fold)
        ])
    })
    .map(drop)
    .map_err(sql_error)
}

/// Folds what the search compares of every user and lead written before search existed; run in
/// the transaction of the migration that made the search tables.
pub(in crate::storage::sqlite) fn backfill(conn: &Connection) -> StoreResult<()> {
    let users: Vec<(String, String, Option<String>, Option<String>)> = conn
        .prepare("SELECT id, username, name, email FROM users")
        .and_then(|mut st| {
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect()
        })
        .map_err(sql_error)?;
    for (id, username, name, email) in &users {
        index_user(conn, id, username, name.as_deref(), email.as_deref())?;
    }
    let referrers: Vec<(i64, String)> = conn
        .prepare("SELECT rowid, referrer FROM leads WHERE referrer IS NOT NULL")
        .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .map_err(sql_error)?;
    let mut update = conn
        .prepare("UPDATE leads SET referrer_folded = ?2 WHERE rowid = ?1")
        .map_err(sql_error)?;
    for (rowid, referrer) in &referrers {
        update
            .execute(params![rowid, fold(referrer)])
            .map_err(sql_error)?;
    }
    Ok(())
}

/// How many leads wait in `lead_referrer_pending` before the writer indexes them: FTS5 writes
/// a segment per statement, and its cost per row falls steeply with the rows in it (see
/// migration 10). A search reads at most this many pending leads besides the index.
pub(in crate::storage::sqlite) const REFERRER_BATCH: i64 = 1024;

/// Indexes in `lead_referrer_trigrams`, as they are now, the leads that the triggers of
/// migration 9 noted in `lead_referrer_pending` (new referrers, and changed ones), once there
/// are at least `at_least` of them, and forgets the notes; does nothing while there are fewer.
/// The writer runs this just before each COMMIT with [`REFERRER_BATCH`], and with 1 as it
/// closes: one FTS5 segment for the leads of many transactions.
pub(in crate::storage::sqlite) fn index_pending_referrers(
    conn: &Connection,
    at_least: i64,
) -> StoreResult<()> {
    // A bare count(*) is answered from the btree's pages, not by visiting its rows: a few
    // pages, at every COMMIT.
    let pending: i64 = conn
        .prepare_cached("SELECT count(*) FROM lead_referrer_pending")
        .and_then(|mut st| st.query_row([], |row| row.get(0)))
        .map_err(sql_error)?;
    if pending == 0 || pending < at_least {
        return Ok(());
    }
    // CROSS JOIN keeps the pending rows as the outer loop: planned without statistics, SQLite
    // may otherwise read every lead and look each up in the pending table.
    conn.prepare_cached(
        "INSERT INTO lead_referrer_trigrams (rowid, referrer_folded)
         SELECT l.rowid, l.referrer_folded
         FROM lead_referrer_pending p CROSS JOIN leads l ON l.rowid = p.lead_rowid
         WHERE l.referrer_folded IS NOT NULL",
    )
    .and_then(|mut st| st.execute([]))
    .map_err(sql_error)?;
    conn.prepare_cached("DELETE FROM lead_referrer_pending")
        .and_then(|mut st| st.execute([]))
        .map_err(sql_error)?;
    Ok(())
}

/// The triggers that index each new row of `user_search` and `leads` in the trigram tables as it
/// is written (a lead's referrer in a later batch, see [`index_pending_referrers`]). A bulk
/// write ([`BulkIndexing`]) lifts them for its transaction.
const ROW_INDEXING_TRIGGERS: [&str; 2] = ["user_search_indexed", "lead_referrer_indexed"];

/// Indexing a bulk write's rows in the trigram tables with one statement per table, rather than
/// by a trigger per row: seeding and importing write 100,000 rows a transaction, and FTS5 takes
/// them about three times faster as one `INSERT ... SELECT` (measured with SQLite 3.40 on 200,000
/// users: 14 s by trigger, 6 s in bulk).
///
/// [`BulkIndexing::suspend`] notes the last rowids and drops the row-indexing triggers;
/// [`BulkIndexing::resume`] indexes every row written since and creates the triggers again from
/// their own SQL as the schema held it. Both must run in the same transaction as the rows, which
/// holds SQLite's one write lock throughout, so no other write happens between them; if
/// anything fails, rolling the transaction back restores the triggers with everything else.
pub(in crate::storage::sqlite) struct BulkIndexing {
    users_after: i64,
    leads_after: i64,
    /// The `CREATE TRIGGER` statements dropped, as `sqlite_master` held them.
    triggers: Vec<String>,
}

impl BulkIndexing {
    pub(in crate::storage::sqlite) fn suspend(conn: &Connection) -> StoreResult<Self> {
        let last = |table: &str| -> StoreResult<i64> {
            conn.query_row(
                &format!("SELECT coalesce(max(rowid), 0) FROM {table}"),
                [],
                |row| row.get(0),
            )
            .map_err(sql_error)
        };
        let mut triggers = Vec::new();
        for name in ROW_INDEXING_TRIGGERS {
            let sql: String = conn
                .query_row(
                    "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?1",
                    [name],
                    |row| row.get(0),
                )
                .map_err(sql_error)?;
            conn.execute_batch(&format!("DROP TRIGGER {name}"))
                .map_err(sql_error)?;
            triggers.push(sql);
        }
        Ok(Self {
            users_after: last("user_search")?,
            leads_after: last("leads")?,
            triggers,
        })
    }

    pub(in crate::storage::sqlite) fn resume(self, conn: &Connection) -> StoreResult<()> {
        conn.execute(
            "INSERT INTO user_search_trigrams (rowid, username, name, email)
             SELECT rowid, username, name, email FROM user_search WHERE rowid > ?1",
            [self.users_after],
        )
        .map_err(sql_error)?;
        conn.execute(
            "INSERT INTO lead_referrer_trigrams (rowid, referrer_folded)
             SELECT rowid, referrer_folded FROM leads
             WHERE rowid > ?1 AND referrer_folded IS NOT NULL",
            [self.leads_after],
        )
        .map_err(sql_error)?;
        for sql in &self.triggers {
            conn.execute_batch(sql).map_err(sql_error)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CompanyId, EmailQuery, LeadId, SearchQuery};
    use crate::pagination::{PageRequest, Position};
    use crate::storage::LeadFilter;
    use rusqlite::types::Value;

    /// An empty database with the server's schema, planned as SQLite plans without statistics
    /// (the server never runs ANALYZE).
    fn database() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::storage::sqlite::stats::register_functions(&conn).unwrap();
        crate::storage::sqlite::migrate(&mut conn).unwrap();
        conn
    }

    /// The `EXPLAIN QUERY PLAN` of `sql`, a line a step.
    fn plan_of(conn: &Connection, sql: &str, params: &[Value]) -> String {
        let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = st
            .query_map(rusqlite::params_from_iter(params), |r| {
                r.get::<_, String>(3)
            })
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
    }

    /// No table is read whole: every SCAN is of a full-text index, a JSON array or the rows a
    /// subquery made (a co-routine); everything else is a SEARCH of an index or by rowid.
    fn assert_no_table_scan(plan: &str, sql: &str) {
        let made: Vec<&str> = plan
            .lines()
            .filter_map(|l| l.trim().strip_prefix("CO-ROUTINE "))
            .collect();
        for line in plan.lines().map(str::trim) {
            let ok = !line.starts_with("SCAN")
                || line.contains("VIRTUAL TABLE")
                || line.contains("json_each")
                || made.iter().any(|m| line == format!("SCAN {m}"));
            assert!(ok, "{line} in\n{plan}\nof {sql}");
        }
    }

    /// The leads whose referrer the trigram index finds for `term`, by id.
    fn found(conn: &Connection, term: &str) -> Vec<String> {
        let mut st = conn
            .prepare(
                "SELECT l.id FROM lead_referrer_trigrams t JOIN leads l ON l.rowid = t.rowid
                 WHERE lead_referrer_trigrams MATCH ?1 ORDER BY l.id",
            )
            .unwrap();
        let ids = st.query_map([all_trigrams(term)], |r| r.get(0)).unwrap();
        ids.map(Result::unwrap).collect()
    }

    #[test]
    fn referrers_written_in_a_transaction_are_indexed_at_its_end_as_they_then_are() {
        let conn = database();
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO leads (id, company_id, user_id, referrer_folded, created_at, updated_at)
             VALUES ('lead_old', 'biz', 'user', 'https://old.example/', 1, 1),
                    ('lead_gone', 'biz', 'user', 'https://gone.example/', 1, 1);",
        )
        .unwrap();
        index_pending_referrers(&conn, 1).unwrap();
        assert_eq!(found(&conn, "old.example"), ["lead_old"]);
        // In one transaction: a new lead, changed before the end; an indexed lead changed; a
        // new lead erased; an indexed lead erased; a new lead whose referrer goes away.
        conn.execute_batch(
            "BEGIN;
             INSERT INTO leads (id, company_id, user_id, referrer_folded, created_at, updated_at)
             VALUES ('lead_new', 'biz', 'user', 'https://first.example/', 2, 2),
                    ('lead_brief', 'biz', 'user', 'https://brief.example/', 2, 2),
                    ('lead_none', 'biz', 'user', 'https://none.example/', 2, 2);
             UPDATE leads SET referrer_folded = 'https://second.example/' WHERE id = 'lead_new';
             UPDATE leads SET referrer_folded = 'https://changed.example/' WHERE id = 'lead_old';
             UPDATE leads SET referrer_folded = NULL WHERE id = 'lead_none';
             DELETE FROM leads WHERE id IN ('lead_brief', 'lead_gone');",
        )
        .unwrap();
        index_pending_referrers(&conn, 1).unwrap();
        conn.execute_batch("COMMIT").unwrap();
        assert_eq!(found(&conn, "second.example"), ["lead_new"]);
        assert_eq!(found(&conn, "changed.example"), ["lead_old"]);
        for gone in [
            "first.example",
            "old.example",
            "brief.example",
            "gone.example",
            "none.ex",
        ] {
            assert!(found(&conn, gone).is_empty(), "{gone} is still found");
        }
        assert_eq!(pending(&conn), 0);
        assert_index_is_exact(&conn);
    }

    /// How many leads wait to be indexed.
    fn pending(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM lead_referrer_pending", [], |r| {
            r.get(0)
        })
        .unwrap()
    }

    /// Exactly the leads with a referrer and not pending are indexed, under exactly the
    /// trigrams of their referrer, and FTS5's own check finds its structures whole. (Its check
    /// against the content table cannot be used: a lead without a referrer, or still pending,
    /// is deliberately not indexed.)
    fn assert_index_is_exact(conn: &Connection) {
        conn.execute_batch(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.referrer_terms
             USING fts5vocab('main', 'lead_referrer_trigrams', 'instance')",
        )
        .unwrap();
        let rows = |sql: &str| -> Vec<(i64, String)> {
            let mut st = conn.prepare(sql).unwrap();
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
            rows.map(Result::unwrap).collect()
        };
        let mut expected = Vec::new();
        for (rowid, referrer) in rows(
            "SELECT rowid, referrer_folded FROM leads WHERE referrer_folded IS NOT NULL
             AND rowid NOT IN (SELECT lead_rowid FROM lead_referrer_pending)",
        ) {
            expected.extend(trigrams(&referrer).into_iter().map(|t| (rowid, t)));
        }
        expected.sort_unstable();
        assert_eq!(
            rows("SELECT DISTINCT doc, term FROM temp.referrer_terms ORDER BY doc, term"),
            expected
        );
        conn.execute_batch(
            "INSERT INTO lead_referrer_trigrams (lead_referrer_trigrams) VALUES ('integrity-check')",
        )
        .unwrap();
    }

    #[test]
    fn referrers_wait_for_a_batch_and_are_found_while_they_wait() {
        let conn = database();
        let insert = |id: &str, company: &str, referrer: &str| {
            conn.execute(
                "INSERT INTO leads (id, company_id, user_id, referrer_folded, created_at, updated_at)
                 VALUES (?1, ?2, 'user', ?3, 1, 1)",
                params![id, company, referrer],
            )
            .unwrap()
        };
        let rowid = |id: &str| -> i64 {
            conn.query_row("SELECT rowid FROM leads WHERE id = ?1", [id], |r| r.get(0))
                .unwrap()
        };
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        insert("lead_indexed", "biz", "https://tiktok.example/a");
        index_pending_referrers(&conn, 1).unwrap();
        insert("lead_waiting", "biz", "https://www.tiktok.example/b");
        insert("lead_elsewhere", "biz_other", "https://tiktok.example/c");
        // Every trigram of "tiktok.ex", but not the term itself.
        insert("lead_apart", "biz", "tiktok tok.ex ok.");
        // Fewer than a batch: they wait, and are not indexed yet.
        index_pending_referrers(&conn, REFERRER_BATCH).unwrap();
        assert_eq!(pending(&conn), 3);
        assert_index_is_exact(&conn);
        let search = LeadSearch {
            query: Some(SearchQuery::parse("TikTok.ex").unwrap()),
            email: None,
            emails_visible: true,
        };
        let candidates = |conn: &Connection| -> Vec<i64> {
            match plan(conn, "biz", &search).unwrap() {
                Plan::Candidates(rowids) => rowids,
                Plan::Walk => panic!("two leads are candidates, not a walk"),
            }
        };
        // The index may name a lead whose referrer holds the trigrams apart (the page's own
        // condition leaves it out); a pending lead is found only if it holds the term.
        let (indexed, waiting) = (rowid("lead_indexed"), rowid("lead_waiting"));
        assert_eq!(candidates(&conn), [indexed, waiting]);
        index_pending_referrers(&conn, 1).unwrap();
        assert_index_is_exact(&conn);
        let mut after = candidates(&conn);
        after.retain(|r| *r != rowid("lead_apart"));
        assert_eq!(after, [indexed, waiting]);
    }

    #[test]
    fn users_without_leads_here_do_not_make_a_term_common() {
        let conn = database();
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        let user = |i: usize, name: &str| {
            conn.execute(
                "INSERT INTO user_search (user_id, username) VALUES (?1, ?2)",
                params![format!("user_{i}"), name],
            )
            .unwrap()
        };
        let lead = |id: &str, company: &str, user: usize| {
            conn.execute(
                "INSERT INTO leads (id, company_id, user_id, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 1, 1)",
                params![id, company, format!("user_{i}", i = user)],
            )
            .unwrap()
        };
        // 3,000 users match "common", each with a lead of another company; one has a lead here.
        for i in 0..3_000 {
            user(i, &format!("common{i}"));
            lead(&format!("lead_other{i}"), "biz_other", i);
        }
        lead("lead_here", "biz", 2_999);
        let rowid: i64 = conn
            .query_row("SELECT rowid FROM leads WHERE id = 'lead_here'", [], |r| {
                r.get(0)
            })
            .unwrap();
        let search = |term: &str| LeadSearch {
            query: Some(SearchQuery::parse(term).unwrap()),
            email: None,
            emails_visible: true,
        };
        // Here the term is rare: its one lead is merged, not found by walking the company.
        assert_eq!(
            plan(&conn, "biz", &search("COMMON")).unwrap(),
            Plan::Candidates(vec![rowid])
        );
        assert_eq!(
            plan(&conn, "biz", &search("co")).unwrap(),
            Plan::Candidates(vec![rowid])
        );
        // In the other company it is common.
        assert_eq!(
            plan(&conn, "biz_other", &search("common")).unwrap(),
            Plan::Walk
        );
        // Past SEARCH_USER_LIMIT matching users, the walk is taken without counting their leads.
        for i in 3_000..=SEARCH_USER_LIMIT {
            user(i, &format!("common{i}"));
        }
        assert_eq!(plan(&conn, "biz", &search("common")).unwrap(), Plan::Walk);
    }

    #[test]
    fn look_ups_and_pages_read_indexes_only() {
        let conn = database();
        let text = |s: &str| Value::Text(s.to_owned());
        let n = Value::Integer(10);
        for (sql, params) in [
            (USERS_BY_EMAIL.to_owned(), vec![text("a@b.c"), n.clone()]),
            (
                USERS_BY_TRIGRAMS.to_owned(),
                vec![text("\"abc\""), n.clone()],
            ),
            (
                users_by_prefix(&["username", "name", "email"]),
                vec![text("ab"), text(&prefix_end("ab")), n.clone()],
            ),
            (
                leads_of_users(USERS_BY_TRIGRAMS, 3, 4),
                vec![text("\"abc\""), n.clone(), text("biz"), n.clone()],
            ),
            (
                leads_of_users(&users_by_prefix(&["username", "name"]), 4, 5),
                vec![
                    text("ab"),
                    text(&prefix_end("ab")),
                    n.clone(),
                    text("biz"),
                    n.clone(),
                ],
            ),
            (
                LEADS_BY_REFERRER.to_owned(),
                vec![text(&all_trigrams("abcd")), text("biz"), n.clone()],
            ),
        ] {
            let plan = plan_of(&conn, &sql, &params);
            if std::env::var_os("EXPLAIN_PRINT").is_some() {
                eprintln!("---- {sql}\n{plan}");
            }
            assert_no_table_scan(&plan, &sql);
        }
        // The leads not indexed yet: the pending notes (fewer than a batch) are read whole, each
        // lead by rowid; never the company's leads.
        let plan = plan_of(
            &conn,
            PENDING_LEADS_BY_REFERRER,
            &[text("abc"), text("biz"), n.clone()],
        );
        let steps: Vec<&str> = plan.lines().map(str::trim).collect();
        assert_eq!(
            steps,
            ["SCAN p", "SEARCH l USING INTEGER PRIMARY KEY (rowid=?)"],
            "{plan}"
        );
        for search in [
            LeadSearch {
                query: Some(SearchQuery::parse("doe").unwrap()),
                email: None,
                emails_visible: true,
            },
            LeadSearch {
                query: Some(SearchQuery::parse("jo").unwrap()),
                email: Some(EmailQuery::parse("a@b.c").unwrap()),
                emails_visible: false,
            },
        ] {
            let filter = LeadFilter {
                company: CompanyId::parse("biz_x").unwrap(),
                products: vec![],
                created_after: Some(1),
                created_before: None,
                search: Some(search),
            };
            let page = PageRequest {
                after: Some(Position {
                    created_at: 5,
                    id: LeadId::parse("lead_aaaaaaaaaaaaa").unwrap(),
                }),
                ..PageRequest::default()
            };
            // The candidates by rowid, then sorted: never the company's index.
            let q = super::super::page_query(&filter, &page, &Plan::Candidates(vec![1, 2, 3]));
            let plan = plan_of(&conn, &q.sql, &q.params);
            assert_no_table_scan(&plan, &q.sql);
            assert!(!plan.contains("leads_by_company_time"), "{plan}");
            // The walk: the company's index in list order.
            let q = super::super::page_query(&filter, &page, &Plan::Walk);
            let plan = plan_of(&conn, &q.sql, &q.params);
            assert_no_table_scan(&plan, &q.sql);
            assert!(plan.contains("leads_by_company_time"), "{plan}");
        }
    }
}
