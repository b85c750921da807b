//! `GET /api/v1/leads` with `query` and `email` (an extension): every match exactly once, in
//! list order, with exact flags, in both directions and combined with every other filter; case
//! folding, the prefix rule, literal LIKE metacharacters, and no email oracle.

mod common;

use common::{crowded_times, enc, rfc3339, Company, TestApp};
use leads_server::admin;
use leads_server::auth::rate_limit::RateLimit;
use leads_server::domain::{fold, LeadId};
use leads_server::storage::{SeedBatch, SeedLead, User, SEARCH_CANDIDATE_LIMIT};
use reqwest::StatusCode;
use serde_json::json;

conformance!(
    searches_walk_every_match_once_in_order_both_ways_with_every_filter,
    a_common_term_walks_and_a_rare_one_merges_with_the_same_answers,
    case_folding_is_unicode_aware,
    one_or_two_characters_match_a_prefix_only,
    like_metacharacters_are_taken_literally,
    email_finds_the_leads_of_that_address_whole_and_caseless,
    without_member_email_read_a_search_cannot_reveal_emails,
    cursors_are_bound_to_their_query,
    bad_queries_and_emails_are_refused_naming_their_parameter,
    creates_and_updates_are_found_at_once,
    other_companies_leads_never_match,
);

/// A user as the fixture makes it: username, name, email.
struct Person {
    username: &'static str,
    name: Option<&'static str>,
    email: Option<&'static str>,
}

const PEOPLE: &[Person] = &[
    Person {
        username: "ezola",
        name: Some("Émile Zola"),
        email: Some("EMILE.Z@Example.org"),
    },
    Person {
        username: "jdoe42",
        name: Some("John Doe"),
        email: Some("john.doe@example.com"),
    },
    Person {
        username: "strasse",
        name: Some("Anna Straße"),
        email: Some("anna@strasse.de"),
    },
    Person {
        username: "percent",
        name: Some("50% off_deal"),
        email: Some("back\\slash@odd.io"),
    },
    Person {
        username: "decoy",
        name: Some("500 offXdeal"),
        email: Some("backslash@odd.io"),
    },
    Person {
        username: "nobody",
        name: None,
        email: None,
    },
    Person {
        username: "secretive",
        name: Some("Quiet Person"),
        email: Some("hidden.treasure@vault.io"),
    },
];

const REFERRERS: &[Option<&str>] = &[
    None,
    Some("https://twitter.com/Whop"),
    Some("https://news.example/ÉMILE?ref=x"),
    Some("https://a.io/100%_sure"),
];

/// A lead of the fixture with what the reference matcher needs.
#[derive(Debug, Clone)]
struct Lead {
    id: String,
    created_at: i64,
    product: Option<String>,
    person: usize,
    username: String,
    referrer: Option<&'static str>,
}

/// Whether `lead` matches `query` by the rules of the API reference, written independently of
/// the stores: folded, a prefix of username, name or email for one or two characters, else a
/// substring of those or of the referrer; emails only when they may be seen.
fn matches(lead: &Lead, query: &str, emails: bool) -> bool {
    let person = &PEOPLE[lead.person];
    let term = fold(query);
    let mut fields = vec![Some(lead.username.as_str()), person.name];
    if emails {
        fields.push(person.email);
    }
    let fields = fields.into_iter().flatten().map(fold);
    if term.chars().count() <= 2 {
        fields.into_iter().any(|f| f.starts_with(&term))
    } else {
        fields
            .chain(lead.referrer.map(fold))
            .any(|f| f.contains(&term))
    }
}

/// A company whose leads (one per user, `count` of them, three to a millisecond) cycle through
/// [`PEOPLE`], [`REFERRERS`] and three products and none. Users are made by the seed, with
/// usernames made unique by a suffix that no term below matches.
async fn fixture(app: &TestApp, count: usize) -> (Company, Vec<Lead>) {
    let company = app.company(3, None).await;
    let mut batch = SeedBatch::default();
    let mut leads = Vec::new();
    for (i, created_at) in crowded_times(count).into_iter().enumerate() {
        let person = i % PEOPLE.len();
        let p = &PEOPLE[person];
        let user = User {
            id: leads_server::domain::UserId::generate().into_string(),
            username: format!("{}-{}", p.username, uniq()),
            email: p.email.map(str::to_owned),
            name: p.name.map(str::to_owned),
            created_at: leads_types::Timestamp::now(),
        };
        let referrer = REFERRERS[i % REFERRERS.len()];
        let product = (i % 4 != 0).then(|| company.products[i % 3].clone());
        let id = LeadId::generate();
        batch.leads.push(SeedLead {
            id: id.clone(),
            company_id: company.id.clone(),
            user_id: user.id.clone(),
            product_id: product.clone(),
            referrer: referrer.map(str::to_owned),
            metadata: None,
            created_at,
        });
        leads.push(Lead {
            id: id.into_string(),
            created_at,
            product,
            person,
            username: user.username.clone(),
            referrer,
        });
        batch.users.push(user);
    }
    app.stores.directory.insert_seed(batch).await.expect("seed");
    (company, leads)
}

/// A suffix of digits only, so no term of the tests below matches it by accident.
fn uniq() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{}{n:06}", std::process::id())
}

/// The ids of `leads` that pass `keep`, in list order.
fn expected(leads: &[Lead], keep: impl Fn(&Lead) -> bool) -> Vec<String> {
    let mut kept: Vec<&Lead> = leads.iter().filter(|l| keep(l)).collect();
    kept.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    kept.into_iter().map(|l| l.id.clone()).collect()
}

/// Both walks of `query` give exactly `expected`, at every page size.
async fn check_walks(app: &TestApp, key: &str, query: &str, expected: &[String]) {
    for n in [1, 3, 100] {
        let forward = app.walk_forward(key, query, n, expected.len()).await;
        assert_eq!(forward, expected, "{query}&first={n}");
        let backward = app.walk_backward(key, query, n, expected.len()).await;
        assert_eq!(backward, expected, "{query}&last={n}");
    }
}

const TERMS: &[&str] = &[
    "ÉMILE",
    "zola",
    "e",
    "Jo",
    "doe",
    "STRASSE",
    "straße",
    "50%",
    "off_",
    "_",
    "%",
    "\\",
    "twitter",
    "example",
    "ezola-",
    "zzz-nothing",
    "ann",
    "an",
];

async fn searches_walk_every_match_once_in_order_both_ways_with_every_filter(mut app: TestApp) {
    app.reconfigure(|config| config.rate_limit = RateLimit::unlimited())
        .await;
    let (company, leads) = fixture(&app, 61).await;
    let times = crowded_times(61);
    let (from, to) = (times[7], times[50]);
    let p0 = company.products[0].clone();
    let p2 = company.products[2].clone();
    for term in TERMS {
        let base = format!("company_id={}&query={}", company.id, enc(term));
        let all = expected(&leads, |l| matches(l, term, true));
        check_walks(&app, &company.key, &base, &all).await;
        let filtered = expected(&leads, |l| {
            matches(l, term, true)
                && matches!(&l.product, Some(p) if *p == p0 || *p == p2)
                && l.created_at > from
                && l.created_at < to
        });
        let q = format!(
            "{base}&product_ids[]={p0}&product_ids[]={p2}&created_after={}&created_before={}",
            enc(&rfc3339(from)),
            enc(&rfc3339(to))
        );
        check_walks(&app, &company.key, &q, &filtered).await;
    }
    // The two filters together: a lead must match both.
    let q = format!(
        "company_id={}&query=zola&email={}",
        company.id,
        enc("emile.z@EXAMPLE.org")
    );
    let both = expected(&leads, |l| l.person == 0);
    assert!(!both.is_empty());
    check_walks(&app, &company.key, &q, &both).await;
    let q = format!(
        "company_id={}&query=doe&email={}",
        company.id,
        enc("emile.z@example.org")
    );
    check_walks(&app, &company.key, &q, &[]).await;
}

async fn a_common_term_walks_and_a_rare_one_merges_with_the_same_answers(mut app: TestApp) {
    app.reconfigure(|config| config.rate_limit = RateLimit::unlimited())
        .await;
    // More leads match "example" (with emails) and "https" (by referrer) than a search merges,
    // so they walk; "zola" and "Jo" merge.
    let count = SEARCH_CANDIDATE_LIMIT * 5 / 2;
    let (company, leads) = fixture(&app, count).await;
    let hiding = app
        .key(
            &company,
            Some(&common::permissions_without("member:email:read")),
        )
        .await;
    let times = crowded_times(count);
    let (from, to) = (times[100], times[count - 100]);
    let p1 = company.products[1].clone();
    let filters = format!(
        "&product_ids[]={p1}&created_after={}&created_before={}",
        enc(&rfc3339(from)),
        enc(&rfc3339(to))
    );
    for term in ["example", "https", "zola", "Jo"] {
        let base = format!("company_id={}&query={}", company.id, enc(term));
        let in_window =
            |l: &Lead| l.product.as_ref() == Some(&p1) && l.created_at > from && l.created_at < to;
        // (key, query, whether the key sees emails, whether the filters apply)
        for (key, q, emails, filtered) in [
            (&company.key, base.clone(), true, false),
            (&company.key, format!("{base}{filters}"), true, true),
            (&hiding, base.clone(), false, false),
            (&hiding, format!("{base}{filters}"), false, true),
        ] {
            let all = expected(&leads, |l| {
                matches(l, term, emails) && (!filtered || in_window(l))
            });
            for n in [100, 13] {
                let forward = app.walk_forward(key, &q, n, all.len()).await;
                assert_eq!(forward, all, "{q}&first={n}");
                let backward = app.walk_backward(key, &q, n, all.len()).await;
                assert_eq!(backward, all, "{q}&last={n}");
            }
        }
    }
    // The common terms are common: "https" for either key, "example" for one that sees emails.
    for (term, emails) in [("https", true), ("https", false), ("example", true)] {
        let common = expected(&leads, |l| matches(l, term, emails));
        assert!(common.len() > SEARCH_CANDIDATE_LIMIT, "{term} is common");
    }
}

async fn case_folding_is_unicode_aware(app: TestApp) {
    let (company, leads) = fixture(&app, 14).await;
    let emile = expected(&leads, |l| {
        l.person == 0 || l.referrer == Some(REFERRERS[2].unwrap())
    });
    for term in ["ÉMILE", "émile", "E\u{301}MILE", "éMiLe"] {
        let page = app
            .list(
                &company.key,
                &format!("company_id={}&query={}&first=100", company.id, enc(term)),
            )
            .await;
        assert_eq!(page.ids, emile, "{term}");
    }
    let strasse = expected(&leads, |l| l.person == 2);
    for term in ["STRASSE", "straße", "Straße"] {
        let page = app
            .list(
                &company.key,
                &format!("company_id={}&query={}&first=100", company.id, enc(term)),
            )
            .await;
        assert_eq!(page.ids, strasse, "{term}");
    }
}

async fn one_or_two_characters_match_a_prefix_only(app: TestApp) {
    let (company, leads) = fixture(&app, 14).await;
    let list = |term: &'static str| {
        let q = format!("company_id={}&query={}&first=100", company.id, enc(term));
        let app = &app;
        let key = company.key.clone();
        async move { app.list(&key, &q).await.ids }
    };
    // "jo" starts john.doe's username ("jdoe42" does not), name and email.
    assert_eq!(list("JO").await, expected(&leads, |l| l.person == 1));
    // "oe" is inside "John Doe" and "jdoe42" but starts nothing.
    assert_eq!(list("oe").await, Vec::<String>::new());
    // "é" starts "Émile Zola" only; as a prefix it never looks at referrers.
    assert_eq!(list("É").await, expected(&leads, |l| l.person == 0));
    // Characters are counted once folded: "E" with a combining accent, then "m", is the two
    // characters "ém", a prefix (as a substring it would find the ÉMILE referrer too).
    assert_eq!(list("E\u{301}m").await, expected(&leads, |l| l.person == 0));
    assert_ne!(
        expected(&leads, |l| l.person == 0),
        expected(&leads, |l| matches(l, "émi", true))
    );
    // Three characters match anywhere, referrers included.
    assert_eq!(list("oe4").await, expected(&leads, |l| l.person == 1));
}

async fn like_metacharacters_are_taken_literally(app: TestApp) {
    let (company, leads) = fixture(&app, 14).await;
    let list = |term: &'static str| {
        let q = format!("company_id={}&query={}&first=100", company.id, enc(term));
        let app = &app;
        let key = company.key.clone();
        async move { app.list(&key, &q).await.ids }
    };
    // "50% off_deal" and not its decoy "500 offXdeal".
    let percent = expected(&leads, |l| l.person == 3);
    assert_eq!(list("50% off_").await, percent);
    assert_eq!(list("% o").await, percent);
    assert_eq!(list("f_d").await, percent);
    // "back\slash@odd.io" and not "backslash@odd.io".
    assert_eq!(list("k\\s").await, percent);
    // One or two characters: a prefix, so "%" and "_" start nothing here.
    assert_eq!(list("%").await, Vec::<String>::new());
    assert_eq!(list("_").await, Vec::<String>::new());
    // The referrer "https://a.io/100%_sure".
    assert_eq!(
        list("0%_s").await,
        expected(&leads, |l| l.referrer == Some("https://a.io/100%_sure"))
    );
}

async fn email_finds_the_leads_of_that_address_whole_and_caseless(app: TestApp) {
    let (company, leads) = fixture(&app, 30).await;
    let john = expected(&leads, |l| l.person == 1);
    for address in ["john.doe@example.com", "JOHN.DOE@EXAMPLE.COM"] {
        let q = format!("company_id={}&email={}", company.id, enc(address));
        check_walks(&app, &company.key, &q, &john).await;
    }
    for partial in ["john.doe", "example.com", "john.doe@example.co"] {
        let q = format!("company_id={}&email={}&first=100", company.id, enc(partial));
        assert!(app.list(&company.key, &q).await.ids.is_empty(), "{partial}");
    }
    // With products and times.
    let times = crowded_times(30);
    let p1 = company.products[1].clone();
    let q = format!(
        "company_id={}&email={}&product_ids={p1}&created_after={}",
        company.id,
        enc("john.doe@example.com"),
        enc(&rfc3339(times[3]))
    );
    let filtered = expected(&leads, |l| {
        l.person == 1 && l.product.as_deref() == Some(p1.as_str()) && l.created_at > times[3]
    });
    check_walks(&app, &company.key, &q, &filtered).await;
}

async fn without_member_email_read_a_search_cannot_reveal_emails(mut app: TestApp) {
    app.reconfigure(|config| config.rate_limit = RateLimit::unlimited())
        .await;
    let (company, leads) = fixture(&app, 28).await;
    let key = app
        .key(
            &company,
            Some(&common::permissions_without("member:email:read")),
        )
        .await;
    // "treasure" is only in an email; "zzzzzz" is in nothing.
    let list = |key: String, term: &'static str| {
        let q = format!("company_id={}&query={}&first=100", company.id, enc(term));
        let app = &app;
        async move { app.list(&key, &q).await }
    };
    let with = list(company.key.clone(), "treasure").await;
    assert_eq!(with.ids, expected(&leads, |l| l.person == 6));
    assert!(!with.ids.is_empty());
    let hidden = list(key.clone(), "treasure").await;
    let nothing = list(key.clone(), "zzzzzz").await;
    assert_eq!(
        hidden.body, nothing.body,
        "the same answer as a term that matches nothing"
    );
    assert!(hidden.ids.is_empty());
    // Short terms too: "hi" starts only that email.
    assert!(!list(company.key.clone(), "hi").await.ids.is_empty());
    assert_eq!(
        list(key.clone(), "hi").await.body,
        list(key.clone(), "zz").await.body
    );
    // Names and usernames are still found.
    assert_eq!(
        list(key.clone(), "quiet").await.ids,
        expected(&leads, |l| l.person == 6)
    );
    // A full walk without the permission is the reference matcher without emails.
    for term in TERMS {
        let q = format!("company_id={}&query={}", company.id, enc(term));
        let all = expected(&leads, |l| matches(l, term, false));
        assert_eq!(
            app.walk_forward(&key, &q, 7, all.len()).await,
            all,
            "{term}"
        );
    }
    // email= itself is refused, naming the permission.
    let (status, body) = app
        .get(
            &format!(
                "/api/v1/leads?company_id={}&email={}",
                company.id,
                enc("hidden.treasure@vault.io")
            ),
            Some(&key),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("member:email:read"),
        "{body}"
    );
}

async fn cursors_are_bound_to_their_query(app: TestApp) {
    let (company, _) = fixture(&app, 28).await;
    let base = format!("company_id={}", company.id);
    let page = app
        .list(&company.key, &format!("{base}&query=example&first=2"))
        .await;
    let cursor = page.end_cursor.expect("a cursor");
    // The same query, in another case, continues.
    app.list(
        &company.key,
        &format!("{base}&query=EXAMPLE&after={cursor}"),
    )
    .await;
    for other in [
        format!("{base}&after={cursor}"),
        format!("{base}&query=exampl&after={cursor}"),
        format!("{base}&email=example&before={cursor}"),
    ] {
        let (status, body) = app
            .get(&format!("/api/v1/leads?{other}"), Some(&company.key))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{other}: {body}");
    }
    // An unfiltered cursor is not a search's either.
    let plain = app.list(&company.key, &format!("{base}&first=2")).await;
    let (status, body) = app
        .get(
            &format!(
                "/api/v1/leads?{base}&query=example&after={}",
                plain.end_cursor.unwrap()
            ),
            Some(&company.key),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "after");
}

async fn bad_queries_and_emails_are_refused_naming_their_parameter(app: TestApp) {
    let company = app.company(0, None).await;
    let base = format!("company_id={}", company.id);
    for (query, param) in [
        (format!("query={}", "a".repeat(101)), "query"),
        (format!("query={}", enc(&"é".repeat(101))), "query"),
        ("query=a%00b".to_owned(), "query"),
        ("query=a&query=b".to_owned(), "query"),
        (format!("email={}", "a".repeat(256)), "email"),
        ("email=a%0Ab".to_owned(), "email"),
        // Bytes that are not UTF-8 are refused, not searched for as U+FFFD.
        ("query=%FF%FE".to_owned(), "query"),
        ("query=caf%C3".to_owned(), "query"),
        ("email=a%E9b%40example.com".to_owned(), "email"),
    ] {
        let (status, body) = app
            .get(&format!("/api/v1/leads?{base}&{query}"), Some(&company.key))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["param"], param, "{query}");
    }
    // A hundred characters, and an empty value (not given), are fine.
    app.list(
        &company.key,
        &format!("{base}&query={}", enc(&"é".repeat(100))),
    )
    .await;
    app.list(&company.key, &format!("{base}&query=&email="))
        .await;
}

async fn creates_and_updates_are_found_at_once(app: TestApp) {
    let company = app.company(1, None).await;
    // A bulk write first (the fixtures are seeded, as `leads seed` and `leads import` write):
    // it indexes its rows in bulk, and the row-by-row indexing must be back afterwards.
    let seeded = app
        .leads(
            &company,
            &[(leads_server::domain::Timestamp::now().as_millis(), Some(0))],
        )
        .await;
    let seeded_user = seeded[0].user.username.clone();
    let user = admin::create_user(
        app.stores.directory.as_ref(),
        &format!("Brand-New{}", uniq()),
        Some("Fresh@Example.NET"),
        Some("Ωmega Person"),
    )
    .await
    .expect("user");
    let (status, _, lead) = app
        .send(
            reqwest::Method::POST,
            "/api/v1/leads",
            &company.key,
            Some(&json!({"company_id": company.id, "user_id": user.id, "referrer": "https://Launch.example/ΣPARK"})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{lead}");
    let id = lead["id"].as_str().unwrap().to_owned();
    let find = |term: &'static str| {
        let q = format!("company_id={}&query={}", company.id, enc(term));
        let app = &app;
        let key = company.key.clone();
        async move { app.list(&key, &q).await.ids }
    };
    for term in [
        "brand-new",
        "ωMEGA",
        "fresh@example.net",
        "σpark",
        "br",
        "Ωm",
    ] {
        assert_eq!(find(term).await, vec![id.clone()], "{term}");
    }
    let by_email = app
        .list(
            &company.key,
            &format!(
                "company_id={}&email={}",
                company.id,
                enc("FRESH@example.net")
            ),
        )
        .await;
    assert_eq!(by_email.ids, vec![id.clone()]);
    let patch = |body: serde_json::Value| {
        let app = &app;
        let key = company.key.clone();
        let id = id.clone();
        async move {
            let (status, _, lead) = app
                .send(
                    reqwest::Method::PATCH,
                    &format!("/api/v1/leads/{id}"),
                    &key,
                    Some(&body),
                    &[],
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{lead}");
        }
    };
    patch(json!({"referrer": "https://elsewhere.example/"})).await;
    assert!(find("σpark").await.is_empty());
    assert_eq!(find("elsewhere").await, vec![id.clone()]);
    patch(json!({"metadata": {"a": 1}})).await;
    assert_eq!(
        find("elsewhere").await,
        vec![id.clone()],
        "a change of metadata keeps the referrer"
    );
    patch(json!({"referrer": null})).await;
    assert!(find("elsewhere").await.is_empty());
    let q = format!("company_id={}&query={}", company.id, enc(&seeded_user));
    assert_eq!(
        app.list(&company.key, &q).await.ids,
        vec![seeded[0].id.clone()]
    );
}

async fn other_companies_leads_never_match(app: TestApp) {
    let (mine, _) = fixture(&app, 7).await;
    let (_, theirs) = fixture(&app, 7).await;
    assert!(!theirs.is_empty());
    for term in ["zola", "Jo", "twitter"] {
        let page = app
            .list(
                &mine.key,
                &format!("company_id={}&query={term}&first=100", mine.id),
            )
            .await;
        assert!(page
            .ids
            .iter()
            .all(|id| !theirs.iter().any(|l| &l.id == id)));
        assert!(!page.ids.is_empty());
    }
}

/// An old schema (the server migrates it on through statistics, which SQLite's migration computes
/// with a function the server registers, and search), and one company, user and lead written
/// with it.
const BEFORE_SEARCH: [&str; 3] = ["0001_init", "0002_idempotency_claims", "0003_credentials"];
const OLD_ROWS: &str = "
    INSERT INTO companies (id, title, created_at) VALUES ('biz_oldoldoldoldo1', 'Old', 0);
    INSERT INTO users (id, username, email, name, created_at)
        VALUES ('user_oldoldoldold1', 'OldTimer', 'Old.Timer@Example.ORG', 'ÉMILE Ancien', 0);
    INSERT INTO leads (id, company_id, user_id, product_id, referrer, metadata, created_at, updated_at)
        VALUES ('lead_oldoldoldold1', 'biz_oldoldoldoldo1', 'user_oldoldoldold1', NULL,
                'https://Old.example/ΣPARK', NULL, 1700000000000, 1700000000000);";

/// The old lead is found by every field a search looks at, once the server has migrated.
async fn old_rows_are_found(app: &TestApp) {
    let (_, key) = admin::create_key(app.stores.credentials.as_ref(), "biz_oldoldoldoldo1", None)
        .await
        .expect("key");
    for term in ["oldtimer", "émile", "old.timer@example.org", "σpark", "Ol"] {
        let page = app
            .list(
                &key,
                &format!("company_id=biz_oldoldoldoldo1&query={}", enc(term)),
            )
            .await;
        assert_eq!(page.ids, vec!["lead_oldoldoldold1".to_owned()], "{term}");
    }
    let page = app
        .list(
            &key,
            &format!(
                "company_id=biz_oldoldoldoldo1&email={}",
                enc("OLD.TIMER@example.org")
            ),
        )
        .await;
    assert_eq!(page.ids, vec!["lead_oldoldoldold1".to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_users_and_leads_written_before_search_are_found_after_the_upgrade() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("old.db");
    {
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
        )
        .unwrap();
        for (i, name) in BEFORE_SEARCH.iter().enumerate() {
            let file = format!(
                "{}/migrations/sqlite/{name}.sql",
                env!("CARGO_MANIFEST_DIR")
            );
            conn.execute_batch(&std::fs::read_to_string(file).unwrap())
                .unwrap();
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, 0)",
                [i as i64 + 1],
            )
            .unwrap();
        }
        conn.execute_batch(OLD_ROWS).unwrap();
    }
    let app = TestApp::instance_on(
        &format!("sqlite://{}", path.display()),
        common::Backend::Sqlite,
    )
    .await;
    old_rows_are_found(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_users_and_leads_written_before_search_are_found_after_the_upgrade() {
    let Some(database) = common::PgDatabase::create().await else {
        return;
    };
    let client = common::admin_client(&database.url).await;
    client
        .batch_execute(
            "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .await
        .unwrap();
    for (i, name) in BEFORE_SEARCH.iter().enumerate() {
        let file = format!(
            "{}/migrations/postgres/{name}.sql",
            env!("CARGO_MANIFEST_DIR")
        );
        client
            .batch_execute(&std::fs::read_to_string(file).unwrap())
            .await
            .unwrap();
        client
            .execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, 0)",
                &[&(i as i64 + 1)],
            )
            .await
            .unwrap();
    }
    client.batch_execute(OLD_ROWS).await.unwrap();
    let app = TestApp::instance_on(&database.url, common::Backend::Postgres).await;
    old_rows_are_found(&app).await;
}
