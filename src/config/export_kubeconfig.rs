//! `exportKubeConfig`: the kubeconfig of the virtual cluster that
//! `vcluster run` writes into a host Secret, so tools in the host cluster
//! can reach the tenant's API server.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::values::Unsupported;

/// `exportKubeConfig`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ExportKubeConfig {
    /// The context name in the kubeconfig; empty: the virtual cluster's
    /// name.
    pub context: String,
    /// The server URL in the kubeconfig; empty: where the virtual API
    /// server listens.
    pub server: String,
    /// Skip verifying the server's certificate (for a `server` the
    /// certificate does not name).
    pub insecure: bool,
    /// Authenticate with a token of this service account of the virtual
    /// cluster instead of the admin client certificate.
    pub service_account: ExportServiceAccount,
    /// The host Secret the kubeconfig is written to.
    pub secret: ExportSecret,
    /// vCluster's additional kubeconfig Secrets (not supported).
    #[serde(skip_serializing)]
    pub additional_secrets: Unsupported,
}

/// `exportKubeConfig.serviceAccount`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ExportServiceAccount {
    /// The service account; empty: use the admin certificate.
    pub name: String,
    /// Its namespace; empty: `kube-system`.
    pub namespace: String,
    /// A ClusterRole bound to it; empty: none is bound.
    pub cluster_role: String,
}

/// `exportKubeConfig.secret`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ExportSecret {
    /// The Secret's name; empty: `vc-<name>` (as vCluster).
    pub name: String,
    /// The Secret's namespace; empty: the virtual cluster's host
    /// namespace.
    pub namespace: String,
}

impl ExportKubeConfig {
    /// The Secret's name for virtual cluster `vcluster`.
    pub fn secret_name(&self, vcluster: &str) -> String {
        if self.secret.name.is_empty() {
            format!("vc-{vcluster}")
        } else {
            self.secret.name.clone()
        }
    }

    /// The Secret's namespace, given the host namespace.
    pub fn secret_namespace(&self, host_namespace: &str) -> String {
        if self.secret.namespace.is_empty() {
            host_namespace.to_owned()
        } else {
            self.secret.namespace.clone()
        }
    }

    /// The service account's namespace (`kube-system` when unset).
    pub fn service_account_namespace(&self) -> &str {
        if self.service_account.namespace.is_empty() {
            "kube-system"
        } else {
            &self.service_account.namespace
        }
    }
}
