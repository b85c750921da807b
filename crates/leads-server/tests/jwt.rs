//! Company-scoped JWTs: what is accepted, and every forgery and mistake that is not.

mod common;

use base64::Engine;
use common::credentials::{claims, now_seconds, KeyPair};
use common::{Company, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

conformance!(
    es256_and_eddsa_tokens_act_for_the_company_they_name,
    a_token_signed_by_another_key_is_refused,
    a_token_with_alg_none_is_refused,
    an_hmac_token_keyed_with_the_public_key_is_refused,
    an_altered_token_is_refused,
    expired_and_not_yet_valid_tokens_are_refused,
    a_token_without_exp_is_refused,
    malformed_tokens_and_bad_claims_are_refused,
    a_company_the_claims_do_not_name_is_forbidden,
    issuer_and_audience_are_checked_when_configured,
    several_keys_are_accepted_during_a_rotation,
    a_jwks_file_kid_picks_the_key,
    without_configured_keys_no_jwt_is_accepted,
);

/// A company with a lead, and a server trusting `keys`.
async fn setup(app: &mut TestApp, keys: &[&KeyPair]) -> Company {
    let verifying: Vec<_> = keys.iter().map(|k| k.verifying_key()).collect();
    app.reconfigure(|config| config.jwt.keys = verifying).await;
    let company = app.company(0, None).await;
    app.leads(&company, &[(1_700_000_000_000, None)]).await;
    company
}

async fn list(app: &TestApp, company: &Company, token: &str) -> (StatusCode, Value) {
    app.get(
        &format!("/api/v1/leads?company_id={}", company.id),
        Some(token),
    )
    .await
}

/// The token is refused with a 401 whose message says `says`.
async fn refused(app: &TestApp, company: &Company, token: &str, says: &str) {
    let (status, body) = list(app, company, token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["type"], "unauthorized", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(says), "{message:?} should say {says:?}");
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with any header and claims and the given signature bytes.
fn raw_token(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(signature)
    )
}

async fn es256_and_eddsa_tokens_act_for_the_company_they_name(mut app: TestApp) {
    let (es, ed) = (KeyPair::es256(), KeyPair::ed25519());
    let company = setup(&mut app, &[&es, &ed]).await;
    for pair in [&es, &ed] {
        let token = pair.sign(&claims(&company.id, None), None);
        let (status, page) = list(&app, &company, &token).await;
        assert_eq!(status, StatusCode::OK, "{}: {page}", pair.alg);
        assert!(!page["data"].as_array().unwrap().is_empty(), "{page}");
        // Writes too, and tokens minted by `leads admin jwt mint` are the same.
        let minted = leads_server::admin::mint_jwt(
            &pair.private_pem,
            &leads_server::admin::MintOptions {
                company: &company.id,
                ..Default::default()
            },
        )
        .unwrap();
        let body = json!({"company_id": company.id, "user_id": app.user().await.id});
        let (status, _, lead) = app
            .send(
                reqwest::Method::POST,
                "/api/v1/leads",
                &minted,
                Some(&body),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{lead}");
    }
}

async fn a_token_signed_by_another_key_is_refused(mut app: TestApp) {
    let trusted = KeyPair::es256();
    let company = setup(&mut app, &[&trusted]).await;
    let stranger = KeyPair::es256();
    let token = stranger.sign(&claims(&company.id, None), None);
    refused(&app, &company, &token, "signature").await;
    // Another algorithm than any trusted key's is refused before any signature is checked.
    let token = KeyPair::ed25519().sign(&claims(&company.id, None), None);
    refused(&app, &company, &token, "algorithm or key").await;
}

async fn a_token_with_alg_none_is_refused(mut app: TestApp) {
    let trusted = KeyPair::es256();
    let company = setup(&mut app, &[&trusted]).await;
    let body = claims(&company.id, None);
    for alg in ["none", "None", "NONE"] {
        let token = raw_token(&json!({"alg": alg, "typ": "JWT"}), &body, b"");
        refused(&app, &company, &token, "malformed").await;
        // With the valid signature of a real token carried over, still refused.
        let real = trusted.sign(&body, None);
        let signature = real.rsplit('.').next().unwrap();
        let forged = format!(
            "{}.{}.{signature}",
            b64(json!({"alg": alg}).to_string().as_bytes()),
            real.split('.').nth(1).unwrap()
        );
        refused(&app, &company, &forged, "malformed").await;
    }
}

async fn an_hmac_token_keyed_with_the_public_key_is_refused(mut app: TestApp) {
    // The classic confusion: sign with HS256 using the (public) verification key as the secret.
    let trusted = KeyPair::es256();
    let company = setup(&mut app, &[&trusted]).await;
    for alg in [
        jsonwebtoken::Algorithm::HS256,
        jsonwebtoken::Algorithm::HS512,
    ] {
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(alg),
            &claims(&company.id, None),
            &jsonwebtoken::EncodingKey::from_secret(trusted.public_pem.as_bytes()),
        )
        .unwrap();
        refused(&app, &company, &token, "algorithm or key").await;
    }
}

async fn an_altered_token_is_refused(mut app: TestApp) {
    let trusted = KeyPair::ed25519();
    let company = setup(&mut app, &[&trusted]).await;
    let other = app.company(0, None).await;
    let token = trusted.sign(&claims(&other.id, Some("lead:basic:read")), None);
    let parts: Vec<&str> = token.split('.').collect();
    // Swap in claims for this company with every permission, keeping the signature.
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(claims(&company.id, None).to_string().as_bytes()),
        parts[2]
    );
    refused(&app, &company, &forged, "signature").await;
    // Flip one bit of the signature.
    let mut signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[2])
        .unwrap();
    signature[10] ^= 1;
    let token = trusted.sign(&claims(&company.id, None), None);
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], parts[1], b64(&signature));
    refused(&app, &company, &forged, "signature").await;
}

async fn expired_and_not_yet_valid_tokens_are_refused(mut app: TestApp) {
    let trusted = KeyPair::es256();
    let company = setup(&mut app, &[&trusted]).await;
    let now = now_seconds();
    let mut expired = claims(&company.id, None);
    expired["exp"] = json!(now - 120);
    refused(&app, &company, &trusted.sign(&expired, None), "expired").await;
    let mut early = claims(&company.id, None);
    early["nbf"] = json!(now + 600);
    refused(&app, &company, &trusted.sign(&early, None), "not valid yet").await;
    // Within the leeway for clock differences, both are fine.
    let mut skewed = claims(&company.id, None);
    skewed["exp"] = json!(now - 5);
    skewed["nbf"] = json!(now + 5);
    let (status, body) = list(&app, &company, &trusted.sign(&skewed, None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn a_token_without_exp_is_refused(mut app: TestApp) {
    let trusted = KeyPair::ed25519();
    let company = setup(&mut app, &[&trusted]).await;
    let mut body = claims(&company.id, None);
    body.as_object_mut().unwrap().remove("exp");
    refused(&app, &company, &trusted.sign(&body, None), "exp").await;
    body["exp"] = json!("tomorrow");
    refused(&app, &company, &trusted.sign(&body, None), "exp").await;
}

async fn malformed_tokens_and_bad_claims_are_refused(mut app: TestApp) {
    let trusted = KeyPair::es256();
    let company = setup(&mut app, &[&trusted]).await;
    for token in ["a.b.c", "..", "eyJhbGciOiJFUzI1NiJ9.e30.", "x.y.z"] {
        refused(&app, &company, token, "JWT").await;
    }
    let mut body = claims(&company.id, None);
    body["permissions"] = json!(["lead:basic:read", "lead:fly"]);
    refused(&app, &company, &trusted.sign(&body, None), "lead:fly").await;
    let mut body = claims(&company.id, None);
    body["company_id"] = json!("acme");
    refused(&app, &company, &trusted.sign(&body, None), "company_id").await;
    let mut body = claims(&company.id, None);
    body.as_object_mut().unwrap().remove("company_id");
    refused(&app, &company, &trusted.sign(&body, None), "company_id").await;
}

async fn a_company_the_claims_do_not_name_is_forbidden(mut app: TestApp) {
    let trusted = KeyPair::es256();
    let company = setup(&mut app, &[&trusted]).await;
    let other = app.company(0, None).await;
    let other_lead = app.leads(&other, &[(1_700_000_000_000, None)]).await;
    let token = trusted.sign(&claims(&company.id, None), None);
    let (status, body) = list(&app, &other, &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains(&other.id));
    let (status, _) = app
        .get(&format!("/api/v1/leads/{}", other_lead[0].id), Some(&token))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Missing permissions in the claims are 403 naming them.
    let token = trusted.sign(&claims(&company.id, Some("lead:basic:read")), None);
    let (status, body) = list(&app, &company, &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("member:basic:read"));
    // A token naming a company the server does not know lists nothing and records nothing.
    let unknown = "biz_00000000000000";
    let token = trusted.sign(&claims(unknown, None), None);
    let (status, page) = app
        .get(&format!("/api/v1/leads?company_id={unknown}"), Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["data"], json!([]));
    let body = json!({"company_id": unknown, "user_id": app.user().await.id});
    let (status, _, body) = app
        .send(
            reqwest::Method::POST,
            "/api/v1/leads",
            &token,
            Some(&body),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "company_id");
}

async fn issuer_and_audience_are_checked_when_configured(mut app: TestApp) {
    let trusted = KeyPair::ed25519();
    let company = setup(&mut app, &[&trusted]).await;
    let verifying = trusted.verifying_key();
    app.reconfigure(|config| {
        config.jwt.keys = vec![verifying];
        config.jwt.issuer = Some("https://auth.example".into());
        config.jwt.audience = Some("leads".into());
    })
    .await;
    let with = |iss: Option<&str>, aud: Option<Value>| {
        let mut body = claims(&company.id, None);
        if let Some(iss) = iss {
            body["iss"] = json!(iss);
        }
        if let Some(aud) = aud {
            body["aud"] = aud;
        }
        trusted.sign(&body, None)
    };
    let good = with(Some("https://auth.example"), Some(json!("leads")));
    assert_eq!(list(&app, &company, &good).await.0, StatusCode::OK);
    let listed = with(
        Some("https://auth.example"),
        Some(json!(["other", "leads"])),
    );
    assert_eq!(list(&app, &company, &listed).await.0, StatusCode::OK);
    refused(&app, &company, &with(None, Some(json!("leads"))), "issuer").await;
    let wrong_issuer = with(Some("https://evil.example"), Some(json!("leads")));
    refused(&app, &company, &wrong_issuer, "issuer").await;
    let no_audience = with(Some("https://auth.example"), None);
    refused(&app, &company, &no_audience, "audience").await;
    let wrong_audience = with(Some("https://auth.example"), Some(json!("billing")));
    refused(&app, &company, &wrong_audience, "audience").await;
}

async fn several_keys_are_accepted_during_a_rotation(mut app: TestApp) {
    let (old, new) = (KeyPair::es256(), KeyPair::es256());
    let company = setup(&mut app, &[&old, &new]).await;
    for pair in [&old, &new] {
        let token = pair.sign(&claims(&company.id, None), None);
        assert_eq!(list(&app, &company, &token).await.0, StatusCode::OK);
    }
    // Once the old key is dropped, its tokens are refused.
    let verifying = new.verifying_key();
    app.reconfigure(|config| config.jwt.keys = vec![verifying])
        .await;
    let token = old.sign(&claims(&company.id, None), None);
    refused(&app, &company, &token, "signature").await;
}

async fn a_jwks_file_kid_picks_the_key(mut app: TestApp) {
    let (es, ed) = (KeyPair::es256(), KeyPair::ed25519());
    let jwks = json!({"keys": [jwk(&es, "es-1"), jwk(&ed, "ed-1")]}).to_string();
    let keys = leads_server::auth::jwt::VerifyingKey::from_jwks(&jwks).unwrap();
    assert_eq!(keys.len(), 2);
    app.reconfigure(|config| config.jwt.keys = keys).await;
    let company = app.company(0, None).await;
    for (pair, kid) in [(&es, "es-1"), (&ed, "ed-1")] {
        let token = pair.sign(&claims(&company.id, None), Some(kid));
        assert_eq!(
            list(&app, &company, &token).await.0,
            StatusCode::OK,
            "{kid}"
        );
        let token = pair.sign(&claims(&company.id, None), None);
        assert_eq!(
            list(&app, &company, &token).await.0,
            StatusCode::OK,
            "{kid} by trial"
        );
    }
    let token = es.sign(&claims(&company.id, None), Some("es-2"));
    refused(&app, &company, &token, "algorithm or key").await;
    // RSA and symmetric keys are not accepted in the file.
    let rsa = json!({"keys": [{"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"}]});
    assert!(leads_server::auth::jwt::VerifyingKey::from_jwks(&rsa.to_string()).is_err());
    let oct = json!({"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]});
    assert!(leads_server::auth::jwt::VerifyingKey::from_jwks(&oct.to_string()).is_err());
}

/// The public half of `pair` as a JWK.
fn jwk(pair: &KeyPair, kid: &str) -> Value {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::pkcs8::DecodePublicKey;
    if pair.alg == "ES256" {
        let key = p256::PublicKey::from_public_key_pem(&pair.public_pem).unwrap();
        let point = key.to_encoded_point(false);
        json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
               "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())})
    } else {
        let key = ed25519_dalek::VerifyingKey::from_public_key_pem(&pair.public_pem).unwrap();
        json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA", "x": b64(key.as_bytes())})
    }
}

async fn without_configured_keys_no_jwt_is_accepted(app: TestApp) {
    let company = app.company(0, None).await;
    let token = KeyPair::es256().sign(&claims(&company.id, None), None);
    refused(&app, &company, &token, "accepts no JWTs").await;
}
