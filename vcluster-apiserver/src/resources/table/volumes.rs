//! Printers for storage: persistent volumes, claims and storage classes.

use jiff::Timestamp;
use serde_json::Value;

use super::format::{age, get, list_at, name, opt_bool, opt_str, str_at, UNSET};
use super::Row;

/// The legacy annotation that overrides `storageClassName`.
const BETA_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

/// NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM STORAGECLASS
/// VOLUMEATTRIBUTESCLASS REASON AGE + VOLUMEMODE.
pub(crate) fn persistent_volume(pv: &Value, now: Timestamp) -> Row {
    let claim = match get(pv, &["spec", "claimRef"]) {
        Some(claim) if claim.is_object() => format!(
            "{}/{}",
            str_at(claim, &["namespace"]),
            str_at(claim, &["name"])
        ),
        _ => String::new(),
    };
    let class = opt_str(pv, &["metadata", "annotations", BETA_CLASS_ANNOTATION])
        .unwrap_or_else(|| str_at(pv, &["spec", "storageClassName"]));
    // Unset policy and phase cannot be seen on a real cluster: kube
    // defaults them on write.
    let reclaim = match str_at(pv, &["spec", "persistentVolumeReclaimPolicy"]) {
        "" => "Retain",
        policy => policy,
    };
    vec![
        name(pv).into(),
        quantity(get(pv, &["spec", "capacity", "storage"])).into(),
        access_modes(list_at(pv, &["spec", "accessModes"])).into(),
        reclaim.into(),
        phase(pv).into(),
        claim.into(),
        class.into(),
        attributes_class(pv).into(),
        str_at(pv, &["status", "reason"]).into(),
        age(pv, now).into(),
        volume_mode(pv).into(),
    ]
    .into()
}

/// NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS
/// VOLUMEATTRIBUTESCLASS AGE + VOLUMEMODE. Capacity and modes show only
/// once the claim is bound to a volume.
pub(crate) fn persistent_volume_claim(pvc: &Value, now: Timestamp) -> Row {
    let volume = str_at(pvc, &["spec", "volumeName"]);
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(get(pvc, &["status", "capacity", "storage"])),
            access_modes(list_at(pvc, &["status", "accessModes"])),
        )
    };
    let class = opt_str(pvc, &["metadata", "annotations", BETA_CLASS_ANNOTATION])
        .or_else(|| opt_str(pvc, &["spec", "storageClassName"]))
        .unwrap_or("");
    vec![
        name(pvc).into(),
        phase(pvc).into(),
        volume.into(),
        capacity.into(),
        modes.into(),
        class.into(),
        attributes_class(pvc).into(),
        age(pvc, now).into(),
        volume_mode(pvc).into(),
    ]
    .into()
}

/// NAME PROVISIONER RECLAIMPOLICY VOLUMEBINDINGMODE ALLOWVOLUMEEXPANSION AGE;
/// the default class is marked `(default)`.
pub(crate) fn storage_class(sc: &Value, now: Timestamp) -> Row {
    let is_default = [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|key| opt_str(sc, &["metadata", "annotations", key]) == Some("true"));
    let mut shown_name = name(sc).to_owned();
    if is_default {
        shown_name.push_str(" (default)");
    }
    let reclaim = opt_str(sc, &["reclaimPolicy"]).unwrap_or("Delete");
    let binding = opt_str(sc, &["volumeBindingMode"]).unwrap_or("Immediate");
    let expansion = opt_bool(sc, &["allowVolumeExpansion"]).unwrap_or(false);
    vec![
        shown_name.into(),
        str_at(sc, &["provisioner"]).into(),
        reclaim.into(),
        binding.into(),
        expansion.into(),
        age(sc, now).into(),
    ]
    .into()
}

/// `Terminating` while deleting, else the phase (kube defaults it to
/// `Pending`).
fn phase(object: &Value) -> &str {
    if get(object, &["metadata", "deletionTimestamp"]).is_some() {
        return "Terminating";
    }
    match str_at(object, &["status", "phase"]) {
        "" => "Pending",
        phase => phase,
    }
}

/// `spec.volumeAttributesClassName` or `<unset>`.
fn attributes_class(object: &Value) -> &str {
    match get(object, &["spec", "volumeAttributesClassName"]) {
        Some(class) => class.as_str().unwrap_or(""),
        None => UNSET,
    }
}

/// `spec.volumeMode`; kube defaults it to `Filesystem`.
fn volume_mode(object: &Value) -> &str {
    opt_str(object, &["spec", "volumeMode"]).unwrap_or("Filesystem")
}

/// A resource quantity as stored (`0` when unset, like Go's zero
/// `Quantity`). Quantities are shown as written, not re-canonicalised.
fn quantity(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".to_owned(),
    }
}

/// kube's `GetAccessModesAsString`: abbreviations in a fixed order, each
/// at most once.
fn access_modes(modes: &[Value]) -> String {
    const ABBREVIATIONS: [(&str, &str); 4] = [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ];
    ABBREVIATIONS
        .iter()
        .filter(|(mode, _)| modes.iter().any(|m| m.as_str() == Some(*mode)))
        .map(|(_, short)| *short)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{cells, headers};
    use serde_json::json;

    const CREATED: &str = "2024-06-01T11:00:00Z";

    #[test]
    fn bound_persistent_volume() {
        assert_eq!(
            headers("", "PersistentVolume"),
            [
                "NAME",
                "CAPACITY",
                "ACCESS MODES",
                "RECLAIM POLICY",
                "STATUS",
                "CLAIM",
                "STORAGECLASS",
                "VOLUMEATTRIBUTESCLASS",
                "REASON",
                "AGE",
                "VOLUMEMODE"
            ]
        );
        let pv = json!({
            "metadata": {"name": "pv-1", "creationTimestamp": CREATED},
            "spec": {"capacity": {"storage": "10Gi"},
                     "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "standard",
                     "claimRef": {"namespace": "default", "name": "data"}, "volumeMode": "Block"},
            "status": {"phase": "Bound"}
        });
        assert_eq!(
            cells("", "PersistentVolume", pv),
            [
                "pv-1",
                "10Gi",
                "RWO,RWX",
                "Delete",
                "Bound",
                "default/data",
                "standard",
                "<unset>",
                "",
                "60m",
                "Block"
            ]
        );
        let bare = json!({"metadata": {"name": "b", "deletionTimestamp": CREATED,
                                       "annotations": {"volume.beta.kubernetes.io/storage-class": "old"}}});
        assert_eq!(
            cells("", "PersistentVolume", bare)[1..],
            [
                "0",
                "",
                "Retain",
                "Terminating",
                "",
                "old",
                "<unset>",
                "",
                "<unknown>",
                "Filesystem"
            ]
        );
    }

    #[test]
    fn claims_show_capacity_only_when_bound() {
        assert_eq!(
            headers("", "PersistentVolumeClaim"),
            [
                "NAME",
                "STATUS",
                "VOLUME",
                "CAPACITY",
                "ACCESS MODES",
                "STORAGECLASS",
                "VOLUMEATTRIBUTESCLASS",
                "AGE",
                "VOLUMEMODE"
            ]
        );
        let bound = json!({
            "metadata": {"name": "data", "creationTimestamp": CREATED},
            "spec": {"volumeName": "pv-1", "storageClassName": "standard", "volumeAttributesClassName": "gold",
                     "resources": {"requests": {"storage": "5Gi"}}},
            "status": {"phase": "Bound", "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOncePod"]}
        });
        assert_eq!(
            cells("", "PersistentVolumeClaim", bound),
            [
                "data",
                "Bound",
                "pv-1",
                "10Gi",
                "RWOP",
                "standard",
                "gold",
                "60m",
                "Filesystem"
            ]
        );
        let pending = json!({"metadata": {"name": "p"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}});
        assert_eq!(
            cells("", "PersistentVolumeClaim", pending)[1..7],
            ["Pending", "", "", "", "", "<unset>"]
        );
    }

    #[test]
    fn storage_classes_mark_the_default() {
        let sc = json!({
            "metadata": {"name": "standard", "creationTimestamp": CREATED,
                         "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer",
            "allowVolumeExpansion": true
        });
        assert_eq!(
            cells("storage.k8s.io", "StorageClass", sc),
            [
                json!("standard (default)"),
                json!("rancher.io/local-path"),
                json!("Delete"),
                json!("WaitForFirstConsumer"),
                json!(true),
                json!("60m")
            ]
        );
        let plain =
            json!({"metadata": {"name": "slow"}, "provisioner": "p", "reclaimPolicy": "Retain"});
        assert_eq!(
            cells("storage.k8s.io", "StorageClass", plain)[..5],
            [
                json!("slow"),
                json!("p"),
                json!("Retain"),
                json!("Immediate"),
                json!(false)
            ]
        );
    }
}
