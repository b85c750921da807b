//! The official SDKs, unchanged, walk `GET /leads` to its end: the seed page's own snippet.

mod common;

use common::{crowded_times, list_order, rfc3339, Fixture, Sdk, TestApp};
use serde_json::json;

conformance!(
    the_typescript_sdk_iterates_every_lead_once_in_order,
    the_python_sdk_iterates_every_lead_once_in_order,
    the_legacy_python_sdk_iterates_every_lead_once_in_order,
);

/// 45 leads, three to a millisecond; more than two default pages.
async fn check_sdk(app: TestApp, sdk: Sdk) {
    let company = app.company(3, None).await;
    let specs: Vec<(i64, Option<usize>)> = crowded_times(45)
        .into_iter()
        .enumerate()
        .map(|(i, t)| (t, if i % 4 == 0 { None } else { Some(i % 3) }))
        .collect();
    let leads = app.leads(&company, &specs).await;

    // The snippet: `for await (const lead of client.leads.list({ company_id }))`.
    let Some(out) = sdk
        .run(
            &app,
            &company.key,
            "list",
            json!({"params": {"company_id": company.id}}),
        )
        .await
    else {
        return;
    };
    assert!(out.get("error").is_none(), "{sdk:?}: {out}");
    let ids: Vec<String> = serde_json::from_value(out["ids"].clone()).unwrap();
    assert_eq!(
        ids,
        list_order(&leads),
        "{sdk:?} yields every lead once, newest first"
    );
    assert!(out["emails"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e == "someone@example.com"));

    // Filtered, with a small page size so several pages are followed.
    let (p0, p1) = (&company.products[0], &company.products[1]);
    let from = crowded_times(45)[5];
    let filtered: Vec<Fixture> = leads
        .iter()
        .filter(|l| matches!(&l.product, Some(p) if p == p0 || p == p1) && l.created_at > from)
        .cloned()
        .collect();
    let params = json!({"company_id": company.id, "product_ids": [p0, p1], "created_after": rfc3339(from), "first": 4});
    let out = sdk
        .run(&app, &company.key, "list", json!({"params": params}))
        .await
        .unwrap();
    assert!(out.get("error").is_none(), "{sdk:?}: {out}");
    let ids: Vec<String> = serde_json::from_value(out["ids"].clone()).unwrap();
    assert!(filtered.len() > 8);
    assert_eq!(
        ids,
        list_order(&filtered),
        "{sdk:?} with product_ids and created_after"
    );
    let requests = out["requests"].as_array().unwrap();
    assert_eq!(
        requests.len(),
        filtered.len().div_ceil(4) + usize::from(filtered.len().is_multiple_of(4)),
        "{sdk:?}: {requests:?}"
    );
}

async fn the_typescript_sdk_iterates_every_lead_once_in_order(app: TestApp) {
    check_sdk(app, Sdk::TypeScript).await;
}

async fn the_python_sdk_iterates_every_lead_once_in_order(app: TestApp) {
    check_sdk(app, Sdk::Python).await;
}

async fn the_legacy_python_sdk_iterates_every_lead_once_in_order(app: TestApp) {
    check_sdk(app, Sdk::PythonLegacy).await;
}
