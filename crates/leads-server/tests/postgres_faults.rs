//! PostgreSQL going away under load: while it is down the server answers 503 quickly and
//! `/readyz` fails; once it is back the same server recovers by itself, and no acknowledged
//! create (a `POST /leads` answered 200) is lost. Runs on a private cluster of its own, never on the shared server.

mod common;

use common::cluster::PrivateCluster;
use common::TestApp;
use leads_server::auth::rate_limit::RateLimit;
use reqwest::StatusCode;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// No answer may take longer than this, database down or not.
const QUICK: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_answers_503_while_postgres_is_down_and_recovers_without_losing_writes() {
    let Some(cluster) = PrivateCluster::start().await else {
        return;
    };
    let mut app = TestApp::instance_on(&cluster.url(), common::Backend::Postgres).await;
    // The load is one key as fast as it goes: without this, rate limits would answer 429s.
    app.reconfigure(|config| config.rate_limit = RateLimit::unlimited())
        .await;
    let company = app.company(1, None).await;
    let list = format!("/api/v1/leads?company_id={}&first=10", company.id);

    let load = Load::start(&app, &company, &list).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_outage = load.acknowledged();
    assert!(
        before_outage > 0,
        "no write succeeded before the outage: {:?}",
        load.statuses()
    );

    cluster.stop().await;
    let stopped = Instant::now();
    // While it is down, every answer is a prompt 503 in the contract's shape.
    while stopped.elapsed() < Duration::from_secs(3) {
        for path in ["/readyz", list.as_str()] {
            let started = Instant::now();
            let (status, body) = app.get(path, Some(&company.key)).await;
            assert!(
                started.elapsed() < QUICK,
                "GET {path} took {:?} with the database down",
                started.elapsed()
            );
            assert_eq!(
                status,
                StatusCode::SERVICE_UNAVAILABLE,
                "GET {path}: {body}"
            );
            assert_eq!(body["error"]["type"], "service_unavailable", "{body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.start_again().await;

    // The same server, not restarted, becomes ready again by itself.
    let restarted = Instant::now();
    loop {
        let (status, _) = app.get("/readyz", None).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(20),
            "the server did not recover after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered_at = load.acknowledged();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let report = load.stop().await;
    assert!(
        report.acknowledged.len() > recovered_at,
        "writes did not succeed again after recovery: {:?}",
        report.statuses
    );
    assert!(
        report.statuses.contains_key(&503),
        "the load never saw the outage: {:?}",
        report.statuses
    );
    assert!(
        report.slowest < QUICK,
        "a request under load took {:?}",
        report.slowest
    );
    let unexpected: Vec<&u16> = report
        .statuses
        .keys()
        .filter(|s| !matches!(s, 200 | 503))
        .collect();
    assert!(
        unexpected.is_empty(),
        "answers other than 200 and 503: {:?}",
        report.statuses
    );

    eprintln!(
        "load: {} writes acknowledged, answers {:?}, slowest {:?}",
        report.acknowledged.len(),
        report.statuses,
        report.slowest
    );
    // Every write that was acknowledged is there, after the database crashed and came back.
    let listed = walk(&app, &company.key, &company.id).await;
    let missing: Vec<&String> = report
        .acknowledged
        .iter()
        .filter(|id| !listed.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged leads are lost: {missing:?}",
        missing.len(),
        report.acknowledged.len()
    );
}

/// Every lead id of a company, walking the list to its end.
async fn walk(app: &TestApp, key: &str, company: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    let mut after = String::new();
    loop {
        let page = app
            .list(key, &format!("company_id={company}&first=100{after}"))
            .await;
        if page.ids.is_empty() {
            return seen;
        }
        for id in page.ids {
            assert!(seen.insert(id.clone()), "{id} listed twice");
        }
        after = format!("&after={}", page.end_cursor.expect("end cursor"));
    }
}

/// Writers and readers hammering the server until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    acknowledged: Arc<Mutex<Vec<String>>>,
    statuses: Arc<Mutex<std::collections::BTreeMap<u16, usize>>>,
    slowest: Arc<Mutex<Duration>>,
}

struct LoadReport {
    acknowledged: Vec<String>,
    statuses: std::collections::BTreeMap<u16, usize>,
    slowest: Duration,
}

impl Load {
    async fn start(app: &TestApp, company: &common::Company, list: &str) -> Load {
        let mut writes = Vec::new();
        for _ in 0..4 {
            writes.push(Writes::new(app, company).await);
        }
        let load = Load {
            stop: Arc::new(AtomicBool::new(false)),
            tasks: Vec::new(),
            acknowledged: Arc::default(),
            statuses: Arc::default(),
            slowest: Arc::default(),
        };
        let mut tasks = Vec::new();
        for writer in 0..4 {
            let (stop, acknowledged, statuses, slowest) = load.handles();
            let writes = writes.remove(0);
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let started = Instant::now();
                    let (status, id) = writes.write(writer, n).await;
                    record(&statuses, &slowest, status, started.elapsed());
                    if status == 200 {
                        acknowledged.lock().unwrap().push(id);
                    } else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }));
        }
        for _ in 0..2 {
            let (stop, _, statuses, slowest) = load.handles();
            let (http, url, key) = (
                app.http.clone(),
                format!("{}{list}", app.base),
                company.key.clone(),
            );
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let status = match http.get(&url).bearer_auth(&key).send().await {
                        Ok(response) => response.status().as_u16(),
                        Err(_) => 0,
                    };
                    record(&statuses, &slowest, status, started.elapsed());
                    if status != 200 {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }));
        }
        Load { tasks, ..load }
    }

    #[allow(clippy::type_complexity)]
    fn handles(
        &self,
    ) -> (
        Arc<AtomicBool>,
        Arc<Mutex<Vec<String>>>,
        Arc<Mutex<std::collections::BTreeMap<u16, usize>>>,
        Arc<Mutex<Duration>>,
    ) {
        (
            self.stop.clone(),
            self.acknowledged.clone(),
            self.statuses.clone(),
            self.slowest.clone(),
        )
    }

    fn acknowledged(&self) -> usize {
        self.acknowledged.lock().unwrap().len()
    }

    fn statuses(&self) -> std::collections::BTreeMap<u16, usize> {
        self.statuses.lock().unwrap().clone()
    }

    async fn stop(self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("load task");
        }
        let acknowledged = self.acknowledged.lock().unwrap().clone();
        let statuses = self.statuses.lock().unwrap().clone();
        let slowest = *self.slowest.lock().unwrap();
        LoadReport {
            acknowledged,
            statuses,
            slowest,
        }
    }
}

fn record(
    statuses: &Mutex<std::collections::BTreeMap<u16, usize>>,
    slowest: &Mutex<Duration>,
    status: u16,
    took: Duration,
) {
    *statuses.lock().unwrap().entry(status).or_default() += 1;
    let mut slowest = slowest.lock().unwrap();
    if took > *slowest {
        *slowest = took;
    }
}

/// How the load writes a lead: `POST /api/v1/leads`, as a client would; a 200 is an
/// acknowledged write.
struct Writes {
    http: reqwest::Client,
    url: String,
    key: String,
    body: serde_json::Value,
}

impl Writes {
    async fn new(app: &TestApp, company: &common::Company) -> Writes {
        Writes {
            http: app.http.clone(),
            url: format!("{}/api/v1/leads", app.base),
            key: company.key.clone(),
            body: serde_json::json!({"company_id": company.id, "user_id": app.user().await.id}),
        }
    }

    /// Writes one lead; answers the status and, on success, the lead's id.
    async fn write(&self, writer: u64, n: u64) -> (u16, String) {
        let mut body = self.body.clone();
        body["metadata"] = serde_json::json!({"writer": writer, "n": n});
        let response = match self
            .http
            .post(&self.url)
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
        {
            Ok(response) => response,
            Err(_) => return (0, String::new()),
        };
        let status = response.status().as_u16();
        let lead: serde_json::Value = response.json().await.unwrap_or_default();
        (status, lead["id"].as_str().unwrap_or_default().to_owned())
    }
}
