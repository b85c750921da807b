//! Two server instances on one database, as behind a load balancer, behave as one server: a
//! cursor, an idempotency key, a key or a lead from one is honoured by the other at once.

mod common;

use common::{crowded_times, list_order, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;

conformance!(
    a_walk_alternating_between_two_instances_sees_every_lead_once,
    a_lead_created_on_one_instance_is_listed_read_and_updated_at_once_on_the_other,
    one_idempotency_key_sent_to_both_instances_at_once_makes_one_lead,
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

async fn a_lead_created_on_one_instance_is_listed_read_and_updated_at_once_on_the_other(
    app: TestApp,
) {
    let other = TestApp::instance_on(&app.database_url, app.backend).await;
    let company = app.company(1, None).await;
    let query = format!("company_id={}&first=100", company.id);
    assert!(other.list(&company.key, &query).await.ids.is_empty());
    for round in 0..6 {
        let (writer, reader) = if round % 2 == 0 {
            (&app, &other)
        } else {
            (&other, &app)
        };
        let user = app.user().await;
        let body =
            json!({"company_id": company.id, "user_id": user.id, "referrer": "https://a.example/"});
        let (status, _, lead) = writer
            .send(
                Method::POST,
                "/api/v1/leads",
                &company.key,
                Some(&body),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{lead}");
        let id = lead["id"].as_str().unwrap();
        // The moment the create has answered, the other instance lists it first...
        let page = reader.list(&company.key, &query).await;
        assert_eq!(
            page.ids.first().map(String::as_str),
            Some(id),
            "round {round}: the other instance lists the new lead first"
        );
        assert_eq!(page.ids.len(), round + 1);
        // ...reads it, and changes it, and the first sees the change.
        let path = format!("/api/v1/leads/{id}");
        let (status, _, read) = reader
            .send(Method::GET, &path, &company.key, None, &[])
            .await;
        assert_eq!((status, &read), (StatusCode::OK, &lead));
        let change = json!({"metadata": {"round": round}});
        let (status, _, changed) = reader
            .send(Method::PATCH, &path, &company.key, Some(&change), &[])
            .await;
        assert_eq!(status, StatusCode::OK, "{changed}");
        let (_, _, seen) = writer
            .send(Method::GET, &path, &company.key, None, &[])
            .await;
        assert_eq!(seen["metadata"], json!({"round": round}));
    }
}

/// Retries of one create with one Idempotency-Key, sent at once to both instances (as a client
/// retrying through a load balancer would), make one lead, and every answer is that lead.
async fn one_idempotency_key_sent_to_both_instances_at_once_makes_one_lead(app: TestApp) {
    let other = TestApp::instance_on(&app.database_url, app.backend).await;
    let company = app.company(0, None).await;
    let body = json!({"company_id": company.id, "user_id": app.user().await.id});
    let instances = [Arc::new(app), Arc::new(other)];
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (instance, key, body) =
                (instances[i % 2].clone(), company.key.clone(), body.clone());
            tokio::spawn(async move {
                instance
                    .send(
                        Method::POST,
                        "/api/v1/leads",
                        &key,
                        Some(&body),
                        &[("Idempotency-Key", "one-lead-please")],
                    )
                    .await
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in tasks {
        let (status, _, lead) = task.await.expect("task");
        assert_eq!(status, StatusCode::OK, "{lead}");
        ids.insert(lead["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "one lead for one key: {ids:?}");
    for instance in &instances {
        let page = instance
            .list(&company.key, &format!("company_id={}", company.id))
            .await;
        assert_eq!(page.ids.len(), 1);
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
        let stores = start.await.expect("task").expect("open while others open");
        secrets.insert(stores.database.cursor_secret().await.expect("secret"));
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
    // Every migration file's number, once (numbers are assigned per change, so one may be
    // missing until its change lands).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    let mut expected: Vec<i64> = std::fs::read_dir(dir)
        .expect("migrations")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.split('_').next()?.parse().ok()
        })
        .collect();
    expected.sort();
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
