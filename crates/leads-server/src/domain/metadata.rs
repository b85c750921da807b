//! Lead metadata: a JSON object chosen by the company, kept as it was sent.
//!
//! Only insignificant whitespace is dropped; key order, duplicate keys and number spellings stay
//! as the client wrote them, so what a client sends is what it reads back.

use super::json_text::has_lone_surrogate;
use serde_json::value::RawValue;
use std::fmt;

/// Metadata larger than this, as compact JSON, is refused.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Metadata nested deeper than this (the object itself is level 1) is refused.
pub const MAX_METADATA_DEPTH: usize = 16;

/// A JSON object of at most [`MAX_METADATA_BYTES`] compact bytes and [`MAX_METADATA_DEPTH`] levels,
/// whose strings (keys and values, at any depth) are all valid Unicode: no lone surrogate escape
/// ([`super::json_text::has_lone_surrogate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata(String);

/// Why metadata was refused; the text completes "metadata ...".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("must be a JSON object")]
    NotAnObject,
    #[error("must be at most {MAX_METADATA_BYTES} bytes as compact JSON")]
    TooLarge,
    #[error("must not be nested deeper than {MAX_METADATA_DEPTH} levels")]
    TooDeep,
    #[error(
        "is not valid Unicode: a string in it holds a lone UTF-16 surrogate escape such as \\ud800"
    )]
    NotUnicode,
}

impl Metadata {
    /// Checks a parsed JSON value and keeps it in compact form.
    pub fn parse(json: &RawValue) -> Result<Self, MetadataError> {
        let text = json.get().trim_start();
        if !text.starts_with('{') {
            return Err(MetadataError::NotAnObject);
        }
        // `text` is valid JSON (the parser said so), so a byte scan that tracks strings is enough
        // to find the structure: every byte of a multi-byte character is >= 0x80 and never
        // mistaken for a bracket, quote or whitespace.
        let mut compact = Vec::with_capacity(text.len().min(MAX_METADATA_BYTES + 1));
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        for &byte in text.as_bytes() {
            if in_string {
                if escaped {
                    escaped = false;
                } else if byte == b'\\' {
                    escaped = true;
                } else if byte == b'"' {
                    in_string = false;
                }
            } else {
                match byte {
                    b' ' | b'\t' | b'\n' | b'\r' => continue,
                    b'"' => in_string = true,
                    b'{' | b'[' => {
                        depth += 1;
                        if depth > MAX_METADATA_DEPTH {
                            return Err(MetadataError::TooDeep);
                        }
                    }
                    b'}' | b']' => depth -= 1,
                    _ => {}
                }
            }
            compact.push(byte);
            if compact.len() > MAX_METADATA_BYTES {
                return Err(MetadataError::TooLarge);
            }
        }
        let compact = String::from_utf8(compact).map_err(|_| MetadataError::NotAnObject)?;
        if has_lone_surrogate(&compact) {
            return Err(MetadataError::NotUnicode);
        }
        Ok(Self(compact))
    }

    /// The compact JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Metadata, MetadataError> {
        let raw: Box<RawValue> = serde_json::from_str(text).expect("valid JSON");
        Metadata::parse(&raw)
    }

    fn nested(levels: usize) -> String {
        let mut text = "{\"a\":".repeat(levels - 1);
        text.push_str("{}");
        text.push_str(&"}".repeat(levels - 1));
        text
    }

    #[test]
    fn only_insignificant_whitespace_is_dropped() {
        let metadata =
            parse("{ \"b\" : [1, 2.50, \"x y\\\" z\"],\n\t\"a\": {\"é\": 1e3} }").unwrap();
        assert_eq!(
            metadata.as_str(),
            r#"{"b":[1,2.50,"x y\" z"],"a":{"é":1e3}}"#
        );
    }

    #[test]
    fn anything_but_an_object_is_refused() {
        for text in ["[]", "\"{}\"", "1", "true"] {
            assert_eq!(parse(text), Err(MetadataError::NotAnObject), "{text}");
        }
    }

    #[test]
    fn a_lone_surrogate_escape_anywhere_is_refused() {
        for text in [
            r#"{"a": "\ud800"}"#,
            r#"{"\udc00": 1}"#,
            r#"{"a": {"b": ["x", "y\ud83dz"]}}"#,
        ] {
            assert_eq!(parse(text), Err(MetadataError::NotUnicode), "{text}");
        }
        assert_eq!(
            parse(r#"{"smile": "\ud83d\ude00"}"#).unwrap().as_str(),
            r#"{"smile":"\ud83d\ude00"}"#
        );
    }

    #[test]
    fn sixteen_levels_pass_and_seventeen_do_not() {
        assert!(parse(&nested(16)).is_ok());
        assert_eq!(parse(&nested(17)), Err(MetadataError::TooDeep));
        // Brackets inside strings are not structure.
        assert!(parse(&format!("{{\"a\":\"{}\"}}", "[".repeat(40))).is_ok());
    }

    #[test]
    fn the_size_limit_counts_compact_bytes() {
        let fill = |n: usize| format!("{{\"a\":\"{}\"}}", "x".repeat(n));
        let exact = fill(MAX_METADATA_BYTES - 8);
        assert_eq!(exact.len(), MAX_METADATA_BYTES);
        assert!(parse(&exact).is_ok());
        assert_eq!(
            parse(&fill(MAX_METADATA_BYTES - 7)),
            Err(MetadataError::TooLarge)
        );
        let padded = format!("{{ {} \"a\": 1}}", " ".repeat(MAX_METADATA_BYTES));
        assert_eq!(parse(&padded).unwrap().as_str(), r#"{"a":1}"#);
    }
}
