//! Nothing acknowledged is lost: the real `leads` binary is killed with SIGKILL while creates
//! are in flight, restarted on the same database, and every lead whose POST was answered 200 is
//! there, whole.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

const LEADS: &str = env!("CARGO_BIN_EXE_leads");
/// Creates acknowledged before the kill.
const ACKNOWLEDGED_BEFORE_KILL: usize = 1_000;
const CLIENTS: usize = 16;

/// Runs `leads admin ...` on the database and answers what it printed.
fn admin(database: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(LEADS)
        .arg("admin")
        .args(args)
        .args(["--database", database])
        .output()
        .expect("run leads admin");
    assert!(
        output.status.success(),
        "leads admin {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

struct Server {
    child: Child,
    base: String,
}

/// Starts `leads serve` on a free port and waits until it answers.
async fn serve(database: &str, http: &reqwest::Client) -> Server {
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let logs = if std::env::var_os("TEST_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        let mut child = Command::new(LEADS)
            .args(["serve", "--database", database])
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(logs)
            .kill_on_drop(true)
            .spawn()
            .expect("start leads serve");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if child.try_wait().expect("poll child").is_some() {
                break; // Most likely the port was taken meanwhile: try another.
            }
            if let Ok(response) = http.get(format!("{base}/healthz")).send().await {
                if response.status().is_success() {
                    return Server { child, base };
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill().await;
    }
    panic!("leads serve did not come up");
}

/// Every lead of the company, by id, walking the list as the SDKs do.
async fn all_leads(
    server: &Server,
    http: &reqwest::Client,
    company: &str,
    key: &str,
) -> HashMap<String, Value> {
    let mut leads = HashMap::new();
    let mut after = String::new();
    loop {
        let page: Value = http
            .get(format!(
                "{}/api/v1/leads?company_id={company}&first=100{after}",
                server.base
            ))
            .bearer_auth(key)
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("list body");
        let data = page["data"].as_array().expect("data").clone();
        for lead in &data {
            let id = lead["id"].as_str().unwrap().to_owned();
            assert!(
                leads.insert(id, lead.clone()).is_none(),
                "listed twice: {lead}"
            );
        }
        match page["page_info"]["end_cursor"].as_str() {
            Some(cursor) if !data.is_empty() => after = format!("&after={cursor}"),
            _ => return leads,
        }
    }
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_create_survives_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("leads.db").display());
    let company = admin(&database, &["company", "create", "--title", "Durable"]);
    let user = admin(&database, &["user", "create", "--username", "durable"]);
    let key = admin(&database, &["key", "create", "--company", &company]);
    let http = reqwest::Client::new();
    let mut server = serve(&database, &http).await;

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

    let server = serve(&database, &http).await;
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
