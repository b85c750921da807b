//! A lead as a client writes it: the validated content of a create or an update.

use super::{CompanyId, LeadId, Metadata, ProductId, UserId};
use sha2::{Digest, Sha256};
use std::fmt;

/// A referrer longer than this many characters is refused.
pub const MAX_REFERRER_CHARS: usize = 2048;

/// Where a lead came from, usually a URL: at most [`MAX_REFERRER_CHARS`] characters, none of
/// them control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer(String);

/// Why a referrer was refused; the text completes "referrer ...".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReferrerError {
    #[error("must be at most {MAX_REFERRER_CHARS} characters")]
    TooLong,
    #[error("must not contain control characters")]
    ControlCharacter,
}

impl Referrer {
    pub fn parse(text: String) -> Result<Self, ReferrerError> {
        if text.chars().count() > MAX_REFERRER_CHARS {
            return Err(ReferrerError::TooLong);
        }
        if text.chars().any(char::is_control) {
            return Err(ReferrerError::ControlCharacter);
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Referrer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A lead to record. Its id is made by the application before it is written; its times are
/// stamped by the store when it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLead {
    pub id: LeadId,
    pub company: CompanyId,
    pub user: UserId,
    pub product: Option<ProductId>,
    pub referrer: Option<Referrer>,
    pub metadata: Option<Metadata>,
}

impl NewLead {
    /// A digest of what the client asked for, leaving out the id made for it: two creates with
    /// the same fingerprint ask for the same lead.
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut digest = Sha256::new();
        // Each field is tagged and length-prefixed, so no two different requests encode alike.
        let mut field = |tag: u8, value: Option<&str>| {
            digest.update([tag]);
            match value {
                None => digest.update([0]),
                Some(text) => {
                    digest.update([1]);
                    digest.update((text.len() as u64).to_be_bytes());
                    digest.update(text.as_bytes());
                }
            }
        };
        field(b'c', Some(self.company.as_str()));
        field(b'u', Some(self.user.as_str()));
        field(b'p', self.product.as_ref().map(ProductId::as_str));
        field(b'r', self.referrer.as_ref().map(Referrer::as_str));
        field(b'm', self.metadata.as_ref().map(Metadata::as_str));
        digest.finalize().into()
    }
}

/// What a `PATCH` changes: `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadChange {
    pub referrer: Option<Option<Referrer>>,
    pub metadata: Option<Option<Metadata>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referrers_are_bounded_and_printable() {
        assert!(Referrer::parse("https://example.com/é".into()).is_ok());
        assert!(Referrer::parse("é".repeat(MAX_REFERRER_CHARS)).is_ok());
        assert_eq!(
            Referrer::parse("x".repeat(MAX_REFERRER_CHARS + 1)),
            Err(ReferrerError::TooLong)
        );
        for bad in ["a\nb", "a\u{0}", "a\u{7f}", "a\u{85}"] {
            assert_eq!(
                Referrer::parse(bad.into()),
                Err(ReferrerError::ControlCharacter),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_fingerprint_ignores_the_id_and_sees_every_field() {
        let lead = NewLead {
            id: LeadId::generate(),
            company: CompanyId::generate(),
            user: UserId::generate(),
            product: None,
            referrer: Some(Referrer::parse("r".into()).unwrap()),
            metadata: None,
        };
        let same = NewLead {
            id: LeadId::generate(),
            ..lead.clone()
        };
        assert_eq!(lead.fingerprint(), same.fingerprint());
        let moved = NewLead {
            referrer: None,
            ..lead.clone()
        };
        assert_ne!(lead.fingerprint(), moved.fingerprint());
        let other_user = NewLead {
            user: UserId::generate(),
            ..lead.clone()
        };
        assert_ne!(lead.fingerprint(), other_user.fingerprint());
    }
}
