//! Pods: the objects that really run. The host copy is the translated
//! pod (see [`translate`]); its status and node flow back.
//!
//! - A virtual pod waits until the configmaps, secrets, claims (and service
//!   account) it needs exist on the host, so it never starts half-configured.
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
use kube::runtime::reflector::{ObjectRef, Store};
use kube::Api;
use serde_json::{json, Value};
use vcluster_core::VirtualKey;

use super::{encode, key_of};
use crate::error::{Side, SyncError};
use crate::patch::diff;
use crate::syncer::{Action, HostOnly, Memory, SyncContext, Syncer, VirtualOnly};

mod references;
pub mod translate;

pub use references::PodReferences;
pub use translate::PodEnvironment;

/// How long a pod waits before looking again for a missing dependency.
const DEPENDENCY_RETRY: Duration = Duration::from_millis(500);

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
}

impl PodSyncer {
    /// A pod syncer with these host-pod settings and dependencies.
    pub fn new(env: PodEnvironment, wait_for: WaitFor) -> Self {
        Self {
            env,
            wait_for,
            namespaces: None,
        }
    }

    /// Carries the virtual namespaces' labels onto host pods, read from
    /// `namespaces` (so namespace selectors of network policies work).
    pub fn with_namespace_labels(mut self, namespaces: Store<Namespace>) -> Self {
        self.namespaces = Some(namespaces);
        self
    }

    /// The first dependency of `pod` missing on the host, if any.
    async fn missing_dependency(
        &self,
        ctx: &SyncContext,
        pod: &Pod,
    ) -> Result<Option<String>, SyncError> {
        let refs = PodReferences::of(pod);
        let key = key_of(pod);
        let namespace = key.namespace().unwrap_or_default().to_owned();
        let host_name = |name: &str| {
            ctx.translator
                .host_key(&VirtualKey::namespaced(namespace.as_str(), name))
                .map(|k| k.name().to_owned())
                .map_err(|source| SyncError::Translation {
                    kind: "pods",
                    key: key.clone(),
                    source: Box::new(source),
                })
        };
        let client = ctx.host_client.clone();
        let host_ns = ctx.host_namespace.as_str();
        let exists = |result: Result<bool, kube::Error>| {
            result.map_err(|source| SyncError::Api {
                kind: "pods",
                key: key.clone(),
                operation: "look up a dependency",
                side: Side::Host,
                source: Box::new(source),
            })
        };
        if self.wait_for.config_maps {
            for name in &refs.config_maps {
                let api: Api<ConfigMap> = Api::namespaced(client.clone(), host_ns);
                if !exists(api.get_opt(&host_name(name)?).await.map(|o| o.is_some()))? {
                    return Ok(Some(format!("configmap {name}")));
                }
            }
        }
        if self.wait_for.secrets {
            for name in &refs.secrets {
                let api: Api<Secret> = Api::namespaced(client.clone(), host_ns);
                if !exists(api.get_opt(&host_name(name)?).await.map(|o| o.is_some()))? {
                    return Ok(Some(format!("secret {name}")));
                }
            }
        }
        if self.wait_for.claims {
            for name in &refs.claims {
                let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), host_ns);
                if !exists(api.get_opt(&host_name(name)?).await.map(|o| o.is_some()))? {
                    return Ok(Some(format!("persistentvolumeclaim {name}")));
                }
            }
        }
        if self.wait_for.service_account && self.env.translate_service_accounts {
            let spec = pod.spec.as_ref();
            let account = spec
                .and_then(|s| {
                    s.service_account_name
                        .clone()
                        .or_else(|| s.service_account.clone())
                })
                .unwrap_or_else(|| "default".to_owned());
            let api: Api<ServiceAccount> = Api::namespaced(client.clone(), host_ns);
            if !exists(
                api.get_opt(&host_name(&account)?)
                    .await
                    .map(|o| o.is_some()),
            )? {
                return Ok(Some(format!("serviceaccount {account}")));
            }
        }
        Ok(None)
    }
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
        if let Some(missing) = self.missing_dependency(ctx, pod).await? {
            return Ok(VirtualOnly::Wait(
                DEPENDENCY_RETRY,
                format!("waiting for {missing} on the host"),
            ));
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
        Ok(VirtualOnly::CreateHost(host))
    }

    async fn both(
        &self,
        _ctx: &SyncContext,
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
        let virtual_status = encode("pods", virtual_pod)?
            .get("status")
            .cloned()
            .unwrap_or(json!({}));
        let host_status = encode("pods", host_pod)?
            .get("status")
            .cloned()
            .unwrap_or(json!({}));
        if let Some(change) = diff(&virtual_status, &host_status) {
            actions.push(Action::PatchVirtualStatus(json!({ "status": change })));
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
