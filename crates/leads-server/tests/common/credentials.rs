//! Fixtures for the credentials other than company keys: apps and their keys, user tokens,
//! teams, and JWT key pairs and tokens.

use super::{Company, TestApp};
use leads_server::admin;
use leads_server::auth::jwt::VerifyingKey;
use leads_server::auth::NewSecret;
use leads_server::domain::{Permissions, Timestamp, UserId};
use serde_json::Value;
use std::time::Duration;

/// A signing key pair as PEM text, as `openssl` writes them.
#[derive(Debug, Clone)]
pub struct KeyPair {
    pub private_pem: String,
    pub public_pem: String,
    /// `ES256` or `EdDSA`.
    pub alg: &'static str,
}

impl KeyPair {
    /// A fresh P-256 pair, for ES256.
    pub fn es256() -> KeyPair {
        use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let secret = p256::SecretKey::from_slice(&rand::random::<[u8; 32]>()).expect("scalar");
        KeyPair {
            private_pem: secret.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
            public_pem: secret
                .public_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap(),
            alg: "ES256",
        }
    }

    /// A fresh Ed25519 pair, for EdDSA.
    pub fn ed25519() -> KeyPair {
        use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
        use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
        let signing = ed25519_dalek::SigningKey::from_bytes(&rand::random());
        KeyPair {
            private_pem: signing.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
            public_pem: signing
                .verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap(),
            alg: "EdDSA",
        }
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey::from_pem(&self.public_pem).expect("public key")
    }

    /// A token of `claims` signed with this key, with `kid` in the header if given.
    pub fn sign(&self, claims: &Value, kid: Option<&str>) -> String {
        use jsonwebtoken::{Algorithm, EncodingKey, Header};
        let (alg, key) = match self.alg {
            "ES256" => (
                Algorithm::ES256,
                EncodingKey::from_ec_pem(self.private_pem.as_bytes()).unwrap(),
            ),
            _ => (
                Algorithm::EdDSA,
                EncodingKey::from_ed_pem(self.private_pem.as_bytes()).unwrap(),
            ),
        };
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &key).expect("sign")
    }
}

/// Seconds since the epoch now.
pub fn now_seconds() -> i64 {
    Timestamp::now().as_millis() / 1000
}

/// Claims naming `company` with `permissions` (all when `None`), valid for an hour.
pub fn claims(company: &str, permissions: Option<&str>) -> Value {
    let permissions: Vec<&str> = admin::parse_permissions(permissions)
        .unwrap()
        .iter()
        .map(|p| p.name())
        .collect();
    let now = now_seconds();
    serde_json::json!({
        "company_id": company, "permissions": permissions,
        "iat": now, "nbf": now, "exp": now + 3600,
    })
}

/// An app installed on `company` with `installed` permissions, and a key of it holding `key`
/// permissions (all when `None`). Answers (app id, key id, secret).
pub async fn installed_app(
    app: &TestApp,
    company: &Company,
    installed: Option<&str>,
    key: Option<&str>,
) -> (String, String, String) {
    let store = app.stores.credentials.as_ref();
    let made = admin::create_app(store, "Pickaxe CRM").await.expect("app");
    admin::install_app(store, &made.id, &company.id, installed)
        .await
        .expect("install");
    let (key, secret) = admin::create_app_key(store, &made.id, key)
        .await
        .expect("app key");
    (made.id, key.id.into_string(), secret)
}

/// A token for `user` with `scopes` (all when `None`), valid for an hour. Answers (id, secret).
pub async fn user_token(app: &TestApp, user: &str, scopes: Option<&str>) -> (String, String) {
    let (token, secret) = admin::create_user_token(
        app.stores.credentials.as_ref(),
        user,
        scopes,
        Duration::from_secs(3600),
    )
    .await
    .expect("user token");
    (token.id.into_string(), secret)
}

/// A token for `user` that expired a second ago.
pub async fn expired_user_token(app: &TestApp, user: &str) -> String {
    let secret = NewSecret::user_token();
    app.stores
        .credentials
        .create_user_token(
            UserId::parse(user).unwrap(),
            Permissions::all(),
            Timestamp::now().as_millis() - 1000,
            secret.hash,
        )
        .await
        .expect("expired token");
    secret.secret
}

/// Puts `user` on `company`'s team.
pub async fn join_team(app: &TestApp, company: &Company, user: &str) {
    admin::add_to_team(app.stores.credentials.as_ref(), &company.id, user)
        .await
        .expect("team");
}
