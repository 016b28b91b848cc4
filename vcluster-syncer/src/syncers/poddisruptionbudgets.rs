//! PodDisruptionBudgets (optional, to the host): a tenant's budget also
//! protects the host copies of its pods, so a host node drain (which
//! evicts through the host API) respects it as the tenant's own evictions
//! do in the virtual cluster.
//!
//! To the host (spec; later changes follow): the selector, translated
//! with the budget's namespace scope (it selects the host copies of the
//! pods it meant, and only those); `minAvailable`, `maxUnavailable` and
//! `unhealthyPodEvictionPolicy` copied. Nothing flows back: the virtual
//! cluster's disruption controller keeps the virtual budget's status from
//! the virtual pods.

use async_trait::async_trait;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use vcluster_core::{MarkerScope, Translator, TranslatorExt};

use super::{create_on_host, host_spec_patch};
use crate::error::SyncError;
use crate::memory::Memory;
use crate::syncer::{Action, SyncContext, Syncer, VirtualOnly};

const KIND: &str = "poddisruptionbudgets";

/// Spec fields whose absence means "none".
const REMOVABLE: &[&str] = &["selector", "minAvailable", "maxUnavailable"];
/// Spec fields the host may default.
const IF_SET: &[&str] = &["unhealthyPodEvictionPolicy"];

/// The pod disruption budget syncer.
#[derive(Default)]
pub struct PodDisruptionBudgetSyncer;

impl PodDisruptionBudgetSyncer {
    /// A pod disruption budget syncer.
    pub fn new() -> Self {
        Self
    }
}

/// The host copy of a virtual budget.
pub(crate) fn host_budget(
    translator: &dyn Translator,
    budget: &PodDisruptionBudget,
) -> vcluster_core::Result<PodDisruptionBudget> {
    let namespace = budget.metadata.namespace.clone().unwrap_or_default();
    let mut host = translator.host_object(budget)?;
    host.status = None;
    if let Some(spec) = host.spec.as_mut() {
        // An empty selector selects every pod of the namespace; on the
        // host, every pod of that virtual namespace.
        spec.selector = Some(translator.host_label_selector(
            spec.selector.as_ref().unwrap_or(&LabelSelector::default()),
            MarkerScope::Namespace(&namespace),
        )?);
    }
    Ok(host)
}

#[async_trait]
impl Syncer for PodDisruptionBudgetSyncer {
    type Object = PodDisruptionBudget;
    type DynamicType = ();

    fn name(&self) -> &'static str {
        KIND
    }

    async fn virtual_only(
        &self,
        ctx: &SyncContext,
        budget: &PodDisruptionBudget,
        _memory: Option<&Memory>,
    ) -> Result<VirtualOnly<PodDisruptionBudget>, SyncError> {
        create_on_host(KIND, ctx, budget, host_budget)
    }

    async fn both(
        &self,
        ctx: &SyncContext,
        virtual_budget: &PodDisruptionBudget,
        host: &PodDisruptionBudget,
        _memory: Option<&Memory>,
    ) -> Result<Vec<Action>, SyncError> {
        Ok(host_spec_patch(
            KIND,
            ctx,
            virtual_budget,
            host,
            host_budget,
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
    use serde_json::json;
    use vcluster_core::markers::{MANAGED_BY_LABEL, NAMESPACE_LABEL};
    use vcluster_core::SingleNamespaceTranslator;

    #[test]
    fn the_selector_is_scoped_to_the_tenant_and_status_stays() {
        let translator = SingleNamespaceTranslator::new("vc", "host-ns").expect("translator");
        let budget: PodDisruptionBudget = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"currentHealthy": 3, "desiredHealthy": 2, "disruptionsAllowed": 1, "expectedPods": 3},
        }))
        .expect("budget");
        let host = host_budget(&translator, &budget).expect("host");
        assert_eq!(host.metadata.namespace.as_deref(), Some("host-ns"));
        assert!(host.status.is_none());
        let spec = host.spec.expect("spec");
        let labels = spec
            .selector
            .expect("selector")
            .match_labels
            .expect("labels");
        assert_eq!(labels["app"], "web");
        assert_eq!(labels[NAMESPACE_LABEL], "shop");
        assert_eq!(labels[MANAGED_BY_LABEL], "vc");
        assert_eq!(
            spec.min_available,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(2))
        );
    }
}
