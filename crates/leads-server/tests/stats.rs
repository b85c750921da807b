//! `GET /api/v1/stats/time_series`: every value checked against counts made independently from a
//! full walk of `GET /leads`, in zones with half- and quarter-hour offsets and across
//! daylight-saving changes; and every way to ask wrongly.

mod common;

use chrono::{Datelike, Duration, NaiveDate, TimeZone, Timelike};
use chrono_tz::Tz;
use common::{enc, rfc3339, Company, TestApp};
use leads_server::domain::{LeadId, Timestamp, UserId};
use leads_server::storage::{Member, SeedBatch, SeedLead, User};
use leads_server::{admin, domain::MemberId};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;

conformance!(
    the_catalog_lists_the_three_lead_metrics,
    every_series_matches_counts_from_a_full_walk_in_every_zone,
    new_lead_totals_equal_the_leads_a_filtered_walk_returns,
    a_conversion_raises_the_cohort_its_leads_were_created_in,
    a_lead_created_while_its_user_becomes_a_member_is_counted_converted,
    erasing_a_lead_or_changing_its_referrer_moves_its_counts,
    a_lead_created_between_two_calls_shows_in_the_second_and_a_replay_counts_once,
    counts_written_ahead_answer_the_same_before_and_after_they_are_folded,
    bad_parameters_are_refused_naming_each,
    another_companys_statistics_are_forbidden,
    the_python_sdk_lists_and_retrieves_every_metric,
);

/// Referrers the fixture uses, with the host each must be counted under.
const REFERRERS: [(Option<&str>, &str); 5] = [
    (Some("https://Twitter.com/whop"), "twitter.com"),
    (
        Some("https://www.google.com/search?q=leads"),
        "www.google.com",
    ),
    (None, "none"),
    (Some("x.com/path"), "x.com"),
    (
        Some("https://user@News.YCombinator.com:443/item"),
        "news.ycombinator.com",
    ),
];

fn ms(text: &str) -> i64 {
    Timestamp::parse(text).expect("instant").as_millis()
}

fn zone(name: &str) -> Tz {
    name.parse().expect("zone")
}

/// Local midnight of `date` in `zone` (none of the zones used skips midnight).
fn midnight(zone: Tz, date: NaiveDate) -> i64 {
    zone.with_ymd_and_hms(date.year(), date.month(), date.day(), 0, 0, 0)
        .earliest()
        .expect("midnight exists")
        .timestamp_millis()
}

/// Lead times that sit on and beside the period boundaries of every zone the tests use, on
/// both sides of New York's changes, and scattered over the weeks around them.
fn fixture_times() -> Vec<i64> {
    let mut times = Vec::new();
    let dates = (4..=17)
        .map(|d| NaiveDate::from_ymd_opt(2024, 3, d).unwrap())
        .chain((1..=6).map(|d| NaiveDate::from_ymd_opt(2024, 11, d).unwrap()));
    for date in dates {
        for name in ["UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/New_York"] {
            let m = midnight(zone(name), date);
            times.extend([m - 1, m]);
        }
    }
    times.extend([
        ms("2024-03-10T06:59:59.999Z"),
        ms("2024-03-10T07:00:00Z"),
        ms("2024-11-03T05:30:00Z"),
        ms("2024-11-03T05:59:59.999Z"),
        ms("2024-11-03T06:00:00Z"),
        ms("2024-11-03T06:30:00Z"),
    ]);
    let mut state: u64 = 0x5eed;
    for i in 0..160 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let (start, days) = if i % 2 == 0 {
            (ms("2024-03-03T00:00:00Z"), 16)
        } else {
            (ms("2024-10-31T00:00:00Z"), 8)
        };
        times.push(start + (state >> 11) as i64 % (days * 86_400_000));
    }
    times
}

/// The fixture: leads over three products and none, five referrers, some of whose users
/// became members in the seed itself and some (through `admin member create`) afterwards.
async fn fixture(app: &TestApp) -> Company {
    let company = app.company(3, None).await;
    let mut batch = SeedBatch::default();
    let mut later_members = Vec::new();
    for (i, created_at) in fixture_times().into_iter().enumerate() {
        let user = User {
            id: UserId::generate().into_string(),
            username: format!("u{}", leads_server::domain::ids::random_base62(10)),
            email: Some("someone@example.com".into()),
            name: None,
            created_at: Timestamp::from_millis(created_at).unwrap(),
        };
        batch.leads.push(SeedLead {
            id: LeadId::generate(),
            company_id: company.id.clone(),
            user_id: user.id.clone(),
            product_id: (i % 4 < 3).then(|| company.products[i % 4].clone()),
            referrer: REFERRERS[i % 5].0.map(str::to_owned),
            metadata: None,
            created_at,
        });
        if i % 7 == 1 {
            batch.members.push(Member {
                id: MemberId::generate().into_string(),
                company_id: company.id.clone(),
                user_id: user.id.clone(),
                created_at: Timestamp::now(),
            });
        } else if i % 3 == 0 {
            later_members.push(user.id.clone());
        }
        batch.users.push(user);
    }
    app.stores.directory.insert_seed(batch).await.expect("seed");
    for user in later_members {
        admin::create_member(app.stores.directory.as_ref(), &company.id, &user)
            .await
            .expect("member");
    }
    company
}

/// A lead as a full walk of `GET /leads` shows it.
#[derive(Debug, Clone)]
struct Walked {
    created_at: i64,
    product: String,
    host: String,
    converted: bool,
}

/// Every lead of `query`, walked page by page.
async fn walk(app: &TestApp, key: &str, query: &str) -> Vec<Walked> {
    let mut leads = Vec::new();
    let mut after = String::new();
    loop {
        let page = app.list(key, &format!("{query}&first=100{after}")).await;
        for lead in page.body["data"].as_array().unwrap() {
            let referrer = lead["referrer"].as_str();
            leads.push(Walked {
                created_at: ms(lead["created_at"].as_str().unwrap()),
                product: lead["product"]["id"].as_str().unwrap_or("none").to_owned(),
                host: REFERRERS.iter().find(|(r, _)| *r == referrer).map_or_else(
                    || panic!("unexpected referrer {referrer:?}"),
                    |(_, h)| (*h).to_owned(),
                ),
                converted: !lead["member"].is_null(),
            });
        }
        match page.end_cursor {
            Some(cursor) if !page.ids.is_empty() => after = format!("&after={cursor}"),
            _ => return leads,
        }
    }
}

/// Period starts of `interval` in `zone` covering `[from, to)`, made directly from the zone's
/// wall clock.
fn expected_starts(zone: Tz, from: i64, to: i64, interval: &str) -> Vec<i64> {
    let local = |at: i64| {
        chrono::DateTime::from_timestamp_millis(at)
            .unwrap()
            .with_timezone(&zone)
    };
    let mut starts = Vec::new();
    match interval {
        "hour" => {
            let l = local(from);
            let mut at = from
                - (i64::from(l.minute()) * 60_000 + i64::from(l.second()) * 1000)
                - i64::from(l.timestamp_subsec_millis());
            while at < to {
                starts.push(at);
                at += 3_600_000;
            }
        }
        "day" | "week" => {
            let mut date = local(from).date_naive();
            if interval == "week" {
                date -= Duration::days(i64::from(date.weekday().num_days_from_monday()));
            }
            let step = if interval == "week" { 7 } else { 1 };
            while midnight(zone, date) < to {
                starts.push(midnight(zone, date));
                date += Duration::days(step);
            }
        }
        _ => unreachable!("the tests use hours, days and weeks"),
    }
    starts
}

/// What a metric's value is over `(leads, converted)`.
fn value(metric: &str, (leads, converted): (i64, i64)) -> Value {
    match metric {
        "new_leads" => json!(leads as f64),
        "converted_leads" => json!(converted as f64),
        _ if leads == 0 => Value::Null,
        _ => json!(converted as f64 * 100.0 / leads as f64),
    }
}

fn number(v: &Value) -> Value {
    v.as_f64().map_or(Value::Null, |f| json!(f))
}

/// Checks one series against counts made from `leads`.
#[allow(clippy::too_many_arguments)]
async fn check_series(
    app: &TestApp,
    company: &Company,
    leads: &[Walked],
    zone_name: &str,
    from: &str,
    to: &str,
    (window_from, window_to): (i64, i64),
    interval: &str,
) {
    let starts = expected_starts(zone(zone_name), window_from, window_to, interval);
    for metric in ["new_leads", "converted_leads", "lead_conversion_rate"] {
        for breakdown in [None, Some("product"), Some("referrer")] {
            let query = format!(
                "account_id={}&from={}&to={}&interval={interval}&time_zone={}{}",
                company.id,
                enc(from),
                enc(to),
                enc(zone_name),
                breakdown
                    .map(|b| format!("&breakdown_by={b}"))
                    .unwrap_or_default()
            );
            let (status, body) = app
                .get(
                    &format!("/api/v1/stats/time_series/{metric}?{query}"),
                    Some(&company.key),
                )
                .await;
            let what = format!("{metric} {query}");
            assert_eq!(status, StatusCode::OK, "{what}: {body}");
            let points = body["data"]["points"].as_array().expect("points");
            assert_eq!(points.len(), starts.len(), "{what}: one point per period");
            let mut totals: BTreeMap<String, (i64, i64)> = BTreeMap::new();
            let mut all = (0, 0);
            for (i, point) in points.iter().enumerate() {
                let (start, end) = (starts[i], starts.get(i + 1).copied().unwrap_or(i64::MAX));
                assert_eq!(
                    point["timestamp"],
                    json!(start / 1000),
                    "{what}: point {i} starts"
                );
                let inside: Vec<&Walked> = leads
                    .iter()
                    .filter(|l| {
                        l.created_at >= start.max(window_from) && l.created_at < end.min(window_to)
                    })
                    .collect();
                let count = |ls: &[&Walked]| {
                    (
                        ls.len() as i64,
                        ls.iter().filter(|l| l.converted).count() as i64,
                    )
                };
                let whole = count(&inside);
                all = (all.0 + whole.0, all.1 + whole.1);
                assert_eq!(
                    number(&point["value"]),
                    value(metric, whole),
                    "{what}: point {i} value"
                );
                let Some(property) = breakdown else {
                    assert!(point.get("breakdown").is_none(), "{what}");
                    continue;
                };
                let mut groups: BTreeMap<String, Vec<&Walked>> = BTreeMap::new();
                for lead in &inside {
                    let name = if property == "product" {
                        &lead.product
                    } else {
                        &lead.host
                    };
                    groups.entry(name.clone()).or_default().push(lead);
                }
                let expected: Vec<Value> = groups
                    .iter()
                    .map(|(name, ls)| {
                        let c = count(ls);
                        let total = totals.entry(name.clone()).or_default();
                        *total = (total.0 + c.0, total.1 + c.1);
                        json!({"name": name, "value": value(metric, c)})
                    })
                    .collect();
                let got: Vec<Value> = point["breakdown"]
                    .as_array()
                    .expect("breakdown")
                    .iter()
                    .map(|b| json!({"name": b["name"], "value": number(&b["value"])}))
                    .collect();
                assert_eq!(got, expected, "{what}: point {i} breakdown");
            }
            assert!(
                all.0 > 0 && all.1 > 0,
                "{what}: the window holds converted leads"
            );
            let expected_totals: Vec<Value> = match breakdown {
                None => vec![json!({"name": metric, "value": value(metric, all)})],
                Some(_) => totals
                    .iter()
                    .map(|(name, c)| json!({"name": name, "value": value(metric, *c)}))
                    .collect(),
            };
            let got_totals: Vec<Value> = body["data"]["totals"]
                .as_array()
                .expect("totals")
                .iter()
                .map(|t| json!({"name": t["name"], "value": number(&t["value"])}))
                .collect();
            assert_eq!(got_totals, expected_totals, "{what}: totals");
        }
    }
}

async fn the_catalog_lists_the_three_lead_metrics(app: TestApp) {
    let company = app.company(0, None).await;
    let (status, body) = app
        .get("/api/v1/stats/time_series", Some(&company.key))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let metrics = body["data"].as_array().unwrap();
    let keys: Vec<&str> = metrics.iter().map(|m| m["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        ["new_leads", "converted_leads", "lead_conversion_rate"]
    );
    let units: Vec<&str> = metrics
        .iter()
        .map(|m| m["unit"].as_str().unwrap())
        .collect();
    assert_eq!(units, ["count", "count", "percent"]);
    for metric in metrics {
        assert_eq!(metric["properties"], json!(["product", "referrer"]));
        assert!(metric["name"].is_string() && metric["description"].is_string());
    }
    let (status, _) = app.get("/api/v1/stats/time_series", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn every_series_matches_counts_from_a_full_walk_in_every_zone(app: TestApp) {
    let company = fixture(&app).await;
    let leads = walk(&app, &company.key, &format!("company_id={}", company.id)).await;
    assert!(leads.iter().any(|l| l.converted) && leads.iter().any(|l| !l.converted));
    let dates = |zone_name: &str, from: &str, to: &str| {
        let z = zone(zone_name);
        let date = |t: &str| NaiveDate::parse_from_str(t, "%Y-%m-%d").unwrap();
        (
            midnight(z, date(from)),
            midnight(z, date(to) + Duration::days(1)),
        )
    };
    let cases = [
        ("UTC", "2024-03-04", "2024-03-17", "day"),
        ("UTC", "2024-03-04", "2024-03-17", "week"),
        ("UTC", "2024-03-09", "2024-03-10", "hour"),
        ("Asia/Kolkata", "2024-03-04", "2024-03-17", "day"),
        ("Asia/Kolkata", "2024-03-09", "2024-03-10", "hour"),
        ("Asia/Kathmandu", "2024-03-04", "2024-03-17", "day"),
        ("Asia/Kathmandu", "2024-03-09", "2024-03-10", "hour"),
        ("America/New_York", "2024-03-08", "2024-03-12", "day"),
        ("America/New_York", "2024-03-09", "2024-03-10", "hour"),
        ("America/New_York", "2024-03-04", "2024-03-17", "week"),
        ("America/New_York", "2024-11-01", "2024-11-05", "day"),
        ("America/New_York", "2024-11-02", "2024-11-03", "hour"),
    ];
    for (zone_name, from, to, interval) in cases {
        let window = dates(zone_name, from, to);
        check_series(
            &app, &company, &leads, zone_name, from, to, window, interval,
        )
        .await;
    }
    // Instants used exactly: edges inside quarter hours and inside periods.
    for (zone_name, from, to, interval) in [
        (
            "America/New_York",
            "2024-03-09T13:07:00.500Z",
            "2024-03-11T09:59:59.001Z",
            "day",
        ),
        (
            "Asia/Kathmandu",
            "2024-11-02T18:14:59.999Z",
            "2024-11-03T07:00:00.001Z",
            "hour",
        ),
    ] {
        let window = (ms(from), ms(to));
        check_series(
            &app, &company, &leads, zone_name, from, to, window, interval,
        )
        .await;
    }
}

async fn new_lead_totals_equal_the_leads_a_filtered_walk_returns(app: TestApp) {
    let company = fixture(&app).await;
    let (from, to) = ("2024-03-05T10:00:00Z", "2024-03-14T16:45:00Z");
    let total = |body: &Value| body["data"]["totals"][0]["value"].as_f64().unwrap() as usize;
    let bounds = format!(
        "created_after={}&created_before={}",
        enc(&rfc3339(ms(from) - 1)),
        enc(to)
    );
    let mut products: Vec<Option<&String>> = company.products.iter().map(Some).collect();
    products.push(None);
    for product in products {
        let (filter, list_filter) = match product {
            Some(p) => (format!("&product={p}"), format!("&product_ids[]={p}")),
            None => (String::new(), String::new()),
        };
        let (status, body) = app
            .get(
                &format!(
                    "/api/v1/stats/time_series/new_leads?company_id={}&from={}&to={}{filter}",
                    company.id,
                    enc(from),
                    enc(to)
                ),
                Some(&company.key),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let walked = walk(
            &app,
            &company.key,
            &format!("company_id={}&{bounds}{list_filter}", company.id),
        )
        .await;
        assert!(!walked.is_empty());
        assert_eq!(total(&body), walked.len(), "product {product:?}");
    }
}

async fn a_conversion_raises_the_cohort_its_leads_were_created_in(app: TestApp) {
    let company = app.company(1, None).await;
    let user = app.user().await;
    let created_at = ms("2024-03-10T06:30:00Z"); // 01:30 in New York, the night clocks go forward
    let mut batch = SeedBatch::default();
    batch.leads.push(SeedLead {
        id: LeadId::generate(),
        company_id: company.id.clone(),
        user_id: user.id.clone(),
        product_id: Some(company.products[0].clone()),
        referrer: None,
        metadata: None,
        created_at,
    });
    app.stores.directory.insert_seed(batch).await.expect("seed");
    let series = |metric: &'static str| {
        let (app, company) = (&app, &company);
        async move {
            let (status, body) = app
                .get(
                    &format!(
                        "/api/v1/stats/time_series/{metric}?account_id={}&from=2024-03-09&to=2024-03-11&time_zone=America/New_York",
                        company.id
                    ),
                    Some(&company.key),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["data"]["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["value"].clone())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        series("converted_leads").await,
        [json!(0.0), json!(0.0), json!(0.0)]
    );
    assert_eq!(
        series("lead_conversion_rate").await,
        [Value::Null, json!(0.0), Value::Null]
    );
    admin::create_member(app.stores.directory.as_ref(), &company.id, &user.id)
        .await
        .expect("member");
    assert_eq!(
        series("converted_leads").await,
        [json!(0.0), json!(1.0), json!(0.0)]
    );
    assert_eq!(
        series("new_leads").await,
        [json!(0.0), json!(1.0), json!(0.0)]
    );
    assert_eq!(
        series("lead_conversion_rate").await,
        [Value::Null, json!(100.0), Value::Null]
    );
}

/// The whole-window total of `metric` for `company`, with `extra` parameters (`&product=...`).
async fn metric_total(app: &TestApp, company: &Company, metric: &str, extra: &str) -> f64 {
    let (status, body) = app
        .get(
            &format!(
                "/api/v1/stats/time_series/{metric}?company_id={}&from=2000-01-01&to=2100-01-01&interval=year{extra}",
                company.id
            ),
            Some(&company.key),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]["totals"][0]["value"].as_f64().unwrap()
}

async fn a_lead_created_while_its_user_becomes_a_member_is_counted_converted(app: TestApp) {
    // Each user gets a lead at the very moment they become a member: whichever commits first,
    // the lead ends converted, and is counted so exactly once.
    let company = app.company(1, None).await;
    let mut users = Vec::new();
    for _ in 0..60 {
        users.push(app.user().await);
    }
    let mut racing = tokio::task::JoinSet::new();
    for user in &users {
        let (app_base, key, company_id, user_id) = (
            app.base.clone(),
            company.key.clone(),
            company.id.clone(),
            user.id.clone(),
        );
        let http = reqwest::Client::new();
        racing.spawn(async move {
            let response = http
                .post(format!("{app_base}/api/v1/leads"))
                .bearer_auth(&key)
                .json(&json!({"company_id": company_id, "user_id": user_id}))
                .send()
                .await
                .expect("create");
            assert_eq!(response.status(), StatusCode::OK);
        });
        let (directory, company_id, user_id) = (
            app.stores.directory.clone(),
            company.id.clone(),
            user.id.clone(),
        );
        racing.spawn(async move {
            admin::create_member(directory.as_ref(), &company_id, &user_id)
                .await
                .expect("member");
        });
    }
    while let Some(done) = racing.join_next().await {
        done.expect("a racing task");
    }
    let walked = walk(&app, &company.key, &format!("company_id={}", company.id)).await;
    assert_eq!(walked.len(), users.len());
    assert!(
        walked.iter().all(|lead| lead.converted),
        "every user is a member"
    );
    assert_eq!(metric_total(&app, &company, "new_leads", "").await, 60.0);
    assert_eq!(
        metric_total(&app, &company, "converted_leads", "").await,
        60.0,
        "a lead counted unconverted though its user is a member"
    );
}

async fn erasing_a_lead_or_changing_its_referrer_moves_its_counts(app: TestApp) {
    let company = app.company(0, None).await;
    let mut made = Vec::new();
    for referrer in ["https://a.example/", "https://b.example/"] {
        let user = app.user().await;
        let (status, _, lead) = app
            .send(
                Method::POST,
                "/api/v1/leads",
                &company.key,
                Some(&json!({"company_id": company.id, "user_id": user.id, "referrer": referrer})),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{lead}");
        made.push(lead["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        metric_total(&app, &company, "new_leads", "&referrer=a.example").await,
        1.0
    );
    let (status, _, _) = app
        .send(
            Method::PATCH,
            &format!("/api/v1/leads/{}", made[0]),
            &company.key,
            Some(&json!({"referrer": "https://B.example/other"})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        metric_total(&app, &company, "new_leads", "&referrer=a.example").await,
        0.0
    );
    assert_eq!(
        metric_total(&app, &company, "new_leads", "&referrer=b.example").await,
        2.0
    );
    let (status, _, _) = app
        .send(
            Method::PATCH,
            &format!("/api/v1/leads/{}", made[1]),
            &company.key,
            Some(&json!({"referrer": null})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        metric_total(&app, &company, "new_leads", "&referrer=none").await,
        1.0
    );
    admin::delete_lead(app.stores.leads.as_ref(), &made[0])
        .await
        .expect("delete");
    assert_eq!(metric_total(&app, &company, "new_leads", "").await, 1.0);
    assert_eq!(
        metric_total(&app, &company, "new_leads", "&referrer=b.example").await,
        0.0
    );
}

async fn a_lead_created_between_two_calls_shows_in_the_second_and_a_replay_counts_once(
    app: TestApp,
) {
    let company = app.company(1, None).await;
    assert_eq!(metric_total(&app, &company, "new_leads", "").await, 0.0);
    let user = app.user().await;
    let body =
        json!({"company_id": company.id, "user_id": user.id, "product_id": company.products[0]});
    for _ in 0..2 {
        let (status, _, lead) = app
            .send(
                Method::POST,
                "/api/v1/leads",
                &company.key,
                Some(&body),
                &[("Idempotency-Key", "once")],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{lead}");
    }
    assert_eq!(metric_total(&app, &company, "new_leads", "").await, 1.0);
    let product = format!("&product={}", company.products[0]);
    assert_eq!(
        metric_total(&app, &company, "new_leads", &product).await,
        1.0
    );
    assert_eq!(
        metric_total(&app, &company, "new_leads", "&product=none").await,
        0.0
    );
    // Minutes read the leads themselves: the same lead shows there too.
    let now = Timestamp::now().as_millis();
    let (status, series) = app
        .get(
            &format!(
                "/api/v1/stats/time_series/new_leads?company_id={}&from={}&to={}&interval=minute",
                company.id,
                enc(&rfc3339(now - 3_600_000)),
                enc(&rfc3339(now + 60_000))
            ),
            Some(&company.key),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{series}");
    // From the minute an hour ago to the minute after this one (61 when now is on the minute).
    let points = series["data"]["points"].as_array().unwrap().len();
    assert!((61..=62).contains(&points), "{points} points");
    assert_eq!(series["data"]["totals"][0]["value"], json!(1.0));
}

/// PostgreSQL creates count a lead in `lead_count_deltas`, folded into `lead_counts` later
/// (SQLite counts it in `lead_counts` at once, and its fold moves nothing): every answer is the
/// same on either side of a fold, after a conversion and an erasure that may come before the
/// counts they change were folded.
async fn counts_written_ahead_answer_the_same_before_and_after_they_are_folded(app: TestApp) {
    let company = app.company(2, None).await;
    let users = [app.user().await, app.user().await, app.user().await];
    let mut made = Vec::new();
    for (i, user) in users.iter().enumerate() {
        for referrer in ["https://a.example/x", "https://b.example/y"] {
            let (status, _, lead) = app
                .send(
                    Method::POST,
                    "/api/v1/leads",
                    &company.key,
                    Some(&json!({"company_id": company.id, "user_id": user.id,
                                 "product_id": company.products[i % 2], "referrer": referrer})),
                    &[],
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{lead}");
            made.push(lead["id"].as_str().unwrap().to_owned());
        }
    }
    admin::create_member(app.stores.directory.as_ref(), &company.id, &users[0].id)
        .await
        .expect("member");
    admin::delete_lead(app.stores.leads.as_ref(), &made[5])
        .await
        .expect("delete");
    let now = Timestamp::now().as_millis();
    let answers = || {
        let (app, company) = (&app, &company);
        async move {
            let mut all = Vec::new();
            for (metric, extra) in [
                ("new_leads", "&interval=hour&breakdown_by=product"),
                ("converted_leads", "&interval=day&breakdown_by=referrer"),
                (
                    "lead_conversion_rate",
                    "&interval=thirty_minutes&time_zone=Asia/Kathmandu",
                ),
            ] {
                let (status, body) = app
                    .get(
                        &format!(
                            "/api/v1/stats/time_series/{metric}?company_id={}&from={}&to={}{extra}",
                            company.id,
                            enc(&rfc3339(now - 86_400_000)),
                            enc(&rfc3339(now + 3_600_000)),
                        ),
                        Some(&company.key),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "{body}");
                all.push(body);
            }
            all
        }
    };
    let before = answers().await;
    // With a breakdown, `totals` has one entry per product or host.
    let total = |answer: &Value| -> f64 {
        answer["data"]["totals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["value"].as_f64().unwrap())
            .sum()
    };
    assert_eq!(total(&before[0]), 5.0, "{}", before[0]);
    assert_eq!(total(&before[1]), 2.0, "{}", before[1]);
    app.stores.stats.fold_lead_counts().await.expect("fold");
    assert_eq!(app.stores.stats.fold_lead_counts().await.expect("fold"), 0);
    assert_eq!(answers().await, before);
}

async fn bad_parameters_are_refused_naming_each(app: TestApp) {
    let company = app.company(0, None).await;
    let ok = format!("company_id={}&from=2024-01-01&to=2024-01-31", company.id);
    let cases = [
        (
            "/api/v1/stats/time_series/revenue".to_owned(),
            ok.clone(),
            "metric",
        ),
        (
            "/api/v1/stats/time_series/new_leads".into(),
            format!("{ok}&interval=fortnight"),
            "interval",
        ),
        (
            "/api/v1/stats/time_series/new_leads".into(),
            format!("{ok}&time_zone=Mars/Olympus"),
            "time_zone",
        ),
        (
            "/api/v1/stats/time_series/new_leads".into(),
            format!("{ok}&breakdown_by=country"),
            "breakdown_by",
        ),
        (
            "/api/v1/stats/time_series/new_leads".into(),
            format!("{ok}&time_zone=Europe%2FZ%FCrich"),
            "time_zone",
        ),
        (
            "/api/v1/stats/time_series/new_leads".into(),
            format!("{ok}&product={}", "p".repeat(256)),
            "product",
        ),
        (
            "/api/v1/stats/time_series/new_leads".into(),
            "from=2024-01-01&to=2024-01-31".into(),
            "account_id",
        ),
        (
            "/api/v1/stats/time_series/new_leads".into(),
            format!(
                "company_id={}&from=2024-01-01&to=2024-01-02",
                "b".repeat(256)
            ),
            "company_id",
        ),
        (
            "/api/v1/stats/time_series/new_leads".into(),
            format!("company_id={}&to=2024-01-31", company.id),
            "from",
        ),
        (
            "/api/v1/stats/time_series/new_leads".into(),
            format!("company_id={}&from=2024-01-01", company.id),
            "to",
        ),
        (
            "/api/v1/stats/time_series/new_leads".into(),
            format!("company_id={}&from=2024-02-30&to=2024-03-01", company.id),
            "from",
        ),
        (
            "/api/v1/stats/time_series/new_leads".into(),
            format!("company_id={}&from=2024-01-01&to=yesterday", company.id),
            "to",
        ),
        (
            "/api/v1/stats/time_series/new_leads".into(),
            format!("company_id={}&from=2024-02-01&to=2024-01-01", company.id),
            "to",
        ),
        (
            "/api/v1/stats/time_series/new_leads".into(),
            format!("{ok}&interval=minute"),
            "interval",
        ),
    ];
    for (path, query, param) in cases {
        let (status, body) = app
            .get(&format!("{path}?{query}"), Some(&company.key))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}?{query}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
        assert_eq!(body["error"]["param"], param, "{path}?{query}: {body}");
    }
    // Exactly 10,000 points is allowed.
    let (status, body) = app
        .get(
            &format!(
                "/api/v1/stats/time_series/new_leads?company_id={}&from=2024-01-01T00:00:00Z&to={}&interval=minute",
                company.id,
                enc("2024-01-07T22:40:00Z")
            ),
            Some(&company.key),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["points"].as_array().unwrap().len(), 10_000);
}

async fn another_companys_statistics_are_forbidden(app: TestApp) {
    let mine = app.company(0, None).await;
    let theirs = fixture(&app).await;
    let path = format!(
        "/api/v1/stats/time_series/new_leads?account_id={}&from=2024-03-01&to=2024-03-31",
        theirs.id
    );
    let (status, body) = app.get(&path, Some(&mine.key)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["type"], "forbidden");
    let (status, _) = app.get(&path, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let reader = app
        .key(&mine, Some("lead:basic:read,member:basic:read"))
        .await;
    let (status, body) = app
        .get(
            &format!(
                "/api/v1/stats/time_series/new_leads?account_id={}&from=2024-03-01&to=2024-03-31",
                mine.id
            ),
            Some(&reader),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("access_pass:basic:read"));
    // Their own leads stay theirs: my empty company counts none.
    assert_eq!(metric_total(&app, &mine, "new_leads", "").await, 0.0);
    assert!(metric_total(&app, &theirs, "new_leads", "").await > 0.0);
    // Ids that name nothing are answered like any unknown id: a company that does not exist is
    // one the key may not act for, and a product that does not exist counts no lead.
    let (status, body) = app
        .get(
            "/api/v1/stats/time_series/new_leads?account_id=biz_nope&from=2024-03-01&to=2024-03-31",
            Some(&mine.key),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        metric_total(&app, &theirs, "new_leads", "&product=shoes").await,
        0.0
    );
}

/// The official Python SDK 2.6.0, unchanged: `client.stats.time_series.list()` and
/// `.retrieve(metric, from_=..., to=..., account_id=..., interval=..., breakdown_by=...,
/// time_zone=...)`, each answer parsed into its models and compared with the plain HTTP answer
/// (itself checked against a full walk above); and past a rate limit it waits and succeeds.
async fn the_python_sdk_lists_and_retrieves_every_metric(mut app: TestApp) {
    let company = fixture(&app).await;
    let sdk = common::Sdk::Python;
    let Some(listed) = sdk.run(&app, &company.key, "stats_list", json!({})).await else {
        return;
    };
    assert_eq!(listed["status"], 200, "{listed}");
    let keys: Vec<&str> = listed["parsed"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["new_leads", "converted_leads", "lead_conversion_rate"]
    );
    let windows = [
        ("UTC", "2024-03-04", "2024-03-17", "week"),
        ("Asia/Kolkata", "2024-03-08", "2024-03-11", "day"),
        ("Asia/Kathmandu", "2024-03-09", "2024-03-09", "hour"),
        ("America/New_York", "2024-11-01", "2024-11-05", "day"),
    ];
    for (zone_name, from, to, interval) in windows {
        for metric in ["new_leads", "converted_leads", "lead_conversion_rate"] {
            for breakdown in [None, Some("product"), Some("referrer")] {
                let mut params = json!({"from": from, "to": to, "account_id": company.id,
                    "interval": interval, "time_zone": zone_name});
                let mut query = format!(
                    "account_id={}&from={from}&to={to}&interval={interval}&time_zone={}",
                    company.id,
                    enc(zone_name)
                );
                if let Some(b) = breakdown {
                    params["breakdown_by"] = json!(b);
                    query.push_str(&format!("&breakdown_by={b}"));
                }
                let out = sdk
                    .run(
                        &app,
                        &company.key,
                        "stats",
                        json!({"metric": metric, "params": params}),
                    )
                    .await
                    .unwrap();
                let what = format!("{metric} {query}");
                assert_eq!(out["status"], 200, "{what}: {out}");
                let (status, direct) = app
                    .get(
                        &format!("/api/v1/stats/time_series/{metric}?{query}"),
                        Some(&company.key),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK);
                assert_eq!(
                    out["ok"], direct,
                    "{what}: the SDK sends what the test sends"
                );
                let parsed = &out["parsed"]["data"];
                let points = parsed["points"].as_array().unwrap();
                assert_eq!(
                    points.len(),
                    direct["data"]["points"].as_array().unwrap().len()
                );
                for (p, d) in points
                    .iter()
                    .zip(direct["data"]["points"].as_array().unwrap())
                {
                    assert_eq!(p["timestamp"], d["timestamp"], "{what}");
                    assert_eq!(number(&p["value"]), number(&d["value"]), "{what}");
                    assert_eq!(
                        p.get("breakdown").is_some(),
                        breakdown.is_some(),
                        "{what}: {p}"
                    );
                }
                assert!(!parsed["totals"].as_array().unwrap().is_empty(), "{what}");
            }
        }
    }
    // A bad parameter reaches the SDK as its 400.
    let out = sdk
        .run(&app, &company.key, "stats", json!({"metric": "new_leads",
            "params": {"from": "2024-03-01", "to": "2024-03-02", "account_id": company.id, "interval": "fortnight"}}))
        .await
        .unwrap();
    assert_eq!(out["error"]["status"], 400, "{out}");
    assert_eq!(out["error"]["body"]["error"]["param"], "interval", "{out}");
    // Past the limit the SDK is told to wait, waits, and succeeds. One request every 10 seconds:
    // far longer than the SDK takes to start, short enough to wait.
    app.reconfigure(|config| {
        config.rate_limit = leads_server::auth::rate_limit::RateLimit {
            per_minute: 6,
            burst: 1,
        }
    })
    .await;
    let path = format!(
        "/api/v1/stats/time_series/new_leads?account_id={}&from=2024-03-01&to=2024-03-02",
        company.id
    );
    while app.get(&path, Some(&company.key)).await.0 != StatusCode::OK {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let args = json!({"metric": "new_leads", "max_retries": 2,
        "params": {"from": "2024-03-01", "to": "2024-03-02", "account_id": company.id}});
    let waited = sdk.run(&app, &company.key, "stats", args).await.unwrap();
    assert_eq!(waited["status"], 200, "{waited}");
    assert_eq!(
        waited["requests"].as_array().unwrap().len(),
        2,
        "one 429, then success: {waited}"
    );
}
