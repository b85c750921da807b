//! Rate limits: per credential and operation, a token bucket; past it, a 429 the official SDKs
//! wait out.

mod common;

use common::credentials;
use common::{Sdk, TestApp};
use leads_server::auth::rate_limit::RateLimit;
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

conformance!(
    past_the_burst_a_credential_is_told_to_wait,
    each_credential_and_operation_has_its_own_bucket,
    waiting_as_told_is_enough,
    the_typescript_sdk_waits_out_a_429_and_succeeds,
    the_python_sdk_waits_out_a_429_and_succeeds,
);

/// A server allowing `burst` requests at once and `per_minute` after.
async fn limited(app: &mut TestApp, per_minute: u32, burst: u32) {
    app.reconfigure(|config| config.rate_limit = RateLimit { per_minute, burst })
        .await;
}

async fn past_the_burst_a_credential_is_told_to_wait(mut app: TestApp) {
    limited(&mut app, 60, 3).await;
    let company = app.company(0, None).await;
    let path = format!("{}/api/v1/leads?company_id={}", app.base, company.id);
    for _ in 0..3 {
        let response = app
            .http
            .get(&path)
            .bearer_auth(&company.key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = app
        .http
        .get(&path)
        .bearer_auth(&company.key)
        .send()
        .await
        .unwrap();
    let headers = response.headers().clone();
    let (status, body) = common::read(response).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["type"], "rate_limit_exceeded", "{body}");
    assert!(body["error"]["message"].is_string());
    let header = |name: &str| -> u64 {
        headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name}"))
            .to_str()
            .unwrap()
            .parse()
            .unwrap_or_else(|e| panic!("{name} is not an integer: {e}"))
    };
    let (seconds, millis) = (header("retry-after"), header("retry-after-ms"));
    assert!((1..=1000).contains(&millis), "{millis}");
    assert_eq!(seconds, millis.div_ceil(1000));
    assert_eq!(headers["content-type"], "application/json");
    // Counted, by operation, in the metrics.
    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"leads_rate_limited_requests_total{operation="GET /api/v1/leads"} 1"#),
        "{metrics}"
    );
    // Unauthenticated requests are refused before any bucket is touched.
    let (status, _) = app
        .get(&format!("/api/v1/leads?company_id={}", company.id), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn each_credential_and_operation_has_its_own_bucket(mut app: TestApp) {
    limited(&mut app, 60, 1).await;
    let company = app.company(0, None).await;
    let lead = app.leads(&company, &[(1_700_000_000_000, None)]).await;
    let other_key = app.key(&company, None).await;
    let user = app.user().await.id;
    credentials::join_team(&app, &company, &user).await;
    let (_, token) = credentials::user_token(&app, &user, None).await;
    let (_, _, app_key) = credentials::installed_app(&app, &company, None, None).await;
    let list = format!("/api/v1/leads?company_id={}", company.id);
    let one = format!("/api/v1/leads/{}", lead[0].id);
    for key in [&company.key, &other_key, &token, &app_key] {
        assert_eq!(app.get(&list, Some(key)).await.0, StatusCode::OK);
        assert_eq!(
            app.get(&list, Some(key)).await.0,
            StatusCode::TOO_MANY_REQUESTS
        );
        // Retrieving is another operation, with a bucket of its own.
        assert_eq!(app.get(&one, Some(key)).await.0, StatusCode::OK);
        assert_eq!(
            app.get(&one, Some(key)).await.0,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
}

async fn waiting_as_told_is_enough(mut app: TestApp) {
    limited(&mut app, 60, 1).await;
    let company = app.company(0, None).await;
    let path = format!("{}/api/v1/leads?company_id={}", app.base, company.id);
    let send = || app.http.get(&path).bearer_auth(&company.key).send();
    assert_eq!(send().await.unwrap().status(), StatusCode::OK);
    let refused = send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let millis: u64 = refused.headers()["retry-after-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(millis)).await;
    assert_eq!(send().await.unwrap().status(), StatusCode::OK);
}

/// The SDK, allowed `max_retries`, retrieves a lead right after the credential used up its
/// burst: it must see the 429, wait as told, and succeed.
async fn sdk_waits_out_a_429(sdk: Sdk, mut app: TestApp) {
    if sdk.command().is_none() {
        return;
    }
    // One request every 10 seconds: far longer than the SDK takes to start even on a loaded
    // machine, short enough to wait.
    limited(&mut app, 6, 1).await;
    let company = app.company(0, None).await;
    let lead = app.leads(&company, &[(1_700_000_000_000, None)]).await;
    let path = format!("/api/v1/leads/{}", lead[0].id);
    let use_up = || async {
        while app.get(&path, Some(&company.key)).await.0 != StatusCode::OK {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    use_up().await;

    // Without retries, the SDK reports the 429 and its headers.
    let answer = sdk
        .run(
            &app,
            &company.key,
            "retrieve",
            json!({"id": lead[0].id, "max_retries": 0}),
        )
        .await
        .unwrap();
    let error = &answer["error"];
    assert_eq!(error["status"], 429, "{answer}");
    assert_eq!(
        error["body"]["error"]["type"], "rate_limit_exceeded",
        "{answer}"
    );
    if sdk == Sdk::TypeScript {
        assert_eq!(error["class"], "RateLimitError", "{answer}");
        assert!(error["headers"]["retry-after-ms"].is_string(), "{answer}");
    }

    use_up().await;
    let started = Instant::now();
    let answer = sdk
        .run(
            &app,
            &company.key,
            "retrieve",
            json!({"id": lead[0].id, "max_retries": 2}),
        )
        .await
        .unwrap();
    assert_eq!(answer["ok"]["id"], lead[0].id.as_str(), "{answer}");
    let attempts = answer["requests"].as_array().map_or(0, Vec::len);
    if sdk == Sdk::TypeScript {
        assert_eq!(attempts, 2, "one 429, then success: {answer}");
    }
    // The bucket refills in 10 seconds: the SDK waited for it rather than giving up.
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

async fn the_typescript_sdk_waits_out_a_429_and_succeeds(app: TestApp) {
    sdk_waits_out_a_429(Sdk::TypeScript, app).await;
}

async fn the_python_sdk_waits_out_a_429_and_succeeds(app: TestApp) {
    sdk_waits_out_a_429(Sdk::Python, app).await;
}
