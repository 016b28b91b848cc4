//! Host metadata: labels, annotations, ownership markers and bookkeeping.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{LabelTranslator, MarkerScope, NameTranslator};
use crate::error::{Error, Result};
use crate::identity::{GroupVersionKind, VirtualKey};
use crate::markers::{
    is_marker_annotation, parse_managed_keys, MANAGED_ANNOTATIONS_ANNOTATION,
    MANAGED_LABELS_ANNOTATION, MARKER_ANNOTATIONS, OBJECT_HOST_NAMESPACE_ANNOTATION,
    OBJECT_HOST_NAME_ANNOTATION, OBJECT_KIND_ANNOTATION, OBJECT_NAMESPACE_ANNOTATION,
    OBJECT_NAME_ANNOTATION, OBJECT_UID_ANNOTATION,
};

/// Newline-joined keys, in the (sorted) order given; `None` if there are none.
fn join_keys<'a>(keys: impl Iterator<Item = &'a String>) -> Option<String> {
    let mut out = String::new();
    for key in keys {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(key);
    }
    (!out.is_empty()).then_some(out)
}

/// See [`super::MetadataTranslator::host_metadata`].
pub(super) fn host_metadata<T>(
    translator: &T,
    virtual_meta: &ObjectMeta,
    kind: &GroupVersionKind,
    namespace_labels: Option<&BTreeMap<String, String>>,
) -> Result<ObjectMeta>
where
    T: NameTranslator + LabelTranslator + ?Sized,
{
    let key = VirtualKey::new(
        virtual_meta.namespace.as_deref(),
        virtual_meta.name.as_deref().unwrap_or(""),
    );
    build(translator, &key, virtual_meta, kind, namespace_labels).map_err(|error| Error::Object {
        object: format!("{kind} {key}"),
        error: Box::new(error),
    })
}

fn build<T>(
    translator: &T,
    key: &VirtualKey,
    virtual_meta: &ObjectMeta,
    kind: &GroupVersionKind,
    namespace_labels: Option<&BTreeMap<String, String>>,
) -> Result<ObjectMeta>
where
    T: NameTranslator + LabelTranslator + ?Sized,
{
    let host = translator.host_key(key)?;

    let empty = BTreeMap::new();
    let mut labels = translator.host_labels(
        virtual_meta.labels.as_ref().unwrap_or(&empty),
        key.namespace(),
    )?;
    if let Some(namespace_labels) = namespace_labels {
        labels.extend(translator.namespace_labels(namespace_labels)?);
    }
    // Markers identify the object and are rewritten on every sync; the
    // bookkeeping lists the keys that came from the virtual side.
    let markers = translator.marker_labels(MarkerScope::of_namespace(key.namespace()))?;
    let managed_labels = join_keys(labels.keys().filter(|k| !markers.contains_key(*k)));

    let mut annotations: BTreeMap<String, String> = virtual_meta
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| !is_marker_annotation(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(keys) = join_keys(annotations.keys()) {
        annotations.insert(MANAGED_ANNOTATIONS_ANNOTATION.to_owned(), keys);
    }
    if let Some(keys) = managed_labels {
        annotations.insert(MANAGED_LABELS_ANNOTATION.to_owned(), keys);
    }
    let mut mark = |k: &str, v: &str| annotations.insert(k.to_owned(), v.to_owned());
    mark(OBJECT_NAME_ANNOTATION, key.name());
    if let Some(namespace) = key.namespace() {
        mark(OBJECT_NAMESPACE_ANNOTATION, namespace);
    }
    mark(
        OBJECT_UID_ANNOTATION,
        virtual_meta.uid.as_deref().unwrap_or(""),
    );
    mark(OBJECT_KIND_ANNOTATION, &kind.to_string());
    mark(OBJECT_HOST_NAME_ANNOTATION, host.name());
    if let Some(namespace) = host.namespace() {
        mark(OBJECT_HOST_NAMESPACE_ANNOTATION, namespace);
    }

    Ok(ObjectMeta {
        name: Some(host.name().to_owned()),
        namespace: host.namespace().map(str::to_owned),
        labels: Some(labels),
        annotations: Some(annotations),
        ..ObjectMeta::default()
    })
}

/// See [`super::MetadataTranslator::virtual_annotations`].
pub(super) fn virtual_annotations(host: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    host.iter()
        .filter(|(k, _)| !is_marker_annotation(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Merges freshly translated host metadata (`desired`) into the metadata of
/// the host object that already exists, for an update.
///
/// Keys the syncer wrote last time (listed in the existing object's
/// `managed-labels` / `managed-annotations`) and all marker annotations are
/// replaced by `desired`'s; keys that others set on the host object are kept.
/// Server-owned fields (uid, resourceVersion, ...) come from `existing`, so
/// the result can be sent as the update.
pub fn merge_host_metadata(existing: &ObjectMeta, desired: &ObjectMeta) -> ObjectMeta {
    let empty = BTreeMap::new();
    let existing_annotations = existing.annotations.as_ref().unwrap_or(&empty);
    let owned = |bookkeeping: &str| {
        existing_annotations
            .get(bookkeeping)
            .map(|v| parse_managed_keys(v).collect::<Vec<_>>())
            .unwrap_or_default()
    };

    let mut labels = existing.labels.clone().unwrap_or_default();
    for key in owned(MANAGED_LABELS_ANNOTATION) {
        labels.remove(key);
    }
    labels.extend(
        desired
            .labels
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone())),
    );

    let mut annotations = existing_annotations.clone();
    for key in owned(MANAGED_ANNOTATIONS_ANNOTATION)
        .into_iter()
        .chain(MARKER_ANNOTATIONS)
    {
        annotations.remove(key);
    }
    annotations.extend(
        desired
            .annotations
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone())),
    );

    ObjectMeta {
        labels: Some(labels),
        annotations: Some(annotations),
        ..existing.clone()
    }
}
