//! JSON request bodies: the one extractor every handler that takes a body uses.
//!
//! It insists on a JSON content type, reads at most [`MAX_BODY_BYTES`] (413 beyond), and parses
//! with the path of whatever went wrong, so a value of the wrong type is reported against its own
//! parameter (`referrer`, `metadata`) and only broken JSON is `invalid_json`. Unknown fields are
//! ignored: SDKs of other versions send fields this server does not know.
//!
//! Before the typed parse, one pass over the object's top level refuses, naming the key, what
//! is well-formed JSON yet not one meaning: a key given twice ("was given more than once", as in
//! the query string; RFC 8259 §4 leaves duplicate names' meaning to the reader) and a value with
//! a lone UTF-16 surrogate escape in any string, at any depth ("is not valid Unicode";
//! [`crate::domain::json_text`]).

use super::error::ApiError;
use super::MAX_BODY_BYTES;
use crate::domain::json_text::has_lone_surrogate;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::error::Category;
use serde_json::value::RawValue;
use std::collections::HashSet;

/// A request body parsed from JSON into `T`.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let declared_json = is_json(request.headers());
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("The request body must be at most {MAX_BODY_BYTES} bytes."),
                    )
                } else {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "The request body could not be read.",
                    )
                }
            })?;
        // No body at all reads as `{}`: a PATCH that changes nothing, or a POST whose missing
        // parameters are then named one by one.
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return parse(b"{}").map(JsonBody);
        }
        if !declared_json {
            return Err(ApiError::invalid(
                "Content-Type",
                "must be application/json for a request with a body",
            ));
        }
        parse(&bytes).map(JsonBody)
    }
}

/// `application/json` or `application/<anything>+json`, with any parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype
                .get(subtype.len().saturating_sub(5)..)
                .is_some_and(|end| end.eq_ignore_ascii_case("+json")))
}

/// Parses a whole JSON object into `T`, naming the parameter at fault.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Checked by hand because serde reads a struct from an array too (`[]` would be `{}`).
    let starts_as_object = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{');
    if !starts_as_object {
        return Err(not_an_object());
    }
    let top: TopLevel = serde_json::from_slice(bytes).map_err(|error| match error.classify() {
        Category::Data => not_an_object(),
        Category::Io | Category::Syntax | Category::Eof => ApiError::invalid_json(error),
    })?;
    if let Some(problem) = top.0 {
        return Err(problem);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(describe)?;
    deserializer.end().map_err(ApiError::invalid_json)?;
    Ok(value)
}

/// The first problem of an object's top level, if any: a key given twice, or a value holding a
/// string that is not valid Unicode.
struct TopLevel(Option<ApiError>);

impl<'de> Deserialize<'de> for TopLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(TopLevelVisitor)
    }
}

struct TopLevelVisitor;

impl<'de> Visitor<'de> for TopLevelVisitor {
    type Value = TopLevel;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevel, A::Error> {
        let mut seen = HashSet::new();
        let mut problem = None;
        while let Some(key) = map.next_key::<String>()? {
            if problem.is_some() {
                // The first problem is the answer; the rest is only read to its end.
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            // Borrowed from the body: metadata may be large, and is only scanned here.
            let value = map.next_value::<&RawValue>()?;
            if has_lone_surrogate(value.get()) {
                problem = Some(ApiError::invalid(
                    &key,
                    "is not valid Unicode: it holds a lone UTF-16 surrogate escape such as \\ud800",
                ));
            } else if seen.contains(&key) {
                problem = Some(ApiError::repeated(&key));
            } else {
                seen.insert(key);
            }
        }
        Ok(TopLevel(problem))
    }
}

fn describe(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let param = error.path().to_string();
    let inner = error.into_inner();
    match inner.classify() {
        Category::Data if param != "." => ApiError::invalid(&param, without_position(&inner)),
        Category::Data => not_an_object(),
        Category::Io | Category::Syntax | Category::Eof => ApiError::invalid_json(inner),
    }
}

fn not_an_object() -> ApiError {
    ApiError {
        code: Some("invalid_json"),
        ..ApiError::new(
            StatusCode::BAD_REQUEST,
            "The request body must be a JSON object.",
        )
    }
}

/// serde_json's message without its " at line 1 column 9": a type error is about a parameter,
/// which the error names, not about a place in the text.
fn without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) if error.line() > 0 => text[..at].to_owned(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use leads_types::{CreateLead, UpdateLead};

    fn error_of<T: DeserializeOwned + std::fmt::Debug>(text: &str) -> ApiError {
        parse::<T>(text.as_bytes()).unwrap_err()
    }

    #[test]
    fn a_wrong_type_names_its_parameter() {
        let error = error_of::<CreateLead>(r#"{"company_id": "biz_x", "referrer": 5}"#);
        assert_eq!(error.param.as_deref(), Some("referrer"));
        assert_eq!(error.code, Some("parameter_invalid"));
        assert!(!error.message.contains("line"), "{}", error.message);
        let error = error_of::<UpdateLead>(r#"{"metadata": {"a": 1}, "referrer": []}"#);
        assert_eq!(error.param.as_deref(), Some("referrer"));
    }

    #[test]
    fn broken_json_and_non_objects_are_invalid_json() {
        for text in [
            r#"{"company_id": "#,
            "{,}",
            r#"{"a": 1} x"#,
            "[]",
            "\"text\"",
            "nul",
        ] {
            let error = error_of::<CreateLead>(text);
            assert_eq!(error.code, Some("invalid_json"), "{text}");
            assert_eq!(error.param, None, "{text}");
        }
    }

    #[test]
    fn a_top_level_key_given_twice_is_named() {
        for text in [
            r#"{"referrer": "https://a", "referrer": "https://b"}"#,
            r#"{"referrer": null, "metadata": {}, "referrer": 5}"#,
            r#"{"r\u0065ferrer": "https://a", "referrer": "https://b"}"#,
        ] {
            let error = error_of::<UpdateLead>(text);
            assert_eq!(error.code, Some("parameter_invalid"), "{text}");
            assert_eq!(error.param.as_deref(), Some("referrer"), "{text}");
            assert!(error.message.contains("given more than once"), "{text}");
        }
        let error = error_of::<CreateLead>(r#"{"whatever": 1, "whatever": 2}"#);
        assert_eq!(error.param.as_deref(), Some("whatever"));
        // Inside metadata, keys are the company's business: kept as sent.
        let body: UpdateLead = parse(br#"{"metadata": {"a": 1, "a": 2}}"#).unwrap();
        assert!(body.metadata.is_some());
    }

    #[test]
    fn a_lone_surrogate_escape_is_named_by_its_top_level_key() {
        for (text, param) in [
            (r#"{"referrer": "\ud800"}"#, "referrer"),
            (r#"{"referrer": "x\udc00y"}"#, "referrer"),
            (r#"{"metadata": {"a": ["\ud83d"]}}"#, "metadata"),
            (r#"{"metadata": {"\ud800": 1}}"#, "metadata"),
            (r#"{"user_id": "\ud800"}"#, "user_id"),
        ] {
            let error = error_of::<CreateLead>(text);
            assert_eq!(error.code, Some("parameter_invalid"), "{text}");
            assert_eq!(error.param.as_deref(), Some(param), "{text}");
            assert!(error.message.contains("not valid Unicode"), "{text}");
        }
        let body: CreateLead = parse(br#"{"referrer": "\ud83d\ude00"}"#).unwrap();
        assert_eq!(body.referrer.as_deref(), Some("\u{1F600}"));
    }

    #[test]
    fn unknown_fields_are_ignored_and_deep_metadata_is_kept_raw() {
        let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));
        let body: CreateLead = parse(
            format!(r#"{{"whatever": {deep}, "metadata": {{"a": {deep}}}, "referrer": null}}"#)
                .as_bytes(),
        )
        .unwrap();
        assert!(body.metadata.unwrap().get().starts_with(r#"{"a": [[["#));
        assert_eq!(body.referrer, None);
    }

    #[test]
    fn json_content_types_are_recognised() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            is_json(&headers)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/merge-patch+json"));
        assert!(!with("text/plain"));
        assert!(!with("application/x-www-form-urlencoded"));
        assert!(!with("json"));
        assert!(!is_json(&HeaderMap::new()));
    }
}
