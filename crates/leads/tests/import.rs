//! `leads import` with the real binary: an export of company A imported into an empty company B
//! gives B the same leads; importing it again changes nothing; a file with three bad rows
//! imports the rest and reports exactly those three lines. On SQLite and, given
//! `LEADS_TEST_DATABASE_URL`, on PostgreSQL.

mod common;

use common::{admin, all_leads, seed, serve, LEADS};
use serde_json::{json, Value};
use std::path::Path;

const LEADS_IN_A: usize = 300;

mod sqlite {
    fn database(dir: &std::path::Path) -> String {
        format!("sqlite://{}", dir.join("leads.db").display())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_export_imported_into_an_empty_company_gives_it_the_same_leads_once() {
        let dir = tempfile::tempdir().unwrap();
        super::an_export_imported_into_an_empty_company_gives_it_the_same_leads_once(
            &database(dir.path()),
            dir.path(),
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_bad_rows_are_reported_and_the_rest_imported() {
        let dir = tempfile::tempdir().unwrap();
        super::three_bad_rows_are_reported_and_the_rest_imported(&database(dir.path()), dir.path());
    }
}

mod postgres {
    use super::common;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_export_imported_into_an_empty_company_gives_it_the_same_leads_once() {
        let Some(database) = common::PgDatabase::create().await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        super::an_export_imported_into_an_empty_company_gives_it_the_same_leads_once(
            &database.url,
            dir.path(),
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_bad_rows_are_reported_and_the_rest_imported() {
        let Some(database) = common::PgDatabase::create().await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        super::three_bad_rows_are_reported_and_the_rest_imported(&database.url, dir.path());
    }
}

/// Runs `leads import`; its exit code and what it printed.
fn import(database: &str, company: &str, file: &Path, extra: &[&str]) -> (i32, String) {
    let output = std::process::Command::new(LEADS)
        .args(["import", "--company", company, "--database", database])
        .arg(file)
        .args(extra)
        .output()
        .expect("run leads import");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (
        output.status.code().expect("an exit code"),
        format!("{}{stderr}", stdout.trim()),
    )
}

/// What must match between the two companies' leads: everything but ids.
fn comparable(lead: &Value) -> String {
    json!([
        lead["user"]["username"],
        lead["user"]["id"],
        lead["product"]["title"],
        lead["referrer"],
        lead["metadata"],
        lead["created_at"],
    ])
    .to_string()
}

fn sorted(leads: &std::collections::HashMap<String, Value>) -> Vec<String> {
    let mut all: Vec<String> = leads.values().map(comparable).collect();
    all.sort();
    all
}

async fn an_export_imported_into_an_empty_company_gives_it_the_same_leads_once(
    database: &str,
    dir: &Path,
) {
    let (a, a_key) = seed(database, LEADS_IN_A as u64);
    let b = admin(database, &["company", "create", "--title", "B"]);
    let b_key = admin(database, &["key", "create", "--company", &b]);
    let http = reqwest::Client::new();
    let export_dir = dir.join("exports");
    let server = serve(
        database,
        &http,
        &["--export-dir", export_dir.to_str().unwrap()],
    )
    .await;

    // A's export, as `leads export` saves it.
    let file = dir.join("a.csv");
    let exported = std::process::Command::new(LEADS)
        .args([
            "export",
            "--company",
            &a,
            "--timezone",
            "Europe/Paris",
            "--output",
        ])
        .arg(&file)
        .env("WHOP_API_KEY", &a_key)
        .env("WHOP_BASE_URL", format!("{}/api/v1", server.base))
        .output()
        .expect("run leads export");
    assert!(exported.status.success(), "{exported:?}");
    assert_eq!(
        String::from_utf8(exported.stdout).unwrap().trim(),
        file.display().to_string()
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("+01:00") || text.contains("+02:00"),
        "Paris time"
    );

    let (code, printed) = import(database, &b, &file, &[]);
    assert_eq!(code, 0, "{printed}");
    assert!(
        printed.starts_with(&format!("imported {LEADS_IN_A}, skipped 0, rejected 0")),
        "{printed}"
    );
    let leads_a = all_leads(&server, &http, &a, &a_key).await;
    let leads_b = all_leads(&server, &http, &b, &b_key).await;
    assert_eq!(leads_b.len(), LEADS_IN_A);
    assert_eq!(sorted(&leads_a), sorted(&leads_b), "B has A's leads");
    let products = |leads: &std::collections::HashMap<String, Value>| {
        leads
            .values()
            .filter_map(|l| l["product"]["id"].as_str().map(str::to_owned))
            .collect::<std::collections::HashSet<_>>()
    };
    assert!(
        products(&leads_a).is_disjoint(&products(&leads_b)),
        "B's leads are of B's own products"
    );

    let (code, printed) = import(database, &b, &file, &[]);
    assert_eq!(code, 0, "{printed}");
    assert!(
        printed.starts_with(&format!("imported 0, skipped {LEADS_IN_A}, rejected 0")),
        "{printed}"
    );
    let again = all_leads(&server, &http, &b, &b_key).await;
    assert_eq!(
        sorted(&again),
        sorted(&leads_b),
        "a second import changes nothing"
    );
    assert!(!dir.join("a.csv.rejected.csv").exists());

    // The same leads as NDJSON of Lead objects, as `leads list --format ndjson` writes them.
    let listed = std::process::Command::new(LEADS)
        .args(["list", "--company", &a, "--format", "ndjson"])
        .env("WHOP_API_KEY", &a_key)
        .env("WHOP_BASE_URL", format!("{}/api/v1", server.base))
        .output()
        .expect("run leads list");
    assert!(listed.status.success(), "{listed:?}");
    let ndjson = dir.join("a.ndjson");
    std::fs::write(&ndjson, &listed.stdout).unwrap();
    let c = admin(database, &["company", "create", "--title", "C"]);
    let c_key = admin(database, &["key", "create", "--company", &c]);
    let (code, printed) = import(database, &c, &ndjson, &[]);
    assert_eq!(code, 0, "{printed}");
    let leads_c = all_leads(&server, &http, &c, &c_key).await;
    assert_eq!(
        sorted(&leads_a),
        sorted(&leads_c),
        "C has A's leads from NDJSON"
    );
}

fn three_bad_rows_are_reported_and_the_rest_imported(database: &str, dir: &Path) {
    let company = admin(database, &["company", "create", "--title", "C"]);
    let file = dir.join("leads.csv");
    let long = "u".repeat(65);
    std::fs::write(
        &file,
        format!(
            "username,email,name,product_title,referrer,metadata,created_at\r\n\
             ann,ann@example.com,Ann,Pickaxe,https://x.example/,{{}},2024-01-01T00:00:00.000Z\r\n\
             ben,,Ben,,,,2024-01-02T00:00:00.000+01:00\r\n\
             cat,,,Pickaxe,,,the second of January\r\n\
             dan,,'-Dan,Shovel,,\"{{\"\"k\"\":1}}\",2024-01-03T00:00:00.000Z\r\n\
             eve,,,,,[1],2024-01-04T00:00:00.000Z\r\n\
             {long},,,,,,2024-01-05T00:00:00.000Z\r\n\
             fay,,,,,,2024-01-06T00:00:00.000Z\r\n\
             gus,,,Pickaxe,,,2024-01-07T00:00:00.000Z\r\n"
        ),
    )
    .unwrap();
    let (code, printed) = import(database, &company, &file, &[]);
    assert_eq!(code, 3, "{printed}");
    assert!(
        printed.starts_with("imported 5, skipped 0, rejected 3"),
        "{printed}"
    );
    let report = std::fs::read_to_string(dir.join("leads.csv.rejected.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(report.as_bytes());
    let rows: Vec<(String, String)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_owned(), r[1].to_owned())
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("4".to_owned(), "created_at".to_owned()),
            ("6".to_owned(), "metadata".to_owned()),
            ("7".to_owned(), "username".to_owned()),
        ],
        "{report}"
    );
    // Imported again, the good rows are all skipped and the same three are reported.
    let custom = dir.join("again.csv");
    let (code, printed) = import(
        database,
        &company,
        &file,
        &["--report", custom.to_str().unwrap()],
    );
    assert_eq!(code, 3, "{printed}");
    assert!(
        printed.starts_with("imported 0, skipped 5, rejected 3"),
        "{printed}"
    );
    assert!(custom.exists());
    // An unknown company is an error of its own: exit 1.
    let (code, printed) = import(database, "biz_doesnotexist00", &file, &[]);
    assert_eq!(code, 1, "{printed}");
}
