//! NetworkPolicies (optional): enforced by the host's network plugin on
//! the host pods, so every selector must select the host copies of the
//! pods it meant, and only those.
//!
//! All of a virtual cluster's pods live in one host namespace, so
//! namespaces become labels there: host pods carry their virtual
//! namespace's labels under `ns-label` keys and the `namespace` marker.
//!
//! To the host (spec; later changes follow):
//! - `podSelector`: translated with the policy's namespace scope (an empty
//!   selector selects every pod of that virtual namespace, not the host
//!   namespace's);
//! - each `from`/`to` peer: a `podSelector` alone is scoped to the policy's
//!   namespace; a `namespaceSelector` becomes a pod selector over the
//!   `ns-label` keys ([`host_namespace_selector`]) merged with the peer's
//!   translated `podSelector` (then scoped to any namespace of this virtual
//!   cluster), and the peer no longer has a namespace selector; `ipBlock`
//!   is kept;
//! - `ports` and `policyTypes` are copied (`policyTypes` only when set,
//!   since the host defaults it).
//!
//! Nothing flows back.
//!
//! [`host_namespace_selector`]: vcluster_core::SelectorTranslator::host_namespace_selector

use async_trait::async_trait;
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use vcluster_core::{MarkerScope, Translator, TranslatorExt};

use super::{create_on_host, host_spec_patch};
use crate::error::SyncError;
use crate::memory::Memory;
use crate::syncer::{Action, SyncContext, Syncer, VirtualOnly};

const KIND: &str = "networkpolicies";

/// Spec fields whose absence means "none".
const REMOVABLE: &[&str] = &["podSelector", "ingress", "egress"];
/// Spec fields the host may default.
const IF_SET: &[&str] = &["policyTypes"];

/// The network policy syncer.
#[derive(Default)]
pub struct NetworkPolicySyncer;

impl NetworkPolicySyncer {
    /// A network policy syncer.
    pub fn new() -> Self {
        Self
    }
}

/// Both selectors' requirements in one selector.
fn merge_selectors(a: LabelSelector, b: LabelSelector) -> LabelSelector {
    let mut labels = a.match_labels.unwrap_or_default();
    labels.extend(b.match_labels.unwrap_or_default());
    let mut expressions = a.match_expressions.unwrap_or_default();
    expressions.extend(b.match_expressions.unwrap_or_default());
    LabelSelector {
        match_labels: (!labels.is_empty()).then_some(labels),
        match_expressions: (!expressions.is_empty()).then_some(expressions),
    }
}

/// A peer of a policy in virtual `namespace` as a host peer.
pub(crate) fn host_peer(
    translator: &dyn Translator,
    namespace: &str,
    peer: &NetworkPolicyPeer,
) -> vcluster_core::Result<NetworkPolicyPeer> {
    if peer.ip_block.is_some() {
        return Ok(peer.clone());
    }
    let pod_selector = match &peer.namespace_selector {
        None => peer
            .pod_selector
            .as_ref()
            .map(|s| translator.host_label_selector(s, MarkerScope::Namespace(namespace)))
            .transpose()?,
        Some(namespaces) => {
            let by_namespace = translator.host_namespace_selector(namespaces)?;
            let pods = translator.host_label_selector(
                peer.pod_selector
                    .as_ref()
                    .unwrap_or(&LabelSelector::default()),
                MarkerScope::AllNamespaces,
            )?;
            Some(merge_selectors(pods, by_namespace))
        }
    };
    Ok(NetworkPolicyPeer {
        ip_block: None,
        namespace_selector: None,
        pod_selector,
    })
}

/// The host copy of a virtual network policy.
pub(crate) fn host_policy(
    translator: &dyn Translator,
    policy: &NetworkPolicy,
) -> vcluster_core::Result<NetworkPolicy> {
    let namespace = policy.metadata.namespace.clone().unwrap_or_default();
    let mut host = translator.host_object(policy)?;
    if let Some(spec) = host.spec.as_mut() {
        spec.pod_selector = Some(
            translator.host_label_selector(
                spec.pod_selector
                    .as_ref()
                    .unwrap_or(&LabelSelector::default()),
                MarkerScope::Namespace(&namespace),
            )?,
        );
        for rule in spec.ingress.iter_mut().flatten() {
            for peer in rule.from.iter_mut().flatten() {
                *peer = host_peer(translator, &namespace, peer)?;
            }
        }
        for rule in spec.egress.iter_mut().flatten() {
            for peer in rule.to.iter_mut().flatten() {
                *peer = host_peer(translator, &namespace, peer)?;
            }
        }
    }
    Ok(host)
}

#[async_trait]
impl Syncer for NetworkPolicySyncer {
    type Object = NetworkPolicy;
    type DynamicType = ();

    fn name(&self) -> &'static str {
        KIND
    }

    async fn virtual_only(
        &self,
        ctx: &SyncContext,
        policy: &NetworkPolicy,
        _memory: Option<&Memory>,
    ) -> Result<VirtualOnly<NetworkPolicy>, SyncError> {
        create_on_host(KIND, ctx, policy, host_policy)
    }

    async fn both(
        &self,
        ctx: &SyncContext,
        virtual_policy: &NetworkPolicy,
        host: &NetworkPolicy,
        _memory: Option<&Memory>,
    ) -> Result<Vec<Action>, SyncError> {
        Ok(host_spec_patch(
            KIND,
            ctx,
            virtual_policy,
            host,
            host_policy,
            REMOVABLE,
            IF_SET,
        )?
        .into_iter()
        .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syncers::owned_patch;
    use proptest::prelude::*;
    use serde_json::json;
    use std::collections::BTreeMap;
    use vcluster_core::markers::{MANAGED_BY_LABEL, NAMESPACE_LABEL};
    use vcluster_core::{LabelTranslator, Selector, SingleNamespaceTranslator};

    fn translator() -> SingleNamespaceTranslator {
        SingleNamespaceTranslator::new("vc", "host-ns").expect("translator")
    }

    fn policy() -> NetworkPolicy {
        serde_json::from_value(json!({
            "metadata": {"name": "db", "namespace": "shop"},
            "spec": {
                "podSelector": {"matchLabels": {"app": "db"}},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{
                    "from": [
                        {"podSelector": {"matchLabels": {"app": "api"}}},
                        {"namespaceSelector": {"matchLabels": {"team": "ops"}}},
                        {"namespaceSelector": {}, "podSelector": {"matchExpressions": [{"key": "role", "operator": "In", "values": ["monitor"]}]}},
                        {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}},
                    ],
                    "ports": [{"port": 5432, "protocol": "TCP"}],
                }],
                "egress": [{"to": [{"podSelector": {}}]}],
            },
        }))
        .expect("policy")
    }

    #[test]
    fn selectors_and_peers_are_scoped_to_the_tenant() {
        let t = translator();
        let host = host_policy(&t, &policy()).expect("host");
        let spec = host.spec.expect("spec");
        let selector = spec
            .pod_selector
            .expect("selector")
            .match_labels
            .expect("labels");
        assert_eq!(selector["app"], "db");
        assert_eq!(selector[NAMESPACE_LABEL], "shop");
        assert_eq!(selector[MANAGED_BY_LABEL], "vc");

        let ingress = &spec.ingress.expect("ingress")[0];
        let from = ingress.from.as_ref().expect("from");
        let pods = from[0]
            .pod_selector
            .as_ref()
            .expect("pods")
            .match_labels
            .as_ref()
            .expect("labels");
        assert_eq!(pods[NAMESPACE_LABEL], "shop");
        assert!(from[0].namespace_selector.is_none());

        let ops = from[1]
            .pod_selector
            .as_ref()
            .expect("pods")
            .match_labels
            .as_ref()
            .expect("labels");
        let team_key = t.namespace_label_key("team").expect("key");
        assert_eq!(ops[&team_key], "ops");
        assert_eq!(ops[MANAGED_BY_LABEL], "vc");
        assert!(
            !ops.contains_key(NAMESPACE_LABEL),
            "any virtual namespace with the label"
        );
        assert!(from[1].namespace_selector.is_none());

        let monitor = from[2].pod_selector.as_ref().expect("pods");
        assert_eq!(
            monitor.match_expressions.as_ref().expect("exprs")[0].key,
            "role"
        );
        assert_eq!(
            monitor.match_labels.as_ref().expect("labels").len(),
            1,
            "managed-by only"
        );

        assert_eq!(from[3].ip_block.as_ref().expect("block").cidr, "10.0.0.0/8");
        assert_eq!(
            ingress.ports.as_ref().expect("ports")[0]
                .protocol
                .as_deref(),
            Some("TCP")
        );

        let egress = &spec.egress.expect("egress")[0];
        let all = egress.to.as_ref().expect("to")[0]
            .pod_selector
            .as_ref()
            .expect("pods");
        assert_eq!(
            all.match_labels.as_ref().expect("labels")[NAMESPACE_LABEL],
            "shop"
        );
        assert_eq!(
            spec.policy_types,
            Some(vec!["Ingress".to_owned(), "Egress".to_owned()])
        );
    }

    #[test]
    fn a_defaulted_policy_type_on_the_host_is_kept() {
        let current = json!({"podSelector": {}, "policyTypes": ["Ingress"]});
        let desired = json!({"podSelector": {}});
        assert_eq!(owned_patch(&current, &desired, REMOVABLE, IF_SET), None);
    }

    fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
        Selector::from_label_selector(selector)
            .expect("valid selector")
            .matches(labels)
    }

    fn label_set() -> impl Strategy<Value = BTreeMap<String, String>> {
        prop::collection::btree_map(
            prop_oneof![Just("app".to_owned()), Just("team".to_owned())],
            prop_oneof![Just("a".to_owned()), Just("b".to_owned())],
            0..3,
        )
    }

    proptest! {
        /// A translated peer selects a host pod exactly when the virtual
        /// peer selected the virtual pod: pod labels, its namespace's
        /// labels, and whether it is in the policy's namespace all count.
        #[test]
        fn peers_select_the_same_pods(
            pod_selector in prop::option::of(label_set()),
            namespace_selector in prop::option::of(label_set()),
            pod_labels in label_set(),
            namespace_labels in label_set(),
            same_namespace in any::<bool>(),
        ) {
            prop_assume!(pod_selector.is_some() || namespace_selector.is_some());
            let t = translator();
            let to_selector = |m: &BTreeMap<String, String>| LabelSelector {
                match_labels: Some(m.clone()),
                match_expressions: None,
            };
            let peer = NetworkPolicyPeer {
                ip_block: None,
                pod_selector: pod_selector.as_ref().map(to_selector),
                namespace_selector: namespace_selector.as_ref().map(to_selector),
            };
            let pod_namespace = if same_namespace { "shop" } else { "other" };
            let virtual_match = peer.pod_selector.as_ref().is_none_or(|s| matches(s, &pod_labels))
                && match &peer.namespace_selector {
                    None => same_namespace,
                    Some(s) => matches(s, &namespace_labels),
                };

            let mut host_labels = t.host_labels(&pod_labels, Some(pod_namespace)).expect("labels");
            host_labels.extend(t.namespace_labels(&namespace_labels).expect("ns labels"));
            let host = host_peer(&t, "shop", &peer).expect("peer");
            prop_assert!(host.namespace_selector.is_none());
            let host_match = matches(host.pod_selector.as_ref().expect("pod selector"), &host_labels);
            prop_assert_eq!(host_match, virtual_match);

            // Never a pod of another virtual cluster or an unmanaged one.
            let other = SingleNamespaceTranslator::new("other-vc", "host-ns").expect("translator");
            let mut foreign = other.host_labels(&pod_labels, Some(pod_namespace)).expect("labels");
            foreign.extend(other.namespace_labels(&namespace_labels).expect("ns labels"));
            prop_assert!(!matches(host.pod_selector.as_ref().expect("pod selector"), &foreign));
            prop_assert!(!matches(host.pod_selector.as_ref().expect("pod selector"), &pod_labels));
        }
    }
}
