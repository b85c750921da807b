//! An export survives a crash: the real `leads` binary is killed with SIGKILL while it writes a
//! large export, restarted on the same database and export directory, and the job completes
//! with every lead, never left `processing`. On SQLite and, given `LEADS_TEST_DATABASE_URL`, on
//! PostgreSQL.

mod common;

use common::{seed, serve};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// Leads in the exported company: enough that writing them takes a while in a test build. On
/// PostgreSQL, one seed transaction's worth, which stays within the statement timeout.
const SQLITE_LEADS: u64 = 200_000;
const POSTGRES_LEADS: u64 = 100_000;

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_export_interrupted_by_a_crash_completes_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let database = format!("sqlite://{}", dir.path().join("leads.db").display());
        super::an_export_interrupted_by_a_crash_completes_after_a_restart(
            &database,
            dir.path(),
            super::SQLITE_LEADS,
        )
        .await;
    }
}

mod postgres {
    use super::common;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_export_interrupted_by_a_crash_completes_after_a_restart() {
        let Some(database) = common::PgDatabase::create().await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        super::an_export_interrupted_by_a_crash_completes_after_a_restart(
            &database.url,
            dir.path(),
            super::POSTGRES_LEADS,
        )
        .await;
    }
}

async fn an_export_interrupted_by_a_crash_completes_after_a_restart(
    database: &str,
    dir: &Path,
    leads: u64,
) {
    let (_, key) = seed(database, leads);
    let export_dir = dir.join("exports");
    let export_dir = export_dir.to_str().unwrap();
    // A short lease, so the restarted instance takes the dead one's job soon.
    let flags = ["--export-dir", export_dir, "--export-lease", "2"];
    let http = reqwest::Client::new();
    let mut server = serve(database, &http, &flags).await;

    let created: Value = http
        .post(format!("{}/api/v1/exports", server.base))
        .bearer_auth(&key)
        .json(&json!({"resource": "leads"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().expect("an export id").to_owned();
    let read = |base: String| {
        let (http, key, id) = (http.clone(), key.clone(), id.clone());
        async move {
            let response = http
                .get(format!("{base}/api/v1/exports/{id}"))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), reqwest::StatusCode::OK);
            response.json::<Value>().await.unwrap()
        }
    };

    // Kill it once the job is under way.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let export = read(server.base.clone()).await;
        assert_ne!(
            export["status"], "completed",
            "finished before it could be killed"
        );
        if export["status"] == "processing" {
            break;
        }
        assert!(Instant::now() < deadline, "{export}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.child.kill().await.expect("SIGKILL the server");

    // The dead instance's job stays processing until its lease runs out; then it is taken again.
    let server = serve(database, &http, &flags).await;
    let deadline = Instant::now() + Duration::from_secs(240);
    let done = loop {
        let export = read(server.base.clone()).await;
        if export["status"] == "completed" {
            break export;
        }
        assert_eq!(export["status"], "processing", "{export}");
        assert!(Instant::now() < deadline, "still not completed: {export}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let text = http
        .get(done["download_url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut ids = std::collections::HashSet::new();
    for record in reader.records() {
        ids.insert(record.unwrap()[0].to_owned());
    }
    assert_eq!(ids.len() as u64, leads, "every lead, once");
}
