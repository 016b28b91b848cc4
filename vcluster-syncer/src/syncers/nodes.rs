//! Nodes (from the host): the virtual cluster shows the host nodes its pods
//! run on, so `kubectl get nodes`, `kubectl describe pod` and anything
//! that looks up a pod's node work for tenants.
//!
//! By default ([`NodeSelection::Used`], as vCluster) a host node is shown
//! while at least one host pod of this virtual cluster (the pod syncer's
//! host store: pods carrying this virtual cluster's markers) has
//! `spec.nodeName` set to it; [`NodeSelection::All`] shows every host node
//! from the start, so tenants' DaemonSets have nodes to run on before any
//! other pod is scheduled. The virtual node has
//! the host node's name, its labels and its status, plus
//! [`FROM_HOST_LABEL`]; the status follows the host's
//! ([`Action::PatchVirtualStatus`]), the labels are kept equal to the
//! host's. When no tenant pod runs there any more, or the host node is
//! gone, the virtual node is deleted. A virtual node without the label (a
//! tenant's own) is never touched.
//!
//! With [`NodeMode::Fake`] the virtual node is a minimal stand-in, as
//! vCluster's fake nodes: same name, a Ready condition, the capacity given
//! in the option, no addresses, no host labels (only `kubernetes.io/hostname`,
//! `kubernetes.io/os` and `vcluster.loft.sh/fake-node`), so nothing about
//! the host's machines reaches tenants. Its status stays that template
//! (no heartbeats). The syncer still watches the host's nodes (to notice nodes
//! that disappear).
//!
//! Key mapping: a node has the same name on both sides (the engine's
//! mapping is the identity), the host watch is every host node (host nodes
//! carry no marker of ours), and the runner queues a node's key whenever a
//! host pod bound to it changes ([`SyncEngine::observe_host`](crate::SyncEngine::observe_host)
//! on the pod syncer).

use std::collections::BTreeMap;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Node, NodeCondition, NodeStatus, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::Store;
use serde_json::json;
use vcluster_core::VirtualKey;

use super::{is_from_host, status_patch, FROM_HOST_LABEL};
use crate::engine::Listed;
use crate::error::SyncError;
use crate::labels_annotations::map_patch;
use crate::memory::Memory;
use crate::syncer::{Action, Direction, HostOnly, SyncContext, Syncer};

const KIND: &str = "nodes";

/// How long a reconcile waits for the host pods to be listed.
const POD_STORE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The label vCluster puts on fake nodes.
pub const FAKE_NODE_LABEL: &str = "vcluster.loft.sh/fake-node";

/// What a virtual node looks like.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum NodeMode {
    /// A copy of the host node (labels and status).
    #[default]
    Real,
    /// A minimal fake node with this capacity (and allocatable), e.g.
    /// `cpu: 16`, `memory: 64Gi`, `pods: 110` ([`NodeMode::fake`]).
    Fake {
        /// Capacity and allocatable of every fake node.
        capacity: BTreeMap<String, Quantity>,
    },
}

impl NodeMode {
    /// Fake nodes with a default capacity of 16 CPUs, 64Gi of memory and
    /// 110 pods.
    pub fn fake() -> Self {
        let capacity = [("cpu", "16"), ("memory", "64Gi"), ("pods", "110")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Quantity(v.to_owned())))
            .collect();
        NodeMode::Fake { capacity }
    }
}

/// Which host nodes the virtual cluster shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NodeSelection {
    /// Only the nodes this virtual cluster's pods run on (vCluster's
    /// default): tenants learn nothing about the rest of the host.
    #[default]
    Used,
    /// Every host node, whether or not a tenant pod runs there (vCluster's
    /// `sync.fromHost.nodes.selector.all`).
    All,
}

/// The node syncer.
pub struct NodeSyncer {
    mode: NodeMode,
    selection: NodeSelection,
    pods: Store<Pod>,
    /// Whether `pods` holds a full list yet.
    pods_listed: Listed,
}

impl NodeSyncer {
    /// A node syncer that shows the nodes that the pods in `pods` (the pod
    /// syncer's host store) run on.
    pub fn new(mode: NodeMode, pods: Store<Pod>, pods_listed: Listed) -> Self {
        Self {
            mode,
            selection: NodeSelection::default(),
            pods,
            pods_listed,
        }
    }

    /// Shows the host nodes `selection` picks instead of only the used ones.
    pub fn with_selection(mut self, selection: NodeSelection) -> Self {
        self.selection = selection;
        self
    }

    /// Whether the host node `node` is shown.
    async fn wanted(&self, ctx: &SyncContext, node: &str) -> Result<bool, SyncError> {
        match self.selection {
            NodeSelection::All => Ok(true),
            NodeSelection::Used => self.used(ctx, node).await,
        }
    }

    /// Whether a pod of this virtual cluster runs on `node`, once the pod
    /// store has been listed (before that nobody could tell, and a wrong
    /// "no" would delete virtual nodes at every restart).
    async fn used(&self, ctx: &SyncContext, node: &str) -> Result<bool, SyncError> {
        // Bounded, so a worker never hangs here (and shutdown never waits):
        // the key is retried with backoff instead.
        let not_ready = |message: String| SyncError::Invalid {
            kind: KIND,
            key: VirtualKey::cluster(node),
            message,
        };
        match tokio::time::timeout(POD_STORE_WAIT, self.pods_listed.wait()).await {
            Ok(true) => {}
            Ok(false) => return Err(not_ready("the pod syncer is gone".into())),
            Err(_) => return Err(not_ready("the host pods are not listed yet".into())),
        }
        Ok(self
            .pods
            .find(|pod| {
                pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node)
                    && ctx.translator.owner_of(&pod.metadata).is_some()
            })
            .is_some())
    }

    /// The virtual node for a host node.
    pub fn virtual_node(&self, host: &Node) -> Node {
        match &self.mode {
            NodeMode::Real => real_node(host),
            NodeMode::Fake { capacity } => {
                fake_node(host.metadata.name.as_deref().unwrap_or_default(), capacity)
            }
        }
    }
}

fn real_labels(host: &Node) -> BTreeMap<String, String> {
    let mut labels = host.metadata.labels.clone().unwrap_or_default();
    labels.insert(FROM_HOST_LABEL.to_owned(), "true".to_owned());
    labels
}

/// A copy of a host node: name, labels (plus the marker) and status.
pub(crate) fn real_node(host: &Node) -> Node {
    Node {
        metadata: ObjectMeta {
            name: host.metadata.name.clone(),
            labels: Some(real_labels(host)),
            ..ObjectMeta::default()
        },
        spec: None,
        status: host.status.clone(),
    }
}

/// A fake node called `name` with `capacity`.
pub(crate) fn fake_node(name: &str, capacity: &BTreeMap<String, Quantity>) -> Node {
    let labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_owned(), name.to_owned()),
        ("kubernetes.io/os".to_owned(), "linux".to_owned()),
        (FAKE_NODE_LABEL.to_owned(), "true".to_owned()),
        (FROM_HOST_LABEL.to_owned(), "true".to_owned()),
    ]);
    Node {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: None,
        status: Some(NodeStatus {
            capacity: Some(capacity.clone()),
            allocatable: Some(capacity.clone()),
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: Some("KubeletReady".into()),
                message: Some("fake node of a virtual cluster".into()),
                ..NodeCondition::default()
            }]),
            ..NodeStatus::default()
        }),
    }
}

#[async_trait]
impl Syncer for NodeSyncer {
    type Object = Node;
    type DynamicType = ();

    fn name(&self) -> &'static str {
        KIND
    }

    fn direction(&self) -> Direction {
        Direction::FromHost
    }

    fn namespaced(&self) -> bool {
        false
    }

    async fn both(
        &self,
        ctx: &SyncContext,
        virtual_node: &Node,
        host: &Node,
        _memory: Option<&Memory>,
    ) -> Result<Vec<Action>, SyncError> {
        if !is_from_host(&virtual_node.metadata) {
            return Ok(Vec::new());
        }
        let name = host.metadata.name.as_deref().unwrap_or_default();
        if !self.wanted(ctx, name).await? {
            return Ok(vec![Action::DeleteVirtual]);
        }
        let wanted = self.virtual_node(host);
        let mut actions = Vec::new();
        if let Some(labels) = map_patch(
            &virtual_node.metadata.labels.clone().unwrap_or_default(),
            &wanted.metadata.labels.clone().unwrap_or_default(),
        ) {
            actions.push(Action::PatchVirtual(
                json!({"metadata": {"labels": labels}}),
            ));
        } else if let Some(patch) = status_patch(KIND, virtual_node, &wanted)? {
            // One virtual write per reconcile (each is pinned to the same
            // resourceVersion); the status follows at the next one.
            actions.push(Action::PatchVirtualStatus(patch));
        }
        Ok(actions)
    }

    async fn host_only(
        &self,
        ctx: &SyncContext,
        host: &Node,
        _memory: Option<&Memory>,
    ) -> Result<HostOnly<Node>, SyncError> {
        let Some(name) = host.metadata.name.as_deref() else {
            return Ok(HostOnly::Skip);
        };
        if !self.wanted(ctx, name).await? {
            return Ok(HostOnly::Skip);
        }
        Ok(HostOnly::CreateVirtual(self.virtual_node(host)))
    }
}

/// The node a host pod is bound to, if any (for queueing node keys).
pub fn node_of(pod: &Pod) -> Option<VirtualKey> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
        .map(VirtualKey::cluster)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector;
    use kube::runtime::watcher;
    use vcluster_core::TranslatorExt;

    use crate::syncer::VirtualOnly;

    fn host_node() -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": "worker-1", "uid": "n1", "labels": {"zone": "a"}, "annotations": {"x": "y"}},
            "spec": {"podCIDR": "10.244.1.0/24", "providerID": "aws:///i-123"},
            "status": {
                "capacity": {"cpu": "4"},
                "addresses": [{"type": "InternalIP", "address": "192.168.0.10"}],
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }))
        .expect("node")
    }

    /// A pod store holding the host copy of one tenant pod bound to `node`.
    fn pods_on(node: Option<&str>) -> Store<Pod> {
        let ctx = super::super::tests::context();
        let (store, mut writer) = reflector::store::<Pod>();
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"containers": [], "nodeName": node},
        }))
        .expect("pod");
        pod = ctx.translator.host_object(&pod).expect("host pod");
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitApply(pod));
        writer.apply_watcher_event(&watcher::Event::InitDone);
        store
    }

    #[test]
    fn a_real_copy_has_labels_and_status_but_no_spec() {
        let node = real_node(&host_node());
        let labels = node.metadata.labels.expect("labels");
        assert_eq!(labels["zone"], "a");
        assert_eq!(labels[FROM_HOST_LABEL], "true");
        assert_eq!(node.metadata.uid, None);
        assert_eq!(node.metadata.annotations, None);
        assert_eq!(node.spec, None);
        assert_eq!(node.status, host_node().status);
    }

    #[test]
    fn a_fake_node_is_ready_with_the_given_capacity_and_no_addresses() {
        let NodeMode::Fake { capacity } = NodeMode::fake() else {
            panic!("fake");
        };
        let node = fake_node("worker-1", &capacity);
        let status = node.status.expect("status");
        assert_eq!(
            status.capacity.as_ref().expect("capacity")["pods"],
            Quantity("110".into())
        );
        assert_eq!(status.allocatable, status.capacity);
        assert_eq!(status.addresses, None);
        let ready = &status.conditions.expect("conditions")[0];
        assert_eq!(
            (ready.type_.as_str(), ready.status.as_str()),
            ("Ready", "True")
        );
        let labels = node.metadata.labels.expect("labels");
        assert_eq!(labels[FAKE_NODE_LABEL], "true");
        assert!(!labels.contains_key("zone"));
    }

    #[tokio::test]
    async fn nodes_are_shown_only_while_tenant_pods_run_there() {
        let ctx = super::super::tests::context();
        let host = host_node();
        let used = NodeSyncer::new(NodeMode::Real, pods_on(Some("worker-1")), Listed::done());
        assert!(matches!(
            used.host_only(&ctx, &host, None).await.expect("decision"),
            HostOnly::CreateVirtual(n) if n.metadata.name.as_deref() == Some("worker-1")
        ));
        let unused = NodeSyncer::new(NodeMode::Real, pods_on(Some("worker-2")), Listed::done());
        assert!(matches!(
            unused.host_only(&ctx, &host, None).await.expect("decision"),
            HostOnly::Skip
        ));
        let copy = real_node(&host);
        assert_eq!(
            unused
                .both(&ctx, &copy, &host, None)
                .await
                .expect("decision"),
            vec![Action::DeleteVirtual]
        );
        assert_eq!(
            used.both(&ctx, &copy, &host, None).await.expect("decision"),
            vec![]
        );
        let mut own = copy.clone();
        own.metadata.labels = None;
        assert_eq!(
            unused
                .both(&ctx, &own, &host, None)
                .await
                .expect("decision"),
            vec![]
        );
        assert!(matches!(
            unused
                .virtual_only(&ctx, &copy, None)
                .await
                .expect("decision"),
            VirtualOnly::DeleteVirtual
        ));
        assert!(matches!(
            unused
                .virtual_only(&ctx, &own, None)
                .await
                .expect("decision"),
            VirtualOnly::Skip
        ));
    }

    #[tokio::test]
    async fn with_all_selected_every_host_node_is_shown() {
        let ctx = super::super::tests::context();
        let host = host_node();
        // No tenant pod anywhere, and the pod store not even listed.
        let (unlisted, _writer) = reflector::store::<Pod>();
        let (_not_yet, never) = tokio::sync::watch::channel(false);
        let all = NodeSyncer::new(NodeMode::Real, unlisted, Listed(never))
            .with_selection(NodeSelection::All);
        assert!(matches!(
            all.host_only(&ctx, &host, None).await.expect("decision"),
            HostOnly::CreateVirtual(n) if n.metadata.name.as_deref() == Some("worker-1")
        ));
        let copy = real_node(&host);
        assert_eq!(
            all.both(&ctx, &copy, &host, None).await.expect("decision"),
            vec![]
        );
        // The host node gone: its copy goes too.
        assert!(matches!(
            all.virtual_only(&ctx, &copy, None).await.expect("decision"),
            VirtualOnly::DeleteVirtual
        ));
    }

    #[tokio::test]
    async fn host_status_and_labels_flow_to_the_copy() {
        let ctx = super::super::tests::context();
        let syncer = NodeSyncer::new(NodeMode::Real, pods_on(Some("worker-1")), Listed::done());
        let mut host = host_node();
        let copy = real_node(&host);
        host.metadata
            .labels
            .get_or_insert_default()
            .insert("zone".into(), "b".into());
        assert_eq!(
            syncer
                .both(&ctx, &copy, &host, None)
                .await
                .expect("decision"),
            vec![Action::PatchVirtual(
                json!({"metadata": {"labels": {"zone": "b"}}})
            )]
        );
        let copy = real_node(&host);
        host.status = Some(NodeStatus {
            capacity: Some(BTreeMap::from([("cpu".into(), Quantity("8".into()))])),
            ..NodeStatus::default()
        });
        let actions = syncer
            .both(&ctx, &copy, &host, None)
            .await
            .expect("decision");
        assert!(
            matches!(actions.as_slice(), [Action::PatchVirtualStatus(p)] if p["status"]["capacity"]["cpu"] == "8")
        );
    }

    #[test]
    fn pods_name_their_node() {
        let pod: Pod = serde_json::from_value(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [], "nodeName": "n"}}),
        )
        .expect("pod");
        assert_eq!(node_of(&pod), Some(VirtualKey::cluster("n")));
        assert_eq!(node_of(&Pod::default()), None);
    }
}
