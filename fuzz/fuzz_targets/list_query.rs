//! Parsing `GET /leads` query strings never panics; whatever it accepts is within the rules.
#![no_main]

use leads_server::http::query::{ListRequest, MAX_PRODUCT_IDS};
use leads_server::pagination::CursorCodec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let codec = CursorCodec::new(b"fuzzing secret");
    match ListRequest::parse(query, &codec) {
        Ok(request) => {
            assert!(request.filter.products.len() <= MAX_PRODUCT_IDS);
            assert!((1..=100).contains(&request.page.size.get()));
        }
        Err(error) => {
            assert_eq!(error.status.as_u16(), 400);
            assert!(error.param.is_some());
        }
    }
});
