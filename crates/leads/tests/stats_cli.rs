//! `leads stats`: the real binary charts a metric from a real server, in-process on a free port
//! over a fresh seeded database.

use leads_server::app::{self, Config};
use leads_server::seed::{self, SeedOptions};
use leads_server::server::ServerLimits;
use leads_server::storage;

const LEADS: &str = env!("CARGO_BIN_EXE_leads");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_prints_a_line_per_period_with_totals_and_refuses_bad_input() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("leads.db").display());
    let store = storage::open(&url).await.expect("open store");
    let options = SeedOptions {
        companies: 1,
        leads_per_company: 500,
        products_per_company: 3,
    };
    let report = seed::seed(&store.directory, options, |_| {})
        .await
        .expect("seed");
    let company = &report.companies[0];
    let config = Config {
        database_url: url,
        ..Config::default()
    };
    let built = app::build_with_stores(store.clone(), &config)
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
    let today = chrono::Utc::now().date_naive();
    let from = (today - chrono::Duration::days(364)).to_string();
    let run = |args: Vec<String>| {
        let (base_url, key) = (base_url.clone(), company.key.clone());
        async move {
            tokio::process::Command::new(LEADS)
                .args(args)
                .env("WHOP_API_KEY", key)
                .env("WHOP_BASE_URL", base_url)
                .output()
                .await
                .expect("run leads")
        }
    };
    let args = |extra: &[&str]| {
        let mut args: Vec<String> = [
            "stats",
            "new_leads",
            "--company",
            &company.id,
            "--from",
            &from,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(["--to".to_owned(), today.to_string()]);
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
    for product in &company.products {
        assert!(text.contains(&format!("total {product}: ")), "{text}");
    }

    let out = run(args(&["--interval", "fortnight"])).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("interval"));
}
