//! Integration tests of vcluster-core, one module per concern, built as a
//! single test binary so the crate graph is linked once.

mod golden;
mod naming_props;
mod objects;
mod ownership;
mod selector_props;
mod selector_syntax;
mod translation_props;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use vcluster_core::SingleNamespaceTranslator;

/// Virtual cluster name used throughout the tests.
pub const VC: &str = "my-vc";
/// Host namespace used throughout the tests.
pub const HOST_NS: &str = "vcluster-my-vc";

/// The translator most tests use.
pub fn translator() -> SingleNamespaceTranslator {
    SingleNamespaceTranslator::new(VC, HOST_NS).expect("valid test names")
}

/// A label map from pairs.
pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Metadata of a virtual object.
pub fn meta(namespace: Option<&str>, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        ..Default::default()
    }
}
