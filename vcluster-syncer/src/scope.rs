//! Building an `Api<K>` for a namespace or for the whole cluster, for any
//! kind: typed namespaced, typed cluster-scoped and dynamic. kube-rs picks
//! the constructor by the kind's scope type; this trait lets the generic
//! engine do the same.

use kube::core::{ClusterResourceScope, DynamicResourceScope, NamespaceResourceScope};
use kube::{Api, Client, Resource};

/// A resource scope that knows how to build an `Api` for its kinds.
pub trait ApiScope: Sized {
    /// An `Api` in `namespace`, or cluster-wide for `None` (list and watch
    /// of every namespace, or the only scope of a cluster-scoped kind).
    fn api<K>(client: Client, namespace: Option<&str>, dt: &K::DynamicType) -> Api<K>
    where
        K: Resource<Scope = Self>;
}

impl ApiScope for NamespaceResourceScope {
    fn api<K>(client: Client, namespace: Option<&str>, dt: &K::DynamicType) -> Api<K>
    where
        K: Resource<Scope = Self>,
    {
        let api = Api::all_with(client, dt);
        match namespace {
            Some(ns) => api.constrain(ns),
            None => api,
        }
    }
}

impl ApiScope for DynamicResourceScope {
    fn api<K>(client: Client, namespace: Option<&str>, dt: &K::DynamicType) -> Api<K>
    where
        K: Resource<Scope = Self>,
    {
        match namespace {
            Some(ns) => Api::namespaced_with(client, ns, dt),
            None => Api::all_with(client, dt),
        }
    }
}

impl ApiScope for ClusterResourceScope {
    fn api<K>(client: Client, _namespace: Option<&str>, dt: &K::DynamicType) -> Api<K>
    where
        K: Resource<Scope = Self>,
    {
        Api::all_with(client, dt)
    }
}
