//! The label and annotation keys that mark host objects as ours.
//!
//! The strings are vCluster's, unchanged, so tooling written for vCluster
//! (and a host cluster that ran it) keeps recognising synced objects.

/// Common prefix of every vCluster label and annotation key.
pub const PREFIX: &str = "vcluster.loft.sh/";

/// Label on every host object: the virtual cluster that owns it. Namespaced
/// objects carry the virtual cluster name; cluster-scoped objects carry
/// `safe_concat_name([host_namespace, "x", vcluster])`, as in vCluster.
pub const MANAGED_BY_LABEL: &str = "vcluster.loft.sh/managed-by";
/// Label on every namespaced host object: its virtual namespace.
pub const NAMESPACE_LABEL: &str = "vcluster.loft.sh/namespace";
/// Label vCluster uses to record which controller created a host object.
pub const CONTROLLED_BY_LABEL: &str = "vcluster.loft.sh/controlled-by";
/// Helm's release label, which the vCluster chart itself uses on the host.
pub const RELEASE_LABEL: &str = "release";

/// Virtual label keys that are never copied verbatim to the host, because
/// the host meaning of these keys belongs to vCluster; they are stored under
/// a hashed key instead (see [`crate::naming::hashed_label_key`]).
pub const RESERVED_LABEL_KEYS: [&str; 4] = [
    RELEASE_LABEL,
    NAMESPACE_LABEL,
    MANAGED_BY_LABEL,
    CONTROLLED_BY_LABEL,
];

/// Prefix of the hashed host keys of reserved virtual labels.
pub const LABEL_PREFIX: &str = "vcluster.loft.sh/label";
/// Prefix of the hashed host keys that copy virtual namespace labels onto
/// host pods (so host network policies can select by namespace labels).
pub const NAMESPACE_LABEL_PREFIX: &str = "vcluster.loft.sh/ns-label";

/// Annotation: the virtual object's name.
pub const OBJECT_NAME_ANNOTATION: &str = "vcluster.loft.sh/object-name";
/// Annotation: the virtual object's namespace (namespaced objects only).
pub const OBJECT_NAMESPACE_ANNOTATION: &str = "vcluster.loft.sh/object-namespace";
/// Annotation: the virtual object's UID.
pub const OBJECT_UID_ANNOTATION: &str = "vcluster.loft.sh/object-uid";
/// Annotation: the object's kind, formatted like Go's
/// `schema.GroupVersionKind.String()` (e.g. `/v1, Kind=Pod`).
pub const OBJECT_KIND_ANNOTATION: &str = "vcluster.loft.sh/object-kind";
/// Annotation: the host object's own name.
pub const OBJECT_HOST_NAME_ANNOTATION: &str = "vcluster.loft.sh/object-host-name";
/// Annotation: the host object's own namespace (namespaced objects only).
pub const OBJECT_HOST_NAMESPACE_ANNOTATION: &str = "vcluster.loft.sh/object-host-namespace";
/// Annotation: newline-joined, sorted host label keys the syncer wrote, so a
/// later one-way sync removes its own keys and leaves everyone else's.
pub const MANAGED_LABELS_ANNOTATION: &str = "vcluster.loft.sh/managed-labels";
/// Annotation: newline-joined, sorted annotation keys the syncer copied from
/// the virtual object.
pub const MANAGED_ANNOTATIONS_ANNOTATION: &str = "vcluster.loft.sh/managed-annotations";

/// Every annotation the translator writes itself. A virtual object cannot set
/// these on its host object: the translator's values always win.
pub const MARKER_ANNOTATIONS: [&str; 8] = [
    OBJECT_NAME_ANNOTATION,
    OBJECT_NAMESPACE_ANNOTATION,
    OBJECT_UID_ANNOTATION,
    OBJECT_KIND_ANNOTATION,
    OBJECT_HOST_NAME_ANNOTATION,
    OBJECT_HOST_NAMESPACE_ANNOTATION,
    MANAGED_LABELS_ANNOTATION,
    MANAGED_ANNOTATIONS_ANNOTATION,
];

/// True for the label keys in [`RESERVED_LABEL_KEYS`].
pub fn is_reserved_label_key(key: &str) -> bool {
    RESERVED_LABEL_KEYS.contains(&key)
}

/// True for the annotation keys in [`MARKER_ANNOTATIONS`].
pub fn is_marker_annotation(key: &str) -> bool {
    MARKER_ANNOTATIONS.contains(&key)
}

/// The keys listed in a `managed-labels` / `managed-annotations` value.
pub fn parse_managed_keys(value: &str) -> impl Iterator<Item = &str> {
    value.split('\n').filter(|key| !key.is_empty())
}
