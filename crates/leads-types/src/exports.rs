//! Wire types of `/exports`: Whop's asynchronous exports, here of the `leads` resource.
//!
//! Shapes follow the official Python SDK 2.6.0 (`whop_sdk/types/export.py`,
//! `whop_sdk/exports/`): an Export object, a create body, and a page of exports.

use serde::{Deserialize, Serialize};

/// An export: a job writing a resource's records to a file, and the link to download it.
///
/// Every key is always present; nullable ones are `null`, never omitted.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Export {
    /// `exprt_` and 12 base62 characters.
    #[cfg_attr(feature = "openapi", schema(example = "exprt_xxxxxxxxxxxx"))]
    pub id: String,
    /// The exported resource: always `leads` on this server.
    pub resource: String,
    /// `pending` or `processing` while the file is written, `completed` when it can be
    /// downloaded, `failed` if it could not be written, `expired` once the file is deleted.
    #[cfg_attr(feature = "openapi", schema(example = "completed"))]
    pub status: String,
    /// Estimated completion, 0 to 100.
    pub progress_percent: Option<i32>,
    /// A short-lived link to download the file: set on every read of a `completed` export,
    /// `null` otherwise. It needs no `Authorization` header.
    pub download_url: Option<String>,
    #[cfg_attr(feature = "openapi", schema(format = DateTime, example = "2023-12-01T05:00:00.401Z"))]
    pub created_at: String,
    #[cfg_attr(feature = "openapi", schema(format = DateTime, example = "2023-12-01T05:00:00.401Z"))]
    pub updated_at: String,
    /// When the file is deleted and the export moves to `expired`: 30 days after `created_at`.
    #[cfg_attr(feature = "openapi", schema(format = DateTime, example = "2023-12-31T05:00:00.401Z"))]
    pub expires_at: String,
    /// Why a `failed` export failed; `null` otherwise. An extension of this server.
    pub failure_reason: Option<String>,
}

/// Body of `POST /exports`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateExport {
    /// The resource to export: only `leads` on this server.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(example = "leads"))]
    pub resource: Option<String>,
    /// The company to export from (`biz_...`); the credential's own company when left out. Any
    /// id of 1 to 255 characters, or a JSON integer, as the leads resource takes ids.
    #[serde(
        default,
        deserialize_with = "crate::id_input",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::export_account_id))]
    pub account_id: Option<String>,
    /// The same, by the name the leads resource uses. An extension of this server.
    #[serde(
        default,
        deserialize_with = "crate::id_input",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::export_company_id))]
    pub company_id: Option<String>,
    /// Column names, in order: id, created_at, updated_at, user_id, username, email, name,
    /// product_id, product_title, member_id, referrer, metadata. Empty or left out means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// The leads list's own filters: `created_after`, `created_before` (RFC 3339, exclusive)
    /// and `product_ids` (at most 100); and, as extensions of this server, `query` and `email`
    /// (the list's search; `email` needs `member:email:read`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub filters: Option<serde_json::Value>,
    /// The IANA time zone date columns are written in, with their offset; `UTC` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(example = "America/New_York"))]
    pub timezone: Option<String>,
}
