//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`):
//! the envelope, the schema-driven decoding of every known kind, unknown
//! and malformed fields, truncated varints, lengths beyond the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vcluster_apiserver::protobuf::decode_object;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = decode_object(data) {
        let _ = serde_json::to_vec(&value);
    }
});
