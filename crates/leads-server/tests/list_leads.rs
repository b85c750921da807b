//! `GET /api/v1/leads`: the pagination conformance suite, filters, and every way to get it wrong.

mod common;

use common::{crowded_times, enc, list_order, rfc3339, Company, Fixture, Page, TestApp};
use reqwest::StatusCode;
use std::collections::HashSet;

conformance!(
    forward_walks_visit_every_lead_once_in_list_order,
    backward_walks_give_the_same_order_reversed_page_by_page,
    before_the_start_of_page_two_is_page_one,
    an_empty_company_has_an_empty_page_and_no_neighbours,
    after_and_before_together_select_the_window_between_them,
    leads_inserted_and_deleted_during_a_walk_cause_no_skip_or_repeat,
    the_cursor_of_a_deleted_lead_still_continues,
    filters_combine_with_cursors,
    product_ids_work_in_both_array_forms_and_account_id_names_the_company,
    another_companys_leads_never_appear,
    bad_cursors_are_refused_naming_their_parameter,
    bad_page_sizes_dates_and_companies_are_refused_naming_their_parameter,
    credentials_are_checked_before_anything_is_shown,
    emails_are_shown_only_with_member_email_read,
    a_new_member_shows_on_their_leads,
    unknown_routes_wrong_methods_and_big_bodies_answer_json,
    a_lead_has_every_key_of_the_contract,
    time_filters_are_exclusive_at_millisecond_precision,
    product_ids_whop_would_accept_filter_and_unknown_ones_match_no_lead,
    any_company_id_whop_would_accept_is_answered_like_an_unknown_company,
    ids_no_id_can_be_are_refused_naming_their_parameter,
    a_leap_second_in_a_time_filter_is_the_start_of_the_next_minute,
);

/// 53 leads (a prime, so no page size divides it), three to a millisecond, over three products
/// and none.
async fn fixture(app: &TestApp) -> (Company, Vec<Fixture>) {
    let company = app.company(3, None).await;
    let specs: Vec<(i64, Option<usize>)> = crowded_times(53)
        .into_iter()
        .enumerate()
        .map(|(i, t)| (t, if i % 5 == 0 { None } else { Some(i % 3) }))
        .collect();
    let leads = app.leads(&company, &specs).await;
    (company, leads)
}

/// Walks forward from the top with `first=n`, checking both flags on every page against
/// `expected`; returns the ids in the order visited.
async fn walk_forward(
    app: &TestApp,
    key: &str,
    query: &str,
    n: usize,
    expected: &[String],
) -> Vec<String> {
    app.walk_forward(key, query, n, expected.len()).await
}

async fn forward_walks_visit_every_lead_once_in_list_order(app: TestApp) {
    let (company, leads) = fixture(&app).await;
    let expected = list_order(&leads);
    let single = app
        .list(
            &company.key,
            &format!("company_id={}&first=100", company.id),
        )
        .await;
    assert_eq!(
        single.ids, expected,
        "one page holds them all, newest first, ties by id descending"
    );
    for n in [1, 2, 7, 100] {
        let seen = walk_forward(
            &app,
            &company.key,
            &format!("company_id={}", company.id),
            n,
            &expected,
        )
        .await;
        assert_eq!(seen, expected, "first={n}");
    }
}

async fn backward_walks_give_the_same_order_reversed_page_by_page(app: TestApp) {
    let (company, leads) = fixture(&app).await;
    let expected = list_order(&leads);
    for n in [1, 2, 7, 100] {
        let mut pages: Vec<Vec<String>> = Vec::new();
        let mut before: Option<String> = None;
        loop {
            let cursor = before
                .as_ref()
                .map(|c| format!("&before={c}"))
                .unwrap_or_default();
            let page = app
                .list(
                    &company.key,
                    &format!("company_id={}&last={n}{cursor}", company.id),
                )
                .await;
            if page.ids.is_empty() {
                break;
            }
            assert!(
                pages.len() <= expected.len(),
                "last={n}: the walk does not end"
            );
            let after_this: usize = pages.iter().map(Vec::len).sum();
            assert_eq!(page.has_next, after_this > 0, "last={n}: has_next_page");
            assert_eq!(
                page.has_previous,
                after_this + page.ids.len() < expected.len(),
                "last={n}: has_previous_page"
            );
            before = page.start_cursor.clone();
            pages.push(page.ids);
        }
        let walked: Vec<String> = pages.into_iter().rev().flatten().collect();
        assert_eq!(walked, expected, "last={n}");
    }
}

async fn before_the_start_of_page_two_is_page_one(app: TestApp) {
    let (company, _) = fixture(&app).await;
    let q = format!("company_id={}", company.id);
    let one = app.list(&company.key, &format!("{q}&first=7")).await;
    let two = app
        .list(
            &company.key,
            &format!("{q}&first=7&after={}", one.end_cursor.unwrap()),
        )
        .await;
    let back = app
        .list(
            &company.key,
            &format!("{q}&first=7&before={}", two.start_cursor.clone().unwrap()),
        )
        .await;
    assert_eq!(back.ids, one.ids);
    assert_eq!((back.has_previous, back.has_next), (false, true));
    let back_last = app
        .list(
            &company.key,
            &format!("{q}&last=7&before={}", two.start_cursor.unwrap()),
        )
        .await;
    assert_eq!(back_last.ids, one.ids);
    assert_eq!((back_last.has_previous, back_last.has_next), (false, true));
}

async fn an_empty_company_has_an_empty_page_and_no_neighbours(app: TestApp) {
    let company = app.company(0, None).await;
    for query in ["first=5", "last=5", ""] {
        let page = app
            .list(&company.key, &format!("company_id={}&{query}", company.id))
            .await;
        assert!(page.ids.is_empty());
        assert_eq!(
            page.body["page_info"],
            serde_json::json!({
                "start_cursor": null, "end_cursor": null, "has_next_page": false, "has_previous_page": false
            })
        );
    }
}

async fn after_and_before_together_select_the_window_between_them(app: TestApp) {
    let (company, leads) = fixture(&app).await;
    let expected = list_order(&leads);
    let q = format!("company_id={}", company.id);
    // Cursors of leads 10 and 30, from pages that end there.
    let at = |i: usize| {
        let app = &app;
        let q = q.clone();
        let key = company.key.clone();
        async move {
            app.list(&key, &format!("{q}&first={}", i + 1))
                .await
                .end_cursor
                .unwrap()
        }
    };
    let (c10, c30) = (at(10).await, at(30).await);
    let window = &expected[11..30];
    let first = app
        .list(
            &company.key,
            &format!("{q}&after={c10}&before={c30}&first=5"),
        )
        .await;
    assert_eq!(first.ids, window[..5]);
    assert_eq!((first.has_previous, first.has_next), (true, true));
    let last = app
        .list(
            &company.key,
            &format!("{q}&after={c10}&before={c30}&last=5"),
        )
        .await;
    assert_eq!(last.ids, window[window.len() - 5..]);
    assert_eq!((last.has_previous, last.has_next), (true, true));
    let whole = app
        .list(
            &company.key,
            &format!("{q}&after={c10}&before={c30}&first=100"),
        )
        .await;
    assert_eq!(whole.ids, window);
    assert_eq!(
        (whole.has_previous, whole.has_next),
        (true, true),
        "flags speak of the whole list, not the window"
    );
    let empty = app
        .list(&company.key, &format!("{q}&after={c30}&before={c10}"))
        .await;
    assert!(empty.ids.is_empty());
    assert_eq!((empty.has_previous, empty.has_next), (false, false));
}

async fn leads_inserted_and_deleted_during_a_walk_cause_no_skip_or_repeat(app: TestApp) {
    let (company, leads) = fixture(&app).await;
    let expected = list_order(&leads);
    let q = format!("company_id={}", company.id);
    let mut seen: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    let mut deleted: HashSet<String> = HashSet::new();
    let mut inserted: Vec<Fixture> = Vec::new();
    let mut round = 0;
    loop {
        let cursor = after
            .as_ref()
            .map(|c| format!("&after={c}"))
            .unwrap_or_default();
        let page = app
            .list(&company.key, &format!("{q}&first=4{cursor}"))
            .await;
        if page.ids.is_empty() {
            break;
        }
        seen.extend(page.ids.iter().cloned());
        assert!(seen.len() < 4 * expected.len(), "the walk does not end");
        after = page.end_cursor.clone();
        round += 1;
        // Between pages: new leads at the top, in the middle of what is left, and sharing
        // the last seen lead's millisecond; and delete a lead not yet seen.
        let last_time = leads
            .iter()
            .find(|l| Some(&l.id) == seen.last())
            .map(|l| l.created_at);
        let mut specs = vec![(1_800_000_000_000 + round, None)];
        if let Some(t) = last_time {
            specs.push((t, Some(0)));
            specs.push((t - 1500, Some(1)));
        }
        inserted.extend(app.leads(&company, &specs).await);
        if let Some(victim) = expected
            .iter()
            .rev()
            .find(|id| !seen.contains(id) && !deleted.contains(*id))
        {
            if round % 2 == 0 {
                app.stores
                    .leads
                    .delete_lead(leads_server::domain::LeadId::parse(victim).unwrap())
                    .await
                    .unwrap();
                deleted.insert(victim.clone());
            }
        }
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no lead is listed twice");
    for id in &expected {
        if !deleted.contains(id) {
            assert!(
                seen.contains(id),
                "lead {id} present throughout was skipped"
            );
        }
    }
    for id in &deleted {
        assert!(
            !seen.contains(id),
            "a lead deleted before it was reached is not listed"
        );
    }
    assert!(!inserted.is_empty());
}

async fn the_cursor_of_a_deleted_lead_still_continues(app: TestApp) {
    let (company, leads) = fixture(&app).await;
    let expected = list_order(&leads);
    let q = format!("company_id={}", company.id);
    let page = app.list(&company.key, &format!("{q}&first=10")).await;
    let victim = page.ids.last().unwrap().clone();
    app.stores
        .leads
        .delete_lead(leads_server::domain::LeadId::parse(&victim).unwrap())
        .await
        .unwrap();
    let next = app
        .list(
            &company.key,
            &format!("{q}&first=10&after={}", page.end_cursor.unwrap()),
        )
        .await;
    assert_eq!(next.ids, expected[10..20]);
    assert!(next.has_previous);
    let back = app
        .list(
            &company.key,
            &format!("{q}&last=3&before={}", next.start_cursor.unwrap()),
        )
        .await;
    assert_eq!(
        back.ids,
        expected[6..9],
        "the deleted lead is gone from the page before"
    );
}

async fn filters_combine_with_cursors(app: TestApp) {
    let (company, leads) = fixture(&app).await;
    let (p0, p2) = (&company.products[0], &company.products[2]);
    let from = crowded_times(53)[9];
    let to = crowded_times(53)[45];
    let filtered: Vec<Fixture> = leads
        .iter()
        .filter(|l| matches!(&l.product, Some(p) if p == p0 || p == p2))
        .filter(|l| l.created_at > from && l.created_at < to)
        .cloned()
        .collect();
    let expected = list_order(&filtered);
    assert!(
        expected.len() > 10,
        "the fixture gives the filter something to do"
    );
    let q = format!(
        "company_id={}&product_ids%5B%5D={p0}&product_ids%5B%5D={p2}&created_after={}&created_before={}",
        company.id,
        enc(&rfc3339(from)),
        enc(&rfc3339(to))
    );
    for n in [1, 3, 100] {
        assert_eq!(
            walk_forward(&app, &company.key, &q, n, &expected).await,
            expected,
            "first={n}"
        );
    }
    let last = app.list(&company.key, &format!("{q}&last=3")).await;
    assert_eq!(last.ids, expected[expected.len() - 3..]);
    assert_eq!((last.has_previous, last.has_next), (true, false));
}

async fn product_ids_work_in_both_array_forms_and_account_id_names_the_company(app: TestApp) {
    let (company, leads) = fixture(&app).await;
    let p1 = &company.products[1];
    let expected = list_order(
        &leads
            .iter()
            .filter(|l| l.product.as_ref() == Some(p1))
            .cloned()
            .collect::<Vec<_>>(),
    );
    for query in [
        format!("company_id={}&product_ids%5B%5D={p1}&first=100", company.id),
        format!("company_id={}&product_ids[]={p1}&first=100", company.id),
        format!("company_id={}&product_ids={p1}&first=100", company.id),
        format!(
            "account_id={}&product_ids={p1}&product_ids={p1}&first=100",
            company.id
        ),
        format!(
            "account_id={}&company_id={}&product_ids={p1}&first=100&last=&before=",
            company.id, company.id
        ),
    ] {
        assert_eq!(
            app.list(&company.key, &query).await.ids,
            expected,
            "{query}"
        );
    }
    let unknown = app
        .list(
            &company.key,
            &format!("company_id={}&product_ids=prod_0000000000000", company.id),
        )
        .await;
    assert!(unknown.ids.is_empty());
}

async fn another_companys_leads_never_appear(app: TestApp) {
    let (ours, our_leads) = fixture(&app).await;
    let (theirs, their_leads) = fixture(&app).await;
    let page = app
        .list(&ours.key, &format!("company_id={}&first=100", ours.id))
        .await;
    assert_eq!(page.ids, list_order(&our_leads));
    let theirs_ids: HashSet<&String> = their_leads.iter().map(|l| &l.id).collect();
    assert!(page.ids.iter().all(|id| !theirs_ids.contains(id)));
    // Their products as a filter on our company find nothing.
    let probe = app
        .list(
            &ours.key,
            &format!("company_id={}&product_ids={}", ours.id, theirs.products[1]),
        )
        .await;
    assert!(probe.ids.is_empty());
    // Our key on their company: 403, naming no lead.
    let (status, body) = app
        .get(
            &format!("/api/v1/leads?company_id={}", theirs.id),
            Some(&ours.key),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["type"], "forbidden");
    // Their cursor on our company is refused.
    let their_page = app
        .list(&theirs.key, &format!("company_id={}&first=5", theirs.id))
        .await;
    let (status, body) = app
        .get(
            &format!(
                "/api/v1/leads?company_id={}&after={}",
                ours.id,
                their_page.end_cursor.unwrap()
            ),
            Some(&ours.key),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["param"], "after");
}

async fn expect_400(app: &TestApp, key: &str, query: &str, param: &str) {
    let (status, body) = app.get(&format!("/api/v1/leads?{query}"), Some(key)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
    assert_eq!(body["error"]["type"], "invalid_request_error", "{query}");
    assert_eq!(body["error"]["param"], param, "{query}: {body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(param),
        "the message names {param}: {message}"
    );
}

async fn bad_cursors_are_refused_naming_their_parameter(app: TestApp) {
    let (company, _) = fixture(&app).await;
    let other = app.company(0, None).await;
    let q = format!("company_id={}", company.id);
    let cursor = app
        .list(&company.key, &format!("{q}&first=3"))
        .await
        .end_cursor
        .unwrap();
    let mut tampered = cursor.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let foreign = app
        .list(&other.key, &format!("company_id={}", other.id))
        .await;
    assert!(foreign.end_cursor.is_none());
    for (name, bad) in [
        ("malformed", "not-a-cursor!".to_owned()),
        ("truncated", cursor[..cursor.len() - 4].to_owned()),
        ("tampered", tampered),
        ("a lead id", "lead_xxxxxxxxxxxxx".to_owned()),
        ("an offset", "MTA=".to_owned()),
    ] {
        for param in ["after", "before"] {
            eprintln!("{name} {param}");
            expect_400(
                &app,
                &company.key,
                &format!("{q}&{param}={}", enc(&bad)),
                param,
            )
            .await;
        }
    }
    // A cursor of company A sent for company B, with B's key.
    let (other_company, _) = fixture(&app).await;
    expect_400(
        &app,
        &other_company.key,
        &format!("company_id={}&after={cursor}", other_company.id),
        "after",
    )
    .await;
}

async fn bad_page_sizes_dates_and_companies_are_refused_naming_their_parameter(app: TestApp) {
    let company = app.company(1, None).await;
    let q = format!("company_id={}", company.id);
    for bad in ["0", "-1", "101", "abc", "1e2", "%20"] {
        expect_400(&app, &company.key, &format!("{q}&first={bad}"), "first").await;
        expect_400(&app, &company.key, &format!("{q}&last={bad}"), "last").await;
    }
    expect_400(&app, &company.key, &format!("{q}&first=1&last=1"), "last").await;
    for bad in [
        "yesterday",
        "2023-12-01",
        "2023-13-01T00:00:00Z",
        "2023-12-01T05:00:00",
        "1701406800",
    ] {
        expect_400(
            &app,
            &company.key,
            &format!("{q}&created_after={}", enc(bad)),
            "created_after",
        )
        .await;
        expect_400(
            &app,
            &company.key,
            &format!("{q}&created_before={}", enc(bad)),
            "created_before",
        )
        .await;
    }
    expect_400(&app, &company.key, "first=5", "company_id").await;
    expect_400(&app, &company.key, "company_id=", "company_id").await;
    expect_400(&app, &company.key, "company_id=a%01b", "company_id").await;
    let many: String = (0..101)
        .map(|i| format!("&product_ids[]=prod_{i:013}"))
        .collect();
    expect_400(&app, &company.key, &format!("{q}{many}"), "product_ids").await;
    expect_400(
        &app,
        &company.key,
        &format!("{q}&product_ids=a%0Ab"),
        "product_ids",
    )
    .await;
    // Exactly 100 is fine.
    let hundred: String = (0..100)
        .map(|i| format!("&product_ids[]=prod_{i:013}"))
        .collect();
    app.list(&company.key, &format!("{q}{hundred}")).await;
    let (status, body) = app
        .get(&format!("/api/v1/leads?{q}"), Some(&company.key))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn credentials_are_checked_before_anything_is_shown(app: TestApp) {
    let (company, _) = fixture(&app).await;
    let path = format!("/api/v1/leads?company_id={}", company.id);
    let (status, body) = app.get(&path, None).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (status, _) = app.get(&path, Some("leads_ck_unknown")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for header in [
        "",
        "Bearer",
        "Bearer ",
        "Basic abc",
        "Bearer a b",
        &company.key,
    ] {
        let response = app
            .http
            .get(format!("{}{path}", app.base))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        let (status, body) = common::read(response).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "header {header:?}");
        assert_eq!(body["error"]["type"], "unauthorized");
    }
    for missing in [
        "lead:basic:read",
        "member:basic:read",
        "access_pass:basic:read",
    ] {
        let key = app
            .key(&company, Some(&common::permissions_without(missing)))
            .await;
        let (status, body) = app.get(&path, Some(&key)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "without {missing}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(missing),
            "{body}"
        );
    }
}

async fn emails_are_shown_only_with_member_email_read(app: TestApp) {
    let (company, _) = fixture(&app).await;
    let q = format!("company_id={}&first=5", company.id);
    let with = app.list(&company.key, &q).await;
    assert!(with.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["user"]["email"] == "someone@example.com"));
    let key = app
        .key(
            &company,
            Some(&common::permissions_without("member:email:read")),
        )
        .await;
    let without = app.list(&key, &q).await;
    assert_eq!(without.ids, with.ids);
    assert!(without.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["user"]["email"].is_null()));
}

async fn a_new_member_shows_on_their_leads(app: TestApp) {
    let (company, leads) = fixture(&app).await;
    let lead = &leads[17];
    let member = leads_server::admin::create_member(
        app.stores.directory.as_ref(),
        &company.id,
        &lead.user.id,
    )
    .await
    .unwrap();
    let page = app
        .list(
            &company.key,
            &format!("company_id={}&first=100", company.id),
        )
        .await;
    for shown in page.body["data"].as_array().unwrap() {
        if shown["id"] == lead.id.as_str() {
            assert_eq!(shown["member"], serde_json::json!({"id": member.id}));
        } else {
            assert!(shown["member"].is_null());
        }
    }
    let again = leads_server::admin::create_member(
        app.stores.directory.as_ref(),
        &company.id,
        &lead.user.id,
    )
    .await;
    assert!(again.is_err(), "a user is a member of a company once");
}

async fn unknown_routes_wrong_methods_and_big_bodies_answer_json(app: TestApp) {
    let company = app.company(0, None).await;
    let (status, body) = app.get("/api/v1/nope", Some(&company.key)).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let response = app
        .http
        .delete(format!("{}/api/v1/leads", app.base))
        .bearer_auth(&company.key)
        .send()
        .await
        .unwrap();
    let (status, body) = common::read(response).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body["error"]["message"].is_string());
    let response = app
        .http
        .put(format!("{}/api/v1/leads", app.base))
        .bearer_auth(&company.key)
        .header("content-type", "application/json")
        .body(vec![b' '; 200 * 1024])
        .send()
        .await
        .unwrap();
    let (status, body) = common::read(response).await;
    assert!(
        status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::METHOD_NOT_ALLOWED,
        "{status}"
    );
    assert!(body["error"]["type"].is_string());
}

async fn a_lead_has_every_key_of_the_contract(app: TestApp) {
    let (company, leads) = fixture(&app).await;
    let page = app
        .list(
            &company.key,
            &format!("company_id={}&first=100", company.id),
        )
        .await;
    for lead in page.body["data"].as_array().unwrap() {
        let keys: HashSet<&str> = lead
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let want: HashSet<&str> = [
            "id",
            "created_at",
            "updated_at",
            "referrer",
            "metadata",
            "user",
            "product",
            "member",
        ]
        .into();
        assert_eq!(keys, want);
        let user: HashSet<&str> = lead["user"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(user, ["id", "email", "name", "username"].into());
        let created = lead["created_at"].as_str().unwrap();
        assert_eq!(
            created.len(),
            24,
            "three fractional digits and Z: {created}"
        );
        assert!(created.ends_with('Z'));
        let fixture = leads
            .iter()
            .find(|l| l.id == lead["id"].as_str().unwrap())
            .unwrap();
        assert_eq!(created, rfc3339(fixture.created_at));
        match &fixture.product {
            Some(p) => assert_eq!(lead["product"]["id"], p.as_str()),
            None => assert!(lead["product"].is_null()),
        }
        assert_eq!(lead["metadata"], serde_json::json!({"source": "test"}));
    }
    let parsed: leads_types::Page<leads_types::Lead> = serde_json::from_value(page.body).unwrap();
    assert_eq!(parsed.data.len(), 53);
}

async fn time_filters_are_exclusive_at_millisecond_precision(app: TestApp) {
    let company = app.company(0, None).await;
    let t = 1_701_406_800_401;
    let leads = app
        .leads(&company, &[(t - 1, None), (t, None), (t + 1, None)])
        .await;
    let q = |extra: String| format!("company_id={}&{extra}", company.id);
    let at = rfc3339(t);
    let page: Page = app
        .list(&company.key, &q(format!("created_after={}", enc(&at))))
        .await;
    assert_eq!(page.ids, [leads[2].id.clone()]);
    let page = app
        .list(&company.key, &q(format!("created_before={}", enc(&at))))
        .await;
    assert_eq!(page.ids, [leads[0].id.clone()]);
    // A timestamp read from a response means exactly that lead, whatever the offset or digits.
    let page = app
        .list(
            &company.key,
            &q(format!(
                "created_after={}&created_before={}",
                enc("2023-12-01T06:00:00.400+01:00"),
                enc("2023-12-01T05:00:00.401500Z")
            )),
        )
        .await;
    assert_eq!(page.ids, [leads[1].id.clone()]);
}

/// Whop's reference: "any string (such as "VXNlci0xMA==") or integer (such as 4) input value will
/// be accepted as an ID". An id that names no product of the company is a filter nothing matches.
async fn product_ids_whop_would_accept_filter_and_unknown_ones_match_no_lead(app: TestApp) {
    let company = app.company(2, None).await;
    let leads = app
        .leads(
            &company,
            &[(1_000, Some(0)), (2_000, Some(1)), (3_000, None)],
        )
        .await;
    let q = format!("company_id={}", company.id);
    let long = "é".repeat(255);
    for unknown in [
        "4",
        "VXNlci0xMA==",
        "prod_doesnotexist00",
        " spaced ",
        long.as_str(),
    ] {
        for form in ["product_ids[]", "product_ids"] {
            let query = format!("{q}&{}={}", enc(form), enc(unknown));
            let page = app.list(&company.key, &query).await;
            assert!(page.ids.is_empty(), "{query}: {:?}", page.body);
            assert!(!page.has_next && !page.has_previous);
            assert_eq!(page.end_cursor, None);
        }
    }
    // Beside a known product, an unknown one changes nothing.
    let page = app
        .list(
            &company.key,
            &format!(
                "{q}&product_ids[]=4&product_ids[]={}&product_ids[]=prod_doesnotexist00",
                company.products[1]
            ),
        )
        .await;
    assert_eq!(page.ids, [leads[1].id.clone()]);
}

async fn any_company_id_whop_would_accept_is_answered_like_an_unknown_company(app: TestApp) {
    let company = app.company(0, None).await;
    let (status, expected) = app
        .get(
            "/api/v1/leads?company_id=biz_00000000000000",
            Some(&company.key),
        )
        .await;
    assert!(status.is_client_error(), "{status}: {expected}");
    let long = "x".repeat(255);
    for unknown in ["4", "VXNlci0xMA==", "biz_doesnotexist000", long.as_str()] {
        for name in ["company_id", "account_id"] {
            let query = format!("{name}={}", enc(unknown));
            let (got, body) = app
                .get(&format!("/api/v1/leads?{query}"), Some(&company.key))
                .await;
            assert_eq!(got, status, "{query}: {body}");
            assert_eq!(body["error"]["type"], expected["error"]["type"], "{query}");
            assert_eq!(body["error"]["code"], expected["error"]["code"], "{query}");
        }
    }
}

async fn ids_no_id_can_be_are_refused_naming_their_parameter(app: TestApp) {
    let company = app.company(0, None).await;
    let q = format!("company_id={}", company.id);
    let long = "x".repeat(256);
    let long_wide = "é".repeat(256);
    for bad in [
        long.as_str(),
        long_wide.as_str(),
        "a\u{1}b",
        "tab\there",
        "new\nline",
        "\u{7f}",
        "\u{85}",
    ] {
        for name in ["company_id", "account_id"] {
            expect_400(&app, &company.key, &format!("{name}={}", enc(bad)), name).await;
        }
        for name in ["product_ids[]", "product_ids"] {
            expect_400(
                &app,
                &company.key,
                &format!("{q}&{}={}", enc(name), enc(bad)),
                "product_ids",
            )
            .await;
        }
    }
}

/// A leap second has no instant of its own in Unix time: `00:52:60.500Z` is read as
/// `00:53:00.000Z`, so no lead of the next minute is before it.
async fn a_leap_second_in_a_time_filter_is_the_start_of_the_next_minute(app: TestApp) {
    let company = app.company(0, None).await;
    let minute = leads_types::Timestamp::parse("2026-06-22T00:53:00.000Z")
        .unwrap()
        .as_millis();
    let leads = app
        .leads(
            &company,
            &[
                (minute - 1, None),
                (minute, None),
                (minute + 1, None),
                (minute + 600, None),
            ],
        )
        .await;
    let q = |extra: &str| format!("company_id={}&{extra}", company.id);
    for leap in [
        "2026-06-22T00:52:60.500Z",
        "2026-06-22T00:52:60Z",
        "2026-06-22T00:52:60.999Z",
        "2026-06-22T01:52:60.5+01:00",
    ] {
        let page = app
            .list(&company.key, &q(&format!("created_before={}", enc(leap))))
            .await;
        assert_eq!(page.ids, [leads[0].id.clone()], "created_before={leap}");
        let page = app
            .list(&company.key, &q(&format!("created_after={}", enc(leap))))
            .await;
        assert_eq!(
            page.ids,
            [leads[3].id.clone(), leads[2].id.clone()],
            "created_after={leap}"
        );
    }
    expect_400(
        &app,
        &company.key,
        &q(&format!("created_before={}", enc("2026-06-22T00:52:61Z"))),
        "created_before",
    )
    .await;
}
