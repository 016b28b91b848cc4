//! Pod templates (core/v1): a named pod template other objects can refer
//! to. Validated as upstream's `ValidatePodTemplate` does (metadata and the
//! template's pod spec), defaulted like every pod spec, and printed as
//! `kubectl get podtemplates` shows them: NAME, CONTAINERS, IMAGES and
//! POD LABELS.

use jiff::Timestamp;
use k8s_openapi::api::core;
use serde_json::Value;

use super::fields::track_generation;
use super::{pod_spec, BuiltinKind};
use crate::error::FieldCause;
use crate::object;
use crate::resources::strategy::Strategy;
use crate::resources::Typed;
use crate::resources::table::columns::{self, Column};
use crate::resources::table::format::{container_cells, format_labels, map_at, name};
use crate::resources::table::{Printer, Row};

/// The PodTemplate kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "",
    "podtemplates",
    "PodTemplate",
    Typed::of::<core::v1::PodTemplate>(),
    &PodTemplates,
);

/// The rules of PodTemplate objects.
#[derive(Debug)]
struct PodTemplates;

impl Strategy for PodTemplates {
    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn default(&self, object: &mut Value) {
        track_generation(object);
        pod_spec::default_template(object, "/template/spec");
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        match object::path(object, "template") {
            Some(template) if template.is_object() => {
                pod_spec::validate(template.get("spec"), "template.spec", causes);
            }
            _ => causes.push(FieldCause::required("template")),
        }
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(COLUMNS, print))
    }
}

/// Upstream's pod template columns (none of them `-o wide` only).
const COLUMNS: &[Column] = &[
    columns::NAME,
    columns::string("Containers", "Names of each container in the template."),
    columns::string(
        "Images",
        "Images referenced by each container in the template.",
    ),
    columns::string("Pod Labels", "The labels for the pod template."),
];

/// One row: the name, the template's containers and images, its labels.
fn print(template: &Value, _now: Timestamp) -> Row {
    let (containers, images) = container_cells(&["template", "spec", "containers"], template);
    let labels = format_labels(map_at(template, &["template", "metadata", "labels"]));
    vec![
        name(template).into(),
        containers.into(),
        images.into(),
        labels.into(),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kinds::{defaulted, invalid_fields};
    use serde_json::json;

    #[test]
    fn templates_get_pod_defaults_and_need_a_valid_pod_spec() {
        let template = defaulted(
            &KIND,
            json!({"metadata": {"name": "t"}, "template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}}),
        );
        assert_eq!(template["template"]["spec"]["restartPolicy"], "Always");
        assert!(invalid_fields(&KIND, &template).is_empty());
        assert_eq!(invalid_fields(&KIND, &json!({"metadata": {"name": "t"}})), ["template"]);
        let nameless = json!({"template": {"spec": {"containers": [{"image": "i"}]}}});
        assert_eq!(invalid_fields(&KIND, &nameless), ["template.spec.containers[0].name"]);
    }
}
