//! Kubernetes label selectors as one reusable type.
//!
//! The API server needs them for `?labelSelector=`, the syncer for Service
//! and NetworkPolicy selectors, and the translator to rewrite them for the
//! host. [`Selector`] parses kubectl's string syntax, converts from and to
//! `metav1.LabelSelector`, prints back to the string syntax and matches label
//! sets with exactly the semantics of `k8s.io/apimachinery/pkg/labels`.

mod convert;
mod parse;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
/// The label rules selectors enforce, re-exported from [`crate::validation`].
pub use crate::validation::{
    is_label_key, is_label_value, validate_label_key, validate_label_value,
};

/// How a [`Requirement`] compares a label with its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operator {
    /// The label exists and its value is one of the values.
    In,
    /// The label is absent, or its value is none of the values.
    NotIn,
    /// The label exists and equals the single value (`=` or `==`).
    Equals,
    /// The label is absent, or differs from the single value (`!=`).
    NotEquals,
    /// The label exists, whatever its value.
    Exists,
    /// The label is absent (`!key`).
    DoesNotExist,
    /// The label exists, is an integer, and is greater than the single value.
    Gt,
    /// The label exists, is an integer, and is less than the single value.
    Lt,
}

impl Operator {
    /// The operator's name as `metav1.LabelSelectorRequirement` spells it
    /// (`"In"`, `"NotIn"`, `"Exists"`, `"DoesNotExist"`); the others use the
    /// names of apimachinery's `selection.Operator` constants.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::In => "In",
            Operator::NotIn => "NotIn",
            Operator::Equals => "Equals",
            Operator::NotEquals => "NotEquals",
            Operator::Exists => "Exists",
            Operator::DoesNotExist => "DoesNotExist",
            Operator::Gt => "Gt",
            Operator::Lt => "Lt",
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One condition on one label key. Built only through [`Requirement::new`],
/// so the key, the number of values and the values are always valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    key: String,
    operator: Operator,
    /// Sorted and de-duplicated; one value for Equals/NotEquals/Gt/Lt, none
    /// for Exists/DoesNotExist, at least one for In/NotIn.
    values: Vec<String>,
}

impl Requirement {
    /// Validates and builds a requirement, like apimachinery's
    /// `labels.NewRequirement`: the key must be a label key; `In`/`NotIn`
    /// need at least one value, `Equals`/`NotEquals`/`Gt`/`Lt` exactly one,
    /// `Exists`/`DoesNotExist` none; values must be label values, and the
    /// value of `Gt`/`Lt` an integer.
    pub fn new<I, V>(key: impl Into<String>, operator: Operator, values: I) -> Result<Self>
    where
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        let key = key.into();
        validate_label_key(&key)?;
        let mut values: Vec<String> = values.into_iter().map(Into::into).collect();
        let invalid = |reason: &str| Error::InvalidRequirement {
            key: key.clone(),
            operator: operator.as_str().to_owned(),
            reason: reason.to_owned(),
        };
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => {
                return Err(invalid("the set of values must not be empty"));
            }
            Operator::Equals | Operator::NotEquals if values.len() != 1 => {
                return Err(invalid("exactly one value is required"));
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                return Err(invalid("no values are allowed"));
            }
            Operator::Gt | Operator::Lt => {
                if values.len() != 1 {
                    return Err(invalid("exactly one value is required"));
                }
                if values.iter().any(|v| v.parse::<i64>().is_err()) {
                    return Err(invalid("the value must be an integer"));
                }
            }
            _ => {}
        }
        for value in &values {
            validate_label_value(&key, value)?;
        }
        values.sort_unstable();
        values.dedup();
        Ok(Requirement {
            key,
            operator,
            values,
        })
    }

    /// `key = value`.
    pub fn equals(key: impl Into<String>, value: impl Into<String>) -> Result<Self> {
        Requirement::new(key, Operator::Equals, [value.into()])
    }

    /// `key` exists.
    pub fn exists(key: impl Into<String>) -> Result<Self> {
        Requirement::new(key, Operator::Exists, Vec::<String>::new())
    }

    /// The same requirement on another key. Crate-internal: only used with
    /// keys that are valid by construction (translated keys).
    pub(crate) fn with_key(&self, key: String) -> Self {
        Requirement {
            key,
            operator: self.operator,
            values: self.values.clone(),
        }
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, sorted and without duplicates.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether `labels` satisfy this requirement (apimachinery semantics).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let label = labels.get(&self.key);
        let has_value = |v: &String| self.values.binary_search(v).is_ok();
        match self.operator {
            Operator::In | Operator::Equals => label.is_some_and(has_value),
            Operator::NotIn | Operator::NotEquals => !label.is_some_and(has_value),
            Operator::Exists => label.is_some(),
            Operator::DoesNotExist => label.is_none(),
            Operator::Gt | Operator::Lt => {
                let (Some(label), Some(bound)) = (label, self.values.first()) else {
                    return false;
                };
                match (label.parse::<i64>(), bound.parse::<i64>()) {
                    (Ok(l), Ok(b)) if self.operator == Operator::Gt => l > b,
                    (Ok(l), Ok(b)) => l < b,
                    _ => false,
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    /// The string syntax: `key`, `!key`, `key=v`, `key!=v`, `key>v`,
    /// `key<v`, `key in (a,b)`, `key notin (a,b)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.values.first().map(String::as_str).unwrap_or("");
        match self.operator {
            Operator::Exists => f.write_str(&self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
            Operator::Equals => write!(f, "{}={}", self.key, first),
            Operator::NotEquals => write!(f, "{}!={}", self.key, first),
            Operator::Gt => write!(f, "{}>{}", self.key, first),
            Operator::Lt => write!(f, "{}<{}", self.key, first),
            Operator::In | Operator::NotIn => {
                let op = if self.operator == Operator::In {
                    "in"
                } else {
                    "notin"
                };
                write!(f, "{} {} ({})", self.key, op, self.values.join(","))
            }
        }
    }
}

/// A conjunction of requirements; the empty selector matches everything.
///
/// Requirements are kept sorted by key (stably), as apimachinery does, so
/// equal selectors print equally.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// The selector that matches every label set.
    pub fn everything() -> Self {
        Selector::default()
    }

    /// A selector requiring all of `requirements`.
    pub fn new(requirements: impl IntoIterator<Item = Requirement>) -> Self {
        let mut requirements: Vec<Requirement> = requirements.into_iter().collect();
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Selector { requirements }
    }

    /// Parses kubectl's selector syntax, e.g. `app=web,tier in (a,b),!legacy`.
    /// An empty or blank string is [`Selector::everything`].
    pub fn parse(input: &str) -> Result<Self> {
        parse::parse(input)
    }

    /// The selector `key1=value1,key2=value2,...` of a plain map, as used by
    /// Service `spec.selector`.
    pub fn from_map(map: &BTreeMap<String, String>) -> Result<Self> {
        let requirements = map
            .iter()
            .map(|(k, v)| Requirement::equals(k.as_str(), v.as_str()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Selector::new(requirements))
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True for the selector that matches everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// This selector with one more requirement.
    pub fn and(mut self, requirement: Requirement) -> Self {
        let at = self
            .requirements
            .partition_point(|r| r.key.as_str() <= requirement.key.as_str());
        self.requirements.insert(at, requirement);
        self
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

impl fmt::Display for Selector {
    /// Requirements joined by `,`; parses back to an equal selector.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

impl FromStr for Selector {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Selector::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn requirement_semantics_follow_apimachinery() {
        let l = labels(&[("app", "web"), ("n", "5"), ("s", "x")]);
        let r = |k: &str, op, vals: &[&str]| Requirement::new(k, op, vals.iter().copied());
        let cases = [
            (r("app", Operator::In, &["web", "db"]), true),
            (r("gone", Operator::In, &["web"]), false),
            (r("app", Operator::NotIn, &["web"]), false),
            (r("gone", Operator::NotIn, &["web"]), true),
            (r("app", Operator::Equals, &["web"]), true),
            (r("app", Operator::NotEquals, &["web"]), false),
            (r("gone", Operator::NotEquals, &["web"]), true),
            (r("gone", Operator::Equals, &[""]), false),
            (r("app", Operator::Exists, &[]), true),
            (r("gone", Operator::DoesNotExist, &[]), true),
            (r("n", Operator::Gt, &["4"]), true),
            (r("n", Operator::Gt, &["5"]), false),
            (r("n", Operator::Lt, &["6"]), true),
            (r("s", Operator::Gt, &["1"]), false),
            (r("gone", Operator::Lt, &["1"]), false),
        ];
        for (req, want) in cases {
            let req = req.expect("valid requirement");
            assert_eq!(req.matches(&l), want, "{req}");
        }
        assert!(Selector::everything().matches(&BTreeMap::new()));
    }

    #[test]
    fn invalid_requirements_are_errors() {
        let empty: [&str; 0] = [];
        assert!(Requirement::new("a", Operator::In, empty).is_err());
        assert!(Requirement::new("a", Operator::Equals, ["x", "y"]).is_err());
        assert!(Requirement::new("a", Operator::Exists, ["x"]).is_err());
        assert!(Requirement::new("a", Operator::Gt, ["x"]).is_err());
        assert!(Requirement::new("a", Operator::Gt, ["1", "2"]).is_err());
        assert!(matches!(
            Requirement::new("a", Operator::In, ["bad value"]),
            Err(Error::InvalidLabelValue { .. })
        ));
        assert!(matches!(
            Requirement::new("-a", Operator::Exists, empty),
            Err(Error::InvalidLabelKey { .. })
        ));
    }

    #[test]
    fn display_and_and() {
        let s = Selector::new([
            Requirement::new("b", Operator::In, ["y", "x", "x"]).expect("valid"),
            Requirement::equals("a", "1").expect("valid"),
        ])
        .and(Requirement::exists("ab").expect("valid"));
        assert_eq!(s.to_string(), "a=1,ab,b in (x,y)");
    }
}
