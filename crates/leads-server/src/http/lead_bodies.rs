//! The bodies of `POST /leads` and `PATCH /leads/{id}`, checked once into domain types.
//!
//! What can be judged from the request alone is judged here, each failure naming its parameter;
//! what needs the database (does the user exist, is the product the company's) the store judges.
//! Ids are any text [`crate::domain::ids`] accepts (the wire types have already turned a JSON
//! integer into its decimal text), so an id that names nothing is the store's "unknown" answer.

use super::error::ApiError;
use crate::domain::{
    CompanyId, LeadChange, LeadId, Metadata, NewLead, ProductId, Referrer, UserId,
};
use leads_types::{CreateLead, UpdateLead};
use serde_json::value::RawValue;

/// A create body as a lead to write, with a freshly made id. `acting_user` is the user a user
/// token acts as, recorded when the body names no `user_id`; other credentials must name one.
pub fn new_lead(body: CreateLead, acting_user: Option<&UserId>) -> Result<NewLead, ApiError> {
    let company = company(body.company_id, body.account_id)?;
    let user = match (body.user_id, acting_user) {
        (Some(text), _) => UserId::parse(&text).map_err(|why| ApiError::invalid("user_id", why))?,
        (None, Some(user)) => user.clone(),
        (None, None) => return Err(ApiError::missing("user_id")),
    };
    let product = body
        .product_id
        .map(|text| ProductId::parse(&text).map_err(|why| ApiError::invalid("product_id", why)))
        .transpose()?;
    Ok(NewLead {
        id: LeadId::generate(),
        company,
        user,
        product,
        referrer: body.referrer.map(referrer).transpose()?,
        metadata: body.metadata.as_deref().map(metadata).transpose()?,
    })
}

/// An update body as a change: a key left out changes nothing, `null` clears.
pub fn lead_change(body: UpdateLead) -> Result<LeadChange, ApiError> {
    Ok(LeadChange {
        referrer: body
            .referrer
            .map(|value| value.map(referrer).transpose())
            .transpose()?,
        metadata: body
            .metadata
            .map(|value| value.as_deref().map(metadata).transpose())
            .transpose()?,
    })
}

/// `company_id`, or `account_id` as newer SDKs call it; both may be given if they agree.
fn company(company_id: Option<String>, account_id: Option<String>) -> Result<CompanyId, ApiError> {
    let (param, text) = match (company_id, account_id) {
        (Some(company), Some(account)) if company != account => {
            return Err(ApiError::invalid(
                "account_id",
                "names a different company than company_id",
            ))
        }
        (Some(text), _) => ("company_id", text),
        (None, Some(text)) => ("account_id", text),
        (None, None) => return Err(ApiError::missing("company_id")),
    };
    CompanyId::parse(&text).map_err(|why| ApiError::invalid(param, why))
}

fn referrer(text: String) -> Result<Referrer, ApiError> {
    Referrer::parse(text).map_err(|why| ApiError::invalid("referrer", why))
}

fn metadata(json: &RawValue) -> Result<Metadata, ApiError> {
    Metadata::parse(json).map_err(|why| ApiError::invalid("metadata", why))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::body::parse;

    const COMPANY: &str = "biz_aaaaaaaaaaaaaa";
    const USER: &str = "user_aaaaaaaaaaaaa";

    fn create(json: serde_json::Value) -> Result<NewLead, ApiError> {
        new_lead(parse(json.to_string().as_bytes())?, None)
    }

    fn param_of(json: serde_json::Value) -> Option<String> {
        create(json).unwrap_err().param
    }

    #[test]
    fn a_full_body_becomes_a_new_lead() {
        let lead = create(serde_json::json!({
            "account_id": COMPANY, "user_id": USER, "product_id": "prod_aaaaaaaaaaaaa",
            "referrer": "https://example.com", "metadata": {"b": 1, "a": [true]},
        }))
        .unwrap();
        assert_eq!(lead.company.as_str(), COMPANY);
        assert_eq!(lead.metadata.unwrap().as_str(), r#"{"a":[true],"b":1}"#);
        assert_eq!(lead.referrer.unwrap().as_str(), "https://example.com");
    }

    #[test]
    fn each_bad_field_is_named() {
        use serde_json::json;
        assert_eq!(
            param_of(json!({"user_id": USER})).as_deref(),
            Some("company_id")
        );
        assert_eq!(
            param_of(
                json!({"company_id": COMPANY, "account_id": "biz_bbbbbbbbbbbbbb", "user_id": USER})
            )
            .as_deref(),
            Some("account_id")
        );
        assert_eq!(
            param_of(json!({"account_id": "", "user_id": USER})).as_deref(),
            Some("account_id")
        );
        assert_eq!(
            param_of(json!({"company_id": COMPANY})).as_deref(),
            Some("user_id")
        );
        assert_eq!(
            param_of(json!({"company_id": COMPANY, "user_id": "x".repeat(256)})).as_deref(),
            Some("user_id")
        );
        assert_eq!(
            param_of(json!({"company_id": COMPANY, "user_id": USER, "product_id": "a\tb"}))
                .as_deref(),
            Some("product_id")
        );
        assert_eq!(
            param_of(json!({"company_id": COMPANY, "user_id": USER, "referrer": "a\u{1}"}))
                .as_deref(),
            Some("referrer")
        );
        for metadata in [json!([]), json!("x"), json!(1)] {
            assert_eq!(
                param_of(json!({"company_id": COMPANY, "user_id": USER, "metadata": metadata}))
                    .as_deref(),
                Some("metadata")
            );
        }
    }

    #[test]
    fn ids_whop_would_accept_are_taken_and_integers_mean_their_digits() {
        let lead = create(serde_json::json!({
            "company_id": 4, "account_id": "4", "user_id": "VXNlci0xMA==", "product_id": 12,
        }))
        .unwrap();
        assert_eq!(lead.company.as_str(), "4");
        assert_eq!(lead.user.as_str(), "VXNlci0xMA==");
        assert_eq!(lead.product.unwrap().as_str(), "12");
    }

    #[test]
    fn an_update_tells_left_out_from_null() {
        let change = lead_change(parse(br#"{"referrer": null}"#).unwrap()).unwrap();
        assert_eq!(change.referrer, Some(None));
        assert_eq!(change.metadata, None);
        let change = lead_change(parse(br#"{"metadata": {"x": 1}}"#).unwrap()).unwrap();
        assert_eq!(change.metadata.unwrap().unwrap().as_str(), r#"{"x":1}"#);
        assert_eq!(change.referrer, None);
        let error = lead_change(parse(br#"{"metadata": [1]}"#).unwrap()).unwrap_err();
        assert_eq!(error.param.as_deref(), Some("metadata"));
    }
}
