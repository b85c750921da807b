//! The PostgreSQL list query is an index seek for every combination of filters and cursors: a
//! page reads about as many rows as it shows, however deep the cursor and however many leads
//! the company (or its other products) has. Checked on the plans PostgreSQL actually runs,
//! `EXPLAIN ANALYZE`, both as planned for the values given (custom plans) and as planned once
//! for any values (the generic plans prepared statements switch to).
//!
//! `EXPLAIN_PRINT=1` prints the plans (with `--nocapture`).

mod common;

use common::PgDatabase;
use leads_server::domain::{
    CompanyId, EmailQuery, LeadId, LeadSearch, ProductId, SearchQuery, UserId,
};
use leads_server::pagination::{Direction, PageRequest, PageSize, Position};
use leads_server::storage::postgres::{
    candidates_lookup, list_statements, referrer_lookup, search_plan, user_lookup, Param, Plan,
    DUE_PROBE,
};
use leads_server::storage::{self, Company, LeadFilter, Product, SeedBatch, SeedLead, User};
use leads_types::Timestamp;

const BASE: i64 = 1_700_000_000_000;
/// Leads of the big company; the small one has a hundred.
const BIG: i64 = 40_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_list_query_shape_is_an_index_seek_whatever_the_depth_or_company_size() {
    let Some(database) = PgDatabase::create().await else {
        return;
    };
    let stores = storage::open(&database.url).await.expect("open");
    let (big, big_products) = seed_company(stores.directory.as_ref(), BIG).await;
    let (small, small_products) = seed_company(stores.directory.as_ref(), 100).await;
    let client = common::admin_client(&database.url).await;
    client.batch_execute("ANALYZE").await.expect("analyze");
    let print = std::env::var_os("EXPLAIN_PRINT").is_some();

    let mut checked = 0;
    for (company, products, total) in [(&big, &big_products, BIG), (&small, &small_products, 100)] {
        // Products: none, the rarest alone, the rarest two (the commonest holds 95%).
        let product_sets = [
            vec![],
            vec![products[2].clone()],
            vec![products[1].clone(), products[2].clone()],
        ];
        for products in &product_sets {
            for (created_after, created_before) in [
                (None, None),
                (Some(BASE + 10), None),
                (None, Some(BASE + total - 10)),
                (Some(BASE + 10), Some(BASE + total - 10)),
            ] {
                let filter = LeadFilter {
                    company: company.clone(),
                    products: products.clone(),
                    created_after,
                    created_before,
                    search: None,
                };
                // No cursor, a cursor near the top, one deep down, and both together.
                let near = position(total - 30);
                let deep = position(20);
                for (after, before) in [
                    (None, None),
                    (Some(near.clone()), None),
                    (Some(deep.clone()), None),
                    (None, Some(deep.clone())),
                    (Some(deep.clone()), Some(near.clone())),
                ] {
                    for direction in [Direction::Forward, Direction::Backward] {
                        let page = PageRequest {
                            size: PageSize::new(20).unwrap(),
                            direction,
                            after: after.clone(),
                            before: before.clone(),
                        };
                        for (i, statement) in list_statements(&filter, &page, &Plan::Walk)
                            .iter()
                            .enumerate()
                        {
                            let limit = if i == 0 { 21 } else { 1 } * products.len().max(1);
                            let custom =
                                explain_custom(&client, &statement.sql, &statement.params()).await;
                            let generic =
                                explain_generic(&client, &statement.sql, &statement.params).await;
                            for (kind, plan) in [("custom", &custom), ("generic", &generic)] {
                                let context = format!(
                                    "{kind} plan of {}\nwith {:?}\n{plan}",
                                    statement.sql, statement.params
                                );
                                check_seek(plan, limit, &context);
                            }
                            if print
                                && company == &big
                                && after == Some(deep.clone())
                                && before.is_none()
                                && direction == Direction::Forward
                            {
                                eprintln!("---- {} products, created_after {:?}, created_before {:?}, after a deep cursor\n{}\n-- generic plan:\n{generic}\n-- custom plan:\n{custom}", products.len(), created_after.is_some(), created_before.is_some(), statement.sql);
                            }
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    eprintln!("checked {checked} statements, each with its custom and its generic plan");
}

/// A search finds its users through an index (pg_trgm's GIN index for three or more characters,
/// a btree for a prefix or an email), never by reading `user_search` or `leads` whole; a rare
/// term then reads only its candidates by primary key, and a common one walks the company's
/// index newest first and stops after a page's worth of matches. Over the server's own synthetic
/// data (`leads seed`: realistic names, emails and referrers), 40,000 leads in one company.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_find_their_users_and_leads_through_indexes() {
    let Some(database) = PgDatabase::create().await else {
        return;
    };
    let stores = storage::open(&database.url).await.expect("open");
    let options = leads_server::seed::SeedOptions {
        companies: 1,
        leads_per_company: 40_000,
        products_per_company: 3,
    };
    let report = leads_server::seed::seed(&stores.directory, options, |_| {})
        .await
        .expect("seed");
    let company = CompanyId::parse(&report.companies[0].id).unwrap();
    let client = common::admin_client(&database.url).await;
    // The trigram indexes keep a short pending list, which every search reads whole: little
    // written waits outside the trees, even right after a bulk write, before any VACUUM.
    client
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        .await
        .expect("pgstattuple, PostgreSQL's contrib module");
    // (index, its pending list's limit in kB: longer for the one every create writes)
    for (index, limit) in [
        ("user_search_username_trigrams", 128),
        ("user_search_name_trigrams", 128),
        ("user_search_email_trigrams", 128),
        ("leads_referrer_trigrams", 1024),
    ] {
        let row = client
            .query_one(
                "SELECT c.reloptions, (SELECT pending_tuples FROM pgstatginindex(c.oid::regclass))
                 FROM pg_class c WHERE c.relname = $1",
                &[&index],
            )
            .await
            .map_err(|e| format!("{index}: {e}"))
            .unwrap();
        let options: Option<Vec<String>> = row.get(0);
        assert_eq!(
            options,
            Some(vec![format!("gin_pending_list_limit={limit}")]),
            "{index}"
        );
        let pending: i64 = row.get(1);
        assert!(
            pending < 10_000,
            "{index}: {pending} entries in the pending list"
        );
    }
    client.batch_execute("ANALYZE").await.expect("analyze");
    let row = client
        .query_one("SELECT username, email FROM users ORDER BY id LIMIT 1", &[])
        .await
        .unwrap();
    let (username, email): (String, String) = (row.get(0), row.get(1));
    // Users of other companies, so that the planner sees a users table too big to read whole
    // for a rare term (on 40,000 it rightly would). Their names match no term below.
    client
        .batch_execute(
            "INSERT INTO users (id, username, created_at)
                 SELECT 'user_f' || i, 'filler' || i, 0 FROM generate_series(1, 200000) i;
             INSERT INTO user_search (user_id, username, name, email)
                 SELECT 'user_f' || i, 'filler' || i, 'filler person', 'filler' || i || '@filler.test'
                 FROM generate_series(1, 200000) i;
             ANALYZE",
        )
        .await
        .expect("filler users");
    let print = std::env::var_os("EXPLAIN_PRINT").is_some();
    // The plan is chosen over a pooled connection, as the server's.
    let mut config = deadpool_postgres::Config::new();
    config.url = Some(database.url.clone());
    let pool = config
        .create_pool(
            Some(deadpool_postgres::Runtime::Tokio1),
            tokio_postgres::NoTls,
        )
        .expect("pool");
    let search = |query: Option<&str>, email: Option<&str>| LeadSearch {
        query: query.map(|q| SearchQuery::parse(q).unwrap()),
        email: email.map(|e| EmailQuery::parse(e).unwrap()),
        emails_visible: true,
    };
    // (search, whether it is rare enough to merge, the index that finds its users)
    let cases = [
        (
            search(Some(&username.to_uppercase()), None),
            true,
            "_trigrams",
        ),
        (search(Some("zzqxj"), None), true, "_trigrams"),
        (search(Some("example"), None), false, "_trigrams"),
        (search(Some("Jo"), None), false, "user_search_by_"),
        (search(None, Some(&email)), true, "user_search_by_email"),
        (search(Some("twitter"), None), false, "_trigrams"),
        // 1,111 filler users (filler25, filler250..., filler25000...), none with a lead here:
        // more users than SEARCH_CANDIDATE_LIMIT, but no candidate, so no walk.
        (search(Some("filler25"), None), true, "_trigrams"),
    ];
    for (search, rare, index) in cases {
        let lookup = user_lookup(&search).expect("a user look-up");
        let plan = explain_custom(&client, &lookup.sql, &lookup.params()).await;
        check_lookup(&plan, rare, index, &format!("{search:?}: {}", lookup.sql));
        if print {
            eprintln!("---- users of {search:?}\n{plan}");
        }
        let chosen = search_plan(
            pool.get().await.expect("connection"),
            company.as_str(),
            &search,
        )
        .await
        .expect("plan");
        assert_eq!(
            matches!(chosen, Plan::Candidates(_)),
            rare,
            "{search:?} chose {chosen:?}"
        );
        // The one statement the list sends: for a rare term, every part of it through an index.
        let lookup = candidates_lookup(company.as_str(), &search).expect("a candidates look-up");
        let plan = explain_custom(&client, &lookup.sql, &lookup.params()).await;
        if print {
            eprintln!("---- candidates of {search:?}\n{plan}");
        }
        if rare {
            check_lookup(&plan, true, index, &format!("{search:?}: {}", lookup.sql));
            assert!(
                plan.contains("leads_by_user_company_time"),
                "the users' leads are not sought through leads_by_user_company_time: {search:?}\n{plan}"
            );
        }
        if let Some(lookup) = referrer_lookup(company.as_str(), &search) {
            let plan = explain_custom(&client, &lookup.sql, &lookup.params()).await;
            let context = format!("{search:?}: {}", lookup.sql);
            check_lookup(&plan, rare, "leads_referrer_trigrams", &context);
        }
        let filter = LeadFilter {
            company: company.clone(),
            products: vec![],
            created_after: None,
            created_before: None,
            search: Some(search.clone()),
        };
        let deep = Position {
            created_at: i64::MAX / 2,
            id: LeadId::parse("lead_zzzzzzzzzzzzz").unwrap(),
        };
        for after in [None, Some(deep)] {
            let page = PageRequest {
                size: PageSize::new(20).unwrap(),
                direction: Direction::Forward,
                after,
                before: None,
            };
            for statement in list_statements(&filter, &page, &chosen) {
                for (kind, plan) in [
                    (
                        "custom",
                        explain_custom(&client, &statement.sql, &statement.params()).await,
                    ),
                    (
                        "generic",
                        explain_generic(&client, &statement.sql, &statement.params).await,
                    ),
                ] {
                    let context = format!("{kind} plan of {search:?}: {}\n{plan}", statement.sql);
                    if print {
                        eprintln!("---- {context}");
                    }
                    // (Products may be read whole: this company has three, on one page.)
                    assert!(
                        !plan.contains("Seq Scan on leads") && !plan.contains("Seq Scan on user"),
                        "a table is read whole: {context}"
                    );
                    let leads_index = if rare {
                        "leads_pkey"
                    } else {
                        "leads_by_company_time"
                    };
                    assert!(
                        plan.contains(leads_index),
                        "leads not read through {leads_index}: {context}"
                    );
                    check_few_leads_read(&plan, &context);
                }
            }
        }
    }
}

/// The webhook worker's probe for due messages reads the due index, never the whole outbox,
/// also in the generic plan prepared statements switch to. (Written as `EXISTS`, it scanned the
/// table, which a busy outbox fills with deleted rows between vacuums.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_due_probe_reads_the_due_index() {
    let Some(database) = PgDatabase::create().await else {
        return;
    };
    let _migrated = storage::open(&database.url).await.expect("open");
    let client = common::admin_client(&database.url).await;
    // 20,000 messages waiting for retries an hour or more away: none is due.
    client
        .batch_execute(
            "INSERT INTO webhook_messages (id, webhook_id, company_id, event_type, data,
                                           created_at, next_attempt_at)
             SELECT 'msg_' || i, 'hook_x', 'biz_x', 'lead.created', repeat('x', 500), 0,
                    4000000000000 + i
             FROM generate_series(1, 20000) AS i;
             ANALYZE webhook_messages",
        )
        .await
        .expect("fill the outbox");
    let now = Timestamp::now().as_millis();
    let plan = explain_generic(&client, DUE_PROBE, &[Param::Int(now)]).await;
    if std::env::var_os("EXPLAIN_PRINT").is_some() {
        println!("{plan}");
    }
    assert!(plan.contains("webhook_messages_due"), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
    assert!(number_after(&plan, "shared hit=") < 20, "{plan}");
}

/// A look-up of a rare term reads through `index`, never a table whole; one of a common term may
/// rather read a table in order until its limit, which it reaches soon.
fn check_lookup(plan: &str, rare: bool, index: &str, context: &str) {
    let context = format!("{context}\n{plan}");
    if rare {
        assert!(
            !plan.contains("Seq Scan"),
            "a table is read whole: {context}"
        );
        assert!(plan.contains(index), "not found through {index}: {context}");
    } else {
        check_stops_early(plan, &context);
    }
}

/// A sequential scan in `plan` stops at the look-up's limit, having thrown few rows away.
fn check_stops_early(plan: &str, context: &str) {
    for line in plan
        .lines()
        .filter(|l| l.contains("Rows Removed by Filter"))
    {
        let removed = number_after(line, "Filter: ");
        assert!(
            removed <= 20_000,
            "{removed} rows read and thrown away: {context}"
        );
    }
}

/// No scan of `leads` returns more than a few pages' worth of rows: the walk of a common term
/// stops soon, and candidates are few.
fn check_few_leads_read(plan: &str, context: &str) {
    for line in plan.lines().filter(|l| l.contains(" on leads ")) {
        if line.ends_with("(never executed)") {
            continue;
        }
        let read = number_after(line, "rows=") * number_after(line, "loops=");
        assert!(
            read <= 1_000,
            "a scan of leads returned {read} rows: {context}"
        );
    }
}

/// The position of the lead made `n` milliseconds after `BASE` (one lead each millisecond).
fn position(n: i64) -> Position {
    Position {
        created_at: BASE + n,
        id: LeadId::parse("lead_zzzzzzzzzzzzz").unwrap(),
    }
}

/// A company with `count` leads, one a millisecond, each by a user of its own, over three
/// products: 95% in the first, 4% in the second, 0.5% in the third and 0.5% in none; every
/// tenth user is a member. Beside it, a thousand other companies with products and members of
/// their own, so that no table is small enough for the planner to rather read it whole.
/// Answers the company and its products.
async fn seed_company(
    store: &dyn storage::DirectoryStore,
    count: i64,
) -> (CompanyId, Vec<ProductId>) {
    let now = Timestamp::now();
    let company = CompanyId::generate();
    let products: Vec<ProductId> = (0..3).map(|_| ProductId::generate()).collect();
    let others: Vec<CompanyId> = (0..1000).map(|_| CompanyId::generate()).collect();
    let mut batch = SeedBatch::default();
    for c in std::iter::once(&company).chain(&others) {
        batch.companies.push(Company {
            id: c.to_string(),
            title: "Explain".into(),
            created_at: now,
        });
    }
    let other_products = others
        .iter()
        .flat_map(|c| (0..5).map(move |_| (c.clone(), ProductId::generate())));
    for (c, p) in products
        .iter()
        .map(|p| (company.clone(), p.clone()))
        .chain(other_products)
    {
        batch.products.push(Product {
            id: p.to_string(),
            company_id: c.to_string(),
            title: "P".into(),
            created_at: now,
        });
    }
    let users: Vec<UserId> = (0..count).map(|_| UserId::generate()).collect();
    batch.users = users
        .iter()
        .map(|u| User {
            id: u.to_string(),
            username: u.to_string(),
            email: None,
            name: None,
            created_at: now,
        })
        .collect();
    batch.members = users
        .iter()
        .step_by(10)
        .map(|u| leads_server::storage::Member {
            id: leads_server::domain::MemberId::generate().into_string(),
            company_id: company.to_string(),
            user_id: u.to_string(),
            created_at: now,
        })
        .collect();
    for (j, other) in others.iter().enumerate() {
        for k in 0..40 {
            batch.members.push(leads_server::storage::Member {
                id: leads_server::domain::MemberId::generate().into_string(),
                company_id: other.to_string(),
                user_id: users[(j * 40 + k) % users.len()].to_string(),
                created_at: now,
            });
        }
    }
    for (i, user) in users.iter().enumerate() {
        let product = match i % 200 {
            0 => None,
            1 => Some(2),
            2..=9 => Some(1),
            _ => Some(0),
        };
        batch.leads.push(SeedLead {
            id: LeadId::generate(),
            company_id: company.to_string(),
            user_id: user.to_string(),
            product_id: product.map(|p| products[p].to_string()),
            referrer: None,
            metadata: None,
            created_at: BASE + i as i64,
        });
    }
    store.insert_seed(batch).await.expect("seed");
    (company, products)
}

async fn explain_custom(
    client: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> String {
    let rows = client
        .query(
            &format!("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) {sql}"),
            params,
        )
        .await
        .unwrap_or_else(|e| panic!("EXPLAIN {sql}: {e}"));
    rows.iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn explain_generic(
    client: &tokio_postgres::Client,
    sql: &str,
    params: &[leads_server::storage::postgres::Param],
) -> String {
    client
        .batch_execute(&format!(
            "SET plan_cache_mode = force_generic_plan; PREPARE explained AS {sql}"
        ))
        .await
        .unwrap_or_else(|e| panic!("PREPARE {sql}: {e}"));
    let args: Vec<String> = params.iter().map(|p| p.literal()).collect();
    let rows = client
        .query(
            &format!(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE explained({})",
                args.join(", ")
            ),
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("EXPLAIN EXECUTE {sql}: {e}"));
    client
        .batch_execute("DEALLOCATE explained; RESET plan_cache_mode")
        .await
        .expect("deallocate");
    rows.iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every read of `leads` in `plan` is an index scan whose conditions are all index conditions
/// (no row read and thrown away), returning at most `limit` rows in all and touching few more
/// pages than rows; and no table is read whole.
fn check_seek(plan: &str, limit: usize, context: &str) {
    // (rows returned, loops) of the leads scan the lines being read belong to.
    let mut leads_scan: Option<(usize, usize)> = None;
    let mut leads_scans = 0;
    for line in plan.lines() {
        let node = line.trim_start().trim_start_matches("->").trim_start();
        assert!(
            !node.contains("Seq Scan"),
            "a table is read whole:\n{context}"
        );
        let is_node = line.contains("->") || !line.starts_with(' ');
        if is_node {
            leads_scan = None;
            if node.contains(" on leads ") {
                leads_scans += 1;
                assert!(
                    node.starts_with("Index Scan") || node.starts_with("Index Only Scan"),
                    "leads is read by something else than an index scan:\n{context}"
                );
                // A probe of an empty page is never run: PostgreSQL runs init plans on demand.
                let (rows, loops) = if node.ends_with("(never executed)") {
                    (0, 0)
                } else {
                    (number_after(node, "rows="), number_after(node, "loops="))
                };
                assert!(
                    rows * loops <= limit,
                    "an index scan of leads returned {rows} rows x {loops} loops, more than {limit}:\n{context}"
                );
                leads_scan = Some((rows * loops, loops));
            }
        } else if let Some((rows, loops)) = leads_scan {
            assert!(
                !node.starts_with("Filter:") && !node.starts_with("Rows Removed"),
                "an index scan of leads filters rows after reading them:\n{context}"
            );
            if let Some(buffers) = node.strip_prefix("Buffers:") {
                // A descent is three or four pages; each row may be on a heap page of its own.
                let pages: usize = ["hit=", "read="]
                    .iter()
                    .filter(|key| buffers.contains(*key))
                    .map(|key| number_after(buffers, key))
                    .sum();
                assert!(
                    pages <= rows + 8 * loops,
                    "an index scan of leads read {pages} pages for {rows} rows in {loops} loops:\n{context}"
                );
            }
        }
    }
    assert!(leads_scans > 0, "no index scan of leads:\n{context}");
}

fn number_after(text: &str, key: &str) -> usize {
    let at = text
        .find(key)
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        + key.len();
    text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("a number")
}
