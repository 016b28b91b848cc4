//! Cluster-wide classes copied from the host (optional): tenants see the
//! host's storage, ingress and priority classes, so what they name in a
//! claim, an Ingress or a pod is what the host really offers.
//!
//! Every host class is copied into the virtual cluster under the same name
//! (labels, annotations, every field of the class), with
//! [`FROM_HOST_LABEL`] on the copy. Changes follow: the fields a kind
//! allows to change are patched, a change of any other re-creates the
//! copy. When the host class goes, so does the copy. A virtual class
//! without the label is the tenant's own (or the cluster's, like the
//! `system-*` priority classes) and is never touched, even if a host class
//! has its name. Nothing flows to the host.
//!
//! One [`ClassSyncer`] serves every such kind; a kind is one small file of
//! rules implementing [`HostClass`] (see `storageclasses.rs`).

use std::collections::BTreeMap;
use std::marker::PhantomData;

use async_trait::async_trait;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::ClusterResourceScope;
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{encode, is_from_host, FROM_HOST_LABEL};
use crate::error::SyncError;
use crate::labels_annotations::map_patch;
use crate::memory::Memory;
use crate::patch::diff;
use crate::syncer::{Action, Direction, HostOnly, SyncContext, Syncer};

/// Host annotations that describe the host object, not the class.
const SKIPPED_ANNOTATIONS: &[&str] = &["kubectl.kubernetes.io/last-applied-configuration"];

/// The rules of one class kind copied from the host.
pub trait HostClass:
    Resource<DynamicType = (), Scope = ClusterResourceScope>
    + Clone
    + std::fmt::Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The syncer's name (the plural).
    const KIND: &'static str;
    /// Top-level fields patched in place; a change to any other field
    /// re-creates the copy.
    const MUTABLE: &'static [&'static str];
}

/// The syncer copying every host class of kind `K`.
pub struct ClassSyncer<K> {
    kind: PhantomData<fn() -> K>,
}

impl<K> Default for ClassSyncer<K> {
    fn default() -> Self {
        Self { kind: PhantomData }
    }
}

impl<K: HostClass> ClassSyncer<K> {
    /// A syncer for `K`.
    pub fn new() -> Self {
        Self::default()
    }
}

fn labels_of(host: &ObjectMeta) -> BTreeMap<String, String> {
    let mut labels = host.labels.clone().unwrap_or_default();
    labels.insert(FROM_HOST_LABEL.to_owned(), "true".to_owned());
    labels
}

fn annotations_of(host: &ObjectMeta) -> BTreeMap<String, String> {
    let mut annotations = host.annotations.clone().unwrap_or_default();
    annotations.retain(|k, _| !SKIPPED_ANNOTATIONS.contains(&k.as_str()));
    annotations
}

/// The virtual copy of a host class: its fields, its labels (marked) and
/// annotations, none of the host's identity.
pub fn virtual_copy<K: HostClass>(host: &K) -> K {
    let mut copy = host.clone();
    *copy.meta_mut() = ObjectMeta {
        name: host.meta().name.clone(),
        labels: Some(labels_of(host.meta())),
        annotations: Some(annotations_of(host.meta())).filter(|a| !a.is_empty()),
        ..ObjectMeta::default()
    };
    copy
}

/// The class's own fields (not `metadata`, `kind`, `apiVersion`), split
/// into the ones patched in place and the rest.
fn split<K: HostClass>(object: &Value) -> (Value, Value) {
    let (mut mutable, mut fixed) = (Map::new(), Map::new());
    for (field, value) in object.as_object().into_iter().flatten() {
        if matches!(field.as_str(), "metadata" | "kind" | "apiVersion") {
            continue;
        }
        let side = if K::MUTABLE.contains(&field.as_str()) {
            &mut mutable
        } else {
            &mut fixed
        };
        side.insert(field.clone(), value.clone());
    }
    (Value::Object(mutable), Value::Object(fixed))
}

#[async_trait]
impl<K: HostClass> Syncer for ClassSyncer<K> {
    type Object = K;
    type DynamicType = ();

    fn name(&self) -> &'static str {
        K::KIND
    }

    fn direction(&self) -> Direction {
        Direction::FromHost
    }

    fn namespaced(&self) -> bool {
        false
    }

    async fn both(
        &self,
        _ctx: &SyncContext,
        virtual_now: &K,
        host: &K,
        _memory: Option<&Memory>,
    ) -> Result<Vec<Action>, SyncError> {
        if !is_from_host(virtual_now.meta()) {
            return Ok(Vec::new());
        }
        let wanted = virtual_copy(host);
        let wanted_json = encode(K::KIND, &wanted)?;
        let current_json = encode(K::KIND, virtual_now)?;
        let (current_mutable, current_fixed) = split::<K>(&current_json);
        let (wanted_mutable, wanted_fixed) = split::<K>(&wanted_json);
        if current_fixed != wanted_fixed {
            return Ok(vec![Action::RecreateVirtual(wanted_json)]);
        }
        let mut patch = Map::new();
        if let Some(Value::Object(change)) = diff(&current_mutable, &wanted_mutable) {
            patch.extend(change);
        }
        let mut metadata = Map::new();
        let current = virtual_now.meta();
        if let Some(labels) = map_patch(
            &current.labels.clone().unwrap_or_default(),
            &labels_of(host.meta()),
        ) {
            metadata.insert("labels".into(), labels);
        }
        if let Some(annotations) = map_patch(
            &current.annotations.clone().unwrap_or_default(),
            &annotations_of(host.meta()),
        ) {
            metadata.insert("annotations".into(), annotations);
        }
        if !metadata.is_empty() {
            patch.insert("metadata".into(), Value::Object(metadata));
        }
        Ok(if patch.is_empty() {
            Vec::new()
        } else {
            vec![Action::PatchVirtual(Value::Object(patch))]
        })
    }

    async fn host_only(
        &self,
        _ctx: &SyncContext,
        host: &K,
        _memory: Option<&Memory>,
    ) -> Result<HostOnly<K>, SyncError> {
        if host.meta().name.is_none() {
            return Ok(HostOnly::Skip);
        }
        Ok(HostOnly::CreateVirtual(virtual_copy(host)))
    }
}
