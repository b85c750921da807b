//! The dashboard in a real browser: Chromium, driven over WebDriver, signs in, reads the
//! KPIs, the chart and the table, filters by product, dates and search, pages with Next and
//! Previous, downloads the view as CSV, edits a lead and signs out; every figure, every id and
//! the downloaded file are checked against the API. Screenshots at 375 and 1440 pixels wide are
//! written to `target/tmp/dashboard/`.

mod common;

use common::browser::Browser;
use common::{Company, TestApp};
use fantoccini::{Client, Locator};
use leads_server::admin;
use leads_server::auth::hash_secret;
use leads_server::domain::Timestamp;
use reqwest::StatusCode;
use serde_json::Value;
use std::path::PathBuf;

const DAY: i64 = 86_400_000;

/// Where the screenshots go: `target/tmp/dashboard/`.
fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// The ids of the table's rows, in order.
async fn table_ids(client: &Client) -> Vec<String> {
    let mut ids = Vec::new();
    for row in client
        .find_all(Locator::Css("#leads-table tbody tr"))
        .await
        .expect("rows")
    {
        ids.push(row.attr("data-lead-id").await.unwrap().expect("a lead id"));
    }
    ids
}

async fn text_of(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .expect("text")
}

async fn click(client: &Client, css: &str) {
    // Marks this document, so the one the click navigates to can be told from it.
    client
        .execute("window.leadsTestOldPage = true;", vec![])
        .await
        .expect("mark the page");
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let loaded = client
            .execute(
                "return window.leadsTestOldPage === undefined && document.readyState === 'complete';",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        if loaded {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "clicking {css} loaded no new page"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Waits (up to ten seconds) until the element `css` holds `needle`: a form's POST to the page's
/// own URL gives no new URL to wait for.
async fn eventually_text(client: &Client, css: &str, needle: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Ok(element) = client.find(Locator::Css(css)).await {
            if element.text().await.is_ok_and(|t| t.contains(needle)) {
                return;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{css} never held {needle:?}: {}",
            client.source().await.unwrap_or_default()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Waits (up to ten seconds) until the browser is at `path`: a click's navigation may not have
/// finished when the click returns.
async fn eventually_at(client: &Client, path: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let url = client.current_url().await.expect("url");
        let ready = client
            .execute("return document.readyState;", vec![])
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
        if url.path() == path && ready.as_deref() == Some("complete") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never reached {path}; at {url}: {}",
            client.source().await.unwrap_or_default()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A date input's value, set as a person picking a date would leave it.
async fn set_date(client: &Client, id: &str, date: &str) {
    client
        .execute(
            "document.getElementById(arguments[0]).value = arguments[1];",
            vec![Value::from(id), Value::from(date)],
        )
        .await
        .expect("set date");
}

/// Chooses the product filter's option of value `value` (`""` is every product).
async fn select_product(client: &Client, value: &str) {
    client
        .find(Locator::Css("select#product"))
        .await
        .expect("the product filter")
        .select_by_value(value)
        .await
        .expect("select a product");
}

/// The API's statistic over the same days, as its `totals` give it.
async fn statistic(app: &TestApp, company: &Company, metric: &str, query: &str) -> Option<f64> {
    let (status, body) = app
        .get(
            &format!(
                "/api/v1/stats/time_series/{metric}?account_id={}&{query}",
                company.id
            ),
            Some(&company.key),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]["totals"][0]["value"].as_f64()
}

/// The width of a PNG, from its header.
fn png_width(png: &[u8]) -> u32 {
    assert_eq!(&png[1..4], b"PNG", "a PNG");
    u32::from_be_bytes(png[16..20].try_into().unwrap())
}

async fn a_person_signs_in_reads_filters_pages_edits_and_signs_out(app: TestApp) {
    let company = app.company(3, None).await;
    let now = Timestamp::now().as_millis();
    // 130 leads over the last 20 days, on three products and none, and a few converted.
    let specs: Vec<(i64, Option<usize>)> = (0..130)
        .map(|i| {
            (
                now - (i as i64 % 20) * DAY - i as i64 * 60_000 - 3_600_000,
                [Some(0), Some(1), Some(2), None][i % 4],
            )
        })
        .collect();
    let made = app.leads(&company, &specs).await;
    for lead in made.iter().step_by(7) {
        admin::create_member(app.stores.directory.as_ref(), &company.id, &lead.user.id)
            .await
            .expect("member");
    }
    let browser = Browser::start(1440, 1000).await;
    let client = &browser.client;

    // Sign in: the root redirects to the dashboard, which asks for a key.
    client.goto(&format!("{}/", app.base)).await.unwrap();
    let url = client.current_url().await.unwrap();
    assert_eq!(url.path(), "/dashboard/sign-in");
    let field = client
        .find(Locator::Css("input[type=password]#api_key"))
        .await
        .unwrap();
    assert_eq!(text_of(client, "label[for=api_key]").await, "API key");
    field.send_keys(&company.key).await.unwrap();
    assert_eq!(text_of(client, "form button[type=submit]").await, "Sign in");
    click(client, "form button[type=submit]").await;
    eventually_at(client, "/dashboard").await;
    let cookie = client
        .get_named_cookie("leads_session")
        .await
        .expect("a session cookie")
        .value()
        .to_owned();
    assert!(!client.source().await.unwrap().contains(&company.key));

    // The KPIs are the statistics API's over the same window.
    let from = text_of(client, "#kpi-new").await;
    let to_date = chrono::Utc::now().date_naive();
    let from_date = to_date - chrono::Days::new(29);
    let window = format!("from={from_date}&to={to_date}");
    let new_leads = statistic(&app, &company, "new_leads", &window)
        .await
        .unwrap();
    let converted = statistic(&app, &company, "converted_leads", &window)
        .await
        .unwrap();
    let rate = statistic(&app, &company, "lead_conversion_rate", &window)
        .await
        .unwrap();
    assert_eq!(new_leads, 130.0);
    assert_eq!(from, format!("{new_leads}"));
    assert_eq!(
        text_of(client, "#kpi-converted").await,
        format!("{converted}")
    );
    assert_eq!(text_of(client, "#kpi-rate").await, format!("{rate:.1}%"));
    let chart = client
        .find(Locator::Css("svg[role=img]"))
        .await
        .expect("the chart");
    let label = chart.attr("aria-label").await.unwrap().unwrap();
    assert!(label.contains("new and converted leads per day"), "{label}");

    // The table is GET /leads with the same filters, across Next and Previous.
    let bounds = |from: chrono::NaiveDate, to: chrono::NaiveDate| {
        let start = from
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis();
        let end = (to + chrono::Days::new(1))
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis();
        format!(
            "created_after={}&created_before={}",
            common::enc(&common::rfc3339(start - 1)),
            common::enc(&common::rfc3339(end))
        )
    };
    let query = format!(
        "company_id={}&first=50&{}",
        company.id,
        bounds(from_date, to_date)
    );
    let first = app.list(&company.key, &query).await;
    assert_eq!(first.ids.len(), 50);
    assert_eq!(table_ids(client).await, first.ids);
    assert!(client.find(Locator::Css("a[rel=prev]")).await.is_err());
    click(client, "a[rel=next]").await;
    let second = app
        .list(
            &company.key,
            &format!(
                "{query}&after={}",
                common::enc(first.end_cursor.as_deref().unwrap())
            ),
        )
        .await;
    assert_eq!(table_ids(client).await, second.ids);
    click(client, "a[rel=next]").await;
    let third = app
        .list(
            &company.key,
            &format!(
                "{query}&after={}",
                common::enc(second.end_cursor.as_deref().unwrap())
            ),
        )
        .await;
    assert_eq!(third.ids.len(), 30);
    assert_eq!(table_ids(client).await, third.ids);
    assert!(client.find(Locator::Css("a[rel=next]")).await.is_err());
    click(client, "a[rel=prev]").await;
    assert_eq!(table_ids(client).await, second.ids);
    click(client, "a[rel=prev]").await;
    assert_eq!(table_ids(client).await, first.ids);

    // Filter by product and dates with the form; the filters are in the URL.
    let product = &company.products[1];
    let select = client.find(Locator::Css("select#product")).await.unwrap();
    assert_eq!(text_of(client, "label[for=product]").await, "Product");
    select.select_by_value(product).await.unwrap();
    let narrow_from = to_date - chrono::Days::new(9);
    set_date(client, "from", &narrow_from.to_string()).await;
    set_date(client, "to", &to_date.to_string()).await;
    click(client, "form.filters button[type=submit]").await;
    let url = client.current_url().await.unwrap();
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert!(
        pairs.contains(&("product".into(), product.clone())),
        "{url}"
    );
    assert!(
        pairs.contains(&("from".into(), narrow_from.to_string())),
        "{url}"
    );
    let filtered = app
        .list(
            &company.key,
            &format!(
                "company_id={}&first=50&product_ids={product}&{}",
                company.id,
                bounds(narrow_from, to_date)
            ),
        )
        .await;
    assert!(!filtered.ids.is_empty());
    assert_eq!(table_ids(client).await, filtered.ids);
    let window = format!("from={narrow_from}&to={to_date}&product={product}");
    let new_leads = statistic(&app, &company, "new_leads", &window)
        .await
        .unwrap();
    assert_eq!(text_of(client, "#kpi-new").await, format!("{new_leads}"));
    // The URL is the view: opening it again shows the same rows.
    client.goto(url.as_str()).await.unwrap();
    assert_eq!(table_ids(client).await, filtered.ids);

    // Download CSV exports this view: a progress page, then the file, which is the list.
    assert_eq!(
        filtered.body["page_info"]["has_next_page"], false,
        "one page holds the view"
    );
    assert_eq!(text_of(client, "#download-csv").await, "Download CSV");
    click(client, "#download-csv").await;
    let at = client.current_url().await.unwrap();
    assert!(
        at.path().starts_with("/dashboard/exports/exprt_"),
        "the progress page: {at}"
    );
    let (name, bytes) = browser.downloaded().await;
    assert!(
        name.starts_with("leads-exprt_") && name.ends_with(".csv"),
        "{name}"
    );
    let downloaded = common::csv_ids(&bytes);
    assert_eq!(downloaded, filtered.ids, "the CSV is the filtered list");
    eventually_text(client, "#export-status", "Ready").await;

    // Search narrows the table as the list's query does, and stays in the URL.
    client.goto(url.as_str()).await.unwrap();
    let target = &made[5];
    assert_eq!(text_of(client, "label[for=query]").await, "Search");
    let search = client.find(Locator::Css("input#query")).await.unwrap();
    search.send_keys(&target.user.username).await.unwrap();
    select_product(client, "").await;
    set_date(client, "from", &from_date.to_string()).await;
    click(client, "form.filters button[type=submit]").await;
    let url = client.current_url().await.unwrap();
    assert!(
        url.query_pairs()
            .any(|(k, v)| k == "query" && v == target.user.username.as_str()),
        "{url}"
    );
    let searched = app
        .list(
            &company.key,
            &format!(
                "company_id={}&first=50&query={}&{}",
                company.id,
                common::enc(&target.user.username),
                bounds(from_date, to_date)
            ),
        )
        .await;
    assert_eq!(searched.ids, vec![target.id.clone()]);
    assert_eq!(table_ids(client).await, searched.ids);

    // Screenshots at both widths; at 375 px nothing is wider than the screen.
    let dir = screenshot_dir();
    client
        .goto(&format!("{}/dashboard", app.base))
        .await
        .unwrap();
    for (width, height) in [(1440, 1400), (375, 1400)] {
        browser.viewport(width, height).await;
        client
            .goto(&format!("{}/dashboard", app.base))
            .await
            .unwrap();
        let overflow = client
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                vec![],
            )
            .await
            .unwrap();
        let png = client.screenshot().await.expect("screenshot");
        assert_eq!(png_width(&png), width);
        let backend = format!("{:?}", app.backend).to_lowercase();
        std::fs::write(dir.join(format!("leads-{backend}-{width}.png")), &png).unwrap();
        assert!(
            overflow.as_i64().unwrap() <= 0,
            "the page scrolls sideways at {width} px by {overflow}"
        );
    }
    browser.viewport(1440, 1000).await;

    // Open a lead from the table and edit it; the API sees the change.
    let lead = first.ids[0].clone();
    click(client, &format!("tr[data-lead-id='{lead}'] a")).await;
    eventually_at(client, &format!("/dashboard/leads/{lead}")).await;
    let referrer = client.find(Locator::Css("input#referrer")).await.unwrap();
    referrer.clear().await.unwrap();
    referrer.send_keys("https://x.com/edited").await.unwrap();
    let metadata = client
        .find(Locator::Css("textarea#metadata"))
        .await
        .unwrap();
    metadata.clear().await.unwrap();
    metadata.send_keys(r#"{"stage": "won"}"#).await.unwrap();
    click(
        client,
        "form[action^='/dashboard/leads/'] button[type=submit]",
    )
    .await;
    eventually_text(client, ".notice", "Saved").await;
    let (status, body) = app
        .get(&format!("/api/v1/leads/{lead}"), Some(&company.key))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["referrer"], "https://x.com/edited");
    assert_eq!(body["metadata"]["stage"], "won");
    assert_eq!(
        text_of(client, "#field-referrer").await,
        "https://x.com/edited"
    );

    // Sign out: the session is gone from the database.
    click(client, "form[action='/dashboard/sign-out'] button").await;
    eventually_at(client, "/dashboard/sign-in").await;
    let found = app
        .stores
        .sessions
        .touch_session(hash_secret(&cookie), Timestamp::now().as_millis())
        .await
        .unwrap();
    assert!(found.is_none(), "the session is deleted");
    client
        .goto(&format!("{}/dashboard", app.base))
        .await
        .unwrap();
    eventually_at(client, "/dashboard/sign-in").await;
    browser.close().await;
}

async fn a_forged_form_and_a_revoked_key_are_refused_in_the_browser(app: TestApp) {
    let company = app.company(1, None).await;
    let made = app
        .leads(&company, &[(Timestamp::now().as_millis() - DAY, Some(0))])
        .await;
    let (key, secret) = admin::create_key(app.stores.credentials.as_ref(), &company.id, None)
        .await
        .unwrap();
    let browser = Browser::start(1440, 1000).await;
    let client = &browser.client;
    client
        .goto(&format!("{}/dashboard/sign-in", app.base))
        .await
        .unwrap();
    let field = client.find(Locator::Css("#api_key")).await.unwrap();
    field.send_keys(&secret).await.unwrap();
    click(client, "button[type=submit]").await;
    eventually_at(client, "/dashboard").await;

    // The edit form without its CSRF token, as a forged form would come.
    let lead = &made[0].id;
    client
        .goto(&format!("{}/dashboard/leads/{lead}", app.base))
        .await
        .unwrap();
    client
        .execute(
            "document.querySelector('form[action^=\"/dashboard/leads/\"] input[name=csrf_token]').remove();",
            vec![],
        )
        .await
        .unwrap();
    let referrer = client.find(Locator::Css("input#referrer")).await.unwrap();
    referrer.clear().await.unwrap();
    referrer.send_keys("https://forged.example/").await.unwrap();
    click(
        client,
        "form[action^='/dashboard/leads/'] button[type=submit]",
    )
    .await;
    eventually_text(client, "h1", "403").await;
    let (_, body) = app
        .get(&format!("/api/v1/leads/{lead}"), Some(&company.key))
        .await;
    assert_eq!(body["referrer"], "https://example.com/");

    // The key is revoked: the next page is the sign-in page, saying why.
    admin::revoke_key(app.stores.credentials.as_ref(), key.id.as_str())
        .await
        .unwrap();
    client
        .goto(&format!("{}/dashboard", app.base))
        .await
        .unwrap();
    eventually_at(client, "/dashboard/sign-in").await;
    assert!(text_of(client, ".notice").await.contains("no longer valid"));
    browser.close().await;
}

conformance!(
    a_person_signs_in_reads_filters_pages_edits_and_signs_out,
    a_forged_form_and_a_revoked_key_are_refused_in_the_browser,
);
