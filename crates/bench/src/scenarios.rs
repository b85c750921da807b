//! The scenarios of the issue, as requests the load generator sends.

use crate::fixture::{Dataset, Expect};
use crate::load::{request, Workload};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

const DAY_MS: i64 = 86_400_000;

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: &'static str,
    /// What is sent, for the table.
    pub what: String,
    pub kind: Kind,
}

impl Scenario {
    /// Whether the issues set this scenario a latency target rather than a throughput one: a
    /// statistics series, a dashboard page, or a search's first page (#17: "first page p50
    /// under 20 ms", "`email=`: under 5 ms"). Those are measured from one connection, so p50 is
    /// what one request costs the server, not time queued behind 31 others.
    pub fn latency_target(&self) -> bool {
        match &self.kind {
            Kind::Stats { .. } | Kind::Page { .. } => true,
            Kind::List { query, .. } => query.contains("&query=") || query.contains("&email="),
            Kind::Create | Kind::Mixed { .. } => false,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Kind {
    /// `GET /api/v1/leads?{query}`, the same every time; the database alone can be measured on
    /// the same query.
    List { query: String, expect: Expect },
    /// `POST /api/v1/leads` with a distinct body every time.
    Create,
    /// Nine first pages, then one create, on every connection.
    Mixed { list_query: String },
    /// `GET {path}`, the same every time: a statistics series.
    Stats { path: String },
    /// A dashboard page, signed in with the big company's key: the leads page, or the page of
    /// the big company's newest lead.
    Page { page: DashboardPage },
}

/// Which dashboard page a [`Kind::Page`] renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DashboardPage {
    /// `/dashboard`: KPIs, the chart and breakdowns of the last 30 days, and 50 rows.
    Leads,
    /// `/dashboard/leads/{id}` of the newest lead.
    Lead,
}

/// The scenarios over `data`, given the cursor `deep` leads from the newest.
pub fn all(data: &Dataset, deep_cursor: &str, deep: u32, email: &str) -> Vec<Scenario> {
    let company = &data.big.id;
    let first = format!("company_id={company}&first=20");
    let products = &data.big.products;
    // Two products and a window of 60 days in the middle of the 180 the seed spans.
    let after = leads_types::Timestamp::from_millis(data.seeded_at - 120 * DAY_MS)
        .expect("recent")
        .to_string();
    let before = leads_types::Timestamp::from_millis(data.seeded_at - 60 * DAY_MS)
        .expect("recent")
        .to_string();
    let rare = rare_term(data.big.leads);
    let filtered = format!(
        "company_id={company}&first=20&product_ids%5B%5D={}&product_ids%5B%5D={}&created_after={after}&created_before={before}",
        products[0], products[1]
    );
    vec![
        Scenario {
            name: "first page",
            what: "`first=20`".into(),
            kind: Kind::List {
                query: first.clone(),
                expect: Expect {
                    min_leads: 20,
                    max_leads: 20,
                    has_next_page: Some(true),
                    has_previous_page: Some(false),
                },
            },
        },
        Scenario {
            name: "deep page",
            what: format!(
                "`first=20&after=` {} leads deep",
                crate::report::thousands(f64::from(deep))
            ),
            kind: Kind::List {
                query: format!("{first}&after={deep_cursor}"),
                expect: Expect {
                    min_leads: 20,
                    max_leads: 20,
                    has_next_page: Some(true),
                    has_previous_page: Some(true),
                },
            },
        },
        Scenario {
            name: "filtered",
            what: "2 `product_ids[]`, 60-day `created_after`/`created_before`".into(),
            kind: Kind::List {
                query: filtered,
                expect: Expect {
                    min_leads: 1,
                    max_leads: 20,
                    has_next_page: None,
                    has_previous_page: Some(false),
                },
            },
        },
        Scenario {
            name: "last page backwards",
            what: "`last=20`".into(),
            kind: Kind::List {
                query: format!("company_id={company}&last=20"),
                expect: Expect {
                    min_leads: 20,
                    max_leads: 20,
                    has_next_page: Some(false),
                    has_previous_page: Some(true),
                },
            },
        },
        // Searches (an extension). "www." is in four of the seed's eight referrers, and three
        // leads in four have one: about 37% of leads, through referrers alone.
        Scenario {
            name: "search rare",
            what: format!("`query={rare}` (one lead)"),
            kind: Kind::List {
                query: format!("{first}&query={rare}"),
                expect: Expect {
                    min_leads: 1,
                    max_leads: 1,
                    has_next_page: Some(false),
                    has_previous_page: Some(false),
                },
            },
        },
        Scenario {
            name: "search common",
            what: "`query=www.` (about 37% of leads)".into(),
            kind: Kind::List {
                query: format!("{first}&query=www."),
                expect: Expect {
                    min_leads: 20,
                    max_leads: 20,
                    has_next_page: Some(true),
                    has_previous_page: Some(false),
                },
            },
        },
        Scenario {
            name: "search none",
            what: "`query=zqxjv` (no lead)".into(),
            kind: Kind::List {
                query: format!("{first}&query=zqxjv"),
                expect: Expect {
                    min_leads: 0,
                    max_leads: 0,
                    has_next_page: Some(false),
                    has_previous_page: Some(false),
                },
            },
        },
        Scenario {
            name: "search email",
            what: "`email=` a user's address".into(),
            kind: Kind::List {
                // Seeded addresses are letters, digits, `_`, `.` and one `@`.
                query: format!("{first}&email={}", email.replace('@', "%40")),
                expect: Expect {
                    min_leads: 1,
                    max_leads: 20,
                    has_next_page: None,
                    has_previous_page: Some(false),
                },
            },
        },
        Scenario {
            name: "stats by day",
            what: "`new_leads`, two years by day".into(),
            kind: Kind::Stats {
                path: stats_path("new_leads", data, ""),
            },
        },
        Scenario {
            name: "stats by product",
            what: "`new_leads`, two years by day, `breakdown_by=product`".into(),
            kind: Kind::Stats {
                path: stats_path("new_leads", data, "&breakdown_by=product"),
            },
        },
        Scenario {
            name: "conversion by week",
            what: "`lead_conversion_rate`, two years by week".into(),
            kind: Kind::Stats {
                path: stats_path("lead_conversion_rate", data, "&interval=week"),
            },
        },
        Scenario {
            name: "leads page",
            what: "`/dashboard`: KPIs, chart and breakdowns of 30 days, 50 rows".into(),
            kind: Kind::Page {
                page: DashboardPage::Leads,
            },
        },
        Scenario {
            name: "lead page",
            what: "`/dashboard/leads/{id}`".into(),
            kind: Kind::Page {
                page: DashboardPage::Lead,
            },
        },
        Scenario {
            name: "create",
            what: "`POST`, distinct bodies".into(),
            kind: Kind::Create,
        },
        Scenario {
            name: "mixed",
            what: "90% first page, 10% create".into(),
            kind: Kind::Mixed { list_query: first },
        },
    ]
}

/// A term in the username and email of one user of the big company, which has `leads` leads.
/// The seed's usernames are `{first}{last}{i}_{run}`, where user `i` is the `i`-th lead of every
/// company; `{k}_` is in user `k`'s only, when `k` has as many digits as the largest `i` (any
/// other `i` ending in `k` is longer, so too large).
fn rare_term(leads: u64) -> String {
    let digits = (leads.max(2) - 1).to_string().len() as u32;
    let low = 10u64.pow(digits - 1);
    format!("{}_", low + (leads - low) / 3)
}

/// `GET /api/v1/stats/time_series/{metric}` of the big company over the two years up to the
/// seeding day (the seed spans the last 180 of them), by day in UTC unless `extra` says more.
fn stats_path(metric: &str, data: &Dataset, extra: &str) -> String {
    let day = |millis: i64| {
        leads_types::Timestamp::from_millis(millis)
            .expect("recent")
            .to_string()[..10]
            .to_owned()
    };
    format!(
        "/api/v1/stats/time_series/{metric}?account_id={}&from={}&to={}{extra}",
        data.big.id,
        day(data.seeded_at - 730 * DAY_MS),
        day(data.seeded_at)
    )
}

/// The same GET every time.
pub struct Get {
    addr: SocketAddr,
    path: String,
    key: String,
}

impl Get {
    pub fn new(addr: SocketAddr, data: &Dataset, query: &str) -> Self {
        Self::at(addr, data, format!("/api/v1/leads?{query}"))
    }

    /// Any path, with the big company's key.
    pub fn at(addr: SocketAddr, data: &Dataset, path: String) -> Self {
        Self {
            addr,
            path,
            key: data.big.key.clone(),
        }
    }
}

impl Workload for Get {
    fn request(&self, _: usize, _: u64) -> Request<Full<Bytes>> {
        request(Method::GET, self.addr, &self.path, &self.key, None)
    }
}

/// Creates with distinct bodies: four in five name a product, like seeded leads.
pub struct Create {
    addr: SocketAddr,
    key: String,
    company: String,
    user: String,
    products: Vec<String>,
    run: String,
    count: AtomicU64,
}

impl Create {
    pub fn new(addr: SocketAddr, data: &Dataset) -> Self {
        Self {
            addr,
            key: data.big.key.clone(),
            company: data.big.id.clone(),
            user: data.user.clone(),
            products: data.big.products.clone(),
            run: leads_server::domain::ids::random_base62(6),
            count: AtomicU64::new(0),
        }
    }
}

impl Workload for Create {
    fn request(&self, connection: usize, _: u64) -> Request<Full<Bytes>> {
        let n = self.count.fetch_add(1, Ordering::Relaxed);
        let mut body = serde_json::json!({
            "company_id": self.company,
            "user_id": self.user,
            "referrer": format!("https://bench.example/{}/{n}", self.run),
            "metadata": {
                "utm_source": "leads-bench",
                "run": self.run,
                "connection": connection,
                "n": n,
            },
        });
        if !n.is_multiple_of(5) && !self.products.is_empty() {
            body["product_id"] = self.products[n as usize % self.products.len()]
                .clone()
                .into();
        }
        let body = serde_json::to_vec(&body).expect("JSON");
        request(
            Method::POST,
            self.addr,
            "/api/v1/leads",
            &self.key,
            Some(body),
        )
    }
}

/// Nine lists, then one create, per connection: 10% creates overall.
pub struct Mixed {
    pub list: Get,
    pub create: Create,
}

impl Workload for Mixed {
    fn request(&self, connection: usize, sequence: u64) -> Request<Full<Bytes>> {
        if (sequence + connection as u64) % 10 == 9 {
            self.create.request(connection, sequence)
        } else {
            self.list.request(connection, sequence)
        }
    }
}

/// The same dashboard page every time, with one session's cookie.
pub struct Page {
    pub addr: SocketAddr,
    pub path: String,
    pub cookie: String,
}

impl Workload for Page {
    fn request(&self, _: usize, _: u64) -> Request<Full<Bytes>> {
        crate::load::page(self.addr, &self.path, &self.cookie)
    }
}
