//! Tenant isolation, as a property: in a random world of companies, products, users, apps,
//! installations, teams and credentials of all four kinds (some revoked or expired), random
//! requests on every route with every credential never show a lead, an email, a product or a
//! cursor the credential may not see, and each answers exactly the status (and, for lists,
//! exactly the leads) a model of the contract predicts.
//!
//! The seed is printed first (shown when the test fails); `LEADS_ISOLATION_SEED=n` replays one,
//! `LEADS_ISOLATION_REQUESTS=n` sets how many requests a run makes.

mod common;

use common::credentials::{self, KeyPair};
use common::TestApp;
use leads_server::admin;
use leads_server::domain::{LeadId, Permission, Permissions};
use leads_server::storage::{SeedBatch, SeedLead};
use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};

conformance!(no_credential_ever_sees_what_it_may_not);

const READ: [Permission; 3] = [
    Permission::LeadBasicRead,
    Permission::MemberBasicRead,
    Permission::AccessPassBasicRead,
];
const WRITE: [Permission; 4] = [
    Permission::LeadManage,
    Permission::LeadBasicRead,
    Permission::MemberBasicRead,
    Permission::AccessPassBasicRead,
];
/// A company id no company has.
const NO_COMPANY: &str = "biz_00000000000000";

#[derive(Debug, Clone)]
struct ModelLead {
    id: String,
    company: String,
    user: String,
    product: Option<String>,
    created_at: i64,
}

#[derive(Debug, Clone)]
enum Holder {
    Company(String),
    App(String),
    Jwt(String),
    User(String),
    /// Revoked, expired, forged or never issued: every request is a 401.
    Dead,
}

#[derive(Debug, Clone)]
struct Cred {
    secret: String,
    holder: Holder,
    permissions: Permissions,
}

/// What a credential may do for a company's leads (list, retrieve, update): its permissions
/// there, or `None` when it may not act for the company at all.
type Access = Option<Permissions>;

#[derive(Default)]
struct Model {
    companies: Vec<String>,
    products: HashMap<String, Vec<String>>,
    users: Vec<String>,
    emails: HashMap<String, String>,
    leads: Vec<ModelLead>,
    /// (app, company) -> installed permissions.
    installs: HashMap<(String, String), Permissions>,
    /// (company, user) pairs on a team.
    team: BTreeSet<(String, String)>,
    creds: Vec<Cred>,
    /// Cursors the server gave out: the company and lead each points at.
    cursors: Vec<(String, String, String)>,
}

impl Model {
    fn access(&self, cred: &Cred, company: &str) -> Access {
        match &cred.holder {
            Holder::Company(own) | Holder::Jwt(own) => (own == company).then_some(cred.permissions),
            Holder::App(app) => self
                .installs
                .get(&(app.clone(), company.to_owned()))
                .map(|installed| cred.permissions.intersection(*installed)),
            // Off the team a user token is like any credential of another company: the leads
            // about its own user are the company's records, not the user's.
            Holder::User(user) => self
                .team
                .contains(&(company.to_owned(), user.clone()))
                .then_some(cred.permissions),
            Holder::Dead => None,
        }
    }

    /// What a credential may do when recording a lead for `company`: a user token records its
    /// own user anywhere, on the team or not.
    fn records(&self, cred: &Cred, company: &str) -> Access {
        match &cred.holder {
            Holder::User(_) => Some(cred.permissions),
            _ => self.access(cred, company),
        }
    }

    fn sees(&self, cred: &Cred, lead: &ModelLead) -> Option<Permissions> {
        self.access(cred, &lead.company)
    }

    fn lead(&self, id: &str) -> Option<&ModelLead> {
        self.leads.iter().find(|l| l.id == id)
    }
}

/// Every permission half the time, so that successes are common; otherwise each with 80%.
fn random_permissions(rng: &mut SmallRng) -> Permissions {
    if rng.random_bool(0.5) {
        return Permissions::all();
    }
    Permission::ALL
        .into_iter()
        .filter(|_| rng.random_bool(0.8))
        .collect()
}

/// As admin commands take them; the empty set is an empty list (no list at all means all).
fn list_of(permissions: Permissions) -> String {
    permissions.to_string()
}

/// Builds a random world in the app's store and the model of it.
async fn world(app: &mut TestApp, rng: &mut SmallRng) -> Model {
    let stores = app.stores.clone();
    let (directory, credentials) = (stores.directory.as_ref(), stores.credentials.as_ref());
    let mut model = Model::default();
    for c in 0..rng.random_range(2..=4) {
        let company = admin::create_company(directory, &format!("Company {c}"))
            .await
            .unwrap();
        let mut products = Vec::new();
        for p in 0..rng.random_range(0..=2) {
            let product = admin::create_product(directory, &company.id, &format!("P{p}"))
                .await
                .unwrap();
            products.push(product.id);
        }
        model.products.insert(company.id.clone(), products);
        model.companies.push(company.id);
    }
    for u in 0..5 {
        let email = format!("user{u}-{}@example.com", rng.random::<u32>());
        let user = admin::create_user(
            directory,
            &format!("u{u}x{}", rng.random::<u32>()),
            Some(&email),
            None,
        )
        .await
        .unwrap();
        model.emails.insert(user.id.clone(), email);
        model.users.push(user.id);
    }
    // Leads, several per user and company, so that leads about a token's own user exist in
    // companies whose team it is not on.
    let mut batch = SeedBatch::default();
    for company in &model.companies {
        for _ in 0..rng.random_range(0..=8) {
            let products = &model.products[company];
            let product = if rng.random_bool(0.6) {
                products.choose(rng).cloned()
            } else {
                None
            };
            let lead = ModelLead {
                id: LeadId::generate().into_string(),
                company: company.clone(),
                user: model.users.choose(rng).unwrap().clone(),
                product,
                // Few distinct instants, so ties are common.
                created_at: 1_700_000_000_000 + rng.random_range(0..6) * 1000,
            };
            batch.leads.push(SeedLead {
                id: LeadId::parse(&lead.id).unwrap(),
                company_id: lead.company.clone(),
                user_id: lead.user.clone(),
                product_id: lead.product.clone(),
                referrer: None,
                metadata: None,
                created_at: lead.created_at,
            });
            model.leads.push(lead);
        }
    }
    directory.insert_seed(batch).await.unwrap();

    // Teams.
    for company in &model.companies {
        for user in &model.users {
            if rng.random_bool(0.2) {
                admin::add_to_team(credentials, company, user)
                    .await
                    .unwrap();
                model.team.insert((company.clone(), user.clone()));
            }
        }
    }

    // Company keys: some revoked.
    for company in model.companies.clone() {
        for _ in 0..2 {
            let permissions = random_permissions(rng);
            let (key, secret) =
                admin::create_key(credentials, &company, Some(&list_of(permissions)))
                    .await
                    .unwrap();
            let holder = if rng.random_bool(0.15) {
                admin::revoke_key(credentials, key.id.as_str())
                    .await
                    .unwrap();
                Holder::Dead
            } else {
                Holder::Company(company.clone())
            };
            model.creds.push(Cred {
                secret,
                holder,
                permissions: key.permissions,
            });
        }
    }

    // Apps: installed on some companies, each key some permissions; some keys revoked.
    for a in 0..2 {
        let made = admin::create_app(credentials, &format!("App {a}"))
            .await
            .unwrap();
        for company in &model.companies {
            if rng.random_bool(0.5) {
                let permissions = random_permissions(rng);
                admin::install_app(credentials, &made.id, company, Some(&list_of(permissions)))
                    .await
                    .unwrap();
                model
                    .installs
                    .insert((made.id.clone(), company.clone()), permissions);
            }
        }
        for _ in 0..2 {
            let permissions = random_permissions(rng);
            let (key, secret) =
                admin::create_app_key(credentials, &made.id, Some(&list_of(permissions)))
                    .await
                    .unwrap();
            let holder = if rng.random_bool(0.15) {
                admin::revoke_key(credentials, key.id.as_str())
                    .await
                    .unwrap();
                Holder::Dead
            } else {
                Holder::App(made.id.clone())
            };
            model.creds.push(Cred {
                secret,
                holder,
                permissions: key.permissions,
            });
        }
    }

    // JWTs: one per company, one for a company that does not exist, one expired, one forged.
    let pair = if rng.random_bool(0.5) {
        KeyPair::es256()
    } else {
        KeyPair::ed25519()
    };
    let verifying = pair.verifying_key();
    app.reconfigure(|config| config.jwt.keys = vec![verifying])
        .await;
    let mut jwt_companies = model.companies.clone();
    jwt_companies.push(NO_COMPANY.to_owned());
    for company in jwt_companies {
        let permissions = random_permissions(rng);
        let secret = pair.sign(
            &credentials::claims(&company, Some(&list_of(permissions))),
            None,
        );
        model.creds.push(Cred {
            secret,
            holder: Holder::Jwt(company),
            permissions,
        });
    }
    let mut expired = credentials::claims(&model.companies[0], None);
    expired["exp"] = json!(credentials::now_seconds() - 3600);
    let stranger = KeyPair::es256();
    for secret in [
        pair.sign(&expired, None),
        stranger.sign(&credentials::claims(&model.companies[0], None), None),
    ] {
        model.creds.push(Cred {
            secret,
            holder: Holder::Dead,
            permissions: Permissions::all(),
        });
    }

    // User tokens: one per user, some revoked; one expired.
    for user in model.users.clone() {
        let permissions = random_permissions(rng);
        let (id, secret) = credentials::user_token(app, &user, Some(&list_of(permissions))).await;
        let holder = if rng.random_bool(0.15) {
            admin::revoke_user_token(credentials, &id).await.unwrap();
            Holder::Dead
        } else {
            Holder::User(user.clone())
        };
        model.creds.push(Cred {
            secret,
            holder,
            permissions,
        });
    }
    let expired = credentials::expired_user_token(app, &model.users[0]).await;
    model.creds.push(Cred {
        secret: expired,
        holder: Holder::Dead,
        permissions: Permissions::all(),
    });
    for secret in [
        "leads_ck_forged",
        "leads_ak_forged",
        "leads_ut_forged",
        "opaque",
    ] {
        model.creds.push(Cred {
            secret: secret.into(),
            holder: Holder::Dead,
            permissions: Permissions::all(),
        });
    }
    model
}

fn holds(permissions: Permissions, needed: &[Permission]) -> bool {
    permissions.missing(needed).is_empty()
}

/// Every string anywhere in a JSON value.
fn strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// Whatever the answer, nothing in it is something `cred` may not see: every lead id is of a
/// lead it sees, every email is of such a lead's user and only with `member:email:read`, every
/// product id is of such a lead.
fn assert_shows_nothing_foreign(model: &Model, cred: &Cred, body: &Value, context: &str) {
    let mut all = Vec::new();
    strings(body, &mut all);
    let shown: Vec<&ModelLead> = all.iter().filter_map(|s| model.lead(s)).collect();
    for lead in &shown {
        assert!(
            model.sees(cred, lead).is_some(),
            "{context}: shows lead {} it may not see: {body}",
            lead.id
        );
    }
    for text in all {
        if text.starts_with("prod_") {
            assert!(
                shown.iter().any(|l| l.product.as_deref() == Some(text)),
                "{context}: shows product {text} of no lead it sees: {body}"
            );
        }
        if text.contains('@') {
            let lead = shown
                .iter()
                .find(|l| model.emails[&l.user] == text)
                .unwrap_or_else(|| panic!("{context}: shows email {text}: {body}"));
            let permissions = model.sees(cred, lead).unwrap();
            assert!(
                permissions.contains(Permission::MemberEmailRead),
                "{context}: shows email {text} without member:email:read: {body}"
            );
        }
    }
}

fn assert_lead_view(model: &Model, cred: &Cred, view: &Value, context: &str) {
    let id = view["id"].as_str().expect("id");
    let lead = model.lead(id).expect("a lead the model knows");
    let permissions = model
        .sees(cred, lead)
        .unwrap_or_else(|| panic!("{context}: answered {id}, which it may not see"));
    assert_lead_shown_with(model, permissions, view, context);
}

/// `view` shows its lead as a credential with `permissions` there sees it.
fn assert_lead_shown_with(model: &Model, permissions: Permissions, view: &Value, context: &str) {
    let id = view["id"].as_str().expect("id");
    let lead = model.lead(id).expect("a lead the model knows");
    let email = if permissions.contains(Permission::MemberEmailRead) {
        json!(model.emails[&lead.user])
    } else {
        Value::Null
    };
    assert_eq!(view["user"]["email"], email, "{context}: {view}");
    assert_eq!(view["user"]["id"], lead.user, "{context}: {view}");
    assert_eq!(
        view["product"]["id"].as_str(),
        lead.product.as_deref(),
        "{context}: {view}"
    );
}

/// The status the contract predicts for a list of `company` by `cred`, given whether the cursor
/// (if any) is another company's.
fn predict_list(model: &Model, cred: &Cred, company: &str, foreign_cursor: bool) -> StatusCode {
    if matches!(cred.holder, Holder::Dead) {
        return StatusCode::UNAUTHORIZED;
    }
    if foreign_cursor {
        return StatusCode::BAD_REQUEST;
    }
    match model.access(cred, company) {
        Some(permissions) if holds(cred.permissions, &READ) && holds(permissions, &READ) => {
            StatusCode::OK
        }
        _ => StatusCode::FORBIDDEN,
    }
}

/// The status for reading (or, with `needed` = WRITE, updating) the lead `id`.
fn predict_lead(model: &Model, cred: &Cred, id: &str, needed: &[Permission]) -> StatusCode {
    if matches!(cred.holder, Holder::Dead) {
        return StatusCode::UNAUTHORIZED;
    }
    if !holds(cred.permissions, needed) {
        return StatusCode::FORBIDDEN;
    }
    match model.lead(id).and_then(|lead| model.sees(cred, lead)) {
        None => StatusCode::NOT_FOUND,
        Some(permissions) if !holds(permissions, needed) => StatusCode::FORBIDDEN,
        Some(_) => StatusCode::OK,
    }
}

fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid_request_error",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        _ => "?",
    }
}

async fn no_credential_ever_sees_what_it_may_not(mut app: TestApp) {
    let seed: u64 = std::env::var("LEADS_ISOLATION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let requests: usize = std::env::var("LEADS_ISOLATION_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    println!("tenant isolation: LEADS_ISOLATION_SEED={seed} ({requests} requests)");
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut model = world(&mut app, &mut rng).await;
    let mut counts: HashMap<(&str, u16), usize> = HashMap::new();

    for i in 0..requests {
        // Mostly live credentials: a dead one only ever answers 401.
        let (dead, live): (Vec<&Cred>, Vec<&Cred>) = model
            .creds
            .iter()
            .partition(|c| matches!(c.holder, Holder::Dead));
        let pool = if rng.random_bool(0.85) { live } else { dead };
        let cred = (*pool.choose(&mut rng).unwrap()).clone();
        let operation = rng.random_range(0..4);
        let context = format!("seed {seed}, request {i}, {:?}", cred.holder);
        match operation {
            // List, sometimes filtered, sometimes continuing from a cursor of any company.
            0 => {
                let company = if rng.random_bool(0.1) {
                    NO_COMPANY.to_owned()
                } else {
                    model.companies.choose(&mut rng).unwrap().clone()
                };
                let first = rng.random_range(1..=4);
                let mut query = format!("company_id={company}&first={first}");
                let products: Vec<String> = model.products.values().flatten().cloned().collect();
                let filter = if rng.random_bool(0.25) && !products.is_empty() {
                    let product = products.choose(&mut rng).unwrap().clone();
                    query.push_str(&format!("&product_ids[]={product}"));
                    Some(product)
                } else {
                    None
                };
                // Mostly a cursor of the listed company, sometimes any other.
                let same: Vec<_> = model.cursors.iter().filter(|c| c.1 == company).collect();
                let pick = if rng.random_bool(0.75) && !same.is_empty() {
                    same.choose(&mut rng).map(|c| (*c).clone())
                } else {
                    model.cursors.choose(&mut rng).cloned()
                };
                let cursor = pick.filter(|_| rng.random_bool(0.4));
                if let Some(cursor) = &cursor {
                    query.push_str(&format!("&after={}", common::enc(&cursor.0)));
                }
                let foreign = cursor.as_ref().is_some_and(|c| c.1 != company);
                let expected = predict_list(&model, &cred, &company, foreign);
                let (status, body) = app
                    .get(&format!("/api/v1/leads?{query}"), Some(&cred.secret))
                    .await;
                let context = format!("{context}: GET /leads?{query}");
                assert_eq!(status, expected, "{context}: {body}");
                *counts.entry(("list", status.as_u16())).or_default() += 1;
                assert_shows_nothing_foreign(&model, &cred, &body, &context);
                if status != StatusCode::OK {
                    assert_eq!(
                        body["error"]["type"],
                        error_type(status),
                        "{context}: {body}"
                    );
                    continue;
                }
                // Exactly the leads the model says, in order.
                let mut visible: Vec<&ModelLead> = model
                    .leads
                    .iter()
                    .filter(|l| l.company == company)
                    .filter(|l| filter.is_none() || l.product == filter)
                    .collect();
                visible.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
                if let Some((_, _, at)) = &cursor {
                    let at = model.lead(at).unwrap();
                    visible.retain(|l| (l.created_at, &l.id) < (at.created_at, &at.id));
                }
                let want: Vec<&str> = visible.iter().take(first).map(|l| l.id.as_str()).collect();
                let got: Vec<&str> = body["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l["id"].as_str().unwrap())
                    .collect();
                assert_eq!(got, want, "{context}: {body}");
                assert_eq!(
                    body["page_info"]["has_next_page"],
                    visible.len() > first,
                    "{context}: {body}"
                );
                for view in body["data"].as_array().unwrap() {
                    assert_lead_view(&model, &cred, view, &context);
                }
                let info = &body["page_info"];
                for (cursor, lead) in [
                    (&info["start_cursor"], got.first()),
                    (&info["end_cursor"], got.last()),
                ] {
                    if let (Some(cursor), Some(lead)) = (cursor.as_str(), lead) {
                        model.cursors.push((
                            cursor.to_owned(),
                            company.clone(),
                            (*lead).to_owned(),
                        ));
                    }
                }
            }
            // Retrieve or update any lead, or one that does not exist.
            1 | 2 => {
                let id = if rng.random_bool(0.1) || model.leads.is_empty() {
                    LeadId::generate().into_string()
                } else {
                    model.leads.choose(&mut rng).unwrap().id.clone()
                };
                let (method, needed, body) = if operation == 1 {
                    (Method::GET, &READ[..], None)
                } else {
                    (
                        Method::PATCH,
                        &WRITE[..],
                        Some(json!({"metadata": {"request": i}})),
                    )
                };
                let expected = predict_lead(&model, &cred, &id, needed);
                let (status, _, answer) = app
                    .send(
                        method.clone(),
                        &format!("/api/v1/leads/{id}"),
                        &cred.secret,
                        body.as_ref(),
                        &[],
                    )
                    .await;
                let context = format!("{context}: {method} /leads/{id}");
                assert_eq!(status, expected, "{context}: {answer}");
                let name = if operation == 1 { "retrieve" } else { "update" };
                *counts.entry((name, status.as_u16())).or_default() += 1;
                assert_shows_nothing_foreign(&model, &cred, &answer, &context);
                if status == StatusCode::OK {
                    assert_eq!(answer["id"], id.as_str(), "{context}");
                    assert_lead_view(&model, &cred, &answer, &context);
                } else {
                    assert_eq!(
                        answer["error"]["type"],
                        error_type(status),
                        "{context}: {answer}"
                    );
                }
            }
            // Create, for any company, naming any user (user tokens mostly name none).
            _ => {
                let company = if rng.random_bool(0.1) {
                    NO_COMPANY.to_owned()
                } else {
                    model.companies.choose(&mut rng).unwrap().clone()
                };
                let own_user = match &cred.holder {
                    Holder::User(user) => Some(user.clone()),
                    _ => None,
                };
                let named = if own_user.is_some() && rng.random_bool(0.7) {
                    None
                } else {
                    Some(model.users.choose(&mut rng).unwrap().clone())
                };
                let product = model
                    .products
                    .get(&company)
                    .and_then(|p| p.choose(&mut rng).cloned())
                    .filter(|_| rng.random_bool(0.5));
                let mut body = json!({"company_id": company});
                if let Some(user) = &named {
                    body["user_id"] = json!(user);
                }
                if let Some(product) = &product {
                    body["product_id"] = json!(product);
                }
                let recorded_user = named.clone().or(own_user.clone());
                let expected = if matches!(cred.holder, Holder::Dead) {
                    StatusCode::UNAUTHORIZED
                } else {
                    match model.records(&cred, &company) {
                        Some(permissions)
                            if holds(cred.permissions, &WRITE) && holds(permissions, &WRITE) =>
                        {
                            if own_user.is_some() && recorded_user != own_user {
                                StatusCode::FORBIDDEN
                            } else if company == NO_COMPANY {
                                StatusCode::BAD_REQUEST
                            } else {
                                StatusCode::OK
                            }
                        }
                        _ => StatusCode::FORBIDDEN,
                    }
                };
                let (status, _, answer) = app
                    .send(
                        Method::POST,
                        "/api/v1/leads",
                        &cred.secret,
                        Some(&body),
                        &[],
                    )
                    .await;
                let context = format!("{context}: POST /leads {body}");
                assert_eq!(status, expected, "{context}: {answer}");
                *counts.entry(("create", status.as_u16())).or_default() += 1;
                if status == StatusCode::OK {
                    let created_at =
                        leads_types::Timestamp::parse(answer["created_at"].as_str().unwrap())
                            .unwrap()
                            .as_millis();
                    model.leads.push(ModelLead {
                        id: answer["id"].as_str().unwrap().to_owned(),
                        company: company.clone(),
                        user: recorded_user.unwrap(),
                        product,
                        created_at,
                    });
                    // The answer is the lead just recorded, as the recorder may see it, even a
                    // user token off the team, which cannot read it back afterwards.
                    let permissions = model.records(&cred, &company).unwrap();
                    assert_lead_shown_with(&model, permissions, &answer, &context);
                } else {
                    assert_eq!(
                        answer["error"]["type"],
                        error_type(status),
                        "{context}: {answer}"
                    );
                    assert_shows_nothing_foreign(&model, &cred, &answer, &context);
                }
            }
        }
    }
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort();
    println!("answers by operation and status: {counts:?}");
    // The run must have exercised each route's success and its refusals.
    for (operation, status) in [
        ("list", 200),
        ("list", 401),
        ("list", 403),
        ("retrieve", 200),
        ("retrieve", 404),
        ("update", 200),
        ("create", 200),
        ("create", 403),
    ] {
        if requests >= 400 {
            assert!(
                counts
                    .iter()
                    .any(|((o, s), _)| *o == operation && *s == status),
                "seed {seed}: no {operation} answered {status}: {counts:?}"
            );
        }
    }
}
