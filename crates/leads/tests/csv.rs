//! CSV that spreadsheets cannot execute: the real `leads` binary against a real server, over a
//! lead whose every prospect-filled field reads like a formula (OWASP "CSV Injection"). On
//! SQLite and, given `LEADS_TEST_DATABASE_URL`, on PostgreSQL.

mod common;

use common::{admin, serve, LEADS};
use std::process::Output;

const HYPERLINK: &str = r#"=HYPERLINK("https://evil.example","Click")"#;
const USERNAME: &str = "-cmd";
const REFERRER: &str = "@SUM(1+1)";
const PRODUCT: &str = "+Pickaxe";

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn csv_escapes_formulas_unless_csv_raw_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let database = format!("sqlite://{}", dir.path().join("leads.db").display());
        super::csv_escapes_formulas_unless_csv_raw_is_given(&database).await;
    }
}

mod postgres {
    use super::common;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn csv_escapes_formulas_unless_csv_raw_is_given() {
        let Some(database) = common::PgDatabase::create().await else {
            return;
        };
        super::csv_escapes_formulas_unless_csv_raw_is_given(&database.url).await;
    }
}

/// The `leads` command line, pointed at a server with a key.
struct Cli {
    base_url: String,
    key: String,
}

impl Cli {
    /// Runs `leads ARGS` and answers its stdout; it must succeed.
    async fn run(&self, args: &[&str]) -> String {
        let output: Output = tokio::process::Command::new(LEADS)
            .args(args)
            .env("WHOP_API_KEY", &self.key)
            .env("WHOP_BASE_URL", &self.base_url)
            .env_remove("COLUMNS")
            .output()
            .await
            .expect("run leads");
        assert!(
            output.status.success(),
            "leads {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8 output")
    }
}

/// The records of a CSV text, header first, read by the `csv` crate as RFC 4180.
fn records(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|record| record.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

/// The one lead's cells by column name.
fn cells(text: &str) -> std::collections::HashMap<String, String> {
    let records = records(text);
    assert_eq!(records.len(), 2, "a header and one lead: {text}");
    records[0]
        .iter()
        .cloned()
        .zip(records[1].iter().cloned())
        .collect()
}

async fn csv_escapes_formulas_unless_csv_raw_is_given(database: &str) {
    let company = admin(database, &["company", "create", "--title", "Acme"]);
    let product = admin(
        database,
        &[
            "product",
            "create",
            "--company",
            &company,
            "--title",
            PRODUCT,
        ],
    );
    let user = admin(
        database,
        &[
            "user",
            "create",
            &format!("--username={USERNAME}"),
            "--name",
            HYPERLINK,
        ],
    );
    let key = admin(database, &["key", "create", "--company", &company]);
    let http = reqwest::Client::new();
    let server = serve(database, &http, &[]).await;
    let cli = Cli {
        base_url: format!("{}/api/v1", server.base),
        key,
    };

    let created = cli
        .run(&[
            "create",
            "--company",
            &company,
            "--user",
            &user,
            "--product",
            &product,
            &format!("--referrer={REFERRER}"),
            "--format",
            "csv",
        ])
        .await;
    let escaped = cells(&created);
    assert_eq!(escaped["name"], format!("'{HYPERLINK}"));
    assert_eq!(escaped["username"], format!("'{USERNAME}"));
    assert_eq!(escaped["referrer"], format!("'{REFERRER}"));
    assert_eq!(escaped["product_title"], format!("'{PRODUCT}"));
    let id = escaped["id"].clone();
    assert!(id.starts_with("lead_"), "{id}");

    let listed = cli
        .run(&["list", "--company", &company, "--format", "csv"])
        .await;
    assert_eq!(listed, created, "list writes what create wrote");
    assert!(
        listed.contains(r#","'=HYPERLINK(""https://evil.example"",""Click"")","#),
        "escaped, then quoted as RFC 4180 says: {listed}"
    );

    let raw = cli
        .run(&[
            "list",
            "--company",
            &company,
            "--format",
            "csv",
            "--csv-raw",
        ])
        .await;
    let verbatim = cells(&raw);
    assert_eq!(verbatim["name"], HYPERLINK);
    assert_eq!(verbatim["username"], USERNAME);
    assert_eq!(verbatim["referrer"], REFERRER);
    assert_eq!(verbatim["product_title"], PRODUCT);
    assert!(
        raw.contains(r#","=HYPERLINK(""https://evil.example"",""Click"")","#),
        "{raw}"
    );

    let got = cli.run(&["get", &id, "--format", "csv"]).await;
    assert_eq!(got, created, "get escapes as list does");
    let got = cli.run(&["get", &id, "--format", "csv", "--csv-raw"]).await;
    assert_eq!(got, raw);

    let json: serde_json::Value = serde_json::from_str(&cli.run(&["get", &id]).await).unwrap();
    assert_eq!(json["user"]["name"], HYPERLINK, "only CSV is escaped");

    let help = cli.run(&["list", "--help"]).await;
    assert!(help.contains("--csv-raw"), "{help}");
    assert!(
        help.contains("a leading '") && help.contains("formula"),
        "the help says what is escaped and why: {help}"
    );
}
