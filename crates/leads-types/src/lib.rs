//! Wire types of the leads API, as Whop publishes them.
//!
//! These are the JSON shapes a client sends and receives; they carry no behaviour beyond
//! (de)serialisation, so the server, the Rust client and the CLI can all share them.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

pub mod stats;
mod timestamp;

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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateLead {
    /// The company to record the lead for (or `account_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^biz_[0-9A-Za-z]{14}$"))]
    pub company_id: Option<String>,
    /// The name newer SDKs use for `company_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^biz_[0-9A-Za-z]{14}$"))]
    pub account_id: Option<String>,
    /// The user the lead is about; a company credential must name one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^user_[0-9A-Za-z]{13}$"))]
    pub user_id: Option<String>,
    /// A product of the company.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^prod_[0-9A-Za-z]{13}$"))]
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
