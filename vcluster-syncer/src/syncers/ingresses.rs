//! Ingresses (optional): the host's ingress controller serves the tenant's
//! ingresses, routing to the host copies of its services.
//!
//! To the host: the spec, with every backend service name translated (the
//! default backend and every rule path) and every TLS `secretName`
//! translated; those secrets are synced like the ones pods use (the runner
//! registers ingresses as referrers of secrets). `ingressClassName` is kept
//! and only written when the tenant sets it, so a class the host's
//! admission defaulted stays. A `resource` backend is copied as it is (its
//! kind is unknown to the syncer). Later spec changes follow.
//!
//! Back to the virtual cluster: the status (load balancer addresses).
//!
//! An ingress is only copied while no backend service and no TLS secret it
//! names translates to a host object that is someone else's (another
//! tenant's, through the `-x-` ambiguity of the naming scheme): the host's
//! ingress controller would otherwise expose the other tenant's service or
//! serve its certificate. Such an ingress is refused, and its host copy,
//! if any, deleted.

use std::collections::BTreeSet;

use async_trait::async_trait;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use vcluster_core::{Translator, TranslatorExt};

use super::{
    create_on_host, host_copy, host_name, host_spec_patch, key_of, status_patch, HostCopy,
};
use crate::error::SyncError;
use crate::memory::Memory;
use crate::syncer::{Action, SyncContext, Syncer, VirtualOnly};

const KIND: &str = "ingresses";

/// Spec fields whose absence means "none".
const REMOVABLE: &[&str] = &["defaultBackend", "rules", "tls"];
/// Spec fields the host may default.
const IF_SET: &[&str] = &["ingressClassName"];

/// The ingress syncer.
#[derive(Default)]
pub struct IngressSyncer;

impl IngressSyncer {
    /// An ingress syncer.
    pub fn new() -> Self {
        Self
    }
}

/// The names of the TLS secrets an ingress uses (in its namespace).
pub(crate) fn tls_secrets(ingress: &Ingress) -> BTreeSet<String> {
    ingress
        .spec
        .iter()
        .flat_map(|s| s.tls.iter().flatten())
        .filter_map(|tls| tls.secret_name.clone())
        .filter(|name| !name.is_empty())
        .collect()
}

/// The names of the services an ingress routes to (in its namespace).
pub(crate) fn backend_services(ingress: &Ingress) -> BTreeSet<String> {
    let Some(spec) = ingress.spec.as_ref() else {
        return BTreeSet::new();
    };
    spec.default_backend
        .iter()
        .chain(spec.rules.iter().flatten().flat_map(|r| {
            r.http
                .iter()
                .flat_map(|h| h.paths.iter().map(|p| &p.backend))
        }))
        .filter_map(|b| b.service.as_ref().map(|s| s.name.clone()))
        .filter(|name| !name.is_empty())
        .collect()
}

/// The first service or secret the ingress names whose host name belongs
/// to another object, if any.
async fn foreign_reference(
    ctx: &SyncContext,
    ingress: &Ingress,
) -> Result<Option<String>, SyncError> {
    let key = key_of(ingress);
    let namespace = key.namespace().unwrap_or_default().to_owned();
    for service in backend_services(ingress) {
        let copy =
            host_copy::<k8s_openapi::api::core::v1::Service>(ctx, KIND, &key, &namespace, &service)
                .await?;
        if let HostCopy::Foreign(host) = copy {
            return Ok(Some(format!(
                "backend service {service} (host object {host})"
            )));
        }
    }
    for secret in tls_secrets(ingress) {
        let copy =
            host_copy::<k8s_openapi::api::core::v1::Secret>(ctx, KIND, &key, &namespace, &secret)
                .await?;
        if let HostCopy::Foreign(host) = copy {
            return Ok(Some(format!("TLS secret {secret} (host object {host})")));
        }
    }
    Ok(None)
}

fn host_backend(
    translator: &dyn Translator,
    namespace: &str,
    backend: &mut IngressBackend,
) -> vcluster_core::Result<()> {
    if let Some(service) = backend.service.as_mut() {
        service.name = host_name(translator, namespace, &service.name)?;
    }
    Ok(())
}

/// The host copy of a virtual ingress.
pub(crate) fn host_ingress(
    translator: &dyn Translator,
    ingress: &Ingress,
) -> vcluster_core::Result<Ingress> {
    let namespace = ingress.metadata.namespace.clone().unwrap_or_default();
    let mut host = translator.host_object(ingress)?;
    host.status = None;
    if let Some(spec) = host.spec.as_mut() {
        if let Some(backend) = spec.default_backend.as_mut() {
            host_backend(translator, &namespace, backend)?;
        }
        for rule in spec.rules.iter_mut().flatten() {
            for path in rule.http.iter_mut().flat_map(|h| h.paths.iter_mut()) {
                host_backend(translator, &namespace, &mut path.backend)?;
            }
        }
        for tls in spec.tls.iter_mut().flatten() {
            if let Some(secret) = tls.secret_name.as_mut().filter(|s| !s.is_empty()) {
                *secret = host_name(translator, &namespace, secret)?;
            }
        }
    }
    Ok(host)
}

#[async_trait]
impl Syncer for IngressSyncer {
    type Object = Ingress;
    type DynamicType = ();

    fn name(&self) -> &'static str {
        KIND
    }

    async fn virtual_only(
        &self,
        ctx: &SyncContext,
        ingress: &Ingress,
        _memory: Option<&Memory>,
    ) -> Result<VirtualOnly<Ingress>, SyncError> {
        let decision = create_on_host(KIND, ctx, ingress, host_ingress)?;
        if !matches!(decision, VirtualOnly::CreateHost(_)) {
            return Ok(decision);
        }
        if let Some(foreign) = foreign_reference(ctx, ingress).await? {
            return Err(SyncError::NotOwned {
                kind: KIND,
                key: key_of(ingress),
                host: foreign,
            });
        }
        Ok(decision)
    }

    async fn both(
        &self,
        ctx: &SyncContext,
        virtual_ingress: &Ingress,
        host: &Ingress,
        _memory: Option<&Memory>,
    ) -> Result<Vec<Action>, SyncError> {
        let key = key_of(virtual_ingress);
        if let Some(foreign) = foreign_reference(ctx, virtual_ingress).await? {
            tracing::warn!(%key, reference = %foreign, "an ingress names someone else's host object; its host copy is removed");
            return Ok(vec![Action::DeleteHost]);
        }
        let mut actions: Vec<Action> = host_spec_patch(
            KIND,
            ctx,
            virtual_ingress,
            host,
            host_ingress,
            REMOVABLE,
            IF_SET,
        )?
        .into_iter()
        .collect();
        if let Some(patch) = status_patch(KIND, virtual_ingress, host)? {
            actions.push(Action::PatchVirtualStatus(patch));
        }
        Ok(actions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syncers::owned_patch;
    use serde_json::json;
    use vcluster_core::SingleNamespaceTranslator;

    fn ingress() -> Ingress {
        serde_json::from_value(json!({
            "metadata": {"name": "shop", "namespace": "web"},
            "spec": {
                "ingressClassName": "nginx",
                "defaultBackend": {"service": {"name": "fallback", "port": {"number": 80}}},
                "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}, {"hosts": ["x.example.com"]}],
                "rules": [{"host": "shop.example.com", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "frontend", "port": {"name": "http"}}}},
                    {"path": "/static", "pathType": "Prefix", "backend": {"resource": {"apiGroup": "example.com", "kind": "Bucket", "name": "assets"}}},
                ]}}],
            },
        }))
        .expect("ingress")
    }

    #[test]
    fn backends_and_tls_secrets_point_at_host_copies() {
        let t = SingleNamespaceTranslator::new("vc", "host-ns").expect("translator");
        let host = host_ingress(&t, &ingress()).expect("host");
        let spec = host.spec.expect("spec");
        let default = spec
            .default_backend
            .expect("default")
            .service
            .expect("service");
        assert_eq!(default.name, "fallback-x-web-x-vc");
        let rules = spec.rules.expect("rules");
        let paths = &rules[0].http.as_ref().expect("http").paths;
        assert_eq!(
            paths[0].backend.service.as_ref().expect("svc").name,
            "frontend-x-web-x-vc"
        );
        assert_eq!(
            paths[1].backend.resource.as_ref().expect("resource").name,
            "assets",
            "resource backends are copied as they are"
        );
        let tls = spec.tls.expect("tls");
        assert_eq!(tls[0].secret_name.as_deref(), Some("shop-tls-x-web-x-vc"));
        assert_eq!(tls[1].secret_name, None);
        assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
    }

    #[test]
    fn the_tls_secrets_of_an_ingress_are_listed() {
        assert_eq!(
            tls_secrets(&ingress()),
            BTreeSet::from(["shop-tls".to_owned()])
        );
    }

    #[test]
    fn a_defaulted_class_on_the_host_is_kept() {
        let current = json!({"ingressClassName": "default-class", "rules": [{"host": "a"}]});
        let desired = json!({"rules": [{"host": "a"}]});
        assert_eq!(owned_patch(&current, &desired, REMOVABLE, IF_SET), None);
        let desired = json!({});
        assert_eq!(
            owned_patch(&current, &desired, REMOVABLE, IF_SET),
            Some(json!({"rules": null}))
        );
    }
}
