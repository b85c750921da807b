//! Finding leads by who they are: the list's `query` and `email` filters (an extension of this
//! product, not Whop's), and the case folding that makes them case-insensitive.
//!
//! Text is compared after Unicode full case folding (the Unicode Standard's `CaseFolding.txt`,
//! statuses C and F, through the `caseless` crate) of its NFC form, so `ÉMILE` finds `émile`,
//! `STRASSE` finds `straße` and a decomposed `é` finds a precomposed one. The stores keep a folded
//! copy of every searched field, made by [`fold`], and compare it with a folded term.

use caseless::default_case_fold_str;
use std::fmt;
use unicode_normalization::UnicodeNormalization;

/// A `query` longer than this many characters is refused.
pub const MAX_QUERY_CHARS: usize = 100;
/// A `query` of at most this many characters matches only as a prefix.
pub const MAX_PREFIX_CHARS: usize = 2;
/// An `email` longer than this many characters is refused.
pub const MAX_EMAIL_CHARS: usize = 255;

/// `text` as the searches compare it: NFC, then Unicode full case folding, then NFC again (folding
/// can decompose).
pub fn fold(text: &str) -> String {
    let composed: String = text.nfc().collect();
    default_case_fold_str(&composed).nfc().collect()
}

/// Why a `query` or `email` was refused; the text completes "query ..." or "email ...".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    #[error("must be 1 to {MAX_QUERY_CHARS} characters")]
    QueryLength,
    #[error("must be 1 to {MAX_EMAIL_CHARS} characters")]
    EmailLength,
    #[error("must not contain control characters")]
    ControlCharacter,
}

/// How a [`SearchQuery`] matches a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchKind {
    /// The field starts with the term: a term of one or two characters once folded.
    Prefix,
    /// The field contains the term anywhere: a term of three or more characters once folded.
    Substring,
}

/// The list's `query`: 1 to [`MAX_QUERY_CHARS`] characters (Unicode scalar values, as given),
/// none of them control characters, kept folded.
///
/// A term of one or two characters once folded matches a user whose username, name or email
/// starts with it; a longer one matches a user whose username, name or email contains it, and a lead whose
/// referrer contains it. Emails take part only for a credential that may see them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SearchQuery {
    folded: String,
    kind: MatchKind,
}

impl SearchQuery {
    pub fn parse(text: &str) -> Result<Self, SearchError> {
        let chars = text.chars().count();
        if !(1..=MAX_QUERY_CHARS).contains(&chars) {
            return Err(SearchError::QueryLength);
        }
        if text.chars().any(char::is_control) {
            return Err(SearchError::ControlCharacter);
        }
        // The rule is applied to the term as it is compared: folded. A decomposed `É` (two
        // characters as typed) is one once composed, and `ﬃ` is three once folded.
        let folded = fold(text);
        let kind = if folded.chars().count() <= MAX_PREFIX_CHARS {
            MatchKind::Prefix
        } else {
            MatchKind::Substring
        };
        Ok(Self { folded, kind })
    }

    /// The term, folded.
    pub fn folded(&self) -> &str {
        &self.folded
    }

    pub fn kind(&self) -> MatchKind {
        self.kind
    }
}

/// The list's `email`: an address compared whole after folding, 1 to [`MAX_EMAIL_CHARS`]
/// characters without control characters. Any text is taken: one that is no user's email
/// matches no lead.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailQuery(String);

impl EmailQuery {
    pub fn parse(text: &str) -> Result<Self, SearchError> {
        if !(1..=MAX_EMAIL_CHARS).contains(&text.chars().count()) {
            return Err(SearchError::EmailLength);
        }
        if text.chars().any(char::is_control) {
            return Err(SearchError::ControlCharacter);
        }
        Ok(Self(fold(text)))
    }

    /// The address, folded.
    pub fn folded(&self) -> &str {
        &self.0
    }
}

/// The search part of a list: a `query`, an `email`, or both (a lead must then match both), and
/// whether emails may be searched (the credential holds `member:email:read`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeadSearch {
    pub query: Option<SearchQuery>,
    pub email: Option<EmailQuery>,
    /// Whether `query` matches emails too. False for a credential that cannot see emails, so a
    /// search cannot reveal them.
    pub emails_visible: bool,
}

impl LeadSearch {
    /// The user fields `query` compares, as the stores' `user_search` tables name them:
    /// `username` and `name`, and `email` only for a credential that may see emails.
    pub fn user_fields(&self) -> &'static [&'static str] {
        if self.emails_visible {
            &["username", "name", "email"]
        } else {
            &["username", "name"]
        }
    }

    /// The term whose referrers a candidate look-up seeks: `query` when it matches anywhere
    /// (three or more folded characters), unless an `email` already names every user a match
    /// can belong to.
    pub fn referrer_term(&self) -> Option<&SearchQuery> {
        let query = self.query.as_ref().filter(|_| self.email.is_none())?;
        (query.kind() == MatchKind::Substring).then_some(query)
    }

    /// The bytes a cursor of this search is bound to: the folded terms, each behind a NUL (which
    /// neither a company id nor a term can contain), so no two searches bind alike.
    pub fn cursor_scope(&self) -> Vec<u8> {
        let mut scope = Vec::new();
        if let Some(query) = &self.query {
            scope.extend_from_slice(b"\0query=");
            scope.extend_from_slice(query.folded().as_bytes());
        }
        if let Some(email) = &self.email {
            scope.extend_from_slice(b"\0email=");
            scope.extend_from_slice(email.folded().as_bytes());
        }
        scope
    }
}

impl fmt::Display for SearchQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.folded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_is_unicode_full_case_folding_of_the_composed_form() {
        assert_eq!(fold("ÉMILE"), fold("émile"));
        assert_eq!(fold("STRASSE"), fold("straße"));
        assert_eq!(fold("E\u{301}mile"), fold("Émile"));
        assert_eq!(fold("ΟΔΟΣ"), fold("οδος"));
    }

    #[test]
    fn one_or_two_characters_are_a_prefix_and_more_a_substring() {
        assert_eq!(SearchQuery::parse("É").unwrap().kind(), MatchKind::Prefix);
        assert_eq!(SearchQuery::parse("jo").unwrap().kind(), MatchKind::Prefix);
        assert_eq!(
            SearchQuery::parse("joh").unwrap().kind(),
            MatchKind::Substring
        );
        // Counted once folded: a decomposed `É` and `x` are two characters, `ﬃ` three.
        let decomposed = SearchQuery::parse("E\u{301}x").unwrap();
        assert_eq!(
            (decomposed.folded(), decomposed.kind()),
            ("éx", MatchKind::Prefix)
        );
        assert_eq!(
            SearchQuery::parse("ﬃ").unwrap().kind(),
            MatchKind::Substring
        );
    }

    #[test]
    fn empty_overlong_and_control_character_terms_are_refused() {
        assert_eq!(SearchQuery::parse(""), Err(SearchError::QueryLength));
        assert!(SearchQuery::parse(&"é".repeat(100)).is_ok());
        assert_eq!(
            SearchQuery::parse(&"é".repeat(101)),
            Err(SearchError::QueryLength)
        );
        assert_eq!(
            SearchQuery::parse("a\u{0}b"),
            Err(SearchError::ControlCharacter)
        );
        assert_eq!(EmailQuery::parse(""), Err(SearchError::EmailLength));
        assert_eq!(
            EmailQuery::parse("a\nb@x"),
            Err(SearchError::ControlCharacter)
        );
    }

    #[test]
    fn scopes_of_different_searches_differ() {
        let search = |query: Option<&str>, email: Option<&str>| LeadSearch {
            query: query.map(|q| SearchQuery::parse(q).unwrap()),
            email: email.map(|e| EmailQuery::parse(e).unwrap()),
            emails_visible: true,
        };
        assert_eq!(search(None, None).cursor_scope(), b"");
        assert_ne!(
            search(Some("ab"), None).cursor_scope(),
            search(None, Some("ab")).cursor_scope()
        );
        assert_eq!(
            search(Some("ÉMILE"), None).cursor_scope(),
            search(Some("émile"), None).cursor_scope()
        );
    }
}
