//! Cursor decoding never panics, and accepts only what this server's codec made.
#![no_main]

use leads_server::domain::CompanyId;
use leads_server::pagination::CursorCodec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let codec = CursorCodec::new(b"fuzzing secret");
    let company = CompanyId::parse("biz_aaaaaaaaaaaaaa").unwrap();
    if let Ok(position) = codec.decode(&company, text) {
        // Anything accepted must be exactly what encoding that position gives.
        assert_eq!(codec.encode(&company, &position), text);
    }
});
