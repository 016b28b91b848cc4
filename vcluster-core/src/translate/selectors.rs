//! Selector translation, shared by every [`LabelTranslator`].
//!
//! A translated selector maps each requirement's key the way labels are
//! mapped (values and operators are unchanged, since label values are copied
//! verbatim) and adds the marker labels of the target scope as equalities.
//! Because the key mapping is injective and never produces a marker key, a
//! translated selector matches a translated label set exactly when the
//! original selector matched the original labels, and it never matches
//! objects of another namespace or another virtual cluster.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use super::{LabelTranslator, MarkerScope};
use crate::error::Result;
use crate::selector::{Requirement, Selector};
use crate::validation::validate_label_value;

pub(super) fn host_selector<T: LabelTranslator + ?Sized>(
    translator: &T,
    selector: &Selector,
    scope: MarkerScope<'_>,
) -> Result<Selector> {
    let mut requirements = Vec::with_capacity(selector.requirements().len() + 2);
    for requirement in selector.requirements() {
        let key = translator.host_label_key(requirement.key())?;
        requirements.push(requirement.with_key(key.into_owned()));
    }
    for (key, value) in translator.marker_labels(scope)? {
        requirements.push(Requirement::equals(key, value)?);
    }
    Ok(Selector::new(requirements))
}

/// Maps the keys of a `LabelSelector` with `map_key` and adds `markers` to
/// `matchLabels`, keeping the selector's structure (and value order).
fn map_label_selector(
    selector: &LabelSelector,
    markers: BTreeMap<String, String>,
    map_key: impl Fn(&str) -> Result<String>,
) -> Result<LabelSelector> {
    // Validates keys, values and operators exactly as Kubernetes would.
    Selector::from_label_selector(selector)?;

    let mut match_labels = BTreeMap::new();
    for (key, value) in selector.match_labels.iter().flatten() {
        match_labels.insert(map_key(key)?, value.clone());
    }
    match_labels.extend(markers);
    let match_expressions = selector
        .match_expressions
        .as_ref()
        .map(|expressions| {
            expressions
                .iter()
                .map(|e| {
                    Ok(LabelSelectorRequirement {
                        key: map_key(&e.key)?,
                        operator: e.operator.clone(),
                        values: e.values.clone(),
                    })
                })
                .collect::<Result<Vec<_>>>()
        })
        .transpose()?;
    Ok(LabelSelector {
        match_labels: (!match_labels.is_empty()).then_some(match_labels),
        match_expressions,
    })
}

pub(super) fn host_label_selector<T: LabelTranslator + ?Sized>(
    translator: &T,
    selector: &LabelSelector,
    scope: MarkerScope<'_>,
) -> Result<LabelSelector> {
    let markers = translator.marker_labels(scope)?;
    map_label_selector(selector, markers, |key| {
        Ok(translator.host_label_key(key)?.into_owned())
    })
}

pub(super) fn host_namespace_selector<T: LabelTranslator + ?Sized>(
    translator: &T,
    selector: &LabelSelector,
) -> Result<LabelSelector> {
    let markers = translator.marker_labels(MarkerScope::AllNamespaces)?;
    map_label_selector(selector, markers, |key| translator.namespace_label_key(key))
}

pub(super) fn host_map_selector<T: LabelTranslator + ?Sized>(
    translator: &T,
    selector: &BTreeMap<String, String>,
    scope: MarkerScope<'_>,
) -> Result<BTreeMap<String, String>> {
    if selector.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut out = BTreeMap::new();
    for (key, value) in selector {
        validate_label_value(key, value)?;
        out.insert(translator.host_label_key(key)?.into_owned(), value.clone());
    }
    out.extend(translator.marker_labels(scope)?);
    Ok(out)
}
