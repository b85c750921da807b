//! Listing against the real server: long walks, page access, filters, and its errors.

mod common;

use common::TestServer;
use futures_util::{StreamExt, TryStreamExt};
use leads_client::{Error, Lead, ListLeadsParams, Timestamp};
use std::collections::HashSet;

/// Asserts list order: newest first, ties broken by id descending, no lead twice.
fn assert_in_list_order(leads: &[Lead]) {
    for pair in leads.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            (a.created_at, &a.id) > (b.created_at, &b.id),
            "{} ({}) then {} ({})",
            a.id,
            a.created_at,
            b.id,
            b.created_at
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walks_ten_thousand_leads_once_each_in_order() {
    let server = TestServer::start(10_000).await;
    let leads: Vec<Lead> = server
        .client()
        .leads()
        .list(ListLeadsParams::new(&server.company).page_size(100))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(leads.len(), 10_000);
    let ids: HashSet<&str> = leads.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(ids.len(), 10_000, "no lead twice");
    assert_in_list_order(&leads);

    // With the server's default page size (20) the walk is the same.
    let ids_again: Vec<String> = server
        .client()
        .leads()
        .list(ListLeadsParams::new(&server.company))
        .map_ok(|lead| lead.id)
        .try_collect()
        .await
        .unwrap();
    assert!(ids_again.iter().eq(leads.iter().map(|l| &l.id)));
}

#[tokio::test]
async fn pages_walk_one_after_the_other_with_exact_flags() {
    let server = TestServer::start(250).await;
    let list = server
        .client()
        .leads()
        .list(ListLeadsParams::new(&server.company).page_size(100));
    let first = list.first_page().await.unwrap();
    assert_eq!(first.data().len(), 100);
    assert!(first.page_info().has_next_page);
    assert!(!first.page_info().has_previous_page);
    let second = first.next_page().await.unwrap().expect("a second page");
    assert!(second.page_info().has_previous_page);
    let third = second.next_page().await.unwrap().expect("a third page");
    assert_eq!(third.data().len(), 50);
    assert!(!third.has_next_page());
    assert!(third.next_page().await.unwrap().is_none());

    let all: Vec<Lead> = [first, second, third]
        .into_iter()
        .flat_map(|page| page.into_data())
        .collect();
    assert_in_list_order(&all);
    let pages: Vec<usize> = list
        .pages()
        .map_ok(|page| page.data().len())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pages, [100, 100, 50]);
}

#[tokio::test]
async fn a_walk_can_resume_after_a_cursor() {
    let server = TestServer::start(120).await;
    let client = server.client();
    let params = ListLeadsParams::new(&server.company).page_size(30);
    let first = client
        .leads()
        .list(params.clone())
        .first_page()
        .await
        .unwrap();
    let cursor = first.page_info().end_cursor.clone().unwrap();
    let rest: Vec<Lead> = client
        .leads()
        .list(params.clone().after(cursor))
        .try_collect()
        .await
        .unwrap();
    let all: Vec<Lead> = client.leads().list(params).try_collect().await.unwrap();
    assert_eq!(rest.len(), 90);
    assert_eq!(&all[30..], &rest[..]);
}

#[tokio::test]
async fn filters_select_what_the_server_selects() {
    let server = TestServer::start(600).await;
    let client = server.client();
    let all: Vec<Lead> = client
        .leads()
        .list(ListLeadsParams::new(&server.company).page_size(100))
        .try_collect()
        .await
        .unwrap();
    let after = all[450].created_at;
    let before = all[50].created_at;
    let products = &server.products[..2];
    let filtered: Vec<Lead> = client
        .leads()
        .list(
            ListLeadsParams::new(&server.company)
                .product_ids(products.iter().cloned())
                .created_after(after)
                .created_before(before)
                .page_size(7),
        )
        .try_collect()
        .await
        .unwrap();
    let expected: Vec<&Lead> = all
        .iter()
        .filter(|lead| lead.created_at > after && lead.created_at < before)
        .filter(|lead| {
            lead.product
                .as_ref()
                .is_some_and(|p| products.contains(&p.id))
        })
        .collect();
    assert!(!expected.is_empty());
    assert!(expected.iter().copied().eq(filtered.iter()));
}

#[tokio::test]
async fn the_servers_errors_arrive_typed_with_its_message() {
    let server = TestServer::start(5).await;
    let params = || ListLeadsParams::new(&server.company);

    let error = server
        .client_with_key("not-a-key")
        .leads()
        .list(params())
        .first_page()
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Unauthorized(_)), "{error:?}");
    assert!(
        error.request_id().is_some(),
        "the server's x-request-id is kept"
    );

    let key = server.key("lead:basic:read").await;
    let error = server
        .client_with_key(&key)
        .leads()
        .list(params())
        .first_page()
        .await
        .unwrap_err();
    let Error::PermissionDenied(api) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(api.kind, "forbidden");
    assert!(api.message.contains("member:basic:read"), "{}", api.message);

    let error = server
        .client()
        .leads()
        .list(params().page_size(0))
        .first_page()
        .await
        .unwrap_err();
    let Error::BadRequest(api) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(api.param.as_deref(), Some("first"));
    assert_eq!(api.code.as_deref(), Some("parameter_invalid"));

    let mut leads = server.client().leads().list(params().after("forged"));
    let error = leads.next().await.unwrap().unwrap_err();
    assert_eq!(error.api().unwrap().param.as_deref(), Some("after"));
    assert!(leads.next().await.is_none());

    let empty = server
        .client()
        .leads()
        .list(params().created_before(Timestamp::from_millis(0).unwrap()))
        .count()
        .await;
    assert_eq!(empty, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_and_email_filter_by_who_the_lead_is() {
    let server = TestServer::start(300).await;
    let client = server.client();
    let all: Vec<Lead> = client
        .leads()
        .list(ListLeadsParams::new(&server.company).page_size(100))
        .try_collect()
        .await
        .unwrap();
    let has = |lead: &Lead, text: &str| {
        let user = &lead.user;
        [
            Some(&user.username),
            user.name.as_ref(),
            user.email.as_ref(),
        ]
        .into_iter()
        .flatten()
        .chain(lead.referrer.as_ref())
        .any(|field| field.to_lowercase().contains(text))
    };
    let expected: Vec<&str> = all
        .iter()
        .filter(|l| has(l, "maria"))
        .map(|l| l.id.as_str())
        .collect();
    assert!(!expected.is_empty(), "the seed has a Maria");
    let found: Vec<Lead> = client
        .leads()
        .list(
            ListLeadsParams::new(&server.company)
                .query("MARIA")
                .page_size(7),
        )
        .try_collect()
        .await
        .unwrap();
    assert!(found.iter().map(|l| l.id.as_str()).eq(expected));

    let email = all[0].user.email.clone().expect("an email");
    let found: Vec<Lead> = client
        .leads()
        .list(ListLeadsParams::new(&server.company).email(email.to_uppercase()))
        .try_collect()
        .await
        .unwrap();
    assert!(!found.is_empty());
    assert!(found
        .iter()
        .all(|l| l.user.email.as_deref() == Some(email.as_str())));
}
