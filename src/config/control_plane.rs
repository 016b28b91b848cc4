//! `controlPlane`: the virtual cluster's store (`backingStore`, mapped onto
//! vcluster-apiserver's [`StorageConfig`]) and how the control plane is
//! deployed (`statefulSet`, `service`), which `vcluster create` and the
//! leader election of several replicas read.

use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vcluster_apiserver::storage::url::{ConfigError as StoreUrlError, EtcdTls};
use vcluster_apiserver::storage::StorageConfig;

use super::values::{
    merged_quantities, quantities, AutoBool, Quantity, QuantityDefaults, QuantityMap, Unsupported,
};
use super::ConfigError;

/// `controlPlane`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ControlPlane {
    /// Where the virtual cluster's objects are stored.
    pub backing_store: BackingStore,
    /// The control plane's StatefulSet (replicas, image, resources, data
    /// volume).
    pub stateful_set: StatefulSet,
    /// The Service in front of the control plane.
    pub service: ControlPlaneService,
    /// vCluster's external endpoint of the control plane (not supported).
    #[serde(skip_serializing)]
    pub endpoint: Unsupported,
    /// vCluster's Kubernetes distribution (not supported: vcluster-rs runs
    /// its own API server).
    #[serde(skip_serializing)]
    pub distro: Unsupported,
    /// vCluster's standalone mode (not supported).
    #[serde(skip_serializing)]
    pub standalone: Unsupported,
    /// vCluster's CoreDNS deployment (not supported: vcluster-rs runs its
    /// own DNS server; see `networking.advanced.clusterDomain`).
    #[serde(skip_serializing)]
    pub coredns: Unsupported,
    /// vCluster's control plane proxy (not supported).
    #[serde(skip_serializing)]
    pub proxy: Unsupported,
    /// vCluster's host path mapper (not supported).
    #[serde(skip_serializing)]
    pub host_path_mapper: Unsupported,
    /// vCluster's Ingress in front of the control plane (not supported).
    #[serde(skip_serializing)]
    pub ingress: Unsupported,
    /// vCluster's ServiceMonitor (not supported).
    #[serde(skip_serializing)]
    pub service_monitor: Unsupported,
    /// vCluster's advanced control plane settings (not supported).
    #[serde(skip_serializing)]
    pub advanced: Unsupported,
}

/// `controlPlane.backingStore`: at most one store may be enabled; none
/// means the embedded database (SQLite).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct BackingStore {
    /// A database.
    pub database: Database,
    /// etcd.
    pub etcd: Etcd,
}

/// `controlPlane.backingStore.database`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Database {
    /// The embedded database: SQLite in the data directory.
    pub embedded: EmbeddedDatabase,
    /// vCluster's external SQL database through kine (not supported: use
    /// `etcd.external`).
    #[serde(skip_serializing)]
    pub external: Unsupported,
}

/// `controlPlane.backingStore.database.embedded`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct EmbeddedDatabase {
    /// SQLite in the data directory (also what no choice at all gives).
    pub enabled: bool,
    /// vCluster's kine data source (not supported: the file is
    /// `<data dir>/virtual.db`).
    #[serde(skip_serializing)]
    pub data_source: Unsupported,
    /// vCluster's extra kine arguments (not supported).
    #[serde(skip_serializing)]
    pub extra_args: Unsupported,
}

/// `controlPlane.backingStore.etcd`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Etcd {
    /// An etcd cluster you run.
    pub external: ExternalEtcd,
    /// vCluster's embedded etcd (not supported: use `external`).
    #[serde(skip_serializing)]
    pub embedded: Unsupported,
    /// vCluster's etcd StatefulSet deployed by its chart (not supported:
    /// use `external`).
    #[serde(skip_serializing)]
    pub deploy: Unsupported,
}

/// `controlPlane.backingStore.etcd.external`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ExternalEtcd {
    /// Store the virtual cluster in this etcd.
    pub enabled: bool,
    /// `host:port` (port 2379 when omitted); several comma-separated; an
    /// `http://` or `https://` scheme is allowed.
    pub endpoint: String,
    /// TLS towards etcd.
    pub tls: EtcdTlsFiles,
}

/// `controlPlane.backingStore.etcd.external.tls`: PEM files.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct EtcdTlsFiles {
    /// The CA that signed etcd's serving certificate (turns TLS on).
    pub ca_file: String,
    /// A client certificate (with `keyFile`).
    pub cert_file: String,
    /// The client certificate's key (with `certFile`).
    pub key_file: String,
}

const EXTERNAL_ETCD: &str = "controlPlane.backingStore.etcd.external";

impl BackingStore {
    /// The store chosen: `None` for the default (SQLite in the data
    /// directory, as `database.embedded`), or an etcd cluster.
    pub fn storage(&self) -> Result<Option<StorageConfig>, ConfigError> {
        let embedded = self.database.embedded.enabled;
        let etcd = &self.etcd.external;
        if embedded && etcd.enabled {
            return Err(ConfigError::Conflict {
                message: "controlPlane.backingStore: database.embedded and etcd.external are both enabled; enable one store".into(),
            });
        }
        if !etcd.enabled {
            return Ok(None);
        }
        etcd.storage().map(Some)
    }
}

impl ExternalEtcd {
    fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: format!("{EXTERNAL_ETCD}.{key}"),
            message: message.into(),
            location: None,
        }
    }

    fn storage(&self) -> Result<StorageConfig, ConfigError> {
        let mut https = false;
        let mut hosts = Vec::new();
        for raw in self.endpoint.split(',') {
            let raw = raw.trim();
            let host = if let Some(rest) = raw.strip_prefix("https://") {
                https = true;
                rest
            } else {
                raw.strip_prefix("http://").unwrap_or(raw)
            };
            hosts.push(host.trim_end_matches('/'));
        }
        if hosts.iter().all(|h| h.is_empty()) {
            return Err(Self::invalid(
                "endpoint",
                "an enabled external etcd needs its endpoint (host:port)",
            ));
        }
        let parsed: StorageConfig = format!("etcd://{}", hosts.join(","))
            .parse()
            .map_err(|e: StoreUrlError| Self::invalid("endpoint", e.to_string()))?;
        let StorageConfig::Etcd {
            endpoints, prefix, ..
        } = parsed
        else {
            return Err(Self::invalid("endpoint", "not an etcd endpoint"));
        };
        let file = |s: &str| (!s.is_empty()).then(|| PathBuf::from(s));
        let tls = &self.tls;
        let client = match (file(&tls.cert_file), file(&tls.key_file)) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(Self::invalid(
                    "tls.keyFile",
                    "a client certificate (tls.certFile) needs its key",
                ))
            }
            (None, Some(_)) => {
                return Err(Self::invalid(
                    "tls.certFile",
                    "a client key (tls.keyFile) needs its certificate",
                ))
            }
        };
        let tls = match (file(&tls.ca_file), client) {
            (Some(ca), client) => Some(EtcdTls { ca, client }),
            (None, Some(_)) => {
                return Err(Self::invalid(
                    "tls.caFile",
                    "TLS towards etcd needs the CA that signed its certificate",
                ))
            }
            (None, None) if https => {
                return Err(Self::invalid(
                    "tls.caFile",
                    "an https:// endpoint needs the CA that signed etcd's certificate",
                ))
            }
            (None, None) => None,
        };
        let endpoints = match tls {
            Some(_) => endpoints
                .into_iter()
                .map(|e| e.replacen("http://", "https://", 1))
                .collect(),
            None => endpoints,
        };
        Ok(StorageConfig::Etcd {
            endpoints,
            prefix,
            tls,
        })
    }
}

/// `controlPlane.statefulSet`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct StatefulSet {
    /// Replicas and their leader election.
    pub high_availability: HighAvailability,
    /// The control plane's image.
    pub image: Image,
    /// The control plane container's requests and limits.
    pub resources: Resources,
    /// The data volume.
    pub persistence: Persistence,
    /// vCluster's extra labels (not supported).
    #[serde(skip_serializing)]
    pub labels: Unsupported,
    /// vCluster's extra annotations (not supported).
    #[serde(skip_serializing)]
    pub annotations: Unsupported,
    /// vCluster's pod labels and annotations (not supported).
    #[serde(skip_serializing)]
    pub pods: Unsupported,
    /// vCluster's image pull policy (not supported).
    #[serde(skip_serializing)]
    pub image_pull_policy: Unsupported,
    /// vCluster's working directory (not supported).
    #[serde(skip_serializing)]
    pub working_dir: Unsupported,
    /// vCluster's command override (not supported).
    #[serde(skip_serializing)]
    pub command: Unsupported,
    /// vCluster's argument override (not supported).
    #[serde(skip_serializing)]
    pub args: Unsupported,
    /// vCluster's extra environment (not supported).
    #[serde(skip_serializing)]
    pub env: Unsupported,
    /// vCluster's security contexts (not supported).
    #[serde(skip_serializing)]
    pub security: Unsupported,
    /// vCluster's scheduling settings (not supported).
    #[serde(skip_serializing)]
    pub scheduling: Unsupported,
    /// vCluster's probe settings (not supported).
    #[serde(skip_serializing)]
    pub probes: Unsupported,
    /// vCluster's service links switch (not supported).
    #[serde(skip_serializing)]
    pub enable_service_links: Unsupported,
    /// vCluster's DNS policy (not supported).
    #[serde(skip_serializing)]
    pub dns_policy: Unsupported,
    /// vCluster's DNS config (not supported).
    #[serde(skip_serializing)]
    pub dns_config: Unsupported,
}

/// `controlPlane.statefulSet.highAvailability`: several replicas elect a
/// leader through a Lease (times in seconds, as vCluster).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct HighAvailability {
    /// Control plane replicas.
    pub replicas: u32,
    /// How long a leader's lease lasts (seconds).
    pub lease_duration: u64,
    /// How long the leader keeps trying to renew before it steps down
    /// (seconds).
    pub renew_deadline: u64,
    /// How often a replica tries to take or renew the lease (seconds).
    pub retry_period: u64,
}

impl Default for HighAvailability {
    fn default() -> Self {
        Self {
            replicas: 1,
            lease_duration: 60,
            renew_deadline: 40,
            retry_period: 15,
        }
    }
}

impl HighAvailability {
    /// `leaseDuration` as a duration.
    pub fn lease_duration(&self) -> Duration {
        Duration::from_secs(self.lease_duration)
    }

    /// `renewDeadline` as a duration.
    pub fn renew_deadline(&self) -> Duration {
        Duration::from_secs(self.renew_deadline)
    }

    /// `retryPeriod` as a duration.
    pub fn retry_period(&self) -> Duration {
        Duration::from_secs(self.retry_period)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let path = "controlPlane.statefulSet.highAvailability";
        let invalid = |key: &str, message: &str| ConfigError::Invalid {
            path: format!("{path}.{key}"),
            message: message.into(),
            location: None,
        };
        if self.replicas == 0 {
            return Err(invalid("replicas", "at least one replica is needed"));
        }
        if self.retry_period == 0 {
            return Err(invalid("retryPeriod", "must be at least 1 second"));
        }
        if self.renew_deadline <= self.retry_period {
            return Err(invalid("renewDeadline", "must be longer than retryPeriod"));
        }
        if self.lease_duration <= self.renew_deadline {
            return Err(invalid(
                "leaseDuration",
                "must be longer than renewDeadline",
            ));
        }
        Ok(())
    }
}

/// `controlPlane.statefulSet.image`: `<registry>/<repository>:<tag>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Image {
    /// The registry; empty: none (Docker Hub or a local image).
    pub registry: String,
    /// The repository.
    pub repository: String,
    /// The tag; empty: this build's version.
    pub tag: String,
}

/// The control plane image's repository when none is configured.
pub const DEFAULT_IMAGE_REPOSITORY: &str = "vcluster-rs";

impl Default for Image {
    fn default() -> Self {
        Self {
            registry: String::new(),
            repository: DEFAULT_IMAGE_REPOSITORY.into(),
            tag: String::new(),
        }
    }
}

impl Image {
    /// The image reference; an empty tag is this build's version.
    pub fn reference(&self) -> String {
        let tag = if self.tag.is_empty() {
            env!("CARGO_PKG_VERSION")
        } else {
            &self.tag
        };
        if self.registry.is_empty() {
            format!("{}:{tag}", self.repository)
        } else {
            format!(
                "{}/{}:{tag}",
                self.registry.trim_end_matches('/'),
                self.repository
            )
        }
    }
}

/// vCluster's default limits of the control plane container.
pub(crate) struct DefaultLimits;
impl QuantityDefaults for DefaultLimits {
    fn defaults() -> QuantityMap {
        quantities(&[("ephemeral-storage", "8Gi"), ("memory", "2Gi")])
    }
}

/// vCluster's default requests of the control plane container.
pub(crate) struct DefaultRequests;
impl QuantityDefaults for DefaultRequests {
    fn defaults() -> QuantityMap {
        quantities(&[
            ("ephemeral-storage", "400Mi"),
            ("cpu", "200m"),
            ("memory", "256Mi"),
        ])
    }
}

/// `controlPlane.statefulSet.resources`: merged over vCluster's defaults
/// key by key (`null` removes a default).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Resources {
    /// Limits by resource name.
    #[serde(deserialize_with = "merged_quantities::<DefaultLimits, _>")]
    #[schemars(with = "std::collections::BTreeMap<String, Option<Quantity>>")]
    pub limits: QuantityMap,
    /// Requests by resource name.
    #[serde(deserialize_with = "merged_quantities::<DefaultRequests, _>")]
    #[schemars(with = "std::collections::BTreeMap<String, Option<Quantity>>")]
    pub requests: QuantityMap,
}

impl Default for Resources {
    fn default() -> Self {
        Self {
            limits: DefaultLimits::defaults(),
            requests: DefaultRequests::defaults(),
        }
    }
}

/// `controlPlane.statefulSet.persistence`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Persistence {
    /// The data volume's claim.
    pub volume_claim: VolumeClaim,
    /// vCluster's own claim templates (not supported).
    #[serde(skip_serializing)]
    pub volume_claim_templates: Unsupported,
    /// vCluster's data volume override (not supported).
    #[serde(skip_serializing)]
    pub data_volume: Unsupported,
    /// vCluster's binaries volume (not supported).
    #[serde(skip_serializing)]
    pub binaries_volume: Unsupported,
    /// vCluster's extra volumes (not supported).
    #[serde(skip_serializing)]
    pub add_volumes: Unsupported,
    /// vCluster's extra volume mounts (not supported).
    #[serde(skip_serializing)]
    pub add_volume_mounts: Unsupported,
}

/// What happens to the data volume's claim when the StatefulSet goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RetentionPolicy {
    /// The claim is kept.
    #[default]
    Retain,
    /// The claim is deleted.
    Delete,
}

/// `controlPlane.statefulSet.persistence.volumeClaim`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct VolumeClaim {
    /// A persistent volume for the data directory; `auto`: when the store
    /// lives there (the embedded database), not with an external etcd.
    pub enabled: AutoBool,
    /// The claim's size.
    pub size: Quantity,
    /// The claim's storage class; empty: the host's default.
    pub storage_class: String,
    /// The claim's access modes.
    pub access_modes: Vec<String>,
    /// Keep or delete the claim with the StatefulSet.
    pub retention_policy: RetentionPolicy,
}

impl Default for VolumeClaim {
    fn default() -> Self {
        Self {
            enabled: AutoBool::Auto,
            size: Quantity::from("5Gi"),
            storage_class: String::new(),
            access_modes: vec!["ReadWriteOnce".into()],
            retention_policy: RetentionPolicy::Retain,
        }
    }
}

impl ControlPlane {
    /// Whether the StatefulSet gets a persistent data volume, `auto`
    /// resolved: yes unless the store is an external etcd.
    pub fn persistent_volume(&self) -> bool {
        let external = self.backing_store.etcd.external.enabled;
        self.stateful_set
            .persistence
            .volume_claim
            .enabled
            .resolve(!external)
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        self.backing_store.storage()?;
        self.stateful_set.high_availability.validate()
    }
}

/// How the control plane's Service is exposed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ServiceType {
    /// Inside the host cluster only.
    #[default]
    ClusterIP,
    /// On a port of every host node.
    NodePort,
    /// Through the host's load balancer.
    LoadBalancer,
}

/// `controlPlane.service.spec` (vCluster takes any Service spec; vcluster-rs
/// only its `type`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ServiceSpec {
    /// The Service type.
    #[serde(rename = "type")]
    pub type_: ServiceType,
}

/// `controlPlane.service`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ControlPlaneService {
    /// Whether the Service is created.
    pub enabled: bool,
    /// The Service's spec.
    pub spec: ServiceSpec,
    /// vCluster's fake kubelet node port (not supported).
    #[serde(skip_serializing)]
    pub kubelet_node_port: Unsupported,
    /// vCluster's fixed HTTPS node port (not supported).
    #[serde(rename = "httpsNodePort", skip_serializing)]
    pub https_node_port: Unsupported,
    /// vCluster's extra labels (not supported).
    #[serde(skip_serializing)]
    pub labels: Unsupported,
    /// vCluster's extra annotations (not supported).
    #[serde(skip_serializing)]
    pub annotations: Unsupported,
}

impl Default for ControlPlaneService {
    fn default() -> Self {
        Self {
            enabled: true,
            spec: ServiceSpec::default(),
            kubelet_node_port: Unsupported,
            https_node_port: Unsupported,
            labels: Unsupported,
            annotations: Unsupported,
        }
    }
}
