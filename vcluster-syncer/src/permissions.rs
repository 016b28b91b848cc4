//! What the syncer may do on the host, derived from its configuration.
//!
//! A control plane deployed into a host cluster runs under a service
//! account whose Role should grant exactly what the syncer uses and
//! nothing more. [`host_rules`] is that list, computed from the same
//! [`SyncConfig`] that decides which syncers run, so the deployed Role and
//! the running syncer cannot drift apart. [`check_host_access`] asks the
//! host (one `SelfSubjectAccessReview` per verb) whether the current
//! identity has every one of them, so a control plane started without its
//! Role stops at once with the list of what is missing instead of failing
//! later, object by object, with 403s.

use std::fmt;

use futures::future::join_all;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use crate::runner::{Selection, SyncConfig};

/// Everything a synced kind needs: the syncer reads, watches, creates,
/// updates (patches) and deletes its host copies.
pub const READ_WRITE: &[&str] = &[
    "get", "list", "watch", "create", "update", "patch", "delete",
];
/// What a kind synced from the host needs: reading and watching.
pub const READ_ONLY: &[&str] = &["get", "list", "watch"];

/// One RBAC rule the syncer needs on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRule {
    /// The API group (`""` for the core group).
    pub group: &'static str,
    /// The resource, with `/subresource` where one is meant (`pods/log`).
    pub resource: &'static str,
    /// The verbs.
    pub verbs: &'static [&'static str],
    /// Whether the resource is cluster-scoped (then a ClusterRole grants
    /// it; everything else is limited to the host namespace by a Role).
    pub cluster_scoped: bool,
    /// Why the syncer needs it (shown when it is missing, and in the docs).
    pub reason: &'static str,
}

impl HostRule {
    const fn namespaced(
        group: &'static str,
        resource: &'static str,
        verbs: &'static [&'static str],
        reason: &'static str,
    ) -> Self {
        Self {
            group,
            resource,
            verbs,
            cluster_scoped: false,
            reason,
        }
    }

    const fn cluster(
        group: &'static str,
        resource: &'static str,
        verbs: &'static [&'static str],
        reason: &'static str,
    ) -> Self {
        Self {
            group,
            resource,
            verbs,
            cluster_scoped: true,
            reason,
        }
    }

    /// The resource without its subresource (`pods` of `pods/log`).
    pub fn base_resource(&self) -> &'static str {
        self.resource.split('/').next().unwrap_or(self.resource)
    }

    /// The subresource (`log` of `pods/log`), if any.
    pub fn subresource(&self) -> Option<&'static str> {
        self.resource.split_once('/').map(|(_, sub)| sub)
    }
}

/// The host rules the syncer configured by `config` needs, namespaced
/// ones first.
pub fn host_rules(config: &SyncConfig) -> Vec<HostRule> {
    let syncers = &config.syncers;
    let mut rules = Vec::new();
    let mut add = |on: bool, rule: HostRule| {
        if on {
            rules.push(rule);
        }
    };
    let ns = HostRule::namespaced;
    add(syncers.pods, ns("", "pods", READ_WRITE, "the pod syncer"));
    add(
        syncers.pods,
        ns("", "pods/log", &["get"], "kubectl logs of tenant pods"),
    );
    for stream in ["pods/exec", "pods/attach", "pods/portforward"] {
        // Upgrades arrive as GET (WebSocket) or POST (SPDY): kube-apiserver
        // authorizes the first as `get`, the second as `create`.
        add(
            syncers.pods,
            ns(
                "",
                stream,
                &["get", "create"],
                "kubectl exec, attach, cp and port-forward",
            ),
        );
    }
    add(
        syncers.pods,
        ns(
            "",
            "pods/ephemeralcontainers",
            &["patch"],
            "kubectl debug's ephemeral containers",
        ),
    );
    add(
        syncers.config_maps != Selection::Off,
        ns("", "configmaps", READ_WRITE, "the configmap syncer"),
    );
    add(
        syncers.secrets != Selection::Off || config.pod_environment.service_account_tokens,
        ns(
            "",
            "secrets",
            READ_WRITE,
            "the secret syncer and tenant pods' service-account tokens",
        ),
    );
    add(
        syncers.services,
        ns("", "services", READ_WRITE, "the service syncer"),
    );
    add(
        syncers.endpoints,
        ns("", "endpoints", READ_WRITE, "the endpoints syncer"),
    );
    add(
        syncers.endpoint_slices,
        ns(
            "discovery.k8s.io",
            "endpointslices",
            READ_WRITE,
            "the endpointslice syncer",
        ),
    );
    add(
        syncers.persistent_volume_claims,
        ns(
            "",
            "persistentvolumeclaims",
            READ_WRITE,
            "the persistent volume claim syncer",
        ),
    );
    add(
        syncers.events,
        ns("", "events", READ_ONLY, "host events about synced objects"),
    );
    add(
        syncers.service_accounts,
        ns(
            "",
            "serviceaccounts",
            READ_WRITE,
            "the service account syncer",
        ),
    );
    add(
        syncers.ingresses,
        ns(
            "networking.k8s.io",
            "ingresses",
            READ_WRITE,
            "the ingress syncer",
        ),
    );
    add(
        syncers.network_policies,
        ns(
            "networking.k8s.io",
            "networkpolicies",
            READ_WRITE,
            "the network policy syncer",
        ),
    );
    add(
        syncers.pod_disruption_budgets,
        ns(
            "policy",
            "poddisruptionbudgets",
            READ_WRITE,
            "the pod disruption budget syncer",
        ),
    );
    // Without limits, the syncer still removes the ones an earlier
    // configuration asked for.
    let (limit_verbs, why): (&'static [&'static str], _) = if config.host_limits.enabled() {
        (READ_WRITE, "policies.resourceQuota and policies.limitRange")
    } else {
        (
            &["list", "watch", "delete"],
            "removing limits an earlier configuration made",
        )
    };
    add(true, ns("", "resourcequotas", limit_verbs, why));
    add(true, ns("", "limitranges", limit_verbs, why));
    let cluster = HostRule::cluster;
    add(
        syncers.nodes,
        cluster(
            "",
            "nodes",
            READ_ONLY,
            "the nodes tenant pods run on, shown read-only",
        ),
    );
    add(
        syncers.storage_classes,
        cluster(
            "storage.k8s.io",
            "storageclasses",
            READ_ONLY,
            "sync.fromHost.storageClasses",
        ),
    );
    add(
        syncers.ingress_classes,
        cluster(
            "networking.k8s.io",
            "ingressclasses",
            READ_ONLY,
            "sync.fromHost.ingressClasses",
        ),
    );
    add(
        syncers.priority_classes,
        cluster(
            "scheduling.k8s.io",
            "priorityclasses",
            READ_ONLY,
            "sync.fromHost.priorityClasses",
        ),
    );
    rules
}

/// One permission the host denied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    /// The verb.
    pub verb: &'static str,
    /// The rule it belongs to.
    pub rule: HostRule,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = if self.rule.group.is_empty() {
            String::new()
        } else {
            format!(".{}", self.rule.group)
        };
        write!(
            f,
            "{} {}{} ({})",
            self.verb, self.rule.resource, group, self.rule.reason
        )
    }
}

/// `verb, verb resource (why)` per rule, rules in their order.
fn grouped(denied: &[Denied]) -> String {
    let mut groups: Vec<(&HostRule, Vec<&str>)> = Vec::new();
    for missing in denied {
        match groups.iter_mut().find(|(rule, _)| **rule == missing.rule) {
            Some((_, verbs)) => verbs.push(missing.verb),
            None => groups.push((&missing.rule, vec![missing.verb])),
        }
    }
    groups
        .iter()
        .map(|(rule, verbs)| {
            let first = Denied {
                verb: "",
                rule: (*rule).clone(),
            }
            .to_string();
            format!("{}{}", verbs.join(", "), first)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why [`check_host_access`] failed.
#[derive(Debug, thiserror::Error)]
pub enum HostAccessError {
    /// The host answered, and denied some permissions.
    #[error("the host denies {count} permission(s) the syncer needs in namespace {namespace}: {list}; grant the control plane's service account the Role (and, for cluster-scoped resources, the ClusterRole) that `vcluster create` makes", count = .denied.len(), list = grouped(.denied))]
    Denied {
        /// The host namespace.
        namespace: String,
        /// What is missing.
        denied: Vec<Denied>,
    },
    /// The host could not be asked.
    #[error("cannot ask the host whether the syncer may {verb} {resource}: {source}")]
    Review {
        /// The verb asked about.
        verb: &'static str,
        /// The resource asked about.
        resource: &'static str,
        /// The client error.
        #[source]
        source: kube::Error,
    },
}

/// Asks the host whether the client's identity holds every verb of
/// `rules` (namespaced ones in `namespace`), all at once.
pub async fn check_host_access(
    client: &kube::Client,
    namespace: &str,
    rules: &[HostRule],
) -> Result<(), HostAccessError> {
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let reviews = &reviews;
    let asks = rules.iter().flat_map(|rule| {
        rule.verbs.iter().map(move |verb| {
            let reviews = reviews.clone();
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        group: Some(rule.group.to_owned()),
                        resource: Some(rule.base_resource().to_owned()),
                        subresource: rule.subresource().map(str::to_owned),
                        verb: Some((*verb).to_owned()),
                        namespace: (!rule.cluster_scoped).then(|| namespace.to_owned()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            async move {
                let answer = reviews
                    .create(&PostParams::default(), &review)
                    .await
                    .map_err(|source| HostAccessError::Review {
                        verb,
                        resource: rule.resource,
                        source,
                    })?;
                let allowed = answer.status.is_some_and(|s| s.allowed);
                Ok::<_, HostAccessError>((!allowed).then(|| Denied {
                    verb,
                    rule: rule.clone(),
                }))
            }
        })
    });
    let mut denied = Vec::new();
    for answer in join_all(asks).await {
        if let Some(missing) = answer? {
            denied.push(missing);
        }
    }
    if denied.is_empty() {
        Ok(())
    } else {
        Err(HostAccessError::Denied {
            namespace: namespace.to_owned(),
            denied,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_syncers_need_namespaced_rules_and_read_only_nodes() {
        let config = SyncConfig::new("vc", "host-ns");
        let rules = host_rules(&config);
        let find = |resource: &str| rules.iter().find(|r| r.resource == resource);
        assert_eq!(find("pods").map(|r| r.verbs), Some(READ_WRITE));
        assert_eq!(find("pods/log").map(|r| r.verbs), Some(&["get"][..]));
        let nodes = find("nodes").expect("nodes are read");
        assert!(nodes.cluster_scoped);
        assert_eq!(nodes.verbs, READ_ONLY);
        // Only nodes are cluster-scoped by default.
        assert_eq!(rules.iter().filter(|r| r.cluster_scoped).count(), 1);
        // Off by default, so not granted.
        assert!(find("ingresses").is_none());
        // Limits off: only what removing earlier ones takes.
        let quotas = find("resourcequotas").expect("quotas");
        assert_eq!(quotas.verbs, &["list", "watch", "delete"][..]);
        assert!(find("storageclasses").is_none());
    }

    #[test]
    fn turning_a_syncer_on_or_off_changes_the_rules() {
        let mut config = SyncConfig::new("vc", "host-ns");
        config.syncers.ingresses = true;
        config.syncers.nodes = false;
        config.syncers.config_maps = Selection::Off;
        let rules = host_rules(&config);
        assert!(rules.iter().any(|r| r.resource == "ingresses"));
        assert!(!rules.iter().any(|r| r.resource == "nodes"));
        assert!(!rules.iter().any(|r| r.resource == "configmaps"));
    }

    #[test]
    fn denied_verbs_are_grouped_by_rule() {
        let rule = |resource| HostRule::namespaced("", resource, READ_ONLY, "why");
        let denied = [
            Denied {
                verb: "get",
                rule: rule("pods"),
            },
            Denied {
                verb: "list",
                rule: rule("pods"),
            },
            Denied {
                verb: "get",
                rule: rule("events"),
            },
        ];
        assert_eq!(grouped(&denied), "get, list pods (why); get events (why)");
    }

    #[test]
    fn denied_permissions_read_as_what_to_grant() {
        let denied = Denied {
            verb: "watch",
            rule: HostRule::namespaced(
                "discovery.k8s.io",
                "endpointslices",
                READ_WRITE,
                "the endpointslice syncer",
            ),
        };
        assert_eq!(
            denied.to_string(),
            "watch endpointslices.discovery.k8s.io (the endpointslice syncer)"
        );
    }
}
