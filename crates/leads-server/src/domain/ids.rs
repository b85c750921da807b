//! Typed identifiers, and the one rule for which texts the API accepts as ids.
//!
//! Ids this server makes are a type prefix and random base62, 18 characters in all, like Whop's
//! (`biz_` + 14, `lead_` + 13...). Ids it *accepts* are wider, because Whop's reference says "any
//! string (such as "VXNlci0xMA==") or integer (such as 4) input value will be accepted as an ID":
//! any text of 1 to [`MAX_ID_CHARS`] characters without control characters (a JSON integer in a
//! body means its decimal text, `4` is the id `"4"`). An id that names nothing is answered like
//! any unknown id (an empty filter, a 404, a 400 naming the parameter); only text outside that
//! rule is refused as malformed. Parsing is the only way in from outside, so past the edge an id
//! is always within the rule: at most 255 characters, no NUL, safe in either database's `TEXT`.

use rand::Rng;
use std::fmt;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Ids longer than this many characters (Unicode scalar values) are refused.
pub const MAX_ID_CHARS: usize = 255;

/// The length of every id this server generates, prefix included.
pub const GENERATED_ID_LEN: usize = 18;

/// `len` random base62 characters.
pub fn random_base62(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| BASE62[rng.random_range(0..BASE62.len())] as char)
        .collect()
}

/// `now_ms` as 8 base62 digits (zero-padded, so they sort as the times do until the year
/// 8900), then `random` random base62 characters: for ids that sort by creation time, so that a
/// store's primary-key index grows at its end instead of every insert touching a random page.
pub fn time_ordered_base62(now_ms: i64, random: usize) -> String {
    let mut time = [b'0'; 8];
    let mut rest = now_ms.max(0) as u64;
    for digit in time.iter_mut().rev() {
        *digit = BASE62[(rest % 62) as usize];
        rest /= 62;
    }
    let mut id = String::from_utf8_lossy(&time).into_owned();
    id.push_str(&random_base62(random));
    id
}

/// Why a text is not an id; the text completes "Invalid parameter <name>: ...".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_ID_CHARS} characters")]
    TooLong,
    #[error("must not contain control characters")]
    ControlCharacter,
}

/// Checks `text` against the rule every id input follows (see the module documentation).
pub fn check(text: &str) -> Result<(), IdError> {
    if text.is_empty() {
        return Err(IdError::Empty);
    }
    // Counting characters is only needed when the bytes could be too many.
    if text.len() > MAX_ID_CHARS && text.chars().count() > MAX_ID_CHARS {
        return Err(IdError::TooLong);
    }
    if text.chars().any(char::is_control) {
        return Err(IdError::ControlCharacter);
    }
    Ok(())
}

/// Whether `text` has the shape of an id this server made with `prefix`.
fn is_generated(text: &str, prefix: &str) -> bool {
    text.len() == GENERATED_ID_LEN
        && text.starts_with(prefix)
        && text[prefix.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The prefix of the ids this server generates of this type.
            pub const PREFIX: &'static str = $prefix;

            /// A new random id: the prefix and base62, 18 characters in all.
            pub fn generate() -> Self {
                Self(format!(
                    "{}{}",
                    $prefix,
                    random_base62(GENERATED_ID_LEN - $prefix.len())
                ))
            }

            /// `text` as an id of this type: any text [`check`] accepts, whatever its prefix.
            /// Whether it names anything is for the store to say.
            pub fn parse(text: &str) -> Result<Self, IdError> {
                check(text).map(|()| Self(text.to_owned()))
            }

            /// Whether this id has the shape of one this server generates (prefix, base62, 18
            /// characters), as every id of a stored lead, user or product has.
            pub fn is_generated(&self) -> bool {
                is_generated(&self.0, $prefix)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }

            /// Wraps an id read back from our own storage, which only ever holds valid ids.
            #[allow(dead_code)] // not every id type is read back from storage yet
            pub(crate) fn from_trusted(text: String) -> Self {
                debug_assert!(check(&text).is_ok(), "stored id {text:?}");
                Self(text)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A company (Whop calls it a business, hence `biz_`).
    CompanyId, "biz_"
);
id_type!(LeadId, "lead_");
id_type!(UserId, "user_");
id_type!(
    /// A product (an "access pass" in Whop's permission names).
    ProductId, "prod_"
);
id_type!(MemberId, "mber_");
id_type!(
    /// An API key's public id (a company's or an app's); the secret is separate and never stored.
    KeyId, "key_"
);
id_type!(
    /// An app: a third party that companies install, acting for them with its own keys.
    AppId, "app_"
);
id_type!(
    /// A user OAuth token's public id; the secret is separate and never stored.
    UserTokenId, "utok_"
);
id_type!(
    /// A webhook endpoint.
    WebhookId, "hook_"
);
id_type!(
    /// One delivery attempt of a webhook message, as Whop names them.
    DeliveryId, "whdel_"
);
id_type!(
    /// An export: an asynchronous job writing a company's leads to a file (Whop's `exprt_`).
    ExportId, "exprt_"
);

impl DeliveryId {
    /// A new attempt id made at `now_ms`: `whdel_`, 8 base62 digits of the time, then 10
    /// random ones (24 characters). The delivery log is written at thousands of attempts a
    /// second; ids in time order append to its primary-key index (see
    /// [`time_ordered_base62`]).
    pub fn generate_at(now_ms: i64) -> Self {
        Self(format!(
            "{}{}",
            Self::PREFIX,
            time_ordered_base62(now_ms, 10)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ordered_ids_sort_as_their_times() {
        let times = [
            0,
            1,
            61,
            62,
            1_700_000_000_000,
            1_700_000_000_001,
            4_102_444_800_000,
        ];
        let ids: Vec<String> = times.iter().map(|&t| time_ordered_base62(t, 4)).collect();
        for pair in ids.windows(2) {
            assert!(pair[0][..8] < pair[1][..8], "{pair:?}");
        }
        assert_eq!(
            DeliveryId::generate_at(1_700_000_000_000).as_str().len(),
            24
        );
        assert!(DeliveryId::generate_at(0)
            .as_str()
            .starts_with("whdel_00000000"));
    }

    #[test]
    fn generated_ids_have_the_whop_shape() {
        let id = CompanyId::generate();
        assert_eq!(id.as_str().len(), 18);
        assert!(id.as_str().starts_with("biz_"));
        assert!(id.is_generated());
        assert_eq!(LeadId::generate().as_str().len(), 18);
        assert!(LeadId::generate().is_generated());
    }

    #[test]
    fn any_printable_text_up_to_255_characters_is_an_id() {
        for text in [
            "4",
            "VXNlci0xMA==",
            "prod_doesnotexist00",
            "lead_xxxxxxxxxxxxx",
            "user_xxxxxxxxxxxxx",
            " spaced out ",
            "é€😀",
        ] {
            assert_eq!(ProductId::parse(text).unwrap().as_str(), text);
        }
        assert!(LeadId::parse(&"x".repeat(MAX_ID_CHARS)).is_ok());
        // 255 characters of four bytes each are still 255 characters.
        assert!(LeadId::parse(&"😀".repeat(MAX_ID_CHARS)).is_ok());
        assert!(!LeadId::parse("4").unwrap().is_generated());
        assert!(!LeadId::parse("user_xxxxxxxxxxxxx").unwrap().is_generated());
    }

    #[test]
    fn empty_overlong_and_control_character_ids_are_refused() {
        assert_eq!(LeadId::parse(""), Err(IdError::Empty));
        assert_eq!(
            LeadId::parse(&"x".repeat(MAX_ID_CHARS + 1)),
            Err(IdError::TooLong)
        );
        assert_eq!(
            LeadId::parse(&"é".repeat(MAX_ID_CHARS + 1)),
            Err(IdError::TooLong)
        );
        for bad in ["a\0b", "a\nb", "\t", "a\u{7f}", "a\u{85}"] {
            assert_eq!(
                CompanyId::parse(bad),
                Err(IdError::ControlCharacter),
                "{bad:?}"
            );
        }
    }
}
