//! Object metadata helpers: identity, owner references, selectors, and
//! the adoption rules every workload controller shares (client-go's
//! `ControllerRefManager`).

use std::collections::BTreeMap;
use std::fmt::Debug;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, ObjectMeta, OwnerReference, Time,
};
use kube::api::{Api, DeleteParams, Patch, Preconditions, PropagationPolicy};
use kube::Resource;
use serde::de::DeserializeOwned;
use serde_json::json;
use vcluster_core::Selector;

use crate::error::{ignore_not_found, is_status, ApiContext, Error, Result};
use vcluster_core::FieldManager;

/// The object's name, which every stored object has.
pub(crate) fn name_of<K: Resource<DynamicType = ()>>(obj: &K) -> Result<String> {
    obj.meta().name.clone().ok_or_else(|| Error::MissingField {
        kind: kind_str::<K>(),
        key: key_of(obj),
        field: "metadata.name",
    })
}

/// The object's namespace (namespaced kinds only).
pub(crate) fn namespace_of<K: Resource<DynamicType = ()>>(obj: &K) -> Result<String> {
    obj.meta()
        .namespace
        .clone()
        .ok_or_else(|| Error::MissingField {
            kind: kind_str::<K>(),
            key: key_of(obj),
            field: "metadata.namespace",
        })
}

/// The object's uid.
pub(crate) fn uid_of<K: Resource<DynamicType = ()>>(obj: &K) -> Result<String> {
    obj.meta().uid.clone().ok_or_else(|| Error::MissingField {
        kind: kind_str::<K>(),
        key: key_of(obj),
        field: "metadata.uid",
    })
}

/// The kind's name as a `'static` string, for error messages.
pub(crate) fn kind_str<K: Resource<DynamicType = ()>>() -> &'static str {
    // The kinds used here are k8s-openapi types, whose kind is a literal.
    match K::kind(&()) {
        std::borrow::Cow::Borrowed(kind) => kind,
        std::borrow::Cow::Owned(_) => "object",
    }
}

/// A controller owner reference to `owner` (`controller: true`,
/// `blockOwnerDeletion: true`): what upstream controllers put on
/// everything they create, so garbage collection removes it with them.
pub(crate) fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> Result<OwnerReference> {
    let mut reference = owner
        .controller_owner_ref(&())
        .ok_or_else(|| Error::MissingField {
            kind: kind_str::<K>(),
            key: key_of(owner),
            field: "metadata.uid",
        })?;
    reference.controller = Some(true);
    reference.block_owner_deletion = Some(true);
    Ok(reference)
}

/// The owner reference marked `controller: true`, if any.
pub(crate) fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|r| r.controller == Some(true))
}

/// Whether `meta`'s controller is the object with `uid`.
pub(crate) fn is_controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_of(meta).is_some_and(|r| r.uid == uid)
}

/// The object's labels (empty when it has none).
pub(crate) fn labels(meta: &ObjectMeta) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    meta.labels.as_ref().unwrap_or(&EMPTY)
}

/// Parses a workload's `spec.selector`. A missing selector selects
/// nothing here (the API server requires one where it matters).
pub(crate) fn selector_of(
    kind: &'static str,
    key: &str,
    selector: Option<&LabelSelector>,
) -> Result<Selector> {
    let Some(selector) = selector else {
        return Err(Error::InvalidSpec {
            kind,
            key: key.to_owned(),
            message: "spec.selector is missing".into(),
        });
    };
    Selector::from_label_selector(selector).map_err(|e| Error::InvalidSpec {
        kind,
        key: key.to_owned(),
        message: format!("invalid spec.selector: {e}"),
    })
}

/// `namespace/name` of an object (`name` when cluster-scoped).
pub(crate) fn key_of<K: Resource>(obj: &K) -> String {
    let meta = obj.meta();
    let name = meta.name.as_deref().unwrap_or("<unnamed>");
    match meta.namespace.as_deref() {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_owned(),
    }
}

/// A timestamp as Kubernetes stores it (whole seconds), so comparing a
/// status we computed with the one read back does not see phantom changes.
pub(crate) fn time(ts: jiff::Timestamp) -> Time {
    Time(jiff::Timestamp::from_second(ts.as_second()).unwrap_or(ts))
}

/// Deletes `obj` if it is still the same object (uid precondition), in
/// the background (its own dependents are garbage collected after it).
/// Returns whether this call deleted it: an object already gone, or
/// replaced by a namesake, is not an error.
pub(crate) async fn delete_exact<K>(api: &Api<K>, obj: &K) -> Result<bool>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let name = name_of(obj)?;
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: obj.meta().uid.clone(),
            resource_version: None,
        }),
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => Ok(true),
        Err(err) if is_status(&err, 404) || is_status(&err, 409) => Ok(false),
        Err(err) => Err(err).context("delete", kind_str::<K>(), &key_of(obj)),
    }
}

/// How a controller's children split, by client-go's adoption rules.
#[derive(Debug)]
pub(crate) struct Claim<C> {
    /// Controlled by the owner and selected by it.
    pub owned: Vec<C>,
    /// Selected but controlled by nobody: to adopt.
    pub adopt: Vec<C>,
    /// Controlled by the owner but no longer selected: to release.
    pub release: Vec<C>,
}

/// Splits `children` for the owner with `owner_uid` and `selector`.
/// Children controlled by someone else are left alone; orphans are
/// adopted only while the owner is not being deleted.
pub(crate) fn classify<C: Resource>(
    owner_uid: &str,
    selector: &Selector,
    owner_deleting: bool,
    children: Vec<C>,
) -> Claim<C> {
    let mut claim = Claim {
        owned: Vec::new(),
        adopt: Vec::new(),
        release: Vec::new(),
    };
    for child in children {
        let meta = child.meta();
        let matches = selector.matches(labels(meta));
        let deleting = meta.deletion_timestamp.is_some();
        match controller_of(meta) {
            Some(r) if r.uid == owner_uid => {
                if matches {
                    claim.owned.push(child);
                } else if !deleting {
                    claim.release.push(child);
                }
            }
            Some(_) => {}
            None => {
                if matches && !owner_deleting && !deleting {
                    claim.adopt.push(child);
                }
            }
        }
    }
    claim
}

/// Applies a [`Claim`]: adopts the orphans (adding `owner_ref`) and
/// releases the strays (removing it), each preconditioned on the child's
/// resourceVersion. Returns the owned children, adopted ones included.
/// A child that changed meanwhile is skipped; the next reconcile sees it.
pub(crate) async fn settle_claim<C>(
    api: &Api<C>,
    owner_ref: &OwnerReference,
    claim: Claim<C>,
) -> Result<Vec<C>>
where
    C: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let mut owned = claim.owned;
    for child in claim.adopt {
        let mut refs = child.meta().owner_references.clone().unwrap_or_default();
        refs.push(owner_ref.clone());
        if let Some(adopted) = patch_owner_refs(api, &child, refs, "adopt").await? {
            tracing::debug!(child = %key_of(&adopted), "adopted");
            owned.push(adopted);
        }
    }
    for child in claim.release {
        let refs: Vec<OwnerReference> = child
            .meta()
            .owner_references
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.uid != owner_ref.uid)
            .collect();
        if patch_owner_refs(api, &child, refs, "release")
            .await?
            .is_some()
        {
            tracing::debug!(child = %key_of(&child), "released");
        }
    }
    Ok(owned)
}

async fn patch_owner_refs<C>(
    api: &Api<C>,
    child: &C,
    refs: Vec<OwnerReference>,
    verb: &'static str,
) -> Result<Option<C>>
where
    C: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let name = name_of(child)?;
    let patch = json!({"metadata": {
        "ownerReferences": refs,
        "resourceVersion": child.meta().resource_version,
    }});
    match ignore_not_found(
        api.patch(
            &name,
            &FieldManager::CONTROLLERS.patch_params(),
            &Patch::Merge(&patch),
        )
        .await,
    ) {
        Ok(patched) => Ok(patched),
        Err(err) if is_status(&err, 409) => Ok(None),
        Err(err) => Err(err).context(verb, kind_str::<C>(), &key_of(child)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    fn pod(name: &str, app: &str, controller: Option<&str>) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.name = Some(name.into());
        pod.metadata.labels = Some([("app".to_owned(), app.to_owned())].into());
        pod.metadata.owner_references = controller.map(|uid| {
            vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "ReplicaSet".into(),
                name: "rs".into(),
                uid: uid.into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]
        });
        pod
    }

    #[test]
    fn claims_follow_client_go_adoption_rules() {
        let selector = Selector::parse("app=web").expect("selector");
        let children = vec![
            pod("mine", "web", Some("me")),
            pod("stray", "db", Some("me")),
            pod("orphan", "web", None),
            pod("other-orphan", "db", None),
            pod("theirs", "web", Some("them")),
        ];
        let claim = classify("me", &selector, false, children.clone());
        let names = |v: &[Pod]| -> Vec<String> {
            v.iter().filter_map(|p| p.metadata.name.clone()).collect()
        };
        assert_eq!(names(&claim.owned), ["mine"]);
        assert_eq!(names(&claim.adopt), ["orphan"]);
        assert_eq!(names(&claim.release), ["stray"]);
        let deleting = classify("me", &selector, true, children);
        assert!(
            deleting.adopt.is_empty(),
            "an owner being deleted adopts nothing"
        );
    }
}
