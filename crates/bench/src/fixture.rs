//! The data a run measures on: seeded through the `leads` binary itself, then looked at
//! through the API (a cursor deep in the big company, checked answers for every scenario).

use crate::load::Client;
use crate::server;
use anyhow::{bail, ensure, Context, Result};
use leads_server::domain::KeyId;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// How much data to seed, and how deep the deep page is.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub big_leads: u32,
    pub small_companies: u32,
    pub small_leads: u32,
    pub products: u32,
    /// Leads before the deep page's first lead, newest first.
    pub deep: u32,
}

impl Sizes {
    pub const FULL: Sizes = Sizes {
        big_leads: 1_000_000,
        small_companies: 100,
        small_leads: 1_000,
        products: 10,
        deep: 900_000,
    };
    pub const SMOKE: Sizes = Sizes {
        big_leads: 2_000,
        small_companies: 3,
        small_leads: 100,
        products: 10,
        deep: 1_800,
    };
}

/// A company as `leads seed --json` reports it.
#[derive(Debug, Clone, Deserialize)]
pub struct SeededCompany {
    pub id: String,
    pub key: String,
    pub products: Vec<String>,
    pub leads: u64,
}

#[derive(Debug, Deserialize)]
struct SeedReport {
    companies: Vec<SeededCompany>,
}

/// A seeded database.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub database: String,
    /// The company with `big_leads` leads, which every scenario reads or writes.
    pub big: SeededCompany,
    /// The id of the big company's key, which the server re-checks in every list it serves
    /// once it remembers the key.
    pub big_key: KeyId,
    /// The user creates name.
    pub user: String,
    /// The secret cursors are keyed with, for parsing the scenarios' queries as the server does.
    pub cursor_secret: Vec<u8>,
    /// Wall time of `leads seed` for the big company, and for the small ones.
    pub seed_big: Duration,
    pub seed_small: Duration,
    /// When seeding began, in milliseconds: seeded leads span the 180 days before it.
    pub seeded_at: i64,
}

/// Seeds `database` (fresh) with the big company, then the small ones, timing each.
pub async fn seed(leads: &Path, database: &str, sizes: Sizes) -> Result<Dataset> {
    let seeded_at = leads_types::Timestamp::now().as_millis();
    let products = sizes.products.to_string();
    let seed = |companies: u32, per_company: u32| -> Result<(Vec<SeededCompany>, Duration)> {
        let started = Instant::now();
        let out = server::command(
            leads,
            database,
            &[
                "seed",
                "--companies",
                &companies.to_string(),
                "--leads-per-company",
                &per_company.to_string(),
                "--products-per-company",
                &products,
                "--json",
            ],
        )?;
        let elapsed = started.elapsed();
        let report: SeedReport = serde_json::from_str(&out).context("leads seed --json")?;
        Ok((report.companies, elapsed))
    };
    eprintln!("seeding 1 company with {} leads", sizes.big_leads);
    let (mut big, seed_big) = seed(1, sizes.big_leads)?;
    eprintln!("  {:.1} s", seed_big.as_secs_f64());
    eprintln!(
        "seeding {} companies with {} leads each",
        sizes.small_companies, sizes.small_leads
    );
    let (_, seed_small) = seed(sizes.small_companies, sizes.small_leads)?;
    eprintln!("  {:.1} s", seed_small.as_secs_f64());
    let big = big.pop().context("leads seed reported no company")?;
    let tag = leads_server::domain::ids::random_base62(8);
    let user = server::command(
        leads,
        database,
        &[
            "admin",
            "user",
            "create",
            "--username",
            &format!("bench_{tag}"),
            "--email",
            &format!("bench_{tag}@example.com"),
            "--name",
            "Bench Mark",
        ],
    )?;
    let stores = leads_server::storage::open(database).await?;
    let cursor_secret = stores.database.cursor_secret().await?;
    let big_key = stores
        .credentials
        .find_api_key(leads_server::auth::hash_secret(&big.key))
        .await?
        .context("the big company's key is not in the database")?
        .id;
    stores.database.close().await?;
    Ok(Dataset {
        database: database.to_owned(),
        big,
        big_key,
        user,
        cursor_secret,
        seed_big,
        seed_small,
        seeded_at,
    })
}

/// Makes the empty database `name` on the PostgreSQL server `admin_url` names, and answers a
/// connection to that server (to drop it afterwards) and the new database's URL.
pub async fn create_postgres_database(
    admin_url: &str,
    name: &str,
) -> Result<(tokio_postgres::Client, String)> {
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .context("cannot connect to PostgreSQL (set --postgres-url or LEADS_BENCH_DATABASE_URL)")?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .with_context(|| format!("CREATE DATABASE {name}"))?;
    Ok((client, with_database(admin_url, name)))
}

/// `url` naming the database `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, format!("?{query}")),
        None => (rest, String::new()),
    };
    let authority = rest
        .split_once('/')
        .map_or(rest, |(authority, _)| authority);
    format!("{scheme}://{authority}/{name}{query}")
}

/// The `after` cursor whose page starts `depth` leads from the newest of `company`, found by
/// walking backwards from the oldest lead with `last=100` pages (the fewest requests, as deep
/// pages are near the oldest end). Only the API is used: the cursor is one the server issued.
pub async fn deep_cursor(addr: SocketAddr, company: &SeededCompany, depth: u64) -> Result<String> {
    ensure!(
        (1..company.leads).contains(&depth),
        "depth {depth} is outside the company's {} leads",
        company.leads
    );
    let mut client = Client::new(addr, &company.key).await?;
    // The lead at `depth - 1` newest first is the one at `leads - depth` oldest first; the start
    // cursor of a page from the oldest end is that page's newest lead.
    let mut remaining = company.leads - depth + 1;
    let mut before: Option<String> = None;
    while remaining > 0 {
        let take = remaining.min(100);
        let mut path = format!("/api/v1/leads?company_id={}&last={take}", company.id);
        if let Some(cursor) = &before {
            path.push_str(&format!("&before={cursor}"));
        }
        let page = client.get_json(&path).await?;
        let got = page["data"].as_array().map_or(0, Vec::len) as u64;
        if got != take {
            bail!("walking to the deep cursor: {path} gave {got} leads, not {take}");
        }
        before = page["page_info"]["start_cursor"]
            .as_str()
            .map(str::to_owned);
        remaining -= take;
    }
    before.context("no cursor")
}

/// The email of the user of the big company's newest lead, for the `email=` scenario.
pub async fn an_email(addr: SocketAddr, company: &SeededCompany) -> Result<String> {
    let mut client = Client::new(addr, &company.key).await?;
    let page = client
        .get_json(&format!("/api/v1/leads?company_id={}&first=1", company.id))
        .await?;
    page["data"][0]["user"]["email"]
        .as_str()
        .map(str::to_owned)
        .context("the newest lead's user has no email")
}

/// What a list scenario's answer must look like, checked once before it is measured.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    pub min_leads: usize,
    pub max_leads: usize,
    pub has_next_page: Option<bool>,
    pub has_previous_page: Option<bool>,
}

/// GETs `path` once and checks the answer against `expect`.
pub async fn check(addr: SocketAddr, key: &str, path: &str, expect: Expect) -> Result<()> {
    let mut client = Client::new(addr, key).await?;
    let page = client.get_json(path).await?;
    let leads = page["data"].as_array().map_or(0, Vec::len);
    ensure!(
        (expect.min_leads..=expect.max_leads).contains(&leads),
        "{path} answered {leads} leads, expected {}..={}",
        expect.min_leads,
        expect.max_leads
    );
    for (name, want) in [
        ("has_next_page", expect.has_next_page),
        ("has_previous_page", expect.has_previous_page),
    ] {
        if let Some(want) = want {
            ensure!(
                page["page_info"][name] == want,
                "{path} answered {name} = {}, expected {want}",
                page["page_info"][name]
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn a_database_url_is_pointed_at_another_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "b"),
            "postgres://postgres@127.0.0.1:5432/b"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?connect_timeout=5", "b"),
            "postgresql://u:p@h/b?connect_timeout=5"
        );
        assert_eq!(with_database("postgres://h", "b"), "postgres://h/b");
    }
}
