//! Webhooks: endpoints over `/api/v1/webhooks`, lead events from the outbox, signed deliveries
//! with retries, disabling, timeouts, replays, tests and the server-side request forgery rules;
//! and the official SDKs driving it (Python: every call, with `unwrap`; TypeScript: create and
//! `client.webhooks.unwrap`).

mod common;

use common::receiver::{Received, Receiver, Reply};
use common::{Company, Sdk, TestApp};
use leads_server::app::Config;
use leads_server::domain::webhooks::RetrySchedule;
use leads_server::webhooks::Settings;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

/// Retries a few hundred milliseconds apart, a short timeout, and receivers on loopback.
fn deliver_fast(config: &mut Config) {
    config.webhooks = Settings {
        retry_schedule: RetrySchedule::parse("0s,300ms,300ms").expect("schedule"),
        timeout: Duration::from_millis(1500),
        allow_private_targets: true,
        ..Settings::default()
    };
}

conformance!(configured by deliver_fast;
    endpoints_are_created_listed_read_updated_and_deleted,
    a_created_lead_is_delivered_signed_with_the_lead_as_get_shows_it,
    updates_conversions_and_erasures_fire_their_events,
    an_endpoint_hears_only_its_events_and_its_company,
    emails_follow_the_permissions_of_the_endpoints_creator,
    a_receiver_that_fails_twice_then_succeeds_gets_three_attempts_with_one_webhook_id,
    a_410_disables_the_endpoint,
    a_receiver_that_never_answers_times_out_and_is_retried,
    a_refused_create_sends_nothing,
    tidying_the_outbox_reclaims_delivered_messages,
    a_finished_export_fires_export_completed,
    deliveries_are_listed_newest_first_and_replayed,
    a_window_of_deliveries_is_replayed_failed_only_or_whole,
    a_test_sends_a_signed_sample_and_answers_what_the_receiver_said,
    webhook_routes_take_developer_manage_webhook,
    the_python_sdk_drives_every_webhook_call_and_verifies_deliveries,
    the_typescript_sdk_creates_an_endpoint_and_verifies_a_delivery,
);

/// Two instances on one PostgreSQL database share the outbox: a burst written through both is
/// delivered whole, each message once, never by both instances at the same time.
mod several_instances {
    use super::*;
    use std::collections::HashMap;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_instances_deliver_a_burst_once_each() {
        let Some(app) = TestApp::spawn_or_skip_with(common::Backend::Postgres, deliver_fast).await
        else {
            return;
        };
        let other = TestApp::instance_with(&app.database_url, app.backend, deliver_fast).await;
        let receiver = Receiver::start().await;
        // Slow enough answers that two senders of one message would overlap.
        receiver.answer_always(Reply::ok().after(Duration::from_millis(30)));
        let company = app.company(0, None).await;
        endpoint(&app, &company, &receiver.url, Some(&["lead.created"])).await;
        const BURST: usize = 120;
        let users: Vec<_> = futures_users(&app, BURST).await;
        let mut creates = Vec::new();
        for (i, user) in users.into_iter().enumerate() {
            let instance = if i % 2 == 0 {
                app.base.clone()
            } else {
                other.base.clone()
            };
            let (http, key, company_id) =
                (app.http.clone(), company.key.clone(), company.id.clone());
            creates.push(tokio::spawn(async move {
                let response = http
                    .post(format!("{instance}/api/v1/leads"))
                    .bearer_auth(key)
                    .json(&json!({"company_id": company_id, "user_id": user}))
                    .send()
                    .await
                    .expect("create");
                assert_eq!(response.status(), StatusCode::OK);
                response.json::<Value>().await.unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            }));
        }
        let mut created = Vec::new();
        for create in creates {
            created.push(create.await.unwrap());
        }
        let got = receiver.wait_for(BURST, Duration::from_secs(30)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let got = receiver.received().len().max(got.len());
        let received = receiver.received();
        assert_eq!(got, BURST, "every message once, none twice");
        let mut by_id: HashMap<String, usize> = HashMap::new();
        for r in &received {
            *by_id.entry(r.webhook_id().to_owned()).or_default() += 1;
        }
        assert!(by_id.values().all(|&n| n == 1), "a message was sent twice");
        let mut leads: Vec<String> = received
            .iter()
            .map(|r| r.json()["data"]["id"].as_str().unwrap().to_owned())
            .collect();
        leads.sort();
        created.sort();
        assert_eq!(leads, created);
        drop(other);
    }

    /// The outbox has no foreign key to its endpoints on PostgreSQL (so that writing a message
    /// locks no endpoint row). A message written by a change that commits while its endpoint is
    /// being deleted is then left behind: it is never sent, and the worker's clean-up forgets
    /// it, so it does not stay in the queue's depth and age.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_message_written_while_its_endpoint_is_deleted_is_never_sent_and_is_forgotten() {
        let Some(app) = TestApp::spawn_or_skip_with(common::Backend::Postgres, deliver_fast).await
        else {
            return;
        };
        let receiver = Receiver::start().await;
        let company = app.company(0, None).await;
        let hook = endpoint(&app, &company, &receiver.url, Some(&["lead.created"])).await;
        let hook_id = hook["id"].as_str().unwrap();
        let mut admin = common::admin_client(&app.database_url).await;
        // A change's transaction writes its message and has not yet committed...
        let change = admin.transaction().await.unwrap();
        let now = leads_server::domain::Timestamp::now().as_millis();
        change
            .execute(
                "INSERT INTO webhook_messages (id, webhook_id, company_id, event_type, data,
                                               created_at, next_attempt_at)
                 VALUES ('msg_orphan_in_the_test', $1, $2, 'lead.created', '{}', $3, $3)",
                &[&hook_id, &company.id, &now],
            )
            .await
            .unwrap();
        // ...when the endpoint is deleted, which does not wait for it...
        let (status, _, body) = app
            .send(
                Method::DELETE,
                &format!("/api/v1/webhooks/{hook_id}"),
                &company.key,
                None,
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // ...and then the change commits.
        change.commit().await.unwrap();
        let queued = app.stores.webhooks.queue_stats().await.unwrap();
        assert_eq!(queued.depth, 1, "the message is left behind");
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(
            receiver.received().is_empty(),
            "nothing is sent for a deleted endpoint"
        );
        let forgotten = app
            .stores
            .webhooks
            .forget_orphaned_messages()
            .await
            .unwrap();
        assert_eq!(forgotten, 1);
        assert_eq!(app.stores.webhooks.queue_stats().await.unwrap().depth, 0);
    }

    async fn futures_users(app: &TestApp, n: usize) -> Vec<String> {
        let mut users = Vec::with_capacity(n);
        for _ in 0..n {
            users.push(app.user().await.id);
        }
        users
    }
}

/// With the server's defaults: private targets refused.
mod refusing {
    use super::*;

    conformance!(
        endpoints_on_private_addresses_are_refused,
        urls_that_are_not_http_are_refused,
    );
}

const WAIT: Duration = Duration::from_secs(10);

async fn post(app: &TestApp, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
    let (status, _, body) = app.send(Method::POST, path, key, Some(&body), &[]).await;
    (status, body)
}

/// An endpoint of `company` at `url` for `events` (all when `None`); answers it with its secret.
async fn endpoint(app: &TestApp, company: &Company, url: &str, events: Option<&[&str]>) -> Value {
    let mut body = json!({"url": url, "resource_id": company.id});
    if let Some(events) = events {
        body["events"] = json!(events);
    }
    let (status, hook) = post(app, "/api/v1/webhooks", &company.key, body).await;
    assert_eq!(status, StatusCode::OK, "{hook}");
    hook
}

async fn new_lead(app: &TestApp, company: &Company) -> Value {
    let user = app.user().await;
    let body = json!({"company_id": company.id, "user_id": user.id, "referrer": "https://x.com/a",
                      "metadata": {"stage": "new"}});
    let (status, lead) = post(app, "/api/v1/leads", &company.key, body).await;
    assert_eq!(status, StatusCode::OK, "{lead}");
    lead
}

/// Checks a delivery's signature with the endpoint's secret, as Whop's receivers would.
fn verify(received: &Received, secret: &str) {
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &received.headers {
        headers.insert(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    standardwebhooks::Webhook::from_bytes(secret.as_bytes().to_vec())
        .unwrap()
        .verify(received.body.as_bytes(), &headers)
        .unwrap_or_else(|e| panic!("signature refused ({e}): {received:?}"));
    assert!(received.headers["webhook-signature"].starts_with("v1,"));
}

async fn get(app: &TestApp, path: &str, key: &str) -> Value {
    let (status, body) = app.get(path, Some(key)).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

async fn endpoints_are_created_listed_read_updated_and_deleted(app: TestApp) {
    let company = app.company(0, None).await;
    let hook = endpoint(
        &app,
        &company,
        "http://127.0.0.1:9/a",
        Some(&["lead.created"]),
    )
    .await;
    let id = hook["id"].as_str().unwrap();
    assert!(id.starts_with("hook_") && id.len() == 18, "{hook}");
    assert!(hook["webhook_secret"].as_str().unwrap().starts_with("ws_"));
    assert_eq!(hook["events"], json!(["lead.created"]));
    assert_eq!(hook["testable_events"], json!(["lead.created"]));
    assert_eq!(hook["enabled"], json!(true));
    assert_eq!(hook["api_version"], json!("v1"));
    assert_eq!(hook["resource_id"], json!(company.id));
    assert_eq!(hook["consecutive_failures"], json!(0));
    for key in [
        "failing_since",
        "last_failure_at",
        "disabled_at",
        "disabled_reason",
    ] {
        assert_eq!(hook[key], Value::Null, "{key}");
    }

    let read = get(&app, &format!("/api/v1/webhooks/{id}"), &company.key).await;
    assert_eq!(read["webhook_secret"], Value::Null);
    assert_eq!(read["url"], hook["url"]);

    // Without resource_id, the key's own company; and a page at a time, newest first.
    let (status, second) = post(
        &app,
        "/api/v1/webhooks",
        &company.key,
        json!({"url": "http://127.0.0.1:9/b"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["events"].as_array().unwrap().len(), 6);
    let page = get(
        &app,
        &format!("/api/v1/webhooks?account_id={}&first=1", company.id),
        &company.key,
    )
    .await;
    assert_eq!(page["data"][0]["id"], second["id"]);
    assert_eq!(page["page_info"]["has_next_page"], json!(true));
    let after = page["page_info"]["end_cursor"].as_str().unwrap();
    let rest = get(
        &app,
        &format!(
            "/api/v1/webhooks?company_id={}&first=1&after={after}",
            company.id
        ),
        &company.key,
    )
    .await;
    assert_eq!(rest["data"][0]["id"], hook["id"]);
    assert_eq!(rest["page_info"]["has_next_page"], json!(false));

    let (status, _, updated) = app
        .send(
            Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            &company.key,
            Some(
                &json!({"enabled": false, "events": ["lead.updated", "lead.deleted"], "url": null}),
            ),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["enabled"], json!(false));
    assert_eq!(updated["events"], json!(["lead.updated", "lead.deleted"]));
    assert_eq!(updated["url"], hook["url"]);

    // Another company's key sees nothing of it.
    let other = app.company(0, None).await;
    let (status, _) = app
        .get(&format!("/api/v1/webhooks/{id}"), Some(&other.key))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _, deleted) = app
        .send(
            Method::DELETE,
            &format!("/api/v1/webhooks/{id}"),
            &company.key,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted, json!({"deleted": true, "id": id}));
    let (status, _) = app
        .get(&format!("/api/v1/webhooks/{id}"), Some(&company.key))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, bad) = post(
        &app,
        "/api/v1/webhooks",
        &company.key,
        json!({"url": "http://127.0.0.1:9/", "events": ["payment.succeeded"]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad["error"]["param"], json!("events"));
    let (status, bad) = post(&app, "/api/v1/webhooks", &company.key, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad["error"]["param"], json!("url"));

    // resource_id is an id as the leads resource takes them: an empty or overlong one is a 400
    // naming it; an integer or a string that names no company is an unknown company (403).
    for (resource_id, expected) in [
        (json!(""), StatusCode::BAD_REQUEST),
        (json!("x".repeat(256)), StatusCode::BAD_REQUEST),
        (json!(4), StatusCode::FORBIDDEN),
        (json!("biz_doesnotexist00"), StatusCode::FORBIDDEN),
    ] {
        let (status, bad) = post(
            &app,
            "/api/v1/webhooks",
            &company.key,
            json!({"url": "http://127.0.0.1:9/", "resource_id": resource_id}),
        )
        .await;
        assert_eq!(status, expected, "{resource_id}: {bad}");
        if expected == StatusCode::BAD_REQUEST {
            assert_eq!(bad["error"]["param"], json!("resource_id"), "{bad}");
        }
    }
}

async fn a_created_lead_is_delivered_signed_with_the_lead_as_get_shows_it(app: TestApp) {
    let receiver = Receiver::start().await;
    let company = app.company(0, None).await;
    let hook = endpoint(&app, &company, &receiver.url, Some(&["lead.created"])).await;
    let lead = new_lead(&app, &company).await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1, "one delivery");
    verify(&got[0], hook["webhook_secret"].as_str().unwrap());
    let event = got[0].json();
    assert_eq!(event["type"], json!("lead.created"));
    assert_eq!(event["api_version"], json!("v1"));
    assert_eq!(event["company_id"], json!(company.id));
    assert_eq!(event["id"].as_str(), Some(got[0].webhook_id()));
    assert!(event["id"].as_str().unwrap().starts_with("msg_"));
    assert!(event["timestamp"].as_str().unwrap().ends_with('Z'));
    let shown = get(
        &app,
        &format!("/api/v1/leads/{}", lead["id"].as_str().unwrap()),
        &company.key,
    )
    .await;
    assert_eq!(event["data"], shown);

    // An altered body is refused by the same check.
    let mut altered = got[0].clone();
    altered.body = altered.body.replace("lead.created", "lead.deleted");
    let refused =
        std::panic::catch_unwind(|| verify(&altered, hook["webhook_secret"].as_str().unwrap()));
    assert!(refused.is_err(), "an altered body must not verify");
}

async fn updates_conversions_and_erasures_fire_their_events(app: TestApp) {
    let receiver = Receiver::start().await;
    let company = app.company(0, None).await;
    let hook = endpoint(&app, &company, &receiver.url, None).await;
    let secret = hook["webhook_secret"].as_str().unwrap();
    let lead = new_lead(&app, &company).await;
    let id = lead["id"].as_str().unwrap();
    receiver.wait_for(1, WAIT).await;

    let (status, _, updated) = app
        .send(
            Method::PATCH,
            &format!("/api/v1/leads/{id}"),
            &company.key,
            Some(&json!({"metadata": {"stage": "won"}})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let got = receiver.wait_for(2, WAIT).await;
    let event = got[1].json();
    verify(&got[1], secret);
    assert_eq!(event["type"], json!("lead.updated"));
    assert_eq!(event["data"]["metadata"], json!({"stage": "won"}));
    assert_eq!(event["data"]["updated_at"], updated["updated_at"]);
    assert_eq!(
        event["data"]["previous_attributes"],
        json!({"metadata": {"stage": "new"}, "updated_at": lead["updated_at"]})
    );

    // The lead's user becomes a member: lead.converted with data.member set.
    let member = leads_server::admin::create_member(
        app.stores.directory.as_ref(),
        &company.id,
        lead["user"]["id"].as_str().unwrap(),
    )
    .await
    .expect("member");
    let got = receiver.wait_for(3, WAIT).await;
    let event = got[2].json();
    assert_eq!(event["type"], json!("lead.converted"));
    assert_eq!(event["data"]["id"], json!(id));
    assert_eq!(event["data"]["member"], json!({"id": member.id}));

    // An admin erase: lead.deleted with only the id.
    leads_server::admin::delete_lead(app.stores.leads.as_ref(), id)
        .await
        .expect("erase");
    let got = receiver.wait_for(4, WAIT).await;
    let event = got[3].json();
    verify(&got[3], secret);
    assert_eq!(event["type"], json!("lead.deleted"));
    assert_eq!(event["data"], json!({"id": id}));
}

async fn an_endpoint_hears_only_its_events_and_its_company(app: TestApp) {
    let receiver = Receiver::start().await;
    let company = app.company(0, None).await;
    let other = app.company(0, None).await;
    endpoint(&app, &company, &receiver.url, Some(&["lead.updated"])).await;
    let lead = new_lead(&app, &company).await;
    new_lead(&app, &other).await;
    let (status, _, _) = app
        .send(
            Method::PATCH,
            &format!("/api/v1/leads/{}", lead["id"].as_str().unwrap()),
            &company.key,
            Some(&json!({"referrer": null})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let got = receiver.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_later = receiver.received();
    assert_eq!(got_later.len(), 1, "only the update: {got_later:?}");
    assert_eq!(got[0].json()["type"], json!("lead.updated"));
    assert_eq!(
        got[0].json()["data"]["previous_attributes"]["referrer"],
        json!("https://x.com/a")
    );
    // A disabled endpoint hears nothing.
    let hooks = get(
        &app,
        &format!("/api/v1/webhooks?company_id={}", company.id),
        &company.key,
    )
    .await;
    let id = hooks["data"][0]["id"].as_str().unwrap();
    app.send(
        Method::PATCH,
        &format!("/api/v1/webhooks/{id}"),
        &company.key,
        Some(&json!({"enabled": false})),
        &[],
    )
    .await;
    app.send(
        Method::PATCH,
        &format!("/api/v1/leads/{}", lead["id"].as_str().unwrap()),
        &company.key,
        Some(&json!({"referrer": "https://y.com/"})),
        &[],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 1);
}

async fn emails_follow_the_permissions_of_the_endpoints_creator(app: TestApp) {
    let with = Receiver::start().await;
    let without = Receiver::start().await;
    let company = app.company(0, None).await;
    endpoint(&app, &company, &with.url, Some(&["lead.created"])).await;
    let no_email = app
        .key(
            &company,
            Some(&common::permissions_without("member:email:read")),
        )
        .await;
    let (status, hook) = post(
        &app,
        "/api/v1/webhooks",
        &no_email,
        json!({"url": without.url, "events": ["lead.created"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{hook}");
    new_lead(&app, &company).await;
    let seen = with.wait_for(1, WAIT).await[0].json();
    let hidden = without.wait_for(1, WAIT).await[0].json();
    assert_eq!(seen["data"]["user"]["email"], json!("someone@example.com"));
    assert_eq!(hidden["data"]["user"]["email"], Value::Null);
    assert_eq!(seen["data"]["id"], hidden["data"]["id"]);
}

async fn deliveries(app: &TestApp, company: &Company, hook: &str) -> Vec<Value> {
    let page = get(
        app,
        &format!("/api/v1/webhooks/{hook}/deliveries?first=100"),
        &company.key,
    )
    .await;
    page["data"].as_array().unwrap().clone()
}

/// Waits until the endpoint's log has `n` attempts.
async fn logged(app: &TestApp, company: &Company, hook: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let log = deliveries(app, company, hook).await;
        if log.len() >= n || tokio::time::Instant::now() > deadline {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_receiver_that_fails_twice_then_succeeds_gets_three_attempts_with_one_webhook_id(
    app: TestApp,
) {
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(500), Reply::status(302)]);
    let company = app.company(0, None).await;
    let hook = endpoint(&app, &company, &receiver.url, Some(&["lead.created"])).await;
    let id = hook["id"].as_str().unwrap();
    new_lead(&app, &company).await;
    let got = receiver.wait_for(3, WAIT).await;
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.webhook_id() == got[0].webhook_id()));
    assert!(got.iter().all(|r| r.body == got[0].body));
    let log = logged(&app, &company, id, 3).await;
    let codes: Vec<_> = log.iter().map(|d| d["response_code"].clone()).collect();
    assert_eq!(codes, [json!(200), json!(302), json!(500)], "newest first");
    let successes: Vec<_> = log.iter().map(|d| d["success"].clone()).collect();
    assert_eq!(successes, [json!(true), json!(false), json!(false)]);
    assert_eq!(log[0]["response_body"], json!({"status": 200}));
    assert_eq!(log[0]["event"], json!("lead.created"));
    assert_eq!(
        log[0]["request_body"],
        serde_json::from_str::<Value>(&got[0].body).unwrap()
    );
    // Healthy again once it answered: the streak is over.
    let read = get(&app, &format!("/api/v1/webhooks/{id}"), &company.key).await;
    assert_eq!(read["failing_since"], Value::Null);
    assert_eq!(read["consecutive_failures"], json!(0));

    // The metrics count the attempts by outcome, and the queue is empty again.
    let text = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "leads_webhook_attempts_total{outcome=\"success\"} 1",
        "leads_webhook_attempts_total{outcome=\"failure\"} 2",
        "leads_webhook_queue_depth 0",
        "leads_webhook_oldest_message_age_seconds 0.0",
        "leads_webhook_delivery_latency_seconds_count 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from:\n{text}"
        );
    }
}

async fn a_410_disables_the_endpoint(app: TestApp) {
    let receiver = Receiver::start().await;
    receiver.answer_always(Reply::status(410));
    let company = app.company(0, None).await;
    let hook = endpoint(&app, &company, &receiver.url, Some(&["lead.created"])).await;
    let id = hook["id"].as_str().unwrap();
    new_lead(&app, &company).await;
    receiver.wait_for(1, WAIT).await;
    logged(&app, &company, id, 1).await;
    let read = get(&app, &format!("/api/v1/webhooks/{id}"), &company.key).await;
    assert_eq!(read["enabled"], json!(false), "{read}");
    assert_eq!(read["disabled_reason"], json!("endpoint_gone"));
    assert!(read["disabled_at"].is_string());
    new_lead(&app, &company).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.received().len(), 1, "no retry, nothing more");
}

async fn a_receiver_that_never_answers_times_out_and_is_retried(app: TestApp) {
    let receiver = Receiver::start().await;
    receiver.script([Reply::ok().after(Duration::from_secs(30))]);
    let company = app.company(0, None).await;
    let hook = endpoint(&app, &company, &receiver.url, Some(&["lead.created"])).await;
    let id = hook["id"].as_str().unwrap();
    new_lead(&app, &company).await;
    let got = receiver.wait_for(2, WAIT).await;
    assert_eq!(got.len(), 2, "the timed-out attempt is retried");
    assert_eq!(got[0].webhook_id(), got[1].webhook_id());
    let log = logged(&app, &company, id, 2).await;
    assert_eq!(log[1]["response_code"], json!(0));
    assert_eq!(log[1]["success"], json!(false));
    assert!(log[1]["total_time"].as_f64().unwrap() >= 1.4, "{}", log[1]);
    assert_eq!(log[0]["success"], json!(true));
    let read = get(&app, &format!("/api/v1/webhooks/{id}"), &company.key).await;
    assert_eq!(read["consecutive_failures"], json!(0));
}

async fn a_finished_export_fires_export_completed(app: TestApp) {
    let receiver = Receiver::start().await;
    let company = app.company(0, None).await;
    let hook = endpoint(&app, &company, &receiver.url, Some(&["export.completed"])).await;
    new_lead(&app, &company).await;
    let body = json!({"resource": "leads", "account_id": company.id});
    let (status, export) = post(&app, "/api/v1/exports", &company.key, body).await;
    assert_eq!(status, StatusCode::OK, "{export}");
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(
        got.len(),
        1,
        "one delivery: the lead.created was not subscribed to"
    );
    verify(&got[0], hook["webhook_secret"].as_str().unwrap());
    let event = got[0].json();
    assert_eq!(event["type"], json!("export.completed"));
    assert_eq!(event["company_id"], json!(company.id));
    assert_eq!(event["data"]["id"], export["id"]);
    assert_eq!(event["data"]["status"], json!("completed"));
    assert_eq!(event["data"]["progress_percent"], json!(100));
    // A link is minted on each read, never put in an event that is kept and replayed.
    assert_eq!(event["data"]["download_url"], Value::Null);
    let read = get(
        &app,
        &format!("/api/v1/exports/{}", export["id"].as_str().unwrap()),
        &company.key,
    )
    .await;
    assert_eq!(read["status"], json!("completed"));
    assert!(read["download_url"].is_string(), "{read}");
}

/// Delivered messages are deleted. Tidying the outbox reclaims them at once on PostgreSQL (a
/// vacuum of the table), so leases do not step over their index entries until autovacuum
/// comes; SQLite has nothing to do.
async fn tidying_the_outbox_reclaims_delivered_messages(app: TestApp) {
    let receiver = Receiver::start().await;
    let company = app.company(0, None).await;
    let hook = endpoint(&app, &company, &receiver.url, Some(&["lead.created"])).await;
    for _ in 0..20 {
        new_lead(&app, &company).await;
    }
    assert_eq!(receiver.wait_for(20, WAIT).await.len(), 20);
    // Each success is recorded and its message finished in one transaction.
    let hook = hook["id"].as_str().unwrap();
    assert_eq!(logged(&app, &company, hook, 20).await.len(), 20);
    let store = &app.stores.webhooks;
    assert_eq!(store.queue_stats().await.unwrap().depth, 0);
    let tidied = store.tidy_outbox().await.expect("tidy");
    if app.backend == common::Backend::Sqlite {
        assert!(!tidied, "SQLite reclaims deleted rows itself");
        return;
    }
    assert!(tidied, "PostgreSQL vacuums the outbox");
    let admin = common::admin_client(&app.database_url).await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        // The statistics PostgreSQL keeps of the table, which reach the view within a second.
        let row = admin
            .query_one(
                "SELECT vacuum_count, n_dead_tup FROM pg_stat_user_tables
                 WHERE relname = 'webhook_messages'",
                &[],
            )
            .await
            .unwrap();
        let (vacuums, dead): (i64, i64) = (row.get(0), row.get(1));
        if vacuums > 0 && dead == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not vacuumed: {vacuums} vacuums, {dead} dead rows"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn a_refused_create_sends_nothing(app: TestApp) {
    let receiver = Receiver::start().await;
    let company = app.company(0, None).await;
    endpoint(&app, &company, &receiver.url, None).await;
    let user = app.user().await;
    let (status, _) = post(
        &app,
        "/api/v1/leads",
        &company.key,
        json!({"company_id": company.id, "user_id": user.id, "product_id": "prod_elsewhere0000"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(receiver.received().is_empty());
}

async fn deliveries_are_listed_newest_first_and_replayed(app: TestApp) {
    let receiver = Receiver::start().await;
    let company = app.company(0, None).await;
    let hook = endpoint(&app, &company, &receiver.url, Some(&["lead.created"])).await;
    let id = hook["id"].as_str().unwrap();
    let secret = hook["webhook_secret"].as_str().unwrap();
    new_lead(&app, &company).await;
    new_lead(&app, &company).await;
    receiver.wait_for(2, WAIT).await;
    let log = logged(&app, &company, id, 2).await;
    assert!(log[0]["sent_at"].as_str() >= log[1]["sent_at"].as_str());
    let page = get(
        &app,
        &format!("/api/v1/webhooks/{id}/deliveries?first=1"),
        &company.key,
    )
    .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let after = page["page_info"]["end_cursor"].as_str().unwrap();
    let next = get(
        &app,
        &format!("/api/v1/webhooks/{id}/deliveries?first=1&after={after}"),
        &company.key,
    )
    .await;
    assert_eq!(next["data"][0]["id"], log[1]["id"]);

    let original = &log[1];
    let delivery = original["id"].as_str().unwrap();
    assert!(delivery.starts_with("whdel_"));
    let (status, replayed) = post(
        &app,
        &format!("/api/v1/webhooks/{id}/deliveries/{delivery}/replay"),
        &company.key,
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    assert_eq!(replayed["status"], json!(200));
    assert_eq!(replayed["success"], json!(true));
    let got = receiver.wait_for(3, WAIT).await;
    verify(&got[2], secret);
    assert_eq!(
        got[2].json(),
        original["request_body"],
        "the same payload, same id"
    );
    let (_, regenerated) = post(
        &app,
        &format!("/api/v1/webhooks/{id}/deliveries/{delivery}/replay"),
        &company.key,
        json!({"regenerate_id": true}),
    )
    .await;
    assert_eq!(regenerated["success"], json!(true));
    let got = receiver.wait_for(4, WAIT).await;
    verify(&got[3], secret);
    assert_ne!(got[3].webhook_id(), got[2].webhook_id());
    assert_eq!(got[3].json()["id"].as_str(), Some(got[3].webhook_id()));
    assert_eq!(got[3].json()["data"], original["request_body"]["data"]);
    let log = logged(&app, &company, id, 4).await;
    assert_eq!(log[0]["replayed_from"], json!(delivery));

    let (status, missing) = post(
        &app,
        &format!("/api/v1/webhooks/{id}/deliveries/whdel_000000000000/replay"),
        &company.key,
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
}

async fn a_window_of_deliveries_is_replayed_failed_only_or_whole(app: TestApp) {
    let receiver = Receiver::start().await;
    // Every attempt of the first message fails (three in the schedule), the second succeeds.
    receiver.script([Reply::status(500), Reply::status(500), Reply::status(500)]);
    let company = app.company(0, None).await;
    let hook = endpoint(&app, &company, &receiver.url, Some(&["lead.created"])).await;
    let id = hook["id"].as_str().unwrap();
    let started = leads_types::Timestamp::now().to_string();
    new_lead(&app, &company).await;
    receiver.wait_for(3, WAIT).await;
    new_lead(&app, &company).await;
    let got = receiver.wait_for(4, WAIT).await;
    logged(&app, &company, id, 4).await;
    let failed_id = got[0].webhook_id().to_owned();
    let read = get(&app, &format!("/api/v1/webhooks/{id}"), &company.key).await;
    assert!(read["last_failure_at"].is_string(), "{read}");

    let (status, queued) = post(
        &app,
        &format!("/api/v1/webhooks/{id}/replay"),
        &company.key,
        json!({"sent_after": started, "failed_only": true, "events": ["lead.created"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{queued}");
    assert_eq!(queued, json!({"queued": true}));
    let got = receiver.wait_for(5, WAIT).await;
    assert_eq!(got.len(), 5);
    assert_eq!(
        got[4].webhook_id(),
        failed_id,
        "only the failed message, its id kept"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(receiver.received().len(), 5);

    // The whole window: each message once more, delivered ones too (on PostgreSQL a delivered
    // message is no longer in the outbox: its delivery's body is what is sent again).
    let (status, queued) = post(
        &app,
        &format!("/api/v1/webhooks/{id}/replay"),
        &company.key,
        json!({"sent_after": started}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{queued}");
    let got = receiver.wait_for(7, WAIT).await;
    let originals = [&got[0], &got[3]];
    let mut again: Vec<(String, Value)> = got[5..]
        .iter()
        .map(|r| (r.webhook_id().to_owned(), r.json()["data"].clone()))
        .collect();
    again.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected: Vec<(String, Value)> = originals
        .iter()
        .map(|r| (r.webhook_id().to_owned(), r.json()["data"].clone()))
        .collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(again, expected, "each message again, its id and data kept");
    for r in &got[5..] {
        verify(r, hook["webhook_secret"].as_str().unwrap());
    }

    let (status, bad) = post(
        &app,
        &format!("/api/v1/webhooks/{id}/replay"),
        &company.key,
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad["error"]["param"], json!("sent_after"));
}

async fn a_test_sends_a_signed_sample_and_answers_what_the_receiver_said(app: TestApp) {
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(202)]);
    let company = app.company(0, None).await;
    let hook = endpoint(&app, &company, &receiver.url, None).await;
    let id = hook["id"].as_str().unwrap();
    let (status, tested) = post(
        &app,
        &format!("/api/v1/webhooks/{id}/test"),
        &company.key,
        json!({"event": "lead.converted"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(
        tested,
        json!({"status": 202, "body": {"status": 202}, "success": true})
    );
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    verify(&got[0], hook["webhook_secret"].as_str().unwrap());
    assert_eq!(got[0].json()["type"], json!("lead.converted"));
    assert!(got[0].json()["data"]["member"].is_object());

    let (status, bad) = post(
        &app,
        &format!("/api/v1/webhooks/{id}/test"),
        &company.key,
        json!({"event": "payment.succeeded"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad["error"]["param"], json!("event"));
}

async fn webhook_routes_take_developer_manage_webhook(app: TestApp) {
    let company = app.company(0, None).await;
    let hook = endpoint(&app, &company, "http://127.0.0.1:9/", None).await;
    let lacking = app
        .key(
            &company,
            Some(&common::permissions_without("developer:manage_webhook")),
        )
        .await;
    let (status, body) = post(
        &app,
        "/api/v1/webhooks",
        &lacking,
        json!({"url": "http://127.0.0.1:9/"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("developer:manage_webhook"));
    let (status, _) = app
        .get(
            &format!("/api/v1/webhooks/{}", hook["id"].as_str().unwrap()),
            Some(&lacking),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .get(
            &format!("/api/v1/webhooks?company_id={}", company.id),
            Some(&lacking),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn endpoints_on_private_addresses_are_refused(app: TestApp) {
    let company = app.company(0, None).await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[fd00::1]/",
        "http://localhost/hook",
    ] {
        let (status, body) =
            post(&app, "/api/v1/webhooks", &company.key, json!({"url": url})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert_eq!(body["error"]["param"], json!("url"), "{url}");
    }
    // Nor may an existing endpoint be pointed at one.
    let hooks = get(
        &app,
        &format!("/api/v1/webhooks?company_id={}", company.id),
        &company.key,
    )
    .await;
    assert!(hooks["data"].as_array().unwrap().is_empty());
}

async fn urls_that_are_not_http_are_refused(app: TestApp) {
    let company = app.company(0, None).await;
    for url in [
        "ftp://example.com/",
        "file:///etc/passwd",
        "example.com",
        "gopher://x/",
    ] {
        let (status, body) =
            post(&app, "/api/v1/webhooks", &company.key, json!({"url": url})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert_eq!(body["error"]["param"], json!("url"));
    }
}

/// A driver's answer, which must be a success.
fn ok(answer: Value) -> Value {
    assert!(answer.get("error").is_none(), "{answer}");
    answer["ok"].clone()
}

/// Has the SDK's own `unwrap` check a delivery with `secret`; answers the event it returned.
async fn unwrapped(sdk: Sdk, app: &TestApp, key: &str, got: &Received, secret: &str) -> Value {
    let args = json!({"body": got.body, "headers": got.headers, "key": secret});
    let answer = sdk.run(app, key, "unwrap", args).await.expect("installed");
    assert!(
        answer.get("refused").is_none(),
        "{sdk:?} refused a genuine delivery: {answer}"
    );
    // And refuses an altered one.
    let altered = got.body.replacen("\"v1\"", "\"v2\"", 1);
    let args = json!({"body": altered, "headers": got.headers, "key": secret});
    let answer = sdk.run(app, key, "unwrap", args).await.expect("installed");
    assert!(
        answer.get("refused").is_some(),
        "{sdk:?} accepted an altered body: {answer}"
    );
    answer_ok(sdk, app, key, got, secret).await
}

async fn answer_ok(sdk: Sdk, app: &TestApp, key: &str, got: &Received, secret: &str) -> Value {
    let args = json!({"body": got.body, "headers": got.headers, "key": secret});
    sdk.run(app, key, "unwrap", args).await.expect("installed")["ok"].clone()
}

async fn the_python_sdk_drives_every_webhook_call_and_verifies_deliveries(app: TestApp) {
    let sdk = Sdk::Python;
    if sdk.command().is_none() {
        return;
    }
    let receiver = Receiver::start().await;
    let company = app.company(0, None).await;
    let key = company.key.as_str();
    let run = |command: &'static str, args: Value| {
        let app = &app;
        async move { sdk.run(app, key, command, args).await.expect("installed") }
    };

    let created = ok(run(
        "webhooks_create",
        json!({"body": {"url": receiver.url, "events": ["lead.created", "lead.updated"], "resource_id": company.id}}),
    )
    .await);
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["webhook_secret"].as_str().unwrap().to_owned();
    let listed = run(
        "webhooks_list",
        json!({"params": {"account_id": company.id, "first": 1}}),
    )
    .await;
    assert!(listed.get("error").is_none(), "{listed}");
    assert_eq!(listed["ids"], json!([id]));
    let retrieved = ok(run("webhooks_retrieve", json!({"id": id})).await);
    assert_eq!(retrieved["webhook_secret"], Value::Null);
    let updated = ok(run(
        "webhooks_update",
        json!({"id": id, "body": {"events": ["lead.created"], "enabled": true}}),
    )
    .await);
    assert_eq!(updated["events"], json!(["lead.created"]));

    new_lead(&app, &company).await;
    let got = receiver.wait_for(1, WAIT).await;
    let event = unwrapped(sdk, &app, key, &got[0], &secret).await;
    assert_eq!(event["type"], json!("lead.created"));

    logged(&app, &company, &id, 1).await;
    let log = run(
        "webhooks_list_deliveries",
        json!({"id": id, "params": {"first": 10}}),
    )
    .await;
    assert!(log.get("error").is_none(), "{log}");
    assert_eq!(log["ids"].as_array().unwrap().len(), 1);
    assert_eq!(log["items"][0]["success"], json!(true));
    let delivery = log["ids"][0].as_str().unwrap().to_owned();

    let replayed = ok(run(
        "webhooks_replay_delivery",
        json!({"id": id, "delivery_id": delivery, "body": {"regenerate_id": false}}),
    )
    .await);
    assert_eq!(replayed["success"], json!(true));
    let got = receiver.wait_for(2, WAIT).await;
    unwrapped(sdk, &app, key, &got[1], &secret).await;
    assert_eq!(got[1].webhook_id(), got[0].webhook_id());

    let queued = ok(run(
        "webhooks_replay",
        json!({"id": id, "body": {"sent_after": "2020-01-01T00:00:00Z"}}),
    )
    .await);
    assert_eq!(queued, json!({"queued": true}));
    let got = receiver.wait_for(3, WAIT).await;
    assert_eq!(got.len(), 3);
    unwrapped(sdk, &app, key, &got[2], &secret).await;

    let tested = ok(run("webhooks_test", json!({"id": id, "event": "lead.created"})).await);
    assert_eq!(tested["status"], json!(200));
    let got = receiver.wait_for(4, WAIT).await;
    unwrapped(sdk, &app, key, &got[3], &secret).await;

    let deleted = ok(run("webhooks_delete", json!({"id": id})).await);
    assert_eq!(deleted, json!({"deleted": true, "id": id}));
}

async fn the_typescript_sdk_creates_an_endpoint_and_verifies_a_delivery(app: TestApp) {
    let sdk = Sdk::TypeScript;
    let receiver = Receiver::start().await;
    let company = app.company(0, None).await;
    let body = json!({"body": {"url": receiver.url, "events": ["lead.created"]}});
    let Some(created) = sdk.run(&app, &company.key, "webhooks_create", body).await else {
        return;
    };
    let created = ok(created);
    let secret = created["webhook_secret"].as_str().unwrap().to_owned();
    assert_eq!(created["resource_id"], json!(company.id));
    let lead = new_lead(&app, &company).await;
    let got = receiver.wait_for(1, WAIT).await;
    let event = unwrapped(sdk, &app, &company.key, &got[0], &secret).await;
    assert_eq!(event["data"]["id"], lead["id"]);
}
