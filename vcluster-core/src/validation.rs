//! Kubernetes name, label key and label value rules.
//!
//! These are the checks kube-apiserver applies (`IsDNS1123Label`,
//! `IsDNS1123Subdomain`, `IsDNS1035Label`, `IsQualifiedName`,
//! `IsValidLabelValue`, `IsValidPathSegmentName`), with upstream's messages
//! word for word, so an error the virtual API server returns reads as a real
//! cluster's. The translator uses them to refuse input the host would reject
//! anyway, and the API server validates what tenants write with them: one
//! set of rules for the whole workspace.
//!
//! Three forms of each rule: `is_*` answers yes or no without allocating;
//! `*_errors` lists every problem in upstream's words (empty when valid), for
//! `metav1.Status` causes; `validate_*` wraps the problems in a typed
//! [`Error`] naming what was checked.
//!
//! ```
//! use vcluster_core::validation::{dns1123_label_errors, is_label_value};
//!
//! assert!(dns1123_label_errors("web-1").is_empty());
//! assert_eq!(dns1123_label_errors("web.1"), ["must not contain dots"]);
//! assert!(!is_label_value("-x"));
//! ```

use crate::error::{Error, Result};

/// Longest DNS-1123 label, label value and label-key name part.
pub const MAX_LABEL_LENGTH: usize = 63;
/// Longest DNS-1123 subdomain (and label-key prefix).
pub const MAX_SUBDOMAIN_LENGTH: usize = 253;

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case \
     alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case \
     alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const WILDCARD_DNS1123_SUBDOMAIN_MSG: &str = "a wildcard DNS-1123 subdomain must start with \
     '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric \
     characters, '-' or '.' and end with an alphanumeric character";
const WILDCARD_DNS1123_SUBDOMAIN_FMT: &str =
    "\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric \
     characters or '-', start with an alphabetic character, and end with an alphanumeric \
     character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and \
     must start and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric \
     characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";

/// Upstream's `RegexError`: the rule, examples, and the regular expression.
fn regex_error(message: &str, format: &str, examples: &[&str]) -> String {
    let mut out = message.to_owned();
    if examples.is_empty() {
        out.push_str(" (regex used for validation is '");
    } else {
        out.push_str(" (e.g. ");
        for (i, example) in examples.iter().enumerate() {
            if i > 0 {
                out.push_str(" or ");
            }
            out.push('\'');
            out.push_str(example);
            out.push_str("', ");
        }
        out.push_str("regex used for validation is '");
    }
    out.push_str(format);
    out.push_str("')");
    out
}

/// Upstream's `MaxLenError`.
fn max_len_error(max: usize) -> String {
    format!("must be no more than {max} characters")
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?` without a length limit.
fn is_label_shape(s: &[u8]) -> bool {
    match (s.first(), s.last()) {
        (Some(&first), Some(&last)) => {
            is_lower_alnum(first)
                && is_lower_alnum(last)
                && s.iter().all(|&b| is_lower_alnum(b) || b == b'-')
        }
        _ => false,
    }
}

/// A DNS-1123 subdomain without a length limit.
fn is_subdomain_shape(s: &[u8]) -> bool {
    !s.is_empty() && s.split(|&b| b == b'.').all(is_label_shape)
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`: label-key names and values.
fn is_name_part_shape(s: &[u8]) -> bool {
    match (s.first(), s.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && s.iter()
                    .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// True if `s` is a DNS-1123 label: what namespaces, most names and the
/// virtual cluster name must be.
pub fn is_dns1123_label(s: &str) -> bool {
    s.len() <= MAX_LABEL_LENGTH && is_label_shape(s.as_bytes())
}

/// True if `s` is a DNS-1123 subdomain: what most object names must be.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= MAX_SUBDOMAIN_LENGTH && is_subdomain_shape(s.as_bytes())
}

/// True if `key` is a valid label key (a Kubernetes qualified name).
pub fn is_label_key(key: &str) -> bool {
    qualified_name_errors(key).is_empty()
}

/// True if `value` is a valid label value (empty is allowed).
pub fn is_label_value(value: &str) -> bool {
    value.is_empty() || (value.len() <= MAX_LABEL_LENGTH && is_name_part_shape(value.as_bytes()))
}

/// Why `value` is not a DNS-1123 label (upstream's `IsDNS1123Label`).
pub fn dns1123_label_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > MAX_LABEL_LENGTH {
        errors.push(max_len_error(MAX_LABEL_LENGTH));
    }
    if !is_label_shape(value.as_bytes()) {
        if is_subdomain_shape(value.as_bytes()) {
            errors.push("must not contain dots".to_owned());
        } else {
            errors.push(regex_error(
                DNS1123_LABEL_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errors
}

/// Why `value` is not a DNS-1123 subdomain (upstream's `IsDNS1123Subdomain`).
pub fn dns1123_subdomain_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > MAX_SUBDOMAIN_LENGTH {
        errors.push(max_len_error(MAX_SUBDOMAIN_LENGTH));
    }
    if !is_subdomain_shape(value.as_bytes()) {
        errors.push(regex_error(
            DNS1123_SUBDOMAIN_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errors
}

/// Why `value` is not a wildcard DNS-1123 subdomain, `*.` and a
/// subdomain (upstream's `IsWildcardDNS1123Subdomain`, for ingress hosts).
pub fn wildcard_dns1123_subdomain_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > MAX_SUBDOMAIN_LENGTH {
        errors.push(max_len_error(MAX_SUBDOMAIN_LENGTH));
    }
    let shaped = value
        .strip_prefix("*.")
        .is_some_and(|rest| is_subdomain_shape(rest.as_bytes()));
    if !shaped {
        errors.push(regex_error(
            WILDCARD_DNS1123_SUBDOMAIN_MSG,
            WILDCARD_DNS1123_SUBDOMAIN_FMT,
            &["*.example.com"],
        ));
    }
    errors
}

/// Why `value` is not a DNS-1035 label, the rule for service names
/// (upstream's `IsDNS1035Label`).
pub fn dns1035_label_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > MAX_LABEL_LENGTH {
        errors.push(max_len_error(MAX_LABEL_LENGTH));
    }
    let starts_alpha = value.as_bytes().first().is_some_and(u8::is_ascii_lowercase);
    if !(starts_alpha && is_label_shape(value.as_bytes())) {
        errors.push(regex_error(
            DNS1035_LABEL_MSG,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errors
}

/// Why `value` cannot be a name that is a URL path segment, the rule for
/// RBAC object names (upstream's `IsValidPathSegmentName`).
pub fn path_segment_name_errors(value: &str) -> Vec<String> {
    if let Some(whole) = [".", ".."].into_iter().find(|&bad| value == bad) {
        return vec![format!("may not be '{whole}'")];
    }
    ["/", "%"]
        .into_iter()
        .filter(|part| value.contains(part))
        .map(|part| format!("may not contain '{part}'"))
        .collect()
}

/// Why `key` is not a qualified name, the rule for label and annotation
/// keys (upstream's `IsQualifiedName`).
pub fn qualified_name_errors(key: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_owned());
            } else {
                errors.extend(
                    dns1123_subdomain_errors(prefix)
                        .into_iter()
                        .map(|e| format!("prefix part {e}")),
                );
            }
            *name
        }
        _ => {
            errors.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. \
                 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_MSG,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errors;
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_owned());
    } else if name.len() > MAX_LABEL_LENGTH {
        errors.push(format!("name part {}", max_len_error(MAX_LABEL_LENGTH)));
    }
    if !is_name_part_shape(name.as_bytes()) {
        errors.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errors
}

/// Why `value` is not a label value (upstream's `IsValidLabelValue`).
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > MAX_LABEL_LENGTH {
        errors.push(max_len_error(MAX_LABEL_LENGTH));
    }
    if !value.is_empty() && !is_name_part_shape(value.as_bytes()) {
        errors.push(regex_error(
            LABEL_VALUE_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errors
}

fn invalid_name(what: &'static str, value: &str, errors: Vec<String>) -> Result<()> {
    if errors.is_empty() {
        return Ok(());
    }
    Err(Error::InvalidName {
        what,
        value: value.to_owned(),
        reason: errors.join("; "),
    })
}

/// Checks that `value` is a DNS-1123 label; `what` names it in the error.
pub fn validate_dns1123_label(what: &'static str, value: &str) -> Result<()> {
    if is_dns1123_label(value) {
        return Ok(());
    }
    invalid_name(what, value, dns1123_label_errors(value))
}

/// Checks that `value` is a DNS-1123 subdomain; `what` names it in the error.
pub fn validate_dns1123_subdomain(what: &'static str, value: &str) -> Result<()> {
    if is_dns1123_subdomain(value) {
        return Ok(());
    }
    invalid_name(what, value, dns1123_subdomain_errors(value))
}

/// Checks that `key` is a valid label key: an optional DNS-1123 subdomain
/// prefix and `/`, then a name of at most 63 characters.
pub fn validate_label_key(key: &str) -> Result<()> {
    let errors = qualified_name_errors(key);
    if errors.is_empty() {
        return Ok(());
    }
    Err(Error::InvalidLabelKey {
        key: key.to_owned(),
        reason: errors.join("; "),
    })
}

/// Checks that `value` is a valid value for label `key` (the key only gives
/// the error context).
pub fn validate_label_value(key: &str, value: &str) -> Result<()> {
    if is_label_value(value) {
        return Ok(());
    }
    Err(Error::InvalidLabelValue {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: label_value_errors(value).join("; "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns1123_labels() {
        for ok in ["a", "0", "a-b", "abc-123", &"a".repeat(63)] {
            assert!(is_dns1123_label(ok), "{ok:?}");
            assert!(validate_dns1123_label("name", ok).is_ok());
        }
        for bad in ["", "-a", "a-", "A", "a.b", "a_b", "ä", &"a".repeat(64)] {
            assert!(!is_dns1123_label(bad), "{bad:?}");
            assert!(matches!(
                validate_dns1123_label("name", bad),
                Err(Error::InvalidName { what: "name", .. })
            ));
        }
    }

    #[test]
    fn dns1123_subdomains() {
        for ok in ["a", "a.b", "a-b.c-d.e", "example.com", &"a".repeat(253)] {
            assert!(is_dns1123_subdomain(ok), "{ok:?}");
        }
        for bad in [
            "",
            ".",
            "a.",
            ".a",
            "a..b",
            "a-.b",
            "a.-b",
            "A.b",
            &"a".repeat(254),
        ] {
            assert!(!is_dns1123_subdomain(bad), "{bad:?}");
            assert!(validate_dns1123_subdomain("name", bad).is_err());
        }
    }

    #[test]
    fn label_keys() {
        for ok in [
            "app",
            "App_Name.v1",
            "example.com/app",
            "vcluster.loft.sh/managed-by",
            "a/b",
            &"a".repeat(63),
        ] {
            assert!(is_label_key(ok), "{ok:?}");
            assert!(validate_label_key(ok).is_ok());
        }
        for bad in [
            "",
            "/a",
            "a/",
            "a/b/c",
            "-a",
            "a-",
            "Example.com/a",
            "a b",
            &"a".repeat(64),
            &format!("{}/a", "a".repeat(254)),
        ] {
            assert!(!is_label_key(bad), "{bad:?}");
            match validate_label_key(bad) {
                Err(Error::InvalidLabelKey { key, .. }) => assert_eq!(key, bad),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn label_values() {
        for ok in ["", "a", "A.b_c-1", &"a".repeat(63)] {
            assert!(is_label_value(ok), "{ok:?}");
            assert!(validate_label_value("k", ok).is_ok());
        }
        for bad in ["-a", "a-", "a b", "a/b", &"a".repeat(64)] {
            assert!(!is_label_value(bad), "{bad:?}");
            assert!(matches!(
                validate_label_value("k", bad),
                Err(Error::InvalidLabelValue { .. })
            ));
        }
    }

    #[test]
    fn messages_are_upstreams_word_for_word() {
        assert_eq!(
            dns1123_label_errors("Web"),
            ["a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]
        );
        assert_eq!(
            dns1123_label_errors(&"a".repeat(64)),
            ["must be no more than 63 characters"]
        );
        assert_eq!(
            dns1035_label_errors("1web"),
            ["a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"]
        );
        assert_eq!(
            qualified_name_errors("/a"),
            ["prefix part must be non-empty"]
        );
        assert_eq!(
            qualified_name_errors("a/b/c")[0],
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        );
        assert_eq!(
            label_value_errors("-x"),
            ["a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]
        );
        assert_eq!(path_segment_name_errors(".."), ["may not be '..'"]);
        assert_eq!(
            path_segment_name_errors("a/b%c"),
            ["may not contain '/'", "may not contain '%'"]
        );
        assert!(path_segment_name_errors("Any:Thing").is_empty());
    }

    #[test]
    fn wildcard_subdomains_start_with_a_star_label() {
        assert!(wildcard_dns1123_subdomain_errors("*.example.com").is_empty());
        assert_eq!(
            wildcard_dns1123_subdomain_errors("a.*.example.com"),
            ["a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]
        );
    }
}
