//! What operators rely on: the OpenAPI document, health, metrics, request ids and limits.

mod common;

use common::TestApp;
use reqwest::StatusCode;
use std::collections::BTreeSet;

conformance!(
    the_openapi_document_describes_exactly_the_routes_that_exist,
    health_and_readiness_answer,
    metrics_count_requests_by_route_method_and_status,
    every_response_carries_a_request_id,
    oversized_headers_are_refused_as_json,
    the_openapi_document_refuses_no_id_the_server_accepts,
);

/// The `/api/v1` operations of the contract, as `METHOD /path`.
const CONTRACT_ROUTES: &[&str] = &[
    "GET /api/v1/leads",
    "POST /api/v1/leads",
    "GET /api/v1/leads/{id}",
    "PATCH /api/v1/leads/{id}",
    "GET /api/v1/stats/time_series",
    "GET /api/v1/stats/time_series/{metric}",
    "GET /api/v1/webhooks",
    "POST /api/v1/webhooks",
    "GET /api/v1/webhooks/{id}",
    "PATCH /api/v1/webhooks/{id}",
    "DELETE /api/v1/webhooks/{id}",
    "GET /api/v1/webhooks/{id}/deliveries",
    "POST /api/v1/webhooks/{id}/deliveries/{delivery_id}/replay",
    "POST /api/v1/webhooks/{id}/replay",
    "POST /api/v1/webhooks/{id}/test",
    "GET /api/v1/exports",
    "POST /api/v1/exports",
    "GET /api/v1/exports/{id}",
    "GET /api/v1/exports/{id}/download",
];

async fn the_openapi_document_describes_exactly_the_routes_that_exist(app: TestApp) {
    let (status, doc) = app.get("/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    let expected: BTreeSet<String> = CONTRACT_ROUTES.iter().map(|r| r.to_string()).collect();
    assert_eq!(documented, expected);
    // Each documented operation is routed: it never gets the router's "no such route".
    let company = app.company(0, None).await;
    for route in &documented {
        let (method, path) = route.split_once(' ').unwrap();
        let path = path.replace("{id}", "lead_xxxxxxxxxxxxx");
        let response = app
            .http
            .request(method.parse().unwrap(), format!("{}{path}", app.base))
            .bearer_auth(&company.key)
            .send()
            .await
            .unwrap();
        let (status, body) = common::read(response).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{route}");
        assert_ne!(body["error"]["message"], "No such route.", "{route}");
    }
    let list = &doc["paths"]["/api/v1/leads"]["get"]["parameters"];
    let names: BTreeSet<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in [
        "company_id",
        "account_id",
        "first",
        "last",
        "after",
        "before",
        "created_after",
        "created_before",
        "product_ids",
        "product_ids[]",
    ] {
        assert!(names.contains(name), "{name} is documented");
    }
    // The parameters this server adds to Whop's operations are marked, and nothing else is.
    let mut marked = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                if parameter[leads_server::http::EXTENSION_FIELD] == true {
                    marked.insert(format!(
                        "{method} {path} {}",
                        parameter["name"].as_str().unwrap()
                    ));
                }
            }
        }
    }
    let expected: BTreeSet<String> = [
        "get /api/v1/leads query",
        "get /api/v1/leads email",
        "get /api/v1/exports company_id",
        "get /api/v1/exports first",
        "get /api/v1/exports after",
        "get /api/v1/stats/time_series/{metric} referrer",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(marked, expected);
}

async fn health_and_readiness_answer(app: TestApp) {
    let (status, body) = app.get("/healthz", None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );
}

async fn metrics_count_requests_by_route_method_and_status(app: TestApp) {
    let company = app.company(0, None).await;
    app.list(&company.key, &format!("company_id={}", company.id))
        .await;
    app.get("/api/v1/leads?company_id=%01", Some(&company.key))
        .await;
    let text = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        r#"leads_http_requests_total{route="/api/v1/leads",method="GET",status="200"} 1"#,
        r#"leads_http_requests_total{route="/api/v1/leads",method="GET",status="400"} 1"#,
        "leads_http_request_duration_seconds_bucket",
        "leads_http_requests_in_flight",
        "leads_db_pool_connections_in_use",
    ] {
        assert!(text.contains(needle), "/metrics shows {needle}:\n{text}");
    }
}

async fn every_response_carries_a_request_id(app: TestApp) {
    let response = app
        .http
        .get(format!("{}/healthz", app.base))
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-42");
    let response = app
        .http
        .get(format!("{}/nope", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(id.starts_with("req_") && id.len() > 10, "{id}");
}

async fn oversized_headers_are_refused_as_json(app: TestApp) {
    let response = app
        .http
        .get(format!("{}/healthz", app.base))
        .header("x-big", "x".repeat(40 * 1024))
        .send()
        .await
        .unwrap();
    let (status, body) = common::read(response).await;
    assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(body["error"]["type"], "invalid_request_error");
}

/// Every `pattern` anywhere in `value`, with where it is.
fn patterns(value: &serde_json::Value, at: &str, found: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                if key == "pattern" {
                    found.push(format!("{at}: {inner}"));
                }
                patterns(inner, &format!("{at}/{key}"), found);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                patterns(inner, &format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

/// Ids are any text of 1 to 255 characters, or an integer in a body, so the document puts no
/// `pattern` on them, and says so.
async fn the_openapi_document_refuses_no_id_the_server_accepts(app: TestApp) {
    let (status, doc) = app.get("/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let mut found = Vec::new();
    patterns(&doc, "", &mut found);
    assert!(found.is_empty(), "patterns: {found:?}");
    let list = doc["paths"]["/api/v1/leads"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let company = list.iter().find(|p| p["name"] == "company_id").unwrap();
    assert_eq!(company["schema"]["minLength"], 1, "{company}");
    assert_eq!(company["schema"]["maxLength"], 255, "{company}");
    let create = &doc["components"]["schemas"]["CreateLead"]["properties"];
    for field in ["company_id", "account_id", "user_id", "product_id"] {
        let kinds: BTreeSet<&str> = create[field]["oneOf"]
            .as_array()
            .unwrap_or_else(|| panic!("{field}: {}", create[field]))
            .iter()
            .filter_map(|s| s["type"].as_str())
            .collect();
        assert_eq!(
            kinds,
            BTreeSet::from(["string", "integer", "null"]),
            "{field}"
        );
    }
}
