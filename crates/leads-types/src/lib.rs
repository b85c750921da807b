//! Wire types of the leads API, as Whop publishes them.
//!
//! These are the JSON shapes a client sends and receives; they carry no behaviour beyond
//! (de)serialisation, so the server, the Rust client and the CLI can all share them.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

pub mod exports;
pub mod stats;
mod timestamp;
pub mod webhooks;

pub use timestamp::Timestamp;

/// A prospective customer of one of a company's products.
///
/// Every key is always present on the wire; nullable ones are `null`, never omitted.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lead {
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime, example = "2023-12-01T05:00:00.401Z"))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime, example = "2023-12-01T05:00:00.401Z"))]
    pub updated_at: Timestamp,
    pub referrer: Option<String>,
    /// A JSON object chosen by the company, kept verbatim.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<Box<RawValue>>,
    pub user: LeadUser,
    pub product: Option<LeadProduct>,
    /// Set once the lead's user became a member of the company (converted).
    pub member: Option<LeadMember>,
}

impl PartialEq for Lead {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.created_at == other.created_at
            && self.updated_at == other.updated_at
            && self.referrer == other.referrer
            && self.metadata.as_ref().map(|m| m.get()) == other.metadata.as_ref().map(|m| m.get())
            && self.user == other.user
            && self.product == other.product
            && self.member == other.member
    }
}

/// The user a lead belongs to. `email` is `null` unless the credential may read emails.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadUser {
    pub id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub username: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadProduct {
    pub id: String,
    pub title: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadMember {
    pub id: String,
}

/// One page of a list, in the Relay connection shape Whop uses.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub page_info: PageInfo,
}

/// Where a page sits in the whole list. Both flags are exact.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageInfo {
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

/// Body of `POST /leads`.
///
/// Ids are read as Whop's API reads them: "any string (such as "VXNlci0xMA==") or integer (such
/// as 4) input value will be accepted as an ID". A JSON integer arrives here as its decimal text
/// (`4` is `"4"`), so the id fields are always text; the server checks the rest (1 to 255
/// characters, no control characters).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateLead {
    /// The company to record the lead for (or `account_id`).
    #[serde(
        default,
        deserialize_with = "id_input",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(schema_with = schemas::company_id))]
    pub company_id: Option<String>,
    /// The name newer SDKs use for `company_id`.
    #[serde(
        default,
        deserialize_with = "id_input",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(schema_with = schemas::account_id))]
    pub account_id: Option<String>,
    /// The user the lead is about; a company credential must name one.
    #[serde(
        default,
        deserialize_with = "id_input",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(schema_with = schemas::user_id))]
    pub user_id: Option<String>,
    /// A product of the company.
    #[serde(
        default,
        deserialize_with = "id_input",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(schema_with = schemas::product_id))]
    pub product_id: Option<String>,
    /// Where the lead came from; at most 2,048 characters, no control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 2048))]
    pub referrer: Option<String>,
    /// A JSON object (at most 16 KiB, 16 levels deep), kept verbatim (see [`Lead::metadata`]);
    /// [`raw_json`] makes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<Box<RawValue>>,
}

/// Body of `PATCH /leads/{id}`: each field is left as it is when absent, cleared when `null`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateLead {
    /// Replaces the whole metadata object.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<Option<Box<RawValue>>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, max_length = 2048))]
    pub referrer: Option<Option<String>>,
}

/// A JSON value as raw JSON text, for [`CreateLead::metadata`] and [`UpdateLead::metadata`].
pub fn raw_json(value: &serde_json::Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).expect("a JSON value always serializes")
}

/// An id as a body gives it: a string as it is, a JSON integer as its decimal text, `null` as
/// absent. Anything else (a fraction, a boolean, an object) is a type error naming the field.
pub(crate) fn id_input<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    struct IdInput;

    impl<'de> serde::de::Visitor<'de> for IdInput {
        type Value = Option<String>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an id: a string or an integer")
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
            Ok(Some(text.to_owned()))
        }

        fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Self::Value, E> {
            Ok(Some(text))
        }

        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Self::Value, E> {
            Ok(Some(n.to_string()))
        }

        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
            Ok(Some(n.to_string()))
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<Self::Value, D::Error> {
            inner.deserialize_any(self)
        }
    }

    deserializer.deserialize_any(IdInput)
}

/// OpenAPI schemas of the id fields: a string or an integer, as the server accepts them, with no
/// `pattern` (ids that name nothing are not malformed).
#[cfg(feature = "openapi")]
pub(crate) mod schemas {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};

    /// The longest id text the server accepts, in characters.
    const MAX_ID_CHARS: usize = 255;

    fn id(description: &str) -> Schema {
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(MAX_ID_CHARS)),
            )
            .item(ObjectBuilder::new().schema_type(Type::Integer))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .description(Some(format!(
                "{description} Any string of 1 to {MAX_ID_CHARS} characters without control \
                 characters, or an integer (meaning its decimal text), is accepted as an id, as \
                 Whop accepts them; one that names nothing is answered as an unknown id is."
            )))
            .build()
            .into()
    }

    pub fn company_id() -> Schema {
        id("The company to record the lead for (or `account_id`).")
    }

    pub fn account_id() -> Schema {
        id("The name newer SDKs use for `company_id`; must agree with it when both are given.")
    }

    pub fn user_id() -> Schema {
        id("The user the lead is about; a company credential must name one.")
    }

    pub fn product_id() -> Schema {
        id("A product of the company.")
    }

    pub fn export_account_id() -> Schema {
        id("The company to export from (`biz_...`); the credential's own company when left out.")
    }

    pub fn export_company_id() -> Schema {
        id("The same as `account_id`, by the name the leads resource uses. An extension of this server.")
    }

    pub fn webhook_resource_id() -> Schema {
        id("The company whose events the endpoint receives; the credential's own company when left out.")
    }
}

/// Distinguishes a key given as `null` (`Some(None)`) from a key left out (`None`, by `default`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The body of every non-2xx answer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_tells_null_from_absent() {
        let body: UpdateLead = serde_json::from_str(r#"{"referrer": null}"#).unwrap();
        assert_eq!(body.referrer, Some(None));
        assert!(body.metadata.is_none());
        let body: UpdateLead = serde_json::from_str(r#"{"metadata": {"a": 1}}"#).unwrap();
        assert_eq!(
            body.metadata.unwrap().map(|m| m.get().to_owned()),
            Some(r#"{"a": 1}"#.to_owned())
        );
        assert_eq!(body.referrer, None);
        let body: UpdateLead = serde_json::from_str(r#"{"metadata": null}"#).unwrap();
        assert!(matches!(body.metadata, Some(None)));
    }

    #[test]
    fn ids_in_a_create_body_are_strings_or_integers() {
        let body: CreateLead = serde_json::from_str(
            r#"{"company_id": 4, "account_id": "VXNlci0xMA==", "user_id": -7, "product_id": null}"#,
        )
        .unwrap();
        assert_eq!(body.company_id.as_deref(), Some("4"));
        assert_eq!(body.account_id.as_deref(), Some("VXNlci0xMA=="));
        assert_eq!(body.user_id.as_deref(), Some("-7"));
        assert_eq!(body.product_id, None);
        let body: CreateLead =
            serde_json::from_str(r#"{"user_id": 18446744073709551615}"#).unwrap();
        assert_eq!(body.user_id.as_deref(), Some("18446744073709551615"));
        for wrong in [
            r#"{"user_id": 4.5}"#,
            r#"{"user_id": true}"#,
            r#"{"user_id": []}"#,
        ] {
            assert!(
                serde_json::from_str::<CreateLead>(wrong).is_err(),
                "{wrong}"
            );
        }
    }

    #[test]
    fn a_lead_keeps_every_key_on_the_wire() {
        let lead = Lead {
            id: "lead_aaaaaaaaaaaaa".into(),
            created_at: Timestamp::from_millis(1_701_406_800_401).unwrap(),
            updated_at: Timestamp::from_millis(1_701_406_800_401).unwrap(),
            referrer: None,
            metadata: None,
            user: LeadUser {
                id: "user_aaaaaaaaaaaaa".into(),
                email: None,
                name: None,
                username: "x".into(),
            },
            product: None,
            member: None,
        };
        let json = serde_json::to_value(&lead).unwrap();
        for key in ["referrer", "metadata", "product", "member"] {
            assert!(json[key].is_null(), "{key} must be present and null");
        }
        assert_eq!(json["created_at"], "2023-12-01T05:00:00.401Z");
        let back: Lead = serde_json::from_value(json).unwrap();
        assert_eq!(back, lead);
    }
}
