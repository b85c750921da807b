//! `leads-bench`: list and create speed of the leads server on each backend, side by side with
//! the database's own speed on the very SQL the server issues.
//!
//! It builds the `leads` binary, seeds a fresh database through it, serves with it as a child
//! process, loads it from keep-alive connections on loopback, and prints a markdown table
//! (also written to `target/bench/report.md`). See the README's "Benchmarks" section.

mod baseline;
mod fixture;
mod load;
mod report;
mod scenarios;
mod server;
mod transfer;
mod webhooks;

use anyhow::{anyhow, Context, Result};
use clap::{Parser, ValueEnum};
use fixture::{Dataset, Sizes};
use leads_server::domain::KeyId;
use leads_server::http::query::ListRequest;
use leads_server::pagination::CursorCodec;
use load::Workload;
use report::{BackendReport, Row, Settings, Stats};
use scenarios::{DashboardPage, Kind};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "leads-bench",
    about = "List and create speed of the leads server beside the database's own speed"
)]
struct Args {
    /// Which backend(s) to measure [default: both; with --smoke, SQLite, and PostgreSQL too
    /// when LEADS_TEST_DATABASE_URL is set].
    #[arg(long, value_enum)]
    backend: Option<Backend>,
    /// A PostgreSQL server to make a fresh database `leads_bench_*` on (dropped afterwards).
    /// With --smoke, LEADS_TEST_DATABASE_URL is used when this is not set.
    #[arg(
        long,
        env = "LEADS_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres_url: String,
    /// Seconds-long run on tiny data, to check the tooling works (CI runs it).
    #[arg(long)]
    smoke: bool,
    /// Concurrent keep-alive connections (and database-alone threads).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds of warm-up before each measurement [default: 2, smoke 0.5].
    #[arg(long)]
    warmup: Option<f64>,
    /// Timed rounds per measurement; the table shows their medians [default: 3, smoke 1].
    #[arg(long)]
    rounds: Option<usize>,
    /// Seconds per round [default: 5, smoke 1].
    #[arg(long)]
    duration: Option<f64>,
    /// The `leads` binary to measure; built with cargo (release, or dev for --smoke) if not given.
    #[arg(long)]
    leads_bin: Option<PathBuf>,
    /// Where the markdown report goes, besides standard output.
    #[arg(long, default_value = "target/bench/report.md")]
    out: PathBuf,
    /// Keep the seeded databases (in target/bench/) instead of removing them.
    #[arg(long)]
    keep: bool,
    /// Record the server with `perf record` during this scenario's timed rounds (its name
    /// with dashes: first-page, deep-page, filtered, last-page-backwards, create, mixed), into
    /// target/bench/BACKEND-SCENARIO.perf.data. May be repeated.
    #[arg(long, value_name = "SCENARIO")]
    perf: Vec<String>,
    /// Run only this scenario (its name with dashes, as for --perf; also stats-by-day,
    /// stats-by-product, conversion-by-week, search-rare, search-common, search-none,
    /// search-email, leads-page, lead-page, create-webhook for the three webhook scenarios,
    /// create-echoed for the machine's ceiling beside them, and export for the export and
    /// import of the big company); may be repeated. All of them when not given.
    #[arg(long, value_name = "SCENARIO")]
    only: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
    Both,
}

/// Everything a measurement needs to know about how to load.
#[derive(Debug, Clone)]
struct Plan {
    settings: Settings,
    sizes: Sizes,
    keep: bool,
    perf: Vec<String>,
    only: Vec<String>,
    work: PathBuf,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("leads-bench: some requests failed (see the table)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("leads-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Answers whether every request succeeded.
async fn run(args: Args) -> Result<bool> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()?;
    let secs = |given: Option<f64>, full: f64, smoke: f64| {
        Duration::from_secs_f64(given.unwrap_or(if args.smoke { smoke } else { full }))
    };
    let plan = Plan {
        settings: Settings {
            connections: args.connections.max(1),
            warmup: secs(args.warmup, 2.0, 0.5),
            rounds: args.rounds.unwrap_or(if args.smoke { 1 } else { 3 }).max(1),
            duration: secs(args.duration, 5.0, 1.0),
            smoke: args.smoke,
        },
        sizes: if args.smoke {
            Sizes::SMOKE
        } else {
            Sizes::FULL
        },
        keep: args.keep,
        perf: args.perf.clone(),
        only: args.only.clone(),
        work: workspace.join("target/bench"),
    };
    std::fs::create_dir_all(&plan.work)?;
    let machine = report::Machine::now();
    let leads = match &args.leads_bin {
        Some(path) => path.clone(),
        None => {
            eprintln!(
                "building leads ({})",
                if args.smoke { "dev" } else { "release" }
            );
            server::build(&workspace, !args.smoke)?
        }
    };
    let test_url = std::env::var("LEADS_TEST_DATABASE_URL").ok();
    let backend = args.backend.unwrap_or(match (args.smoke, &test_url) {
        (true, None) => Backend::Sqlite,
        _ => Backend::Both,
    });
    let postgres_url = match (&test_url, std::env::var_os("LEADS_BENCH_DATABASE_URL")) {
        (Some(test_url), None) if args.smoke => test_url.clone(),
        _ => args.postgres_url.clone(),
    };
    let mut backends = Vec::new();
    if matches!(backend, Backend::Sqlite | Backend::Both) {
        backends.push(sqlite(&leads, &plan).await?);
    }
    if matches!(backend, Backend::Postgres | Backend::Both) {
        backends.push(postgres(&leads, &plan, &postgres_url).await?);
    }
    let md = report::markdown(&machine, &plan.settings, &backends, &report::load_average());
    println!("{md}");
    let out = workspace.join(&args.out);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, &md).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("report written to {}", out.display());
    Ok(backends.iter().all(|b| b.errors() == 0))
}

async fn sqlite(leads: &Path, plan: &Plan) -> Result<BackendReport> {
    let dir = plan.work.join(format!("sqlite-{}", random_name()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("bench.db");
    let url = format!("sqlite://{}", file.display());
    let measured = async {
        let data = fixture::seed(leads, &url, plan.sizes).await?;
        let database = Database::Sqlite { file: file.clone() };
        let (rows, transfer) = measure(leads, "SQLite", &data, plan, &dir, &database).await?;
        Ok(report_of(
            "SQLite",
            plan,
            &data,
            rows,
            transfer,
            database.describe(plan),
        ))
    }
    .await;
    if plan.keep {
        eprintln!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    measured
}

async fn postgres(leads: &Path, plan: &Plan, admin_url: &str) -> Result<BackendReport> {
    let name = format!("leads_bench_{}", random_name());
    let dir = plan.work.join(&name);
    std::fs::create_dir_all(&dir)?;
    let (admin, url) = fixture::create_postgres_database(admin_url, &name).await?;
    let measured = async {
        let data = fixture::seed(leads, &url, plan.sizes).await?;
        let database = Database::Postgres { url: url.clone() };
        let (rows, transfer) = measure(leads, "PostgreSQL", &data, plan, &dir, &database).await?;
        Ok(report_of(
            "PostgreSQL",
            plan,
            &data,
            rows,
            transfer,
            database.describe(plan),
        ))
    }
    .await;
    if plan.keep {
        eprintln!("kept the database {name} and {}", dir.display());
    } else {
        if let Err(e) = admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
        {
            eprintln!("could not drop the database {name}: {e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    measured
}

/// Lower-case letters and digits, for names PostgreSQL keeps as written.
fn random_name() -> String {
    leads_server::domain::ids::random_base62(8).to_ascii_lowercase()
}

fn report_of(
    backend: &'static str,
    plan: &Plan,
    data: &Dataset,
    rows: Vec<Row>,
    transfer: Option<transfer::Transfer>,
    baseline_tool: String,
) -> BackendReport {
    BackendReport {
        backend,
        rows,
        transfer,
        big_leads: plan.sizes.big_leads,
        small: (plan.sizes.small_companies, plan.sizes.small_leads),
        seed_big: data.seed_big,
        seed_small: data.seed_small,
        baseline_tool,
    }
}

/// The database under the server, for measuring it alone.
enum Database {
    Sqlite { file: PathBuf },
    Postgres { url: String },
}

impl Database {
    /// The database alone on the statements the server issues for `request`.
    async fn baseline(
        &self,
        request: &ListRequest,
        key: &KeyId,
        dir: &Path,
        name: &str,
    ) -> Result<Arc<dyn Baseline>> {
        Ok(match self {
            Database::Sqlite { file } => Arc::new(baseline::sqlite::Baseline::new(
                file,
                &request.filter,
                &request.page,
                key,
            )?),
            Database::Postgres { url, .. } => Arc::new(
                baseline::postgres::Baseline::new(
                    url,
                    &request.filter,
                    &request.page,
                    key,
                    dir,
                    &name.replace(' ', "-"),
                )
                .await?,
            ),
        })
    }

    fn describe(&self, plan: &Plan) -> String {
        let n = plan.settings.connections;
        match self {
            Database::Sqlite { .. } => format!(
                "the server's statements (the key's re-check, then the page with its flag probes), prepared, on {n} threads with read-only connections of their own (rusqlite, as the server)"
            ),
            Database::Postgres { .. } => format!(
                "the server's one statement (the page, its flag probes and the key's re-check), as a `pgbench -M prepared` script on {n} connections"
            ),
        }
    }
}

/// The database alone on one list scenario's statements.
trait Baseline: Send + Sync {
    /// How many statements one request runs.
    fn statements(&self) -> usize;
    /// Runs them from `threads` threads or connections for `duration`.
    fn run(&self, threads: usize, duration: Duration) -> Result<load::Outcome>;
}

impl Baseline for baseline::sqlite::Baseline {
    fn statements(&self) -> usize {
        baseline::sqlite::Baseline::statements(self)
    }

    fn run(&self, threads: usize, duration: Duration) -> Result<load::Outcome> {
        baseline::sqlite::Baseline::run(self, threads, duration)
    }
}

impl Baseline for baseline::postgres::Baseline {
    fn statements(&self) -> usize {
        baseline::postgres::Baseline::statements(self)
    }

    fn run(&self, clients: usize, duration: Duration) -> Result<load::Outcome> {
        baseline::postgres::Baseline::run(self, clients, duration)
    }
}

/// Serves `data` and measures every scenario on it, each list beside the database alone, then
/// the export and import of the big company.
async fn measure(
    leads: &Path,
    backend: &str,
    data: &Dataset,
    plan: &Plan,
    dir: &Path,
    database: &Database,
) -> Result<(Vec<Row>, Option<transfer::Transfer>)> {
    let settings = &plan.settings;
    let server = server::Server::start(leads, &data.database, &dir.join("server.log")).await?;
    let addr = server.addr;
    let deep = plan.sizes.deep;
    eprintln!("{backend}: walking to the cursor {deep} leads deep");
    let cursor = fixture::deep_cursor(addr, &data.big, u64::from(deep)).await?;
    let email = fixture::an_email(addr, &data.big).await?;
    let mut scenarios = scenarios::all(data, &cursor, deep, &email);
    if !plan.only.is_empty() {
        scenarios.retain(|s| plan.only.contains(&s.name.replace(' ', "-")));
    }
    for s in &scenarios {
        if let Kind::List { query, expect } = &s.kind {
            let path = format!("/api/v1/leads?{query}");
            fixture::check(addr, &data.big.key, &path, *expect)
                .await
                .with_context(|| format!("the {} scenario", s.name))?;
        }
    }
    // Dashboard pages: one session of the big company's key, and its newest lead's id.
    let mut client = load::Client::new(addr, &data.big.key).await?;
    let cookie = client.sign_in().await?;
    let newest = client
        .get_json(&format!("/api/v1/leads?company_id={}&first=1", data.big.id))
        .await?["data"][0]["id"]
        .as_str()
        .context("the big company has no lead")?
        .to_owned();
    let page_path = |page: DashboardPage| match page {
        DashboardPage::Leads => "/dashboard".to_owned(),
        DashboardPage::Lead => format!("/dashboard/leads/{newest}"),
    };
    for s in &scenarios {
        if let Kind::Page { page } = &s.kind {
            client
                .get_page(&page_path(*page), &cookie)
                .await
                .with_context(|| format!("the {} scenario", s.name))?;
        }
    }
    let codec = CursorCodec::new(&data.cursor_secret);
    let mut rows = Vec::new();
    for s in scenarios {
        let workload: Arc<dyn Workload> = match &s.kind {
            Kind::List { query, .. } => Arc::new(scenarios::Get::new(addr, data, query)),
            Kind::Create => Arc::new(scenarios::Create::new(addr, data)),
            Kind::Mixed { list_query } => Arc::new(scenarios::Mixed {
                list: scenarios::Get::new(addr, data, list_query),
                create: scenarios::Create::new(addr, data),
            }),
            Kind::Stats { path } => Arc::new(scenarios::Get::at(addr, data, path.clone())),
            Kind::Page { page } => Arc::new(scenarios::Page {
                addr,
                path: page_path(*page),
                cookie: cookie.clone(),
            }),
        };
        let slug = s.name.replace(' ', "-");
        let perf = plan.perf.contains(&slug).then(|| {
            plan.work
                .join(format!("{}-{slug}.perf.data", backend.to_lowercase()))
        });
        server.reset_peak_rss();
        let one = Settings {
            connections: 1,
            ..settings.clone()
        };
        let load = if s.latency_target() { &one } else { settings };
        let stats = load_server(load, &server, workload, perf.as_deref()).await?;
        let peak_rss = server.peak_rss();
        let base = match &s.kind {
            Kind::List { query, .. } => {
                let request = ListRequest::parse(query, &codec)
                    .map_err(|e| anyhow!("the server would refuse {query}: {e:?}"))?;
                if request.filter.search.is_some() {
                    // A search's page depends on look-ups the server runs first: there is no
                    // one statement to run alone.
                    None
                } else {
                    let b = database
                        .baseline(&request, &data.big_key, dir, s.name)
                        .await?;
                    let statements = b.statements();
                    let settings = settings.clone();
                    let stats = tokio::task::spawn_blocking(move || load_database(&settings, &*b))
                        .await??;
                    Some((stats, statements))
                }
            }
            _ => None,
        };
        eprintln!(
            "{backend} {}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors, peak RSS {} KiB (now {}){}",
            s.name,
            stats.per_second,
            stats.p50_ms,
            stats.p99_ms,
            stats.errors,
            peak_rss.map_or(0, |b| b / 1024),
            server.rss_breakdown(),
            base.as_ref().map_or(String::new(), |(b, _)| format!(
                "; database alone {:.0} q/s, p50 {:.2} ms, p99 {:.2} ms",
                b.per_second, b.p50_ms, b.p99_ms
            ))
        );
        rows.push(Row {
            name: s.name,
            what: s.what,
            profiled: perf.is_some(),
            server: stats,
            peak_rss,
            baseline: base,
        });
    }
    let wanted = |name: &str| plan.only.is_empty() || plan.only.iter().any(|o| o == name);
    let echo = wanted("create-echoed");
    if echo || wanted("create-webhook") || wanted("webhook-delivery") || wanted("webhook-latency") {
        rows.extend(measure_webhooks(backend, data, plan, &server, echo).await?);
    }
    let transfer = if plan.only.is_empty() || plan.only.iter().any(|o| o == "export") {
        let t = transfer::measure(leads, &server, data, dir).await?;
        eprintln!(
            "{backend} export: {} rows in {:.2} s, RSS +{} KiB; import: {} rows in {:.2} s",
            t.exported_rows,
            t.export.as_secs_f64(),
            t.rss_growth() / 1024,
            t.imported_rows,
            t.import.as_secs_f64()
        );
        Some(t)
    } else {
        None
    };
    server.stop()?;
    Ok((rows, transfer))
}

/// With `echo`, first the machine's ceiling: creates, each answer sent on to the receiver by
/// the load generator ([`webhooks::Echo`]), with no endpoint on the server. Then, with one
/// endpoint subscribed to `lead.created` whose receiver answers at once: creates (to set beside
/// the plain `create` row), the deliveries they cause (throughput and commit-to-delivery
/// latency while the queue is busy), and the latency on an idle queue (one create at a time).
/// The endpoint stays, so these run after every other scenario.
async fn measure_webhooks(
    backend: &str,
    data: &Dataset,
    plan: &Plan,
    server: &server::Server,
    echo: bool,
) -> Result<Vec<Row>> {
    let receiver = webhooks::Receiver::start()?;
    let settings = &plan.settings;
    let mut rows = Vec::new();
    if echo {
        let echoed: Arc<dyn Workload> = Arc::new(webhooks::EchoedCreate {
            create: scenarios::Create::new(server.addr, data),
            echo: webhooks::Echo::start(&receiver.url, &data.big.id)?,
        });
        let (creates, echoes, echoed) =
            load_and_receive(settings, server, &receiver, echoed).await?;
        eprintln!(
            "{backend} create, echoed: {:.0} req/s; echoed {echoed} at {:.0}/s",
            creates.per_second, echoes.per_second
        );
        rows.push(Row {
            name: "create, echoed",
            what: "`POST`, no endpoint; the load generator sends each answer on to the receiver with the server's webhook sender: the machine's ceiling for creates with an endpoint".into(),
            profiled: false,
            server: creates,
            peak_rss: server.peak_rss(),
            baseline: None,
        });
        rows.push(Row {
            name: "echo delivery",
            what: "the echoes of the creates above, per second first to last: the ceiling holds only if this keeps up with them".into(),
            profiled: false,
            server: echoes,
            peak_rss: None,
            baseline: None,
        });
    }
    let mut client = load::Client::new(server.addr, &data.big.key).await?;
    client
        .post_json(
            "/api/v1/webhooks",
            &serde_json::json!({"url": receiver.url, "events": ["lead.created"]}),
        )
        .await?;

    let create: Arc<dyn Workload> = Arc::new(scenarios::Create::new(server.addr, data));
    let (creates, delivery, delivered) =
        load_and_receive(settings, server, &receiver, create).await?;
    eprintln!(
        "{backend} create + webhook: {:.0} req/s; delivered {delivered} at {:.0}/s, commit to delivery p50 {:.1} ms",
        creates.per_second, delivery.per_second, delivery.p50_ms
    );
    rows.push(Row {
        name: "create, webhook subscribed",
        what: "`POST`, one endpoint on `lead.created` answering at once".into(),
        profiled: false,
        server: creates,
        peak_rss: server.peak_rss(),
        baseline: None,
    });
    rows.push(Row {
        name: "webhook delivery",
        what: "deliveries/s of the creates above, first to last; latency: commit to delivery"
            .into(),
        profiled: false,
        server: delivery,
        peak_rss: None,
        baseline: None,
    });

    let one = Settings {
        connections: 1,
        ..settings.clone()
    };
    let create: Arc<dyn Workload> = Arc::new(scenarios::Create::new(server.addr, data));
    let (_, idle, _) = load_and_receive(&one, server, &receiver, create).await?;
    eprintln!(
        "{backend} webhook latency, idle queue: p50 {:.1} ms, p99 {:.1} ms",
        idle.p50_ms, idle.p99_ms
    );
    rows.push(Row {
        name: "webhook latency, idle",
        what: "one create at a time; latency: commit to delivery".into(),
        profiled: false,
        server: idle,
        peak_rss: None,
        baseline: None,
    });
    Ok(rows)
}

/// Forgets what `receiver` got and the server's peak RSS, loads the server with `workload` (as
/// [`load_server`]), and waits until nothing more arrives (at most 2 minutes). Answers the
/// load's figures, what arrived as a run (per second from the first to the last, and its
/// latencies), and how many arrived.
async fn load_and_receive(
    settings: &Settings,
    server: &server::Server,
    receiver: &webhooks::Receiver,
    workload: Arc<dyn Workload>,
) -> Result<(Stats, Stats, u64)> {
    receiver.reset();
    server.reset_peak_rss();
    let load = load_server(settings, server, workload, None).await?;
    receiver.settle(Duration::from_secs(120)).await;
    let received = receiver.outcome();
    let arrived = Stats::of(&received, std::slice::from_ref(&received));
    Ok((load, arrived, received.ok))
}

/// Warm-up, then the rounds, through the server; the rounds recorded by `perf` into `perf_data`
/// if given.
async fn load_server(
    settings: &Settings,
    server: &server::Server,
    workload: Arc<dyn Workload>,
    perf_data: Option<&Path>,
) -> Result<Stats> {
    let (addr, n) = (server.addr, settings.connections);
    let warmup = load::run(addr, n, settings.warmup, workload.clone()).await;
    let recording = perf_data.map(|out| server.record(out)).transpose()?;
    let mut rounds = Vec::new();
    for _ in 0..settings.rounds {
        rounds.push(load::run(addr, n, settings.duration, workload.clone()).await);
    }
    if let Some(recording) = recording {
        eprintln!("perf data in {}", recording.stop()?.display());
    }
    Ok(Stats::of(&warmup, &rounds))
}

/// Warm-up, then the rounds, on the database alone.
fn load_database(settings: &Settings, baseline: &dyn Baseline) -> Result<Stats> {
    let n = settings.connections;
    let warmup = baseline.run(n, settings.warmup)?;
    let rounds = (0..settings.rounds)
        .map(|_| baseline.run(n, settings.duration))
        .collect::<Result<Vec<_>>>()?;
    Ok(Stats::of(&warmup, &rounds))
}
