//! The webhooks resource against the real server, and `verify` on what it delivers.

mod common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use common::TestServer;
use leads_client::webhooks::verify;
use leads_client::{CreateLeadParams, Error};
use leads_types::webhooks::{CreateWebhook, ReplayWebhook, UpdateWebhook};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Inbox = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn receiver() -> (String, Inbox) {
    let inbox: Inbox = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes| async move {
                    inbox.lock().unwrap().push((headers, body));
                    "{}"
                },
            ),
        )
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, inbox)
}

async fn wait_for(inbox: &Inbox, n: usize) -> Vec<(HeaderMap, Bytes)> {
    for _ in 0..500 {
        if inbox.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    inbox.lock().unwrap().clone()
}

#[tokio::test]
async fn endpoints_are_managed_and_their_deliveries_verify_in_one_call() {
    let server = TestServer::start_with(0, |config| {
        config.webhooks.allow_private_targets = true;
    })
    .await;
    let client = server.client();
    let (url, inbox) = receiver().await;
    let hook = client
        .webhooks()
        .create(&CreateWebhook {
            url: Some(url),
            events: Some(vec!["lead.created".into()]),
            ..CreateWebhook::default()
        })
        .await
        .unwrap();
    let secret = hook.webhook_secret.clone().expect("the secret, once");
    let listed = client.webhooks().list(&server.company, None).await.unwrap();
    assert_eq!(listed.data.len(), 1);
    assert_eq!(listed.data[0].webhook_secret, None);

    let user = server.user().await;
    let lead = client
        .leads()
        .create(CreateLeadParams::new(&server.company).user_id(&user))
        .await
        .unwrap();
    let got = wait_for(&inbox, 1).await;
    let (headers, body) = &got[0];
    let event = verify(body, headers, &secret).expect("a genuine delivery verifies");
    assert_eq!(event.kind, "lead.created");
    assert_eq!(event.data["id"], lead.id.as_str());
    assert!(verify(body, headers, "ws_another").is_err());
    let mut altered = body.to_vec();
    altered[2] ^= 1;
    assert!(verify(&altered, headers, &secret).is_err());

    let log = client.webhooks().deliveries(&hook.id, None).await.unwrap();
    assert_eq!(log.data.len(), 1);
    assert!(log.data[0].success);
    let replayed = client
        .webhooks()
        .replay_delivery(&hook.id, &log.data[0].id, false)
        .await
        .unwrap();
    assert!(replayed.success);
    let queued = client
        .webhooks()
        .replay(
            &hook.id,
            &ReplayWebhook {
                sent_after: Some("2020-01-01T00:00:00Z".into()),
                ..ReplayWebhook::default()
            },
        )
        .await
        .unwrap();
    assert!(queued.queued);
    let tested = client
        .webhooks()
        .test(&hook.id, "lead.deleted")
        .await
        .unwrap();
    assert_eq!(tested.status, 200);
    let got = wait_for(&inbox, 4).await;
    for (headers, body) in &got {
        verify(body, headers, &secret).expect("every delivery verifies");
    }

    let updated = client
        .webhooks()
        .update(
            &hook.id,
            &UpdateWebhook {
                enabled: Some(false),
                ..UpdateWebhook::default()
            },
        )
        .await
        .unwrap();
    assert!(!updated.enabled);
    assert!(client.webhooks().delete(&hook.id).await.unwrap().deleted);
    let gone = client.webhooks().retrieve(&hook.id).await.unwrap_err();
    assert!(matches!(gone, Error::NotFound(_)), "{gone:?}");
}
