//! Pods: the objects that really run. The host copy is the translated
//! pod (see [`translate`]); its status and node flow back.
//!
//! - A pod the host isolation [`policy`] forbids (host namespaces,
//!   privileged containers, `hostPath`... at the configured Pod Security
//!   Standards level) is never created on the host: the virtual pod gets a
//!   `PodScheduled=False` condition with reason [`SYNC_BLOCKED`] and a
//!   warning event saying why.
//! - A virtual pod waits until the configmaps, secrets, claims (and service
//!   account) it needs exist on the host, so it never starts half-configured.
//!   Each must be the host copy of exactly the object the pod names: a host
//!   object that merely has the translated name (another tenant's, or of
//!   another namespace of this tenant, through the `-x-` ambiguity of the
//!   naming scheme) blocks the pod as above, so a pod never mounts data
//!   that is not its own.
//! - Container images are the one spec change Kubernetes allows on a
//!   running pod; they are patched on the host by container name, leaving
//!   containers that the host added (sidecars) alone.
//! - Deleting the virtual pod deletes the host pod with its grace period;
//!   a host pod deleted behind the syncer's back deletes the virtual pod,
//!   as an eviction would.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolumeClaim, Pod, Secret, ServiceAccount,
};
use k8s_openapi::NamespaceResourceScope;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource};
use serde_json::{json, Value};
use vcluster_core::VirtualKey;

use super::key_of;
use crate::error::{Side, SyncError};
use crate::memory::Memory;
use crate::patch::diff;
use crate::policy::{self, PodPolicy};
use crate::syncer::{Action, Blocked, HostOnly, SyncContext, Syncer, VirtualOnly};

mod references;
pub mod tokens;
pub mod translate;

pub use references::PodReferences;
pub use tokens::ServiceAccountTokens;
pub use translate::PodEnvironment;

/// The reason of the condition and event of a pod that is not synced.
pub const SYNC_BLOCKED: &str = "SyncBlocked";

/// How long a pod waits before looking again for a missing dependency.
const DEPENDENCY_RETRY: Duration = Duration::from_millis(500);

/// How long a pod blocked by someone else's object waits before looking
/// again (the name may have been freed).
const FOREIGN_RETRY: Duration = Duration::from_secs(30);

/// Which dependencies a pod waits for on the host (those whose syncers run).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WaitFor {
    /// Referenced configmaps.
    pub config_maps: bool,
    /// Referenced secrets.
    pub secrets: bool,
    /// Referenced persistent volume claims.
    pub claims: bool,
    /// The (translated) service account.
    pub service_account: bool,
}

/// The pod syncer.
pub struct PodSyncer {
    env: PodEnvironment,
    wait_for: WaitFor,
    namespaces: Option<Store<Namespace>>,
    policy: PodPolicy,
}

/// Whether the objects a pod refers to are ready on the host.
#[derive(Debug, PartialEq, Eq)]
enum Readiness {
    /// All there (or not synced at all).
    Ready,
    /// One is missing: look again later.
    Missing(String),
    /// A host object with a referenced name is not the copy of the
    /// referenced object: the pod must not run.
    Foreign(String),
}

impl PodSyncer {
    /// A pod syncer with these host-pod settings and dependencies, and the
    /// default host isolation policy (baseline).
    pub fn new(env: PodEnvironment, wait_for: WaitFor) -> Self {
        Self {
            env,
            wait_for,
            namespaces: None,
            policy: PodPolicy::default(),
        }
    }

    /// Enforces `policy` on pods before they are created on the host.
    pub fn with_policy(mut self, policy: PodPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Carries the virtual namespaces' labels onto host pods, read from
    /// `namespaces` (so namespace selectors of network policies work).
    pub fn with_namespace_labels(mut self, namespaces: Store<Namespace>) -> Self {
        self.namespaces = Some(namespaces);
        self
    }

    /// Whether the configmaps, secrets, claims (and service account) that
    /// `pod` refers to are ready on the host: each host object with a
    /// referenced name must be the copy of exactly the referenced virtual
    /// object; a missing one is waited for when its syncer runs.
    async fn check_references(&self, ctx: &SyncContext, pod: &Pod) -> Result<Readiness, SyncError> {
        let refs = PodReferences::of(pod);
        let key = key_of(pod);
        let namespace = key.namespace().unwrap_or_default().to_owned();
        let account = self.env.translate_service_accounts.then(|| {
            pod.spec
                .as_ref()
                .and_then(|s| {
                    s.service_account_name
                        .clone()
                        .or_else(|| s.service_account.clone())
                })
                .unwrap_or_else(|| "default".to_owned())
        });
        for name in &refs.config_maps {
            let found = self
                .lookup::<ConfigMap>(ctx, &key, &namespace, name)
                .await?;
            if let Some(state) = readiness("configmap", name, found, self.wait_for.config_maps) {
                return Ok(state);
            }
        }
        for name in &refs.secrets {
            let found = self.lookup::<Secret>(ctx, &key, &namespace, name).await?;
            if let Some(state) = readiness("secret", name, found, self.wait_for.secrets) {
                return Ok(state);
            }
        }
        for name in &refs.claims {
            let found = self
                .lookup::<PersistentVolumeClaim>(ctx, &key, &namespace, name)
                .await?;
            if let Some(state) =
                readiness("persistentvolumeclaim", name, found, self.wait_for.claims)
            {
                return Ok(state);
            }
        }
        if let Some(account) = &account {
            let found = self
                .lookup::<ServiceAccount>(ctx, &key, &namespace, account)
                .await?;
            if let Some(state) = readiness(
                "serviceaccount",
                account,
                found,
                self.wait_for.service_account,
            ) {
                return Ok(state);
            }
        }
        Ok(Readiness::Ready)
    }

    /// Looks up the host object with the translated name of `name` in
    /// virtual `namespace`: `None` if there is none, else whether it is the
    /// copy of exactly that virtual object, and its host name.
    async fn lookup<K>(
        &self,
        ctx: &SyncContext,
        key: &VirtualKey,
        namespace: &str,
        name: &str,
    ) -> Result<Option<(bool, String)>, SyncError>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned,
    {
        let referenced = VirtualKey::namespaced(namespace, name);
        let host_name = ctx
            .translator
            .host_key(&referenced)
            .map(|k| k.name().to_owned())
            .map_err(|source| SyncError::Translation {
                kind: "pods",
                key: key.clone(),
                source: Box::new(source),
            })?;
        let api: Api<K> = Api::namespaced(ctx.host_client.clone(), &ctx.host_namespace);
        let found = api
            .get_opt(&host_name)
            .await
            .map_err(|source| SyncError::Api {
                kind: "pods",
                key: key.clone(),
                operation: "look up a dependency",
                side: Side::Host,
                source: Box::new(source),
            })?;
        Ok(found.map(|object| {
            (
                ctx.translator.is_owned_by(object.meta(), &referenced),
                host_name,
            )
        }))
    }
}

/// The readiness of one reference, if it is not simply ready.
fn readiness(
    kind: &str,
    name: &str,
    found: Option<(bool, String)>,
    synced: bool,
) -> Option<Readiness> {
    match found {
        Some((true, _)) => None,
        Some((false, host_name)) => Some(Readiness::Foreign(format!(
            "{kind} {name:?}: the host object {host_name} is not its copy (it belongs to another object); the pod would read someone else's data"
        ))),
        None if synced => Some(Readiness::Missing(format!("{kind} {name}"))),
        None => None,
    }
}

/// The decision for a pod that must not run on the host: the tenant sees
/// why in a `PodScheduled=False` condition with reason [`SYNC_BLOCKED`]
/// (the pod stays `Pending`) and a warning event.
impl PodSyncer {
    /// Ephemeral containers (`kubectl debug`) the virtual pod gained and
    /// its host pod lacks, added through the host's `ephemeralcontainers`
    /// subresource (they can only be added, never changed), translated as
    /// the pod's other containers are and judged by the host isolation
    /// policy first.
    async fn ephemeral_patch(
        &self,
        ctx: &SyncContext,
        virtual_pod: &Pod,
        host_pod: &Pod,
    ) -> Result<Option<Action>, SyncError> {
        let names = |pod: &Pod| -> Vec<String> {
            pod.spec
                .as_ref()
                .and_then(|s| s.ephemeral_containers.as_ref())
                .map(|list| list.iter().map(|c| c.name.clone()).collect())
                .unwrap_or_default()
        };
        let on_host = names(host_pod);
        if names(virtual_pod).iter().all(|n| on_host.contains(n)) {
            return Ok(None);
        }
        let namespace_labels = self.namespace_labels(ctx, virtual_pod).await;
        let translated = translate::host_pod(
            ctx.translator.as_ref(),
            virtual_pod,
            namespace_labels.as_ref(),
            &self.env,
        )
        .map_err(|source| SyncError::Translation {
            kind: "pods",
            key: key_of(virtual_pod),
            source: Box::new(source),
        })?;
        let mut wanted = host_pod
            .spec
            .as_ref()
            .and_then(|s| s.ephemeral_containers.clone())
            .unwrap_or_default();
        let new = translated
            .spec
            .and_then(|s| s.ephemeral_containers)
            .unwrap_or_default()
            .into_iter()
            .filter(|c| !on_host.contains(&c.name));
        wanted.extend(new);
        let mut candidate = host_pod.clone();
        if let Some(spec) = candidate.spec.as_mut() {
            spec.ephemeral_containers = Some(wanted.clone());
        }
        let violations = self.policy.check(&candidate);
        if !violations.is_empty() {
            tracing::warn!(
                pod = %key_of(virtual_pod),
                "ephemeral container not added on the host: it violates the host isolation policy ({}): {}",
                self.policy.level,
                policy::describe(&violations)
            );
            return Ok(None);
        }
        let wanted = serde_json::to_value(&wanted).map_err(|e| SyncError::Invalid {
            kind: "pods",
            key: key_of(virtual_pod),
            message: format!("ephemeral containers cannot be encoded as JSON: {e}"),
        })?;
        Ok(Some(Action::PatchHostSubresource {
            subresource: "ephemeralcontainers",
            patch: json!({"spec": {"ephemeralContainers": wanted}}),
        }))
    }
}

fn blocked(message: String, retry_after: Option<Duration>) -> VirtualOnly<Pod> {
    VirtualOnly::Blocked(Blocked {
        condition: "PodScheduled",
        reason: SYNC_BLOCKED,
        message,
        status: json!({"phase": "Pending"}),
        retry_after,
    })
}

/// The JSON patch ops that set the host containers' images to the
/// virtual ones, matched by container name.
fn image_patch(virtual_pod: &Pod, host_pod: &Pod) -> Vec<Value> {
    let mut ops = Vec::new();
    let (Some(virtual_spec), Some(host_spec)) = (&virtual_pod.spec, &host_pod.spec) else {
        return ops;
    };
    let no_containers = Vec::new();
    let lists = [
        (
            "containers",
            &virtual_spec.containers,
            Some(&host_spec.containers),
        ),
        (
            "initContainers",
            virtual_spec
                .init_containers
                .as_ref()
                .unwrap_or(&no_containers),
            host_spec.init_containers.as_ref(),
        ),
    ];
    for (field, wanted, current) in lists {
        let Some(current) = current else { continue };
        for container in wanted.iter() {
            let found = current
                .iter()
                .enumerate()
                .find(|(_, c)| c.name == container.name);
            if let Some((index, host_container)) = found {
                if host_container.image != container.image {
                    ops.push(json!({"op": "replace", "path": format!("/spec/{field}/{index}/image"), "value": container.image}));
                }
            }
        }
    }
    ops
}

#[async_trait]
impl Syncer for PodSyncer {
    type Object = Pod;
    type DynamicType = ();

    fn name(&self) -> &'static str {
        "pods"
    }

    /// `both` looks at the two pods only (images, ephemeral containers,
    /// node, status), so the
    /// watch echo of the syncer's own create costs nothing.
    fn pair_decides(&self) -> bool {
        true
    }

    async fn namespace_labels(
        &self,
        _ctx: &SyncContext,
        pod: &Pod,
    ) -> Option<BTreeMap<String, String>> {
        let namespaces = self.namespaces.as_ref()?;
        let name = pod.metadata.namespace.as_deref()?;
        namespaces
            .get(&ObjectRef::new(name))
            .and_then(|ns| ns.metadata.labels.clone())
    }

    async fn virtual_only(
        &self,
        ctx: &SyncContext,
        pod: &Pod,
        memory: Option<&Memory>,
    ) -> Result<VirtualOnly<Pod>, SyncError> {
        // Only this syncer's own memory says the host copy existed: after a
        // restart a missing copy is created again rather than taken for an
        // eviction, so a syncer restart never costs a tenant its pods.
        let ran_on_host = memory.is_some_and(|m| m.host_seen);
        if pod.metadata.deletion_timestamp.is_some() || ran_on_host {
            // Deleted on the virtual side (its host copy is gone now), or
            // deleted on the host behind our back: the pod is gone.
            return Ok(VirtualOnly::DeleteVirtual);
        }
        let namespace_labels = self.namespace_labels(ctx, pod).await;
        let host = translate::host_pod(
            ctx.translator.as_ref(),
            pod,
            namespace_labels.as_ref(),
            &self.env,
        )
        .map_err(|source| SyncError::Translation {
            kind: "pods",
            key: key_of(pod),
            source: Box::new(source),
        })?;
        // What would run on the host is what the policy judges.
        let violations = self.policy.check(&host);
        if !violations.is_empty() {
            let message = format!(
                "not synced to the host: the pod violates the host isolation policy ({}): {}",
                self.policy.level,
                policy::describe(&violations)
            );
            return Ok(blocked(message, None));
        }
        match self.check_references(ctx, pod).await? {
            Readiness::Ready => Ok(VirtualOnly::CreateHost(host)),
            Readiness::Missing(missing) => Ok(VirtualOnly::Wait(
                DEPENDENCY_RETRY,
                format!("waiting for {missing} on the host"),
            )),
            // Looked at again later: the name may be freed.
            Readiness::Foreign(why) => Ok(blocked(
                format!("not synced to the host: {why}"),
                Some(FOREIGN_RETRY),
            )),
        }
    }

    async fn both(
        &self,
        ctx: &SyncContext,
        virtual_pod: &Pod,
        host_pod: &Pod,
        _memory: Option<&Memory>,
    ) -> Result<Vec<Action>, SyncError> {
        if virtual_pod.metadata.deletion_timestamp.is_some() {
            return Ok(vec![Action::DeleteHost]);
        }
        let mut actions = Vec::new();
        let images = image_patch(virtual_pod, host_pod);
        if !images.is_empty() {
            actions.push(Action::JsonPatchHost(Value::Array(images)));
        }
        if let Some(added) = self.ephemeral_patch(ctx, virtual_pod, host_pod).await? {
            actions.push(added);
        }
        let host_node = host_pod.spec.as_ref().and_then(|s| s.node_name.clone());
        let virtual_node = virtual_pod.spec.as_ref().and_then(|s| s.node_name.clone());
        if let (Some(node), None) = (&host_node, &virtual_node) {
            actions.push(Action::CreateVirtualSubresource {
                subresource: "binding",
                body: json!({
                    "apiVersion": "v1",
                    "kind": "Binding",
                    "metadata": {"name": virtual_pod.metadata.name, "namespace": virtual_pod.metadata.namespace},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": node},
                }),
            });
        }
        // Typed comparison first: only a status that differs pays for the
        // JSON conversion the patch needs.
        if virtual_pod.status != host_pod.status {
            let encode_status = |pod: &Pod| {
                serde_json::to_value(&pod.status)
                    .map(|v| if v.is_null() { json!({}) } else { v })
                    .map_err(|e| SyncError::Invalid {
                        kind: "pods",
                        key: key_of(pod),
                        message: format!("status cannot be encoded as JSON: {e}"),
                    })
            };
            let virtual_status = encode_status(virtual_pod)?;
            let host_status = encode_status(host_pod)?;
            if let Some(change) = diff(&virtual_status, &host_status) {
                actions.push(Action::PatchVirtualStatus(json!({ "status": change })));
            }
        }
        Ok(actions)
    }

    async fn host_only(
        &self,
        _ctx: &SyncContext,
        host_pod: &Pod,
        _memory: Option<&Memory>,
    ) -> Result<HostOnly<Pod>, SyncError> {
        let grace = host_pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .and_then(|g| u32::try_from(g).ok());
        Ok(HostOnly::DeleteHost {
            grace_period_seconds: grace,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(images: &[(&str, &str)]) -> Pod {
        let containers: Vec<Value> = images
            .iter()
            .map(|(name, image)| json!({"name": name, "image": image}))
            .collect();
        serde_json::from_value(
            json!({"metadata": {"name": "p"}, "spec": {"containers": containers}}),
        )
        .expect("pod")
    }

    #[test]
    fn image_changes_patch_by_container_name_and_keep_sidecars() {
        let virtual_pod = pod(&[("app", "nginx:2")]);
        let host_pod = pod(&[("sidecar", "proxy:1"), ("app", "nginx:1")]);
        assert_eq!(
            image_patch(&virtual_pod, &host_pod),
            vec![json!({"op": "replace", "path": "/spec/containers/1/image", "value": "nginx:2"})]
        );
        assert!(image_patch(&host_pod, &host_pod).is_empty());
    }
}
