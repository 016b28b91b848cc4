//! Upstream's ServiceAccount admission plugin
//! (plugin/pkg/admission/serviceaccount), its mutating part: a new pod
//! runs as `default` unless it names a service account, and, unless the
//! pod or its service account opts out (`automountServiceAccountToken:
//! false`), gets the `kube-api-access-<random>` projected volume (a bound
//! token the kubelet requests, the cluster CA from `kube-root-ca.crt`, the
//! namespace) mounted read-only at
//! `/var/run/secrets/kubernetes.io/serviceaccount` in every container and
//! init container that mounts nothing there itself. The service account's
//! `imagePullSecrets` are copied when the pod has none.
//!
//! One difference: upstream refuses a pod whose service account does not
//! exist (403); here such a pod is admitted without a token volume, so
//! servers that run no service-account controller (bare test servers)
//! still take pods.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{AdmissionPlugin, Attributes, Operation};
use crate::error::ApiError;
use crate::registry::{ObjectAddress, Registry};

/// Where the token volume is mounted (upstream's `DefaultAPITokenMountPath`).
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The token volume's name prefix.
pub const TOKEN_VOLUME_PREFIX: &str = "kube-api-access-";
/// The token's lifetime the volume asks for: upstream's
/// `WarnOnlyBoundTokenExpirationSeconds` (1 h + 7 s).
pub const TOKEN_EXPIRATION_SECONDS: i64 = 3607;
/// The annotation of static (mirror) pods, which admission leaves alone.
const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// The ServiceAccount plugin.
#[derive(Debug)]
pub struct ServiceAccount;

/// The projected volume source upstream's `TokenVolumeSource` builds.
pub fn token_volume_source() -> Value {
    json!({
        "defaultMode": 420,
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
        ]
    })
}

/// A volume name suffix as upstream generates it (5 characters, no
/// vowels, no look-alikes).
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(5)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// Whether the token is mounted: the pod's choice, else the account's,
/// else yes.
fn should_automount(account: &Value, pod: &Value) -> bool {
    let pod_choice = pod
        .pointer("/spec/automountServiceAccountToken")
        .and_then(Value::as_bool);
    let account_choice = account
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool);
    pod_choice.or(account_choice).unwrap_or(true)
}

/// Adds the token volume and its mounts to `spec`.
fn mount_token(spec: &mut Value) {
    let existing = spec
        .get("volumes")
        .and_then(Value::as_array)
        .and_then(|volumes| {
            volumes
                .iter()
                .filter_map(|v| v.get("name").and_then(Value::as_str))
                .find(|name| name.starts_with(TOKEN_VOLUME_PREFIX))
                .map(str::to_owned)
        });
    let volume_name = existing
        .clone()
        .unwrap_or_else(|| format!("{TOKEN_VOLUME_PREFIX}{}", random_suffix()));
    let mount = json!({"name": volume_name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
    let mut needs_volume = false;
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for container in containers.iter_mut().filter(|c| c.is_object()) {
            let mounted = container
                .get("volumeMounts")
                .and_then(Value::as_array)
                .is_some_and(|mounts| {
                    mounts.iter().any(|m| {
                        m.get("mountPath").and_then(Value::as_str) == Some(TOKEN_MOUNT_PATH)
                    })
                });
            if mounted {
                continue;
            }
            needs_volume = true;
            match container
                .get_mut("volumeMounts")
                .and_then(Value::as_array_mut)
            {
                Some(mounts) => mounts.push(mount.clone()),
                None => container["volumeMounts"] = json!([mount.clone()]),
            }
        }
    }
    if existing.is_none() && needs_volume {
        let volume = json!({"name": volume_name, "projected": token_volume_source()});
        match spec.get_mut("volumes").and_then(Value::as_array_mut) {
            Some(volumes) => volumes.push(volume),
            None => spec["volumes"] = json!([volume]),
        }
    }
}

#[async_trait]
impl AdmissionPlugin for ServiceAccount {
    fn name(&self) -> &'static str {
        "ServiceAccount"
    }

    async fn admit(
        &self,
        registry: &Registry,
        attributes: &Attributes<'_>,
        pod: &mut Value,
    ) -> Result<(), ApiError> {
        // Only new pods are changed (upstream mutates on create only).
        if !attributes.is("", "pods") || attributes.operation != Operation::Create {
            return Ok(());
        }
        if pod
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(MIRROR_POD_ANNOTATION))
            .is_some()
        {
            return Ok(());
        }
        let Some(spec) = pod.get_mut("spec").filter(|s| s.is_object()) else {
            return Ok(());
        };
        let account_name = match spec.get("serviceAccountName").and_then(Value::as_str) {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => {
                spec["serviceAccountName"] = json!("default");
                "default".to_owned()
            }
        };
        let Some(namespace) = attributes.namespace else {
            return Ok(());
        };
        let Some(resource) = registry.catalog().get("", "v1", "serviceaccounts") else {
            return Ok(());
        };
        let address = ObjectAddress {
            resource,
            namespace: Some(namespace.to_owned()),
            name: account_name,
        };
        let account = match registry.get(&address).await {
            Ok(account) => account,
            Err(err) if err.reason == "NotFound" => return Ok(()),
            Err(err) => return Err(err),
        };
        if should_automount(&account, pod) {
            if let Some(spec) = pod.get_mut("spec") {
                mount_token(spec);
            }
        }
        let has_pull_secrets = pod
            .pointer("/spec/imagePullSecrets")
            .and_then(Value::as_array)
            .is_some_and(|s| !s.is_empty());
        if !has_pull_secrets {
            if let Some(secrets) = account
                .get("imagePullSecrets")
                .and_then(Value::as_array)
                .filter(|s| !s.is_empty())
            {
                let names: Vec<Value> = secrets
                    .iter()
                    .filter_map(|s| s.get("name"))
                    .map(|name| json!({"name": name}))
                    .collect();
                pod["spec"]["imagePullSecrets"] = Value::Array(names);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_container_mounts_one_token_volume_unless_it_mounts_the_path_itself() {
        let mut spec = json!({
            "initContainers": [{"name": "init"}],
            "containers": [
                {"name": "a"},
                {"name": "b", "volumeMounts": [{"name": "own", "mountPath": TOKEN_MOUNT_PATH}]}
            ]
        });
        mount_token(&mut spec);
        let volumes = spec["volumes"].as_array().expect("volumes");
        assert_eq!(volumes.len(), 1);
        let name = volumes[0]["name"].as_str().expect("name");
        assert!(
            name.starts_with(TOKEN_VOLUME_PREFIX) && name.len() == TOKEN_VOLUME_PREFIX.len() + 5
        );
        assert_eq!(
            spec["initContainers"][0]["volumeMounts"][0]["name"],
            json!(name)
        );
        assert_eq!(
            spec["containers"][0]["volumeMounts"][0]["readOnly"],
            json!(true)
        );
        assert_eq!(
            spec["containers"][1]["volumeMounts"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );
        assert_eq!(
            volumes[0]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            json!(3607)
        );
    }

    #[test]
    fn the_pod_decides_before_its_account() {
        let account = json!({"automountServiceAccountToken": false});
        assert!(!should_automount(&account, &json!({"spec": {}})));
        assert!(should_automount(
            &account,
            &json!({"spec": {"automountServiceAccountToken": true}})
        ));
        assert!(should_automount(&json!({}), &json!({"spec": {}})));
    }
}
