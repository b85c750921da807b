//! A chaos soak of the production topology: three `leads serve` instances behind HAProxy on one
//! private PostgreSQL cluster, under mixed load from several clients, while a random instance is
//! SIGKILLed and restarted every few seconds and PostgreSQL restarts once in immediate mode.
//!
//! When the load stops, the soak checks what the clients were told against what the database
//! holds: every acknowledged create exists exactly once, every acknowledged update is visible or
//! superseded by a later attempt, no walk skipped or repeated a lead, no answer crossed tenants,
//! the only errors clients saw were 503s during the outages, and every acknowledged create's
//! `lead.created` reached the webhook receiver at least once (after the queue drains: messages a
//! killed instance had leased come due again when their lease ends). It prints its counts.
//!
//! About a minute by default: 30 seconds of load, then the queue draining (the instances lease
//! webhook messages for [`WEBHOOK_LEASE`], so a killed instance's messages come due soon);
//! `LEADS_SOAK_SECONDS=600` (or `scripts/soak.sh 10`, in minutes) makes the load phase longer. Needs PostgreSQL's server binaries and HAProxy (`apt-get install
//! haproxy`); without them it is skipped loudly, unless `LEADS_REQUIRE_PG_FAULT_TESTS=1`.

/// How long the instances lease a webhook message: short, so what a killed instance had leased
/// is sent by another within the soak, yet longer than `--webhook-timeout` (2 s).
const WEBHOOK_LEASE: Duration = Duration::from_secs(10);

#[allow(dead_code)] // the TLS half of the cluster is for the TLS tests
#[path = "../../leads-server/tests/common/cluster.rs"]
mod cluster;
mod common;

use cluster::PrivateCluster;
use common::{admin, LEADS};
use rand::seq::IndexedRandom;
use rand::Rng;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

const INSTANCES: usize = 3;
/// Clients that create and then update their own leads, per company.
const WRITERS: usize = 6;
/// Clients that walk company A's whole list, again and again.
const WALKERS: usize = 2;
/// How long after an outage ends an error may still be blamed on it.
const OUTAGE_MARGIN: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_behind_haproxy_lose_nothing_through_kills_and_a_database_restart() {
    let Some(haproxy) = haproxy() else { return };
    let Some(cluster) = PrivateCluster::start().await else {
        return;
    };
    let load_for = Duration::from_secs(
        std::env::var("LEADS_SOAK_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(30),
    );
    let database = cluster.url();
    let tenants = [Tenant::make(&database, "A"), Tenant::make(&database, "B")];
    let receiver = Receiver::start().await;

    // One export directory for all three, as several instances need (docs/operations.md).
    let exports = tempfile::tempdir().unwrap();
    let mut instances: Vec<Instance> = (0..INSTANCES)
        .map(|_| Instance::new(exports.path()))
        .collect();
    for instance in &mut instances {
        instance.start(&database);
    }
    let balancer = Balancer::start(&haproxy, &instances).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    for instance in &instances {
        instance.wait_ready(&http).await;
    }
    let world = Arc::new(World {
        base: balancer.base.clone(),
        http,
        outages: Outages::default(),
        stop: AtomicBool::new(false),
        seq: AtomicU64::new(0),
        creates: Mutex::new(HashMap::new()),
        updates: Mutex::new(HashMap::new()),
        errors: Mutex::new(BTreeMap::new()),
        requests: AtomicU64::new(0),
        walks: AtomicU64::new(0),
        exports: AtomicU64::new(0),
    });

    for tenant in &tenants {
        let body =
            json!({"url": receiver.url, "events": ["lead.created"], "resource_id": tenant.company});
        let hook = world
            .send(|http| {
                http.post(format!("{}/api/v1/webhooks", world.base))
                    .bearer_auth(&tenant.key)
                    .json(&body)
            })
            .await
            .expect("an endpoint");
        assert!(hook["id"].is_string(), "{hook}");
    }

    let mut load = Vec::new();
    for tenant in &tenants {
        for _ in 0..WRITERS {
            load.push(tokio::spawn(writer(world.clone(), tenant.clone())));
        }
    }
    load.push(tokio::spawn(exporter(world.clone(), tenants[0].clone())));
    for _ in 0..WALKERS {
        load.push(tokio::spawn(walker(
            world.clone(),
            tenants[0].clone(),
            tenants[1].clone(),
        )));
    }

    // The chaos: a random instance killed and restarted every few seconds; PostgreSQL stopped
    // the hard way once, half-way through.
    let started = Instant::now();
    let mut database_restarted = false;
    let mut kills = 0;
    while started.elapsed() < load_for {
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        if !database_restarted && started.elapsed() > load_for / 2 {
            world.outages.begin();
            cluster.stop().await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            cluster.start_again().await;
            world.outages.end_after(Duration::from_secs(5));
            database_restarted = true;
            continue;
        }
        let victim = rand::rng().random_range(0..INSTANCES);
        world.outages.begin();
        instances[victim].kill().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        instances[victim].start(&database);
        world.outages.end_after(Duration::ZERO);
        kills += 1;
        // An instance started while the database was down may have given up: start it again.
        for instance in &mut instances {
            instance.restart_if_exited(&database);
        }
    }
    world.stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.expect("a load task panicked");
    }
    // The final walks below retry until they are answered.
    world.stop.store(false, Ordering::Relaxed);
    for instance in &mut instances {
        instance.restart_if_exited(&database);
        instance.wait_ready(&world.http).await;
    }

    // The checks, against one full walk per company through the balancer.
    let creates = world.creates.lock().unwrap().clone();
    let updates = world.updates.lock().unwrap().clone();
    let mut stored = HashSet::new();
    for tenant in &tenants {
        let leads = walk(&world, tenant).await.expect("the final walk");
        stored.extend(leads.keys().cloned());
        let mut seen_seqs = HashSet::new();
        for lead in leads.values() {
            let (label, seq) = tag(lead);
            assert_eq!(label, tenant.label, "{} listed {lead}", tenant.label);
            assert!(
                seen_seqs.insert(seq),
                "create {seq} was stored twice: a retried create made a duplicate"
            );
        }
        for (id, create) in creates.iter().filter(|(_, c)| c.tenant == tenant.label) {
            let lead = leads
                .get(id)
                .unwrap_or_else(|| panic!("acknowledged create {} ({id}) was lost", create.seq));
            assert_eq!(tag(lead), (tenant.label.to_owned(), create.seq));
            let version = lead["metadata"]["v"].as_u64().unwrap_or(0);
            if let Some(update) = updates.get(id) {
                assert!(
                    update.acknowledged <= version && version <= update.attempted,
                    "lead {id}: version {version}, but {} was acknowledged and {} the last attempted",
                    update.acknowledged,
                    update.attempted
                );
            }
        }
    }
    // Every acknowledged create is announced, once the queue drains; nothing else is.
    let deadline = Instant::now() + WEBHOOK_LEASE + Duration::from_secs(60);
    let undelivered = loop {
        let delivered = receiver.created.lock().unwrap().clone();
        let missing: Vec<&String> = creates
            .keys()
            .filter(|id| !delivered.contains(*id))
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing.len();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let delivered = receiver.created.lock().unwrap().clone();
    for id in &delivered {
        assert!(
            stored.contains(id),
            "lead.created named {id}, which is not stored"
        );
    }
    let errors = world.errors.lock().unwrap().clone();
    println!(
        "soak: {:?} of load, {kills} instance kills, 1 database restart; {} requests, {} creates acknowledged, {} leads stored, {} updates acknowledged, {} full walks, {} exports downloaded, {} leads announced by lead.created; errors seen by clients: {errors:?}",
        load_for,
        world.requests.load(Ordering::Relaxed),
        creates.len(),
        stored.len(),
        updates.values().map(|u| u.acknowledged).sum::<u64>(),
        world.walks.load(Ordering::Relaxed),
        world.exports.load(Ordering::Relaxed),
        delivered.len(),
    );
    assert_eq!(
        undelivered, 0,
        "acknowledged creates whose lead.created never arrived"
    );
    assert!(creates.len() > 100, "too little load got through");
    assert!(world.walks.load(Ordering::Relaxed) > 0, "no walk finished");
    drop(balancer);
}

/// A company, its key, and a user its leads are about.
#[derive(Clone)]
struct Tenant {
    label: &'static str,
    company: String,
    key: String,
    user: String,
}

impl Tenant {
    fn make(database: &str, label: &'static str) -> Tenant {
        let company = admin(database, &["company", "create", "--title", label]);
        let user = admin(
            database,
            &["user", "create", "--username", &format!("soak-{label}")],
        );
        let key = admin(database, &["key", "create", "--company", &company]);
        Tenant {
            label,
            company,
            key,
            user,
        }
    }
}

#[derive(Clone)]
struct Create {
    tenant: &'static str,
    seq: u64,
}

/// The metadata versions of one lead's updates: the last one answered 200, and the last one sent.
#[derive(Clone, Default)]
struct Update {
    acknowledged: u64,
    attempted: u64,
}

/// What every load task shares: where to send, what was acknowledged, what went wrong.
struct World {
    base: String,
    http: reqwest::Client,
    outages: Outages,
    stop: AtomicBool,
    seq: AtomicU64,
    creates: Mutex<HashMap<String, Create>>,
    updates: Mutex<HashMap<String, Update>>,
    /// Every failed attempt a client saw, by kind: `503`, `connection refused`, ...
    errors: Mutex<BTreeMap<String, u64>>,
    requests: AtomicU64,
    walks: AtomicU64,
    exports: AtomicU64,
}

impl World {
    /// Changes the record of the updates of lead `id`.
    fn record_update(&self, id: &str, change: impl FnOnce(&mut Update)) {
        change(
            self.updates
                .lock()
                .unwrap()
                .entry(id.to_owned())
                .or_default(),
        );
    }

    /// The ids of the creates of `tenant` acknowledged so far.
    fn acknowledged(&self, tenant: &str) -> Vec<String> {
        self.creates
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, c)| c.tenant == tenant)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Sends a request until it is answered 2xx, retrying as the SDKs do (on a lost connection,
    /// 408, 409, 429 and 5xx) with backoff; every failed attempt is checked and counted. `None`
    /// when the load stopped first.
    async fn send(
        &self,
        make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Option<Value> {
        let text = self.send_text(make).await?;
        Some(serde_json::from_str(&text).expect("a 2xx answer's JSON body"))
    }

    /// [`World::send`], answering the body as text.
    async fn send_text(
        &self,
        make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Option<String> {
        let mut backoff = Duration::from_millis(50);
        loop {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let failure = match make(&self.http).send().await {
                Ok(response) if response.status().is_success() => {
                    return Some(response.text().await.expect("a 2xx answer's body"));
                }
                Ok(response) => {
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    assert_eq!(
                        status,
                        StatusCode::SERVICE_UNAVAILABLE,
                        "a client was answered {status}: {body}"
                    );
                    "503".to_owned()
                }
                Err(e) if e.is_connect() => "connection refused".to_owned(),
                // A keep-alive connection the balancer closed as the request went out: it
                // closes a client's connection after answering a 503 of its own (no instance
                // ready). Sent again, as the SDKs send a request whose connection failed.
                Err(e) if e.is_request() && !e.is_timeout() => "connection closed".to_owned(),
                Err(e) => panic!("a request failed outside HTTP: {e:?}"),
            };
            assert!(
                self.outages.explains_now(),
                "a client saw {failure} outside any outage"
            );
            *self.errors.lock().unwrap().entry(failure).or_default() += 1;
            if self.stop.load(Ordering::Relaxed) {
                return None;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }
}

/// Creates leads with idempotency keys and updates each a few times, in order.
async fn writer(world: Arc<World>, tenant: Tenant) {
    while !world.stop.load(Ordering::Relaxed) {
        let seq = world.seq.fetch_add(1, Ordering::Relaxed);
        let body = json!({
            "company_id": tenant.company, "user_id": tenant.user,
            "referrer": format!("https://soak.example/{seq}"),
            "metadata": {"tenant": tenant.label, "seq": seq},
        });
        let idempotency_key = format!("soak-{seq}");
        let Some(lead) = world
            .send(|http| {
                http.post(format!("{}/api/v1/leads", world.base))
                    .bearer_auth(&tenant.key)
                    .header("idempotency-key", &idempotency_key)
                    .json(&body)
            })
            .await
        else {
            return;
        };
        let id = lead["id"].as_str().expect("a lead id").to_owned();
        assert_eq!(tag(&lead), (tenant.label.to_owned(), seq), "{lead}");
        world.creates.lock().unwrap().insert(
            id.clone(),
            Create {
                tenant: tenant.label,
                seq,
            },
        );
        let versions = rand::rng().random_range(0..3u64);
        for version in 1..=versions {
            world.record_update(&id, |u| u.attempted = version);
            let body = json!({"metadata": {"tenant": tenant.label, "seq": seq, "v": version}});
            let Some(lead) = world
                .send(|http| {
                    http.patch(format!("{}/api/v1/leads/{id}", world.base))
                        .bearer_auth(&tenant.key)
                        .json(&body)
                })
                .await
            else {
                return;
            };
            assert_eq!(lead["metadata"]["v"], version, "{lead}");
            world.record_update(&id, |u| u.acknowledged = version);
        }
    }
}

/// Exports `tenant`'s leads again and again through the balancer, polling each export to
/// `completed` (a job whose instance is killed is taken up again when its lease ends) and
/// downloading it: each file holds at least every lead acknowledged before its export began.
async fn exporter(world: Arc<World>, tenant: Tenant) {
    while !world.stop.load(Ordering::Relaxed) {
        let before = world.acknowledged(tenant.label);
        let body = json!({"resource": "leads", "account_id": tenant.company, "columns": ["id"]});
        let Some(export) = world
            .send(|http| {
                http.post(format!("{}/api/v1/exports", world.base))
                    .bearer_auth(&tenant.key)
                    .json(&body)
            })
            .await
        else {
            return;
        };
        let url = format!(
            "{}/api/v1/exports/{}",
            world.base,
            export["id"].as_str().unwrap()
        );
        let link = loop {
            let Some(read) = world
                .send(|http| http.get(&url).bearer_auth(&tenant.key))
                .await
            else {
                return;
            };
            match read["status"].as_str() {
                Some("completed") => break read["download_url"].as_str().unwrap().to_owned(),
                Some("pending" | "processing") if world.stop.load(Ordering::Relaxed) => return,
                Some("pending" | "processing") => {
                    tokio::time::sleep(Duration::from_millis(300)).await
                }
                other => panic!("export {url} ended {other:?}: {read}"),
            }
        };
        let Some(file) = world.send_text(|http| http.get(&link)).await else {
            return;
        };
        let ids: HashSet<&str> = file.lines().skip(1).collect();
        for id in &before {
            assert!(
                ids.contains(id.as_str()),
                "an export lacks {id}, acknowledged before it began"
            );
        }
        world.exports.fetch_add(1, Ordering::Relaxed);
    }
}

/// Walks `tenant`'s whole list again and again: each walk must hold every lead acknowledged
/// before it began, once, newest first, and only the tenant's. Between walks it asks for a lead
/// of `other` by id, which must be a 404.
async fn walker(world: Arc<World>, tenant: Tenant, other: Tenant) {
    while !world.stop.load(Ordering::Relaxed) {
        let before = world.acknowledged(tenant.label);
        let Some(leads) = walk(&world, &tenant).await else {
            return;
        };
        for id in &before {
            assert!(
                leads.contains_key(id),
                "a walk skipped {id}, acknowledged before it began"
            );
        }
        world.walks.fetch_add(1, Ordering::Relaxed);

        let others = world.acknowledged(other.label);
        let foreign = others.choose(&mut rand::rng()).cloned();
        if let Some(id) = foreign {
            world.requests.fetch_add(1, Ordering::Relaxed);
            if let Ok(response) = world
                .http
                .get(format!("{}/api/v1/leads/{id}", world.base))
                .bearer_auth(&tenant.key)
                .send()
                .await
            {
                let status = response.status();
                assert!(
                    status == StatusCode::NOT_FOUND || status == StatusCode::SERVICE_UNAVAILABLE,
                    "{} asked for {}'s lead {id} and was answered {status}",
                    tenant.label,
                    other.label
                );
            }
        }
    }
}

/// Every lead of `tenant` by id, walking its list newest first a page at a time; `None` when the
/// load stopped during the walk. Panics on a lead listed twice, out of order, or of another
/// tenant.
async fn walk(world: &World, tenant: &Tenant) -> Option<HashMap<String, Value>> {
    let mut leads = HashMap::new();
    let mut after = String::new();
    let mut last: Option<(String, String)> = None;
    loop {
        let url = format!(
            "{}/api/v1/leads?company_id={}&first=100{after}",
            world.base, tenant.company
        );
        let page = world
            .send(|http| http.get(&url).bearer_auth(&tenant.key))
            .await?;
        let data = page["data"].as_array().expect("data");
        for lead in data {
            assert_eq!(tag(lead).0, tenant.label, "{} listed {lead}", tenant.label);
            let id = lead["id"].as_str().unwrap().to_owned();
            let key = (lead["created_at"].as_str().unwrap().to_owned(), id.clone());
            if let Some(previous) = &last {
                assert!(
                    key < *previous,
                    "listed out of order: {key:?} after {previous:?}"
                );
            }
            last = Some(key);
            assert!(
                leads.insert(id, lead.clone()).is_none(),
                "a walk listed a lead twice: {lead}"
            );
        }
        match page["page_info"]["end_cursor"].as_str() {
            Some(cursor) if page["page_info"]["has_next_page"] == true => {
                after = format!("&after={cursor}")
            }
            _ => return Some(leads),
        }
    }
}

/// The tenant and sequence number a soak lead carries in its metadata.
fn tag(lead: &Value) -> (String, u64) {
    (
        lead["metadata"]["tenant"]
            .as_str()
            .unwrap_or_else(|| panic!("not a soak lead: {lead}"))
            .to_owned(),
        lead["metadata"]["seq"].as_u64().expect("seq"),
    )
}

/// When the soak broke something on purpose: an error a client sees must fall in one of these
/// windows (widened by [`OUTAGE_MARGIN`]).
#[derive(Default)]
struct Outages {
    windows: Mutex<Vec<(Instant, Option<Instant>)>>,
}

impl Outages {
    fn begin(&self) {
        self.windows.lock().unwrap().push((Instant::now(), None));
    }

    /// Ends the open window `recovery` from now: the time a restarted part takes to be healthy.
    fn end_after(&self, recovery: Duration) {
        if let Some(window) = self.windows.lock().unwrap().last_mut() {
            window.1 = Some(Instant::now() + recovery);
        }
    }

    fn explains_now(&self) -> bool {
        let now = Instant::now();
        self.windows
            .lock()
            .unwrap()
            .iter()
            .any(|(from, to)| *from <= now && to.is_none_or(|to| now <= to + OUTAGE_MARGIN))
    }
}

/// A webhook receiver on loopback: the ids of the leads `lead.created` announced.
struct Receiver {
    url: String,
    created: Arc<Mutex<HashSet<String>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let created: Arc<Mutex<HashSet<String>>> = Arc::default();
        let app = axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(
                    |axum::extract::State(created): axum::extract::State<
                        Arc<Mutex<HashSet<String>>>,
                    >,
                     body: axum::body::Bytes| async move {
                        let event: Value = serde_json::from_slice(&body).expect("a JSON event");
                        if event["type"] == "lead.created" {
                            let id = event["data"]["id"].as_str().expect("data.id").to_owned();
                            created.lock().unwrap().insert(id);
                        }
                        "{}"
                    },
                ),
            )
            .with_state(created.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, created }
    }
}

/// One `leads serve` on a fixed port, which HAProxy's configuration names.
struct Instance {
    port: u16,
    export_dir: std::path::PathBuf,
    child: Option<Child>,
}

impl Instance {
    fn new(export_dir: &std::path::Path) -> Instance {
        Instance {
            port: free_port(),
            export_dir: export_dir.to_owned(),
            child: None,
        }
    }

    fn start(&mut self, database: &str) {
        let logs = if std::env::var_os("TEST_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        let child = Command::new(LEADS)
            .args(["serve", "--database", database, "--rate-limit", "0"])
            .args([
                "--webhook-allow-private-targets",
                "--webhook-retry-schedule",
            ])
            .arg("0s,200ms,500ms,1s,2s,5s")
            .args(["--webhook-timeout", "2s", "--webhook-lease"])
            .arg(format!("{}s", WEBHOOK_LEASE.as_secs()))
            .arg("--export-dir")
            .arg(&self.export_dir)
            .args(["--export-lease", "5"])
            .args(["--addr", &format!("127.0.0.1:{}", self.port)])
            .stdout(Stdio::null())
            .stderr(logs)
            .kill_on_drop(true)
            .spawn()
            .expect("start leads serve");
        self.child = Some(child);
    }

    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    fn restart_if_exited(&mut self, database: &str) {
        let exited = match &mut self.child {
            Some(child) => child.try_wait().expect("poll an instance").is_some(),
            None => true,
        };
        if exited {
            self.start(database);
        }
    }

    async fn wait_ready(&self, http: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("http://127.0.0.1:{}/readyz", self.port);
        while Instant::now() < deadline {
            if let Ok(response) = http.get(&url).send().await {
                if response.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the instance on port {} never became ready", self.port);
    }
}

/// HAProxy in front of the instances, health-checking `/readyz`, with the configuration
/// docs/postgresql.md shows.
struct Balancer {
    base: String,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl Balancer {
    async fn start(haproxy: &str, instances: &[Instance]) -> Balancer {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let servers: String = instances
            .iter()
            .enumerate()
            .map(|(i, instance)| format!("    server leads{i} 127.0.0.1:{} check\n", instance.port))
            .collect();
        let config = HAPROXY_CONFIG
            .replace("{bind}", &format!("127.0.0.1:{port}"))
            .replace("{servers}", &servers);
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let child = Command::new(haproxy)
            .arg("-f")
            .arg(&path)
            .arg("-db")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start haproxy");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "haproxy did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Balancer {
            base,
            _child: child,
            _dir: dir,
        }
    }
}

/// The balancer's configuration. A request whose instance died under it (the connection
/// refused, reset or closed before an answer) is sent again to another instance: safe because
/// creates carry idempotency keys and updates set whole values.
const HAPROXY_CONFIG: &str = "global
    maxconn 1024

defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 15s
    timeout queue 10s
    option http-buffer-request
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout 503

frontend api
    bind {bind}
    default_backend leads

backend leads
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 250ms fall 1 rise 2
{servers}";

/// HAProxy's path, or `None` (said loudly) when it is not installed.
fn haproxy() -> Option<String> {
    for path in [
        "/usr/sbin/haproxy",
        "/usr/local/sbin/haproxy",
        "/usr/bin/haproxy",
    ] {
        if std::path::Path::new(path).is_file() {
            return Some(path.to_owned());
        }
    }
    let note = "HAProxy was not found (apt-get install haproxy)";
    if std::env::var("LEADS_REQUIRE_PG_FAULT_TESTS").as_deref() == Ok("1") {
        panic!("{note}");
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED (chaos soak): {note} ***\n"
    );
    None
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}
