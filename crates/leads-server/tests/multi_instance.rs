//! Two server instances on one database, as behind a load balancer, behave as one server.

mod common;

use common::{crowded_times, list_order, TestApp};
use leads_server::domain::LeadId;
use leads_server::storage::{SeedBatch, SeedLead};
use std::collections::HashSet;

conformance!(
    a_walk_alternating_between_two_instances_sees_every_lead_once,
    a_lead_written_through_one_instance_is_listed_at_once_by_the_other,
    a_key_made_through_one_instance_works_at_once_on_the_other,
);

async fn a_walk_alternating_between_two_instances_sees_every_lead_once(app: TestApp) {
    let other = TestApp::instance_on(&app.database_url, app.backend).await;
    let company = app.company(2, None).await;
    let specs: Vec<(i64, Option<usize>)> = crowded_times(47)
        .into_iter()
        .enumerate()
        .map(|(i, t)| (t, (i % 3 != 0).then_some(i % 2)))
        .collect();
    let leads = app.leads(&company, &specs).await;
    let expected = list_order(&leads);

    // Forward, each page from the other instance, continuing the cursor the last one gave.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for turn in 0.. {
        let instance = if turn % 2 == 0 { &app } else { &other };
        let cursor = after.map(|c| format!("&after={c}")).unwrap_or_default();
        let page = instance
            .list(
                &company.key,
                &format!("company_id={}&first=5{cursor}", company.id),
            )
            .await;
        if page.ids.is_empty() {
            break;
        }
        seen.extend(page.ids.iter().cloned());
        assert_eq!(page.has_next, seen.len() < expected.len());
        assert_eq!(page.has_previous, seen.len() > page.ids.len());
        after = page.end_cursor;
        assert!(turn < 20, "the walk does not end");
    }
    assert_eq!(
        seen, expected,
        "every lead once, in order, across instances"
    );

    // Backward, alternating the other way round.
    let mut seen = Vec::new();
    let mut before: Option<String> = None;
    for turn in 0.. {
        let instance = if turn % 2 == 0 { &other } else { &app };
        let cursor = before.map(|c| format!("&before={c}")).unwrap_or_default();
        let page = instance
            .list(
                &company.key,
                &format!("company_id={}&last=6{cursor}", company.id),
            )
            .await;
        if page.ids.is_empty() {
            break;
        }
        seen.splice(0..0, page.ids.iter().cloned());
        before = page.start_cursor;
        assert!(turn < 20, "the walk does not end");
    }
    assert_eq!(seen, expected, "the same order walking back");
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len());
}

async fn a_lead_written_through_one_instance_is_listed_at_once_by_the_other(app: TestApp) {
    let other = TestApp::instance_on(&app.database_url, app.backend).await;
    let company = app.company(1, None).await;
    let query = format!("company_id={}&first=100", company.id);
    assert!(other.list(&company.key, &query).await.ids.is_empty());
    for round in 0..5 {
        // Written through the first instance's store, read through the second's HTTP API.
        let writer = if round % 2 == 0 { &app } else { &other };
        let reader = if round % 2 == 0 { &other } else { &app };
        let user = leads_server::admin::create_user(
            writer.store.as_ref(),
            &format!(
                "user{round}_{}",
                leads_server::domain::ids::random_base62(6)
            ),
            None,
            None,
        )
        .await
        .expect("user");
        let id = LeadId::generate();
        writer
            .store
            .insert_seed(SeedBatch {
                leads: vec![SeedLead {
                    id: id.clone(),
                    company_id: company.id.clone(),
                    user_id: user.id,
                    product_id: None,
                    referrer: None,
                    metadata: None,
                    created_at: 1_700_000_000_000 + round,
                }],
                ..SeedBatch::default()
            })
            .await
            .expect("write a lead");
        let page = reader.list(&company.key, &query).await;
        assert_eq!(
            page.ids.first().map(String::as_str),
            Some(id.as_str()),
            "round {round}: the other instance lists the new lead first"
        );
        assert_eq!(page.ids.len() as i64, round + 1);
    }
}

async fn a_key_made_through_one_instance_works_at_once_on_the_other(app: TestApp) {
    let other = TestApp::instance_on(&app.database_url, app.backend).await;
    let company = app.company(0, None).await;
    let key = other.key(&company, None).await;
    let page = app.list(&key, &format!("company_id={}", company.id)).await;
    assert!(page.ids.is_empty());
}

/// Instances started together on a new database: one applies the migrations, the others wait
/// for it and find them applied, and all sign cursors with the one secret the first stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_instances_starting_at_once_migrate_once_and_share_one_cursor_secret() {
    let Some(database) = common::PgDatabase::create().await else {
        return;
    };
    let starts: Vec<_> = (0..6)
        .map(|_| {
            let url = database.url.clone();
            tokio::spawn(async move { leads_server::storage::open(&url).await })
        })
        .collect();
    let mut secrets = HashSet::new();
    for start in starts {
        let store = start.await.expect("task").expect("open while others open");
        secrets.insert(store.cursor_secret().await.expect("secret"));
    }
    assert_eq!(
        secrets.len(),
        1,
        "every instance has the same cursor secret"
    );
    let client = common::admin_client(&database.url).await;
    let versions: Vec<i64> = client
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .expect("read schema_migrations")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let expected: Vec<i64> = (1..=versions.len() as i64).collect();
    assert_eq!(versions, expected, "each migration recorded once");
}

/// A key revoked in the database (there is no revoke command yet; an operator would run this
/// UPDATE) is refused at once by every instance: keys are never cached in a process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_revoked_key_is_refused_at_once_by_every_instance() {
    let Some(app) = TestApp::spawn_or_skip(common::Backend::Postgres).await else {
        return;
    };
    let other = TestApp::instance_on(&app.database_url, app.backend).await;
    let company = app.company(0, None).await;
    let path = format!("/api/v1/leads?company_id={}", company.id);
    for instance in [&app, &other] {
        let (status, body) = instance.get(&path, Some(&company.key)).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    }
    let client = common::admin_client(&app.database_url).await;
    let revoked = client
        .execute(
            "UPDATE api_keys SET revoked_at = $1 WHERE company_id = $2",
            &[&leads_types::Timestamp::now().as_millis(), &company.id],
        )
        .await
        .expect("revoke");
    assert_eq!(revoked, 1);
    for instance in [&other, &app] {
        let (status, body) = instance.get(&path, Some(&company.key)).await;
        assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED, "{body}");
    }
}
