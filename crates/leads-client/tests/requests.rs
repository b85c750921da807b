//! What the client puts on the wire and how it reads the answers, against a stub that records
//! every request.

mod common;

use common::{Reply, Stub};
use futures_util::{StreamExt, TryStreamExt};
use leads_client::{CreateLeadParams, Error, ListLeadsParams, Timestamp, UpdateLeadParams};
use serde_json::{json, Value};

const COMPANY: &str = "biz_xxxxxxxxxxxxxx";

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn every_request_carries_the_key_and_the_extra_headers() {
    let stub = Stub::start(vec![Reply::lead("lead_a")]).await;
    let client = stub
        .builder()
        .header("Api-Version-Date", "2025-01-01")
        .build()
        .unwrap();
    client.leads().retrieve("lead_a").await.unwrap();
    let seen = &stub.seen()[0];
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.uri.path(), "/api/v1/leads/lead_a");
    assert_eq!(seen.header("authorization"), Some("Bearer key_test"));
    assert_eq!(seen.header("api-version-date"), Some("2025-01-01"));
    assert_eq!(seen.header("accept"), Some("application/json"));
    assert!(seen
        .header("user-agent")
        .is_some_and(|ua| ua.starts_with("leads-client/")));
}

#[tokio::test]
async fn a_list_sends_its_filters_as_the_sdks_do() {
    let stub = Stub::start(vec![Reply::page(&[], None, false)]).await;
    let params = ListLeadsParams::new(COMPANY)
        .product_id("prod_aaaaaaaaaaaaa")
        .product_ids(["prod_bbbbbbbbbbbbb"])
        .created_after(Timestamp::parse("2024-01-01T00:00:00+01:00").unwrap())
        .created_before(Timestamp::from_millis(1_735_689_600_000).unwrap())
        .page_size(50)
        .after("cursor-0");
    stub.client()
        .leads()
        .list(params)
        .first_page()
        .await
        .unwrap();
    let seen = &stub.seen()[0];
    assert_eq!(
        seen.query(),
        pairs(&[
            ("company_id", COMPANY),
            ("product_ids[]", "prod_aaaaaaaaaaaaa"),
            ("product_ids[]", "prod_bbbbbbbbbbbbb"),
            ("created_after", "2023-12-31T23:00:00.000Z"),
            ("created_before", "2025-01-01T00:00:00.000Z"),
            ("first", "50"),
            ("after", "cursor-0"),
        ])
    );
    // The brackets travel percent-encoded, as the TypeScript SDK sends them.
    assert!(seen.uri.query().unwrap().contains("product_ids%5B%5D="));
}

#[tokio::test]
async fn the_stream_follows_end_cursor_until_the_last_page() {
    let stub = Stub::start(vec![
        Reply::page(&["lead_1", "lead_2"], Some("c2"), true),
        Reply::page(&["lead_3", "lead_4"], Some("c4"), true),
        Reply::page(&["lead_5"], Some("c5"), false),
    ])
    .await;
    let ids: Vec<String> = stub
        .client()
        .leads()
        .list(ListLeadsParams::new(COMPANY).page_size(2))
        .map_ok(|lead| lead.id)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids, ["lead_1", "lead_2", "lead_3", "lead_4", "lead_5"]);
    let seen = stub.seen();
    assert_eq!(seen.len(), 3, "has_next_page: false ends the walk");
    let after = |i: usize| {
        seen[i]
            .query()
            .into_iter()
            .find(|(k, _)| k == "after")
            .map(|(_, v)| v)
    };
    assert_eq!(after(0), None);
    assert_eq!(after(1).as_deref(), Some("c2"));
    assert_eq!(after(2).as_deref(), Some("c4"));
    // Every page repeats the first query.
    for request in &seen[1..] {
        let mut query = request.query();
        query.retain(|(k, _)| k != "after");
        assert_eq!(query, seen[0].query());
    }
}

#[tokio::test]
async fn an_empty_page_or_a_missing_cursor_ends_the_walk() {
    let stub = Stub::start(vec![
        Reply::page(&["lead_1"], Some("c1"), true),
        Reply::page(&[], None, true),
    ])
    .await;
    let leads = stub.client().leads().list(ListLeadsParams::new(COMPANY));
    assert_eq!(leads.count().await, 1);
    assert_eq!(stub.seen().len(), 2);

    let stub = Stub::start(vec![Reply::page(&["lead_1"], None, true)]).await;
    let leads = stub.client().leads().list(ListLeadsParams::new(COMPANY));
    assert_eq!(leads.count().await, 1);
    assert_eq!(stub.seen().len(), 1);
}

#[tokio::test]
async fn nothing_is_sent_until_the_stream_is_polled_and_an_error_ends_it() {
    let stub = Stub::start(vec![
        Reply::page(&["lead_1"], Some("c1"), true),
        Reply::error(
            400,
            "invalid_request_error",
            "Invalid parameter after: bad cursor.",
        ),
        Reply::page(&["lead_2"], Some("c2"), false),
    ])
    .await;
    let mut leads = stub.client().leads().list(ListLeadsParams::new(COMPANY));
    assert!(stub.seen().is_empty());
    assert_eq!(leads.next().await.unwrap().unwrap().id, "lead_1");
    let error = leads.next().await.unwrap().unwrap_err();
    assert!(matches!(error, Error::BadRequest(_)), "{error:?}");
    assert!(leads.next().await.is_none());
    assert_eq!(stub.seen().len(), 2);
}

#[tokio::test]
async fn pages_walk_one_request_at_a_time() {
    let stub = Stub::start(vec![
        Reply::page(&["lead_1", "lead_2"], Some("c2"), true),
        Reply::page(&["lead_3"], Some("c3"), false),
    ])
    .await;
    let list = stub.client().leads().list(ListLeadsParams::new(COMPANY));
    let sizes: Vec<usize> = list
        .pages()
        .map_ok(|page| page.data().len())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(sizes, [2, 1]);
}

#[tokio::test]
async fn a_create_posts_the_body_the_contract_names() {
    let stub = Stub::start(vec![Reply::lead("lead_a")]).await;
    stub.client()
        .leads()
        .create(
            CreateLeadParams::new(COMPANY)
                .user_id("user_xxxxxxxxxxxxx")
                .product_id("prod_xxxxxxxxxxxxx")
                .referrer("https://example.com/")
                .metadata(json!({"a": [1, 2]})),
        )
        .await
        .unwrap();
    let seen = &stub.seen()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.uri.path(), "/api/v1/leads");
    assert_eq!(seen.header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(
        body,
        json!({
            "company_id": COMPANY,
            "user_id": "user_xxxxxxxxxxxxx",
            "product_id": "prod_xxxxxxxxxxxxx",
            "referrer": "https://example.com/",
            "metadata": {"a": [1, 2]},
        })
    );
}

#[tokio::test]
async fn an_update_tells_leave_as_is_from_set_to_null() {
    let stub = Stub::start(vec![Reply::lead("lead_a"), Reply::lead("lead_a")]).await;
    let leads = stub.client().leads();
    leads
        .update(
            "lead_a",
            UpdateLeadParams::new()
                .clear_metadata()
                .referrer("https://x.test/"),
        )
        .await
        .unwrap();
    leads
        .update("lead_a", UpdateLeadParams::new().clear_referrer())
        .await
        .unwrap();
    let seen = stub.seen();
    assert_eq!(seen[0].method, "PATCH");
    assert_eq!(seen[0].uri.path(), "/api/v1/leads/lead_a");
    let body = |i: usize| serde_json::from_slice::<Value>(&seen[i].body).unwrap();
    assert_eq!(
        body(0),
        json!({"metadata": null, "referrer": "https://x.test/"})
    );
    assert_eq!(body(1), json!({"referrer": null}));
}

#[tokio::test]
async fn an_error_answer_keeps_everything_the_server_said() {
    let stub = Stub::start(vec![Reply::json(
        400,
        json!({"error": {
            "type": "invalid_request_error",
            "message": "Missing required parameter: company_id.",
            "code": "parameter_missing",
            "param": "company_id",
        }}),
    )
    .header("x-request-id", "req_123")])
    .await;
    let error = stub
        .client()
        .leads()
        .list(ListLeadsParams::new(""))
        .first_page()
        .await
        .unwrap_err();
    let Error::BadRequest(api) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(api.status, 400);
    assert_eq!(api.kind, "invalid_request_error");
    assert_eq!(api.message, "Missing required parameter: company_id.");
    assert_eq!(api.code.as_deref(), Some("parameter_missing"));
    assert_eq!(api.param.as_deref(), Some("company_id"));
    assert_eq!(error.request_id(), Some("req_123"));
}

#[tokio::test]
async fn a_body_that_is_not_the_contracts_is_a_decode_error() {
    let stub = Stub::start(vec![Reply::raw(200, "<html>welcome</html>")]).await;
    let error = stub.client().leads().retrieve("lead_a").await.unwrap_err();
    assert!(
        matches!(error, Error::Decode { status: 200, .. }),
        "{error:?}"
    );

    let stub = Stub::start(vec![Reply::raw(403, "Forbidden by proxy")]).await;
    let error = stub.client().leads().retrieve("lead_a").await.unwrap_err();
    let Error::PermissionDenied(api) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(api.kind, "forbidden");
    assert_eq!(api.message, "Forbidden by proxy");
}
