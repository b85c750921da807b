//! `/api/v1/exports`: creating an export, the worker writing its file, the signed download
//! link, listing, and every refusal, on both backends.

mod common;

use common::{list_order, permissions_without, rfc3339, Company, Fixture, TestApp};
use leads_server::domain::{CompanyId, ExportId};
use leads_server::exports::links::LinkSigner;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

conformance!(
    a_filtered_export_holds_exactly_the_listed_leads_in_its_columns_and_time_zone,
    an_export_of_no_leads_is_the_header_alone,
    emails_are_written_only_with_member_email_read,
    exporting_takes_lead_basic_export,
    other_resources_unknown_columns_filters_and_time_zones_are_refused,
    another_companys_export_is_not_found,
    exports_are_listed_newest_first_a_page_at_a_time,
    a_download_link_that_is_altered_expired_or_another_exports_is_refused,
    the_lists_search_filters_an_export_without_revealing_emails,
    leap_seconds_formulas_and_user_tokens_off_the_team_follow_the_lists_rules,
    an_export_past_its_retention_loses_its_file_and_reads_expired,
);

const BASE: i64 = 1_700_000_000_000;

/// Downloads `url` with no credential; the status, headers and body text.
async fn download(url: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let response = reqwest::get(url).await.expect("download");
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("body"))
}

/// The CSV's records as maps from header to cell.
fn records(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

/// Ten leads over three products (and none), a second apart.
async fn ten_leads(app: &TestApp, company: &Company) -> Vec<Fixture> {
    let specs: Vec<(i64, Option<usize>)> = (0..10)
        .map(|i| {
            (
                BASE + i * 1000,
                if i % 4 == 3 {
                    None
                } else {
                    Some(i as usize % 3)
                },
            )
        })
        .collect();
    app.leads(company, &specs).await
}

async fn a_filtered_export_holds_exactly_the_listed_leads_in_its_columns_and_time_zone(
    app: TestApp,
) {
    let company = app.company(3, None).await;
    let leads = ten_leads(&app, &company).await;
    let products = [company.products[0].clone(), company.products[1].clone()];
    let after = rfc3339(BASE + 1000);
    let (status, export) = app
        .create_export(
            &company.key,
            json!({
                "resource": "leads",
                "columns": ["id", "created_at", "username", "email", "product_id"],
                "filters": {"created_after": after, "product_ids": products},
                "timezone": "America/New_York",
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{export}");
    let id = export["id"].as_str().unwrap();
    assert!(id.starts_with("exprt_") && id.len() == 18, "{id}");
    assert_eq!(export["resource"], "leads");
    assert_eq!(export["download_url"], Value::Null);
    assert_eq!(export["failure_reason"], Value::Null);
    assert!(["pending", "processing"].contains(&export["status"].as_str().unwrap()));
    let created = leads_types::Timestamp::parse(export["created_at"].as_str().unwrap()).unwrap();
    let expires = leads_types::Timestamp::parse(export["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        expires.as_millis() - created.as_millis(),
        30 * 24 * 3600 * 1000
    );

    let done = app.export_finished(&company.key, id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["progress_percent"], 100);
    let url = done["download_url"].as_str().expect("a download_url");
    assert!(
        url.contains(&format!("/api/v1/exports/{id}/download?token=")),
        "{url}"
    );
    let (status, headers, text) = download(url).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        headers["content-disposition"],
        format!("attachment; filename=\"leads-{id}.csv\"").as_str()
    );
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));

    let (header, rows) = records(&text);
    assert_eq!(
        header,
        ["id", "created_at", "username", "email", "product_id"]
    );
    let query = format!(
        "company_id={}&first=100&created_after={}&product_ids={}&product_ids={}",
        company.id,
        common::enc(&after),
        products[0],
        products[1]
    );
    let listed = app.list(&company.key, &query).await;
    let ids: Vec<String> = rows.iter().map(|r| r[0].clone()).collect();
    assert!(!ids.is_empty());
    assert_eq!(
        ids, listed.ids,
        "the file holds what the list shows, in its order"
    );
    let expected: Vec<&Fixture> = list_order(&leads)
        .iter()
        .filter_map(|id| leads.iter().find(|l| &l.id == id))
        .filter(|l| {
            l.created_at > BASE + 1000 && l.product.as_ref().is_some_and(|p| products.contains(p))
        })
        .collect();
    for (row, lead) in rows.iter().zip(&expected) {
        assert_eq!(row[0], lead.id);
        let instant = chrono::DateTime::from_timestamp_millis(lead.created_at)
            .unwrap()
            .with_timezone(&chrono_tz::America::New_York)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
        assert_eq!(row[1], instant);
        assert!(row[1].ends_with("-05:00"), "{}", row[1]);
        assert_eq!(row[2], lead.user.username);
        assert_eq!(row[3], "someone@example.com");
        assert_eq!(Some(&row[4]), lead.product.as_ref());
    }
}

async fn an_export_of_no_leads_is_the_header_alone(app: TestApp) {
    let company = app.company(0, None).await;
    let (status, export) = app
        .create_export(&company.key, json!({"resource": "leads"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{export}");
    let done = app
        .export_finished(&company.key, export["id"].as_str().unwrap())
        .await;
    assert_eq!(done["status"], "completed", "{done}");
    let (status, _, text) = download(done["download_url"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        text,
        "id,created_at,updated_at,user_id,username,email,name,product_id,product_title,\
         member_id,referrer,metadata\r\n"
    );
}

async fn emails_are_written_only_with_member_email_read(app: TestApp) {
    let company = app.company(3, None).await;
    ten_leads(&app, &company).await;
    let key = app
        .key(&company, Some(&permissions_without("member:email:read")))
        .await;
    let (status, export) = app
        .create_export(
            &key,
            json!({"resource": "leads", "columns": ["email", "username"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{export}");
    let done = app
        .export_finished(&key, export["id"].as_str().unwrap())
        .await;
    let (_, _, text) = download(done["download_url"].as_str().unwrap()).await;
    let (_, rows) = records(&text);
    assert_eq!(rows.len(), 10);
    assert!(
        rows.iter().all(|r| r[0].is_empty() && !r[1].is_empty()),
        "{text}"
    );
}

async fn exporting_takes_lead_basic_export(app: TestApp) {
    let company = app.company(0, None).await;
    let key = app
        .key(&company, Some(&permissions_without("lead:basic:export")))
        .await;
    let (status, body) = app.create_export(&key, json!({"resource": "leads"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["type"], "forbidden");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("lead:basic:export"),
        "{body}"
    );
    let (status, body) = app.get("/api/v1/exports", Some(&key)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

async fn other_resources_unknown_columns_filters_and_time_zones_are_refused(app: TestApp) {
    let company = app.company(0, None).await;
    for (body, param) in [
        (json!({}), "resource"),
        (json!({"resource": "payouts"}), "resource"),
        (
            json!({"resource": "leads", "columns": ["id", "shoe_size"]}),
            "columns",
        ),
        (
            json!({"resource": "leads", "timezone": "Mars/Olympus"}),
            "timezone",
        ),
        (json!({"resource": "leads", "filters": []}), "filters"),
        (
            json!({"resource": "leads", "filters": {"status": "x"}}),
            "filters.status",
        ),
        (
            json!({"resource": "leads", "filters": {"created_after": "yesterday"}}),
            "filters.created_after",
        ),
        (
            json!({"resource": "leads", "filters": {"product_ids": "prod_x"}}),
            "filters.product_ids",
        ),
        (
            json!({"resource": "leads", "filters": {"product_ids": [""]}}),
            "filters.product_ids",
        ),
        (json!({"resource": "leads", "account_id": ""}), "account_id"),
        (json!({"resource": "leads", "company_id": ""}), "company_id"),
        (
            json!({"resource": "leads", "account_id": "x".repeat(256)}),
            "account_id",
        ),
    ] {
        let (status, error) = app.create_export(&company.key, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(error["error"]["param"], param, "{body}: {error}");
    }
    // Ids are taken as the leads resource takes them: any 1 to 255 characters, or an integer.
    // One that names nothing is answered as an unknown id: another company's, a 403; a product
    // that is no product of the company matches no lead.
    for body in [
        json!({"resource": "leads", "account_id": 4}),
        json!({"resource": "leads", "company_id": "biz_doesnotexist00"}),
    ] {
        let (status, error) = app.create_export(&company.key, body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}: {error}");
    }
    let (status, export) = app
        .create_export(
            &company.key,
            json!({"resource": "leads", "filters": {"product_ids": [4, "prod_doesnotexist00"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{export}");
    let (_, error) = app
        .create_export(&company.key, json!({"resource": "payouts"}))
        .await;
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not exported by this server"),
        "{error}"
    );
    let (status, body) = app
        .get("/api/v1/exports?status=done", Some(&company.key))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["param"], "status");
}

async fn another_companys_export_is_not_found(app: TestApp) {
    let ours = app.company(0, None).await;
    let theirs = app.company(0, None).await;
    let (_, export) = app
        .create_export(&theirs.key, json!({"resource": "leads"}))
        .await;
    let id = export["id"].as_str().unwrap();
    let (status, body) = app
        .get(&format!("/api/v1/exports/{id}"), Some(&ours.key))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["type"], "not_found");
    let (status, _) = app
        .get("/api/v1/exports/exprt_doesnotexist", Some(&ours.key))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app
        .get(
            &format!("/api/v1/exports?account_id={}", theirs.id),
            Some(&ours.key),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = app.get("/api/v1/exports", Some(&ours.key)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"], json!([]));
}

async fn exports_are_listed_newest_first_a_page_at_a_time(app: TestApp) {
    let company = app.company(0, None).await;
    let mut made = Vec::new();
    for _ in 0..3 {
        let (_, export) = app
            .create_export(&company.key, json!({"resource": "leads"}))
            .await;
        made.push(export["id"].as_str().unwrap().to_owned());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ids = |body: &Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, page) = app.get("/api/v1/exports", Some(&company.key)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let newest_first: Vec<String> = made.iter().rev().cloned().collect();
    assert_eq!(ids(&page), newest_first);
    let (_, first) = app
        .get("/api/v1/exports?first=2&direction=desc", Some(&company.key))
        .await;
    assert_eq!(ids(&first), newest_first[..2]);
    assert_eq!(first["page_info"]["has_next_page"], true);
    let cursor = first["page_info"]["end_cursor"].as_str().unwrap();
    let (_, second) = app
        .get(
            &format!("/api/v1/exports?first=2&after={cursor}"),
            Some(&company.key),
        )
        .await;
    assert_eq!(ids(&second), newest_first[2..]);
    assert_eq!(second["page_info"]["has_next_page"], false);
    let (_, oldest) = app
        .get(
            &format!("/api/v1/exports?direction=asc&account_id={}", company.id),
            Some(&company.key),
        )
        .await;
    assert_eq!(ids(&oldest), made);
    let (_, other) = app
        .get("/api/v1/exports?resource=payouts", Some(&company.key))
        .await;
    assert_eq!(ids(&other), Vec::<String>::new());
    for id in &made {
        app.export_finished(&company.key, id).await;
    }
    let (_, completed) = app
        .get("/api/v1/exports?status=completed", Some(&company.key))
        .await;
    assert_eq!(ids(&completed), newest_first);
    let (_, pending) = app
        .get("/api/v1/exports?status=pending", Some(&company.key))
        .await;
    assert_eq!(ids(&pending), Vec::<String>::new());
}

async fn a_download_link_that_is_altered_expired_or_another_exports_is_refused(app: TestApp) {
    let company = app.company(0, None).await;
    let (_, a) = app
        .create_export(&company.key, json!({"resource": "leads"}))
        .await;
    let (_, b) = app
        .create_export(&company.key, json!({"resource": "leads"}))
        .await;
    let a = app
        .export_finished(&company.key, a["id"].as_str().unwrap())
        .await;
    let b = app
        .export_finished(&company.key, b["id"].as_str().unwrap())
        .await;
    let url_a = a["download_url"].as_str().unwrap();
    let url_b = b["download_url"].as_str().unwrap();
    let (status, _, _) = download(url_a).await;
    assert_eq!(status, StatusCode::OK);

    let token_of = |url: &str| url.split_once("token=").unwrap().1.to_owned();
    let (path_a, _) = url_a.split_once('?').unwrap();
    let swapped = format!("{path_a}?token={}", token_of(url_b));
    let mut altered = token_of(url_a);
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    let altered = format!("{path_a}?token={altered}");
    let secret = app.stores.exports.link_secret().await.unwrap();
    let signer = LinkSigner::new(&secret, Duration::from_secs(15 * 60));
    let id = ExportId::parse(a["id"].as_str().unwrap()).unwrap();
    let company_id = CompanyId::parse(&company.id).unwrap();
    let an_hour_ago = leads_types::Timestamp::now().as_millis() - 3_600_000;
    let expired = format!(
        "{path_a}?token={}",
        common::enc(&signer.token(&id, &company_id, an_hour_ago))
    );
    let foreign_company = format!(
        "{path_a}?token={}",
        common::enc(&signer.token(
            &id,
            &CompanyId::generate(),
            leads_types::Timestamp::now().as_millis()
        ))
    );
    for (url, why) in [
        (swapped, "another export's"),
        (altered, "altered"),
        (expired, "expired"),
        (foreign_company, "another company's"),
        (path_a.to_owned(), "without a token"),
    ] {
        let response = reqwest::get(&url).await.unwrap();
        let (status, body) = common::read(response).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{why}: {body}");
        assert_eq!(body["error"]["type"], "forbidden", "{why}");
    }
}

/// The ids of a finished export's file, for `filters`, made with `key`.
async fn exported_ids(app: &TestApp, key: &str, filters: Value) -> Vec<String> {
    let (status, export) = app
        .create_export(key, json!({"resource": "leads", "filters": filters}))
        .await;
    assert_eq!(status, StatusCode::OK, "{export}");
    let done = app
        .export_finished(key, export["id"].as_str().unwrap())
        .await;
    assert_eq!(done["status"], "completed", "{done}");
    let (_, _, text) = download(done["download_url"].as_str().unwrap()).await;
    records(&text).1.into_iter().map(|r| r[0].clone()).collect()
}

async fn the_lists_search_filters_an_export_without_revealing_emails(app: TestApp) {
    let company = app.company(3, None).await;
    let leads = ten_leads(&app, &company).await;
    let everyone = list_order(&leads);
    let no_emails = app
        .key(&company, Some(&permissions_without("member:email:read")))
        .await;

    // query= narrows the file as it narrows the list.
    let target = &leads[4];
    let ids = exported_ids(&app, &company.key, json!({"query": target.user.username})).await;
    assert_eq!(ids, vec![target.id.clone()]);
    let listed = app
        .list(
            &company.key,
            &format!(
                "company_id={}&first=100&query={}",
                company.id, target.user.username
            ),
        )
        .await;
    assert_eq!(ids, listed.ids);

    // Every fixture's email is someone@example.com: a query matches it only for a credential
    // that may read emails, so an export cannot tell the others whose address it is.
    let ids = exported_ids(&app, &company.key, json!({"query": "someone@"})).await;
    assert_eq!(ids, everyone);
    let ids = exported_ids(&app, &no_emails, json!({"query": "someone@"})).await;
    assert!(ids.is_empty(), "{ids:?}");

    // email= needs member:email:read, as on the list.
    let ids = exported_ids(
        &app,
        &company.key,
        json!({"email": "SOMEONE@example.com", "product_ids": [company.products[0]]}),
    )
    .await;
    let listed = app
        .list(
            &company.key,
            &format!(
                "company_id={}&first=100&email=someone%40example.com&product_ids={}",
                company.id, company.products[0]
            ),
        )
        .await;
    assert!(!ids.is_empty());
    assert_eq!(ids, listed.ids);
    let (status, body) = app
        .create_export(
            &no_emails,
            json!({"resource": "leads", "filters": {"email": "someone@example.com"}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("member:email:read"),
        "{body}"
    );

    // Bad terms are a 400 naming the filter, and create nothing.
    for (filters, param) in [
        (json!({"query": ""}), "filters.query"),
        (json!({"query": "x".repeat(101)}), "filters.query"),
        (json!({"query": "a\u{7}b"}), "filters.query"),
        (json!({"query": 7}), "filters.query"),
        (json!({"email": ""}), "filters.email"),
    ] {
        let (status, body) = app
            .create_export(
                &company.key,
                json!({"resource": "leads", "filters": filters}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{filters}: {body}");
        assert_eq!(body["error"]["param"], param, "{filters}: {body}");
    }
}

async fn leap_seconds_formulas_and_user_tokens_off_the_team_follow_the_lists_rules(app: TestApp) {
    let company = app.company(0, None).await;
    // Two leads either side of 00:53:00.000 on 2023-11-14 (BASE is 22:13:20 that day).
    let minute = BASE - BASE % 60_000 + 60_000;
    let leads = app
        .leads(&company, &[(minute - 1, None), (minute, None)])
        .await;
    // A leap second is the start of the next minute, as the list reads it: 12:MM:60.500 bounds
    // before minute, so the lead at minute is out and the one a millisecond before is in.
    let leap = {
        let next = rfc3339(minute);
        let before = rfc3339(minute - 60_000);
        assert!(next.ends_with(":00.000Z"), "{next}");
        format!("{}60.500Z", &before[..before.len() - 7])
    };
    let ids = exported_ids(&app, &company.key, json!({"created_before": leap})).await;
    assert_eq!(ids, vec![leads[0].id.clone()], "{leap}");
    let listed = app
        .list(
            &company.key,
            &format!(
                "company_id={}&created_before={}",
                company.id,
                common::enc(&leap)
            ),
        )
        .await;
    assert_eq!(ids, listed.ids);

    // A prospect's name that a spreadsheet would run is written as text, as the CLI writes it.
    let user = leads_server::admin::create_user(
        app.stores.directory.as_ref(),
        &format!("-{}", leads_server::domain::ids::random_base62(8)),
        None,
        Some("=HYPERLINK(\"https://evil.example\",\"Click\")"),
    )
    .await
    .unwrap();
    let (status, _, created) = app
        .send(
            Method::POST,
            "/api/v1/leads",
            &company.key,
            Some(&json!({"company_id": company.id, "user_id": user.id, "referrer": "-1+1"})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let (status, export) = app
        .create_export(
            &company.key,
            json!({"resource": "leads", "columns": ["id", "username", "name", "referrer"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{export}");
    let done = app
        .export_finished(&company.key, export["id"].as_str().unwrap())
        .await;
    let (_, _, text) = download(done["download_url"].as_str().unwrap()).await;
    let (_, rows) = records(&text);
    let row = rows
        .iter()
        .find(|r| r[0] == created["id"].as_str().unwrap())
        .expect("the new lead");
    assert_eq!(row[1], format!("'{}", user.username));
    assert_eq!(row[2], "'=HYPERLINK(\"https://evil.example\",\"Click\")");
    assert_eq!(row[3], "'-1+1");

    // A user token whose user is not on the company's team may not export its leads.
    let outsider = app.user().await;
    let (_, token) = common::credentials::user_token(&app, &outsider.id, None).await;
    let (status, body) = app
        .create_export(
            &token,
            json!({"resource": "leads", "account_id": company.id}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = app
        .get(
            &format!("/api/v1/exports?account_id={}", company.id),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = app
        .get(
            &format!("/api/v1/exports/{}", export["id"].as_str().unwrap()),
            Some(&token),
        )
        .await;
    assert!(
        [StatusCode::NOT_FOUND, StatusCode::FORBIDDEN].contains(&status),
        "{status}"
    );
}

async fn an_export_past_its_retention_loses_its_file_and_reads_expired(app: TestApp) {
    let company = app.company(0, None).await;
    app.leads(&company, &[(BASE, None)]).await;
    let (_, export) = app
        .create_export(&company.key, json!({"resource": "leads"}))
        .await;
    let id = export["id"].as_str().unwrap().to_owned();
    let done = app.export_finished(&company.key, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    let link = done["download_url"].as_str().unwrap().to_owned();
    let row = app
        .stores
        .exports
        .export_by_id(ExportId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    let dir = leads_server::exports::ExportSettings::default().dir_for(&app.database_url);
    let file = dir.join(row.file_name.as_deref().expect("a file"));
    assert!(file.exists(), "{file:?}");

    // The worker's sweep, as it runs every minute: before the 30 days are up it keeps the file.
    let sweep = |now: i64| {
        let (app, dir) = (&app, &dir);
        async move {
            leads_server::exports::worker::expire_due(app.stores.exports.as_ref(), dir, now).await
        }
    };
    sweep(row.expires_at - 1).await;
    assert!(file.exists(), "deleted before its time");
    let (_, read) = app
        .get(&format!("/api/v1/exports/{id}"), Some(&company.key))
        .await;
    assert_eq!(read["status"], "completed");

    // After them, the file is gone and the export says so; its old link finds nothing.
    sweep(row.expires_at + 1).await;
    assert!(!file.exists(), "kept past its retention");
    let (status, read) = app
        .get(&format!("/api/v1/exports/{id}"), Some(&company.key))
        .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["status"], "expired", "{read}");
    assert_eq!(read["download_url"], Value::Null, "{read}");
    let (status, _, body) = download(&link).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (_, listed) = app
        .get(
            &format!("/api/v1/exports?account_id={}&status=expired", company.id),
            Some(&company.key),
        )
        .await;
    assert_eq!(listed["data"][0]["id"], id.as_str(), "{listed}");
}
