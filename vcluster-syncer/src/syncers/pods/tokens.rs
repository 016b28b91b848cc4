//! Service-account tokens of the *virtual* API server for host pods
//! (vCluster's `useSecretsForSATokens`).
//!
//! A virtual pod's projected volume (the `kube-api-access-*` one the
//! ServiceAccount admission adds, or the tenant's own) asks for a token of
//! its service account. On the host the kubelet would ask the *host* API
//! server, whose tokens mean nothing in the virtual cluster (and must not
//! leak in). So:
//!
//! - [`use_token_secret`] rewrites each `serviceAccountToken` source of the
//!   host pod into a `secret` source reading key [`token_key`] of the
//!   Secret [`token_secret_name`] at the same path (the other sources, the
//!   CA from the synced `kube-root-ca.crt` and the namespace from the
//!   downward API, stay), so containers read the files where they expect
//!   them; the host pod keeps `automountServiceAccountToken: false`.
//! - [`ServiceAccountTokens`] fills that Secret: for each host pod it asks
//!   the virtual API server for a token per source (TokenRequest, bound to
//!   the virtual pod by name and uid, with the source's audience and
//!   expiry), writes them into the Secret (owned by the host pod, so the
//!   host's garbage collector removes it with the pod; the syncer also
//!   deletes it when it sees the pod go), and requests fresh ones at 80% of
//!   their lifetime (at most after 24 h), as the kubelet does.
//!
//! A token stops working when the virtual pod is deleted (the virtual API
//! server checks the bound pod's uid), whatever the host still holds.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    KeyToPath, Pod, PodSpec, Secret, SecretProjection, ServiceAccount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::ByteString;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vcluster_core::markers;

use crate::syncer::SyncContext;

/// The label on token Secrets, naming the virtual cluster.
pub const TOKEN_SECRET_LABEL: &str = "vcluster.loft.sh/service-account-token";
/// When the Secret's tokens are due for renewal (Unix seconds).
pub const REFRESH_AT_ANNOTATION: &str = "vcluster.loft.sh/token-refresh-at";
/// The host pod uid the Secret's tokens were written for.
pub const POD_UID_ANNOTATION: &str = "vcluster.loft.sh/token-pod-uid";
/// The token lifetime a projection gets when it names none (upstream's
/// default for `expirationSeconds`).
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// Renewal at this share of the lifetime (the kubelet's 80%).
const REFRESH_SHARE: f64 = 0.8;
/// Renewal at the latest after this long (the kubelet's 24 h).
const MAX_REFRESH: Duration = Duration::from_secs(24 * 3600);
/// After a failure, the next attempt.
const RETRY: Duration = Duration::from_secs(5);
/// The field manager of the Secret's writes.
const FIELD_MANAGER: &str = "vcluster-syncer";

/// The host Secret holding the tokens of host pod `host_pod`.
pub fn token_secret_name(host_pod: &str) -> String {
    format!("{host_pod}-sa-token")
}

/// The Secret key of the token of source `index` of volume `volume`.
pub fn token_key(volume: &str, index: usize) -> String {
    format!("{volume}.{index}.token")
}

/// Replaces every `serviceAccountToken` projection of `spec` with the same
/// file read from the token Secret of `host_pod`.
pub fn use_token_secret(spec: &mut PodSpec, host_pod: &str) {
    let secret = token_secret_name(host_pod);
    for volume in spec.volumes.iter_mut().flatten() {
        let name = volume.name.clone();
        for (index, source) in volume
            .projected
            .iter_mut()
            .flat_map(|p| p.sources.iter_mut().flatten())
            .enumerate()
        {
            let Some(token) = source.service_account_token.take() else {
                continue;
            };
            source.secret = Some(SecretProjection {
                name: secret.clone(),
                items: Some(vec![KeyToPath {
                    key: token_key(&name, index),
                    path: token.path,
                    mode: None,
                }]),
                optional: Some(false),
            });
        }
    }
}

/// One token a virtual pod's volumes ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
struct TokenSource {
    key: String,
    audience: Option<String>,
    expiration_seconds: i64,
}

fn token_sources(pod: &Pod) -> Vec<TokenSource> {
    let mut sources = Vec::new();
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        for (index, source) in volume
            .projected
            .iter()
            .flat_map(|p| p.sources.iter().flatten())
            .enumerate()
        {
            if let Some(token) = &source.service_account_token {
                sources.push(TokenSource {
                    key: token_key(&volume.name, index),
                    audience: token.audience.clone().filter(|a| !a.is_empty()),
                    expiration_seconds: token
                        .expiration_seconds
                        .unwrap_or(DEFAULT_EXPIRATION_SECONDS),
                });
            }
        }
    }
    sources
}

/// Keeps the token Secrets of the host pods filled and fresh.
pub struct ServiceAccountTokens {
    ctx: Arc<SyncContext>,
    vcluster: String,
    virtual_pods: Store<Pod>,
    host_pods: Store<Pod>,
}

/// Why a Secret could not be filled.
#[derive(Debug, thiserror::Error)]
enum TokenError {
    #[error("the token request for service account {account}: {source}")]
    Request {
        account: String,
        #[source]
        source: kube::Error,
    },
    #[error("the token request for service account {account} returned no expiry")]
    NoExpiry { account: String },
    #[error("writing the token secret {name}: {source}")]
    Write {
        name: String,
        #[source]
        source: kube::Error,
    },
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl ServiceAccountTokens {
    /// Tokens for the host pods of `host_pods` (the pod engine's host
    /// store), issued for the virtual pods of `virtual_pods`.
    pub fn new(
        ctx: Arc<SyncContext>,
        vcluster: impl Into<String>,
        virtual_pods: Store<Pod>,
        host_pods: Store<Pod>,
    ) -> Self {
        Self {
            ctx,
            vcluster: vcluster.into(),
            virtual_pods,
            host_pods,
        }
    }

    /// Handles the host pods named on `changed` (fed by the pod engine's
    /// host observer) and the renewals that come due, until `cancel`.
    pub async fn run(
        self,
        mut changed: mpsc::UnboundedReceiver<String>,
        cancel: CancellationToken,
    ) {
        // Renewals: a min-heap of (due, pod) with the pod's current due
        // time in `due`, so a superseded entry is skipped when popped.
        let mut heap: BinaryHeap<Reverse<(Instant, String)>> = BinaryHeap::new();
        // Per pod: when it is due, and for which host pod uid.
        let mut due: HashMap<String, (Instant, String)> = HashMap::new();
        loop {
            let next = heap.peek().map(|Reverse((at, _))| *at);
            let name = tokio::select! {
                _ = cancel.cancelled() => return,
                received = changed.recv() => match received {
                    Some(name) => {
                        // A status change of a pod whose tokens are fresh
                        // and written for it costs nothing.
                        let uid = self
                            .host_pods
                            .get(&ObjectRef::new(&name).within(&self.ctx.host_namespace))
                            .and_then(|p| p.metadata.uid.clone());
                        let fresh = due.get(&name).is_some_and(|(at, written_for)| {
                            Some(written_for) == uid.as_ref() && *at > Instant::now()
                        });
                        if fresh {
                            continue;
                        }
                        name
                    }
                    None => return,
                },
                _ = async {
                    match next {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {
                    let Some(Reverse((at, name))) = heap.pop() else { continue };
                    if due.get(&name).map(|(due_at, _)| *due_at) != Some(at) {
                        continue;
                    }
                    name
                }
            };
            match self.reconcile(&name).await {
                Some((at, uid)) => {
                    due.insert(name.clone(), (at, uid));
                    heap.push(Reverse((at, name)));
                }
                None => {
                    due.remove(&name);
                }
            }
        }
    }

    /// Makes the token Secret of host pod `name` current; returns when to
    /// look again, and the host pod uid it was written for.
    async fn reconcile(&self, name: &str) -> Option<(Instant, String)> {
        let secrets: Api<Secret> =
            Api::namespaced(self.ctx.host_client.clone(), &self.ctx.host_namespace);
        let secret_name = token_secret_name(name);
        let Some(host_pod) = self
            .host_pods
            .get(&ObjectRef::new(name).within(&self.ctx.host_namespace))
        else {
            // The pod is gone: so is what it held (the host's garbage
            // collector would remove it too).
            match secrets.delete(&secret_name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(err) => {
                    tracing::debug!(secret = %secret_name, error = %err, "cannot delete a token secret")
                }
            }
            return None;
        };
        if host_pod.metadata.deletion_timestamp.is_some() {
            return None;
        }
        let annotations = host_pod.metadata.annotations.clone().unwrap_or_default();
        let (Some(namespace), Some(virtual_name)) = (
            annotations.get(markers::OBJECT_NAMESPACE_ANNOTATION),
            annotations.get(markers::OBJECT_NAME_ANNOTATION),
        ) else {
            return None;
        };
        // Not (yet) the virtual pod of this host pod: the virtual store may
        // still be listing (a restart), or the pod syncer is about to
        // delete a host pod whose virtual pod is gone; look again soon.
        let later = Some((Instant::now() + RETRY, String::new()));
        let Some(virtual_pod) = self
            .virtual_pods
            .get(&ObjectRef::new(virtual_name).within(namespace))
        else {
            return later;
        };
        let virtual_uid = virtual_pod.metadata.uid.clone().unwrap_or_default();
        if annotations.get(markers::OBJECT_UID_ANNOTATION) != Some(&virtual_uid) {
            return later;
        }
        let sources = token_sources(&virtual_pod);
        if sources.is_empty() {
            return None;
        }
        let host_uid = host_pod.metadata.uid.clone().unwrap_or_default();
        // Still fresh and for this very pod: nothing to do until due.
        if let Ok(Some(existing)) = secrets.get_opt(&secret_name).await {
            let marks = existing.metadata.annotations.clone().unwrap_or_default();
            let refresh_at = marks
                .get(REFRESH_AT_ANNOTATION)
                .and_then(|v| v.parse::<i64>().ok());
            let complete = sources.iter().all(|s| {
                existing
                    .data
                    .as_ref()
                    .is_some_and(|d| d.contains_key(&s.key))
            });
            if let Some(at) = refresh_at {
                if complete
                    && marks.get(POD_UID_ANNOTATION) == Some(&host_uid)
                    && at > now_seconds()
                {
                    return Some((instant_at(at), host_uid));
                }
            }
        }
        match self
            .write(
                &secrets,
                &secret_name,
                name,
                &host_uid,
                &virtual_pod,
                &sources,
            )
            .await
        {
            Ok(at) => Some((instant_at(at), host_uid)),
            Err(err) => {
                tracing::warn!(pod = %name, error = %err, "cannot give the host pod its service-account tokens; retrying");
                // Not fresh: a change of the pod tries again at once.
                Some((Instant::now() + RETRY, String::new()))
            }
        }
    }

    /// Requests every token and writes the Secret; returns when to renew
    /// (Unix seconds).
    async fn write(
        &self,
        secrets: &Api<Secret>,
        secret_name: &str,
        host_name: &str,
        host_uid: &str,
        virtual_pod: &Pod,
        sources: &[TokenSource],
    ) -> Result<i64, TokenError> {
        let namespace = virtual_pod.metadata.namespace.clone().unwrap_or_default();
        let account = virtual_pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "default".to_owned());
        let accounts: Api<ServiceAccount> =
            Api::namespaced(self.ctx.virtual_client.clone(), &namespace);
        let mut data = BTreeMap::new();
        let mut refresh_at = i64::MAX;
        for source in sources {
            let request = TokenRequest {
                metadata: ObjectMeta::default(),
                spec: TokenRequestSpec {
                    audiences: source.audience.clone().into_iter().collect(),
                    expiration_seconds: Some(source.expiration_seconds),
                    bound_object_ref: Some(BoundObjectReference {
                        api_version: Some("v1".to_owned()),
                        kind: Some("Pod".to_owned()),
                        name: virtual_pod.metadata.name.clone(),
                        uid: virtual_pod.metadata.uid.clone(),
                    }),
                },
                status: None,
            };
            let issued_at = now_seconds();
            let answer = accounts
                .create_token_request(&account, &PostParams::default(), &request)
                .await
                .map_err(|source| TokenError::Request {
                    account: account.clone(),
                    source,
                })?;
            let status = answer.status.ok_or_else(|| TokenError::NoExpiry {
                account: account.clone(),
            })?;
            let expires = status.expiration_timestamp.0.as_second();
            refresh_at = refresh_at.min(renew_at(issued_at, expires));
            data.insert(source.key.clone(), ByteString(status.token.into_bytes()));
        }
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(secret_name.to_owned()),
                namespace: Some(self.ctx.host_namespace.clone()),
                labels: Some(BTreeMap::from([(
                    TOKEN_SECRET_LABEL.to_owned(),
                    self.vcluster.clone(),
                )])),
                annotations: Some(BTreeMap::from([
                    (REFRESH_AT_ANNOTATION.to_owned(), refresh_at.to_string()),
                    (POD_UID_ANNOTATION.to_owned(), host_uid.to_owned()),
                ])),
                owner_references: Some(vec![OwnerReference {
                    api_version: "v1".to_owned(),
                    kind: "Pod".to_owned(),
                    name: host_name.to_owned(),
                    uid: host_uid.to_owned(),
                    ..OwnerReference::default()
                }]),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".to_owned()),
            data: Some(data),
            ..Secret::default()
        };
        let mut body = serde_json::to_value(&secret).map_err(|e| TokenError::Write {
            name: secret_name.to_owned(),
            source: kube::Error::SerdeError(e),
        })?;
        body["apiVersion"] = "v1".into();
        body["kind"] = "Secret".into();
        secrets
            .patch(
                secret_name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(|source| TokenError::Write {
                name: secret_name.to_owned(),
                source,
            })?;
        tracing::debug!(pod = %host_name, refresh_at, "wrote the host pod's service-account tokens");
        Ok(refresh_at)
    }
}

/// When a token issued at `issued_at` expiring at `expires` (Unix
/// seconds) is renewed: after 80% of its lifetime, at most after 24 h.
fn renew_at(issued_at: i64, expires: i64) -> i64 {
    let lifetime = (expires - issued_at).max(0) as f64;
    issued_at + ((lifetime * REFRESH_SHARE) as i64).min(MAX_REFRESH.as_secs() as i64)
}

/// The monotonic instant of Unix time `at` (now, if it is past).
fn instant_at(at: i64) -> Instant {
    let wait = (at - now_seconds()).max(0) as u64;
    Instant::now() + Duration::from_secs(wait)
}

/// Whether `pod` (a host pod) reads a token Secret.
pub fn uses_token_secret(pod: &Pod) -> bool {
    let Some(name) = pod.metadata.name.as_deref() else {
        return false;
    };
    let secret = token_secret_name(name);
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .flat_map(|v| v.projected.iter().flat_map(|p| p.sources.iter().flatten()))
        .any(|s| s.secret.as_ref().is_some_and(|s| s.name == secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_renewed_at_80_percent_and_within_a_day() {
        assert_eq!(renew_at(1000, 1000 + 3607), 1000 + 2885);
        assert_eq!(renew_at(0, 48 * 3600), 24 * 3600);
        assert_eq!(renew_at(50, 10), 50, "an expired answer is renewed at once");
    }

    #[test]
    fn token_projections_read_the_token_secret_at_the_same_path() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-x-team-x-vc"},
            "spec": {
                "containers": [{"name": "app", "image": "nginx"}],
                "volumes": [{"name": "kube-api-access-abcde", "projected": {"sources": [
                    {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                    {"configMap": {"name": "kube-root-ca.crt-x-team-x-vc", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"serviceAccountToken": {"path": "vault", "audience": "vault"}}
                ]}}]
            }
        }))
        .expect("pod");
        let sources = token_sources(&pod);
        assert_eq!(
            sources,
            vec![
                TokenSource {
                    key: "kube-api-access-abcde.0.token".into(),
                    audience: None,
                    expiration_seconds: 3607
                },
                TokenSource {
                    key: "kube-api-access-abcde.2.token".into(),
                    audience: Some("vault".into()),
                    expiration_seconds: 3600
                },
            ]
        );
        let mut host = pod.clone();
        let spec = host.spec.as_mut().expect("spec");
        use_token_secret(spec, "web-x-team-x-vc");
        assert!(uses_token_secret(&host));
        let projected = host.spec.expect("spec").volumes.expect("volumes")[0]
            .projected
            .clone()
            .expect("projected");
        let sources = projected.sources.expect("sources");
        assert!(sources.iter().all(|s| s.service_account_token.is_none()));
        let secret = sources[0].secret.as_ref().expect("secret source");
        assert_eq!(secret.name, "web-x-team-x-vc-sa-token");
        let items = secret.items.as_ref().expect("items");
        assert_eq!(items[0].key, "kube-api-access-abcde.0.token");
        assert_eq!(items[0].path, "token");
        assert_eq!(
            sources[2]
                .secret
                .as_ref()
                .expect("second")
                .items
                .as_ref()
                .expect("items")[0]
                .path,
            "vault"
        );
        assert!(sources[1].config_map.is_some(), "the CA stays");
    }
}
