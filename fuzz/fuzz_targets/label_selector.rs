//! Label selectors (`?labelSelector=`): parsing never panics, and a parsed
//! selector prints in a canonical form that parses back to the same
//! selector, whose matching never panics.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use vcluster_core::Selector;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(selector) = Selector::parse(text) else {
        return;
    };
    let printed = selector.to_string();
    match Selector::parse(&printed) {
        Ok(again) => assert_eq!(again, selector, "{text:?} printed as {printed:?}"),
        Err(err) => panic!("{text:?} printed as {printed:?}, which does not parse: {err}"),
    }
    let labels: BTreeMap<String, String> = [("app", "web"), ("tier", "1"), ("a.b/c", "")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let _ = selector.matches(&labels);
    let _ = selector.matches(&BTreeMap::new());
});
