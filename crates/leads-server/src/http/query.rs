//! The query string of `GET /leads`, parsed once into validated types.
//!
//! Parsed by hand rather than by a deserializer because the SDKs send things a generic parser
//! rejects: arrays as `product_ids[]=a` or `product_ids=a` (both must work), `null` as an empty
//! value, and parameters of other API versions that must be ignored.

use super::error::ApiError;
use crate::domain::{CompanyId, EmailQuery, LeadSearch, ProductId, SearchQuery, Timestamp};
use crate::pagination::{CursorCodec, Direction, PageRequest, PageSize};
use crate::storage::LeadFilter;
use std::borrow::Cow;

/// At most this many `product_ids` in one request.
pub const MAX_PRODUCT_IDS: usize = 100;

/// The list parameters as sent, before anything that needs the company (cursors) is checked.
#[derive(Debug, Default)]
struct RawParams {
    company_id: Option<(&'static str, String)>,
    first: Option<String>,
    last: Option<String>,
    after: Option<String>,
    before: Option<String>,
    created_after: Option<String>,
    created_before: Option<String>,
    product_ids: Vec<String>,
    query: Option<String>,
    email: Option<String>,
}

/// A validated list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    pub filter: LeadFilter,
    pub page: PageRequest,
}

fn set_once(slot: &mut Option<String>, name: &str, value: String) -> Result<(), ApiError> {
    if slot.replace(value).is_some() {
        return Err(ApiError::repeated(name));
    }
    Ok(())
}

fn is_array_key(key: &str, name: &str) -> bool {
    key.strip_prefix(name).is_some_and(|rest| {
        rest.is_empty()
            || (rest.starts_with('[')
                && rest.ends_with(']')
                && rest[1..rest.len() - 1].bytes().all(|b| b.is_ascii_digit()))
    })
}

/// A decoded `name=value` pair of a query string.
pub type QueryPair<'a> = (Cow<'a, str>, Cow<'a, str>);

/// The `name=value` pairs of a URL query string, decoded as `application/x-www-form-urlencoded`
/// is (the WHATWG URL Standard's urlencoded parser: pairs split on `&`, `+` a space, `%XX` a
/// byte), in order. Unlike that parser, which puts U+FFFD in place of bytes that are not UTF-8,
/// such a name or value is a 400 naming it: a search or filter for text nobody sent would
/// quietly answer nothing.
pub fn query_pairs(query: &str) -> Result<Vec<QueryPair<'_>>, ApiError> {
    fn decode(text: &str) -> Result<Cow<'_, str>, std::str::Utf8Error> {
        if text.contains('+') {
            let spaced = text.replace('+', " ");
            let decoded = percent_encoding::percent_decode_str(&spaced).decode_utf8()?;
            return Ok(Cow::Owned(decoded.into_owned()));
        }
        percent_encoding::percent_decode_str(text).decode_utf8()
    }
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name).map_err(|_| {
                ApiError::invalid(
                    "query",
                    "a parameter name is not UTF-8 once percent-decoded",
                )
            })?;
            let value = decode(value)
                .map_err(|_| ApiError::invalid(&name, "is not UTF-8 once percent-decoded"))?;
            Ok((name, value))
        })
        .collect()
}

fn parse_raw(query: &str) -> Result<RawParams, ApiError> {
    let mut raw = RawParams::default();
    for (key, value) in query_pairs(query)? {
        // An empty value means "not given": the TypeScript SDK sends null that way.
        if value.is_empty() {
            continue;
        }
        let value = value.into_owned();
        match key.as_ref() {
            name @ ("company_id" | "account_id") => {
                let name = if name == "company_id" {
                    "company_id"
                } else {
                    "account_id"
                };
                match &raw.company_id {
                    Some((_, existing)) if *existing != value => {
                        return Err(ApiError::invalid(
                            name,
                            "names a different company than company_id/account_id given before",
                        ))
                    }
                    _ => raw.company_id = Some((name, value)),
                }
            }
            "first" => set_once(&mut raw.first, "first", value)?,
            "last" => set_once(&mut raw.last, "last", value)?,
            "after" => set_once(&mut raw.after, "after", value)?,
            "before" => set_once(&mut raw.before, "before", value)?,
            "created_after" => set_once(&mut raw.created_after, "created_after", value)?,
            "created_before" => set_once(&mut raw.created_before, "created_before", value)?,
            "query" => set_once(&mut raw.query, "query", value)?,
            "email" => set_once(&mut raw.email, "email", value)?,
            key if is_array_key(key, "product_ids") => {
                if raw.product_ids.len() == MAX_PRODUCT_IDS {
                    return Err(ApiError::invalid(
                        "product_ids",
                        format_args!("at most {MAX_PRODUCT_IDS} product ids may be given"),
                    ));
                }
                raw.product_ids.push(value);
            }
            _ => {} // Parameters of other API versions are ignored.
        }
    }
    Ok(raw)
}

pub(super) fn page_size(name: &str, value: &str) -> Result<PageSize, ApiError> {
    value
        .parse::<i64>()
        .ok()
        .and_then(PageSize::new)
        .ok_or_else(|| ApiError::invalid(name, "must be an integer from 1 to 100"))
}

/// `created_after`/`created_before` as exclusive millisecond bounds. Digits below the
/// millisecond round the bound outwards so no lead inside the given instant range is lost.
pub(super) fn time_bound(name: &str, value: &str, round_up: bool) -> Result<i64, ApiError> {
    let (ts, sub_milli) = Timestamp::parse_with_rest(value).ok_or_else(|| {
        ApiError::invalid(
            name,
            "must be an RFC 3339 date-time such as 2023-12-01T05:00:00.401Z",
        )
    })?;
    let millis = ts.as_millis();
    Ok(if round_up && sub_milli {
        millis + 1
    } else {
        millis
    })
}

impl ListRequest {
    /// Validates a raw query string; cursors are checked against the named company.
    pub fn parse(query: &str, cursors: &CursorCodec) -> Result<Self, ApiError> {
        let raw = parse_raw(query)?;
        let (company_param, company_text) = raw
            .company_id
            .ok_or_else(|| ApiError::missing("company_id"))?;
        let company =
            CompanyId::parse(&company_text).map_err(|why| ApiError::invalid(company_param, why))?;
        let (size, direction) = match (&raw.first, &raw.last) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid("last", "cannot be combined with first"))
            }
            (Some(first), None) => (page_size("first", first)?, Direction::Forward),
            (None, Some(last)) => (page_size("last", last)?, Direction::Backward),
            (None, None) => (PageSize::default(), Direction::Forward),
        };
        let query = raw
            .query
            .as_deref()
            .map(SearchQuery::parse)
            .transpose()
            .map_err(|why| ApiError::invalid("query", why))?;
        let email = raw
            .email
            .as_deref()
            .map(EmailQuery::parse)
            .transpose()
            .map_err(|why| ApiError::invalid("email", why))?;
        // Whether emails may be searched is the credential's to say; the handler sets it.
        let search = (query.is_some() || email.is_some()).then_some(LeadSearch {
            query,
            email,
            emails_visible: false,
        });
        let scope = search
            .as_ref()
            .map(LeadSearch::cursor_scope)
            .unwrap_or_default();
        let cursor = |name: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(|text| {
                    cursors
                        .decode_scoped(&company, &scope, text)
                        .map_err(|e| ApiError::invalid(name, e))
                })
                .transpose()
        };
        let page = PageRequest {
            size,
            direction,
            after: cursor("after", &raw.after)?,
            before: cursor("before", &raw.before)?,
        };
        let mut products = Vec::with_capacity(raw.product_ids.len());
        for text in &raw.product_ids {
            // Any id is accepted; one that names no product of the company matches no lead.
            let id = ProductId::parse(text)
                .map_err(|why| ApiError::invalid("product_ids", format_args!("each id {why}")))?;
            if !products.contains(&id) {
                products.push(id);
            }
        }
        let created_after = raw
            .created_after
            .as_deref()
            .map(|v| time_bound("created_after", v, false))
            .transpose()?;
        let created_before = raw
            .created_before
            .as_deref()
            .map(|v| time_bound("created_before", v, true))
            .transpose()?;
        Ok(Self {
            filter: LeadFilter {
                company,
                products,
                created_after,
                created_before,
                search,
            },
            page,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPANY: &str = "biz_aaaaaaaaaaaaaa";

    fn parse(query: &str) -> Result<ListRequest, ApiError> {
        ListRequest::parse(query, &CursorCodec::new(b"k"))
    }

    fn param_of(query: &str) -> Option<String> {
        parse(query).unwrap_err().param
    }

    #[test]
    fn both_array_forms_and_account_id_are_understood() {
        let q = format!(
            "account_id={COMPANY}&product_ids%5B%5D=prod_aaaaaaaaaaaaa&product_ids=prod_bbbbbbbbbbbbb&product_ids[2]=prod_aaaaaaaaaaaaa"
        );
        let request = parse(&q).unwrap();
        assert_eq!(request.filter.company.as_str(), COMPANY);
        assert_eq!(request.filter.products.len(), 2);
    }

    #[test]
    fn empty_values_mean_not_given_and_unknown_keys_are_ignored() {
        let request = parse(&format!("company_id={COMPANY}&first=&after=&whatever=1")).unwrap();
        assert_eq!(request.page, PageRequest::default());
    }

    #[test]
    fn bad_values_name_their_parameter() {
        assert_eq!(param_of("first=2").as_deref(), Some("company_id"));
        assert_eq!(param_of("company_id=a%01b").as_deref(), Some("company_id"));
        let long = "x".repeat(256);
        assert_eq!(
            param_of(&format!("account_id={long}")).as_deref(),
            Some("account_id")
        );
        for bad in ["0", "-1", "101", "abc", "1.5"] {
            assert_eq!(
                param_of(&format!("company_id={COMPANY}&first={bad}")).as_deref(),
                Some("first")
            );
            assert_eq!(
                param_of(&format!("company_id={COMPANY}&last={bad}")).as_deref(),
                Some("last")
            );
        }
        assert_eq!(
            param_of(&format!("company_id={COMPANY}&first=1&last=1")).as_deref(),
            Some("last")
        );
        assert_eq!(
            param_of(&format!("company_id={COMPANY}&after=nope")).as_deref(),
            Some("after")
        );
        assert_eq!(
            param_of(&format!("company_id={COMPANY}&created_after=2023-13-01")).as_deref(),
            Some("created_after")
        );
        assert_eq!(
            param_of(&format!("company_id={COMPANY}&product_ids[]=a%0Ab")).as_deref(),
            Some("product_ids")
        );
        assert_eq!(
            param_of(&format!("company_id={COMPANY}&product_ids={long}")).as_deref(),
            Some("product_ids")
        );
        let many: String = (0..101)
            .map(|_| "&product_ids[]=prod_aaaaaaaaaaaaa")
            .collect();
        assert_eq!(
            param_of(&format!("company_id={COMPANY}{many}")).as_deref(),
            Some("product_ids")
        );
    }

    #[test]
    fn any_id_whop_would_accept_is_taken_as_given() {
        let request = parse(
            "company_id=4&product_ids[]=4&product_ids[]=VXNlci0xMA%3D%3D&product_ids[]=prod_doesnotexist00",
        )
        .unwrap();
        assert_eq!(request.filter.company.as_str(), "4");
        let products: Vec<&str> = request.filter.products.iter().map(|p| p.as_str()).collect();
        assert_eq!(products, ["4", "VXNlci0xMA==", "prod_doesnotexist00"]);
    }

    #[test]
    fn a_leap_second_bound_is_the_start_of_the_next_minute() {
        let request = parse(&format!(
            "company_id={COMPANY}&created_before=2026-06-22T00:52:60.500Z&created_after=2026-06-22T00:52:60.500Z"
        ))
        .unwrap();
        let next_minute = Timestamp::parse("2026-06-22T00:53:00.000Z")
            .unwrap()
            .as_millis();
        assert_eq!(request.filter.created_before, Some(next_minute));
        assert_eq!(request.filter.created_after, Some(next_minute));
    }

    #[test]
    fn a_sub_millisecond_upper_bound_keeps_the_lead_of_that_millisecond() {
        let request = parse(&format!(
            "company_id={COMPANY}&created_before=2023-12-01T05:00:00.4015Z&created_after=2023-12-01T05:00:00.4015Z"
        ))
        .unwrap();
        assert_eq!(request.filter.created_before, Some(1_701_406_800_402));
        assert_eq!(request.filter.created_after, Some(1_701_406_800_401));
    }
}
