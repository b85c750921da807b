//! The official SDKs, unmodified, create, retrieve and update leads against the server, and
//! their typed errors come out right. Drivers and install script: `tests/sdk/` at the repo root.
//!
//! Without the SDKs installed (`bash tests/sdk/install.sh`) these tests say SKIPPED on stderr
//! and pass, unless `LEADS_REQUIRE_SDK_TESTS=1`, when they fail instead (see [`Sdk::command`]).

mod common;

use common::{Sdk, TestApp};
use serde_json::{json, Value};

conformance!(
    the_typescript_sdk_creates_retrieves_and_updates_leads,
    the_typescript_sdk_raises_typed_errors,
    the_python_sdk_creates_retrieves_and_updates_leads,
    the_python_sdk_raises_typed_errors,
    the_legacy_python_sdk_creates_retrieves_and_updates_leads,
    the_legacy_python_sdk_raises_typed_errors,
);

/// The lead a driver answered, which must be a success.
fn ok(answer: Value) -> Value {
    assert!(answer.get("error").is_none(), "{answer}");
    answer["ok"].clone()
}

/// The error a driver answered, which must be one.
fn error(answer: Value) -> Value {
    assert!(answer.get("ok").is_none(), "{answer}");
    answer["error"].clone()
}

async fn creates_retrieves_and_updates(sdk: Sdk, app: TestApp) {
    let company = app.company(1, None).await;
    let user = app.user().await;
    let key = company.key.as_str();
    let body = json!({
        "company_id": company.id, "user_id": user.id, "product_id": company.products[0],
        "referrer": "https://twitter.com/whabormarket", "metadata": {"source": "sdk", "n": 1},
    });
    let Some(created) = sdk.run(&app, key, "create", json!({"body": body})).await else {
        return;
    };
    let created = ok(created);
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["user"]["id"], user.id);
    assert_eq!(created["product"]["id"], company.products[0]);
    assert_eq!(created["metadata"], json!({"source": "sdk", "n": 1}));

    let retrieved = sdk.run(&app, key, "retrieve", json!({"id": id})).await;
    assert_eq!(ok(retrieved.unwrap()), created);

    let update = json!({"id": id, "body": {"metadata": {"stage": "contacted"}}});
    let updated = ok(sdk.run(&app, key, "update", update).await.unwrap());
    assert_eq!(updated["metadata"], json!({"stage": "contacted"}));
    assert_eq!(updated["referrer"], created["referrer"]);
    assert_eq!(updated["created_at"], created["created_at"]);
    assert!(updated["updated_at"].as_str() > created["updated_at"].as_str());

    let clear = json!({"id": id, "body": {"referrer": null}});
    let cleared = ok(sdk.run(&app, key, "update", clear).await.unwrap());
    assert_eq!(cleared["referrer"], Value::Null);
    assert_eq!(cleared["metadata"], json!({"stage": "contacted"}));

    // A retry under the same idempotency key is the same lead.
    let retried = json!({"body": body, "idempotency_key": format!("{sdk:?}-retry")});
    let first = ok(sdk.run(&app, key, "create", retried.clone()).await.unwrap());
    let again = ok(sdk.run(&app, key, "create", retried).await.unwrap());
    assert_eq!(first["id"], again["id"]);
    assert_ne!(first["id"], created["id"]);
}

async fn raises_typed_errors(sdk: Sdk, app: TestApp) {
    let company = app.company(0, None).await;
    let user = app.user().await;
    let key = company.key.as_str();

    let missing = json!({"id": "lead_0000000000000"});
    let Some(not_found) = sdk.run(&app, key, "retrieve", missing).await else {
        return;
    };
    let not_found = error(not_found);
    assert_eq!(not_found["class"], "NotFoundError", "{not_found}");
    assert_eq!(not_found["status"], 404);
    assert_eq!(not_found["body"]["error"]["type"], "not_found");

    let too_big = json!({"company_id": company.id, "user_id": user.id, "metadata": {"a": "x".repeat(17_000)}});
    let bad_request = error(
        sdk.run(&app, key, "create", json!({"body": too_big}))
            .await
            .unwrap(),
    );
    assert_eq!(bad_request["class"], "BadRequestError", "{bad_request}");
    assert_eq!(bad_request["body"]["error"]["param"], "metadata");

    let unknown_user = json!({"company_id": company.id, "user_id": "user_0000000000000"});
    let bad_request = error(
        sdk.run(&app, key, "create", json!({"body": unknown_user}))
            .await
            .unwrap(),
    );
    assert_eq!(bad_request["class"], "BadRequestError", "{bad_request}");
    assert_eq!(bad_request["body"]["error"]["param"], "user_id");

    let first =
        json!({"body": {"company_id": company.id, "user_id": user.id}, "idempotency_key": "k"});
    ok(sdk.run(&app, key, "create", first).await.unwrap());
    // Retries on, as by default: the conflict must still be answered in one request, since the
    // server says it is not worth retrying.
    let reused = json!({
        "body": {"company_id": company.id, "user_id": user.id, "referrer": "https://other.example/"},
        "idempotency_key": "k",
        "max_retries": 2,
    });
    let answer = sdk.run(&app, key, "create", reused).await.unwrap();
    let requests = answer["requests"].as_array().map_or(0, Vec::len);
    let conflict = error(answer);
    assert_eq!(conflict["status"], 409, "{conflict}");
    assert_eq!(conflict["body"]["error"]["type"], "conflict");
    match sdk {
        Sdk::TypeScript | Sdk::PythonLegacy => {
            assert_eq!(conflict["class"], "ConflictError", "{conflict}");
            assert_eq!(requests, 1, "x-should-retry: false was not obeyed");
        }
        // whop-sdk 2.6.0 maps no 409 on create, so it raises its generic ApiError; it also
        // retries 409 whatever the server says.
        Sdk::Python => assert_eq!(conflict["class"], "ApiError", "{conflict}"),
    }

    let absent = json!({"id": "lead_0000000000000", "body": {"referrer": "x"}});
    let not_found = error(sdk.run(&app, key, "update", absent).await.unwrap());
    assert_eq!(not_found["class"], "NotFoundError", "{not_found}");
}

async fn the_typescript_sdk_creates_retrieves_and_updates_leads(app: TestApp) {
    creates_retrieves_and_updates(Sdk::TypeScript, app).await;
}

async fn the_typescript_sdk_raises_typed_errors(app: TestApp) {
    raises_typed_errors(Sdk::TypeScript, app).await;
}

async fn the_python_sdk_creates_retrieves_and_updates_leads(app: TestApp) {
    creates_retrieves_and_updates(Sdk::Python, app).await;
}

async fn the_python_sdk_raises_typed_errors(app: TestApp) {
    raises_typed_errors(Sdk::Python, app).await;
}

async fn the_legacy_python_sdk_creates_retrieves_and_updates_leads(app: TestApp) {
    creates_retrieves_and_updates(Sdk::PythonLegacy, app).await;
}

async fn the_legacy_python_sdk_raises_typed_errors(app: TestApp) {
    raises_typed_errors(Sdk::PythonLegacy, app).await;
}
