//! Kubernetes name, label key and label value rules.
//!
//! These are the checks kube-apiserver applies (`IsDNS1123Label`,
//! `IsDNS1123Subdomain`, `IsQualifiedName`, `IsValidLabelValue`). The
//! translator uses them to refuse input the host would reject anyway, and the
//! API server reuses them to validate what tenants write. The `is_*`
//! functions never allocate; the `validate_*` functions build an [`Error`]
//! only on failure.

use crate::error::{Error, Result};

/// Longest DNS-1123 label, label value and label-key name part.
pub const MAX_LABEL_LENGTH: usize = 63;
/// Longest DNS-1123 subdomain (and label-key prefix).
pub const MAX_SUBDOMAIN_LENGTH: usize = 253;

const LABEL_CHARS: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric \
     characters or '-', and must start and end with an alphanumeric character \
     (e.g. 'my-name' or '123-abc')";
const SUBDOMAIN_CHARS: &str = "a lowercase RFC 1123 subdomain must consist of lower case \
     alphanumeric characters, '-' or '.', and every dot-separated part must start and end \
     with an alphanumeric character (e.g. 'example.com')";
const NAME_PART_CHARS: &str = "must consist of alphanumeric characters, '-', '_' or '.', and \
     must start and end with an alphanumeric character (e.g. 'MyName', 'my.name' or '123-abc')";

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
    !s.is_empty()
        && s.len() <= MAX_SUBDOMAIN_LENGTH
        && s.as_bytes().split(|&b| b == b'.').all(is_label_shape)
}

/// True if `key` is a valid label key (a Kubernetes qualified name).
pub fn is_label_key(key: &str) -> bool {
    label_key_problem(key).is_none()
}

/// True if `value` is a valid label value (empty is allowed).
pub fn is_label_value(value: &str) -> bool {
    value.is_empty() || (value.len() <= MAX_LABEL_LENGTH && is_name_part_shape(value.as_bytes()))
}

/// Checks that `value` is a DNS-1123 label; `what` names it in the error.
pub fn validate_dns1123_label(what: &'static str, value: &str) -> Result<()> {
    if is_dns1123_label(value) {
        return Ok(());
    }
    let reason = if value.is_empty() {
        "must not be empty".to_owned()
    } else if value.len() > MAX_LABEL_LENGTH {
        format!("must be no more than {MAX_LABEL_LENGTH} characters")
    } else {
        LABEL_CHARS.to_owned()
    };
    Err(Error::InvalidName {
        what,
        value: value.to_owned(),
        reason,
    })
}

/// Checks that `value` is a DNS-1123 subdomain; `what` names it in the error.
pub fn validate_dns1123_subdomain(what: &'static str, value: &str) -> Result<()> {
    if is_dns1123_subdomain(value) {
        return Ok(());
    }
    let reason = if value.is_empty() {
        "must not be empty".to_owned()
    } else if value.len() > MAX_SUBDOMAIN_LENGTH {
        format!("must be no more than {MAX_SUBDOMAIN_LENGTH} characters")
    } else {
        SUBDOMAIN_CHARS.to_owned()
    };
    Err(Error::InvalidName {
        what,
        value: value.to_owned(),
        reason,
    })
}

/// Returns why `key` is not a qualified name, or `None` if it is one.
fn label_key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if name.contains('/') {
            return Some(
                "a qualified name is an optional DNS subdomain prefix and '/' followed by a \
                 name (e.g. 'example.com/MyName'); it must contain at most one '/'"
                    .to_owned(),
            );
        }
        if prefix.is_empty() {
            return Some("prefix part must not be empty".to_owned());
        }
        if prefix.len() > MAX_SUBDOMAIN_LENGTH {
            return Some(format!(
                "prefix part must be no more than {MAX_SUBDOMAIN_LENGTH} characters"
            ));
        }
        if !is_dns1123_subdomain(prefix) {
            return Some(format!("prefix part: {SUBDOMAIN_CHARS}"));
        }
    }
    if name.is_empty() {
        return Some("name part must not be empty".to_owned());
    }
    if name.len() > MAX_LABEL_LENGTH {
        return Some(format!(
            "name part must be no more than {MAX_LABEL_LENGTH} characters"
        ));
    }
    if !is_name_part_shape(name.as_bytes()) {
        return Some(format!("name part {NAME_PART_CHARS}"));
    }
    None
}

/// Checks that `key` is a valid label key: an optional DNS-1123 subdomain
/// prefix and `/`, then a name of at most 63 characters.
pub fn validate_label_key(key: &str) -> Result<()> {
    match label_key_problem(key) {
        None => Ok(()),
        Some(reason) => Err(Error::InvalidLabelKey {
            key: key.to_owned(),
            reason,
        }),
    }
}

/// Checks that `value` is a valid value for label `key` (the key only gives
/// the error context).
pub fn validate_label_value(key: &str, value: &str) -> Result<()> {
    if is_label_value(value) {
        return Ok(());
    }
    let reason = if value.len() > MAX_LABEL_LENGTH {
        format!("must be no more than {MAX_LABEL_LENGTH} characters")
    } else {
        format!("a label value must be empty or it {NAME_PART_CHARS}")
    };
    Err(Error::InvalidLabelValue {
        key: key.to_owned(),
        value: value.to_owned(),
        reason,
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
}
