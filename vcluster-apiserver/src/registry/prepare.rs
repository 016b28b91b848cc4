//! Turning a request body into the object to store, without touching
//! storage: decoding and normalising, names from `generateName`, defaults
//! and validation (through the kind's strategy), the update merge that
//! keeps `status` and server-owned metadata, and how stored objects are
//! presented at the served version.

use serde_json::{json, Value};

use super::{encode, UpdateTarget};
use crate::error::{ApiError, FieldCause};
use crate::object::{self, validate};
use crate::resources::{custom, events, ResourceInfo};

pub(super) fn is_crd(resource: &ResourceInfo) -> bool {
    resource.is(custom::GROUP, custom::PLURAL)
}

/// Shows a stored object as `resource` serves it: all served versions of a
/// custom resource share one storage and an object is shown at the version
/// asked for; `events.k8s.io` events are stored as core events.
pub(crate) fn present(resource: &ResourceInfo, object: &mut Value) {
    if resource.custom.is_some() {
        if let Some(map) = object.as_object_mut() {
            map.insert("apiVersion".into(), json!(resource.api_version()));
        }
    } else if events::is_events_k8s_io(resource) {
        events::from_core(object);
    } else if let Some(conversion) = resource.conversion {
        let api_version = resource.api_version();
        if object.get("apiVersion").and_then(Value::as_str) != Some(api_version.as_str()) {
            (conversion.from_storage)(object);
        }
    }
}

/// Whether objects stored for `resource` must go through [`present`]
/// before a client sees them (the stored `apiVersion` is another one).
pub(crate) fn needs_presenting(resource: &ResourceInfo, stored: &Value) -> bool {
    (resource.custom.is_some()
        || events::is_events_k8s_io(resource)
        || resource.conversion.is_some())
        && stored.get("apiVersion").and_then(Value::as_str) != Some(resource.api_version().as_str())
}

/// Encodes an object for storage: custom resources at their storage
/// version, `events.k8s.io` events in the core form.
pub(super) fn encode_for(
    resource: &ResourceInfo,
    object: &Value,
) -> Result<bytes::Bytes, ApiError> {
    match &resource.custom {
        Some(custom) if !custom.storage => {
            let mut stored = object.clone();
            stored["apiVersion"] = json!(format!("{}/{}", resource.group, custom.storage_version));
            encode(&stored)
        }
        None if events::is_events_k8s_io(resource) => {
            let mut stored = object.clone();
            events::to_core(&mut stored);
            encode(&stored)
        }
        None => match resource.conversion {
            Some(conversion) => {
                let mut stored = object.clone();
                (conversion.to_storage)(&mut stored);
                encode(&stored)
            }
            None => encode(object),
        },
        _ => encode(object),
    }
}

/// Checks a request body against the URL: type, namespace and name.
pub(super) fn check_body(
    resource: &ResourceInfo,
    namespace: Option<&str>,
    url_name: Option<&str>,
    mut body: Value,
) -> Result<Value, ApiError> {
    let Some(map) = body.as_object_mut() else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON or YAML object",
        ));
    };
    let api_version = resource.api_version();
    for (field, expected) in [
        ("apiVersion", api_version.as_str()),
        ("kind", resource.kind.as_str()),
    ] {
        match map.get(field) {
            None | Some(Value::Null) => {
                map.insert(field.into(), json!(expected));
            }
            Some(Value::String(s)) if s == expected => {}
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "the {field} of the object ({}) does not match the resource served at this URL ({})",
                    other.as_str().unwrap_or("?"),
                    expected
                )));
            }
        }
    }
    let body_ns = object::namespace(&body).to_owned();
    if resource.namespaced {
        let url_ns = namespace.unwrap_or("");
        if !body_ns.is_empty() && body_ns != url_ns {
            return Err(ApiError::bad_request(format!(
                "the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({url_ns})"
            )));
        }
        object::metadata_mut(&mut body).insert("namespace".into(), json!(url_ns));
    } else {
        object::metadata_mut(&mut body).remove("namespace");
    }
    if let Some(url_name) = url_name {
        let body_name = object::name(&body);
        if body_name.is_empty() {
            object::metadata_mut(&mut body).insert("name".into(), json!(url_name));
        } else if body_name != url_name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({url_name})"
            )));
        }
    }
    normalize(resource, body)
}

/// Rejects fields of the wrong type and drops unknown ones (typed kinds;
/// for custom resources: what the schema does not specify, then its
/// defaults are filled).
pub(super) fn normalize(resource: &ResourceInfo, mut body: Value) -> Result<Value, ApiError> {
    if let Some(custom) = &resource.custom {
        custom.prepare(&mut body);
        normalize_metadata(&mut body)?;
        return Ok(body);
    }
    let Some(normalize) = resource.typed.map(|t| t.normalize) else {
        return Ok(body);
    };
    normalize(body).map_err(|err| {
        ApiError::bad_request(format!(
            "{} in version {:?} cannot be handled as a {}: {err}",
            resource.kind, resource.version, resource.kind
        ))
    })
}

/// Checks and prunes `metadata` of an untyped object through `ObjectMeta`.
pub(super) fn normalize_metadata(object: &mut Value) -> Result<(), ApiError> {
    let Some(meta) = object.get_mut("metadata") else {
        return Ok(());
    };
    let typed: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta =
        serde_json::from_value(meta.clone()).map_err(|err| {
            ApiError::bad_request(format!("the object's metadata cannot be decoded: {err}"))
        })?;
    *meta = serde_json::to_value(typed)
        .map_err(|err| ApiError::internal(format!("metadata cannot be encoded: {err}")))?;
    Ok(())
}

/// Fills `metadata.name` from `generateName` as kube-apiserver does.
/// The kind as Go prints a group kind in messages: `ReplicaSet.apps`,
/// `Pod` for the core group.
pub(super) fn group_kind(resource: &ResourceInfo) -> String {
    if resource.group.is_empty() {
        resource.kind.clone()
    } else {
        format!("{}.{}", resource.kind, resource.group)
    }
}

pub(super) fn assign_name(resource: &ResourceInfo, object: &mut Value) -> Result<(), ApiError> {
    if !object::name(object).is_empty() {
        return Ok(());
    }
    let prefix = object::meta_str(object, "generateName").to_owned();
    if prefix.is_empty() {
        return Err(ApiError::invalid(
            &group_kind(resource),
            "",
            vec![crate::error::FieldCause {
                reason: "FieldValueRequired",
                field: "metadata.name".into(),
                message: "Required value: name or generateName is required".into(),
            }],
        ));
    }
    // Same alphabet and length as upstream: no vowels (no words), no
    // look-alike characters.
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let suffix: String = uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(5)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    let max_prefix = 63 - suffix.len();
    let prefix = if prefix.len() > max_prefix {
        &prefix[..max_prefix]
    } else {
        prefix.as_str()
    };
    object::metadata_mut(object).insert("name".into(), json!(format!("{prefix}{suffix}")));
    Ok(())
}

pub(super) fn reject_invalid(resource: &ResourceInfo, object: &Value) -> Result<(), ApiError> {
    let mut causes = validate::metadata_causes(object, |name| resource.strategy.name_errors(name));
    resource.strategy.validate(object, &mut causes);
    if let Some(custom) = &resource.custom {
        causes.extend(custom.validate(object));
    }
    reject_causes(resource, object, causes)
}

pub(super) fn reject_causes(
    resource: &ResourceInfo,
    object: &Value,
    causes: Vec<FieldCause>,
) -> Result<(), ApiError> {
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            &group_kind(resource),
            object::name(object),
            causes,
        ))
    }
}

/// A pod's ephemeral containers only grow: none removed, none changed
/// (`ValidatePodEphemeralContainersUpdate`), and a new one's name is not
/// taken by another container of the pod.
pub(super) fn check_ephemeral_containers(
    resource: &ResourceInfo,
    old: &Value,
    new: &Value,
) -> Result<(), ApiError> {
    let list = |pod: &Value, field: &str| -> Vec<Value> {
        object::path(pod, &format!("spec.{field}"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (before, after) = (
        list(old, "ephemeralContainers"),
        list(new, "ephemeralContainers"),
    );
    let mut causes = Vec::new();
    for container in &before {
        let name = container["name"].as_str().unwrap_or_default();
        match after.iter().find(|c| c["name"] == container["name"]) {
            None => causes.push(FieldCause::forbidden(
                "spec.ephemeralContainers",
                &format!("existing ephemeral containers {name:?} may not be removed\n"),
            )),
            Some(now) if now != container => causes.push(FieldCause::forbidden(
                "spec.ephemeralContainers",
                &format!("existing ephemeral containers {name:?} may not be changed\n"),
            )),
            Some(_) => {}
        }
    }
    let mut names: Vec<String> = ["containers", "initContainers"]
        .iter()
        .flat_map(|field| list(new, field))
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect();
    for (i, container) in after.iter().enumerate() {
        let name = container["name"].as_str().unwrap_or_default();
        let field = format!("spec.ephemeralContainers[{i}].name");
        if name.is_empty() {
            causes.push(FieldCause::required(field));
        } else if names.iter().any(|n| n == name) {
            causes.push(FieldCause {
                reason: "FieldValueDuplicate",
                field,
                message: format!("Duplicate value: {name:?}"),
            });
        } else {
            names.push(name.to_owned());
        }
        let image = container["image"].as_str().unwrap_or_default();
        if image.is_empty() {
            causes.push(FieldCause::required(format!(
                "spec.ephemeralContainers[{i}].image"
            )));
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&resource.kind, object::name(new), causes))
    }
}

/// Builds the object an update stores from the old one and the body.
pub(super) fn merge_update(
    resource: &ResourceInfo,
    old: &Value,
    body: Value,
    target: UpdateTarget,
) -> Value {
    let mut new = match target {
        UpdateTarget::EphemeralContainers => {
            let mut new = old.clone();
            let added = object::path(&body, "spec.ephemeralContainers").cloned();
            if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                match added {
                    Some(containers) if !containers.is_null() => {
                        spec.insert("ephemeralContainers".into(), containers);
                    }
                    _ => {
                        spec.remove("ephemeralContainers");
                    }
                }
            }
            if let Some(version) = object::path(&body, "metadata.resourceVersion").cloned() {
                object::metadata_mut(&mut new).insert("resourceVersion".into(), version);
            }
            new
        }
        UpdateTarget::Status => {
            let mut new = old.clone();
            match body.get("status") {
                Some(status) => new["status"] = status.clone(),
                None => {
                    if let Some(map) = new.as_object_mut() {
                        map.remove("status");
                    }
                }
            }
            if resource.strategy.status_writes_metadata() {
                // Labels, annotations, finalizers and owner references
                // come with the status, as upstream's status strategies
                // reset only the spec; what the server owns stays.
                if let Some(meta) = object::metadata(&body).cloned() {
                    new["metadata"] = Value::Object(meta);
                    keep_server_metadata(old, &mut new, &["name", "namespace"]);
                }
                resource.strategy.prepare_for_status_update(old, &mut new);
            }
            new
        }
        UpdateTarget::Main => {
            let mut new = body;
            if resource.status_subresource {
                match old.get("status") {
                    Some(status) => new["status"] = status.clone(),
                    None => {
                        if let Some(map) = new.as_object_mut() {
                            map.remove("status");
                        }
                    }
                }
            }
            keep_server_metadata(old, &mut new, &[]);
            resource.strategy.prepare_for_update(old, &mut new);
            // Only kinds that track a generation (they got one at create)
            // count changes: a ConfigMap never has one, as upstream.
            let tracked = old.pointer("/metadata/generation").and_then(Value::as_i64);
            if let (Some(generation), true) =
                (tracked, object::spec_view(&new) != object::spec_view(old))
            {
                object::metadata_mut(&mut new).insert("generation".into(), json!(generation + 1));
            }
            new
        }
    };
    // The stored value never carries a resourceVersion; compare without it.
    object::metadata_mut(&mut new).insert(
        "resourceVersion".into(),
        old.pointer("/metadata/resourceVersion")
            .cloned()
            .unwrap_or(Value::Null),
    );
    new
}

/// Copies the metadata the server owns (and `also`) from the stored
/// object into an update: a client never sets them (upstream's
/// `BeforeUpdate`).
fn keep_server_metadata(old: &Value, new: &mut Value, also: &[&str]) {
    let old_meta = object::metadata(old).cloned().unwrap_or_default();
    let meta = object::metadata_mut(new);
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ]
    .iter()
    .chain(also)
    {
        match old_meta.get(*field) {
            Some(value) => meta.insert((*field).into(), value.clone()),
            None => meta.remove(*field),
        };
    }
}

/// Rejects updates the kind's strategy refuses (immutable fields).
pub(super) fn check_immutable(
    resource: &ResourceInfo,
    old: &Value,
    new: &Value,
) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    resource.strategy.validate_update(old, new, &mut causes);
    reject_causes(resource, new, causes)
}

/// Sets the status a new object starts with. Clients cannot create an
/// object that claims to be running already; whoever owns the status (the
/// kubelet, a controller, the syncer) reports it through `/status`.
pub(super) fn set_initial_status(resource: &ResourceInfo, object: &mut Value) {
    let strategy = resource.strategy;
    let status = match strategy.initial_status(object) {
        Some(status) => status,
        None if resource.status_subresource && !strategy.keeps_status_on_create() => json!({}),
        None => return,
    };
    if let Some(map) = object.as_object_mut() {
        if status.as_object().is_some_and(|s| s.is_empty()) {
            map.remove("status");
        } else {
            map.insert("status".into(), status);
        }
    }
}
