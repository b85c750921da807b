//! No acknowledged change goes without its event: while many clients create and update leads
//! with an endpoint subscribed, the real `leads` binary is killed with SIGKILL and restarted on
//! the same database. Every acknowledged create has a `lead.created` delivered at least once,
//! and no event names a lead that does not exist. On SQLite and, given
//! `LEADS_TEST_DATABASE_URL`, on PostgreSQL.

mod common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use common::{admin, all_leads, serve};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Creates acknowledged before the kill.
const ACKNOWLEDGED_BEFORE_KILL: usize = 300;
const CLIENTS: usize = 12;
/// Fast retries, and a receiver on loopback.
const WEBHOOK_FLAGS: [&str; 5] = [
    "--rate-limit",
    "0",
    "--webhook-allow-private-targets",
    "--webhook-retry-schedule",
    "0s,200ms,500ms,1s,2s",
];

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_acknowledged_create_is_delivered_across_a_sigkill() {
        let dir = tempfile::tempdir().unwrap();
        let database = format!("sqlite://{}", dir.path().join("leads.db").display());
        super::every_acknowledged_create_is_delivered_across_a_sigkill(&database).await;
    }
}

mod postgres {
    use super::common;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_acknowledged_create_is_delivered_across_a_sigkill() {
        let Some(database) = common::PgDatabase::create().await else {
            return;
        };
        super::every_acknowledged_create_is_delivered_across_a_sigkill(&database.url).await;
    }
}

/// Every event received: (type, data.id).
type Events = Arc<Mutex<Vec<(String, String)>>>;

async fn receive(State(events): State<Events>, _headers: HeaderMap, body: Bytes) -> &'static str {
    let event: Value = serde_json::from_slice(&body).expect("a JSON body");
    let kind = event["type"].as_str().unwrap_or_default().to_owned();
    let id = event["data"]["id"].as_str().unwrap_or_default().to_owned();
    events.lock().unwrap().push((kind, id));
    "{}"
}

async fn every_acknowledged_create_is_delivered_across_a_sigkill(database: &str) {
    let events: Events = Arc::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(events.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let company = admin(database, &["company", "create", "--title", "Durable"]);
    let key = admin(database, &["key", "create", "--company", &company]);
    let users: Vec<String> = (0..CLIENTS)
        .map(|i| {
            admin(
                database,
                &["user", "create", "--username", &format!("d{i}")],
            )
        })
        .collect();
    let http = reqwest::Client::new();
    let mut server = serve(database, &http, &WEBHOOK_FLAGS).await;
    let created: Value = http
        .post(format!("{}/api/v1/webhooks", server.base))
        .bearer_auth(&key)
        .json(&json!({"url": hook_url, "events": ["lead.created", "lead.updated"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(created["id"].is_string(), "{created}");

    let acknowledged = Arc::new(Mutex::new(HashSet::<String>::new()));
    let clients: Vec<_> = users
        .into_iter()
        .map(|user| {
            let (http, base, acknowledged) =
                (http.clone(), server.base.clone(), acknowledged.clone());
            let (company, key) = (company.clone(), key.clone());
            tokio::spawn(async move {
                loop {
                    let body = json!({"company_id": company, "user_id": user});
                    let sent = http
                        .post(format!("{base}/api/v1/leads"))
                        .bearer_auth(&key)
                        .json(&body)
                        .send()
                        .await;
                    let Ok(response) = sent else { return };
                    if response.status() != reqwest::StatusCode::OK {
                        return;
                    }
                    let Ok(lead) = response.json::<Value>().await else {
                        return;
                    };
                    let id = lead["id"].as_str().expect("id").to_owned();
                    acknowledged.lock().unwrap().insert(id.clone());
                    // And an update of it, whose event must name an existing lead too.
                    let _ = http
                        .patch(format!("{base}/api/v1/leads/{id}"))
                        .bearer_auth(&key)
                        .json(&json!({"metadata": {"touched": true}}))
                        .send()
                        .await;
                }
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < ACKNOWLEDGED_BEFORE_KILL {
        assert!(
            Instant::now() < deadline,
            "too few creates were acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.child.kill().await.expect("SIGKILL the server");
    for client in clients {
        client.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    let server = serve(database, &http, &WEBHOOK_FLAGS).await;
    // Messages leased by the killed process are sent again once their lease runs out (two
    // minutes); everything else at once.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let delivered: HashSet<String> = events
            .lock()
            .unwrap()
            .iter()
            .filter(|(kind, _)| kind == "lead.created")
            .map(|(_, id)| id.clone())
            .collect();
        let missing = acknowledged.difference(&delivered).count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} acknowledged creates never had lead.created delivered",
            acknowledged.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let leads = all_leads(&server, &http, &company, &key).await;
    for (kind, id) in events.lock().unwrap().iter() {
        assert!(
            leads.contains_key(id),
            "{kind} names {id}, which does not exist"
        );
    }
}
