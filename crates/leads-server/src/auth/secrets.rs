//! Secrets of the credentials this server issues: made random, shown once, stored as a hash.

use sha2::{Digest, Sha256};

/// What a company API key's secret starts with, so a leaked one is recognisable.
pub const COMPANY_KEY_PREFIX: &str = "leads_ck_";
/// What an app API key's secret starts with.
pub const APP_KEY_PREFIX: &str = "leads_ak_";
/// What a user OAuth token's secret starts with.
pub const USER_TOKEN_PREFIX: &str = "leads_ut_";

/// Random base62 characters after the prefix: about 238 bits.
const SECRET_CHARS: usize = 40;

/// A freshly made secret: shown once, then only its hash is kept.
pub struct NewSecret {
    pub secret: String,
    pub hash: [u8; 32],
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewSecret { secret: <redacted> }")
    }
}

impl NewSecret {
    pub fn company_key() -> Self {
        Self::with_prefix(COMPANY_KEY_PREFIX)
    }

    pub fn app_key() -> Self {
        Self::with_prefix(APP_KEY_PREFIX)
    }

    pub fn user_token() -> Self {
        Self::with_prefix(USER_TOKEN_PREFIX)
    }

    fn with_prefix(prefix: &str) -> Self {
        let secret = format!(
            "{prefix}{}",
            crate::domain::ids::random_base62(SECRET_CHARS)
        );
        let hash = hash_secret(&secret);
        Self { secret, hash }
    }
}

/// The only form in which a secret is stored or looked up.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_by_kind_and_never_debug_printed() {
        for (secret, prefix) in [
            (NewSecret::company_key(), COMPANY_KEY_PREFIX),
            (NewSecret::app_key(), APP_KEY_PREFIX),
            (NewSecret::user_token(), USER_TOKEN_PREFIX),
        ] {
            assert!(secret.secret.starts_with(prefix));
            assert_eq!(secret.secret.len(), prefix.len() + SECRET_CHARS);
            assert_eq!(secret.hash, hash_secret(&secret.secret));
            assert!(!format!("{secret:?}").contains(&secret.secret));
        }
    }
}
