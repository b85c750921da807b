//! Nothing acknowledged is lost: the real `leads` binary is killed with SIGKILL while creates
//! are in flight, restarted on the same database, and every lead whose POST was answered 200 is
//! there, whole. On SQLite and, given `LEADS_TEST_DATABASE_URL`, on PostgreSQL.

mod common;

use common::{admin, all_leads, serve};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Creates acknowledged before the kill.
const ACKNOWLEDGED_BEFORE_KILL: usize = 1_000;
const CLIENTS: usize = 16;

/// A lead is whole when its referrer and metadata are the pair one request sent.
fn assert_whole(lead: &Value) -> u64 {
    let seq = lead["metadata"]["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("no seq: {lead}"));
    assert_eq!(
        lead["referrer"],
        format!("https://ref.example/{seq}"),
        "{lead}"
    );
    assert_eq!(lead["metadata"]["pad"], "p".repeat(200), "{lead}");
    assert!(lead["user"]["id"].is_string(), "{lead}");
    seq
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_acknowledged_create_survives_a_sigkill() {
        let dir = tempfile::tempdir().unwrap();
        let database = format!("sqlite://{}", dir.path().join("leads.db").display());
        super::every_acknowledged_create_survives_a_sigkill(&database).await;
    }
}

mod postgres {
    use super::common;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_acknowledged_create_survives_a_sigkill() {
        let Some(database) = common::PgDatabase::create().await else {
            return;
        };
        super::every_acknowledged_create_survives_a_sigkill(&database.url).await;
    }
}

async fn every_acknowledged_create_survives_a_sigkill(database: &str) {
    let database = database.to_owned();
    let company = admin(&database, &["company", "create", "--title", "Durable"]);
    let user = admin(&database, &["user", "create", "--username", "durable"]);
    let key = admin(&database, &["key", "create", "--company", &company]);
    let http = reqwest::Client::new();
    // One key sends as fast as it can: no rate limit, or most creates would be 429s.
    let mut server = serve(&database, &http, &["--rate-limit", "0"]).await;

    let acknowledged = Arc::new(Mutex::new(HashMap::<String, u64>::new()));
    let next = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (http, base, acknowledged, next) = (
                http.clone(),
                server.base.clone(),
                acknowledged.clone(),
                next.clone(),
            );
            let (company, user, key) = (company.clone(), user.clone(), key.clone());
            tokio::spawn(async move {
                loop {
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    let body = json!({
                        "company_id": company, "user_id": user,
                        "referrer": format!("https://ref.example/{seq}"),
                        "metadata": {"seq": seq, "pad": "p".repeat(200)},
                    });
                    let sent = http
                        .post(format!("{base}/api/v1/leads"))
                        .bearer_auth(&key)
                        .json(&body)
                        .send()
                        .await;
                    // Only a complete 200 answer counts as acknowledged.
                    let Ok(response) = sent else { return };
                    if response.status() != reqwest::StatusCode::OK {
                        return;
                    }
                    let Ok(lead) = response.json::<Value>().await else {
                        return;
                    };
                    let id = lead["id"].as_str().expect("id").to_owned();
                    acknowledged.lock().unwrap().insert(id, seq);
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
    let attempted = next.load(Ordering::Relaxed);
    assert!(
        attempted > acknowledged.len() as u64,
        "some creates must have been in flight at the kill"
    );

    let server = serve(&database, &http, &[]).await;
    let leads = all_leads(&server, &http, &company, &key).await;
    for (id, seq) in &acknowledged {
        let lead = leads
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged lead {id} (seq {seq}) was lost"));
        assert_eq!(assert_whole(lead), *seq);
    }
    // Creates in flight at the kill may or may not have landed, but never by halves.
    for lead in leads.values() {
        assert_whole(lead);
    }
    assert!(leads.len() as u64 <= attempted);
}
