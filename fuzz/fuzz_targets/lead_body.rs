//! Create and update bodies: parsing never panics, and every refusal is a 400 or 413 naming
//! what was wrong, in the contract's shape.
#![no_main]

use leads_server::http::body::parse;
use leads_server::http::lead_bodies::{lead_change, new_lead};
use leads_types::{CreateLead, UpdateLead};
use libfuzzer_sys::fuzz_target;

fn refused_properly(error: leads_server::http::error::ApiError) {
    assert!(matches!(error.status.as_u16(), 400 | 413), "{error:?}");
    assert!(!error.message.is_empty());
}

fuzz_target!(|data: &[u8]| {
    match parse::<CreateLead>(data) {
        Ok(body) => {
            if let Err(error) = new_lead(body, None) {
                refused_properly(error);
            }
        }
        Err(error) => refused_properly(error),
    }
    match parse::<UpdateLead>(data) {
        Ok(body) => {
            if let Err(error) = lead_change(body) {
                refused_properly(error);
            }
        }
        Err(error) => refused_properly(error),
    }
});
