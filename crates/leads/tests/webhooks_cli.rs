//! `leads webhooks ...`: the real binary managing endpoints over HTTP against a real server.

mod common;

use common::{admin, serve, LEADS};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs `leads webhooks <args>` against the server; answers the JSON it printed.
fn webhooks(base: &str, key: &str, args: &[&str]) -> Value {
    let output = std::process::Command::new(LEADS)
        .arg("webhooks")
        .args(args)
        .env("WHOP_API_KEY", key)
        .env("WHOP_BASE_URL", format!("{base}/api/v1"))
        .output()
        .expect("run leads webhooks");
    assert!(
        output.status.success(),
        "leads webhooks {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("leads.db").display());
    let company = admin(&database, &["company", "create", "--title", "Hooks"]);
    let key = admin(&database, &["key", "create", "--company", &company]);
    let http = reqwest::Client::new();
    let server = serve(&database, &http, &["--webhook-allow-private-targets"]).await;

    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let inbox = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| async move {
            inbox.lock().unwrap().push(body);
            "{\"thanks\":true}"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let base = server.base.clone();
    let created = webhooks(
        &base,
        &key,
        &["create", "--url", &url, "--event", "lead.created"],
    );
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(created["webhook_secret"]
        .as_str()
        .unwrap()
        .starts_with("ws_"));
    let listed = webhooks(&base, &key, &["list", "--company", &company]);
    assert_eq!(listed[0]["id"], id.as_str());
    let tested = webhooks(&base, &key, &["test", &id, "--event", "lead.created"]);
    assert_eq!(tested["status"], 200);
    assert_eq!(tested["body"]["thanks"], true);

    let user = admin(&database, &["user", "create", "--username", "cli"]);
    let created_lead = http
        .post(format!("{base}/api/v1/leads"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"company_id": company, "user_id": user}))
        .send()
        .await
        .unwrap();
    assert!(created_lead.status().is_success());
    let mut log = Value::Null;
    for _ in 0..100 {
        log = webhooks(&base, &key, &["deliveries", &id]);
        if !log.as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delivery = log[0]["id"].as_str().expect("a delivery").to_owned();
    let replayed = webhooks(&base, &key, &["replay", &id, "--delivery", &delivery]);
    assert_eq!(replayed["success"], true);
    let queued = webhooks(
        &base,
        &key,
        &["replay", &id, "--since", "2020-01-01T00:00:00Z"],
    );
    assert_eq!(queued["queued"], true);
    let updated = webhooks(&base, &key, &["update", &id, "--disable"]);
    assert_eq!(updated["enabled"], false);
    let deleted = webhooks(&base, &key, &["delete", &id]);
    assert_eq!(deleted["deleted"], true);
    assert!(received.lock().unwrap().len() >= 3);
}

/// `serve`'s webhook settings are checked before anything starts: each mistake is exit code 2
/// and says what is wrong.
#[test]
fn webhook_settings_that_cannot_work_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("leads.db").display());
    for (args, says) in [
        (&["--webhook-lease", "1s"][..], "at least 2s"),
        (&["--webhook-lease", "2h"][..], "at most 1h"),
        (&["--webhook-lease", "soon"][..], "webhook-lease"),
        (
            &["--webhook-lease", "10s", "--webhook-timeout", "15s"][..],
            "must be longer than --webhook-timeout",
        ),
        (&["--webhook-timeout", "0s"][..], "webhook-timeout"),
    ] {
        let output = std::process::Command::new(LEADS)
            .args(["serve", "--database", &database, "--addr", "127.0.0.1:0"])
            .args(args)
            .output()
            .expect("run leads serve");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
