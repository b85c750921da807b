//! Exports driven by the official, unmodified Python SDK 2.6.0 (`client.exports`), on both
//! backends: create a filtered export, poll it to `completed`, download `download_url` with a
//! plain HTTP GET, and find exactly the leads the list gives for the same filters.

mod common;

use common::{enc, permissions_without, rfc3339, Sdk, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

conformance!(
    the_python_sdk_exports_exactly_the_leads_the_list_gives,
    the_python_sdk_is_refused_an_export_without_lead_basic_export,
);

const BASE: i64 = 1_700_000_000_000;

async fn the_python_sdk_exports_exactly_the_leads_the_list_gives(app: TestApp) {
    let company = app.company(2, None).await;
    let specs: Vec<(i64, Option<usize>)> = (0..12)
        .map(|i| (BASE + i * 60_000, Some(i as usize % 2)))
        .collect();
    app.leads(&company, &specs).await;
    let sdk = Sdk::Python;
    let after = rfc3339(BASE + 2 * 60_000);
    let product = company.products[1].clone();
    let Some(created) = sdk
        .run(
            &app,
            &company.key,
            "export_create",
            json!({"body": {
                "resource": "leads",
                "company_id": company.id,
                "columns": ["id", "created_at", "product_id"],
                "filters": {"created_after": after, "product_ids": [product]},
                "timezone": "Asia/Kolkata",
            }}),
        )
        .await
    else {
        return;
    };
    assert_eq!(created["status"], 200, "{created}");
    let parsed = &created["parsed"];
    assert_eq!(parsed["resource"], "leads");
    assert!(["pending", "processing"].contains(&parsed["status"].as_str().unwrap()));
    let id = parsed["id"].as_str().unwrap().to_owned();

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let export = loop {
        let read = sdk
            .run(&app, &company.key, "export_retrieve", json!({"id": id}))
            .await
            .unwrap();
        assert_eq!(read["status"], 200, "{read}");
        if read["parsed"]["status"] == "completed" {
            break read["parsed"].clone();
        }
        assert!(std::time::Instant::now() < deadline, "{read}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(export["progress_percent"], 100);
    let url = export["download_url"].as_str().expect("download_url");
    // A plain GET, no credential, as for Whop's presigned links.
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        reader.headers().unwrap(),
        vec!["id", "created_at", "product_id"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();

    let listed = app
        .list(
            &company.key,
            &format!(
                "company_id={}&first=100&created_after={}&product_ids={product}",
                company.id,
                enc(&after)
            ),
        )
        .await;
    let ids: Vec<&str> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(
        ids, listed.ids,
        "the file holds what the list gives, in order"
    );
    assert_eq!(ids.len(), 5);
    for (row, lead) in rows.iter().zip(listed.body["data"].as_array().unwrap()) {
        let utc = leads_types::Timestamp::parse(lead["created_at"].as_str().unwrap()).unwrap();
        let kolkata = chrono::DateTime::from_timestamp_millis(utc.as_millis())
            .unwrap()
            .with_timezone(&chrono_tz::Asia::Kolkata)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
        assert_eq!(&row[1], kolkata, "dates in the export's time zone");
        assert!(row[1].ends_with("+05:30"));
        assert_eq!(&row[2], product);
    }

    let listed = sdk
        .run(
            &app,
            &company.key,
            "export_list",
            json!({"params": {"resource": "leads", "status": "completed"}}),
        )
        .await
        .unwrap();
    assert_eq!(listed["status"], 200, "{listed}");
    let data = listed["parsed"]["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{listed}");
    assert_eq!(data[0]["id"], Value::String(id));
    assert!(data[0]["download_url"].as_str().is_some());
}

async fn the_python_sdk_is_refused_an_export_without_lead_basic_export(app: TestApp) {
    let company = app.company(0, None).await;
    let key = app
        .key(&company, Some(&permissions_without("lead:basic:export")))
        .await;
    let Some(refused) = Sdk::Python
        .run(
            &app,
            &key,
            "export_create",
            json!({"body": {"resource": "leads"}}),
        )
        .await
    else {
        return;
    };
    let error = &refused["error"];
    assert_eq!(error["class"], "ForbiddenError", "{refused}");
    assert_eq!(error["status"], 403);
    assert!(
        error["body"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("lead:basic:export"),
        "{refused}"
    );
}
