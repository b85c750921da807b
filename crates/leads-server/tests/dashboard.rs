//! The dashboard over HTTP, as a browser without JavaScript uses it: signing in and out, the
//! session cookie, the security headers, CSRF, revoked keys, idle expiry, tenants, and
//! `--dashboard false`. `dashboard_browser.rs` drives the same pages in Chromium.

mod common;

use common::credentials::{installed_app, join_team, user_token};
use common::{Company, TestApp};
use leads_server::admin;
use leads_server::auth::hash_secret;
use leads_server::domain::Timestamp;
use leads_server::storage::sessions::IDLE_EXPIRY_MILLIS;
use reqwest::header::{HeaderMap, CONTENT_TYPE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::json;

/// A browser without JavaScript: follows no redirect by itself and keeps one session cookie.
struct Visitor {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

/// What a page answered.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The session's CSRF token, as the page's forms carry it.
    fn csrf_token(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let at = self.body.find(marker).expect("a form with a CSRF token") + marker.len();
        self.body[at..].split('"').next().unwrap().to_owned()
    }

    /// The lead ids of the page's table, in order.
    fn lead_ids(&self) -> Vec<String> {
        self.body
            .split("data-lead-id=\"")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap().to_owned())
            .collect()
    }
}

impl Visitor {
    fn new(app: &TestApp) -> Visitor {
        Visitor {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.base.clone(),
            cookie: None,
        }
    }

    async fn answer(&mut self, request: reqwest::RequestBuilder) -> Answer {
        let request = match &self.cookie {
            Some(cookie) => request.header("cookie", format!("leads_session={cookie}")),
            None => request,
        };
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        for value in headers.get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            let value = text
                .strip_prefix("leads_session=")
                .and_then(|rest| rest.split(';').next())
                .unwrap_or("");
            self.cookie = (!value.is_empty()).then(|| value.to_owned());
        }
        let body = response.text().await.expect("body");
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Answer {
        let request = self.http.get(format!("{}{path}", self.base));
        self.answer(request).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form_body(form));
        self.answer(request).await
    }

    async fn sign_in(&mut self, key: &str) -> Answer {
        self.post("/dashboard/sign-in", &[("api_key", key)]).await
    }
}

/// A form as a browser sends it.
fn form_body(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn assert_security_headers(answer: &Answer, what: &str) {
    let header = |name: &str| {
        answer
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{what}: no {name} header"))
            .to_owned()
    };
    let csp = header("content-security-policy");
    assert!(csp.contains("default-src 'self'"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header("referrer-policy"), "same-origin", "{what}");
}

/// A company key's id and secret.
async fn key_of(app: &TestApp, company: &Company) -> (String, String) {
    let (key, secret) = admin::create_key(app.stores.credentials.as_ref(), &company.id, None)
        .await
        .expect("key");
    (key.id.into_string(), secret)
}

/// Days ago from now, in milliseconds, plus `minutes`.
fn days_ago(days: i64, minutes: i64) -> i64 {
    Timestamp::now().as_millis() - days * 86_400_000 + minutes * 60_000
}

async fn signing_in_with_a_company_key_sets_a_strict_cookie_and_shows_its_leads(app: TestApp) {
    let company = app.company(2, None).await;
    let made = app
        .leads(
            &company,
            &[(days_ago(2, 0), Some(0)), (days_ago(1, 0), Some(1))],
        )
        .await;
    let mut visitor = Visitor::new(&app);

    let root = visitor.get("/").await;
    assert_eq!(root.status, StatusCode::SEE_OTHER);
    assert_eq!(root.location(), "/dashboard");
    let unsigned = visitor.get("/dashboard").await;
    assert_eq!(unsigned.status, StatusCode::SEE_OTHER);
    assert_eq!(unsigned.location(), "/dashboard/sign-in");
    let form = visitor.get("/dashboard/sign-in").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form
        .body
        .contains(r#"<label for="api_key">API key</label>"#));
    assert!(form.body.contains(r#"type="password" id="api_key""#));
    assert!(form.body.contains(">Sign in</button>"));
    assert!(!form.body.contains("<script"), "no inline scripts");
    for answer in [&root, &unsigned, &form] {
        assert_security_headers(answer, "before signing in");
    }

    let wrong = visitor.sign_in("leads_ck_notakeyatall").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Unknown or revoked credential."));
    assert!(wrong.headers.get(SET_COOKIE).is_none());
    assert!(
        !wrong.body.contains("leads_ck_notakeyatall"),
        "a key is never echoed"
    );

    let signed = visitor.sign_in(&company.key).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER);
    assert_eq!(signed.location(), "/dashboard");
    let cookie = signed.headers.get(SET_COOKIE).unwrap().to_str().unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/dashboard"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    assert!(!cookie.contains(&company.key), "the cookie is not the key");

    let page = visitor.get("/dashboard").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_security_headers(&page, "the leads page");
    assert!(page.headers[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(!page.body.contains(&company.key));
    assert!(!page.body.contains("<script"), "no inline scripts");
    let mut expected: Vec<String> = made.iter().rev().map(|l| l.id.clone()).collect();
    assert_eq!(page.lead_ids(), expected);
    expected.sort();
    let lead = visitor
        .get(&format!("/dashboard/leads/{}", made[0].id))
        .await;
    assert_eq!(lead.status, StatusCode::OK);
    assert_security_headers(&lead, "a lead's page");
    assert!(lead.body.contains(&made[0].id));
    let css = visitor.get("/dashboard/assets/dashboard.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.headers[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    assert_security_headers(&css, "the stylesheet");
}

async fn the_cookie_is_secure_behind_an_https_public_url(mut app: TestApp) {
    app.reconfigure(|config| config.public_url = Some("https://leads.example.com".into()))
        .await;
    let company = app.company(0, None).await;
    let mut visitor = Visitor::new(&app);
    let signed = visitor.sign_in(&company.key).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER);
    let cookie = signed.headers.get(SET_COOKIE).unwrap().to_str().unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
}

async fn a_forged_form_without_the_csrf_token_is_refused(app: TestApp) {
    let company = app.company(1, None).await;
    let made = app.leads(&company, &[(days_ago(1, 0), Some(0))]).await;
    let lead = &made[0].id;
    let mut visitor = Visitor::new(&app);
    visitor.sign_in(&company.key).await;
    let path = format!("/dashboard/leads/{lead}");
    let token = visitor.get(&path).await.csrf_token();

    let forged = visitor
        .post(
            &path,
            &[("referrer", "https://evil.example/"), ("metadata", "")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    assert!(forged.body.contains("CSRF token"));
    let wrong = visitor
        .post(
            &path,
            &[
                ("csrf_token", "x".repeat(token.len()).as_str()),
                ("referrer", "https://evil.example/"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let sign_out = visitor.post("/dashboard/sign-out", &[]).await;
    assert_eq!(
        sign_out.status,
        StatusCode::FORBIDDEN,
        "sign-out needs it too"
    );
    let other_site = visitor
        .answer(
            visitor
                .http
                .post(format!("{}/dashboard/sign-in", visitor.base))
                .header("origin", "https://evil.example")
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form_body(&[("api_key", company.key.as_str())])),
        )
        .await;
    assert_eq!(other_site.status, StatusCode::FORBIDDEN);

    let (status, body) = app
        .get(&format!("/api/v1/leads/{lead}"), Some(&company.key))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["referrer"], "https://example.com/", "unchanged");
    assert_eq!(
        visitor.get("/dashboard").await.status,
        StatusCode::OK,
        "still signed in"
    );

    let real = visitor
        .post(
            &path,
            &[
                ("csrf_token", token.as_str()),
                ("referrer", "https://x.com/friend"),
                ("metadata", r#"{"stage": "qualified"}"#),
            ],
        )
        .await;
    assert_eq!(real.status, StatusCode::SEE_OTHER, "{}", real.body);
    let (_, body) = app
        .get(&format!("/api/v1/leads/{lead}"), Some(&company.key))
        .await;
    assert_eq!(body["referrer"], "https://x.com/friend");
    assert_eq!(body["metadata"], json!({"stage": "qualified"}));
}

async fn the_edit_form_validates_as_patch_does_and_keeps_what_was_typed(app: TestApp) {
    let company = app.company(1, None).await;
    let made = app.leads(&company, &[(days_ago(1, 0), Some(0))]).await;
    let lead = &made[0].id;
    let mut visitor = Visitor::new(&app);
    visitor.sign_in(&company.key).await;
    let path = format!("/dashboard/leads/{lead}");
    let token = visitor.get(&path).await.csrf_token();

    // What PATCH says of the same values, to compare the messages with.
    let patch = |body: serde_json::Value| {
        let app = &app;
        let key = company.key.clone();
        async move {
            let (status, _, body) = app
                .send(
                    reqwest::Method::PATCH,
                    &format!("/api/v1/leads/{lead}"),
                    &key,
                    Some(&body),
                    &[],
                )
                .await;
            (
                status,
                body["error"]["message"].as_str().unwrap_or("").to_owned(),
            )
        }
    };
    let long_referrer = format!("https://x.com/{}", "a".repeat(3000));
    let (status, message) = patch(json!({"referrer": long_referrer})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let answer = visitor
        .post(
            &path,
            &[
                ("csrf_token", token.as_str()),
                ("referrer", long_referrer.as_str()),
                ("metadata", r#"{"kept": true}"#),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let escaped = message.replace('\'', "&#39;").replace('"', "&#34;");
    assert!(
        answer.body.contains(&format!(
            "<p class=\"error\" id=\"referrer_error\">{escaped}</p>"
        )) || answer
            .body
            .contains(&format!("id=\"referrer_error\">{message}</p>")),
        "the PATCH message {message:?} beside the referrer field"
    );
    assert!(
        answer.body.contains(&long_referrer),
        "the typed referrer is kept"
    );
    assert!(
        answer.body.contains("{&#34;kept&#34;: true}")
            || answer.body.contains("{&quot;kept&quot;: true}"),
        "the typed metadata is kept"
    );

    let (status, _) = patch(json!({"metadata": [1, 2]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let answer = visitor
        .post(
            &path,
            &[
                ("csrf_token", token.as_str()),
                ("referrer", "https://kept.example/"),
                ("metadata", "[1, 2]"),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.contains("id=\"metadata_error\""));
    assert!(answer.body.contains("value=\"https://kept.example/\""));
    let answer = visitor
        .post(
            &path,
            &[
                ("csrf_token", token.as_str()),
                ("referrer", ""),
                ("metadata", "{not json"),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.contains("id=\"metadata_error\""));
    assert!(answer.body.contains("{not json"));

    let (_, body) = app
        .get(&format!("/api/v1/leads/{lead}"), Some(&company.key))
        .await;
    assert_eq!(
        body["referrer"], "https://example.com/",
        "nothing was written"
    );

    let cleared = visitor
        .post(
            &path,
            &[
                ("csrf_token", token.as_str()),
                ("referrer", ""),
                ("metadata", ""),
            ],
        )
        .await;
    assert_eq!(cleared.status, StatusCode::SEE_OTHER);
    let (_, body) = app
        .get(&format!("/api/v1/leads/{lead}"), Some(&company.key))
        .await;
    assert_eq!(body["referrer"], serde_json::Value::Null, "empty clears");
    assert_eq!(body["metadata"], serde_json::Value::Null);
}

async fn a_revoked_keys_sessions_are_refused_and_deleted(app: TestApp) {
    let company = app.company(0, None).await;
    let (key_id, secret) = key_of(&app, &company).await;
    let mut first = Visitor::new(&app);
    let mut second = Visitor::new(&app);
    first.sign_in(&secret).await;
    second.sign_in(&secret).await;
    assert_eq!(first.get("/dashboard").await.status, StatusCode::OK);
    let second_cookie = second.cookie.clone().unwrap();

    admin::revoke_key(app.stores.credentials.as_ref(), &key_id)
        .await
        .unwrap();
    let refused = first.get("/dashboard").await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
    assert_eq!(refused.location(), "/dashboard/sign-in?ended=revoked");
    assert!(first.cookie.is_none(), "the cookie is cleared");
    // Every session of the key is gone from the database, not only the one that asked.
    let now = Timestamp::now().as_millis();
    let found = app
        .stores
        .sessions
        .touch_session(hash_secret(&second_cookie), now)
        .await
        .unwrap();
    assert!(found.is_none(), "the other session of the key is deleted");
    let again = first.sign_in(&secret).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
}

async fn signing_out_ends_the_session(app: TestApp) {
    let company = app.company(0, None).await;
    let mut visitor = Visitor::new(&app);
    visitor.sign_in(&company.key).await;
    let cookie = visitor.cookie.clone().unwrap();
    let token = visitor.get("/dashboard").await.csrf_token();
    let out = visitor
        .post("/dashboard/sign-out", &[("csrf_token", token.as_str())])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/dashboard/sign-in?ended=signed_out");
    let cleared = out.headers.get(SET_COOKIE).unwrap().to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let found = app
        .stores
        .sessions
        .touch_session(hash_secret(&cookie), Timestamp::now().as_millis())
        .await
        .unwrap();
    assert!(found.is_none());
    visitor.cookie = Some(cookie);
    let after = visitor.get("/dashboard").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert!(after.location().starts_with("/dashboard/sign-in"));
}

async fn a_session_idle_for_twelve_hours_is_over(app: TestApp) {
    let company = app.company(0, None).await;
    let mut visitor = Visitor::new(&app);
    visitor.sign_in(&company.key).await;
    let hash = hash_secret(visitor.cookie.as_deref().unwrap());
    let sessions = app.stores.sessions.clone();
    let now = Timestamp::now().as_millis();
    let nearly = sessions
        .touch_session(hash, now + IDLE_EXPIRY_MILLIS - 60_000)
        .await
        .unwrap();
    assert!(nearly.is_some(), "used within 12 hours: still on");
    // Seen just now (the touch above), so 12 hours from then it is over.
    let late = sessions
        .touch_session(hash, now + 2 * IDLE_EXPIRY_MILLIS)
        .await
        .unwrap();
    assert!(late.is_none(), "idle for 12 hours: over");
    let page = visitor.get("/dashboard").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/dashboard/sign-in?ended=expired");
}

async fn a_session_of_one_company_never_shows_anothers_data(app: TestApp) {
    let a = app.company(1, None).await;
    let b = app.company(1, None).await;
    let a_leads = app.leads(&a, &[(days_ago(1, 0), Some(0))]).await;
    let b_leads = app.leads(&b, &[(days_ago(1, 0), Some(0))]).await;
    let b_lead = &b_leads[0].id;
    let mut visitor = Visitor::new(&app);
    visitor.sign_in(&a.key).await;
    let page = visitor.get("/dashboard").await;
    assert_eq!(page.lead_ids(), vec![a_leads[0].id.clone()]);
    let token = page.csrf_token();

    let theirs = visitor.get(&format!("/dashboard/leads/{b_lead}")).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert!(!theirs.body.contains(&b_leads[0].user.id));
    let edit = visitor
        .post(
            &format!("/dashboard/leads/{b_lead}"),
            &[
                ("csrf_token", token.as_str()),
                ("referrer", "https://a.example/"),
            ],
        )
        .await;
    assert_eq!(edit.status, StatusCode::NOT_FOUND);
    let (_, body) = app
        .get(&format!("/api/v1/leads/{b_lead}"), Some(&b.key))
        .await;
    assert_eq!(body["referrer"], "https://example.com/");

    let by_their_product = visitor
        .get(&format!("/dashboard?product={}", b.products[0]))
        .await;
    assert_eq!(by_their_product.status, StatusCode::OK);
    assert!(by_their_product.lead_ids().is_empty());
    assert!(!by_their_product.body.contains(b_lead.as_str()));
    let their_cursor = app
        .list(&b.key, &format!("company_id={}", b.id))
        .await
        .end_cursor
        .unwrap();
    let with_their_cursor = visitor
        .get(&format!("/dashboard?after={}", common::enc(&their_cursor)))
        .await;
    assert_eq!(with_their_cursor.status, StatusCode::BAD_REQUEST);
    assert!(!with_their_cursor.body.contains(b_lead.as_str()));

    // An app installed on both chooses one and sees only that one's leads.
    let (_, _, app_key) = installed_app(&app, &a, None, None).await;
    let c = app.company(0, None).await;
    let mut chooser = Visitor::new(&app);
    let signed = chooser.sign_in(&app_key).await;
    assert_eq!(
        signed.location(),
        "/dashboard",
        "one company: no choice to make"
    );
    let store = app.stores.credentials.as_ref();
    let app_id = admin::create_app(store, "Two").await.unwrap().id;
    admin::install_app(store, &app_id, &a.id, None)
        .await
        .unwrap();
    admin::install_app(store, &app_id, &b.id, None)
        .await
        .unwrap();
    let (_, two_key) = admin::create_app_key(store, &app_id, None).await.unwrap();
    let mut two = Visitor::new(&app);
    let signed = two.sign_in(&two_key).await;
    assert_eq!(signed.location(), "/dashboard/company");
    let choose = two.get("/dashboard").await;
    assert_eq!(choose.location(), "/dashboard/company");
    let form = two.get("/dashboard/company").await;
    assert!(form.body.contains(&a.id) && form.body.contains(&b.id));
    assert!(!form.body.contains(&c.id));
    let token = form.csrf_token();
    let refused = two
        .post(
            "/dashboard/company",
            &[
                ("csrf_token", token.as_str()),
                ("company_id", c.id.as_str()),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let chose = two
        .post(
            "/dashboard/company",
            &[
                ("csrf_token", token.as_str()),
                ("company_id", a.id.as_str()),
            ],
        )
        .await;
    assert_eq!(chose.location(), "/dashboard");
    assert_eq!(
        two.get("/dashboard").await.lead_ids(),
        vec![a_leads[0].id.clone()]
    );
    let theirs = two.get(&format!("/dashboard/leads/{b_lead}")).await;
    assert_eq!(
        theirs.status,
        StatusCode::NOT_FOUND,
        "the app may read B, but this session acts for A"
    );

    // A user token acts for its user's team only.
    let user = app.user().await;
    join_team(&app, &a, &user.id).await;
    let (_, token) = user_token(&app, &user.id, None).await;
    let mut member = Visitor::new(&app);
    assert_eq!(member.sign_in(&token).await.location(), "/dashboard");
    assert_eq!(
        member.get("/dashboard").await.lead_ids(),
        vec![a_leads[0].id.clone()]
    );
    let loner = app.user().await;
    let (_, token) = user_token(&app, &loner.id, None).await;
    let mut outsider = Visitor::new(&app);
    assert_eq!(outsider.sign_in(&token).await.status, StatusCode::FORBIDDEN);
}

async fn the_dashboard_can_be_turned_off(mut app: TestApp) {
    app.reconfigure(|config| config.dashboard = false).await;
    let company = app.company(0, None).await;
    let mut visitor = Visitor::new(&app);
    for path in ["/", "/dashboard", "/dashboard/sign-in"] {
        let answer = visitor.get(path).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            answer.body.starts_with("{\"error\""),
            "{path}: {}",
            answer.body
        );
    }
    assert_eq!(
        visitor.sign_in(&company.key).await.status,
        StatusCode::NOT_FOUND
    );
    let (status, _) = app
        .get(
            &format!("/api/v1/leads?company_id={}", company.id),
            Some(&company.key),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the API is still served");
}

async fn bad_filters_are_shown_beside_their_fields_and_never_answer_500(app: TestApp) {
    let company = app.company(1, None).await;
    app.leads(&company, &[(days_ago(1, 0), Some(0))]).await;
    let mut visitor = Visitor::new(&app);
    visitor.sign_in(&company.key).await;

    let dates = visitor
        .get("/dashboard?from=yesterday&to=%2B262143-12-31")
        .await;
    assert_eq!(dates.status, StatusCode::OK);
    assert!(dates.body.contains("id=\"from_error\""));
    assert!(dates.body.contains("id=\"to_error\""));
    assert!(
        dates.body.contains("value=\"yesterday\""),
        "the typed text is kept"
    );
    let reversed = visitor
        .get("/dashboard?from=2026-02-01&to=2026-01-01")
        .await;
    assert_eq!(reversed.status, StatusCode::OK);
    assert!(reversed.body.contains("Must not be before From."));
    for query in [
        "after=garbage",
        "before=%00",
        "product=%01",
        &format!("product={}", "p".repeat(300)),
        "from=1970-01-01&to=9998-12-31",
    ] {
        let answer = visitor.get(&format!("/dashboard?{query}")).await;
        assert!(
            answer.status == StatusCode::OK || answer.status == StatusCode::BAD_REQUEST,
            "{query}: {} {}",
            answer.status,
            answer.body
        );
        assert!(answer.headers[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
    }
    let not_an_id = visitor
        .get(&format!("/dashboard/leads/{}", "x".repeat(300)))
        .await;
    assert_eq!(not_an_id.status, StatusCode::BAD_REQUEST);
    let unknown = visitor.get("/dashboard/leads/lead_doesnotexist00").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let no_page = visitor.get("/dashboard/nothing/here").await;
    assert_eq!(no_page.status, StatusCode::NOT_FOUND);
    assert_security_headers(&no_page, "a missing page");
    let garbage = visitor
        .answer(
            visitor
                .http
                .post(format!("{}/dashboard/sign-in", visitor.base))
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(vec![0xff, 0xfe, b'=', 0x00]),
        )
        .await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    let jwt = visitor.sign_in("a.b.c").await;
    assert_eq!(jwt.status, StatusCode::UNAUTHORIZED);
    assert!(jwt.body.contains("JWT cannot start a session"));
}

async fn idle_sessions_are_forgotten_in_batches_and_others_kept(app: TestApp) {
    use leads_server::storage::sessions::{SecretKind, Session};
    let company = app.company(0, None).await;
    let sessions = app.stores.sessions.clone();
    let now = Timestamp::now().as_millis();
    let session = |n: u8, last_seen_at: i64| Session {
        id_hash: [n; 32],
        credential_kind: SecretKind::CompanyKey,
        credential_hash: hash_secret(&company.key),
        company: None,
        csrf_token: format!("csrf{n}"),
        created_at: last_seen_at,
        last_seen_at,
    };
    for n in 1..=3 {
        sessions
            .create_session(session(n, now - IDLE_EXPIRY_MILLIS - i64::from(n)))
            .await
            .unwrap();
    }
    sessions.create_session(session(9, now)).await.unwrap();
    let before = now - IDLE_EXPIRY_MILLIS;
    assert_eq!(sessions.forget_idle_sessions(before, 2).await.unwrap(), 2);
    assert_eq!(sessions.forget_idle_sessions(before, 2).await.unwrap(), 1);
    assert_eq!(sessions.forget_idle_sessions(before, 2).await.unwrap(), 0);
    let kept = sessions.touch_session([9; 32], now).await.unwrap().unwrap();
    assert_eq!(kept.csrf_token, "csrf9");
    assert_eq!(kept.credential_kind, SecretKind::CompanyKey);
    assert_eq!(kept.company, None);
    assert!(sessions
        .touch_session([1; 32], now)
        .await
        .unwrap()
        .is_none());
}

/// The hidden fields of the page's **Download CSV** form, as a browser would send them.
fn download_form(page: &Answer) -> Vec<(String, String)> {
    let start = page
        .body
        .find("action=\"/dashboard/exports\"")
        .expect("a Download CSV form");
    let form = &page.body[start..];
    let form = &form[..form.find("</form>").expect("the form's end")];
    assert!(form.contains(">Download CSV</button>"), "{form}");
    form.split("<input type=\"hidden\" ")
        .skip(1)
        .map(|input| {
            let attr = |name: &str| {
                let marker = format!("{name}=\"");
                let at = input.find(&marker).expect(name) + marker.len();
                input[at..].split('"').next().unwrap().to_owned()
            };
            (attr("name"), attr("value"))
        })
        .collect()
}

/// Follows an export's progress page until it offers the file; answers the download link. While
/// the file is written the page reloads itself; once it is ready the page goes to the link.
async fn ready_download(visitor: &mut Visitor, page: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let answer = visitor.get(page).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_security_headers(&answer, page);
        if let Some(at) = answer.body.find("id=\"download\" href=\"") {
            let href = answer.body[at + "id=\"download\" href=\"".len()..]
                .split('"')
                .next()
                .unwrap()
                .to_owned();
            assert!(
                answer.body.contains(&format!(
                    "<meta http-equiv=\"refresh\" content=\"0; url={href}\">"
                )),
                "the ready page starts the download by itself: {}",
                answer.body
            );
            assert!(href.starts_with("/api/v1/exports/exprt_"), "{href}");
            return href;
        }
        assert!(
            answer
                .body
                .contains("<meta http-equiv=\"refresh\" content=\"1\">"),
            "a page of an export in progress reloads itself: {}",
            answer.body
        );
        assert!(answer.body.contains("<progress"), "{}", answer.body);
        assert!(
            std::time::Instant::now() < deadline,
            "the export never finished: {}",
            answer.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn download_csv_exports_the_pages_filters_and_offers_the_file_when_ready(app: TestApp) {
    let company = app.company(2, None).await;
    let other = app.company(1, None).await;
    let specs: Vec<(i64, Option<usize>)> = (0..12)
        .map(|i| {
            (
                days_ago(i % 5, -i),
                [Some(0), Some(1), None][i as usize % 3],
            )
        })
        .chain([(days_ago(45, 0), Some(0))])
        .collect();
    let made = app.leads(&company, &specs).await;
    let mut visitor = Visitor::new(&app);
    visitor.sign_in(&company.key).await;

    // The product filter's view: the form carries the page's filters and the CSRF token.
    let product = &company.products[0];
    let view = format!("/dashboard?product={product}");
    let page = visitor.get(&view).await;
    let fields = download_form(&page);
    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["csrf_token", "product", "from", "to"], "{fields:?}");
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let started = visitor.post("/dashboard/exports", &pairs).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let progress = started.location().to_owned();
    assert!(
        progress.starts_with("/dashboard/exports/exprt_"),
        "{progress}"
    );
    let href = ready_download(&mut visitor, &progress).await;
    // The link needs no session: a browser's download carries none it could leak.
    let file = reqwest::get(format!("{}{href}", app.base)).await.unwrap();
    assert_eq!(file.status(), StatusCode::OK);
    let ids = common::csv_ids(&file.bytes().await.unwrap());
    let to = chrono::Utc::now().date_naive();
    let from = to - chrono::Days::new(29);
    let midnight = |day: chrono::NaiveDate| {
        day.and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis()
    };
    let after = common::rfc3339(midnight(from) - 1);
    let before = common::rfc3339(midnight(to + chrono::Days::new(1)));
    let listed = app
        .list(
            &company.key,
            &format!(
                "company_id={}&first=100&product_ids={product}&created_after={}&created_before={}",
                company.id,
                common::enc(&after),
                common::enc(&before)
            ),
        )
        .await;
    assert_eq!(ids, listed.ids, "the CSV is the list with the same filters");
    assert_eq!(
        ids.len(),
        4,
        "the product's leads in the window, not the old one"
    );

    // A search narrows the export as it narrows the table.
    let target = &made[7];
    let page = visitor
        .get(&format!("/dashboard?query={}", target.user.username))
        .await;
    assert_eq!(page.lead_ids(), vec![target.id.clone()]);
    let fields = download_form(&page);
    assert!(
        fields.contains(&("query".to_owned(), target.user.username.clone())),
        "{fields:?}"
    );
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let started = visitor.post("/dashboard/exports", &pairs).await;
    let href = ready_download(&mut visitor, started.location()).await;
    let text = reqwest::get(format!("{}{href}", app.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(common::csv_ids(text.as_bytes()), vec![target.id.clone()]);

    // The same export through the API: the search is an export filter there too.
    let (status, exports) = app
        .get(
            &format!("/api/v1/exports?account_id={}", company.id),
            Some(&company.key),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(exports["data"].as_array().unwrap().len(), 2);

    // Without the session's CSRF token nothing is exported.
    let forged: Vec<(&str, &str)> = pairs
        .iter()
        .filter(|(n, _)| *n != "csrf_token")
        .copied()
        .collect();
    let refused = visitor.post("/dashboard/exports", &forged).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // A date that cannot be read goes back to the page, which says why; nothing is exported.
    let token = page.csrf_token();
    let bad = visitor
        .post(
            "/dashboard/exports",
            &[("csrf_token", token.as_str()), ("from", "yesterday")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::SEE_OTHER);
    assert!(
        bad.location().starts_with("/dashboard?"),
        "{}",
        bad.location()
    );
    let again = visitor.get(bad.location()).await;
    assert_eq!(again.status, StatusCode::OK);
    let (_, exports) = app
        .get(
            &format!("/api/v1/exports?account_id={}", company.id),
            Some(&company.key),
        )
        .await;
    assert_eq!(exports["data"].as_array().unwrap().len(), 2);

    // Another company's export, and ids that name nothing, are not found; never a 500.
    let (_, _, theirs) = app
        .send(
            reqwest::Method::POST,
            "/api/v1/exports",
            &other.key,
            Some(&json!({"resource": "leads"})),
            &[],
        )
        .await;
    let theirs = theirs["id"].as_str().unwrap();
    for id in [theirs, "exprt_doesnotexist", "%00", &"x".repeat(300)] {
        let answer = visitor.get(&format!("/dashboard/exports/{id}")).await;
        assert!(
            [StatusCode::NOT_FOUND, StatusCode::BAD_REQUEST].contains(&answer.status),
            "{id}: {}",
            answer.status
        );
        assert!(!answer.body.contains("id=\"download\""));
    }
    // Signed out, the progress page asks to sign in.
    let mut stranger = Visitor::new(&app);
    let answer = stranger.get(&progress).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert!(answer.location().starts_with("/dashboard/sign-in"));
}

async fn download_csv_needs_the_export_permission(app: TestApp) {
    let company = app.company(1, None).await;
    app.leads(&company, &[(days_ago(1, 0), Some(0))]).await;
    let key = app
        .key(
            &company,
            Some(&common::permissions_without("lead:basic:export")),
        )
        .await;
    let mut visitor = Visitor::new(&app);
    visitor.sign_in(&key).await;
    let page = visitor.get("/dashboard").await;
    let fields = download_form(&page);
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let refused = visitor.post("/dashboard/exports", &pairs).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(
        refused.body.contains("lead:basic:export"),
        "{}",
        refused.body
    );
}

conformance!(
    download_csv_exports_the_pages_filters_and_offers_the_file_when_ready,
    download_csv_needs_the_export_permission,
    idle_sessions_are_forgotten_in_batches_and_others_kept,
    bad_filters_are_shown_beside_their_fields_and_never_answer_500,
    signing_in_with_a_company_key_sets_a_strict_cookie_and_shows_its_leads,
    the_cookie_is_secure_behind_an_https_public_url,
    a_forged_form_without_the_csrf_token_is_refused,
    the_edit_form_validates_as_patch_does_and_keeps_what_was_typed,
    a_revoked_keys_sessions_are_refused_and_deleted,
    signing_out_ends_the_session,
    a_session_idle_for_twelve_hours_is_over,
    a_session_of_one_company_never_shows_anothers_data,
    the_dashboard_can_be_turned_off,
);
