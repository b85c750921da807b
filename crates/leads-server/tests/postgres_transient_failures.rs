//! PostgreSQL's transient failures, as a client sees them: transactions aborted for a
//! serialization failure or a deadlock are run again inside the server, so a client sees no 5xx
//! and nothing applied twice; a statement held past `statement_timeout` answers 503 instead of
//! holding its connection. PostgreSQL only; skipped loudly without `LEADS_TEST_DATABASE_URL`.

mod common;

use common::{Backend, PgDatabase, TestApp};
use leads_server::auth::rate_limit::RateLimit;
use leads_server::storage::{self, postgres::PgSettings};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WRITERS: usize = 64;
/// Leads patched concurrently by many writers, and idempotency keys shared by many.
const SHARED: usize = 4;
/// Requests each writer makes, one after another.
const ROUNDS: usize = 5;

/// What the clients were answered 200 for.
#[derive(Default)]
struct Acknowledged {
    /// Ids of leads created without an idempotency key.
    unkeyed: Vec<String>,
    /// For each idempotency key, the ids of the leads its creates were answered with.
    keyed: HashMap<String, Vec<String>>,
    /// For each shared lead, the metadata values its patches were answered for.
    patched: HashMap<String, HashSet<Value>>,
    /// Every answer that was not a 200, with its body.
    failures: Vec<(StatusCode, Value)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_writers_on_a_serializable_database_see_no_5xx_and_nothing_applied_twice() {
    let Some(database) = PgDatabase::create().await else {
        return;
    };
    database
        .set("default_transaction_isolation", "serializable")
        .await;
    let mut app = TestApp::instance_on(&database.url, Backend::Postgres).await;
    // One key makes every request: without this, rate limits would answer 429s.
    app.reconfigure(|config| config.rate_limit = RateLimit::unlimited())
        .await;
    let app = Arc::new(app);
    let company = app.company(0, None).await;
    let mut shared_leads = Vec::new();
    for _ in 0..SHARED {
        let body = json!({"company_id": company.id, "user_id": app.user().await.id});
        let (status, lead) = send(
            &app,
            &company.key,
            Method::POST,
            "/api/v1/leads",
            &body,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{lead}");
        shared_leads.push(lead["id"].as_str().unwrap().to_owned());
    }
    // Each key's creates all send the same body, so a replay is a replay and not a conflict.
    let mut keyed_bodies = Vec::new();
    for k in 0..SHARED {
        let body = json!({"company_id": company.id, "user_id": app.user().await.id});
        keyed_bodies.push((format!("serializable-{k}"), body));
    }
    // One lead is patched by one writer only, in sequence, so its final value is known.
    let sequential = app.leads(&company, &[(1_700_000_000_000, None)]).await[0]
        .id
        .clone();
    let unkeyed_users: Vec<String> = {
        let mut users = Vec::new();
        for _ in 0..WRITERS {
            users.push(app.user().await.id);
        }
        users
    };

    let acknowledged = Arc::new(Mutex::new(Acknowledged::default()));
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let (app, key, company_id) = (app.clone(), company.key.clone(), company.id.clone());
        let (shared_leads, keyed_bodies) = (shared_leads.clone(), keyed_bodies.clone());
        let (acknowledged, user) = (acknowledged.clone(), unkeyed_users[writer].clone());
        let sequential = sequential.clone();
        writers.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                let (status, body) = match writer % 4 {
                    0 => {
                        let body = json!({"company_id": company_id, "user_id": user});
                        let answer =
                            send(&app, &key, Method::POST, "/api/v1/leads", &body, None).await;
                        if answer.0 == StatusCode::OK {
                            let id = answer.1["id"].as_str().unwrap().to_owned();
                            acknowledged.lock().unwrap().unkeyed.push(id);
                        }
                        answer
                    }
                    1 => {
                        let (idempotency_key, body) = &keyed_bodies[(writer / 4 + round) % SHARED];
                        let answer = send(
                            &app,
                            &key,
                            Method::POST,
                            "/api/v1/leads",
                            body,
                            Some(idempotency_key),
                        )
                        .await;
                        if answer.0 == StatusCode::OK {
                            let id = answer.1["id"].as_str().unwrap().to_owned();
                            let mut acknowledged = acknowledged.lock().unwrap();
                            acknowledged
                                .keyed
                                .entry(idempotency_key.clone())
                                .or_default()
                                .push(id);
                        }
                        answer
                    }
                    2 => {
                        let lead = &shared_leads[(writer / 4 + round) % SHARED];
                        let metadata = json!({"writer": writer, "round": round});
                        let body = json!({"metadata": metadata});
                        let answer = send(
                            &app,
                            &key,
                            Method::PATCH,
                            &format!("/api/v1/leads/{lead}"),
                            &body,
                            None,
                        )
                        .await;
                        if answer.0 == StatusCode::OK {
                            let mut acknowledged = acknowledged.lock().unwrap();
                            acknowledged
                                .patched
                                .entry(lead.clone())
                                .or_default()
                                .insert(metadata);
                        }
                        answer
                    }
                    _ if writer == 3 => {
                        let body = json!({"metadata": {"round": round}});
                        send(
                            &app,
                            &key,
                            Method::PATCH,
                            &format!("/api/v1/leads/{sequential}"),
                            &body,
                            None,
                        )
                        .await
                    }
                    _ => {
                        // Reads of the leads being patched, in the same transactions' way.
                        let lead = &shared_leads[(writer + round) % SHARED];
                        let (status, body) =
                            app.get(&format!("/api/v1/leads/{lead}"), Some(&key)).await;
                        (status, body)
                    }
                };
                if status != StatusCode::OK {
                    acknowledged.lock().unwrap().failures.push((status, body));
                }
            }
        }));
    }
    for writer in writers {
        writer.await.expect("a writer panicked");
    }

    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap());
    assert!(
        acknowledged.failures.is_empty(),
        "clients saw failures: {:?}",
        acknowledged.failures
    );
    // Every acknowledged create exists exactly once, and each key made one lead.
    let listed = app
        .list(
            &company.key,
            &format!("company_id={}&first=100", company.id),
        )
        .await;
    assert!(!listed.has_next, "more leads than expected");
    let mut expected: Vec<String> = shared_leads.clone();
    expected.push(sequential.clone());
    expected.extend(acknowledged.unkeyed.iter().cloned());
    assert_eq!(acknowledged.unkeyed.len(), WRITERS / 4 * ROUNDS);
    for (key, ids) in &acknowledged.keyed {
        let first = &ids[0];
        assert!(
            ids.iter().all(|id| id == first),
            "key {key} made several leads: {ids:?}"
        );
        expected.push(first.clone());
    }
    assert_eq!(acknowledged.keyed.len(), SHARED);
    let mut listed_ids = listed.ids.clone();
    listed_ids.sort();
    expected.sort();
    assert_eq!(
        listed_ids, expected,
        "the leads listed are not the leads acknowledged"
    );
    // Each shared lead holds one of the values acknowledged for it.
    for (lead, values) in &acknowledged.patched {
        let (status, body) = app
            .get(&format!("/api/v1/leads/{lead}"), Some(&company.key))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            values.contains(&body["metadata"]),
            "lead {lead} holds {}, which no acknowledged patch sent",
            body["metadata"]
        );
    }
    // The lead patched in sequence holds the last patch.
    let (_, body) = app
        .get(&format!("/api/v1/leads/{sequential}"), Some(&company.key))
        .await;
    assert_eq!(body["metadata"], json!({"round": ROUNDS - 1}), "{body}");
    drop(app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_held_past_the_statement_timeout_answers_503_and_frees_its_connection() {
    let Some(database) = PgDatabase::create().await else {
        return;
    };
    let settings = PgSettings {
        statement_timeout: Duration::from_millis(300),
        ..PgSettings::default()
    };
    let stores = storage::open_with(&database.url, settings)
        .await
        .expect("open store");
    let app = TestApp::instance_over(stores, &database.url, Backend::Postgres).await;
    let company = app.company(0, None).await;
    let lead = app.leads(&company, &[(1_700_000_000_000, None)]).await[0]
        .id
        .clone();

    // Another session holds the lead's row, so a patch of it waits past the timeout.
    let holder = common::admin_client(&database.url).await;
    holder.batch_execute("BEGIN").await.unwrap();
    holder
        .execute("SELECT 1 FROM leads WHERE id = $1 FOR UPDATE", &[&lead])
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let patch = json!({"metadata": {"late": true}});
    let path = format!("/api/v1/leads/{lead}");
    let (status, headers, body) = app
        .send(Method::PATCH, &path, &company.key, Some(&patch), &[])
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["type"], "service_unavailable", "{body}");
    assert!(headers.contains_key("retry-after"), "{headers:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the patch waited {:?}",
        started.elapsed()
    );
    holder.batch_execute("ROLLBACK").await.unwrap();

    // The lock gone, the same patch goes through.
    let (status, _, body) = app
        .send(Method::PATCH, &path, &company.key, Some(&patch), &[])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["metadata"], json!({"late": true}));
    drop(app);
}

async fn send(
    app: &TestApp,
    key: &str,
    method: Method,
    path: &str,
    body: &Value,
    idempotency_key: Option<&str>,
) -> (StatusCode, Value) {
    let headers: Vec<(&str, &str)> = idempotency_key
        .map(|k| vec![("Idempotency-Key", k)])
        .unwrap_or_default();
    let (status, _, body) = app.send(method, path, key, Some(body), &headers).await;
    (status, body)
}
