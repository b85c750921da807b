//! Creating, reading and changing leads against the real server.

mod common;

use common::TestServer;
use futures_util::TryStreamExt;
use leads_client::{CreateLeadParams, Error, ListLeadsParams, UpdateLeadParams};
use serde_json::json;

fn metadata_of(lead: &leads_client::Lead) -> Option<serde_json::Value> {
    lead.metadata
        .as_ref()
        .map(|m| serde_json::from_str(m.get()).unwrap())
}

#[tokio::test]
async fn a_created_lead_reads_back_and_leads_the_list() {
    let server = TestServer::start(3).await;
    let user = server.user().await;
    let client = server.client();
    let lead = client
        .leads()
        .create(
            CreateLeadParams::new(&server.company)
                .user_id(&user)
                .product_id(&server.products[1])
                .referrer("https://example.com/landing")
                .metadata(json!({"campaign": "spring", "tags": ["a", "b"]})),
        )
        .await
        .unwrap();
    assert!(lead.id.starts_with("lead_"));
    assert_eq!(lead.user.id, user);
    assert_eq!(lead.product.as_ref().unwrap().id, server.products[1]);
    assert_eq!(
        metadata_of(&lead),
        Some(json!({"campaign": "spring", "tags": ["a", "b"]}))
    );
    assert_eq!(client.leads().retrieve(&lead.id).await.unwrap(), lead);

    let listed: Vec<_> = client
        .leads()
        .list(ListLeadsParams::new(&server.company))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed.len(), 4);
    assert_eq!(listed[0], lead, "the newest lead comes first");
}

#[tokio::test]
async fn an_update_changes_only_what_it_names() {
    let server = TestServer::start(0).await;
    let user = server.user().await;
    let leads = server.client().leads();
    let lead = leads
        .create(
            CreateLeadParams::new(&server.company)
                .user_id(&user)
                .referrer("https://example.com/")
                .metadata(json!({"stage": "new"})),
        )
        .await
        .unwrap();

    let changed = leads
        .update(
            &lead.id,
            UpdateLeadParams::new().metadata(json!({"stage": "qualified"})),
        )
        .await
        .unwrap();
    assert_eq!(metadata_of(&changed), Some(json!({"stage": "qualified"})));
    assert_eq!(
        changed.referrer, lead.referrer,
        "left out, so left as it was"
    );
    assert!(changed.updated_at > lead.updated_at);
    assert_eq!(changed.created_at, lead.created_at);

    let cleared = leads
        .update(&lead.id, UpdateLeadParams::new().clear_referrer())
        .await
        .unwrap();
    assert_eq!(cleared.referrer, None);
    assert_eq!(metadata_of(&cleared), Some(json!({"stage": "qualified"})));

    let cleared = leads
        .update(&lead.id, UpdateLeadParams::new().clear_metadata())
        .await
        .unwrap();
    assert_eq!(cleared.metadata.map(|m| m.get().to_owned()), None);
    assert_eq!(leads.retrieve(&lead.id).await.unwrap().referrer, None);
}

#[tokio::test]
async fn the_same_idempotency_key_records_one_lead() {
    let server = TestServer::start(0).await;
    let user = server.user().await;
    let leads = server.client().leads();
    let params = CreateLeadParams::new(&server.company)
        .user_id(&user)
        .idempotency_key("signup-form-4711");
    let first = leads.create(params.clone()).await.unwrap();
    let again = leads.create(params).await.unwrap();
    assert_eq!(again.id, first.id);

    // The same key with another body is a conflict, which retrying cannot fix.
    let error = leads
        .create(
            CreateLeadParams::new(&server.company)
                .user_id(&user)
                .referrer("https://elsewhere.example/")
                .idempotency_key("signup-form-4711"),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Conflict(_)), "{error:?}");

    let count = leads
        .list(ListLeadsParams::new(&server.company))
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .len();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn bad_writes_name_their_parameter() {
    let server = TestServer::start(1).await;
    let leads = server.client().leads();
    let error = leads
        .create(CreateLeadParams::new(&server.company))
        .await
        .unwrap_err();
    let Error::BadRequest(api) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(api.param.as_deref(), Some("user_id"));

    let user = server.user().await;
    let error = leads
        .create(
            CreateLeadParams::new(&server.company)
                .user_id(&user)
                .metadata(json!(["not", "an", "object"])),
        )
        .await
        .unwrap_err();
    assert_eq!(error.api().unwrap().param.as_deref(), Some("metadata"));

    for id in ["lead_doesnotexist1", "not-an-id", "lead_x/../../x"] {
        let error = leads.retrieve(id).await.unwrap_err();
        assert!(matches!(error, Error::NotFound(_)), "{id}: {error:?}");
        let error = leads
            .update(id, UpdateLeadParams::new().clear_referrer())
            .await
            .unwrap_err();
        assert!(matches!(error, Error::NotFound(_)), "{id}: {error:?}");
    }

    let reader = server
        .key("lead:basic:read,member:basic:read,access_pass:basic:read")
        .await;
    let error = server
        .client_with_key(&reader)
        .leads()
        .create(CreateLeadParams::new(&server.company).user_id(&user))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::PermissionDenied(_)), "{error:?}");
}
