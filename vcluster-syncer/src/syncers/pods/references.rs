//! What a pod needs from its namespace: the configmaps, secrets and
//! claims it mounts or reads, and its service account. The pod syncer
//! translates these names for the host, waits for them to exist there, and
//! the configmap and secret syncers sync exactly the ones pods need.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Container, EnvFromSource, EnvVar, Pod, PodSpec, Volume};

/// The names a pod refers to, by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodReferences {
    /// ConfigMaps from volumes, projected volumes, `env` and `envFrom`.
    pub config_maps: BTreeSet<String>,
    /// Secrets from volumes, projected volumes, `env`, `envFrom` and
    /// `imagePullSecrets`.
    pub secrets: BTreeSet<String>,
    /// PersistentVolumeClaims from volumes.
    pub claims: BTreeSet<String>,
}

impl PodReferences {
    /// Collects the references of a pod.
    pub fn of(pod: &Pod) -> Self {
        let mut refs = Self::default();
        if let Some(spec) = &pod.spec {
            refs.collect_spec(spec);
        }
        refs
    }

    fn collect_spec(&mut self, spec: &PodSpec) {
        for volume in spec.volumes.iter().flatten() {
            self.collect_volume(volume);
        }
        let containers = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten());
        for container in containers {
            self.collect_container(container);
        }
        for ephemeral in spec.ephemeral_containers.iter().flatten() {
            self.collect_env(ephemeral.env.as_deref(), ephemeral.env_from.as_deref());
        }
        for secret in spec.image_pull_secrets.iter().flatten() {
            if !secret.name.is_empty() {
                self.secrets.insert(secret.name.clone());
            }
        }
    }

    fn collect_volume(&mut self, volume: &Volume) {
        if let Some(cm) = &volume.config_map {
            self.config_maps.insert(cm.name.clone());
        }
        if let Some(secret) = volume.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            self.secrets.insert(secret);
        }
        if let Some(claim) = &volume.persistent_volume_claim {
            self.claims.insert(claim.claim_name.clone());
        }
        for name in plugin_secret_refs(volume) {
            if !name.is_empty() {
                self.secrets.insert(name.to_owned());
            }
        }
        for source in volume
            .projected
            .iter()
            .flat_map(|p| p.sources.iter().flatten())
        {
            if let Some(cm) = &source.config_map {
                self.config_maps.insert(cm.name.clone());
            }
            if let Some(secret) = &source.secret {
                self.secrets.insert(secret.name.clone());
            }
        }
    }

    fn collect_container(&mut self, container: &Container) {
        self.collect_env(container.env.as_deref(), container.env_from.as_deref());
    }

    fn collect_env(&mut self, env: Option<&[EnvVar]>, env_from: Option<&[EnvFromSource]>) {
        for var in env.into_iter().flatten() {
            let Some(from) = &var.value_from else {
                continue;
            };
            if let Some(cm) = &from.config_map_key_ref {
                self.config_maps.insert(cm.name.clone());
            }
            if let Some(secret) = &from.secret_key_ref {
                self.secrets.insert(secret.name.clone());
            }
        }
        for source in env_from.into_iter().flatten() {
            if let Some(cm) = &source.config_map_ref {
                self.config_maps.insert(cm.name.clone());
            }
            if let Some(secret) = &source.secret_ref {
                self.secrets.insert(secret.name.clone());
            }
        }
        self.config_maps.remove("");
        self.secrets.remove("");
    }
}

/// The secrets that volume plugins read credentials from (CSI node
/// publish secrets, and the secret references of the in-tree plugins).
fn plugin_secret_refs(volume: &Volume) -> Vec<&str> {
    let mut out = Vec::new();
    let local = [
        volume
            .csi
            .as_ref()
            .and_then(|v| v.node_publish_secret_ref.as_ref()),
        volume.cephfs.as_ref().and_then(|v| v.secret_ref.as_ref()),
        volume.rbd.as_ref().and_then(|v| v.secret_ref.as_ref()),
        volume.iscsi.as_ref().and_then(|v| v.secret_ref.as_ref()),
        volume
            .flex_volume
            .as_ref()
            .and_then(|v| v.secret_ref.as_ref()),
        volume
            .storageos
            .as_ref()
            .and_then(|v| v.secret_ref.as_ref()),
        volume.scale_io.as_ref().map(|v| &v.secret_ref),
    ];
    out.extend(local.into_iter().flatten().map(|r| r.name.as_str()));
    if let Some(azure) = &volume.azure_file {
        out.push(azure.secret_name.as_str());
    }
    out
}

/// The same references, to rewrite them.
pub(super) fn plugin_secret_refs_mut(volume: &mut Volume) -> Vec<&mut String> {
    let mut out = Vec::new();
    let local = [
        volume
            .csi
            .as_mut()
            .and_then(|v| v.node_publish_secret_ref.as_mut()),
        volume.cephfs.as_mut().and_then(|v| v.secret_ref.as_mut()),
        volume.rbd.as_mut().and_then(|v| v.secret_ref.as_mut()),
        volume.iscsi.as_mut().and_then(|v| v.secret_ref.as_mut()),
        volume
            .flex_volume
            .as_mut()
            .and_then(|v| v.secret_ref.as_mut()),
        volume
            .storageos
            .as_mut()
            .and_then(|v| v.secret_ref.as_mut()),
        volume.scale_io.as_mut().map(|v| &mut v.secret_ref),
    ];
    out.extend(local.into_iter().flatten().map(|r| &mut r.name));
    if let Some(azure) = volume.azure_file.as_mut() {
        out.push(&mut azure.secret_name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_kind_of_reference() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {
                "imagePullSecrets": [{"name": "pull"}],
                "volumes": [
                    {"name": "a", "configMap": {"name": "cm-vol"}},
                    {"name": "b", "secret": {"secretName": "secret-vol"}},
                    {"name": "c", "persistentVolumeClaim": {"claimName": "data"}},
                    {"name": "d", "projected": {"sources": [{"configMap": {"name": "cm-proj"}}, {"secret": {"name": "secret-proj"}}]}}
                ],
                "initContainers": [{"name": "i", "envFrom": [{"configMapRef": {"name": "cm-init"}}]}],
                "containers": [{
                    "name": "c",
                    "env": [
                        {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm-env", "key": "k"}}},
                        {"name": "Y", "valueFrom": {"secretKeyRef": {"name": "secret-env", "key": "k"}}},
                        {"name": "Z", "value": "plain"}
                    ],
                    "envFrom": [{"secretRef": {"name": "secret-from"}}]
                }]
            }
        }))
        .expect("pod");
        let refs = PodReferences::of(&pod);
        let set = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(
            refs.config_maps,
            set(&["cm-env", "cm-init", "cm-proj", "cm-vol"])
        );
        assert_eq!(
            refs.secrets,
            set(&[
                "pull",
                "secret-env",
                "secret-from",
                "secret-proj",
                "secret-vol"
            ])
        );
        assert_eq!(refs.claims, set(&["data"]));
    }
}
