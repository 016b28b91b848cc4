//! Field selectors (`fieldSelector=spec.nodeName=n1`), over the fields
//! each kind's strategy makes selectable, and [`ObjectFilter`]: the label
//! and field selectors of one list or watch (label selectors come from
//! `vcluster-core`).

use serde_json::Value;
use vcluster_core::selector::Selector;

use crate::error::ApiError;
use crate::object;
use crate::resources::strategy::{Strategy, GENERIC};
use crate::resources::ResourceInfo;

/// One `field=value` / `field!=value` term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    /// The field path, e.g. `spec.nodeName`.
    pub field: String,
    /// `true` for `!=`.
    pub negated: bool,
    /// The value compared with.
    pub value: String,
}

/// A parsed `fieldSelector`: every term must hold.
#[derive(Clone, Debug)]
pub struct FieldSelector {
    terms: Vec<FieldRequirement>,
    /// Reads the fields as the kind defines them.
    strategy: &'static dyn Strategy,
}

impl Default for FieldSelector {
    fn default() -> Self {
        Self {
            terms: Vec::new(),
            strategy: &GENERIC,
        }
    }
}

impl FieldSelector {
    /// Parses `a=b,c!=d` and checks every field is supported for `resource`.
    pub fn parse(text: &str, resource: &ResourceInfo) -> Result<Self, ApiError> {
        let mut terms = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, negated, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, true, v)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, false, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid field selector: {term:?}: expected field=value, field==value or field!=value"
                )));
            };
            let field = field.trim();
            if !resource.strategy.selectable_fields().contains(&field) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
            terms.push(FieldRequirement {
                field: field.to_owned(),
                negated,
                value: value.trim().to_owned(),
            });
        }
        Ok(Self {
            terms,
            strategy: resource.strategy,
        })
    }

    /// The terms, in the order given.
    pub fn terms(&self) -> &[FieldRequirement] {
        &self.terms
    }

    /// Adds a term (a watch of one named object pins `metadata.name`).
    pub fn push(&mut self, term: FieldRequirement) {
        self.terms.push(term);
    }

    /// Whether `object` satisfies every term.
    pub fn matches(&self, object: &Value) -> bool {
        self.terms.iter().all(|term| {
            let actual = self.strategy.field_value(object, &term.field);
            (actual == term.value) != term.negated
        })
    }

    /// The name this selector pins down with `metadata.name=x`, if any: lets
    /// a list or watch of one object skip the rest.
    pub fn pinned_name(&self) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == "metadata.name" && !t.negated)
            .map(|t| t.value.as_str())
    }
}

/// The label and field selectors of one list or watch request.
#[derive(Clone, Debug, Default)]
pub struct ObjectFilter {
    /// `labelSelector`.
    pub labels: Option<Selector>,
    /// `fieldSelector`.
    pub fields: Option<FieldSelector>,
}

impl ObjectFilter {
    /// Parses the two query parameters; a bad selector is a 400.
    pub fn parse(
        resource: &ResourceInfo,
        label_selector: Option<&str>,
        field_selector: Option<&str>,
    ) -> Result<Self, ApiError> {
        let labels = match label_selector.map(str::trim).filter(|s| !s.is_empty()) {
            Some(text) => Some(Selector::parse(text).map_err(|err| {
                ApiError::bad_request(format!("unable to parse requirement: {err}"))
            })?),
            None => None,
        };
        let fields = match field_selector.map(str::trim).filter(|s| !s.is_empty()) {
            Some(text) => Some(FieldSelector::parse(text, resource)?),
            None => None,
        };
        Ok(Self { labels, fields })
    }

    /// Whether no selector was given (every object matches).
    pub fn is_empty(&self) -> bool {
        self.labels.is_none() && self.fields.is_none()
    }

    /// Whether `object` passes both selectors.
    pub fn matches(&self, object: &Value) -> bool {
        let labels_ok = self
            .labels
            .as_ref()
            .is_none_or(|s| s.matches(&object::labels(object)));
        labels_ok && self.fields.as_ref().is_none_or(|f| f.matches(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Catalog;
    use serde_json::json;

    fn pods() -> std::sync::Arc<ResourceInfo> {
        Catalog::builtin().get("", "v1", "pods").expect("pods")
    }

    #[test]
    fn field_selectors_match_pod_fields() {
        let pod = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        let sel =
            FieldSelector::parse("spec.nodeName=n1,status.phase!=Pending", &pods()).expect("parse");
        assert!(sel.matches(&pod));
        let sel = FieldSelector::parse("status.phase==Pending", &pods()).expect("parse");
        assert!(!sel.matches(&pod));
        let sel = FieldSelector::parse("spec.hostNetwork=false", &pods()).expect("parse");
        assert!(sel.matches(&pod), "unset booleans compare as false");
        assert_eq!(
            FieldSelector::parse("metadata.name=web", &pods())
                .expect("parse")
                .pinned_name(),
            Some("web")
        );
    }

    #[test]
    fn unsupported_fields_and_garbage_are_bad_requests() {
        let err = FieldSelector::parse("spec.containers=x", &pods()).expect_err("unsupported");
        assert_eq!(
            (err.code.as_u16(), err.message.as_str()),
            (400, "field label not supported: spec.containers")
        );
        assert!(FieldSelector::parse("nonsense", &pods()).is_err());
    }

    #[test]
    fn object_filter_combines_label_and_field_selectors() {
        let filter = ObjectFilter::parse(
            &pods(),
            Some("app=web,tier notin (db)"),
            Some("metadata.namespace=default"),
        )
        .expect("parse");
        let yes =
            json!({"metadata": {"name": "a", "namespace": "default", "labels": {"app": "web"}}});
        let no = json!({"metadata": {"name": "a", "namespace": "other", "labels": {"app": "web"}}});
        assert!(filter.matches(&yes));
        assert!(!filter.matches(&no));
        assert!(ObjectFilter::parse(&pods(), Some("a in (b"), None).is_err());
        assert!(ObjectFilter::parse(&pods(), None, None)
            .expect("empty")
            .is_empty());
    }
}
