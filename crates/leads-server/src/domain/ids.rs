//! Typed identifiers: a type prefix and random base62, 18 characters in all, like Whop's.
//!
//! Parsing is the only way to get one from outside, so past the edge an id is always well formed.

use rand::Rng;
use std::fmt;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `len` random base62 characters.
pub fn random_base62(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| BASE62[rng.random_range(0..BASE62.len())] as char)
        .collect()
}

fn is_well_formed(text: &str, prefix: &str) -> bool {
    text.len() == 18
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
            pub const PREFIX: &'static str = $prefix;

            /// A new random id.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, random_base62(18 - $prefix.len())))
            }

            /// The id, if `text` is one of this type.
            pub fn parse(text: &str) -> Option<Self> {
                is_well_formed(text, $prefix).then(|| Self(text.to_owned()))
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
                debug_assert!(is_well_formed(&text, $prefix), "stored id {text:?}");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_have_the_whop_shape() {
        let id = CompanyId::generate();
        assert_eq!(id.as_str().len(), 18);
        assert!(CompanyId::parse(id.as_str()).is_some());
        assert_eq!(LeadId::generate().as_str().len(), 18);
    }

    #[test]
    fn parsing_rejects_wrong_prefix_length_and_alphabet() {
        assert!(LeadId::parse("lead_xxxxxxxxxxxxx").is_some());
        assert!(LeadId::parse("user_xxxxxxxxxxxxx").is_none());
        assert!(LeadId::parse("lead_xxxxxxxxxxxx").is_none());
        assert!(LeadId::parse("lead_xxxxxxxxxxx-x").is_none());
        assert!(LeadId::parse("lead_xxxxxxxxxxxé").is_none());
    }
}
