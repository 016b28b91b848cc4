//! YAML request bodies (`application/yaml`, server-side apply): deep flow
//! nesting and aliases are refused or bounded, never a crash or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vcluster_apiserver::request::negotiate::decode_document;

fuzz_target!(|data: &[u8]| {
    let body = bytes::Bytes::copy_from_slice(data);
    if let Ok(value) = decode_document(&body, true) {
        let _ = serde_json::to_vec(&value);
    }
});
