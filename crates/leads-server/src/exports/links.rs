//! Download links: short-lived tokens, signed and bound to one export and its company.
//!
//! A token is `<expiry>.<tag>`: the expiry in milliseconds since the Unix epoch, and the
//! base64url (no padding) HMAC-SHA256 of the export id, its company and that expiry, keyed with a
//! secret kept in the database (made on first use), so every instance and every restart accepts
//! the same links. Like the presigned links Whop returns, a link needs no `Authorization` header:
//! holding it is the permission, until it expires.

use crate::domain::{CompanyId, ExportId};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

/// How long a link is valid by default (`serve --export-link-ttl`).
pub const DEFAULT_LINK_TTL: Duration = Duration::from_secs(15 * 60);

/// Why a link's token was refused; each is answered 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("is not a download token this server issued")]
    Malformed,
    #[error("was altered, or was issued for another export")]
    Forged,
    #[error("has expired; retrieve the export again for a new download_url")]
    Expired,
}

/// Makes and checks download tokens with the deployment's secret.
#[derive(Clone)]
pub struct LinkSigner {
    mac: Hmac<Sha256>,
    ttl: Duration,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSigner")
            .field("secret", &"<redacted>")
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl LinkSigner {
    /// A signer whose tokens are valid for `ttl` from when they are made.
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        Self {
            mac: Hmac::new_from_slice(secret).expect("HMAC takes keys of any length"),
            ttl,
        }
    }

    /// Ids never hold NUL (they have no control characters), so NUL separates the parts
    /// unambiguously.
    fn tag(&self, id: &ExportId, company: &CompanyId, expires: i64) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(b"export-download\0");
        mac.update(id.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(company.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(&expires.to_be_bytes());
        mac
    }

    /// A token for downloading export `id` of `company`, valid from `now` (milliseconds) for
    /// the signer's time to live.
    pub fn token(&self, id: &ExportId, company: &CompanyId, now: i64) -> String {
        let expires = now.saturating_add(self.ttl.as_millis() as i64);
        let tag = self.tag(id, company, expires).finalize().into_bytes();
        format!("{expires}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// Allows `token` for export `id` of `company` at `now`, or says why not. The tag is
    /// compared in constant time.
    pub fn verify(
        &self,
        id: &ExportId,
        company: &CompanyId,
        token: &str,
        now: i64,
    ) -> Result<(), LinkError> {
        let (expires, tag) = token.split_once('.').ok_or(LinkError::Malformed)?;
        let expires: i64 = expires.parse().map_err(|_| LinkError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| LinkError::Malformed)?;
        self.tag(id, company, expires)
            .verify_slice(&tag)
            .map_err(|_| LinkError::Forged)?;
        if expires <= now {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (ExportId, CompanyId) {
        (ExportId::generate(), CompanyId::generate())
    }

    #[test]
    fn a_token_is_valid_for_its_export_until_it_expires() {
        let signer = LinkSigner::new(b"secret", Duration::from_secs(60));
        let (id, company) = ids();
        let token = signer.token(&id, &company, 1_000);
        assert_eq!(signer.verify(&id, &company, &token, 1_000), Ok(()));
        assert_eq!(signer.verify(&id, &company, &token, 60_999), Ok(()));
        assert_eq!(
            signer.verify(&id, &company, &token, 61_000),
            Err(LinkError::Expired)
        );
    }

    #[test]
    fn a_token_of_another_export_company_or_secret_is_forged() {
        let signer = LinkSigner::new(b"secret", Duration::from_secs(60));
        let (id, company) = ids();
        let token = signer.token(&id, &company, 0);
        let (other_id, other_company) = ids();
        assert_eq!(
            signer.verify(&other_id, &company, &token, 0),
            Err(LinkError::Forged)
        );
        assert_eq!(
            signer.verify(&id, &other_company, &token, 0),
            Err(LinkError::Forged)
        );
        let other = LinkSigner::new(b"other", Duration::from_secs(60));
        assert_eq!(
            other.verify(&id, &company, &token, 0),
            Err(LinkError::Forged)
        );
    }

    #[test]
    fn an_altered_expiry_or_tag_is_refused() {
        let signer = LinkSigner::new(b"secret", Duration::from_secs(60));
        let (id, company) = ids();
        let token = signer.token(&id, &company, 0);
        let (expires, tag) = token.split_once('.').unwrap();
        let later = format!("{}.{tag}", expires.parse::<i64>().unwrap() + 3_600_000);
        assert_eq!(
            signer.verify(&id, &company, &later, 0),
            Err(LinkError::Forged)
        );
        let mut bytes = URL_SAFE_NO_PAD.decode(tag).unwrap();
        bytes[0] ^= 1;
        let flipped = format!("{expires}.{}", URL_SAFE_NO_PAD.encode(bytes));
        assert_eq!(
            signer.verify(&id, &company, &flipped, 0),
            Err(LinkError::Forged)
        );
        for junk in ["", ".", "abc", "12.!!", "x.abc"] {
            assert_eq!(
                signer.verify(&id, &company, junk, 0),
                Err(LinkError::Malformed),
                "{junk:?}"
            );
        }
    }
}
