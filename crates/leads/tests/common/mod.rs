//! Running the real `leads` binary: admin commands, a server on a free port, full walks.

#![allow(dead_code)] // each test binary uses a different part

use serde_json::Value;
use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

pub const LEADS: &str = env!("CARGO_BIN_EXE_leads");

/// Runs `leads admin ...` on the database and answers what it printed.
pub fn admin(database: &str, args: &[&str]) -> String {
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

/// Runs `leads seed` for one company of `leads` leads; answers its id and API key.
pub fn seed(database: &str, leads: u64) -> (String, String) {
    let seeded = std::process::Command::new(LEADS)
        .args(["seed", "--companies", "1", "--json", "--database", database])
        .args(["--leads-per-company", &leads.to_string()])
        .output()
        .expect("run leads seed");
    assert!(seeded.status.success(), "{seeded:?}");
    let report: Value = serde_json::from_slice(&seeded.stdout).expect("seed's JSON");
    let company = &report["companies"][0];
    (
        company["id"].as_str().expect("id").to_owned(),
        company["key"].as_str().expect("key").to_owned(),
    )
}

pub struct Server {
    pub child: Child,
    pub base: String,
}

/// Starts `leads serve` on a free port and waits until it answers.
pub async fn serve(database: &str, http: &reqwest::Client, extra: &[&str]) -> Server {
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
            .args(extra)
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
pub async fn all_leads(
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

/// A database of its own on the PostgreSQL server `LEADS_TEST_DATABASE_URL` names, dropped at
/// the end; `None`, said loudly, without the variable.
pub struct PgDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl PgDatabase {
    pub async fn create() -> Option<PgDatabase> {
        let Some(admin_url) = std::env::var("LEADS_TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            // Straight to stderr: the test harness captures `eprintln!` of passing tests.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED (PostgreSQL): LEADS_TEST_DATABASE_URL is not set ***\n"
            );
            return None;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let name = format!(
            "leads_t_{}_d{}_{}",
            now.as_secs(),
            std::process::id(),
            now.subsec_nanos()
        );
        admin_sql(&admin_url, &format!("CREATE DATABASE {name}")).await;
        let (scheme, rest) = admin_url.split_once("://").expect("a URL");
        let (authority, query) = match rest.split_once('?') {
            Some((before, query)) => (before, format!("?{query}")),
            None => (rest, String::new()),
        };
        let authority = authority.split('/').next().unwrap_or(authority);
        Some(PgDatabase {
            url: format!("{scheme}://{authority}/{name}{query}"),
            admin_url,
            name,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(admin_sql(
                    &admin_url,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ))
        })
        .join();
    }
}

async fn admin_sql(url: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to LEADS_TEST_DATABASE_URL");
    tokio::spawn(connection);
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}
