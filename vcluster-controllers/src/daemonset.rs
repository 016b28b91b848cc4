//! DaemonSets: one pod on every (virtual) Node the pod may run on, as
//! upstream's daemonset controller does.
//!
//! - A node is eligible when it matches the template's `nodeSelector` and
//!   required node affinity, and the pod tolerates its `NoSchedule` /
//!   `NoExecute` taints (daemon pods tolerate the node-condition taints
//!   upstream adds, such as `not-ready` and `unschedulable`).
//! - Each pod is pinned to its node with required node affinity on
//!   `metadata.name` (upstream's way, leaving binding to the scheduler);
//!   pods on nodes that are gone or no longer eligible are deleted, as are
//!   duplicates and failed pods (replaced on the next pass).
//! - RollingUpdate replaces pods of an old template (label
//!   `controller-revision-hash`) at most `maxUnavailable` at a time.
//! - Status: desired/current/misscheduled/ready/available/updated counts.
//! - Each template is recorded as a ControllerRevision `<set>-<template
//!   hash>` (`history`) for `kubectl rollout history` and `undo`.
//!
//! Virtual nodes exist only where something creates them (a node syncer,
//! a test): with none, a DaemonSet has no pods. The syncer's
//! `NodeSelection::All` shows every host node at once; its default shows
//! only nodes other tenant pods already run on.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    Taint, Toleration,
};
use kube::api::{Api, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;

use crate::deployment::util::scaled_value;
use crate::error::{ApiContext, Error, Result};
use crate::hash::template_hash;
use crate::history::{History, DEFAULT_HISTORY_LIMIT, REVISION_LABEL};
use crate::meta::{
    classify, controller_ref, delete_exact, labels, name_of, namespace_of, selector_of,
    settle_claim, uid_of,
};
use crate::pods;
use crate::runtime::{drive, Shared};
use vcluster_core::FieldManager;

const KIND: &str = "DaemonSet";
/// The reporting controller of its events.
const CONTROLLER: &str = "daemonset-controller";
/// The deprecated label with the DaemonSet generation a pod came from.
pub(crate) const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

/// Runs the daemonset controller until `cancel` fires.
pub(crate) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let client = shared.client.clone();
    let controller = Controller::new(
        Api::<DaemonSet>::all(client.clone()),
        watcher::Config::default(),
    );
    let sets = controller.store();
    // Any node change may change where every DaemonSet runs.
    let controller = controller
        .owns(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .watches(
            Api::<Node>::all(client),
            watcher::Config::default(),
            move |_node| {
                sets.state()
                    .iter()
                    .map(|ds| ObjectRef::from_obj(ds.as_ref()))
                    .collect::<Vec<_>>()
            },
        );
    drive("daemonset", controller, shared, reconcile, cancel).await;
}

/// The taints daemon pods tolerate out of the box (upstream's
/// `AddOrUpdateDaemonPodTolerations`).
pub(crate) fn default_tolerations(host_network: bool) -> Vec<Toleration> {
    let toleration = |key: &str, effect: &str| Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Toleration::default()
    };
    let mut list = vec![
        toleration("node.kubernetes.io/not-ready", "NoExecute"),
        toleration("node.kubernetes.io/unreachable", "NoExecute"),
        toleration("node.kubernetes.io/disk-pressure", "NoSchedule"),
        toleration("node.kubernetes.io/memory-pressure", "NoSchedule"),
        toleration("node.kubernetes.io/pid-pressure", "NoSchedule"),
        toleration("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        list.push(toleration(
            "node.kubernetes.io/network-unavailable",
            "NoSchedule",
        ));
    }
    list
}

fn tolerates(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| {
        let effect_ok = t
            .effect
            .as_deref()
            .is_none_or(|e| e.is_empty() || e == taint.effect);
        let key_ok = t
            .key
            .as_deref()
            .is_none_or(|k| k.is_empty() || k == taint.key);
        let value_ok = match t.operator.as_deref() {
            Some("Exists") => true,
            _ => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        };
        effect_ok && key_ok && value_ok
    })
}

fn requirement_matches(req: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = req.values.as_deref().unwrap_or_default();
    match req.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if req.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let node_labels = labels(&node.metadata);
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    expressions
        .iter()
        .all(|r| requirement_matches(r, node_labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| {
            let value = (r.key == "metadata.name")
                .then_some(node.metadata.name.as_deref())
                .flatten();
            requirement_matches(r, value)
        })
}

/// Whether a pod of `ds` should run on `node`.
pub(crate) fn should_run_on(ds: &DaemonSet, node: &Node) -> bool {
    if node.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let pod_spec = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .unwrap_or_default();
    let node_labels = labels(&node.metadata);
    let selector_ok = pod_spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| node_labels.get(k) == Some(v));
    if !selector_ok {
        return false;
    }
    let required = pod_spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    if let Some(required) = required {
        if !required
            .node_selector_terms
            .iter()
            .any(|t| term_matches(t, node))
        {
            return false;
        }
    }
    let mut tolerations = pod_spec.tolerations.clone().unwrap_or_default();
    tolerations.extend(default_tolerations(pod_spec.host_network.unwrap_or(false)));
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .all(|t| tolerates(&tolerations, t))
}

/// The node a daemon pod is for: its `nodeName`, or the `metadata.name`
/// its required node affinity names (upstream's `GetTargetNodeName`).
pub fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(node) = spec.node_name.as_ref().filter(|n| !n.is_empty()) {
        return Some(node.clone());
    }
    spec.affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|r| r.key == "metadata.name" && r.operator == "In")
        .and_then(|r| r.values.as_ref()?.first().cloned())
}

/// The daemon pod for `node`: the template, labelled with its revision,
/// pinned to the node by affinity, with the default tolerations.
pub(crate) fn daemon_pod(
    ds: &DaemonSet,
    namespace: &str,
    node: &str,
    revision: &str,
) -> Result<Pod> {
    let spec = ds.spec.clone().unwrap_or_default();
    let mut pod = pods::from_template(&spec.template, namespace, controller_ref(ds)?);
    pod.metadata.generate_name = Some(pods::generate_name(&name_of(ds)?));
    let pod_labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    pod_labels.insert(REVISION_LABEL.into(), revision.to_owned());
    if let Some(generation) = ds.metadata.generation {
        pod_labels.insert(TEMPLATE_GENERATION_LABEL.into(), generation.to_string());
    }
    let pod_spec = pod.spec.get_or_insert_with(Default::default);
    let field = NodeSelectorRequirement {
        key: "metadata.name".into(),
        operator: "In".into(),
        values: Some(vec![node.to_owned()]),
    };
    let affinity = pod_spec.affinity.get_or_insert_with(Affinity::default);
    let node_affinity = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    let required = node_affinity
        .required_during_scheduling_ignored_during_execution
        .get_or_insert_with(|| NodeSelector {
            node_selector_terms: Vec::new(),
        });
    if required.node_selector_terms.is_empty() {
        required
            .node_selector_terms
            .push(NodeSelectorTerm::default());
    }
    for term in &mut required.node_selector_terms {
        term.match_fields = Some(vec![field.clone()]);
    }
    let tolerations = pod_spec.tolerations.get_or_insert_with(Vec::new);
    for toleration in default_tolerations(pod_spec.host_network.unwrap_or(false)) {
        if !tolerations
            .iter()
            .any(|t| t.key == toleration.key && t.effect == toleration.effect)
        {
            tolerations.push(toleration);
        }
    }
    Ok(pod)
}

async fn reconcile(obj: Arc<DaemonSet>, shared: Arc<Shared>) -> Result<Action> {
    let namespace = namespace_of(obj.as_ref())?;
    let name = name_of(obj.as_ref())?;
    let key = format!("{namespace}/{name}");
    let api: Api<DaemonSet> = Api::namespaced(shared.client.clone(), &namespace);
    let Some(ds) = api.get_opt(&name).await.context("get", KIND, &key)? else {
        return Ok(Action::await_change());
    };
    let pod_api: Api<Pod> = Api::namespaced(shared.client.clone(), &namespace);
    let spec = ds.spec.clone().unwrap_or_default();
    let selector = selector_of(KIND, &key, Some(&spec.selector))?;
    let nodes = Api::<Node>::all(shared.client.clone())
        .list(&ListParams::default())
        .await
        .context("list", "Node", &key)?
        .items;
    let all = pod_api
        .list(&ListParams::default())
        .await
        .context("list", "Pod", &key)?
        .items;
    let deleting = ds.metadata.deletion_timestamp.is_some();
    let claim = classify(&uid_of(&ds)?, &selector, deleting, all);
    let owned = settle_claim(&pod_api, &controller_ref(&ds)?, claim).await?;
    let revision = template_hash(
        &spec.template,
        ds.status.as_ref().and_then(|s| s.collision_count),
    );
    if !deleting {
        // Older revisions stay while pods still run them.
        let running: Vec<String> = owned
            .iter()
            .filter_map(|p| labels(&p.metadata).get(REVISION_LABEL))
            .map(|hash| format!("{name}-{hash}"))
            .collect();
        let running: Vec<&str> = running.iter().map(String::as_str).collect();
        History {
            api: Api::namespaced(shared.client.clone(), &namespace),
            owner: controller_ref(&ds)?,
            key: &key,
            selector_labels: spec.selector.match_labels.clone().unwrap_or_default(),
            limit: spec.revision_history_limit.unwrap_or(DEFAULT_HISTORY_LIMIT),
        }
        .record(
            &format!("{name}-{revision}"),
            &revision,
            &spec.template,
            &running,
        )
        .await?;
    }
    let now = shared.now();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);

    let mut by_node: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
    let mut nodeless: Vec<&Pod> = Vec::new();
    for pod in owned
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        match target_node(pod) {
            Some(node) => by_node.entry(node).or_default().push(pod),
            None => nodeless.push(pod),
        }
    }
    let mut to_create: Vec<String> = Vec::new();
    let mut to_delete: Vec<&Pod> = nodeless;
    let mut status = DaemonSetStatus {
        observed_generation: ds.metadata.generation,
        collision_count: ds.status.as_ref().and_then(|s| s.collision_count),
        conditions: ds.status.as_ref().and_then(|s| s.conditions.clone()),
        ..DaemonSetStatus::default()
    };
    let (mut available, mut updated) = (0, 0);
    let mut old_pods: Vec<&Pod> = Vec::new();
    let mut unavailable_nodes = 0;
    for node in &nodes {
        let Some(node_name) = node.metadata.name.clone() else {
            continue;
        };
        let mut here = by_node.remove(&node_name).unwrap_or_default();
        if should_run_on(&ds, node) {
            status.desired_number_scheduled += 1;
            // Failed pods go; the node gets a new one next time.
            let (failed, alive): (Vec<&Pod>, Vec<&Pod>) =
                here.drain(..).partition(|p| pods::phase(p) == "Failed");
            to_delete.extend(failed);
            let mut alive = alive;
            alive.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
            match alive.split_first() {
                None => {
                    to_create.push(node_name);
                    unavailable_nodes += 1;
                }
                Some((pod, duplicates)) => {
                    to_delete.extend(duplicates);
                    status.current_number_scheduled += 1;
                    if pods::is_ready(pod) {
                        status.number_ready += 1;
                    }
                    let is_available = pods::is_available(pod, min_ready, now);
                    if is_available {
                        available += 1;
                    } else {
                        unavailable_nodes += 1;
                    }
                    if labels(&pod.metadata).get(REVISION_LABEL) == Some(&revision) {
                        updated += 1;
                    } else {
                        old_pods.push(pod);
                    }
                }
            }
        } else if !here.is_empty() {
            status.number_misscheduled += 1;
            to_delete.extend(here);
        }
    }
    // Pods for nodes that no longer exist.
    to_delete.extend(by_node.into_values().flatten());
    status.number_available = Some(available);
    status.number_unavailable = Some(status.desired_number_scheduled - available);
    status.updated_number_scheduled = Some(updated);

    if !deleting {
        // Rolling update: replace old pods while within maxUnavailable,
        // unavailable ones first (they cost no availability).
        let strategy = spec.update_strategy.clone().unwrap_or_default();
        if strategy.type_.as_deref() != Some("OnDelete") {
            let max_unavailable = strategy
                .rolling_update
                .as_ref()
                .and_then(|r| r.max_unavailable.as_ref())
                .map(|v| scaled_value(v, status.desired_number_scheduled, true))
                .transpose()
                .map_err(|message| Error::InvalidSpec {
                    kind: KIND,
                    key: key.clone(),
                    message,
                })?
                .unwrap_or(1)
                .max(1);
            let (unready_old, ready_old): (Vec<&Pod>, Vec<&Pod>) = old_pods
                .into_iter()
                .partition(|p| !pods::is_available(p, min_ready, now));
            to_delete.extend(unready_old);
            let budget = (max_unavailable - unavailable_nodes).max(0) as usize;
            to_delete.extend(ready_old.into_iter().take(budget));
        }
        for node in &to_create {
            let pod = daemon_pod(&ds, &namespace, node, &revision)?;
            let created = pod_api
                .create(&FieldManager::CONTROLLERS.post_params(), &pod)
                .await
                .context("create", "Pod", &key)?;
            let pod_name = created.metadata.name.unwrap_or_default();
            tracing::info!(node = %node, pod = %pod_name, "created daemon pod");
            shared
                .event(
                    CONTROLLER,
                    &ds,
                    false,
                    "SuccessfulCreate",
                    format!("Created pod: {pod_name}"),
                )
                .await;
        }
        for pod in &to_delete {
            if delete_exact(&pod_api, pod).await? {
                let pod_name = pod.metadata.name.as_deref().unwrap_or("");
                tracing::info!(pod = %pod_name, "deleted daemon pod");
                shared
                    .event(
                        CONTROLLER,
                        &ds,
                        false,
                        "SuccessfulDelete",
                        format!("Deleted pod: {pod_name}"),
                    )
                    .await;
            }
        }
    }
    if ds.status.as_ref() != Some(&status) {
        let mut updated_ds = ds.clone();
        updated_ds.status = Some(status);
        api.replace_status(&name, &FieldManager::CONTROLLERS.post_params(), &updated_ds)
            .await
            .context("update status of", KIND, &key)?;
    }
    Ok(Action::requeue(shared.options.resync))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DaemonSetSpec;
    use k8s_openapi::api::core::v1::{NodeSpec, PodSpec, PodTemplateSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn node(name: &str, labels: &[(&str, &str)], taints: Vec<Taint>) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec {
                taints: Some(taints),
                ..NodeSpec::default()
            }),
            status: None,
        }
    }

    fn daemon_set(node_selector: &[(&str, &str)], tolerations: Vec<Toleration>) -> DaemonSet {
        DaemonSet {
            metadata: ObjectMeta {
                name: Some("agent".into()),
                namespace: Some("kube-system".into()),
                uid: Some("ds-uid".into()),
                generation: Some(3),
                ..ObjectMeta::default()
            },
            spec: Some(DaemonSetSpec {
                template: PodTemplateSpec {
                    metadata: None,
                    spec: Some(PodSpec {
                        node_selector: Some(
                            node_selector
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_string()))
                                .collect(),
                        ),
                        tolerations: Some(tolerations),
                        ..PodSpec::default()
                    }),
                },
                ..DaemonSetSpec::default()
            }),
            status: None,
        }
    }

    fn taint(key: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            value: None,
            time_added: None,
        }
    }

    #[test]
    fn node_selectors_and_taints_decide_where_daemons_run() {
        let linux = node("a", &[("os", "linux")], vec![]);
        let windows = node("b", &[("os", "windows")], vec![]);
        let tainted = node("c", &[("os", "linux")], vec![taint("gpu", "NoSchedule")]);
        let cordoned = node(
            "d",
            &[("os", "linux")],
            vec![taint("node.kubernetes.io/unschedulable", "NoSchedule")],
        );
        let prefer = node(
            "e",
            &[("os", "linux")],
            vec![taint("gpu", "PreferNoSchedule")],
        );
        let ds = daemon_set(&[("os", "linux")], vec![]);
        assert!(should_run_on(&ds, &linux));
        assert!(!should_run_on(&ds, &windows));
        assert!(!should_run_on(&ds, &tainted));
        assert!(
            should_run_on(&ds, &cordoned),
            "daemons tolerate cordoned nodes"
        );
        assert!(should_run_on(&ds, &prefer));
        let tolerant = daemon_set(
            &[],
            vec![Toleration {
                key: Some("gpu".into()),
                operator: Some("Exists".into()),
                ..Toleration::default()
            }],
        );
        assert!(should_run_on(&tolerant, &tainted));
        assert!(should_run_on(&tolerant, &windows));
    }

    #[test]
    fn daemon_pods_are_pinned_to_their_node() {
        let ds = daemon_set(&[], vec![]);
        let pod = daemon_pod(&ds, "kube-system", "node-7", "abc").expect("pod");
        assert_eq!(target_node(&pod).as_deref(), Some("node-7"));
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("agent-"));
        let pod_labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(pod_labels[REVISION_LABEL], "abc");
        assert_eq!(pod_labels[TEMPLATE_GENERATION_LABEL], "3");
        let tolerations = pod.spec.and_then(|s| s.tolerations).unwrap_or_default();
        assert!(tolerations
            .iter()
            .any(|t| t.key.as_deref() == Some("node.kubernetes.io/not-ready")));
    }
}
