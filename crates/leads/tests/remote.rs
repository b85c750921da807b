//! `leads list | get | create | update | stats`: the real binary against a real server,
//! in-process on a free port over a fresh database.

use leads_client::{Client, Lead, ListLeadsParams};
use leads_server::app::{self, Config};
use leads_server::seed::{self, SeedOptions};
use leads_server::server::ServerLimits;
use leads_server::storage::{self, Stores};
use std::process::Output;
use unicode_width::UnicodeWidthStr;

const LEADS: &str = env!("CARGO_BIN_EXE_leads");

struct Server {
    base_url: String,
    company: String,
    key: String,
    products: Vec<String>,
    stores: Stores,
    _dir: tempfile::TempDir,
}

impl Server {
    /// A server whose one company has `leads` synthetic leads over three products.
    async fn start(leads: u32) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("leads.db").display());
        let stores = storage::open(&url).await.expect("open store");
        let options = SeedOptions {
            companies: 1,
            leads_per_company: leads,
            products_per_company: 3,
        };
        let report = seed::seed(&stores.directory, options, |_| {})
            .await
            .expect("seed");
        let company = &report.companies[0];
        let config = Config {
            database_url: url,
            ..Config::default()
        };
        let built = app::build_with_stores(stores.clone(), &config)
            .await
            .expect("build app");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base_url = format!("http://{}/api/v1", listener.local_addr().expect("addr"));
        tokio::spawn(app::serve(
            listener,
            built.router,
            ServerLimits::default(),
            std::future::pending(),
        ));
        Server {
            base_url,
            company: company.id.clone(),
            key: company.key.clone(),
            products: company.products.clone(),
            stores,
            _dir: dir,
        }
    }

    /// Runs `leads ARGS` with this server's base URL and key in the environment.
    async fn leads(&self, args: &[&str]) -> Output {
        self.leads_with(args, &[]).await
    }

    async fn leads_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = tokio::process::Command::new(LEADS);
        command
            .args(args)
            .env("WHOP_API_KEY", &self.key)
            .env("WHOP_BASE_URL", &self.base_url)
            .env_remove("COLUMNS");
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().await.expect("run leads")
    }

    fn client(&self) -> Client {
        Client::builder()
            .api_key(&self.key)
            .base_url(&self.base_url)
            .build()
            .unwrap()
    }

    /// Every lead of the company, as the client crate walks them.
    async fn all(&self, params: ListLeadsParams) -> Vec<Lead> {
        use futures_util::TryStreamExt;
        self.client()
            .leads()
            .list(params)
            .try_collect()
            .await
            .unwrap()
    }
}

/// Stdout of a run that must have succeeded.
fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The leads of a run that printed NDJSON.
fn ndjson(output: &Output) -> Vec<Lead> {
    stdout(output)
        .lines()
        .map(|line| serde_json::from_str::<Lead>(line).unwrap())
        .collect()
}

fn ids(leads: &[Lead]) -> Vec<String> {
    leads.iter().map(|l| l.id.clone()).collect()
}

/// Parses RFC 4180 CSV.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_prints_a_table_that_fits_the_terminal() {
    let server = Server::start(250).await;
    let expected = ids(&server.all(ListLeadsParams::new(&server.company)).await);
    for columns in ["50", "80", "120", "300"] {
        let output = server
            .leads_with(
                &["list", "--company", &server.company],
                &[("COLUMNS", columns)],
            )
            .await;
        let text = stdout(&output);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 251, "a header and every lead");
        assert!(lines[0].starts_with("ID "), "{}", lines[0]);
        let width: usize = columns.parse().unwrap();
        for line in &lines {
            assert!(line.width() <= width, "COLUMNS={columns}: {line:?}");
        }
        let listed: Vec<&str> = lines[1..]
            .iter()
            .map(|line| line.split_whitespace().next().unwrap())
            .collect();
        assert_eq!(listed, expected, "whole ids, in list order");
        if width >= 120 {
            assert!(lines[0].contains("CREATED") && lines[0].contains("USER"));
        }
        if width >= 300 {
            assert!(lines[0].ends_with("REFERRER"), "{}", lines[0]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_as_json_ndjson_and_csv_shows_every_lead_whole() {
    let server = Server::start(230).await;
    let expected = server.all(ListLeadsParams::new(&server.company)).await;
    let list = |format: &'static str| {
        let company = server.company.clone();
        let server = &server;
        async move {
            stdout(
                &server
                    .leads(&["list", "--company", &company, "--format", format])
                    .await,
            )
        }
    };

    let json: Vec<Lead> = serde_json::from_str(&list("json").await).unwrap();
    assert_eq!(json, expected);

    let ndjson = list("ndjson").await;
    let lines: Vec<Lead> = ndjson
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines, expected);

    let rows = parse_csv(&list("csv").await);
    assert_eq!(rows[0][0], "id");
    assert_eq!(rows[0].last().unwrap(), "metadata");
    assert_eq!(rows.len(), expected.len() + 1);
    for (row, lead) in rows[1..].iter().zip(&expected) {
        assert_eq!(row[0], lead.id);
        assert_eq!(row[1], lead.created_at.to_string());
        assert_eq!(row[4], lead.user.username);
        let metadata = row.last().unwrap();
        match &lead.metadata {
            None => assert_eq!(metadata, "", "null is an empty field"),
            Some(stored) => assert_eq!(
                serde_json::from_str::<serde_json::Value>(metadata).unwrap(),
                serde_json::from_str::<serde_json::Value>(stored.get()).unwrap()
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_and_limits_as_asked() {
    let server = Server::start(400).await;
    let all = server.all(ListLeadsParams::new(&server.company)).await;
    let (after, before) = (all[300].created_at, all[20].created_at);
    let expected = server
        .all(
            ListLeadsParams::new(&server.company)
                .product_ids(server.products[..2].iter().cloned())
                .created_after(after)
                .created_before(before),
        )
        .await;
    assert!(!expected.is_empty());
    let (after, before) = (after.to_string(), before.to_string());
    let output = server
        .leads(&[
            "list",
            "--company",
            &server.company,
            "--product",
            &server.products[0],
            "--product",
            &server.products[1],
            "--created-after",
            &after,
            "--created-before",
            &before,
            "--format",
            "ndjson",
        ])
        .await;
    let listed: Vec<String> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str::<Lead>(line).unwrap().id)
        .collect();
    assert_eq!(listed, ids(&expected));

    for (limit, count) in [("7", 7), ("150", 150), ("1000", 400)] {
        let output = server
            .leads(&[
                "list",
                "--company",
                &server.company,
                "--limit",
                limit,
                "--format",
                "ndjson",
            ])
            .await;
        let listed: Vec<String> = stdout(&output)
            .lines()
            .map(|line| serde_json::from_str::<Lead>(line).unwrap().id)
            .collect();
        assert_eq!(listed, ids(&all[..count]), "--limit {limit}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_searches_by_query_and_email() {
    let server = Server::start(200).await;
    let expected = server
        .all(ListLeadsParams::new(&server.company).query("garcia"))
        .await;
    assert!(!expected.is_empty(), "the seed has a Garcia");
    let output = server
        .leads(&[
            "list",
            "--company",
            &server.company,
            "--query",
            "GARCIA",
            "--format",
            "ndjson",
        ])
        .await;
    assert_eq!(ids(&ndjson(&output)), ids(&expected));

    let email = expected[0].user.email.clone().expect("an email");
    let output = server
        .leads(&[
            "list",
            "--company",
            &server.company,
            "--email",
            &email,
            "--format",
            "ndjson",
        ])
        .await;
    let listed = ndjson(&output);
    assert!(!listed.is_empty());
    assert!(listed
        .iter()
        .all(|l| l.user.email.as_deref() == Some(email.as_str())));

    let output = server
        .leads(&["list", "--company", &server.company, "--query", ""])
        .await;
    assert!(
        output.status.success(),
        "an empty query means none: {}",
        stderr(&output)
    );
    let too_long = "x".repeat(101);
    let output = server
        .leads(&["list", "--company", &server.company, "--query", &too_long])
        .await;
    assert!(!output.status.success());
    assert!(stderr(&output).contains("query"), "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_prints_the_servers_message_and_exits_non_zero() {
    let server = Server::start(3).await;

    let output = server
        .leads_with(
            &["list", "--company", &server.company],
            &[("WHOP_API_KEY", "not-a-key")],
        )
        .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let expected = Client::builder()
        .api_key("not-a-key")
        .base_url(&server.base_url)
        .build()
        .unwrap()
        .leads()
        .list(ListLeadsParams::new(&server.company))
        .first_page()
        .await
        .unwrap_err();
    let message = &expected.api().unwrap().message;
    assert!(
        stderr(&output).contains(message.as_str()),
        "{}",
        stderr(&output)
    );

    // Any text is a company id to the API (Whop's rule), so take one over its 255 characters.
    let too_long = "b".repeat(256);
    let output = server
        .leads(&["list", "--company", &too_long, "--format", "csv"])
        .await;
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(text.starts_with("error: "), "{text}");
    assert!(text.contains("company_id"), "{text}");

    let output = server
        .leads(&["list", "--company", &server.company, "--api-key", "wrong"])
        .await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "--api-key wins over the environment"
    );

    let output = server
        .leads_with(
            &["list", "--company", &server.company],
            &[("WHOP_API_KEY", "")],
        )
        .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("WHOP_API_KEY"));

    let output = server
        .leads(&[
            "list",
            "--company",
            &server.company,
            "--created-after",
            "yesterday",
        ])
        .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("RFC 3339"));

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let output = server
        .leads(&[
            "get",
            "lead_xxxxxxxxxxxxx",
            "--max-retries",
            "0",
            "--base-url",
            &format!("http://{addr}/api/v1"),
        ])
        .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("cannot reach"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_and_update_a_lead() {
    let server = Server::start(1).await;
    let user =
        leads_server::admin::create_user(server.stores.directory.as_ref(), "cli_user", None, None)
            .await
            .unwrap()
            .id;

    let output = server
        .leads(&[
            "create",
            "--company",
            &server.company,
            "--user",
            &user,
            "--product",
            &server.products[0],
            "--referrer",
            "https://example.com/cli",
            "--metadata",
            r#"{"campaign":"spring"}"#,
            "--idempotency-key",
            "cli-test-1",
        ])
        .await;
    let created: Lead = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(created.user.id, user);
    assert_eq!(created.referrer.as_deref(), Some("https://example.com/cli"));

    let output = server.leads(&["get", &created.id]).await;
    let fetched: Lead = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(fetched, created);

    let output = server
        .leads(&[
            "update",
            &created.id,
            "--clear-referrer",
            "--format",
            "ndjson",
        ])
        .await;
    let updated: Lead = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(updated.referrer, None);
    assert_eq!(
        updated.metadata.as_ref().map(|m| m.get()),
        created.metadata.as_ref().map(|m| m.get()),
        "left out, so left as it was"
    );

    let output = server
        .leads_with(
            &["get", &created.id, "--format", "table"],
            &[("COLUMNS", "60")],
        )
        .await;
    let text = stdout(&output);
    assert!(text
        .lines()
        .any(|line| line.starts_with("referrer") && line.ends_with(" -")));
    assert!(text.lines().all(|line| line.width() <= 60), "{text}");

    let output = server.leads(&["get", "lead_doesnotexist1"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("No such lead"),
        "{}",
        stderr(&output)
    );

    let output = server.leads(&["update", &created.id]).await;
    assert_eq!(
        output.status.code(),
        Some(2),
        "an update must change something"
    );
    let output = server
        .leads(&["update", &created.id, "--referrer", "x", "--clear-referrer"])
        .await;
    assert_eq!(output.status.code(), Some(2));
    let output = server
        .leads(&["update", &created.id, "--metadata", "[1]"])
        .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("JSON object"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_prints_a_line_per_period_with_totals_and_refuses_bad_input() {
    let server = &Server::start(500).await;
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today + chrono::Duration::days(1);
    let from = (today - chrono::Duration::days(364)).to_string();
    let run = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        server.leads(&args).await
    };
    let args = |extra: &[&str]| {
        let mut args: Vec<String> = [
            "stats",
            "new_leads",
            "--company",
            &server.company,
            "--from",
            &from,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Through tomorrow: in Asia/Kolkata, UTC's evening is already the next day, and a
        // window ending with UTC's today would leave the last hours' leads out.
        args.extend(["--to".to_owned(), tomorrow.to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };

    let out = run(args(&["--interval", "week", "--time-zone", "Asia/Kolkata"])).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("PERIOD"), "{text}");
    assert!(
        (53..=54).contains(&(lines.len() - 2)),
        "a line per week: {text}"
    );
    assert_eq!(lines.last().unwrap(), &"total new_leads: 500", "{text}");
    assert!(text.contains('█'), "{text}");

    let out = run(args(&["--breakdown", "product", "--interval", "month"])).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for product in &server.products {
        assert!(text.contains(&format!("total {product}: ")), "{text}");
    }

    let out = run(args(&["--interval", "fortnight"])).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("interval"));
}
