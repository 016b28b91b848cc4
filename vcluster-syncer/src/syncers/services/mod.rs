//! Services: the tenant's services run on the host, where the host's
//! kube-proxy and DNS serve them; the addresses the host assigns come back.
//!
//! To the host:
//! - the spec is copied with `selector` translated
//!   ([`SelectorTranslator::host_map_selector`](vcluster_core::SelectorTranslator)),
//!   so a host service selects only this tenant's pods of the same virtual
//!   namespace; an empty or absent selector stays absent (a service without
//!   selector must not start selecting every tenant pod);
//! - `clusterIP`/`clusterIPs`, `ipFamilies`, `healthCheckNodePort` and the
//!   ports' `nodePort`s are left to the host to allocate (a headless
//!   service keeps `clusterIP: None`); type, `externalName` and the other
//!   fields are copied;
//! - later changes of the fields the virtual service owns (type, selector,
//!   ports, external name/IPs, traffic policies, session affinity, load
//!   balancer settings) are merge-patched onto the host, keeping the node
//!   ports the host allocated.
//!
//! Back to the virtual cluster:
//! - status (the load balancer's ingress points) is copied;
//! - the host's node ports are written into the virtual ports (node ports
//!   are mutable);
//! - when the host's cluster IP differs from the virtual one, the virtual
//!   service is **re-created** with the host's address
//!   ([`Action::RecreateVirtual`]; labels, annotations and spec otherwise
//!   kept), which is how vCluster makes `kubectl get svc` show the address
//!   that really works. Cluster IPs are immutable, hence delete and create.
//!
//! The virtual API server must accept the host's addresses: configure it
//! with the host's service CIDR as an extra range (`extra_service_cidrs` of
//! vcluster-apiserver, `--service-cluster-ip-range` of a real one). Before
//! deleting anything the syncer asks the virtual API server, with a dry-run
//! create, whether it would accept the host's address; if it would not,
//! the virtual service keeps its own address (a warning is logged, and the
//! question is asked again after five minutes), so a misconfigured
//! range never loses a tenant's service.
//!
//! The node ports are copied before the address (an in-place update that
//! fails safely if the virtual cluster cannot take a port), so that a
//! re-create only ever asks for the node ports the deleted service held.
//!
//! The virtual `default/kubernetes` service is the virtual API server's
//! own and is never synced.
//!
//! With [`super::service_addresses::HostServiceAddresses`] plugged into the
//! virtual API server, none of the re-creating happens: the host copy is
//! made first and the virtual service is created with its addresses. The
//! re-create above remains the fallback (the host was unreachable at the
//! create, or the service predates the provider).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use dashmap::DashMap;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, PostParams};
use serde_json::{json, Value};
use vcluster_core::VirtualKey;

mod spec;

pub(crate) use spec::host_service;
use spec::{
    cluster_ip, desired_host_spec, has_node_ports, ports_of, replacement, with_node_ports_of,
};

use super::service_addresses::Reservations;
use super::{create_on_host, encode, key_of, owned_patch, status_patch, translation_error};
use crate::error::{has_code, Side, SyncError};
use crate::memory::Memory;
use crate::syncer::{Action, HostOnly, SyncContext, Syncer, VirtualOnly};
use vcluster_core::FieldManager;

const KIND: &str = "services";

/// How long a refused re-create (the virtual API server would not take the
/// host's address) is not attempted again for the same address.
pub(crate) const RECREATE_RETRY: Duration = Duration::from_secs(300);

/// How long a host copy this syncer never synced is spared for its virtual
/// service: replicas of the control plane share the virtual store but not
/// their [`Reservations`], so a copy another replica's API server reserved
/// a moment ago looks like an orphan here until its virtual service is
/// stored (well within the API server's wait for the provider).
pub(crate) const FOREIGN_RESERVATION_GRACE: Duration = Duration::from_secs(10);

/// Whether `host` was created less than `grace` ago (by its
/// `creationTimestamp`; an object without one is not recent).
fn created_within(host: &Service, grace: Duration) -> bool {
    let Some(created) = host.metadata.creation_timestamp.as_ref() else {
        return false;
    };
    let age = k8s_openapi::jiff::Timestamp::now().duration_since(created.0);
    age.is_negative() || age.unsigned_abs() < grace
}

/// Spec fields the virtual service owns and writes only when it sets them
/// (the host may default them).
pub(super) const IF_SET: &[&str] = &[
    "type",
    "ports",
    "externalName",
    "externalIPs",
    "sessionAffinity",
    "sessionAffinityConfig",
    "externalTrafficPolicy",
    "internalTrafficPolicy",
    "loadBalancerSourceRanges",
    "loadBalancerIP",
    "loadBalancerClass",
    "publishNotReadyAddresses",
    "allocateLoadBalancerNodePorts",
];

/// Spec fields whose absence means "none".
pub(super) const REMOVABLE: &[&str] = &["selector"];

/// The service syncer.
#[derive(Default)]
pub struct ServiceSyncer {
    /// Re-creates the virtual API server refused: key -> (host address,
    /// when), so a misconfigured range is not retried on every reconcile.
    refused: DashMap<VirtualKey, (String, Instant)>,
    /// Host copies made for virtual services not stored yet.
    reservations: Option<Reservations>,
}

impl ServiceSyncer {
    /// A service syncer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Respects the host copies that `reservations`' provider creates
    /// before their virtual services are stored.
    pub fn with_reservations(mut self, reservations: Option<Reservations>) -> Self {
        self.reservations = reservations;
        self
    }

    fn refused_recently(&self, key: &VirtualKey, host_ip: &str) -> bool {
        self.refused
            .get(key)
            .is_some_and(|r| r.0 == host_ip && r.1.elapsed() < RECREATE_RETRY)
    }
}

/// Whether `namespace/name` is the virtual API server's own service.
pub(crate) fn is_api_service(key: &VirtualKey) -> bool {
    key.namespace() == Some("default") && key.name() == "kubernetes"
}

#[async_trait]
impl Syncer for ServiceSyncer {
    type Object = Service;
    type DynamicType = ();

    fn name(&self) -> &'static str {
        KIND
    }

    async fn virtual_only(
        &self,
        ctx: &SyncContext,
        service: &Service,
        _memory: Option<&Memory>,
    ) -> Result<VirtualOnly<Service>, SyncError> {
        if is_api_service(&key_of(service)) {
            return Ok(VirtualOnly::Skip);
        }
        create_on_host(KIND, ctx, service, host_service)
    }

    async fn both(
        &self,
        ctx: &SyncContext,
        virtual_service: &Service,
        host_service: &Service,
        _memory: Option<&Memory>,
    ) -> Result<Vec<Action>, SyncError> {
        let key = key_of(virtual_service);
        if let (Some(reservations), Some(name)) =
            (&self.reservations, host_service.metadata.name.as_deref())
        {
            reservations.settle(name);
        }
        // A virtual write changes the resourceVersion the others are pinned
        // to, so each reconcile writes the virtual service at most once;
        // the status follows at the next one.
        let status =
            status_patch(KIND, virtual_service, host_service)?.map(Action::PatchVirtualStatus);
        if virtual_service.metadata.deletion_timestamp.is_some() {
            return Ok(status.into_iter().collect());
        }
        let virtual_json = encode(KIND, virtual_service)?;
        let host_json = encode(KIND, host_service)?;
        let empty = json!({});
        let virtual_spec = virtual_json.get("spec").unwrap_or(&empty);
        let host_spec = host_json.get("spec").unwrap_or(&empty);
        let namespace = key.namespace().unwrap_or_default();

        // 1. The virtual spec to the host. The host may allocate
        //    differently afterwards: its addresses are looked at next time.
        let desired =
            desired_host_spec(ctx.translator.as_ref(), namespace, virtual_spec, host_spec)
                .map_err(translation_error(KIND, &key))?;
        if let Some(patch) = owned_patch(host_spec, &desired, REMOVABLE, IF_SET) {
            let mut actions = vec![Action::PatchHost(json!({ "spec": patch }))];
            actions.extend(status);
            return Ok(actions);
        }

        // 2. The host's node ports to the virtual service.
        if has_node_ports(virtual_spec.get("type").and_then(Value::as_str)) {
            let virtual_ports = ports_of(virtual_spec);
            let wanted = with_node_ports_of(&virtual_ports, &ports_of(host_spec));
            if wanted != virtual_ports {
                return Ok(vec![Action::PatchVirtual(
                    json!({"spec": {"ports": wanted}}),
                )]);
            }
        }

        // 3. The host's cluster IP: re-create the virtual service with it.
        let virtual_ip = cluster_ip(virtual_spec);
        let Some(host_ip) = cluster_ip(host_spec).filter(|ip| Some(*ip) != virtual_ip) else {
            return Ok(status.into_iter().collect());
        };
        if self.refused_recently(&key, host_ip) {
            return Ok(status.into_iter().collect());
        }
        let replacement = replacement(&virtual_json, host_spec);
        if !self
            .virtual_accepts(ctx, &key, &replacement, host_ip)
            .await?
        {
            return Ok(status.into_iter().collect());
        }
        tracing::info!(%key, from = ?virtual_ip, to = host_ip, "re-creating the virtual service with the host's cluster IP");
        // The new object has no status yet: copied at the next reconcile.
        Ok(vec![Action::RecreateVirtual(replacement)])
    }

    async fn host_only(
        &self,
        ctx: &SyncContext,
        host_service: &Service,
        memory: Option<&Memory>,
    ) -> Result<HostOnly<Service>, SyncError> {
        // While a virtual service is being re-created our store may miss it
        // for a moment: ask the virtual API server before deleting.
        if let Some(key) = ctx.translator.owner_of(&host_service.metadata) {
            let api: Api<Service> = Api::namespaced(
                ctx.virtual_client.clone(),
                key.namespace().unwrap_or_default(),
            );
            let exists = api
                .get_opt(key.name())
                .await
                .map_err(|source| SyncError::Api {
                    kind: KIND,
                    key: key.clone(),
                    operation: "look up before deleting the host copy",
                    side: Side::Virtual,
                    source: Box::new(source),
                })?
                .is_some();
            if exists {
                return Ok(HostOnly::Skip);
            }
        }
        // Reserved a moment ago: its virtual service is on its way (its
        // arrival brings this key back), or its create failed and the
        // provider deletes the copy itself.
        let host_name = host_service.metadata.name.as_deref().unwrap_or_default();
        if self
            .reservations
            .as_ref()
            .is_some_and(|r| r.is_pending(host_name))
        {
            return Ok(HostOnly::Skip);
        }
        // Reserved a moment ago by another replica's API server: try again
        // shortly (backoff) rather than delete a copy whose virtual service
        // is being stored. A pair this syncer synced before is no such
        // copy: its virtual service was deleted.
        if self.reservations.is_some()
            && memory.is_none()
            && created_within(host_service, FOREIGN_RESERVATION_GRACE)
        {
            if let Some(key) = ctx.translator.owner_of(&host_service.metadata) {
                return Err(SyncError::Invalid {
                    kind: KIND,
                    key,
                    message: "a host copy made a moment ago has no virtual service yet \
                              (another replica may be storing it); looking again shortly"
                        .into(),
                });
            }
        }
        Ok(HostOnly::DeleteHost {
            grace_period_seconds: None,
        })
    }
}

impl ServiceSyncer {
    /// Asks the virtual API server (dry run, under a generated name) whether
    /// it would create the replacement with the host's cluster IP. Node
    /// ports are left out of the question: they were copied before and the
    /// deleted service frees them.
    async fn virtual_accepts(
        &self,
        ctx: &SyncContext,
        key: &VirtualKey,
        replacement: &Value,
        host_ip: &str,
    ) -> Result<bool, SyncError> {
        let mut probe = replacement.clone();
        if let Some(meta) = probe.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("name");
            meta.insert("generateName".into(), json!(format!("{}-", key.name())));
        }
        if let Some(ports) = probe
            .pointer_mut("/spec/ports")
            .and_then(Value::as_array_mut)
        {
            for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                port.remove("nodePort");
            }
        }
        let probe: Service = super::decode(KIND, key, probe)?;
        let api: Api<Service> = Api::namespaced(
            ctx.virtual_client.clone(),
            key.namespace().unwrap_or_default(),
        );
        let params = PostParams {
            dry_run: true,
            ..FieldManager::SYNCER.post_params()
        };
        match api.create(&params, &probe).await {
            Ok(_) => {
                self.refused.remove(key);
                Ok(true)
            }
            Err(err) if has_code(&err, 422) || has_code(&err, 400) => {
                tracing::warn!(
                    %key, host_ip, error = %err,
                    "the virtual API server refuses the host's cluster IP; keeping the virtual one \
                     (configure the host's service CIDR as an extra service range of the virtual API server)"
                );
                self.refused
                    .insert(key.clone(), (host_ip.to_owned(), Instant::now()));
                Ok(false)
            }
            Err(source) => Err(SyncError::Api {
                kind: KIND,
                key: key.clone(),
                operation: "dry-run create of the re-created service",
                side: Side::Virtual,
                source: Box::new(source),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_virtual_api_service_is_never_synced() {
        assert!(is_api_service(&VirtualKey::namespaced(
            "default",
            "kubernetes"
        )));
        assert!(!is_api_service(&VirtualKey::namespaced(
            "other",
            "kubernetes"
        )));
    }
}
