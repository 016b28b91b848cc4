//! Conversions between [`Selector`] and `metav1.LabelSelector`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use super::{Operator, Requirement, Selector};
use crate::error::{Error, Result};

/// The operator of a `LabelSelectorRequirement`; only the four that
/// `metav1.LabelSelector` defines are accepted (as `LabelSelectorAsSelector`).
pub(crate) fn label_selector_operator(key: &str, operator: &str) -> Result<Operator> {
    match operator {
        "In" => Ok(Operator::In),
        "NotIn" => Ok(Operator::NotIn),
        "Exists" => Ok(Operator::Exists),
        "DoesNotExist" => Ok(Operator::DoesNotExist),
        other => Err(Error::InvalidRequirement {
            key: key.to_owned(),
            operator: other.to_owned(),
            reason: "not a valid label selector operator (In, NotIn, Exists, DoesNotExist)"
                .to_owned(),
        }),
    }
}

impl Selector {
    /// The selector a `metav1.LabelSelector` stands for: every `matchLabels`
    /// pair as an equality, every `matchExpressions` entry as its set
    /// operator. An empty `LabelSelector` matches everything; a *missing*
    /// one (`None`) means "nothing" in most APIs, which the caller decides.
    pub fn from_label_selector(selector: &LabelSelector) -> Result<Self> {
        let mut requirements = Vec::new();
        for (key, value) in selector.match_labels.iter().flatten() {
            requirements.push(Requirement::equals(key.as_str(), value.as_str())?);
        }
        for expr in selector.match_expressions.iter().flatten() {
            let operator = label_selector_operator(&expr.key, &expr.operator)?;
            let values = expr.values.iter().flatten().map(String::as_str);
            requirements.push(Requirement::new(expr.key.as_str(), operator, values)?);
        }
        Ok(Selector::new(requirements))
    }

    /// This selector as a `metav1.LabelSelector`. Equalities become
    /// `matchLabels` (or a single-value `In` if the key is already there),
    /// inequalities become `NotIn`. `Gt`/`Lt` have no `LabelSelector` form
    /// and give an error.
    pub fn to_label_selector(&self) -> Result<LabelSelector> {
        let mut match_labels = BTreeMap::new();
        let mut match_expressions = Vec::new();
        for r in self.requirements() {
            let expr = |operator: &str| LabelSelectorRequirement {
                key: r.key().to_owned(),
                operator: operator.to_owned(),
                values: match r.operator() {
                    Operator::Exists | Operator::DoesNotExist => None,
                    _ => Some(r.values().to_vec()),
                },
            };
            match r.operator() {
                Operator::Equals if !match_labels.contains_key(r.key()) => {
                    let value = r.values().first().cloned().unwrap_or_default();
                    match_labels.insert(r.key().to_owned(), value);
                }
                Operator::Equals | Operator::In => match_expressions.push(expr("In")),
                Operator::NotEquals | Operator::NotIn => match_expressions.push(expr("NotIn")),
                Operator::Exists => match_expressions.push(expr("Exists")),
                Operator::DoesNotExist => match_expressions.push(expr("DoesNotExist")),
                Operator::Gt | Operator::Lt => {
                    return Err(Error::InvalidRequirement {
                        key: r.key().to_owned(),
                        operator: r.operator().as_str().to_owned(),
                        reason: "metav1.LabelSelector cannot express Gt or Lt".to_owned(),
                    })
                }
            }
        }
        Ok(LabelSelector {
            match_labels: (!match_labels.is_empty()).then_some(match_labels),
            match_expressions: (!match_expressions.is_empty()).then_some(match_expressions),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(key: &str, op: &str, values: Option<&[&str]>) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: values.map(|v| v.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn converts_both_ways() {
        let ls = LabelSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into()),
            match_expressions: Some(vec![
                expr("tier", "In", Some(&["b", "a"])),
                expr("legacy", "DoesNotExist", None),
                expr("zone", "NotIn", Some(&["x"])),
                expr("team", "Exists", Some(&[])),
            ]),
        };
        let s = Selector::from_label_selector(&ls).expect("valid selector");
        assert_eq!(
            s.to_string(),
            "app=web,!legacy,team,tier in (a,b),zone notin (x)"
        );
        let back = s.to_label_selector().expect("representable");
        assert_eq!(Selector::from_label_selector(&back), Ok(s));
        assert_eq!(
            Selector::from_label_selector(&LabelSelector::default()),
            Ok(Selector::everything())
        );
    }

    #[test]
    fn rejects_what_kubernetes_rejects() {
        let bad = [
            expr("a", "Gt", Some(&["1"])),
            expr("a", "in", Some(&["1"])),
            expr("a", "In", None),
            expr("a", "Exists", Some(&["x"])),
            expr("a", "In", Some(&["not valid"])),
            expr("not valid", "Exists", None),
        ];
        for e in bad {
            let ls = LabelSelector {
                match_expressions: Some(vec![e.clone()]),
                ..Default::default()
            };
            assert!(Selector::from_label_selector(&ls).is_err(), "{e:?}");
        }
        let bad_label = LabelSelector {
            match_labels: Some([("a".to_string(), "-x".to_string())].into()),
            ..Default::default()
        };
        assert!(Selector::from_label_selector(&bad_label).is_err());
        let gt = Selector::parse("a>1").expect("valid");
        assert!(matches!(
            gt.to_label_selector(),
            Err(Error::InvalidRequirement { .. })
        ));
        let dup = Selector::parse("a=1,a=2").expect("valid");
        let ls = dup.to_label_selector().expect("representable");
        let back = Selector::from_label_selector(&ls).expect("valid selector");
        assert_eq!(back.to_string(), "a=1,a in (2)");
    }
}
