//! Writing leads over HTTP: POST, GET by id and PATCH, as a client sees them.

mod common;

use common::{Company, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashSet;

conformance!(
    a_created_lead_is_answered_whole_and_reads_back_the_same,
    a_created_lead_is_listed_the_moment_its_post_answers,
    account_id_is_understood_like_company_id,
    bad_input_is_refused_naming_its_parameter_and_writes_nothing,
    a_body_over_64_kib_is_a_json_413,
    a_key_acts_only_for_its_company_and_with_lead_manage,
    a_lead_of_another_company_is_not_found_like_a_missing_one,
    emails_show_only_with_member_email_read,
    an_update_keeps_left_out_fields_clears_nulls_and_replaces_metadata,
    every_update_moves_updated_at_strictly_forward,
    a_retried_post_with_the_same_key_creates_nothing_new,
    the_same_key_with_a_different_body_is_a_conflict,
    idempotency_keys_are_per_credential,
    concurrent_posts_with_one_key_make_one_lead,
    bad_idempotency_keys_are_refused,
    claims_younger_than_the_retention_survive_forgetting,
    a_key_whose_lead_was_deleted_is_a_conflict,
    a_converted_lead_shows_its_member_in_every_read,
    sixty_four_concurrent_posts_all_succeed_and_are_listed_once,
    ids_in_a_body_may_be_any_string_or_an_integer_and_unknown_ones_are_answered_as_before,
    ids_no_id_can_be_are_refused_in_a_body_naming_their_parameter,
    a_path_id_that_names_nothing_is_a_404_and_only_impossible_ones_are_a_400,
    a_key_retried_with_long_odd_ids_is_a_conflict_not_a_failure,
    a_lone_surrogate_escape_in_referrer_or_metadata_is_refused_naming_it,
    a_top_level_key_given_twice_is_refused_naming_it,
);

async fn post(app: &TestApp, key: &str, body: &Value) -> (StatusCode, Value) {
    let (status, _, body) = app
        .send(Method::POST, "/api/v1/leads", key, Some(body), &[])
        .await;
    (status, body)
}

async fn patch(app: &TestApp, key: &str, id: &str, body: &Value) -> (StatusCode, Value) {
    let (status, _, body) = app
        .send(
            Method::PATCH,
            &format!("/api/v1/leads/{id}"),
            key,
            Some(body),
            &[],
        )
        .await;
    (status, body)
}

async fn create(app: &TestApp, company: &Company, body: Value) -> Value {
    let (status, lead) = post(app, &company.key, &body).await;
    assert_eq!(status, StatusCode::OK, "POST {body}: {lead}");
    lead
}

/// A body naming the company and a new user.
async fn body_for(app: &TestApp, company: &Company) -> Value {
    json!({"company_id": company.id, "user_id": app.user().await.id})
}

/// Every lead id of the company, walking the whole list with cursors as the SDKs do, in small
/// pages so the walk crosses many page boundaries.
async fn walk(app: &TestApp, company: &Company) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = String::new();
    loop {
        let (status, page) = app
            .get(
                &format!("/api/v1/leads?company_id={}&first=7{after}", company.id),
                Some(&company.key),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let data = page["data"].as_array().expect("data");
        ids.extend(data.iter().map(|l| l["id"].as_str().unwrap().to_owned()));
        match page["page_info"]["end_cursor"].as_str() {
            Some(cursor) if !data.is_empty() => after = format!("&after={cursor}"),
            _ => return ids,
        }
    }
}

/// An object nested `levels` deep: `{"a":{"a":...{}}}`.
fn nested(levels: usize) -> Value {
    (1..levels).fold(json!({}), |inner, _| json!({ "a": inner }))
}

fn assert_error(body: &Value, kind: &str, param: Option<&str>) {
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    match param {
        Some(param) => assert_eq!(body["error"]["param"], param, "{body}"),
        None => assert!(body["error"].get("param").is_none(), "{body}"),
    }
}

async fn a_created_lead_is_answered_whole_and_reads_back_the_same(app: TestApp) {
    let company = app.company(1, None).await;
    let user = app.user().await;
    let sent_metadata = r#"{"z": 1, "a": {"nested": [1.50, "x"]}}"#;
    let body = format!(
        r#"{{"company_id": "{}", "user_id": "{}", "product_id": "{}", "referrer": "https://twitter.com/x", "metadata": {sent_metadata}}}"#,
        company.id, user.id, company.products[0]
    );
    let response = app
        .http
        .post(format!("{}/api/v1/leads", app.base))
        .bearer_auth(&company.key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, lead) = common::read(response).await;
    assert_eq!(status, StatusCode::OK, "{lead}");
    let id = lead["id"].as_str().unwrap();
    assert!(id.starts_with("lead_") && id.len() == 18, "{id}");
    assert_eq!(lead["created_at"], lead["updated_at"]);
    let created_at = lead["created_at"].as_str().unwrap();
    assert!(
        created_at.ends_with('Z') && created_at.len() == 24,
        "{created_at}"
    );
    assert_eq!(lead["referrer"], "https://twitter.com/x");
    assert_eq!(lead["user"]["id"], user.id);
    assert_eq!(lead["user"]["username"], user.username);
    assert_eq!(lead["user"]["name"], "Some One");
    assert_eq!(lead["product"]["id"], company.products[0]);
    assert_eq!(lead["product"]["title"], "Product 0");
    assert_eq!(lead["member"], Value::Null);
    // Metadata comes back as it was sent, key order and number spelling included.
    let (_, _, raw) = app
        .send(
            Method::GET,
            &format!("/api/v1/leads/{id}"),
            &company.key,
            None,
            &[],
        )
        .await;
    assert_eq!(raw, lead);
    let text = app
        .http
        .get(format!("{}/api/v1/leads/{id}", app.base))
        .bearer_auth(&company.key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#""metadata":{"z":1,"a":{"nested":[1.50,"x"]}}"#),
        "{text}"
    );
    // Left out and null are alike on create.
    let bare = create(
        &app,
        &company,
        json!({"company_id": company.id, "user_id": user.id, "referrer": null}),
    )
    .await;
    for key in ["referrer", "metadata", "product", "member"] {
        assert_eq!(bare[key], Value::Null, "{key}: {bare}");
    }
}

async fn a_created_lead_is_listed_the_moment_its_post_answers(app: TestApp) {
    let company = app.company(0, None).await;
    for _ in 0..20 {
        let lead = create(&app, &company, body_for(&app, &company).await).await;
        let page = app
            .get(
                &format!("/api/v1/leads?company_id={}&first=1", company.id),
                Some(&company.key),
            )
            .await
            .1;
        assert_eq!(page["data"][0]["id"], lead["id"], "{page}");
    }
}

async fn account_id_is_understood_like_company_id(app: TestApp) {
    let company = app.company(0, None).await;
    let user = app.user().await;
    let lead = create(
        &app,
        &company,
        json!({"account_id": company.id, "user_id": user.id}),
    )
    .await;
    assert_eq!(lead["user"]["id"], user.id);
    create(
        &app,
        &company,
        json!({"account_id": company.id, "company_id": company.id, "user_id": user.id}),
    )
    .await;
}

async fn bad_input_is_refused_naming_its_parameter_and_writes_nothing(app: TestApp) {
    let company = app.company(1, None).await;
    let other = app.company(1, None).await;
    let user = app.user().await.id;
    let base = json!({"company_id": company.id, "user_id": user});
    let with = |key: &str, value: Value| {
        let mut body = base.clone();
        body[key] = value;
        body
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"user_id": user}), "company_id", "parameter_missing"),
        (
            json!({"company_id": company.id}),
            "user_id",
            "parameter_missing",
        ),
        (
            with("company_id", json!("")),
            "company_id",
            "parameter_invalid",
        ),
        (
            with("account_id", json!(other.id)),
            "account_id",
            "parameter_invalid",
        ),
        (
            with("user_id", json!("user_0000000000000")),
            "user_id",
            "parameter_invalid",
        ),
        (with("user_id", json!(5)), "user_id", "parameter_invalid"),
        (
            with("product_id", json!(other.products[0])),
            "product_id",
            "parameter_invalid",
        ),
        (
            with("product_id", json!("prod_0000000000000")),
            "product_id",
            "parameter_invalid",
        ),
        (
            with("product_id", json!(["x"])),
            "product_id",
            "parameter_invalid",
        ),
        (
            with("metadata", json!([1, 2])),
            "metadata",
            "parameter_invalid",
        ),
        (
            with("metadata", json!("{}")),
            "metadata",
            "parameter_invalid",
        ),
        (
            with("metadata", nested(17)),
            "metadata",
            "parameter_invalid",
        ),
        (
            with("metadata", json!({"a": "x".repeat(16 * 1024)})),
            "metadata",
            "parameter_invalid",
        ),
        (
            with("referrer", json!("x".repeat(2049))),
            "referrer",
            "parameter_invalid",
        ),
        (
            with("referrer", json!("https://x.com/\u{7}")),
            "referrer",
            "parameter_invalid",
        ),
        (with("referrer", json!(5)), "referrer", "parameter_invalid"),
        (
            with("referrer", json!({"url": "x"})),
            "referrer",
            "parameter_invalid",
        ),
    ];
    for (body, param, code) in cases {
        let (status, error) = post(&app, &company.key, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_error(&error, "invalid_request_error", Some(param));
        assert_eq!(error["error"]["code"], code, "{body}: {error}");
    }
    // Exactly at the limits is fine.
    let mut limits = with("referrer", json!("é".repeat(2048)));
    limits["metadata"] = nested(16);
    create(&app, &company, limits).await;

    let raw = |content_type: &'static str, text: &'static str| {
        app.http
            .post(format!("{}/api/v1/leads", app.base))
            .bearer_auth(&company.key)
            .header("content-type", content_type)
            .body(text)
            .send()
    };
    for text in [r#"{"company_id": "#, "{,}", "[]", "nul", r#"{"a": 1} {"#] {
        let (status, error) = common::read(raw("application/json", text).await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}: {error}");
        assert_error(&error, "invalid_request_error", None);
        assert_eq!(error["error"]["code"], "invalid_json", "{text}");
    }
    let (status, error) = common::read(raw("text/plain", r#"{"a": 1}"#).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&error, "invalid_request_error", Some("Content-Type"));

    assert_eq!(walk(&app, &company).await.len(), 1, "only the valid lead");
}

async fn a_body_over_64_kib_is_a_json_413(app: TestApp) {
    let company = app.company(0, None).await;
    let mut body = body_for(&app, &company).await;
    body["padding"] = json!("x".repeat(64 * 1024));
    let (status, error) = post(&app, &company.key, &body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{error}");
    assert_error(&error, "invalid_request_error", None);
    let lead = create(&app, &company, body_for(&app, &company).await).await;
    let (status, error) = patch(&app, &company.key, lead["id"].as_str().unwrap(), &body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{error}");
    assert!(walk(&app, &company).await.len() == 1);
}

async fn a_key_acts_only_for_its_company_and_with_lead_manage(app: TestApp) {
    let company = app.company(0, None).await;
    let other = app.company(0, None).await;
    let user = app.user().await.id;
    let (status, error) = post(
        &app,
        &company.key,
        &json!({"company_id": other.id, "user_id": user}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&error, "forbidden", None);

    let reader = app
        .key(
            &company,
            Some("lead:basic:read,member:basic:read,access_pass:basic:read"),
        )
        .await;
    let body = json!({"company_id": company.id, "user_id": user});
    let (status, error) = post(&app, &reader, &body).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("lead:manage"));
    let lead = create(&app, &company, body).await;
    let id = lead["id"].as_str().unwrap();
    let (status, _) = patch(&app, &reader, id, &json!({"referrer": "x"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, read) = app.get(&format!("/api/v1/leads/{id}"), Some(&reader)).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(
        read["referrer"],
        Value::Null,
        "the refused PATCH changed nothing"
    );

    let (status, error) = app.get(&format!("/api/v1/leads/{id}"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&error, "unauthorized", None);
    let manager_only = app.key(&company, Some("lead:manage")).await;
    let (status, _) = app
        .get(&format!("/api/v1/leads/{id}"), Some(&manager_only))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn a_lead_of_another_company_is_not_found_like_a_missing_one(app: TestApp) {
    let company = app.company(0, None).await;
    let other = app.company(0, None).await;
    let theirs = create(&app, &other, body_for(&app, &other).await).await;
    let theirs = theirs["id"].as_str().unwrap();
    let mut answers = Vec::new();
    for id in [
        theirs,
        "lead_0000000000000",
        "lead_",
        "nonsense",
        "lead_000000000000%FF",
    ] {
        let (status, error) = app
            .get(&format!("/api/v1/leads/{id}"), Some(&company.key))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}: {error}");
        answers.push(error);
        let (status, error) = patch(&app, &company.key, id, &json!({"referrer": "mine"})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}: {error}");
        answers.push(error);
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert_error(&answers[0], "not_found", None);
    let (_, still) = app
        .get(&format!("/api/v1/leads/{theirs}"), Some(&other.key))
        .await;
    assert_eq!(
        still["referrer"],
        Value::Null,
        "the other company's lead is untouched"
    );
}

async fn emails_show_only_with_member_email_read(app: TestApp) {
    let company = app.company(0, None).await;
    let without = app
        .key(
            &company,
            Some("lead:manage,lead:basic:read,member:basic:read,access_pass:basic:read"),
        )
        .await;
    let (status, lead) = post(&app, &without, &body_for(&app, &company).await).await;
    assert_eq!(status, StatusCode::OK, "{lead}");
    assert_eq!(lead["user"]["email"], Value::Null);
    let id = lead["id"].as_str().unwrap();
    let (_, read) = app
        .get(&format!("/api/v1/leads/{id}"), Some(&without))
        .await;
    assert_eq!(read["user"]["email"], Value::Null);
    let (_, updated) = patch(&app, &without, id, &json!({})).await;
    assert_eq!(updated["user"]["email"], Value::Null);
    let (_, read) = app
        .get(&format!("/api/v1/leads/{id}"), Some(&company.key))
        .await;
    assert_eq!(read["user"]["email"], "someone@example.com");
}

async fn an_update_keeps_left_out_fields_clears_nulls_and_replaces_metadata(app: TestApp) {
    let company = app.company(0, None).await;
    let mut body = body_for(&app, &company).await;
    body["referrer"] = json!("https://a.example/");
    body["metadata"] = json!({"a": 1, "b": 2});
    let older = create(&app, &company, body).await;
    let newer = create(&app, &company, body_for(&app, &company).await).await;
    let id = older["id"].as_str().unwrap();

    let (status, changed) = patch(&app, &company.key, id, &json!({"metadata": {"c": 3}})).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["metadata"], json!({"c": 3}), "replaced, not merged");
    assert_eq!(changed["referrer"], "https://a.example/", "left out, kept");
    assert_eq!(changed["created_at"], older["created_at"]);
    assert_eq!(changed["user"], older["user"]);

    let (_, changed) = patch(&app, &company.key, id, &json!({"referrer": null})).await;
    assert_eq!(changed["referrer"], Value::Null);
    assert_eq!(changed["metadata"], json!({"c": 3}));
    let (_, changed) = patch(
        &app,
        &company.key,
        id,
        &json!({"metadata": null, "referrer": "https://b.example/", "unknown": true}),
    )
    .await;
    assert_eq!(changed["metadata"], Value::Null);
    assert_eq!(changed["referrer"], "https://b.example/");
    let (_, read) = app
        .get(&format!("/api/v1/leads/{id}"), Some(&company.key))
        .await;
    assert_eq!(read, changed);

    let (status, error) = patch(&app, &company.key, id, &json!({"metadata": [1]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&error, "invalid_request_error", Some("metadata"));
    let (status, error) = patch(&app, &company.key, id, &json!({"referrer": 1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&error, "invalid_request_error", Some("referrer"));

    // Updating never moves a lead in the list.
    let order = walk(&app, &company).await;
    assert_eq!(order, [newer["id"].as_str().unwrap(), id]);
}

async fn every_update_moves_updated_at_strictly_forward(app: TestApp) {
    let company = app.company(0, None).await;
    let lead = create(&app, &company, body_for(&app, &company).await).await;
    let id = lead["id"].as_str().unwrap();
    let mut last = lead["updated_at"].as_str().unwrap().to_owned();
    for i in 0..20 {
        // An empty PATCH is a write too.
        let body = if i % 2 == 0 {
            json!({})
        } else {
            json!({"referrer": "r"})
        };
        let (status, changed) = patch(&app, &company.key, id, &body).await;
        assert_eq!(status, StatusCode::OK, "{changed}");
        let now = changed["updated_at"].as_str().unwrap().to_owned();
        assert!(now > last, "{now} after {last}");
        assert_eq!(changed["created_at"], lead["created_at"]);
        last = now;
    }
    // No body at all is an empty change, too.
    let response = app
        .http
        .patch(format!("{}/api/v1/leads/{id}", app.base))
        .bearer_auth(&company.key)
        .send()
        .await
        .unwrap();
    let (status, changed) = common::read(response).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert!(changed["updated_at"].as_str().unwrap() > last.as_str());
}

async fn post_with_key(
    app: &TestApp,
    key: &str,
    idempotency_key: &str,
    body: &Value,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    app.send(
        Method::POST,
        "/api/v1/leads",
        key,
        Some(body),
        &[("Idempotency-Key", idempotency_key)],
    )
    .await
}

async fn a_retried_post_with_the_same_key_creates_nothing_new(app: TestApp) {
    let company = app.company(0, None).await;
    let body = body_for(&app, &company).await;
    let (status, headers, first) = post_with_key(&app, &company.key, "retry-1", &body).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert!(headers.get("idempotent-replayed").is_none());
    for _ in 0..3 {
        let (status, headers, again) = post_with_key(&app, &company.key, "retry-1", &body).await;
        assert_eq!(status, StatusCode::OK, "{again}");
        assert_eq!(again, first);
        assert_eq!(headers["idempotent-replayed"], "true");
    }
    // The same body under another key, or none, is another lead.
    let (_, _, second) = post_with_key(&app, &company.key, "retry-2", &body).await;
    assert_ne!(second["id"], first["id"]);
    create(&app, &company, body).await;
    assert_eq!(walk(&app, &company).await.len(), 3);
}

async fn the_same_key_with_a_different_body_is_a_conflict(app: TestApp) {
    let company = app.company(0, None).await;
    let body = body_for(&app, &company).await;
    post_with_key(&app, &company.key, "k", &body).await;
    let mut changed = body.clone();
    changed["referrer"] = json!("https://elsewhere.example/");
    let (status, headers, error) = post_with_key(&app, &company.key, "k", &changed).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_error(&error, "conflict", None);
    assert_eq!(headers["x-should-retry"], "false");
    assert_eq!(walk(&app, &company).await.len(), 1);
}

async fn idempotency_keys_are_per_credential(app: TestApp) {
    let company = app.company(0, None).await;
    let second_key = app.key(&company, None).await;
    let body = body_for(&app, &company).await;
    let (_, _, mine) = post_with_key(&app, &company.key, "shared", &body).await;
    let (status, _, theirs) = post_with_key(&app, &second_key, "shared", &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(mine["id"], theirs["id"]);
    assert_eq!(walk(&app, &company).await.len(), 2);
}

async fn concurrent_posts_with_one_key_make_one_lead(app: TestApp) {
    let company = app.company(0, None).await;
    let body = body_for(&app, &company).await;
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (app, key, body) = (app.clone(), company.key.clone(), body.clone());
            tokio::spawn(async move { post_with_key(&app, &key, "same", &body).await })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in tasks {
        let (status, _, lead) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{lead}");
        ids.insert(lead["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(walk(&app, &company).await.len(), 1);
}

async fn bad_idempotency_keys_are_refused(app: TestApp) {
    let company = app.company(0, None).await;
    let body = body_for(&app, &company).await;
    let longest = "k".repeat(255);
    let (status, _, _) = post_with_key(&app, &company.key, &longest, &body).await;
    assert_eq!(status, StatusCode::OK);
    for bad in ["k".repeat(256), String::new()] {
        let (status, _, error) = post_with_key(&app, &company.key, &bad, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        assert_error(&error, "invalid_request_error", Some("Idempotency-Key"));
    }
    assert_eq!(walk(&app, &company).await.len(), 1);
}

async fn claims_younger_than_the_retention_survive_forgetting(app: TestApp) {
    use leads_server::domain::{idempotency::RETENTION, Timestamp};
    assert!(RETENTION.as_secs() >= 24 * 60 * 60);
    let company = app.company(0, None).await;
    let body = body_for(&app, &company).await;
    let (_, _, first) = post_with_key(&app, &company.key, "kept", &body).await;
    let now = Timestamp::now().as_millis();
    let cutoff = now - RETENTION.as_millis() as i64;
    assert_eq!(
        app.stores
            .leads
            .forget_idempotency_claims(cutoff, 100)
            .await
            .unwrap(),
        0
    );
    let (_, headers, again) = post_with_key(&app, &company.key, "kept", &body).await;
    assert_eq!(again["id"], first["id"]);
    assert_eq!(headers["idempotent-replayed"], "true");
    // Once forgotten, the key is free again.
    assert_eq!(
        app.stores
            .leads
            .forget_idempotency_claims(now + 1, 100)
            .await
            .unwrap(),
        1
    );
    let (_, _, fresh) = post_with_key(&app, &company.key, "kept", &body).await;
    assert_ne!(fresh["id"], first["id"]);
}

async fn a_key_whose_lead_was_deleted_is_a_conflict(app: TestApp) {
    let company = app.company(0, None).await;
    let body = body_for(&app, &company).await;
    let (_, _, lead) = post_with_key(&app, &company.key, "gone", &body).await;
    leads_server::admin::delete_lead(app.stores.leads.as_ref(), lead["id"].as_str().unwrap())
        .await
        .unwrap();
    let (status, _, error) = post_with_key(&app, &company.key, "gone", &body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert!(walk(&app, &company).await.is_empty());
}

async fn a_converted_lead_shows_its_member_in_every_read(app: TestApp) {
    let company = app.company(0, None).await;
    let other = app.company(0, None).await;
    let user = app.user().await;
    let body = json!({"company_id": company.id, "user_id": user.id});
    let lead = create(&app, &company, body.clone()).await;
    let elsewhere = create(
        &app,
        &other,
        json!({"company_id": other.id, "user_id": user.id}),
    )
    .await;
    assert_eq!(lead["member"], Value::Null);
    let member =
        leads_server::admin::create_member(app.stores.directory.as_ref(), &company.id, &user.id)
            .await
            .unwrap();
    let shown = json!({"id": member.id});
    let id = lead["id"].as_str().unwrap();
    let (_, read) = app
        .get(&format!("/api/v1/leads/{id}"), Some(&company.key))
        .await;
    assert_eq!(read["member"], shown);
    let (_, listed) = app
        .get(
            &format!("/api/v1/leads?company_id={}", company.id),
            Some(&company.key),
        )
        .await;
    assert_eq!(listed["data"][0]["member"], shown);
    let (_, updated) = patch(&app, &company.key, id, &json!({"referrer": "r"})).await;
    assert_eq!(updated["member"], shown);
    let again = create(&app, &company, body).await;
    assert_eq!(again["member"], shown);
    // Membership is per company.
    let (_, theirs) = app
        .get(
            &format!("/api/v1/leads/{}", elsewhere["id"].as_str().unwrap()),
            Some(&other.key),
        )
        .await;
    assert_eq!(theirs["member"], Value::Null);
}

async fn sixty_four_concurrent_posts_all_succeed_and_are_listed_once(app: TestApp) {
    let company = app.company(0, None).await;
    let user = app.user().await;
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let app = app.clone();
            let key = company.key.clone();
            let body = json!({"company_id": company.id, "user_id": user.id, "metadata": {"i": i}});
            tokio::spawn(async move { post(&app, &key, &body).await })
        })
        .collect();
    let mut created = HashSet::new();
    for task in tasks {
        let (status, lead) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{lead}");
        created.insert(lead["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(created.len(), 64);
    let listed = walk(&app, &company).await;
    assert_eq!(listed.len(), 64, "each exactly once");
    assert_eq!(listed.into_iter().collect::<HashSet<_>>(), created);
}

/// A request with a raw JSON text as its body, for what `serde_json::Value` cannot express (a
/// key twice, a lone surrogate escape).
async fn send_text(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    text: &str,
) -> (StatusCode, Value) {
    let response = app
        .http
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(text.to_owned())
        .send()
        .await
        .unwrap();
    common::read(response).await
}

/// The parts of an error a client acts on: status, type, code and param.
fn gist(status: StatusCode, body: &Value) -> (StatusCode, Value, Value, Value) {
    let error = &body["error"];
    (
        status,
        error["type"].clone(),
        error["code"].clone(),
        error["param"].clone(),
    )
}

/// Whop's reference: "any string (such as "VXNlci0xMA==") or integer (such as 4) input value will
/// be accepted as an ID". One that names nothing gets the answer an unknown id of our own shape
/// gets.
async fn ids_in_a_body_may_be_any_string_or_an_integer_and_unknown_ones_are_answered_as_before(
    app: TestApp,
) {
    let company = app.company(1, None).await;
    let user = app.user().await.id;
    let base = json!({"company_id": company.id, "user_id": user});
    let with = |key: &str, value: Value| {
        let mut body = base.clone();
        body[key] = value;
        body
    };
    let long = "é".repeat(255);
    let odd_ids = [
        json!(4),
        json!(-4),
        json!("4"),
        json!("VXNlci0xMA=="),
        json!(long),
    ];
    for (field, unknown_of_our_shape, more) in [
        (
            "user_id",
            "user_0000000000000",
            json!("user_doesnotexist00"),
        ),
        (
            "product_id",
            "prod_0000000000000",
            json!("prod_doesnotexist00"),
        ),
        (
            "company_id",
            "biz_00000000000000",
            json!("biz_doesnotexist000"),
        ),
        (
            "account_id",
            "biz_00000000000000",
            json!("biz_doesnotexist000"),
        ),
    ] {
        let body = if field == "account_id" {
            json!({"account_id": unknown_of_our_shape, "user_id": user})
        } else {
            with(field, json!(unknown_of_our_shape))
        };
        let (status, expected) = post(&app, &company.key, &body).await;
        assert!(status.is_client_error(), "{body}: {expected}");
        let expected = gist(status, &expected);
        for id in odd_ids.iter().chain([&more]) {
            let body = if field == "account_id" {
                json!({"account_id": id, "user_id": user})
            } else {
                with(field, id.clone())
            };
            let (status, error) = post(&app, &company.key, &body).await;
            assert_eq!(gist(status, &error), expected, "{body}: {error}");
        }
    }
    // An integer is its decimal text: company_id 4 and account_id "4" agree.
    let (status, error) = post(
        &app,
        &company.key,
        &json!({"company_id": 4, "account_id": "4", "user_id": user}),
    )
    .await;
    assert_ne!(error["error"]["param"], "account_id", "{status}: {error}");
    assert!(walk(&app, &company).await.is_empty(), "nothing was written");
}

async fn ids_no_id_can_be_are_refused_in_a_body_naming_their_parameter(app: TestApp) {
    let company = app.company(1, None).await;
    let user = app.user().await.id;
    let base = json!({"company_id": company.id, "user_id": user});
    for field in ["company_id", "account_id", "user_id", "product_id"] {
        for bad in [
            json!(""),
            json!("x".repeat(256)),
            json!("é".repeat(256)),
            json!("a\u{0}b"),
            json!("a\tb"),
            json!("\u{7f}"),
            json!(4.5),
            json!(true),
            json!({"id": "x"}),
        ] {
            let mut body = base.clone();
            if field == "account_id" {
                body.as_object_mut().unwrap().remove("company_id");
            }
            body[field] = bad.clone();
            let (status, error) = post(&app, &company.key, &body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
            assert_error(&error, "invalid_request_error", Some(field));
            assert_eq!(error["error"]["code"], "parameter_invalid", "{body}");
        }
    }
    assert!(walk(&app, &company).await.is_empty(), "nothing was written");
}

async fn a_path_id_that_names_nothing_is_a_404_and_only_impossible_ones_are_a_400(app: TestApp) {
    let company = app.company(0, None).await;
    let lead = create(&app, &company, body_for(&app, &company).await).await;
    let (_, missing) = app
        .get("/api/v1/leads/lead_0000000000000", Some(&company.key))
        .await;
    let long = "é".repeat(255);
    for id in [
        "4",
        "lead_doesnotexist00",
        "VXNlci0xMA==",
        "%20spaced%20",
        long.as_str(),
    ] {
        let (status, error) = app
            .get(&format!("/api/v1/leads/{id}"), Some(&company.key))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}: {error}");
        assert_eq!(error, missing, "{id}");
        let (status, error) = patch(&app, &company.key, id, &json!({"referrer": "x"})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}: {error}");
        assert_eq!(error, missing, "{id}");
    }
    let too_long = "x".repeat(256);
    for id in [too_long.as_str(), "a%01b", "a%09b", "%7F"] {
        let (status, error) = app
            .get(&format!("/api/v1/leads/{id}"), Some(&company.key))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{id}: {error}");
        assert_error(&error, "invalid_request_error", Some("id"));
        let (status, error) = patch(&app, &company.key, id, &json!({"referrer": "x"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{id}: {error}");
        assert_error(&error, "invalid_request_error", Some("id"));
    }
    let (_, _, unchanged) = app
        .send(
            Method::GET,
            &format!("/api/v1/leads/{}", lead["id"].as_str().unwrap()),
            &company.key,
            None,
            &[],
        )
        .await;
    assert_eq!(unchanged, lead);
}

/// The idempotency fingerprint and the claim lookup take ids of any length and script.
async fn a_key_retried_with_long_odd_ids_is_a_conflict_not_a_failure(app: TestApp) {
    let company = app.company(0, None).await;
    let body = body_for(&app, &company).await;
    let (status, _, first) = post_with_key(&app, &company.key, "odd", &body).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    for odd in [json!("é".repeat(255)), json!(4), json!("user_\u{1F600}")] {
        let mut changed = body.clone();
        changed["user_id"] = odd;
        let (status, _, error) = post_with_key(&app, &company.key, "odd", &changed).await;
        assert_eq!(status, StatusCode::CONFLICT, "{changed}: {error}");
        assert_error(&error, "conflict", None);
    }
    let (status, headers, again) = post_with_key(&app, &company.key, "odd", &body).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(again, first);
}

async fn a_lone_surrogate_escape_in_referrer_or_metadata_is_refused_naming_it(app: TestApp) {
    let company = app.company(0, None).await;
    let user = app.user().await.id;
    let lead = create(
        &app,
        &company,
        json!({"company_id": company.id, "user_id": user, "referrer": "https://before"}),
    )
    .await;
    let id = lead["id"].as_str().unwrap();
    let fields = format!(r#""company_id": "{}", "user_id": "{user}""#, company.id);
    for (field, value) in [
        ("referrer", r#""\ud800""#),
        ("referrer", r#""https://x.com/\uDBFF""#),
        ("referrer", r#""\udc00 trailing first""#),
        ("referrer", r#""\ud83d\u0041""#),
        ("metadata", r#"{"a": "\ud800"}"#),
        ("metadata", r#"{"\ud800": 1}"#),
        ("metadata", r#"{"a": {"b": [1, {"c": "x\udfffy"}]}}"#),
    ] {
        let create_text = format!(r#"{{{fields}, "{field}": {value}}}"#);
        let update_text = format!(r#"{{"{field}": {value}}}"#);
        for (method, path, text) in [
            (Method::POST, "/api/v1/leads".to_owned(), &create_text),
            (Method::PATCH, format!("/api/v1/leads/{id}"), &update_text),
        ] {
            let (status, error) = send_text(&app, method.clone(), &path, &company.key, text).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {text}: {error}");
            assert_error(&error, "invalid_request_error", Some(field));
            assert_eq!(error["error"]["code"], "parameter_invalid", "{text}");
            let message = error["error"]["message"].as_str().unwrap();
            assert!(message.contains("not valid Unicode"), "{message}");
        }
    }
    // A pair that spells one character is fine, and reads back as that character.
    let text =
        format!(r#"{{{fields}, "referrer": "\ud83d\ude00", "metadata": {{"e": "\ud83d\ude00"}}}}"#);
    let (status, made) = send_text(&app, Method::POST, "/api/v1/leads", &company.key, &text).await;
    assert_eq!(status, StatusCode::OK, "{made}");
    assert_eq!(made["referrer"], "\u{1F600}");
    assert_eq!(made["metadata"]["e"], "\u{1F600}");
    let (_, _, unchanged) = app
        .send(
            Method::GET,
            &format!("/api/v1/leads/{id}"),
            &company.key,
            None,
            &[],
        )
        .await;
    assert_eq!(unchanged, lead, "no refused update was written");
    assert_eq!(
        walk(&app, &company).await.len(),
        2,
        "no refused create was written"
    );
}

async fn a_top_level_key_given_twice_is_refused_naming_it(app: TestApp) {
    let company = app.company(0, None).await;
    let user = app.user().await.id;
    let lead = create(
        &app,
        &company,
        json!({"company_id": company.id, "user_id": user}),
    )
    .await;
    let id = lead["id"].as_str().unwrap();
    let fields = format!(r#""company_id": "{}", "user_id": "{user}""#, company.id);
    for (key, twice) in [
        (
            "referrer",
            r#""referrer": "https://a", "referrer": "https://b""#,
        ),
        ("referrer", r#""referrer": null, "referrer": "https://b""#),
        ("metadata", r#""metadata": {"a": 1}, "metadata": {"a": 2}"#),
        (
            "referrer",
            r#""referrer": "https://a", "r\u0065ferrer": "https://a""#,
        ),
    ] {
        let create_text = format!("{{{fields}, {twice}}}");
        let update_text = format!("{{{twice}}}");
        for (method, path, text) in [
            (Method::POST, "/api/v1/leads".to_owned(), &create_text),
            (Method::PATCH, format!("/api/v1/leads/{id}"), &update_text),
        ] {
            let (status, error) = send_text(&app, method.clone(), &path, &company.key, text).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {text}: {error}");
            assert_error(&error, "invalid_request_error", Some(key));
            assert_eq!(error["error"]["code"], "parameter_invalid", "{text}");
            let message = error["error"]["message"].as_str().unwrap();
            assert!(message.contains("given more than once"), "{message}");
        }
    }
    // The ids too, and the query string's wording is the same.
    let text = format!(r#"{{{fields}, "user_id": "{user}"}}"#);
    let (status, error) = send_text(&app, Method::POST, "/api/v1/leads", &company.key, &text).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_error(&error, "invalid_request_error", Some("user_id"));
    let (_, query_error) = app
        .get(
            &format!("/api/v1/leads?company_id={}&first=1&first=2", company.id),
            Some(&company.key),
        )
        .await;
    assert_eq!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .replace("user_id", "first"),
        query_error["error"]["message"].as_str().unwrap()
    );
    let (_, _, unchanged) = app
        .send(
            Method::GET,
            &format!("/api/v1/leads/{id}"),
            &company.key,
            None,
            &[],
        )
        .await;
    assert_eq!(unchanged, lead, "no refused update was written");
    assert_eq!(
        walk(&app, &company).await.len(),
        1,
        "no refused create was written"
    );
}
