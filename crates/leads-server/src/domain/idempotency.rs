//! Idempotency keys: a client's promise that a retried create means the same lead.
//!
//! A key is scoped to the credential that sent it. The store keeps, with the lead, which key of
//! which credential created it and a fingerprint of the request, in the same transaction, so a
//! retry either finds both or neither.

use std::time::Duration;

/// Keys longer than this are refused.
pub const MAX_KEY_CHARS: usize = 255;

/// How long a key is remembered. The API promises 24 hours; keeping twice that leaves slack for
/// clocks and for clients that retry late.
pub const RETENTION: Duration = Duration::from_secs(48 * 60 * 60);

/// The value of an `Idempotency-Key` header: 1 to [`MAX_KEY_CHARS`] visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

/// Why a key was refused; the text completes "Idempotency-Key ...".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_KEY_CHARS} characters")]
    TooLong,
    #[error("must be printable ASCII")]
    NotPrintable,
}

impl IdempotencyKey {
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        if text.is_empty() {
            return Err(KeyError::Empty);
        }
        if !text.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
            return Err(KeyError::NotPrintable);
        }
        if text.len() > MAX_KEY_CHARS {
            return Err(KeyError::TooLong);
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A create made under a key: who sent it, the key, and what it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    /// The id of the credential (never its secret).
    pub credential: String,
    pub key: IdempotencyKey,
    /// [`crate::domain::NewLead::fingerprint`] of the request.
    pub fingerprint: [u8; 32],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_to_255_printable_characters() {
        assert!(IdempotencyKey::parse("stainless-node-retry-1f0c").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(MAX_KEY_CHARS)).is_ok());
        assert_eq!(IdempotencyKey::parse(""), Err(KeyError::Empty));
        assert_eq!(
            IdempotencyKey::parse(&"k".repeat(MAX_KEY_CHARS + 1)),
            Err(KeyError::TooLong)
        );
        assert_eq!(IdempotencyKey::parse("a\tb"), Err(KeyError::NotPrintable));
        assert_eq!(IdempotencyKey::parse("é"), Err(KeyError::NotPrintable));
    }
}
