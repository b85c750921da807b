//! Realistic synthetic data, fast: what `leads seed` writes.
//!
//! Leads are made in creation order and written in large batches, one transaction each, while
//! the next batch is being made, so seeding is bound by the database's insert speed.

use crate::auth::NewSecret;
use crate::domain::{CompanyId, KeyId, LeadId, MemberId, Permissions, ProductId, UserId};
use crate::storage::{
    ApiKey, Company, DirectoryStore, Member, Product, SeedBatch, SeedLead, StoreError, User,
};
use leads_types::Timestamp;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// How much to make.
#[derive(Debug, Clone, Copy)]
pub struct SeedOptions {
    pub companies: u32,
    pub leads_per_company: u32,
    pub products_per_company: u32,
}

/// What was made, for printing: each company with its key's secret.
#[derive(Debug, Serialize)]
pub struct SeedReport {
    pub companies: Vec<SeededCompany>,
}

#[derive(Debug, Serialize)]
pub struct SeededCompany {
    pub id: String,
    pub key: String,
    pub products: Vec<String>,
    pub leads: u64,
}

/// Leads written per transaction.
const BATCH: usize = 100_000;
/// Leads are spread over this many days before now.
const SPAN_DAYS: i64 = 180;

const FIRST_NAMES: &[&str] = &[
    "John", "Maria", "Wei", "Aisha", "Lucas", "Sofia", "Kenji", "Olga", "Diego", "Amara", "Noah",
    "Priya", "Mateo", "Yuki", "Fatima", "Liam",
];
const LAST_NAMES: &[&str] = &[
    "Doe", "Garcia", "Chen", "Okafor", "Silva", "Rossi", "Tanaka", "Ivanova", "Lopez", "Mensah",
    "Smith", "Patel", "Kim", "Haddad", "Novak", "Berg",
];
const PRODUCT_WORDS: &[&str] = &[
    "Pickaxe",
    "Analytics",
    "Signals",
    "Academy",
    "Pro",
    "Community",
    "Alerts",
    "Course",
    "Toolkit",
    "Insider",
    "Masterclass",
    "Club",
];
const REFERRERS: &[&str] = &[
    "https://twitter.com/whabormarket",
    "https://www.google.com/",
    "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
    "https://discord.gg/pickaxe",
    "https://www.instagram.com/",
    "https://news.ycombinator.com/",
    "https://www.tiktok.com/@creator",
    "https://newsletter.example.com/issue/42",
];
const SOURCES: &[&str] = &[
    "twitter",
    "google",
    "youtube",
    "discord",
    "newsletter",
    "tiktok",
];
const CAMPAIGNS: &[&str] = &[
    "black_friday",
    "launch",
    "webinar",
    "spring_sale",
    "referral",
];

/// Writes the data and reports it. `progress` hears how many leads were written so far.
pub async fn seed(
    store: &Arc<dyn DirectoryStore>,
    options: SeedOptions,
    mut progress: impl FnMut(u64),
) -> Result<SeedReport, StoreError> {
    let mut rng = SmallRng::from_os_rng();
    let now = Timestamp::now().as_millis();
    let run = crate::domain::ids::random_base62(6);

    // Companies, products and keys first, in one small batch.
    let mut head = SeedBatch::default();
    let mut report = SeedReport {
        companies: Vec::new(),
    };
    for c in 0..options.companies {
        let company = Company {
            id: CompanyId::generate().into_string(),
            title: format!(
                "{} {} {}",
                pick(&mut rng, LAST_NAMES),
                pick(&mut rng, PRODUCT_WORDS),
                c + 1
            ),
            created_at: ts(now - SPAN_DAYS * 86_400_000 - 1),
        };
        let mut products = Vec::new();
        for _ in 0..options.products_per_company {
            let product = Product {
                id: ProductId::generate().into_string(),
                company_id: company.id.clone(),
                title: format!(
                    "{} {}",
                    pick(&mut rng, PRODUCT_WORDS),
                    pick(&mut rng, PRODUCT_WORDS)
                ),
                created_at: company.created_at,
            };
            products.push(product.id.clone());
            head.products.push(product);
        }
        let secret = NewSecret::company_key();
        head.keys.push(ApiKey {
            id: KeyId::generate(),
            company_id: CompanyId::parse(&company.id).expect("generated"),
            permissions: Permissions::all(),
            created_at: company.created_at,
            revoked: false,
            secret_hash: secret.hash,
        });
        report.companies.push(SeededCompany {
            id: company.id.clone(),
            key: secret.secret,
            products,
            leads: u64::from(options.leads_per_company),
        });
        head.companies.push(company);
    }
    store.insert_seed(head).await?;

    // Users are shared across companies: user i is the i-th lead of every company, so a
    // company never has two leads of one user and users recur across companies.
    let mut written = 0u64;
    let mut pending: Option<JoinHandle<Result<u64, StoreError>>> = None;
    let mut user_ids: Vec<String> = Vec::new();
    let leads_per_company = options.leads_per_company as usize;
    for company in &report.companies {
        let mut clock = Clock::new(now, leads_per_company, &mut rng);
        let mut start = 0;
        while start < leads_per_company {
            let end = (start + BATCH).min(leads_per_company);
            let mut batch = SeedBatch::default();
            for i in start..end {
                if i == user_ids.len() {
                    let user = make_user(&mut rng, i, &run, now);
                    user_ids.push(user.id.clone());
                    batch.users.push(user);
                }
                let created_at = clock.next(&mut rng);
                let lead = make_lead(&mut rng, company, &user_ids[i], created_at);
                if rng.random_ratio(1, 10) {
                    batch.members.push(Member {
                        id: MemberId::generate().into_string(),
                        company_id: company.id.clone(),
                        user_id: user_ids[i].clone(),
                        created_at: ts(created_at
                            + rng.random_range(1..86_400_000).min(now - created_at).max(0)),
                    });
                }
                batch.leads.push(lead);
            }
            // Write the previous batch's result before queueing this one, so at most one
            // batch waits while the next is made.
            if let Some(handle) = pending.take() {
                written += finish(handle).await?;
                progress(written);
            }
            let store = store.clone();
            let count = batch.leads.len() as u64;
            pending = Some(tokio::spawn(async move {
                store.insert_seed(batch).await.map(|()| count)
            }));
            start = end;
        }
    }
    if let Some(handle) = pending.take() {
        written += finish(handle).await?;
        progress(written);
    }
    store.analyze().await?;
    Ok(report)
}

async fn finish(handle: JoinHandle<Result<u64, StoreError>>) -> Result<u64, StoreError> {
    handle
        .await
        .map_err(|e| StoreError::Internal(format!("seed writer failed: {e}")))?
}

/// Creation times from `SPAN_DAYS` ago to now, ascending, with many leads sharing a millisecond.
struct Clock {
    at: i64,
    mean_step: i64,
    now: i64,
}

impl Clock {
    fn new(now: i64, leads: usize, rng: &mut SmallRng) -> Self {
        let span = SPAN_DAYS * 86_400_000;
        Self {
            at: now - span + rng.random_range(0..1000),
            mean_step: (span / leads.max(1) as i64).max(1),
            now,
        }
    }

    fn next(&mut self, rng: &mut SmallRng) -> i64 {
        // About a quarter of leads arrive in the same millisecond as the one before; the other
        // steps are longer to make up for it, so the last lead lands close to now.
        if !rng.random_ratio(1, 4) {
            self.at += rng.random_range(1..=(8 * self.mean_step / 3).max(1));
        }
        self.at.min(self.now)
    }
}

fn pick<'a>(rng: &mut SmallRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

fn ts(millis: i64) -> Timestamp {
    Timestamp::from_millis(millis).expect("seed times are recent")
}

fn make_user(rng: &mut SmallRng, i: usize, run: &str, now: i64) -> User {
    let first = pick(rng, FIRST_NAMES);
    let last = pick(rng, LAST_NAMES);
    let username = format!("{}{}{i}_{run}", first.to_lowercase(), last.to_lowercase());
    User {
        id: UserId::generate().into_string(),
        email: Some(format!("{username}@example.com")),
        // Some users never told us their name.
        name: (!rng.random_ratio(1, 6)).then(|| format!("{first} {last}")),
        username,
        created_at: ts(now - SPAN_DAYS * 86_400_000 - 2),
    }
}

fn make_lead(rng: &mut SmallRng, company: &SeededCompany, user: &str, created_at: i64) -> SeedLead {
    // About 20% of leads came in without a product.
    let product = if company.products.is_empty() || rng.random_ratio(1, 5) {
        None
    } else {
        Some(company.products[rng.random_range(0..company.products.len())].clone())
    };
    let referrer = (!rng.random_ratio(1, 4)).then(|| pick(rng, REFERRERS).to_owned());
    let metadata = match rng.random_range(0..5) {
        0 => None,
        1 => Some("{}".to_owned()),
        2 => Some(format!(
            r#"{{"utm_source":"{}","utm_campaign":"{}"}}"#,
            pick(rng, SOURCES),
            pick(rng, CAMPAIGNS)
        )),
        3 => Some(format!(
            r#"{{"utm_source":"{}","landing_page":"/p/{}","score":{},"tags":["{}","warm"]}}"#,
            pick(rng, SOURCES),
            rng.random_range(1..500),
            rng.random_range(0..100),
            pick(rng, CAMPAIGNS)
        )),
        _ => Some(format!(
            r#"{{"form":{{"budget":"{}","team_size":{}}},"newsletter":{}}}"#,
            ["<1k", "1k-10k", ">10k"][rng.random_range(0..3)],
            rng.random_range(1..200),
            rng.random_bool(0.5)
        )),
    };
    SeedLead {
        id: LeadId::generate(),
        company_id: company.id.clone(),
        user_id: user.to_owned(),
        product_id: product,
        referrer,
        metadata,
        created_at,
    }
}
