//! Retries, against a stub server that answers from a script: what is retried, how long the
//! client waits, and what it sends again.

mod common;

use common::{gaps, Reply, Stub};
use futures_util::TryStreamExt;
use leads_client::{CreateLeadParams, Error, ListLeadsParams};
use std::time::{Duration, Instant};

const COMPANY: &str = "biz_xxxxxxxxxxxxxx";
/// The shortest first backoff: 0.5 s less a quarter of jitter.
const MIN_FIRST_BACKOFF: Duration = Duration::from_millis(375);

fn list_params() -> ListLeadsParams {
    ListLeadsParams::new(COMPANY)
}

#[tokio::test]
async fn a_429_is_retried_after_the_wait_the_server_asks_for() {
    let stub = Stub::start(vec![
        Reply::error(429, "rate_limit_exceeded", "Slow down.")
            .header("retry-after-ms", "1200")
            .header("retry-after", "2"),
        Reply::page(&["lead_aaaaaaaaaaaaa"], Some("c1"), false),
    ])
    .await;
    let page = stub
        .client()
        .leads()
        .list(list_params())
        .first_page()
        .await
        .unwrap();
    assert_eq!(page.data()[0].id, "lead_aaaaaaaaaaaaa");
    let seen = stub.seen();
    assert_eq!(seen.len(), 2);
    // The backoff alone would have waited at most 0.5 s; retry-after-ms wins over retry-after.
    let gap = gaps(&seen)[0];
    assert!(
        gap >= Duration::from_millis(1200) && gap < Duration::from_secs(2),
        "{gap:?}"
    );
    assert_eq!(seen[0].uri, seen[1].uri, "the same request is sent again");
}

#[tokio::test]
async fn a_429_with_retry_after_in_seconds_waits_that_long() {
    let stub = Stub::start(vec![
        Reply::error(429, "rate_limit_exceeded", "Slow down.").header("retry-after", "1"),
        Reply::page(&[], None, false),
    ])
    .await;
    stub.client()
        .leads()
        .list(list_params())
        .first_page()
        .await
        .unwrap();
    assert!(gaps(&stub.seen())[0] >= Duration::from_secs(1));
}

#[tokio::test]
async fn a_503_that_clears_is_retried_with_growing_backoff() {
    let unavailable = || Reply::error(503, "service_unavailable", "Try again shortly.");
    let stub = Stub::start(vec![
        unavailable(),
        unavailable(),
        Reply::page(
            &["lead_aaaaaaaaaaaaa", "lead_bbbbbbbbbbbbb"],
            Some("c"),
            false,
        ),
    ])
    .await;
    let leads: Vec<_> = stub
        .client()
        .leads()
        .list(list_params())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(leads.len(), 2);
    let gaps = gaps(&stub.seen());
    assert_eq!(gaps.len(), 2, "two retries, then the page");
    assert!(gaps[0] >= MIN_FIRST_BACKOFF, "{gaps:?}");
    assert!(gaps[1] >= MIN_FIRST_BACKOFF * 2, "{gaps:?}");
}

#[tokio::test]
async fn a_503_that_persists_is_returned_after_two_retries() {
    let unavailable = || Reply::error(503, "service_unavailable", "The database is unavailable.");
    let stub = Stub::start(vec![
        unavailable(),
        unavailable(),
        unavailable(),
        unavailable(),
    ])
    .await;
    let error = stub
        .client()
        .leads()
        .retrieve("lead_aaaaaaaaaaaaa")
        .await
        .unwrap_err();
    let Error::Server(api) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(api.status, 503);
    assert_eq!(api.kind, "service_unavailable");
    assert_eq!(api.message, "The database is unavailable.");
    assert_eq!(stub.seen().len(), 3);
}

#[tokio::test]
async fn max_retries_sets_how_often_a_request_is_tried_again() {
    let unavailable = || Reply::error(500, "internal_server_error", "Boom.");
    let stub = Stub::start(vec![unavailable(), unavailable(), unavailable()]).await;
    let client = stub.builder().max_retries(0).build().unwrap();
    assert!(client.leads().retrieve("lead_a").await.is_err());
    assert_eq!(stub.seen().len(), 1);

    let stub = Stub::start(vec![unavailable(), unavailable(), Reply::lead("lead_a")]).await;
    let client = stub.builder().max_retries(1).build().unwrap();
    assert!(matches!(
        client.leads().retrieve("lead_a").await,
        Err(Error::Server(_))
    ));
    assert_eq!(stub.seen().len(), 2);
}

#[tokio::test]
async fn x_should_retry_overrides_the_status() {
    let stub = Stub::start(vec![
        Reply::error(503, "service_unavailable", "Do not bother.")
            .header("x-should-retry", "false"),
        Reply::lead("lead_a"),
    ])
    .await;
    let error = stub.client().leads().retrieve("lead_a").await.unwrap_err();
    assert_eq!(error.status(), Some(503));
    assert_eq!(stub.seen().len(), 1);

    let stub = Stub::start(vec![
        Reply::error(400, "invalid_request_error", "Not yet.").header("x-should-retry", "true"),
        Reply::lead("lead_a"),
    ])
    .await;
    let lead = stub.client().leads().retrieve("lead_a").await.unwrap();
    assert_eq!(lead.id, "lead_a");
    assert_eq!(stub.seen().len(), 2);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let stub = Stub::start(vec![
        Reply::error(404, "not_found", "No such lead."),
        Reply::lead("lead_a"),
    ])
    .await;
    let error = stub.client().leads().retrieve("lead_a").await.unwrap_err();
    assert!(matches!(error, Error::NotFound(_)), "{error:?}");
    assert_eq!(stub.seen().len(), 1);
}

#[tokio::test]
async fn a_create_without_an_idempotency_key_is_sent_once() {
    let stub = Stub::start(vec![
        Reply::error(503, "service_unavailable", "Try again shortly."),
        Reply::lead("lead_a"),
    ])
    .await;
    let error = stub
        .client()
        .leads()
        .create(CreateLeadParams::new(COMPANY).user_id("user_xxxxxxxxxxxxx"))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(503));
    let seen = stub.seen();
    assert_eq!(seen.len(), 1, "a retry could have recorded the lead twice");
    assert_eq!(seen[0].header("idempotency-key"), None);
}

#[tokio::test]
async fn a_create_with_an_idempotency_key_is_retried_with_the_same_key_and_body() {
    let stub = Stub::start(vec![
        Reply::error(503, "service_unavailable", "Try again shortly."),
        Reply::lead("lead_a"),
    ])
    .await;
    let lead = stub
        .client()
        .leads()
        .create(
            CreateLeadParams::new(COMPANY)
                .user_id("user_xxxxxxxxxxxxx")
                .idempotency_key("signup-4711"),
        )
        .await
        .unwrap();
    assert_eq!(lead.id, "lead_a");
    let seen = stub.seen();
    assert_eq!(seen.len(), 2);
    for request in &seen {
        assert_eq!(request.header("idempotency-key"), Some("signup-4711"));
        assert_eq!(request.body, seen[0].body);
    }
}

#[tokio::test]
async fn told_to_the_client_retries_creates_with_a_key_of_its_own() {
    let stub = Stub::start(vec![
        Reply::error(502, "internal_server_error", "Bad gateway."),
        Reply::lead("lead_a"),
    ])
    .await;
    let client = stub
        .builder()
        .generate_idempotency_keys(true)
        .build()
        .unwrap();
    client
        .leads()
        .create(CreateLeadParams::new(COMPANY).user_id("user_xxxxxxxxxxxxx"))
        .await
        .unwrap();
    let seen = stub.seen();
    assert_eq!(seen.len(), 2);
    let key = seen[0].header("idempotency-key").expect("a generated key");
    assert!(key.starts_with("leads-client-retry-"), "{key}");
    assert_eq!(seen[1].header("idempotency-key"), Some(key));

    // Each create gets a key of its own.
    let stub = Stub::start(vec![Reply::lead("lead_a"), Reply::lead("lead_b")]).await;
    let client = stub
        .builder()
        .generate_idempotency_keys(true)
        .build()
        .unwrap();
    for _ in 0..2 {
        client
            .leads()
            .create(CreateLeadParams::new(COMPANY))
            .await
            .unwrap();
    }
    let seen = stub.seen();
    assert_ne!(
        seen[0].header("idempotency-key"),
        seen[1].header("idempotency-key")
    );
}

#[tokio::test]
async fn connection_failures_are_retried_then_reported() {
    // A port that was free a moment ago: connecting is refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = leads_client::Client::builder()
        .api_key("key_test")
        .base_url(format!("http://{addr}/api/v1"))
        .max_retries(1)
        .build()
        .unwrap();
    let started = Instant::now();
    let error = client.leads().retrieve("lead_a").await.unwrap_err();
    assert!(matches!(error, Error::Connection { .. }), "{error:?}");
    assert!(
        started.elapsed() >= MIN_FIRST_BACKOFF,
        "it waited, then tried again"
    );
    let text = error.to_string();
    assert!(text.contains(&addr.to_string()), "{text}");
    assert!(text.to_lowercase().contains("refused"), "{text}");
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_retried() {
    let stub = Stub::start(vec![
        Reply::lead("lead_slow").after(Duration::from_secs(3)),
        Reply::lead("lead_fast"),
    ])
    .await;
    let client = stub
        .builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let lead = client.leads().retrieve("lead_a").await.unwrap();
    assert_eq!(lead.id, "lead_fast");

    let stub = Stub::start(vec![Reply::lead("lead_slow").after(Duration::from_secs(3))]).await;
    let client = stub
        .builder()
        .timeout(Duration::from_millis(300))
        .max_retries(0)
        .build()
        .unwrap();
    let started = Instant::now();
    let error = client.leads().retrieve("lead_a").await.unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}
