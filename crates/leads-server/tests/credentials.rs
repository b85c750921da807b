//! The four kinds of credential, each valid, lacking a permission, for a company it may not act
//! for, revoked or expired, and sent in a malformed header; then what sets each kind apart:
//! apps' installations, user tokens on and off a company's team.

mod common;

use common::credentials::{self, KeyPair};
use common::{Company, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

conformance!(
    a_company_key_is_checked_every_way,
    an_app_key_is_checked_every_way,
    a_company_jwt_is_checked_every_way,
    a_user_token_is_checked_every_way,
    malformed_authorization_headers_are_401_for_every_kind,
    an_app_key_holds_what_both_key_and_installation_hold,
    uninstalling_an_app_takes_effect_at_once,
    revoking_takes_effect_at_once_on_every_instance,
    a_key_used_before_is_refused_on_every_route_once_revoked,
    a_user_token_records_its_own_user_and_names_no_other,
    a_user_token_off_the_team_records_its_own_leads_but_never_reads_the_companys_records,
    a_team_member_sees_the_whole_company_within_the_tokens_scopes,
    member_email_read_decides_emails_for_every_kind,
);

/// Two companies with a lead each, and a user to record leads of.
struct World {
    home: Company,
    other: Company,
    home_lead: String,
    other_lead: String,
    user: String,
}

async fn world(app: &TestApp) -> World {
    let home = app.company(1, None).await;
    let other = app.company(1, None).await;
    let home_lead = app.leads(&home, &[(1_700_000_000_000, Some(0))]).await;
    let other_lead = app.leads(&other, &[(1_700_000_000_000, Some(0))]).await;
    World {
        home,
        other,
        home_lead: home_lead[0].id.clone(),
        other_lead: other_lead[0].id.clone(),
        user: app.user().await.id,
    }
}

/// A credential of one kind in each state the contract tells apart, all for the world's home
/// company.
struct Kind {
    /// Every permission.
    valid: String,
    /// Every permission but `lead:basic:read`.
    lacking_read: String,
    /// Every permission but `lead:manage`.
    lacking_manage: String,
    /// Revoked or expired, each a 401.
    dead: Vec<String>,
    /// A user token: records its own user, for any company; reads only where on the team.
    is_user: bool,
}

const NO_READ: &str =
    "lead:manage,lead:basic:export,member:email:read,member:basic:read,access_pass:basic:read";
const NO_MANAGE: &str =
    "lead:basic:read,lead:basic:export,member:email:read,member:basic:read,access_pass:basic:read";

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let (status, _, body) = app.send(method, path, key, body, &[]).await;
    (status, body)
}

fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, says: &str) {
    assert_eq!(status, expected, "{body}");
    let kind = match expected.as_u16() {
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        _ => unreachable!(),
    };
    assert_eq!(body["error"]["type"], kind, "{body}");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains(says), "{message:?} should say {says:?}");
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|lead| lead["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every check of one kind against the contract's table.
async fn check_kind(app: &TestApp, world: &World, kind: &Kind) {
    let list = |company: &Company| format!("/api/v1/leads?company_id={}", company.id);
    let lead = |id: &str| format!("/api/v1/leads/{id}");
    let create_body = |company: &Company| {
        if kind.is_user {
            json!({"company_id": company.id})
        } else {
            json!({"company_id": company.id, "user_id": world.user})
        }
    };
    let patch = json!({"metadata": {"stage": "called"}});

    // Valid: every route answers.
    let (status, page) = call(app, Method::GET, &list(&world.home), &kind.valid, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(ids(&page), std::slice::from_ref(&world.home_lead));
    let (status, body) = call(app, Method::GET, &lead(&world.home_lead), &kind.valid, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(
        app,
        Method::PATCH,
        &lead(&world.home_lead),
        &kind.valid,
        Some(&patch),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let body = create_body(&world.home);
    let (status, created) =
        call(app, Method::POST, "/api/v1/leads", &kind.valid, Some(&body)).await;
    assert_eq!(status, StatusCode::OK, "{created}");

    // Lacking a permission: 403 naming it.
    let (status, body) = call(
        app,
        Method::GET,
        &list(&world.home),
        &kind.lacking_read,
        None,
    )
    .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "lead:basic:read");
    let path = lead(&world.home_lead);
    let (status, body) = call(app, Method::GET, &path, &kind.lacking_read, None).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "lead:basic:read");
    let body = create_body(&world.home);
    let (status, body) = call(
        app,
        Method::POST,
        "/api/v1/leads",
        &kind.lacking_manage,
        Some(&body),
    )
    .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "lead:manage");
    let (status, body) = call(
        app,
        Method::PATCH,
        &path,
        &kind.lacking_manage,
        Some(&patch),
    )
    .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "lead:manage");

    // Another company: its leads are not found and listing for it is refused, for every kind.
    // Writing for it is refused too, except that a user token records its own user anywhere;
    // even then the lead is the company's record, which the token cannot read back.
    let path = lead(&world.other_lead);
    let (status, body) = call(app, Method::GET, &path, &kind.valid, None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "No such lead");
    let (status, body) = call(app, Method::PATCH, &path, &kind.valid, Some(&patch)).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "No such lead");
    let body = create_body(&world.other);
    let (created_status, created) =
        call(app, Method::POST, "/api/v1/leads", &kind.valid, Some(&body)).await;
    if kind.is_user {
        assert_eq!(created_status, StatusCode::OK, "{created}");
        let own = lead(created["id"].as_str().unwrap());
        let (status, body) = call(app, Method::GET, &own, &kind.valid, None).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "No such lead");
        let (status, body) = call(app, Method::PATCH, &own, &kind.valid, Some(&patch)).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "No such lead");
    } else {
        assert_error(
            created_status,
            &created,
            StatusCode::FORBIDDEN,
            &world.other.id,
        );
    }
    let (status, page) = call(app, Method::GET, &list(&world.other), &kind.valid, None).await;
    assert_error(status, &page, StatusCode::FORBIDDEN, &world.other.id);

    // Revoked or expired: 401 on every route.
    for dead in &kind.dead {
        for (method, path) in [
            (Method::GET, list(&world.home)),
            (Method::GET, lead(&world.home_lead)),
            (Method::PATCH, lead(&world.home_lead)),
            (Method::POST, "/api/v1/leads".to_owned()),
        ] {
            let body = (method != Method::GET).then(|| create_body(&world.home));
            let (status, body) = call(app, method.clone(), &path, dead, body.as_ref()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
            assert_eq!(body["error"]["type"], "unauthorized", "{body}");
        }
    }
}

async fn a_company_key_is_checked_every_way(app: TestApp) {
    let world = world(&app).await;
    let store = app.stores.credentials.as_ref();
    let (revoked, secret) = leads_server::admin::create_key(store, &world.home.id, None)
        .await
        .unwrap();
    leads_server::admin::revoke_key(store, revoked.id.as_str())
        .await
        .unwrap();
    let kind = Kind {
        valid: world.home.key.clone(),
        lacking_read: app.key(&world.home, Some(NO_READ)).await,
        lacking_manage: app.key(&world.home, Some(NO_MANAGE)).await,
        dead: vec![secret, "leads_ck_neverissued".into()],
        is_user: false,
    };
    check_kind(&app, &world, &kind).await;
}

async fn an_app_key_is_checked_every_way(app: TestApp) {
    let world = world(&app).await;
    let (app_id, revoked, dead) = credentials::installed_app(&app, &world.home, None, None).await;
    leads_server::admin::revoke_key(app.stores.credentials.as_ref(), &revoked)
        .await
        .unwrap();
    let key = |permissions| app_key(&app, &app_id, permissions);
    let kind = Kind {
        valid: key(None).await,
        lacking_read: key(Some(NO_READ)).await,
        lacking_manage: key(Some(NO_MANAGE)).await,
        dead: vec![dead, "leads_ak_neverissued".into()],
        is_user: false,
    };
    check_kind(&app, &world, &kind).await;
}

async fn app_key(app: &TestApp, app_id: &str, permissions: Option<&str>) -> String {
    leads_server::admin::create_app_key(app.stores.credentials.as_ref(), app_id, permissions)
        .await
        .unwrap()
        .1
}

async fn a_company_jwt_is_checked_every_way(mut app: TestApp) {
    let world = world(&app).await;
    let pair = KeyPair::es256();
    let verifying = pair.verifying_key();
    app.reconfigure(|config| config.jwt.keys = vec![verifying])
        .await;
    let token = |permissions| pair.sign(&credentials::claims(&world.home.id, permissions), None);
    let mut expired = credentials::claims(&world.home.id, None);
    expired["exp"] = json!(credentials::now_seconds() - 3600);
    expired["nbf"] = json!(credentials::now_seconds() - 7200);
    let kind = Kind {
        valid: token(None),
        lacking_read: token(Some(NO_READ)),
        lacking_manage: token(Some(NO_MANAGE)),
        dead: vec![pair.sign(&expired, None)],
        is_user: false,
    };
    check_kind(&app, &world, &kind).await;
}

async fn a_user_token_is_checked_every_way(app: TestApp) {
    let world = world(&app).await;
    let user = app.user().await.id;
    credentials::join_team(&app, &world.home, &user).await;
    let (revoked, revoked_secret) = credentials::user_token(&app, &user, None).await;
    leads_server::admin::revoke_user_token(app.stores.credentials.as_ref(), &revoked)
        .await
        .unwrap();
    let kind = Kind {
        valid: credentials::user_token(&app, &user, None).await.1,
        lacking_read: credentials::user_token(&app, &user, Some(NO_READ)).await.1,
        lacking_manage: credentials::user_token(&app, &user, Some(NO_MANAGE))
            .await
            .1,
        dead: vec![
            revoked_secret,
            credentials::expired_user_token(&app, &user).await,
            "leads_ut_neverissued".into(),
        ],
        is_user: true,
    };
    check_kind(&app, &world, &kind).await;
    // An expired token says so.
    let expired = credentials::expired_user_token(&app, &user).await;
    let path = format!("/api/v1/leads?company_id={}", world.home.id);
    let (status, body) = call(&app, Method::GET, &path, &expired, None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "expired");
}

async fn malformed_authorization_headers_are_401_for_every_kind(mut app: TestApp) {
    let world = world(&app).await;
    let pair = KeyPair::ed25519();
    let verifying = pair.verifying_key();
    app.reconfigure(|config| config.jwt.keys = vec![verifying])
        .await;
    let user = app.user().await.id;
    credentials::join_team(&app, &world.home, &user).await;
    let tokens = [
        world.home.key.clone(),
        credentials::installed_app(&app, &world.home, None, None)
            .await
            .2,
        pair.sign(&credentials::claims(&world.home.id, None), None),
        credentials::user_token(&app, &user, None).await.1,
    ];
    let path = format!("{}/api/v1/leads?company_id={}", app.base, world.home.id);
    for token in &tokens {
        let good = app.http.get(&path).bearer_auth(token).send().await.unwrap();
        assert_eq!(good.status(), StatusCode::OK, "{token}");
        let shapes: [(&str, Vec<u8>); 7] = [
            ("no scheme", token.as_bytes().to_vec()),
            ("another scheme", format!("Basic {token}").into_bytes()),
            ("only the scheme", b"Bearer".to_vec()),
            ("an empty token", b"Bearer ".to_vec()),
            ("two tokens", format!("Bearer {token} {token}").into_bytes()),
            ("non-ASCII", format!("Bearer {token}\u{e9}").into_bytes()),
            (
                "a control byte",
                format!("Bearer {token}\t{token}").into_bytes(),
            ),
        ];
        for (what, header) in shapes {
            let response = app
                .http
                .get(&path)
                .header(
                    "authorization",
                    reqwest::header::HeaderValue::from_bytes(&header).unwrap(),
                )
                .send()
                .await
                .unwrap();
            let (status, body) = common::read(response).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
            assert_eq!(body["error"]["type"], "unauthorized", "{what}: {body}");
        }
        // Two Authorization headers, each valid alone.
        let response = app
            .http
            .get(&path)
            .header("authorization", format!("Bearer {token}"))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        let (status, body) = common::read(response).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "exactly one");
    }
}

async fn an_app_key_holds_what_both_key_and_installation_hold(app: TestApp) {
    let world = world(&app).await;
    let path = format!("/api/v1/leads?company_id={}", world.home.id);
    let email = |page: &Value| page["data"][0]["user"]["email"].clone();
    // Both hold member:email:read: emails show.
    let (_, _, both) = credentials::installed_app(&app, &world.home, None, None).await;
    let (status, page) = call(&app, Method::GET, &path, &both, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(email(&page), "someone@example.com");
    // The installation lacks it, the key holds it: no emails.
    let without = common::permissions_without("member:email:read");
    let (_, _, key) = credentials::installed_app(&app, &world.home, Some(&without), None).await;
    let (_, page) = call(&app, Method::GET, &path, &key, None).await;
    assert_eq!(email(&page), Value::Null);
    // The key lacks it, the installation holds it: no emails.
    let (_, _, key) = credentials::installed_app(&app, &world.home, None, Some(&without)).await;
    let (_, page) = call(&app, Method::GET, &path, &key, None).await;
    assert_eq!(email(&page), Value::Null);
    // The installation lacks lead:manage: no writes, though the key holds it.
    let (_, _, key) = credentials::installed_app(&app, &world.home, Some(NO_MANAGE), None).await;
    let body = json!({"company_id": world.home.id, "user_id": world.user});
    let (status, body) = call(&app, Method::POST, "/api/v1/leads", &key, Some(&body)).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "lead:manage");
    let path = format!("/api/v1/leads/{}", world.home_lead);
    let patch = json!({"referrer": null});
    let (status, body) = call(&app, Method::PATCH, &path, &key, Some(&patch)).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "lead:manage");
}

async fn uninstalling_an_app_takes_effect_at_once(app: TestApp) {
    let world = world(&app).await;
    let (app_id, _, key) = credentials::installed_app(&app, &world.home, None, None).await;
    // Installed on the other company too, with fewer permissions.
    leads_server::admin::install_app(
        app.stores.credentials.as_ref(),
        &app_id,
        &world.other.id,
        Some(NO_READ),
    )
    .await
    .unwrap();
    let list = format!("/api/v1/leads?company_id={}", world.home.id);
    let lead = format!("/api/v1/leads/{}", world.home_lead);
    assert_eq!(
        call(&app, Method::GET, &list, &key, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, Method::GET, &lead, &key, None).await.0,
        StatusCode::OK
    );
    let other = format!("/api/v1/leads?company_id={}", world.other.id);
    let (status, body) = call(&app, Method::GET, &other, &key, None).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "lead:basic:read");

    leads_server::admin::uninstall_app(app.stores.credentials.as_ref(), &app_id, &world.home.id)
        .await
        .unwrap();
    let (status, body) = call(&app, Method::GET, &list, &key, None).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, &world.home.id);
    let (status, body) = call(&app, Method::GET, &lead, &key, None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "No such lead");
    // Installing again restores it, with the new installation's permissions.
    leads_server::admin::install_app(
        app.stores.credentials.as_ref(),
        &app_id,
        &world.home.id,
        Some(NO_MANAGE),
    )
    .await
    .unwrap();
    assert_eq!(
        call(&app, Method::GET, &list, &key, None).await.0,
        StatusCode::OK
    );
    let body = json!({"company_id": world.home.id, "user_id": world.user});
    let (status, body) = call(&app, Method::POST, "/api/v1/leads", &key, Some(&body)).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "lead:manage");
}

async fn revoking_takes_effect_at_once_on_every_instance(app: TestApp) {
    let world = world(&app).await;
    let store = app.stores.credentials.clone();
    let (key, key_secret) = leads_server::admin::create_key(store.as_ref(), &world.home.id, None)
        .await
        .unwrap();
    let (_, app_key, app_secret) = credentials::installed_app(&app, &world.home, None, None).await;
    let user = app.user().await.id;
    credentials::join_team(&app, &world.home, &user).await;
    let (token, token_secret) = credentials::user_token(&app, &user, None).await;
    // A second instance with a store of its own, as another process would have.
    let other = TestApp::instance_on(&app.database_url, app.backend).await;
    let (first, second) = (app.base.clone(), other.base.clone());
    let path = format!("/api/v1/leads?company_id={}", world.home.id);
    let status_on = |base: &str, secret: &str| {
        let request = app
            .http
            .get(format!("{base}{path}"))
            .bearer_auth(secret)
            .send();
        async move { request.await.unwrap().status() }
    };
    for secret in [&key_secret, &app_secret, &token_secret] {
        assert_eq!(status_on(&first, secret).await, StatusCode::OK);
        assert_eq!(status_on(&second, secret).await, StatusCode::OK);
    }
    leads_server::admin::revoke_key(store.as_ref(), key.id.as_str())
        .await
        .unwrap();
    leads_server::admin::revoke_key(store.as_ref(), &app_key)
        .await
        .unwrap();
    leads_server::admin::revoke_user_token(store.as_ref(), &token)
        .await
        .unwrap();
    for secret in [&key_secret, &app_secret, &token_secret] {
        assert_eq!(status_on(&first, secret).await, StatusCode::UNAUTHORIZED);
        assert_eq!(status_on(&second, secret).await, StatusCode::UNAUTHORIZED);
    }
    // Other credentials of the same company are untouched.
    assert_eq!(status_on(&second, &world.home.key).await, StatusCode::OK);
}

/// An instance remembers company keys it has looked up, and re-checks them in the request's own
/// read: once revoked, such a key is refused at once on every route, with the answer an unknown
/// key gets (401, not the 403 of another company or the empty page of an empty window).
async fn a_key_used_before_is_refused_on_every_route_once_revoked(app: TestApp) {
    let world = world(&app).await;
    let store = app.stores.credentials.clone();
    let (key, secret) = leads_server::admin::create_key(store.as_ref(), &world.home.id, None)
        .await
        .unwrap();
    let list = format!("/api/v1/leads?company_id={}", world.home.id);
    let empty = format!("{list}&created_before=2001-01-01T00:00:00Z");
    let other = format!("/api/v1/leads?company_id={}", world.other.id);
    let lead = format!("/api/v1/leads/{}", world.home_lead);
    let create = json!({"company_id": world.home.id, "user_id": world.user});
    let patch = json!({"metadata": {"stage": "called"}});
    let routes = [
        (Method::GET, list.as_str(), None),
        (Method::GET, empty.as_str(), None),
        (Method::GET, lead.as_str(), None),
        (Method::PATCH, lead.as_str(), Some(&patch)),
        (Method::POST, "/api/v1/leads", Some(&create)),
    ];
    for _ in 0..2 {
        for (method, path, body) in &routes {
            let (status, answer) = call(&app, method.clone(), path, &secret, *body).await;
            assert_eq!(status, StatusCode::OK, "{method} {path}: {answer}");
        }
    }
    let (status, body) = call(&app, Method::GET, &other, &secret, None).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, &world.other.id);

    leads_server::admin::revoke_key(store.as_ref(), key.id.as_str())
        .await
        .unwrap();
    for _ in 0..2 {
        for (method, path, body) in routes.iter().chain([&(Method::GET, other.as_str(), None)]) {
            let (status, answer) = call(&app, method.clone(), path, &secret, *body).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path}: {answer}"
            );
            assert_error(status, &answer, StatusCode::UNAUTHORIZED, "revoked");
        }
    }
    let (status, page) = call(&app, Method::GET, &list, &world.home.key, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
}

async fn a_user_token_records_its_own_user_and_names_no_other(app: TestApp) {
    let world = world(&app).await;
    let user = app.user().await;
    let (_, token) = credentials::user_token(&app, &user.id, None).await;
    // Without user_id, the token's user is recorded.
    let body = json!({"company_id": world.home.id, "product_id": world.home.products[0]});
    let (status, lead) = call(&app, Method::POST, "/api/v1/leads", &token, Some(&body)).await;
    assert_eq!(status, StatusCode::OK, "{lead}");
    assert_eq!(lead["user"]["id"], user.id);
    assert_eq!(lead["user"]["username"], user.username);
    // Naming itself is the same; naming anyone else is refused, even on the team.
    let body = json!({"company_id": world.home.id, "user_id": user.id});
    let (status, lead) = call(&app, Method::POST, "/api/v1/leads", &token, Some(&body)).await;
    assert_eq!(status, StatusCode::OK, "{lead}");
    let body = json!({"company_id": world.home.id, "user_id": world.user});
    let (status, body) = call(&app, Method::POST, "/api/v1/leads", &token, Some(&body)).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "own user");
    credentials::join_team(&app, &world.home, &user.id).await;
    let body = json!({"company_id": world.home.id, "user_id": world.user});
    let (status, body) = call(&app, Method::POST, "/api/v1/leads", &token, Some(&body)).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "own user");
    // A company or app key must still name a user.
    let body = json!({"company_id": world.home.id});
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/v1/leads",
        &world.home.key,
        Some(&body),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "user_id");
    // A company that does not exist is a 400 naming company_id, not a failure.
    let body = json!({"company_id": "biz_00000000000000"});
    let (status, body) = call(&app, Method::POST, "/api/v1/leads", &token, Some(&body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "company_id");
}

async fn a_user_token_off_the_team_records_its_own_leads_but_never_reads_the_companys_records(
    app: TestApp,
) {
    let world = world(&app).await;
    let user = app.user().await;
    let (_, token) = credentials::user_token(&app, &user.id, None).await;
    // The user records themself as a lead three times; the company then writes its own notes
    // about them and credits a referrer.
    // The last create is made safe to retry with an Idempotency-Key.
    let mut own = Vec::new();
    let body = json!({"company_id": world.home.id, "referrer": "https://prospect.example"});
    let retry = [("Idempotency-Key", "signup-1")];
    for i in 0..3 {
        let headers: &[(&str, &str)] = if i == 2 { &retry } else { &[] };
        let (status, _, lead) = app
            .send(Method::POST, "/api/v1/leads", &token, Some(&body), headers)
            .await;
        assert_eq!(status, StatusCode::OK, "{lead}");
        assert_eq!(lead["user"]["id"], user.id.as_str(), "{lead}");
        own.push(format!("/api/v1/leads/{}", lead["id"].as_str().unwrap()));
    }
    let notes =
        json!({"metadata": {"note": "price-sensitive"}, "referrer": "https://affiliate.example"});
    for path in &own {
        let (status, lead) = call(&app, Method::PATCH, path, &world.home.key, Some(&notes)).await;
        assert_eq!(status, StatusCode::OK, "{lead}");
    }

    // Retrying the create answers the same lead, but as the request sent it: never the
    // company's notes or the referrer it credited since.
    let (status, headers, replay) = app
        .send(Method::POST, "/api/v1/leads", &token, Some(&body), &retry)
        .await;
    assert_eq!(status, StatusCode::OK, "{replay}");
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(
        format!("/api/v1/leads/{}", replay["id"].as_str().unwrap()),
        own[2]
    );
    assert_eq!(replay["referrer"], "https://prospect.example", "{replay}");
    assert_eq!(replay["metadata"], Value::Null, "{replay}");
    assert!(!replay.to_string().contains("price-sensitive"), "{replay}");

    // Listing the company is refused outright, however filtered, naming the company.
    for query in [
        String::new(),
        format!("&product_ids[]={}", world.home.products[0]),
        "&first=1&created_after=2000-01-01T00:00:00.000Z".to_owned(),
    ] {
        let path = format!("/api/v1/leads?company_id={}{query}", world.home.id);
        let (status, body) = call(&app, Method::GET, &path, &token, None).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, &world.home.id);
        let path = format!("/api/v1/leads?account_id={}{query}", world.home.id);
        let (status, body) = call(&app, Method::GET, &path, &token, None).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, &world.home.id);
    }
    // The leads about the user are the company's records: not found, exactly like another
    // company's lead, whether read or written; and nothing changes.
    let rewrite = json!({"referrer": "https://someone-else.example", "metadata": null});
    for path in own
        .iter()
        .chain([&format!("/api/v1/leads/{}", world.home_lead)])
    {
        let (status, body) = call(&app, Method::GET, path, &token, None).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "No such lead");
        let (status, body) = call(&app, Method::PATCH, path, &token, Some(&rewrite)).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "No such lead");
    }
    for path in &own {
        let (_, lead) = call(&app, Method::GET, path, &world.home.key, None).await;
        assert_eq!(lead["referrer"], "https://affiliate.example", "{lead}");
        assert_eq!(
            lead["metadata"],
            json!({"note": "price-sensitive"}),
            "{lead}"
        );
    }
}

async fn a_team_member_sees_the_whole_company_within_the_tokens_scopes(app: TestApp) {
    let world = world(&app).await;
    app.leads(
        &world.home,
        &[(1_700_000_000_001, None), (1_700_000_000_002, None)],
    )
    .await;
    let user = app.user().await.id;
    let (_, token) = credentials::user_token(&app, &user, None).await;
    let without_email = common::permissions_without("member:email:read");
    let (_, narrow) = credentials::user_token(&app, &user, Some(&without_email)).await;
    let path = format!("/api/v1/leads?company_id={}", world.home.id);
    let (status, body) = call(&app, Method::GET, &path, &token, None).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, &world.home.id);

    credentials::join_team(&app, &world.home, &user).await;
    let (status, page) = call(&app, Method::GET, &path, &token, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(ids(&page).len(), 3);
    assert_eq!(page["data"][0]["user"]["email"], "someone@example.com");
    let (_, page) = call(&app, Method::GET, &path, &narrow, None).await;
    assert_eq!(ids(&page).len(), 3);
    assert!(page["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["user"]["email"].is_null()));
    // Any lead of the company reads and updates.
    let lead = format!("/api/v1/leads/{}", world.home_lead);
    assert_eq!(
        call(&app, Method::GET, &lead, &token, None).await.0,
        StatusCode::OK
    );
    let patch = json!({"referrer": "https://team.example"});
    assert_eq!(
        call(&app, Method::PATCH, &lead, &token, Some(&patch))
            .await
            .0,
        StatusCode::OK
    );
    // Not the other company's.
    let other = format!("/api/v1/leads/{}", world.other_lead);
    assert_eq!(
        call(&app, Method::GET, &other, &token, None).await.0,
        StatusCode::NOT_FOUND
    );

    leads_server::admin::remove_from_team(app.stores.credentials.as_ref(), &world.home.id, &user)
        .await
        .unwrap();
    let (status, body) = call(&app, Method::GET, &path, &token, None).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, &world.home.id);
    assert_eq!(
        call(&app, Method::GET, &lead, &token, None).await.0,
        StatusCode::NOT_FOUND
    );
}

async fn member_email_read_decides_emails_for_every_kind(mut app: TestApp) {
    let world = world(&app).await;
    let pair = KeyPair::es256();
    let verifying = pair.verifying_key();
    app.reconfigure(|config| config.jwt.keys = vec![verifying])
        .await;
    let user = app.user().await.id;
    credentials::join_team(&app, &world.home, &user).await;
    let without = common::permissions_without("member:email:read");
    let pairs = [
        (
            world.home.key.clone(),
            app.key(&world.home, Some(&without)).await,
        ),
        (
            credentials::installed_app(&app, &world.home, None, None)
                .await
                .2,
            credentials::installed_app(&app, &world.home, None, Some(&without))
                .await
                .2,
        ),
        (
            pair.sign(&credentials::claims(&world.home.id, None), None),
            pair.sign(&credentials::claims(&world.home.id, Some(&without)), None),
        ),
        (
            credentials::user_token(&app, &user, None).await.1,
            credentials::user_token(&app, &user, Some(&without)).await.1,
        ),
    ];
    let list = format!("/api/v1/leads?company_id={}", world.home.id);
    let one = format!("/api/v1/leads/{}", world.home_lead);
    for (with, without) in &pairs {
        let (_, page) = call(&app, Method::GET, &list, with, None).await;
        assert_eq!(page["data"][0]["user"]["email"], "someone@example.com");
        let (_, lead) = call(&app, Method::GET, &one, with, None).await;
        assert_eq!(lead["user"]["email"], "someone@example.com");
        let (_, page) = call(&app, Method::GET, &list, without, None).await;
        assert_eq!(page["data"][0]["user"]["email"], Value::Null, "{page}");
        let (_, lead) = call(&app, Method::GET, &one, without, None).await;
        assert_eq!(lead["user"]["email"], Value::Null, "{lead}");
    }
}
