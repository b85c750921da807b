//! Company-scoped JWTs: verifying them with the public keys the server is given, and minting
//! them with a private key, for development and tests.
//!
//! Only asymmetric signatures are accepted: ES256 (ECDSA on P-256) and EdDSA (Ed25519). The
//! token's `alg` must be the algorithm of a configured key, so `alg: none` and an HMAC token
//! "signed" with a public key are refused before any signature is checked. Claims:
//!
//! ```json
//! {"company_id": "biz_...", "permissions": ["lead:basic:read", ...],
//!  "exp": 1700000000, "nbf": 1699990000, "iat": 1699990000, "iss": "...", "aud": "..."}
//! ```
//!
//! `exp` is required; `nbf` is checked when present; `iss` and `aud` are required and checked
//! when the server is configured with an issuer or audience.

use crate::domain::{CompanyId, Permission, Permissions};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Seconds of clock difference between the token's issuer and this server forgiven on `exp`
/// and `nbf`.
pub const LEEWAY_SECONDS: u64 = 30;

/// A public key tokens may be signed with.
#[derive(Clone)]
pub struct VerifyingKey {
    /// Tokens naming a `kid` are checked only against keys with that id (or none).
    pub kid: Option<String>,
    pub algorithm: Algorithm,
    key: DecodingKey,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Why a key file could not be used; the text says what to give instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

fn key_error<T>(message: impl Into<String>) -> Result<T, KeyError> {
    Err(KeyError(message.into()))
}

impl VerifyingKey {
    /// A PEM public key (`-----BEGIN PUBLIC KEY-----`), P-256 or Ed25519, as
    /// `openssl pkey -in private.pem -pubout` writes it.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        use ed25519_dalek::pkcs8::DecodePublicKey as _;
        use p256::elliptic_curve::sec1::ToEncodedPoint as _;
        if pem.contains("PRIVATE KEY-----") {
            return key_error(
                "this is a private key; give the server only the public key \
                 (openssl pkey -in private.pem -pubout -out public.pem)",
            );
        }
        if let Ok(key) = p256::PublicKey::from_public_key_pem(pem) {
            return Ok(Self {
                kid: None,
                algorithm: Algorithm::ES256,
                key: DecodingKey::from_ec_der(key.to_encoded_point(false).as_bytes()),
            });
        }
        if let Ok(key) = ed25519_dalek::VerifyingKey::from_public_key_pem(pem) {
            return Ok(Self {
                kid: None,
                algorithm: Algorithm::EdDSA,
                key: DecodingKey::from_ed_der(key.as_bytes()),
            });
        }
        key_error("not a PEM public key of an ES256 (P-256) or EdDSA (Ed25519) key pair")
    }

    /// Every key of a JWKS document (`{"keys": [...]}`): EC P-256 and OKP Ed25519 keys only.
    pub fn from_jwks(json: &str) -> Result<Vec<Self>, KeyError> {
        let set: JwkSet = serde_json::from_str(json)
            .map_err(|e| KeyError(format!("not a JWKS document: {e}")))?;
        if set.keys.is_empty() {
            return key_error("the JWKS document has no keys");
        }
        set.keys
            .iter()
            .map(|jwk| {
                let kid = jwk.common.key_id.clone();
                let name = kid.as_deref().unwrap_or("without a kid");
                let (algorithm, expected) = match &jwk.algorithm {
                    AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                        (Algorithm::ES256, KeyAlgorithm::ES256)
                    }
                    AlgorithmParameters::OctetKeyPair(okp)
                        if okp.curve == EllipticCurve::Ed25519 =>
                    {
                        (Algorithm::EdDSA, KeyAlgorithm::EdDSA)
                    }
                    _ => {
                        return key_error(format!(
                            "JWKS key {name}: only EC P-256 (ES256) and OKP Ed25519 (EdDSA) keys are accepted"
                        ))
                    }
                };
                if jwk.common.key_algorithm.is_some_and(|alg| alg != expected) {
                    return key_error(format!(
                        "JWKS key {name}: its \"alg\" does not match its key type"
                    ));
                }
                let key = DecodingKey::from_jwk(jwk)
                    .map_err(|e| KeyError(format!("JWKS key {name}: {e}")))?;
                let valid = match algorithm {
                    Algorithm::ES256 => key
                        .try_get_as_bytes()
                        .is_ok_and(|b| p256::PublicKey::from_sec1_bytes(b).is_ok()),
                    _ => key.try_get_as_bytes().is_ok_and(|b| {
                        <[u8; 32]>::try_from(b)
                            .is_ok_and(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).is_ok())
                    }),
                };
                if !valid {
                    return key_error(format!("JWKS key {name}: not a valid public key"));
                }
                Ok(Self {
                    kid,
                    algorithm,
                    key,
                })
            })
            .collect()
    }
}

/// How the server checks JWTs: the keys they may be signed with, and the `iss` and `aud` they
/// must carry (when set).
#[derive(Debug, Clone, Default)]
pub struct JwtConfig {
    pub keys: Vec<VerifyingKey>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// What a verified token says: the one company it acts for and with which permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyClaims {
    pub company: CompanyId,
    pub permissions: Permissions,
}

/// Why a token was refused. Every one is a 401; the text tells the caller what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("This server accepts no JWTs.")]
    NotAccepted,
    #[error("The JWT is malformed.")]
    Malformed,
    #[error("The JWT is signed with an algorithm or key this server does not accept.")]
    UnknownKey,
    #[error("The JWT's signature is invalid.")]
    BadSignature,
    #[error("The JWT has expired.")]
    Expired,
    #[error("The JWT is not valid yet.")]
    NotYetValid,
    #[error("The JWT must carry an exp claim.")]
    NoExpiry,
    #[error("The JWT's issuer is not accepted.")]
    WrongIssuer,
    #[error("The JWT's audience is not this server.")]
    WrongAudience,
    #[error("The JWT's claims are invalid: {0}.")]
    BadClaims(String),
}

#[derive(Deserialize)]
struct Claims {
    company_id: String,
    #[serde(default)]
    permissions: Vec<String>,
}

/// Verifies company-scoped JWTs against the configured keys.
#[derive(Debug, Clone)]
pub struct JwtVerifier {
    keys: Vec<VerifyingKey>,
    validation: Validation,
}

impl JwtVerifier {
    pub fn new(config: &JwtConfig) -> Self {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        if let Some(issuer) = &config.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &config.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            // Without a configured audience there is nothing to compare `aud` with.
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Self {
            keys: config.keys.clone(),
            validation,
        }
    }

    /// Whether any key is configured, so that JWTs can be accepted at all.
    pub fn accepts_any(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The claims of `token` if a configured key signed it and it is valid now.
    pub fn verify(&self, token: &str) -> Result<CompanyClaims, JwtError> {
        use jsonwebtoken::errors::ErrorKind;
        if !self.accepts_any() {
            return Err(JwtError::NotAccepted);
        }
        // An `alg` outside the enum (`none` among them) fails here.
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        let candidates = self.keys.iter().filter(|key| {
            key.algorithm == header.alg
                && match (&header.kid, &key.kid) {
                    (Some(wanted), Some(kid)) => wanted == kid,
                    _ => true,
                }
        });
        let mut tried = false;
        for key in candidates {
            tried = true;
            let mut validation = self.validation.clone();
            validation.algorithms = vec![key.algorithm];
            match jsonwebtoken::decode::<Claims>(token, &key.key, &validation) {
                Ok(data) => return claims(data.claims),
                // Another key (during a rotation) may have signed it.
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
                Err(e) => {
                    return Err(match e.kind() {
                        ErrorKind::ExpiredSignature => JwtError::Expired,
                        ErrorKind::ImmatureSignature => JwtError::NotYetValid,
                        ErrorKind::InvalidIssuer => JwtError::WrongIssuer,
                        ErrorKind::InvalidAudience => JwtError::WrongAudience,
                        ErrorKind::MissingRequiredClaim(claim) if claim == "exp" => {
                            JwtError::NoExpiry
                        }
                        ErrorKind::MissingRequiredClaim(claim) if claim == "iss" => {
                            JwtError::WrongIssuer
                        }
                        ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => {
                            JwtError::WrongAudience
                        }
                        ErrorKind::InvalidClaimFormat(claim) => {
                            JwtError::BadClaims(format!("{claim} is not a number"))
                        }
                        ErrorKind::Json(e) => JwtError::BadClaims(without_position(e)),
                        ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidEddsaKey => {
                            JwtError::BadSignature
                        }
                        _ => JwtError::Malformed,
                    })
                }
            }
        }
        Err(if tried {
            JwtError::BadSignature
        } else {
            JwtError::UnknownKey
        })
    }
}

fn without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

fn claims(claims: Claims) -> Result<CompanyClaims, JwtError> {
    // A credential names companies as this server makes them, unlike the API's id inputs.
    let company = CompanyId::parse(&claims.company_id)
        .ok()
        .filter(CompanyId::is_generated)
        .ok_or_else(|| JwtError::BadClaims("company_id is not a company id".into()))?;
    let permissions = claims
        .permissions
        .iter()
        .map(|name| {
            Permission::parse(name)
                .ok_or_else(|| JwtError::BadClaims(format!("unknown permission {name:?}")))
        })
        .collect::<Result<Permissions, _>>()?;
    Ok(CompanyClaims {
        company,
        permissions,
    })
}

/// A private key to mint tokens with.
pub struct SigningKey {
    algorithm: Algorithm,
    key: EncodingKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A PEM private key as `openssl` makes them: PKCS#8 (`BEGIN PRIVATE KEY`, from
    /// `openssl genpkey -algorithm ed25519` or `-algorithm EC -pkeyopt ec_paramgen_curve:P-256`)
    /// or SEC1 (`BEGIN EC PRIVATE KEY`, from `openssl ecparam -name prime256v1 -genkey`).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        use p256::pkcs8::EncodePrivateKey as _;
        let p256_key = p256::SecretKey::from_pkcs8_pem(pem)
            .ok()
            .or_else(|| p256::SecretKey::from_sec1_pem(pem).ok());
        if let Some(key) = p256_key {
            let der = key
                .to_pkcs8_der()
                .map_err(|e| KeyError(format!("cannot encode the P-256 key: {e}")))?;
            return Ok(Self {
                algorithm: Algorithm::ES256,
                key: EncodingKey::from_ec_der(der.as_bytes()),
            });
        }
        if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            use ed25519_dalek::pkcs8::EncodePrivateKey as _;
            let der = key
                .to_pkcs8_der()
                .map_err(|e| KeyError(format!("cannot encode the Ed25519 key: {e}")))?;
            return Ok(Self {
                algorithm: Algorithm::EdDSA,
                key: EncodingKey::from_ed_der(der.as_bytes()),
            });
        }
        key_error("not a PEM private key of a P-256 (ES256) or Ed25519 (EdDSA) key pair")
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// What a minted token says.
#[derive(Debug, Clone)]
pub struct MintRequest {
    pub company: CompanyId,
    pub permissions: Permissions,
    /// From now until `exp`.
    pub ttl: Duration,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// Put in the header, to pick the key out of a JWKS document.
    pub kid: Option<String>,
}

#[derive(Serialize)]
struct MintedClaims<'a> {
    company_id: &'a str,
    permissions: Permissions,
    iat: u64,
    nbf: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// A signed token for `request`, valid from now for its `ttl`.
pub fn mint(key: &SigningKey, request: &MintRequest) -> Result<String, KeyError> {
    let now = jsonwebtoken::get_current_timestamp();
    let mut header = Header::new(key.algorithm);
    header.kid = request.kid.clone();
    let claims = MintedClaims {
        company_id: request.company.as_str(),
        permissions: request.permissions,
        iat: now,
        nbf: now,
        exp: now.saturating_add(request.ttl.as_secs()),
        iss: request.issuer.as_deref(),
        aud: request.audience.as_deref(),
    };
    jsonwebtoken::encode(&header, &claims, &key.key)
        .map_err(|e| KeyError(format!("cannot sign the token: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p256_pair() -> (SigningKey, VerifyingKey) {
        use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let secret = p256::SecretKey::from_slice(&rand::random::<[u8; 32]>()).unwrap();
        let private = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
        let public = secret
            .public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        (
            SigningKey::from_pem(&private).unwrap(),
            VerifyingKey::from_pem(&public).unwrap(),
        )
    }

    fn request() -> MintRequest {
        MintRequest {
            company: CompanyId::generate(),
            permissions: Permissions::all(),
            ttl: Duration::from_secs(60),
            issuer: None,
            audience: None,
            kid: None,
        }
    }

    #[test]
    fn a_minted_token_verifies_and_says_its_company() {
        let (signing, verifying) = p256_pair();
        let request = request();
        let token = mint(&signing, &request).unwrap();
        let verifier = JwtVerifier::new(&JwtConfig {
            keys: vec![verifying],
            ..JwtConfig::default()
        });
        let claims = verifier.verify(&token).unwrap();
        assert_eq!(claims.company, request.company);
        assert_eq!(claims.permissions, Permissions::all());
    }

    #[test]
    fn another_keys_token_is_a_bad_signature() {
        let (signing, _) = p256_pair();
        let (_, verifying) = p256_pair();
        let token = mint(&signing, &request()).unwrap();
        let verifier = JwtVerifier::new(&JwtConfig {
            keys: vec![verifying],
            ..JwtConfig::default()
        });
        assert_eq!(verifier.verify(&token), Err(JwtError::BadSignature));
    }

    #[test]
    fn private_keys_are_not_taken_for_public_ones() {
        use p256::pkcs8::{EncodePrivateKey, LineEnding};
        let secret = p256::SecretKey::from_slice(&[7; 32]).unwrap();
        let private = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
        assert!(VerifyingKey::from_pem(&private)
            .unwrap_err()
            .to_string()
            .contains("private key"));
    }
}
