//! The selector string syntax: printing parses back, and no input panics.

use proptest::prelude::*;
use vcluster_core::{Error, Operator, Selector};

use crate::selector_props::selector;

proptest! {
    #[test]
    fn display_parses_back_to_the_same_selector(s in selector(true)) {
        let printed = s.to_string();
        prop_assert_eq!(Selector::parse(&printed), Ok(s.clone()));
        // Extra whitespace around tokens changes nothing.
        let spaced = printed
            .replace(',', " , ")
            .replace("!=", " != ")
            .replace(" in (", "  in  ( ")
            .replace(')', " ) ");
        prop_assert_eq!(Selector::parse(&spaced), Ok(s));
    }

    #[test]
    fn parsing_never_panics_and_accepted_input_round_trips(input in any::<String>()) {
        if let Ok(s) = Selector::parse(&input) {
            prop_assert_eq!(Selector::parse(&s.to_string()), Ok(s));
        }
    }

    #[test]
    fn parsing_selector_like_noise_never_panics(input in "[a!=(),<> in0-9.-]{0,24}") {
        match Selector::parse(&input) {
            Ok(s) => prop_assert_eq!(Selector::parse(&s.to_string()), Ok(s)),
            Err(Error::InvalidSelector { position, .. }) => prop_assert!(position <= input.len()),
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }
}

#[test]
fn parsed_selectors_match_like_kubectl() {
    let s = Selector::parse("app=web, tier notin (cache), !legacy, n>1").expect("valid");
    assert_eq!(s.requirements().len(), 4);
    assert_eq!(s.requirements()[3].operator(), Operator::NotIn);
    let yes = crate::labels(&[("app", "web"), ("n", "2")]);
    let no_legacy = crate::labels(&[("app", "web"), ("n", "2"), ("legacy", "")]);
    let no_cache = crate::labels(&[("app", "web"), ("n", "2"), ("tier", "cache")]);
    let no_int = crate::labels(&[("app", "web"), ("n", "two")]);
    assert!(s.matches(&yes));
    assert!(!s.matches(&no_legacy));
    assert!(!s.matches(&no_cache));
    assert!(!s.matches(&no_int));
    assert_eq!(
        "app=web".parse::<Selector>().map(|s| s.to_string()),
        Ok("app=web".into())
    );
}

#[test]
fn errors_say_where_and_why() {
    let err = Selector::parse("app=web,tier in cache").expect_err("invalid");
    assert_eq!(
        err.to_string(),
        "invalid label selector \"app=web,tier in cache\" at byte 16: found \"cache\", expected '('"
    );
    let err = Selector::parse("app=web,Bad/key=x").expect_err("invalid");
    match err {
        Error::InvalidSelector {
            position, reason, ..
        } => {
            assert_eq!(position, 8);
            assert!(reason.contains("invalid label key \"Bad/key\""), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}
