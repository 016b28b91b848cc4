//! `vcluster.yaml`: vCluster's configuration file (the 0.20+ format),
//! read with vCluster's own key names.
//!
//! Every key vcluster-rs implements is typed here, with vCluster's default
//! (or, where vcluster-rs behaves differently, its own, documented in
//! `docs/config.md`). Nothing is silently ignored:
//!
//! - a key vCluster does not know is an error naming its path and the
//!   keys known there ([`ConfigError::UnknownKey`]);
//! - a key of vCluster's config that vcluster-rs does not implement loads
//!   only with a value that asks for nothing (`false`, empty, `enabled:
//!   false`), and is otherwise an error naming the first key that asks for
//!   something ([`ConfigError::Unsupported`]);
//! - a wrong type or value names its path, and the line and column in
//!   the file.
//!
//! [`VClusterConfig::load`] reads a file, [`VClusterConfig::apply_to_demo`]
//! turns it into the demo's [`DemoOptions`]; the sections' own methods
//! ([`Sync::enabled_syncers`], [`Policies::host_limits`],
//! [`BackingStore::storage`], ...) serve other front ends.
//! [`json_schema`] is the file's JSON Schema (committed as
//! `deploy/vcluster.schema.json`).

use std::fmt;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub mod control_plane;
pub mod export_kubeconfig;
pub mod networking;
pub mod policies;
pub mod sync;
pub mod values;

#[cfg(test)]
mod tests;

pub use control_plane::{BackingStore, ControlPlane, HighAvailability, Image, StatefulSet};
pub use export_kubeconfig::ExportKubeConfig;
pub use networking::Networking;
pub use policies::{PodSecurityStandard, Policies};
pub use sync::Sync;
pub use values::{AutoBool, Quantity, Unsupported};

use crate::demo::DemoOptions;
use values::{UNSUPPORTED_END, UNSUPPORTED_MARK};

/// The contents of `vcluster.yaml`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
#[schemars(
    title = "vcluster.yaml",
    description = "vcluster-rs's configuration: vCluster's config file format (0.20+), the keys vcluster-rs implements (see docs/config.md)."
)]
pub struct VClusterConfig {
    /// What is synced between the virtual cluster and the host.
    pub sync: Sync,
    /// The control plane: store, StatefulSet and Service.
    pub control_plane: ControlPlane,
    /// Host limits and the Pod Security Standard.
    pub policies: Policies,
    /// Service and pod ranges and the cluster domain.
    pub networking: Networking,
    /// The virtual cluster's kubeconfig written into a host Secret.
    pub export_kube_config: ExportKubeConfig,
    /// Helm's global values (not supported).
    #[serde(skip_serializing)]
    pub global: Unsupported,
    /// vCluster's integrations (metrics server, KubeVirt, cert-manager,
    /// ...) (not supported).
    #[serde(skip_serializing)]
    pub integrations: Unsupported,
    /// vCluster's extra deployments (kube-proxy, CNI, ...) for private
    /// nodes (not supported).
    #[serde(skip_serializing)]
    pub deploy: Unsupported,
    /// vCluster's private nodes (not supported).
    #[serde(skip_serializing)]
    pub private_nodes: Unsupported,
    /// vCluster's host Role and ClusterRole settings (not supported).
    #[serde(skip_serializing)]
    pub rbac: Unsupported,
    /// vCluster's plugins (not supported).
    #[serde(skip_serializing)]
    pub plugins: Unsupported,
    /// vCluster's legacy plugins (not supported).
    #[serde(skip_serializing)]
    pub plugin: Unsupported,
    /// vCluster's experimental settings (not supported).
    #[serde(skip_serializing)]
    pub experimental: Unsupported,
    /// vCluster's settings of external tools (not supported).
    #[serde(skip_serializing)]
    pub external: Unsupported,
    /// vCluster's telemetry (not supported: vcluster-rs sends none).
    #[serde(skip_serializing)]
    pub telemetry: Unsupported,
    /// vCluster's deprecated top-level service range (not supported: use
    /// `networking.serviceCIDR`).
    #[serde(rename = "serviceCIDR", skip_serializing)]
    pub service_cidr: Unsupported,
    /// vCluster's deprecated Pro switch (not supported).
    #[serde(skip_serializing)]
    pub pro: Unsupported,
    /// vCluster's sleep mode (not supported).
    #[serde(skip_serializing)]
    pub sleep_mode: Unsupported,
    /// vCluster's logging settings (not supported: the demo's
    /// `--log-level`).
    #[serde(skip_serializing)]
    pub logging: Unsupported,
}

/// A line and column in the file (both from 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// The line.
    pub line: usize,
    /// The column.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// `" (line L, column C)"`, or nothing.
struct At(Option<Location>);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(location) => write!(f, " ({location})"),
            None => Ok(()),
        }
    }
}

/// Why a `vcluster.yaml` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not YAML.
    #[error("not valid YAML{}: {message}", At(*location))]
    Syntax {
        /// The parser's message.
        message: String,
        /// Where.
        location: Option<Location>,
    },
    /// A key vCluster's config does not have.
    #[error("{path}: unknown key (known keys here: {}){}", known.join(", "), At(*location))]
    UnknownKey {
        /// The key's full path, e.g. `sync.toHost.foo`.
        path: String,
        /// The keys this level has.
        known: Vec<String>,
        /// Where.
        location: Option<Location>,
    },
    /// A key of vCluster's config that vcluster-rs does not implement, set
    /// to something.
    #[error("{path}: part of vCluster's config but not supported by vcluster-rs{}{}", hint.map(|h| format!(" ({h})")).unwrap_or_default(), At(*location))]
    Unsupported {
        /// The full path of the first key asking for something.
        path: String,
        /// What to do instead, where there is something.
        hint: Option<&'static str>,
        /// Where.
        location: Option<Location>,
    },
    /// A value of the wrong type, or out of range.
    #[error("{path}: {message}{}", At(*location))]
    Invalid {
        /// The key's full path.
        path: String,
        /// What is wrong.
        message: String,
        /// Where.
        location: Option<Location>,
    },
    /// Settings that exclude each other.
    #[error("{message}")]
    Conflict {
        /// Which, and why.
        message: String,
    },
    /// An error in a named file.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// The error.
        source: Box<ConfigError>,
    },
}

impl ConfigError {
    /// The error without the file it was found in.
    pub fn inner(&self) -> &ConfigError {
        match self {
            ConfigError::InFile { source, .. } => source.inner(),
            other => other,
        }
    }
}

/// Extra advice for unsupported keys, by path prefix.
const HINTS: &[(&str, &str)] = &[
    (
        "sync.toHost.priorityClasses",
        "tenants' priority classes are not copied to the host; sync.fromHost.priorityClasses shows the host's",
    ),
    ("serviceCIDR", "use networking.serviceCIDR"),
    ("telemetry", "vcluster-rs sends no telemetry"),
    ("controlPlane.distro", "vcluster-rs runs its own API server"),
    (
        "controlPlane.coredns",
        "vcluster-rs runs its own DNS server; see networking.advanced.clusterDomain",
    ),
    (
        "controlPlane.backingStore.database.external",
        "use controlPlane.backingStore.etcd.external",
    ),
    (
        "controlPlane.backingStore.etcd.embedded",
        "use controlPlane.backingStore.etcd.external",
    ),
    (
        "controlPlane.backingStore.etcd.deploy",
        "use controlPlane.backingStore.etcd.external",
    ),
    ("logging", "use the demo's --log-level"),
];

fn hint_for(path: &str) -> Option<&'static str> {
    HINTS
        .iter()
        .find(|(prefix, _)| {
            path == *prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
        .map(|(_, hint)| *hint)
}

/// Splits serde_yaml's message into the bare message and its location
/// (it appends `at line L column C`).
fn split_location(error: &serde_yaml::Error) -> (String, Option<Location>) {
    let location = error.location().map(|l| Location {
        line: l.line(),
        column: l.column(),
    });
    let mut message = error.to_string();
    if let Some(index) = message.rfind(" at line ") {
        message.truncate(index);
    }
    (message, location)
}

/// serde's list of known fields from `unknown field `x`, expected one of
/// `a`, `b``.
fn known_fields(message: &str) -> Vec<String> {
    message
        .split_once("expected")
        .map(|(_, list)| {
            list.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn from_serde(error: serde_path_to_error::Error<serde_yaml::Error>) -> ConfigError {
    let path = error.path().to_string();
    let path = if path == "." {
        "(top level)".to_owned()
    } else {
        path
    };
    let (message, location) = split_location(error.inner());
    // serde_yaml starts its message with its own idea of the path (the
    // parent, for an unknown key); ours is the full one.
    let message = match message.split_once(": ") {
        Some((prefix, rest)) if !prefix.contains(' ') && path.starts_with(prefix) => {
            rest.to_owned()
        }
        _ => message,
    };
    if let Some(start) = message.find(UNSUPPORTED_MARK) {
        let rest = &message[start + UNSUPPORTED_MARK.len()..];
        let relative = rest.split(UNSUPPORTED_END).next().unwrap_or_default();
        let path = if relative.is_empty() {
            path
        } else {
            format!("{path}.{relative}")
        };
        return ConfigError::Unsupported {
            hint: hint_for(&path),
            path,
            location,
        };
    }
    if message.starts_with("unknown field `") {
        return ConfigError::UnknownKey {
            known: known_fields(&message),
            path,
            location,
        };
    }
    ConfigError::Invalid {
        path,
        message,
        location,
    }
}

impl VClusterConfig {
    /// Reads and checks `vcluster.yaml` at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml(&text).map_err(|e| ConfigError::InFile {
            path: path.to_owned(),
            source: Box::new(e),
        })
    }

    /// Parses and checks a `vcluster.yaml` document. An empty document (or
    /// one of comments only) is the defaults.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        // Syntax first, so a YAML error is reported as one.
        let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
            let (message, location) = split_location(&e);
            ConfigError::Syntax { message, location }
        })?;
        if value.is_null() {
            return Ok(Self::default());
        }
        let deserializer = serde_yaml::Deserializer::from_str(text);
        let config: Self = serde_path_to_error::deserialize(deserializer).map_err(from_serde)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot: conflicting stores, custom
    /// resources that cannot be synced, CIDRs, the cluster domain, lease
    /// timings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.sync.validate()?;
        self.control_plane.validate()?;
        self.networking.validate()
    }

    /// Sets what this file configures on the demo's options; what it does
    /// not configure stays as `options` has it. The demo applies explicit
    /// command-line flags afterwards, so they win (see docs/config.md).
    pub fn apply_to_demo(&self, options: &mut DemoOptions) -> Result<(), ConfigError> {
        options.syncers = self.sync.enabled_syncers();
        options.node_mode = self.sync.node_mode();
        if let Some(selection) = self.sync.node_selection() {
            options.nodes = Some(selection);
        }
        if let Some(store) = self.control_plane.backing_store.storage()? {
            options.store = Some(store);
        }
        options.pod_policy = self.policies.pod_policy();
        options.host_limits = self.policies.host_limits();
        if let Some(cidr) = &self.networking.service_cidr {
            options.host_service_cidr = cidr.clone();
        }
        options.node.pod_cidr = self.networking.pod_cidr.clone();
        options.cluster_domain = self.networking.advanced.cluster_domain.clone();
        Ok(())
    }
}

impl VClusterConfig {
    /// The sections this file sets (to other than their defaults) that
    /// describe a deployment, which the demo (one process) does not use:
    /// `controlPlane.statefulSet`, `controlPlane.service`,
    /// `exportKubeConfig`. The demo warns about each.
    pub fn not_used_by_demo(&self) -> Vec<&'static str> {
        let control_plane = &self.control_plane;
        [
            (
                "controlPlane.statefulSet",
                control_plane.stateful_set != StatefulSet::default(),
            ),
            (
                "controlPlane.service",
                control_plane.service != control_plane::ControlPlaneService::default(),
            ),
            (
                "exportKubeConfig",
                self.export_kube_config != ExportKubeConfig::default(),
            ),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect()
    }
}

/// The JSON Schema of `vcluster.yaml`, generated from the types above
/// (unknown keys are rejected: `additionalProperties: false`).
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(VClusterConfig);
    serde_json::to_value(&schema).unwrap_or_default()
}

/// [`json_schema`] as the pretty-printed text committed in
/// `deploy/vcluster.schema.json`.
pub fn json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).unwrap_or_default();
    text.push('\n');
    text
}
