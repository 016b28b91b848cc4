//! ConfigMaps and Secrets: copied to the host under translated names,
//! data owned by the virtual object.
//!
//! By default only the ones a virtual pod refers to are synced (a tenant's
//! other configuration never reaches the host); `sync_all` syncs every one.
//! Service-account token secrets are never synced: the host issues its own.

use std::collections::BTreeSet;
use std::marker::PhantomData;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::runtime::reflector::Store;
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;
use vcluster_core::TranslatorExt;

use super::pods::PodReferences;
use super::{create_on_host, encode};
use crate::error::SyncError;
use crate::memory::Memory;
use crate::patch::fields_patch;
use crate::syncer::{Action, SyncContext, Syncer, VirtualOnly};

/// What differs between the two data kinds.
pub trait DataKind:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + std::fmt::Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
    /// Name for logs and metrics.
    const NAME: &'static str;
    /// The top-level fields kept in step after creation (the copy gets
    /// every field when it is created; `type` and `immutable` cannot change
    /// afterwards anyway).
    const FIELDS: &'static [&'static str];
    /// The names of this kind a pod refers to.
    fn referenced(refs: &PodReferences) -> &BTreeSet<String>;
    /// Whether this object must never be synced.
    fn excluded(&self) -> bool {
        false
    }
}

impl DataKind for ConfigMap {
    const NAME: &'static str = "configmaps";
    const FIELDS: &'static [&'static str] = &["data", "binaryData"];
    fn referenced(refs: &PodReferences) -> &BTreeSet<String> {
        &refs.config_maps
    }
}

impl DataKind for Secret {
    const NAME: &'static str = "secrets";
    const FIELDS: &'static [&'static str] = &["data"];
    fn referenced(refs: &PodReferences) -> &BTreeSet<String> {
        &refs.secrets
    }
    fn excluded(&self) -> bool {
        self.type_.as_deref() == Some("kubernetes.io/service-account-token")
    }
}

/// Whether something other than a pod refers to an object (e.g. an
/// ingress to its TLS secret).
type Reference<K> = Box<dyn Fn(&K) -> bool + Send + Sync>;

/// The syncer of ConfigMaps or Secrets.
pub struct DataSyncer<K> {
    pods: Option<Store<Pod>>,
    others: Vec<Reference<K>>,
    _kind: PhantomData<fn() -> K>,
}

impl<K: DataKind> DataSyncer<K> {
    /// Syncs only the objects that a pod in `pods` refers to.
    pub fn referenced_by(pods: Store<Pod>) -> Self {
        Self {
            pods: Some(pods),
            others: Vec::new(),
            _kind: PhantomData,
        }
    }

    /// Also syncs the objects for which `referenced` is true (ingresses
    /// refer to their TLS secrets). Only matters when syncing referenced
    /// objects: [`DataSyncer::all`] syncs everything anyway.
    pub fn also_referenced_by(
        mut self,
        referenced: impl Fn(&K) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.others.push(Box::new(referenced));
        self
    }

    /// Syncs every object of the kind.
    pub fn all() -> Self {
        Self {
            pods: None,
            others: Vec::new(),
            _kind: PhantomData,
        }
    }

    fn wanted(&self, object: &K) -> bool {
        if object.excluded() {
            return false;
        }
        let Some(pods) = &self.pods else {
            return true;
        };
        if self.others.iter().any(|referenced| referenced(object)) {
            return true;
        }
        let namespace = object.meta().namespace.as_deref();
        let name = object.meta().name.as_deref().unwrap_or_default();
        pods.find(|pod| {
            pod.metadata.namespace.as_deref() == namespace
                && K::referenced(&PodReferences::of(pod)).contains(name)
        })
        .is_some()
    }
}

#[async_trait]
impl<K: DataKind> Syncer for DataSyncer<K> {
    type Object = K;
    type DynamicType = ();

    fn name(&self) -> &'static str {
        K::NAME
    }

    fn pair_decides(&self) -> bool {
        true
    }

    async fn virtual_only(
        &self,
        ctx: &SyncContext,
        object: &K,
        _memory: Option<&Memory>,
    ) -> Result<VirtualOnly<K>, SyncError> {
        if !self.wanted(object) {
            return Ok(VirtualOnly::Skip);
        }
        create_on_host(K::NAME, ctx, object, |translator, object| {
            translator.host_object(object)
        })
    }

    async fn both(
        &self,
        _ctx: &SyncContext,
        virtual_object: &K,
        host_object: &K,
        _memory: Option<&Memory>,
    ) -> Result<Vec<Action>, SyncError> {
        let desired = encode(K::NAME, virtual_object)?;
        let current = encode(K::NAME, host_object)?;
        Ok(fields_patch(&current, &desired, K::FIELDS)
            .map(Action::PatchHost)
            .into_iter()
            .collect())
    }
}
