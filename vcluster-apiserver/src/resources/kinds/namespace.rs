//! Namespaces (core/v1): DNS-1123 label names, the `kubernetes` finalizer, an
//! `Active` phase, and `spec.finalizers` that change through `/finalize`
//! only.

use k8s_openapi::api::core;
use serde_json::{json, Value};
use vcluster_core::validation;

use super::{
    fields::{default_field, obj_mut},
    BuiltinKind,
};
use crate::object;
use crate::resources::Typed;
use crate::resources::strategy::{Strategy, Subresource};
use crate::resources::table::{cluster, columns, Printer};

/// The Namespace kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "",
    "namespaces",
    "Namespace",
    Typed::of::<core::v1::Namespace>(),
    &Namespaces,
)
.short_names(&["ns"])
.with_status()
// Namespaces are deleted one by one (each waits for its contents); upstream
// serves no deletecollection for them.
.verbs(&["create", "delete", "get", "list", "patch", "update", "watch"])
.subresources(&[FINALIZE]);

/// The rules of Namespace objects.
#[derive(Debug)]
struct Namespaces;

impl Strategy for Namespaces {
    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn name_errors(&self, name: &str) -> Vec<String> {
        validation::dns1123_label_errors(name)
    }

    fn default(&self, object: &mut Value) {
        if let Some(spec) = obj_mut(object, "spec") {
            default_field(spec, "finalizers", json!(["kubernetes"]));
        }
        let name = object::name(object).to_owned();
        if let Some(labels) = obj_mut(&mut object["metadata"], "labels") {
            labels.insert("kubernetes.io/metadata.name".into(), Value::String(name));
        }
    }

    fn initial_status(&self, _object: &Value) -> Option<Value> {
        Some(json!({"phase": "Active"}))
    }

    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        // spec.finalizers change through `/finalize` only.
        match old.pointer("/spec/finalizers") {
            Some(kept) => new["spec"]["finalizers"] = kept.clone(),
            None => {
                if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.remove("finalizers");
                }
            }
        }
    }

    fn ready_to_remove(&self, object: &Value) -> bool {
        object
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &["metadata.name", "status.phase"]
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::NAMESPACE, cluster::namespace))
    }
}

/// `namespaces/finalize`: how the namespace controller removes
/// `spec.finalizers` once the namespace is empty.
const FINALIZE: Subresource = Subresource {
    name: "finalize",
    kind: "Namespace",
    verbs: &["update"],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kinds::defaulted;

    #[test]
    fn namespaces_are_active_and_labelled_with_their_name() {
        let ns = defaulted(&KIND, json!({"metadata": {"name": "team-a"}}));
        assert_eq!(ns["status"]["phase"], "Active");
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "team-a"
        );
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    }

    #[test]
    fn spec_finalizers_survive_updates_and_hold_removal() {
        let old = json!({"spec": {"finalizers": ["kubernetes"]}});
        let mut new = json!({"spec": {}});
        KIND.strategy.prepare_for_update(&old, &mut new);
        assert_eq!(new["spec"]["finalizers"], json!(["kubernetes"]));
        assert!(!KIND.strategy.ready_to_remove(&new));
        assert!(KIND
            .strategy
            .ready_to_remove(&json!({"spec": {"finalizers": []}})));
        assert_eq!(KIND.strategy.name_errors("a.b"), ["must not contain dots"]);
    }
}
