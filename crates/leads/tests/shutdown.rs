//! SIGTERM under load: the server stops accepting, finishes what it accepted, closes the
//! database and exits 0; every acknowledged write is there after a restart. On SQLite and,
//! given `LEADS_TEST_DATABASE_URL`, on PostgreSQL.

mod common;

use common::{admin, all_leads, serve};
use serde_json::json;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENTS: usize = 16;

#[derive(Default)]
struct Outcome {
    acknowledged: HashSet<String>,
    lists_answered: u64,
    /// Requests that got a response head but not its whole body: must never happen.
    cut_off: Vec<String>,
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigterm_mid_load_cuts_off_nothing_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let database = format!("sqlite://{}", dir.path().join("leads.db").display());
        let wal = dir.path().join("leads.db-wal");
        super::sigterm_mid_load_cuts_off_nothing_and_loses_nothing(&database, Some(wal)).await;
    }
}

mod postgres {
    use super::common;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigterm_mid_load_cuts_off_nothing_and_loses_nothing() {
        let Some(database) = common::PgDatabase::create().await else {
            return;
        };
        super::sigterm_mid_load_cuts_off_nothing_and_loses_nothing(&database.url, None).await;
    }
}

/// `sqlite_wal`: the SQLite database's write-ahead log, which a clean close leaves empty.
async fn sigterm_mid_load_cuts_off_nothing_and_loses_nothing(
    database: &str,
    sqlite_wal: Option<std::path::PathBuf>,
) {
    let database = database.to_owned();
    let company = admin(&database, &["company", "create", "--title", "Graceful"]);
    let user = admin(&database, &["user", "create", "--username", "graceful"]);
    let key = admin(&database, &["key", "create", "--company", &company]);
    let http = reqwest::Client::new();
    // One key sends as fast as it can: no rate limit, or most requests would be 429s.
    let mut server = serve(
        &database,
        &http,
        &["--shutdown-grace", "20", "--rate-limit", "0"],
    )
    .await;

    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let next = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let (http, base, outcome, next) = (http.clone(), server.base.clone(), outcome.clone(), next.clone());
            let (company, user, key) = (company.clone(), user.clone(), key.clone());
            tokio::spawn(async move {
                loop {
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    let creating = n % 2 == 0 || seq % 3 == 0;
                    let request = if creating {
                        http.post(format!("{base}/api/v1/leads"))
                            .json(&json!({"company_id": company, "user_id": user, "metadata": {"seq": seq}}))
                    } else {
                        http.get(format!("{base}/api/v1/leads?company_id={company}&first=50"))
                    };
                    // No response at all: the server was no longer accepting. That ends
                    // this client; it is not a cut-off request.
                    let Ok(response) = request.bearer_auth(&key).send().await else { return };
                    let status = response.status();
                    let body = match response.json::<serde_json::Value>().await {
                        Ok(body) => body,
                        Err(e) => {
                            outcome.lock().unwrap().cut_off.push(format!("{status}: {e}"));
                            return;
                        }
                    };
                    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
                    let mut outcome = outcome.lock().unwrap();
                    if creating {
                        outcome.acknowledged.insert(body["id"].as_str().unwrap().to_owned());
                    } else {
                        outcome.lists_answered += 1;
                    }
                }
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(60);
    while outcome.lock().unwrap().acknowledged.len() < 300 {
        assert!(
            Instant::now() < deadline,
            "too few creates were acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pid = server.child.id().expect("running").to_string();
    let signalled = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(signalled.success());
    let status = tokio::time::timeout(Duration::from_secs(30), server.child.wait())
        .await
        .expect("the server exits within its grace period")
        .unwrap();
    assert!(status.success(), "exit status {status}");
    for client in clients {
        client.await.unwrap();
    }

    let outcome = std::mem::take(&mut *outcome.lock().unwrap());
    assert!(
        outcome.cut_off.is_empty(),
        "responses cut off: {:?}",
        outcome.cut_off
    );
    assert!(outcome.lists_answered > 0);
    // SQLite was closed cleanly: the writer drained and folded the WAL into the file.
    if let Some(wal) = sqlite_wal {
        let wal_bytes = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        assert_eq!(wal_bytes, 0, "the WAL is empty after a clean shutdown");
    }
    let server = serve(&database, &http, &[]).await;
    let leads = all_leads(&server, &http, &company, &key).await;
    let missing: Vec<&String> = outcome
        .acknowledged
        .iter()
        .filter(|id| !leads.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged leads lost: {missing:?}",
        missing.len()
    );
    drop(server);
}
