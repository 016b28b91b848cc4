//! `networking`: the host's service range virtual services take their
//! addresses from, the simulated node's pod range, and the cluster domain
//! of the virtual cluster's DNS and of synced pods' search paths.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::values::Unsupported;
use super::ConfigError;

/// The cluster domain when none is configured (vCluster's and Kubernetes'
/// default).
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";

/// The simulated node's pod range when none is configured (vCluster's
/// default `podCIDR`).
pub const DEFAULT_POD_CIDR: &str = "10.244.0.0/16";

/// `networking`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Networking {
    /// The host cluster's service range: virtual services adopt the
    /// host's cluster IPs, so the virtual API server accepts addresses
    /// from it (the demo's `--host-service-cidr`). Unset: 10.96.0.0/12.
    #[serde(rename = "serviceCIDR", skip_serializing_if = "Option::is_none")]
    pub service_cidr: Option<String>,
    /// The pod range of the embedded host's simulated node (the demo's
    /// `--pod-cidr`); a real host assigns pod IPs itself.
    #[serde(rename = "podCIDR")]
    pub pod_cidr: String,
    /// Advanced settings.
    pub advanced: NetworkingAdvanced,
    /// vCluster's service replication between host and virtual cluster
    /// (not supported).
    #[serde(skip_serializing)]
    pub replicate_services: Unsupported,
    /// vCluster's extra DNS rules (not supported).
    #[serde(rename = "resolveDNS", skip_serializing)]
    pub resolve_dns: Unsupported,
}

impl Default for Networking {
    fn default() -> Self {
        Self {
            service_cidr: None,
            pod_cidr: DEFAULT_POD_CIDR.into(),
            advanced: NetworkingAdvanced::default(),
            replicate_services: Unsupported,
            resolve_dns: Unsupported,
        }
    }
}

/// `networking.advanced`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct NetworkingAdvanced {
    /// The cluster domain: the DNS server's zone
    /// (`<service>.<namespace>.svc.<domain>`) and synced pods' search
    /// paths.
    pub cluster_domain: String,
    /// vCluster's DNS fallback to the host cluster (not supported).
    #[serde(skip_serializing)]
    pub fallback_host_cluster: Unsupported,
    /// vCluster's kubelet proxying (not supported).
    #[serde(skip_serializing)]
    pub proxy_kubelets: Unsupported,
}

impl Default for NetworkingAdvanced {
    fn default() -> Self {
        Self {
            cluster_domain: DEFAULT_CLUSTER_DOMAIN.into(),
            fallback_host_cluster: Unsupported,
            proxy_kubelets: Unsupported,
        }
    }
}

/// Whether `text` is `address/prefix` with a prefix that fits the address.
fn is_cidr(text: &str) -> bool {
    let Some((address, prefix)) = text.split_once('/') else {
        return false;
    };
    let Ok(address) = address.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if address.is_ipv4() { 32 } else { 128 };
    prefix.parse::<u8>().is_ok_and(|p| p <= max) && !prefix.starts_with('+')
}

/// Whether `domain` is a DNS name of lowercase labels.
fn is_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

impl Networking {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |path: &str, message: String| ConfigError::Invalid {
            path: path.into(),
            message,
            location: None,
        };
        if let Some(cidr) = &self.service_cidr {
            if !is_cidr(cidr) {
                return Err(invalid(
                    "networking.serviceCIDR",
                    format!("{cidr:?} is not a CIDR such as 10.96.0.0/12"),
                ));
            }
        }
        if !is_cidr(&self.pod_cidr) {
            return Err(invalid(
                "networking.podCIDR",
                format!("{:?} is not a CIDR such as 10.244.0.0/16", self.pod_cidr),
            ));
        }
        let domain = &self.advanced.cluster_domain;
        if !is_domain(domain) {
            return Err(invalid(
                "networking.advanced.clusterDomain",
                format!("{domain:?} is not a DNS domain of lowercase labels such as cluster.local"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_and_domains_are_checked() {
        assert!(is_cidr("10.96.0.0/12") && is_cidr("fd00::/108"));
        assert!(!is_cidr("10.96.0.0") && !is_cidr("10.96.0.0/33") && !is_cidr("x/8"));
        assert!(is_domain("cluster.local") && is_domain("corp-1.example"));
        assert!(!is_domain("") && !is_domain("Cluster.local") && !is_domain("a..b"));
    }
}
