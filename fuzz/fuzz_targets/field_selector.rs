//! Field selectors (`?fieldSelector=`) for every built-in resource: parsing
//! never panics, and matching a sample object never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vcluster_apiserver::field_selector::FieldSelector;
use vcluster_apiserver::resources::Catalog;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let catalog = Catalog::builtin();
    let resources: Vec<_> = catalog.iter().collect();
    let resource = resources[usize::from(which) % resources.len()];
    if let Ok(selector) = FieldSelector::parse(text, resource) {
        let object = serde_json::json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"nodeName": "n1"},
            "status": {"phase": "Running"},
            "type": "kubernetes.io/tls",
        });
        let _ = selector.matches(&object);
        let _ = selector.matches(&serde_json::json!({}));
    }
});
