//! The host a syncer writes to: our own API server, or the real one.

use kube::api::Api;
use vcluster_testkit::cluster::{create_namespace, Cluster};
use vcluster_testkit::fault_proxy::{FaultProxy, Upstream};
use vcluster_testkit::node::RunningNode;
use vcluster_testkit::real_host::{RealHost, RealHostOptions};

use super::{eventually, HOST_SERVICE_CIDR};

/// Which host a scenario runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKind {
    /// Our in-memory API server, fresh for the test (fast; no admission,
    /// no controllers, no kubelet: the test plays them).
    Ours,
    /// Upstream kube-apiserver with kube-controller-manager and a
    /// simulated node, shared by the tests of one binary
    /// ([`vcluster_testkit::real_host::RealHost::shared`]).
    Real,
}

/// A host cluster of either kind, with the admin's client.
pub struct Host {
    pub kind: HostKind,
    pub client: kube::Client,
    /// Our server, for a host of kind [`HostKind::Ours`].
    ours: Option<Cluster>,
    /// A real host of this test's own (see [`Host::start_isolated`]);
    /// `None` for the shared one.
    own_real: Option<RealHost>,
}

impl Host {
    /// A host of `kind` whose services take addresses from
    /// [`HOST_SERVICE_CIDR`].
    pub async fn start(kind: HostKind) -> Self {
        match kind {
            HostKind::Ours => {
                let cluster =
                    Cluster::start_configured(|h| h.service_cidr = HOST_SERVICE_CIDR.to_owned())
                        .await;
                Self {
                    kind,
                    client: cluster.client(),
                    ours: Some(cluster),
                    own_real: None,
                }
            }
            HostKind::Real => {
                let real = tokio::task::block_in_place(RealHost::shared);
                assert_eq!(real.service_cidr(), HOST_SERVICE_CIDR);
                Self {
                    kind,
                    client: real.client(),
                    ours: None,
                    own_real: None,
                }
            }
        }
    }

    /// Like [`Host::start`], but a real host is the test's own, stopped when
    /// this is dropped: for scenarios that look at the whole host (fixed
    /// namespace and tenant names, checks across every namespace).
    pub async fn start_isolated(kind: HostKind) -> Self {
        match kind {
            HostKind::Ours => Self::start(kind).await,
            HostKind::Real => {
                let real =
                    tokio::task::block_in_place(|| RealHost::start(RealHostOptions::default()))
                        .unwrap_or_else(|e| panic!("the real Kubernetes host did not start: {e}"));
                assert_eq!(real.service_cidr(), HOST_SERVICE_CIDR);
                Self {
                    kind,
                    client: real.client(),
                    ours: None,
                    own_real: Some(real),
                }
            }
        }
    }

    /// The real host behind this one.
    fn real(&self) -> &RealHost {
        match &self.own_real {
            Some(real) => real,
            None => tokio::task::block_in_place(RealHost::shared),
        }
    }

    /// Our API server behind a host of kind [`HostKind::Ours`].
    pub fn ours(&self) -> &Cluster {
        self.ours
            .as_ref()
            .expect("this scenario needs our own host server")
    }

    /// A [`FaultProxy`] in front of this host (plain HTTP towards the
    /// test's clients either way).
    pub async fn fault_proxy(&self) -> FaultProxy {
        let upstream = match &self.ours {
            Some(cluster) => Upstream::Plain(cluster.addr),
            None => {
                let (addr, connector, name) = self
                    .real()
                    .tls_connector()
                    .expect("a TLS connector to the real host");
                Upstream::Tls {
                    addr,
                    connector,
                    name,
                }
            }
        };
        FaultProxy::start_to(upstream).await
    }

    /// The node that runs this host's pods, by name: on our host a
    /// simulated node started here (it runs while the returned guard
    /// lives), on the real host the one it always runs.
    pub async fn node(&self) -> (String, Option<RunningNode>) {
        match self.kind {
            HostKind::Ours => {
                let node = RunningNode::start(self.client.clone(), "node-1").await;
                (node.name.clone(), Some(node))
            }
            HostKind::Real => (self.real().node_name().to_owned(), None),
        }
    }

    /// Whether this is the real kube-apiserver.
    pub fn is_real(&self) -> bool {
        self.kind == HostKind::Real
    }

    pub fn api<K>(&self, namespace: &str) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// An API of a cluster-scoped kind (nodes, storage classes).
    pub fn cluster_api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::ClusterResourceScope>,
        K::DynamicType: Default,
    {
        Api::all(self.client.clone())
    }

    /// Creates namespace `name` (if missing) and, on the real host, waits
    /// for what its controllers add before pods can be admitted.
    pub async fn create_namespace(&self, name: &str) {
        create_namespace(&self.client, name).await;
        if self.is_real() {
            let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
                Api::namespaced(self.client.clone(), name);
            eventually("the namespace's default service account", || async {
                accounts.get_opt("default").await.ok().flatten()
            })
            .await;
        }
    }
}
