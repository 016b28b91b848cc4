//! Labels and annotations of synced objects, the same for every kind that
//! flows to the host.
//!
//! The virtual object owns them: its keys are written to the host copy
//! (translated) and the keys the syncer wrote are listed in the copy's
//! bookkeeping annotations, so keys that others add on the host (admission
//! webhooks, operators) are never removed. The keys the syncer wrote also
//! flow back: when only the host changed one since the last sync, the
//! virtual object takes the host's value; when both changed it, the
//! virtual value wins. Without a last sync to compare with (after a
//! restart), the virtual object wins every difference.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Map, Value};
use vcluster_core::markers::parse_managed_keys;
use vcluster_core::markers::{MANAGED_ANNOTATIONS_ANNOTATION, MANAGED_LABELS_ANNOTATION};
use vcluster_core::{merge_host_metadata, GroupVersionKind, Translator};

use crate::memory::Memory;

/// The metadata changes of one reconcile.
#[derive(Debug, Default, PartialEq)]
pub struct MetadataPlan {
    /// Merge patch for the host object (`{"metadata": {...}}`), if needed.
    pub host_patch: Option<Value>,
    /// Merge patch for the virtual object, if the host changed a key.
    pub virtual_patch: Option<Value>,
    /// What to remember as the last synced state.
    pub remembered: Memory,
}

type Strings = BTreeMap<String, String>;

/// The keys a host object's bookkeeping annotation lists.
fn managed_keys(host: &ObjectMeta, bookkeeping: &str) -> BTreeSet<String> {
    host.annotations
        .as_ref()
        .and_then(|a| a.get(bookkeeping))
        .map(|v| parse_managed_keys(v).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The host's view of the virtual keys the syncer manages, in virtual terms.
fn host_view_of_labels(translator: &dyn Translator, host: &ObjectMeta) -> Strings {
    let managed = managed_keys(host, MANAGED_LABELS_ANNOTATION);
    let labels = host.labels.clone().unwrap_or_default();
    labels
        .iter()
        .filter(|(k, _)| managed.contains(*k))
        .filter_map(|(k, v)| Some((translator.virtual_label_key(k)?.into_owned(), v.clone())))
        .collect()
}

fn host_view_of_annotations(host: &ObjectMeta) -> Strings {
    let managed = managed_keys(host, MANAGED_ANNOTATIONS_ANNOTATION);
    host.annotations
        .iter()
        .flatten()
        .filter(|(k, _)| managed.contains(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Three-way merge of one map: keys only the host changed since `last`
/// take the host's value; everything else keeps the virtual value.
fn merge_back(virtual_now: &Strings, host_now: &Strings, last: &Strings) -> Strings {
    let mut merged = virtual_now.clone();
    let keys: BTreeSet<&String> = last.keys().chain(host_now.keys()).collect();
    for key in keys {
        let host_changed = host_now.get(key) != last.get(key);
        let virtual_changed = virtual_now.get(key) != last.get(key);
        if host_changed && !virtual_changed {
            match host_now.get(key) {
                Some(value) => merged.insert(key.clone(), value.clone()),
                None => merged.remove(key),
            };
        }
    }
    merged
}

/// A merge patch turning map `from` into map `to` (removed keys are null).
pub fn map_patch(from: &Strings, to: &Strings) -> Option<Value> {
    let mut patch = Map::new();
    for key in from.keys().filter(|k| !to.contains_key(*k)) {
        patch.insert(key.clone(), Value::Null);
    }
    for (key, value) in to {
        if from.get(key) != Some(value) {
            patch.insert(key.clone(), Value::String(value.clone()));
        }
    }
    (!patch.is_empty()).then_some(Value::Object(patch))
}

fn metadata_patch(labels: Option<Value>, annotations: Option<Value>) -> Option<Value> {
    let mut metadata = Map::new();
    if let Some(labels) = labels {
        metadata.insert("labels".into(), labels);
    }
    if let Some(annotations) = annotations {
        metadata.insert("annotations".into(), annotations);
    }
    (!metadata.is_empty()).then(|| serde_json::json!({ "metadata": metadata }))
}

/// Plans the label and annotation changes between a virtual object and its
/// host copy. `namespace_labels` are the virtual namespace's labels for
/// kinds that carry them (pods); `overrides` are labels whose host value
/// the syncer sets itself (by virtual key; see
/// [`Syncer::host_label_overrides`](crate::Syncer::host_label_overrides)):
/// the host copy gets the override and the key never flows back, whatever
/// the host holds.
pub fn plan(
    translator: &dyn Translator,
    kind: &GroupVersionKind,
    virtual_meta: &ObjectMeta,
    host_meta: &ObjectMeta,
    memory: Option<&Memory>,
    namespace_labels: Option<&Strings>,
    overrides: Option<&Strings>,
) -> Result<MetadataPlan, vcluster_core::Error> {
    let virtual_labels = virtual_meta.labels.clone().unwrap_or_default();
    let virtual_annotations = virtual_meta.annotations.clone().unwrap_or_default();
    let (labels, annotations) = match memory {
        Some(last) => (
            merge_back(
                &virtual_labels,
                &host_view_of_labels(translator, host_meta),
                &last.labels,
            ),
            merge_back(
                &virtual_annotations,
                &host_view_of_annotations(host_meta),
                &last.annotations,
            ),
        ),
        None => (virtual_labels.clone(), virtual_annotations.clone()),
    };
    let mut labels = labels;
    for key in overrides.into_iter().flat_map(|o| o.keys()) {
        // One-way keys: the virtual value stands.
        match virtual_labels.get(key) {
            Some(value) => labels.insert(key.clone(), value.clone()),
            None => labels.remove(key),
        };
    }
    let virtual_patch = metadata_patch(
        map_patch(&virtual_labels, &labels),
        map_patch(&virtual_annotations, &annotations),
    );

    let wanted_virtual = ObjectMeta {
        labels: Some(labels.clone()),
        annotations: Some(annotations.clone()),
        ..virtual_meta.clone()
    };
    let mut desired = translator.host_metadata(&wanted_virtual, kind, namespace_labels)?;
    for (key, value) in overrides.into_iter().flatten() {
        if labels.contains_key(key) {
            desired
                .labels
                .get_or_insert_default()
                .insert(translator.host_label_key(key)?.into_owned(), value.clone());
        }
    }
    let merged = merge_host_metadata(host_meta, &desired);
    let host_labels = host_meta.labels.clone().unwrap_or_default();
    let host_annotations = host_meta.annotations.clone().unwrap_or_default();
    let host_patch = metadata_patch(
        map_patch(&host_labels, &merged.labels.unwrap_or_default()),
        map_patch(&host_annotations, &merged.annotations.unwrap_or_default()),
    );
    Ok(MetadataPlan {
        host_patch,
        virtual_patch,
        remembered: Memory {
            host_seen: true,
            labels,
            annotations,
            ..Memory::default()
        },
    })
}

/// Deep-merges merge patch `extra` into `base` (both JSON objects).
pub fn merge_patches(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(base), Value::Object(extra)) => {
            for (key, value) in extra {
                match base.get_mut(&key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge_patches(existing, value)
                    }
                    _ => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, extra) => *base = extra,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use vcluster_core::prelude::*;
    use vcluster_core::SingleNamespaceTranslator;

    fn strings(pairs: &[(&str, &str)]) -> Strings {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// What the engine remembers after syncing exactly these labels.
    fn synced_labels(pairs: &[(&str, &str)]) -> Memory {
        Memory {
            host_seen: true,
            labels: strings(pairs),
            ..Memory::default()
        }
    }

    fn setup() -> (SingleNamespaceTranslator, GroupVersionKind, ObjectMeta) {
        let translator = SingleNamespaceTranslator::new("vc", "host-ns").expect("translator");
        let kind = GroupVersionKind::new("", "v1", "ConfigMap");
        let virt = ObjectMeta {
            name: Some("cm".into()),
            namespace: Some("default".into()),
            labels: Some(strings(&[("app", "web")])),
            ..ObjectMeta::default()
        };
        (translator, kind, virt)
    }

    #[test]
    fn host_additions_survive_and_virtual_changes_are_pushed() {
        let (translator, kind, mut virt) = setup();
        let mut host = translator.host_metadata(&virt, &kind, None).expect("host");
        host.labels
            .get_or_insert_default()
            .insert("webhook".into(), "added".into());
        virt.labels = Some(strings(&[("app", "api")]));
        let memory = synced_labels(&[("app", "web")]);
        let plan = plan(&translator, &kind, &virt, &host, Some(&memory), None, None).expect("plan");
        assert_eq!(
            plan.host_patch,
            Some(json!({"metadata": {"labels": {"app": "api"}}}))
        );
        assert_eq!(plan.virtual_patch, None);
    }

    #[test]
    fn a_host_only_change_of_a_synced_key_flows_back() {
        let (translator, kind, virt) = setup();
        let mut host = translator.host_metadata(&virt, &kind, None).expect("host");
        host.labels
            .get_or_insert_default()
            .insert("app".into(), "changed-on-host".into());
        let memory = synced_labels(&[("app", "web")]);
        let plan = plan(&translator, &kind, &virt, &host, Some(&memory), None, None).expect("plan");
        assert_eq!(
            plan.virtual_patch,
            Some(json!({"metadata": {"labels": {"app": "changed-on-host"}}}))
        );
        assert_eq!(plan.host_patch, None);
        assert_eq!(plan.remembered.labels["app"], "changed-on-host");
    }

    #[test]
    fn when_both_changed_the_virtual_side_wins() {
        let (translator, kind, mut virt) = setup();
        let mut host = translator.host_metadata(&virt, &kind, None).expect("host");
        host.labels
            .get_or_insert_default()
            .insert("app".into(), "host-value".into());
        virt.labels = Some(strings(&[("app", "virtual-value")]));
        let memory = synced_labels(&[("app", "web")]);
        let plan = plan(&translator, &kind, &virt, &host, Some(&memory), None, None).expect("plan");
        assert_eq!(plan.virtual_patch, None);
        assert_eq!(
            plan.host_patch,
            Some(json!({"metadata": {"labels": {"app": "virtual-value"}}}))
        );
    }

    #[test]
    fn without_memory_virtual_wins_and_in_step_objects_need_nothing() {
        let (translator, kind, virt) = setup();
        let host = translator.host_metadata(&virt, &kind, None).expect("host");
        let plan = plan(&translator, &kind, &virt, &host, None, None, None).expect("plan");
        assert_eq!((plan.host_patch, plan.virtual_patch), (None, None));
    }

    #[test]
    fn overridden_labels_get_the_syncers_value_and_never_flow_back() {
        let (translator, kind, mut virt) = setup();
        virt.labels = Some(strings(&[("kubernetes.io/service-name", "db")]));
        let overrides = strings(&[("kubernetes.io/service-name", "db-x-default-x-vc")]);
        let mut host = translator.host_metadata(&virt, &kind, None).expect("host");
        host.labels
            .get_or_insert_default()
            .insert("kubernetes.io/service-name".into(), "stale".into());
        let memory = synced_labels(&[("kubernetes.io/service-name", "db")]);
        let plan = super::plan(
            &translator,
            &kind,
            &virt,
            &host,
            Some(&memory),
            None,
            Some(&overrides),
        )
        .expect("plan");
        assert_eq!(plan.virtual_patch, None, "the host value never flows back");
        assert_eq!(
            plan.host_patch,
            Some(
                json!({"metadata": {"labels": {"kubernetes.io/service-name": "db-x-default-x-vc"}}})
            )
        );
        assert_eq!(plan.remembered.labels["kubernetes.io/service-name"], "db");

        // In step: nothing to do.
        host.labels.get_or_insert_default().insert(
            "kubernetes.io/service-name".into(),
            "db-x-default-x-vc".into(),
        );
        let plan = super::plan(
            &translator,
            &kind,
            &virt,
            &host,
            Some(&memory),
            None,
            Some(&overrides),
        )
        .expect("plan");
        assert_eq!((plan.host_patch, plan.virtual_patch), (None, None));
    }

    #[test]
    fn patches_merge_deeply() {
        let mut base = json!({"metadata": {"labels": {"a": "1"}}});
        merge_patches(
            &mut base,
            json!({"metadata": {"annotations": {"b": "2"}}, "data": {"k": "v"}}),
        );
        assert_eq!(
            base,
            json!({"metadata": {"labels": {"a": "1"}, "annotations": {"b": "2"}}, "data": {"k": "v"}})
        );
    }
}
