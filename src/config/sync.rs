//! `sync`: which kinds the syncer copies to the host (`sync.toHost`) and
//! which it shows tenants from the host (`sync.fromHost`), mapped onto
//! vcluster-syncer's [`EnabledSyncers`], [`NodeMode`] and
//! [`NodeSelection`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vcluster_syncer::runner::{EnabledSyncers, Selection};
use vcluster_syncer::syncers::nodes::{NodeMode, NodeSelection};

use super::values::{AutoBool, Unsupported};
use super::ConfigError;

/// `sync`: what is synced between the virtual cluster and the host.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Sync {
    /// Kinds created in the virtual cluster and copied to the host.
    pub to_host: SyncToHost,
    /// Kinds of the host shown in the virtual cluster (read-only).
    pub from_host: SyncFromHost,
}

/// A kind synced unless switched off (vCluster's `enabled` switch, default
/// on).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct SwitchOn {
    /// Whether the kind is synced.
    pub enabled: bool,
    /// vCluster's patches of synced objects (not supported).
    #[serde(skip_serializing)]
    pub patches: Unsupported,
}

impl Default for SwitchOn {
    fn default() -> Self {
        Self {
            enabled: true,
            patches: Unsupported,
        }
    }
}

/// A kind synced only when switched on (vCluster's `enabled` switch,
/// default off).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct SwitchOff {
    /// Whether the kind is synced.
    pub enabled: bool,
    /// vCluster's patches of synced objects (not supported).
    #[serde(skip_serializing)]
    pub patches: Unsupported,
}

/// ConfigMaps or Secrets: those pods need, or all of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct SyncAll {
    /// Whether the kind is synced at all.
    pub enabled: bool,
    /// All objects of the kind, not only those a pod (or, for secrets, an
    /// ingress) refers to.
    pub all: bool,
    /// vCluster's patches of synced objects (not supported).
    #[serde(skip_serializing)]
    pub patches: Unsupported,
}

impl Default for SyncAll {
    fn default() -> Self {
        Self {
            enabled: true,
            all: false,
            patches: Unsupported,
        }
    }
}

impl SyncAll {
    fn selection(&self) -> Selection {
        match (self.enabled, self.all) {
            (false, _) => Selection::Off,
            (true, false) => Selection::Referenced,
            (true, true) => Selection::All,
        }
    }
}

/// `sync.toHost.pods`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct SyncPods {
    /// Whether pods are synced (without it nothing runs).
    pub enabled: bool,
    /// Accepted either way: vcluster-rs always gives host pods the virtual
    /// cluster's service-account tokens through host Secrets (what `true`
    /// asks vCluster for); tenants see no difference.
    #[serde(rename = "useSecretsForSATokens")]
    pub use_secrets_for_sa_tokens: bool,
    /// vCluster's image rewriting (not supported).
    #[serde(skip_serializing)]
    pub translate_image: Unsupported,
    /// vCluster's tolerations added to every pod (not supported).
    #[serde(skip_serializing)]
    pub enforce_tolerations: Unsupported,
    /// vCluster's runtime class for every pod (not supported).
    #[serde(skip_serializing)]
    pub runtime_class_name: Unsupported,
    /// vCluster's priority class for every pod (not supported).
    #[serde(skip_serializing)]
    pub priority_class_name: Unsupported,
    /// vCluster's `/etc/hosts` init container (not supported).
    #[serde(skip_serializing)]
    pub rewrite_hosts: Unsupported,
    /// vCluster's patches of synced pods (not supported).
    #[serde(skip_serializing)]
    pub patches: Unsupported,
    /// vCluster's hybrid scheduling (not supported).
    #[serde(skip_serializing)]
    pub hybrid_scheduling: Unsupported,
}

impl Default for SyncPods {
    fn default() -> Self {
        Self {
            enabled: true,
            use_secrets_for_sa_tokens: false,
            translate_image: Unsupported,
            enforce_tolerations: Unsupported,
            runtime_class_name: Unsupported,
            priority_class_name: Unsupported,
            rewrite_hosts: Unsupported,
            patches: Unsupported,
            hybrid_scheduling: Unsupported,
        }
    }
}

/// One entry of `sync.toHost.customResources` (keyed
/// `<plural>.<group>`). vcluster-rs has no generic custom resource syncer,
/// so only `enabled: false` entries load.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct CustomResourceSync {
    /// Whether the custom resource is synced: `true` is refused.
    pub enabled: bool,
    /// `Namespaced` or `Cluster`, as vCluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// vCluster's patches of synced objects (not supported).
    #[serde(skip_serializing)]
    pub patches: Unsupported,
}

/// `sync.toHost`: kinds copied from the virtual cluster to the host.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct SyncToHost {
    /// Pods.
    pub pods: SyncPods,
    /// Services; host cluster IPs and node ports come back.
    pub services: SwitchOn,
    /// Endpoints of services without a selector, and EndpointSlices not
    /// managed by Kubernetes' controllers.
    pub endpoints: SwitchOn,
    /// PersistentVolumeClaims (pods wait for their claims).
    pub persistent_volume_claims: SwitchOn,
    /// ConfigMaps: those pods use, or all.
    pub config_maps: SyncAll,
    /// Secrets: those pods and ingresses use, or all.
    pub secrets: SyncAll,
    /// Ingresses (and the TLS secrets they name).
    pub ingresses: SwitchOff,
    /// ServiceAccounts; pods then run under the translated account.
    pub service_accounts: SwitchOff,
    /// NetworkPolicies.
    pub network_policies: SwitchOff,
    /// PodDisruptionBudgets.
    pub pod_disruption_budgets: SwitchOff,
    /// Copying the tenant's priority classes to the host (not supported:
    /// `sync.fromHost.priorityClasses` shows the host's instead).
    #[serde(skip_serializing)]
    pub priority_classes: Unsupported,
    /// Custom resources by `<plural>.<group>`: no generic custom resource
    /// syncer exists, so enabling one is an error.
    pub custom_resources: BTreeMap<String, CustomResourceSync>,
    /// vCluster's PersistentVolume sync (not supported).
    #[serde(skip_serializing)]
    pub persistent_volumes: Unsupported,
    /// vCluster's VolumeSnapshot sync (not supported).
    #[serde(skip_serializing)]
    pub volume_snapshots: Unsupported,
    /// vCluster's VolumeSnapshotContent sync (not supported).
    #[serde(skip_serializing)]
    pub volume_snapshot_contents: Unsupported,
    /// vCluster's StorageClass sync to the host (not supported).
    #[serde(skip_serializing)]
    pub storage_classes: Unsupported,
    /// vCluster's namespace sync (not supported: vcluster-rs syncs into
    /// one host namespace).
    #[serde(skip_serializing)]
    pub namespaces: Unsupported,
}

/// `sync.fromHost.nodes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct SyncNodes {
    /// Real copies of the host nodes (`true`, vcluster-rs's default) or
    /// fake nodes with a fixed capacity (`false`, vCluster's default).
    pub enabled: bool,
    /// Which nodes are shown.
    pub selector: NodeSelector,
    /// vCluster's syncing of node labels and taints back to the host (not
    /// supported).
    #[serde(skip_serializing)]
    pub sync_back_changes: Unsupported,
    /// vCluster's clearing of node image lists (not supported).
    #[serde(skip_serializing)]
    pub clear_image_status: Unsupported,
    /// vCluster's patches of synced nodes (not supported).
    #[serde(skip_serializing)]
    pub patches: Unsupported,
}

impl Default for SyncNodes {
    fn default() -> Self {
        Self {
            enabled: true,
            selector: NodeSelector::default(),
            sync_back_changes: Unsupported,
            clear_image_status: Unsupported,
            patches: Unsupported,
        }
    }
}

/// `sync.fromHost.nodes.selector`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct NodeSelector {
    /// Every host node (`true`) or only those the virtual cluster's pods
    /// run on (`false`). Unset: only those, except the demo's embedded
    /// host shows all (its one simulated node), as `--nodes` documents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub all: Option<bool>,
    /// vCluster's node label selector (not supported).
    #[serde(skip_serializing)]
    pub labels: Unsupported,
}

/// A class kind shown from the host (ingress and priority classes).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ClassSync {
    /// Whether tenants see the host's classes.
    pub enabled: bool,
    /// vCluster's label selector of the classes shown (not supported).
    #[serde(skip_serializing)]
    pub selector: Unsupported,
    /// vCluster's patches of synced objects (not supported).
    #[serde(skip_serializing)]
    pub patches: Unsupported,
}

/// `sync.fromHost.storageClasses`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct StorageClassSync {
    /// Whether tenants see the host's storage classes; `auto` (vCluster's
    /// default: on with a virtual scheduler, which vcluster-rs does not
    /// run) is off.
    pub enabled: AutoBool,
    /// vCluster's label selector of the classes shown (not supported).
    #[serde(skip_serializing)]
    pub selector: Unsupported,
    /// vCluster's patches of synced objects (not supported).
    #[serde(skip_serializing)]
    pub patches: Unsupported,
}

impl Default for StorageClassSync {
    fn default() -> Self {
        Self {
            enabled: AutoBool::Auto,
            selector: Unsupported,
            patches: Unsupported,
        }
    }
}

/// `sync.fromHost`: host kinds shown to tenants.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct SyncFromHost {
    /// Host events about synced objects.
    pub events: SwitchOn,
    /// Host nodes: real copies or fake nodes, all or only the used ones.
    pub nodes: SyncNodes,
    /// The host's storage classes.
    pub storage_classes: StorageClassSync,
    /// The host's ingress classes.
    pub ingress_classes: ClassSync,
    /// The host's priority classes.
    pub priority_classes: ClassSync,
    /// vCluster's CSI node sync (not supported).
    #[serde(rename = "csiNodes", skip_serializing)]
    pub csi_nodes: Unsupported,
    /// vCluster's CSI driver sync (not supported).
    #[serde(rename = "csiDrivers", skip_serializing)]
    pub csi_drivers: Unsupported,
    /// vCluster's CSI storage capacity sync (not supported).
    #[serde(rename = "csiStorageCapacities", skip_serializing)]
    pub csi_storage_capacities: Unsupported,
    /// vCluster's runtime class sync (not supported).
    #[serde(skip_serializing)]
    pub runtime_classes: Unsupported,
    /// vCluster's volume snapshot class sync (not supported).
    #[serde(skip_serializing)]
    pub volume_snapshot_classes: Unsupported,
    /// vCluster's custom resources from the host (not supported).
    #[serde(skip_serializing)]
    pub custom_resources: Unsupported,
    /// vCluster's host ConfigMaps mapped into the virtual cluster (not
    /// supported).
    #[serde(skip_serializing)]
    pub config_maps: Unsupported,
    /// vCluster's host Secrets mapped into the virtual cluster (not
    /// supported).
    #[serde(skip_serializing)]
    pub secrets: Unsupported,
}

impl Sync {
    /// The built-in syncers this section turns on. vcluster-rs's
    /// endpoints switch also covers EndpointSlices; nodes are synced
    /// whenever pods are (real or fake, see [`Sync::node_mode`]).
    pub fn enabled_syncers(&self) -> EnabledSyncers {
        let to = &self.to_host;
        let from = &self.from_host;
        EnabledSyncers {
            pods: to.pods.enabled,
            config_maps: to.config_maps.selection(),
            secrets: to.secrets.selection(),
            services: to.services.enabled,
            endpoints: to.endpoints.enabled,
            endpoint_slices: to.endpoints.enabled,
            persistent_volume_claims: to.persistent_volume_claims.enabled,
            events: from.events.enabled,
            // The node syncer follows the pods it shows nodes for.
            nodes: to.pods.enabled,
            service_accounts: to.service_accounts.enabled,
            ingresses: to.ingresses.enabled,
            network_policies: to.network_policies.enabled,
            pod_disruption_budgets: to.pod_disruption_budgets.enabled,
            storage_classes: from.storage_classes.enabled.resolve(false),
            ingress_classes: from.ingress_classes.enabled,
            priority_classes: from.priority_classes.enabled,
        }
    }

    /// Real copies of host nodes, or fake nodes
    /// (`sync.fromHost.nodes.enabled: false`).
    pub fn node_mode(&self) -> NodeMode {
        if self.from_host.nodes.enabled {
            NodeMode::Real
        } else {
            NodeMode::fake()
        }
    }

    /// Which host nodes are shown, when the file says
    /// (`sync.fromHost.nodes.selector.all`).
    pub fn node_selection(&self) -> Option<NodeSelection> {
        self.from_host.nodes.selector.all.map(|all| {
            if all {
                NodeSelection::All
            } else {
                NodeSelection::Used
            }
        })
    }

    /// Settings that parse but cannot be honoured.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        for (name, resource) in &self.to_host.custom_resources {
            if resource.enabled {
                return Err(ConfigError::Unsupported {
                    path: format!("sync.toHost.customResources.{name}.enabled"),
                    hint: Some(
                        "vcluster-rs has no generic custom resource syncer; a program using the library can add its own syncer (VirtualClusterSyncer::add)",
                    ),
                    location: None,
                });
            }
            if let Some(scope) = &resource.scope {
                if scope != "Namespaced" && scope != "Cluster" {
                    return Err(ConfigError::Invalid {
                        path: format!("sync.toHost.customResources.{name}.scope"),
                        message: format!("{scope:?} is not Namespaced or Cluster"),
                        location: None,
                    });
                }
            }
        }
        Ok(())
    }
}
