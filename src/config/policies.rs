//! `policies`: the host ResourceQuota and LimitRange kept for the tenant
//! (vcluster-syncer's [`HostLimits`]) and the Pod Security Standard its
//! pods must meet before they reach the host ([`PodPolicy`]).

use k8s_openapi::api::core::v1::{
    LimitRangeItem, LimitRangeSpec, ResourceQuotaSpec, ScopeSelector as K8sScopeSelector,
    ScopedResourceSelectorRequirement,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vcluster_syncer::syncers::limits::HostLimits;
use vcluster_syncer::{PodPolicy, PodSecurityLevel};

use super::values::{
    merged_quantities, quantities, AutoBool, Quantity, QuantityDefaults, QuantityMap, Unsupported,
};

/// `policies`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Policies {
    /// The Pod Security Standard tenant pods must meet to be synced.
    pub pod_security_standard: PodSecurityStandard,
    /// A ResourceQuota in the host namespace.
    pub resource_quota: ResourceQuotaPolicy,
    /// A LimitRange in the host namespace.
    pub limit_range: LimitRangePolicy,
    /// vCluster's NetworkPolicies around the tenant (not supported).
    #[serde(skip_serializing)]
    pub network_policy: Unsupported,
    /// vCluster's central admission webhooks (not supported).
    #[serde(skip_serializing)]
    pub central_admission: Unsupported,
}

/// `policies.podSecurityStandard`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PodSecurityStandard {
    /// Not set: vcluster-rs's default, baseline (vCluster enforces none).
    #[default]
    #[serde(rename = "")]
    Unset,
    /// Only the host isolation rules that keep tenants apart.
    Privileged,
    /// Prevents known privilege escalations.
    Baseline,
    /// Baseline plus pod hardening.
    Restricted,
}

impl PodSecurityStandard {
    /// The level enforced.
    pub fn level(self) -> PodSecurityLevel {
        match self {
            PodSecurityStandard::Unset => PodSecurityLevel::default(),
            PodSecurityStandard::Privileged => PodSecurityLevel::Privileged,
            PodSecurityStandard::Baseline => PodSecurityLevel::Baseline,
            PodSecurityStandard::Restricted => PodSecurityLevel::Restricted,
        }
    }
}

/// vCluster's default quota.
pub(crate) struct DefaultQuota;
impl QuantityDefaults for DefaultQuota {
    fn defaults() -> QuantityMap {
        quantities(&[
            ("requests.cpu", "10"),
            ("requests.memory", "20Gi"),
            ("requests.storage", "100Gi"),
            ("requests.ephemeral-storage", "60Gi"),
            ("limits.cpu", "20"),
            ("limits.memory", "40Gi"),
            ("limits.ephemeral-storage", "160Gi"),
            ("services.nodeports", "0"),
            ("services.loadbalancers", "1"),
            ("count/endpoints", "40"),
            ("count/pods", "20"),
            ("count/services", "20"),
            ("count/secrets", "100"),
            ("count/configmaps", "100"),
            ("count/persistentvolumeclaims", "20"),
        ])
    }
}

/// vCluster's default container limits.
pub(crate) struct DefaultLimit;
impl QuantityDefaults for DefaultLimit {
    fn defaults() -> QuantityMap {
        quantities(&[
            ("ephemeral-storage", "8Gi"),
            ("memory", "512Mi"),
            ("cpu", "1"),
        ])
    }
}

/// vCluster's default container requests.
pub(crate) struct DefaultRequest;
impl QuantityDefaults for DefaultRequest {
    fn defaults() -> QuantityMap {
        quantities(&[
            ("ephemeral-storage", "3Gi"),
            ("memory", "128Mi"),
            ("cpu", "100m"),
        ])
    }
}

/// A quota scope selector requirement.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ScopeRequirement {
    /// The scope (`PriorityClass`, `BestEffort`, ...).
    pub scope_name: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// The values for `In` and `NotIn`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// `policies.resourceQuota.scopeSelector`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ScopeSelector {
    /// Requirements, all of which must hold.
    pub match_expressions: Vec<ScopeRequirement>,
}

/// `policies.resourceQuota`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ResourceQuotaPolicy {
    /// Whether the quota is kept; `auto`: when the LimitRange is
    /// explicitly enabled.
    pub enabled: AutoBool,
    /// The quota's `hard` limits, merged over vCluster's defaults key by
    /// key (`null` removes a default).
    #[serde(deserialize_with = "merged_quantities::<DefaultQuota, _>")]
    #[schemars(with = "std::collections::BTreeMap<String, Option<Quantity>>")]
    pub quota: QuantityMap,
    /// Which objects the quota counts, by scope.
    pub scope_selector: ScopeSelector,
    /// Quota scopes (`Terminating`, `BestEffort`, ...).
    pub scopes: Vec<String>,
    /// vCluster's extra labels of the quota (not supported).
    #[serde(skip_serializing)]
    pub labels: Unsupported,
    /// vCluster's extra annotations of the quota (not supported).
    #[serde(skip_serializing)]
    pub annotations: Unsupported,
}

impl Default for ResourceQuotaPolicy {
    fn default() -> Self {
        Self {
            enabled: AutoBool::Auto,
            quota: DefaultQuota::defaults(),
            scope_selector: ScopeSelector::default(),
            scopes: Vec::new(),
            labels: Unsupported,
            annotations: Unsupported,
        }
    }
}

/// `policies.limitRange`: one `Container` limit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct LimitRangePolicy {
    /// Whether the LimitRange is kept; `auto`: when the quota is
    /// explicitly enabled.
    pub enabled: AutoBool,
    /// Default limits of containers that set none, merged over vCluster's
    /// defaults.
    #[serde(deserialize_with = "merged_quantities::<DefaultLimit, _>")]
    #[schemars(with = "std::collections::BTreeMap<String, Option<Quantity>>")]
    pub default: QuantityMap,
    /// Default requests of containers that set none, merged over
    /// vCluster's defaults.
    #[serde(deserialize_with = "merged_quantities::<DefaultRequest, _>")]
    #[schemars(with = "std::collections::BTreeMap<String, Option<Quantity>>")]
    pub default_request: QuantityMap,
    /// Smallest allowed requests and limits.
    pub min: QuantityMap,
    /// Largest allowed requests and limits.
    pub max: QuantityMap,
    /// vCluster's extra labels of the LimitRange (not supported).
    #[serde(skip_serializing)]
    pub labels: Unsupported,
    /// vCluster's extra annotations of the LimitRange (not supported).
    #[serde(skip_serializing)]
    pub annotations: Unsupported,
}

impl Default for LimitRangePolicy {
    fn default() -> Self {
        Self {
            enabled: AutoBool::Auto,
            default: DefaultLimit::defaults(),
            default_request: DefaultRequest::defaults(),
            min: QuantityMap::new(),
            max: QuantityMap::new(),
            labels: Unsupported,
            annotations: Unsupported,
        }
    }
}

fn k8s_map(
    map: &QuantityMap,
) -> Option<
    std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
> {
    (!map.is_empty()).then(|| map.iter().map(|(k, v)| (k.clone(), v.to_k8s())).collect())
}

impl Policies {
    /// The pod policy (level only; the allow list stays empty).
    pub fn pod_policy(&self) -> PodPolicy {
        PodPolicy::new(self.pod_security_standard.level())
    }

    /// Whether the quota and the LimitRange are kept, `auto` resolved as
    /// vCluster does: each follows the other when the other is `true`.
    pub fn limits_enabled(&self) -> (bool, bool) {
        let quota = self.resource_quota.enabled;
        let range = self.limit_range.enabled;
        (
            quota.resolve(range == AutoBool::True),
            range.resolve(quota == AutoBool::True),
        )
    }

    /// The host limits to keep.
    pub fn host_limits(&self) -> HostLimits {
        let (quota_on, range_on) = self.limits_enabled();
        let quota = quota_on.then(|| {
            let q = &self.resource_quota;
            let expressions = &q.scope_selector.match_expressions;
            ResourceQuotaSpec {
                hard: k8s_map(&q.quota),
                scopes: (!q.scopes.is_empty()).then(|| q.scopes.clone()),
                scope_selector: (!expressions.is_empty()).then(|| K8sScopeSelector {
                    match_expressions: Some(
                        expressions
                            .iter()
                            .map(|e| ScopedResourceSelectorRequirement {
                                scope_name: e.scope_name.clone(),
                                operator: e.operator.clone(),
                                values: (!e.values.is_empty()).then(|| e.values.clone()),
                            })
                            .collect(),
                    ),
                }),
            }
        });
        let limit_range = range_on.then(|| {
            let r = &self.limit_range;
            LimitRangeSpec {
                limits: vec![LimitRangeItem {
                    type_: "Container".into(),
                    default: k8s_map(&r.default),
                    default_request: k8s_map(&r.default_request),
                    min: k8s_map(&r.min),
                    max: k8s_map(&r.max),
                    ..Default::default()
                }],
            }
        });
        HostLimits { quota, limit_range }
    }
}
