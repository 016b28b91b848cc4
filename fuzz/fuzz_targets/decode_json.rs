//! JSON request bodies (`Content-Type: application/json`): any input is a
//! value or a 400, never a panic, a stack overflow or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vcluster_apiserver::request::negotiate::decode_document;

fuzz_target!(|data: &[u8]| {
    let body = bytes::Bytes::copy_from_slice(data);
    if let Ok(value) = decode_document(&body, false) {
        // What was accepted encodes again (the server answers with it).
        let _ = serde_json::to_vec(&value);
    }
});
