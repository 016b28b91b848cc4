//! Object identity: which kind an object is and where it lives.
//!
//! A [`VirtualKey`] names an object in the virtual cluster, a [`HostKey`]
//! names its copy on the host. They are different types so the compiler
//! stops a virtual name from being used as a host name. Keys are cloned for
//! every queue entry and cache lookup, so they share their strings
//! (`Arc<str>`): a clone is two reference-count increments.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_core::Resource;

/// Group, version and kind of an object.
///
/// Its [`Display`](fmt::Display) matches Go's
/// `schema.GroupVersionKind.String()`: `"<group>/<version>, Kind=<kind>"`,
/// so the core group gives `"/v1, Kind=Pod"`. That string is what vCluster
/// stores in the `vcluster.loft.sh/object-kind` annotation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct GroupVersionKind {
    /// API group; empty for the core group.
    pub group: String,
    /// API version, e.g. `v1`.
    pub version: String,
    /// Kind, e.g. `Pod`.
    pub kind: String,
}

impl GroupVersionKind {
    /// From its three parts.
    pub fn new(
        group: impl Into<String>,
        version: impl Into<String>,
        kind: impl Into<String>,
    ) -> Self {
        GroupVersionKind {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
        }
    }

    /// From an object's `apiVersion` (`"apps/v1"` or `"v1"`) and `kind`.
    pub fn from_api_version(api_version: &str, kind: &str) -> Self {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        GroupVersionKind::new(group, version, kind)
    }

    /// The kind of resource type `K`, typed (`dt = &()`) or dynamic (`dt` is
    /// the `ApiResource` of a `DynamicObject`).
    pub fn of<K: Resource>(dt: &K::DynamicType) -> Self {
        GroupVersionKind::new(K::group(dt), K::version(dt), K::kind(dt))
    }

    /// The `apiVersion` string: `"v1"` for the core group, else `"group/version"`.
    pub fn api_version(&self) -> Cow<'_, str> {
        if self.group.is_empty() {
            Cow::Borrowed(&self.version)
        } else {
            Cow::Owned(format!("{}/{}", self.group, self.version))
        }
    }
}

impl fmt::Display for GroupVersionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}, Kind={}", self.group, self.version, self.kind)
    }
}

impl From<kube_core::GroupVersionKind> for GroupVersionKind {
    fn from(gvk: kube_core::GroupVersionKind) -> Self {
        GroupVersionKind::new(gvk.group, gvk.version, gvk.kind)
    }
}

impl From<GroupVersionKind> for kube_core::GroupVersionKind {
    fn from(gvk: GroupVersionKind) -> Self {
        kube_core::GroupVersionKind::gvk(&gvk.group, &gvk.version, &gvk.kind)
    }
}

impl From<&kube_core::ApiResource> for GroupVersionKind {
    fn from(ar: &kube_core::ApiResource) -> Self {
        GroupVersionKind::new(ar.group.as_str(), ar.version.as_str(), ar.kind.as_str())
    }
}

/// Whether objects of a kind live in a namespace or in the whole cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Objects live in a namespace (Pods, Services, ...).
    Namespaced,
    /// Objects are global (Nodes, PersistentVolumes, ...).
    Cluster,
}

impl From<kube_core::discovery::Scope> for Scope {
    fn from(scope: kube_core::discovery::Scope) -> Self {
        match scope {
            kube_core::discovery::Scope::Namespaced => Scope::Namespaced,
            kube_core::discovery::Scope::Cluster => Scope::Cluster,
        }
    }
}

macro_rules! object_key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name {
            namespace: Option<Arc<str>>,
            name: Arc<str>,
        }

        impl $name {
            /// A key from an optional namespace (`None` or `""` means
            /// cluster-scoped) and a name.
            pub fn new(namespace: Option<&str>, name: &str) -> Self {
                $name {
                    namespace: namespace.filter(|ns| !ns.is_empty()).map(Arc::from),
                    name: Arc::from(name),
                }
            }

            /// A key of a namespaced object.
            pub fn namespaced(namespace: impl Into<Arc<str>>, name: impl Into<Arc<str>>) -> Self {
                $name {
                    namespace: Some(namespace.into()),
                    name: name.into(),
                }
            }

            /// A key of a cluster-scoped object.
            pub fn cluster(name: impl Into<Arc<str>>) -> Self {
                $name {
                    namespace: None,
                    name: name.into(),
                }
            }

            /// The key of an object with this metadata; `None` if it has no name.
            pub fn from_meta(meta: &ObjectMeta) -> Option<Self> {
                let name = meta.name.as_deref().filter(|n| !n.is_empty())?;
                Some($name::new(meta.namespace.as_deref(), name))
            }

            /// The key of `object`; `None` if it has no name.
            pub fn of<K: Resource>(object: &K) -> Option<Self> {
                $name::from_meta(object.meta())
            }

            /// The object's name.
            pub fn name(&self) -> &str {
                &self.name
            }

            /// The object's namespace; `None` for cluster-scoped objects.
            pub fn namespace(&self) -> Option<&str> {
                self.namespace.as_deref()
            }

            /// Whether the key is namespaced or cluster-scoped.
            pub fn scope(&self) -> Scope {
                if self.namespace.is_some() {
                    Scope::Namespaced
                } else {
                    Scope::Cluster
                }
            }
        }

        impl fmt::Display for $name {
            /// `namespace/name`, or `name` for cluster-scoped objects.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match &self.namespace {
                    Some(ns) => write!(f, "{}/{}", ns, self.name),
                    None => f.write_str(&self.name),
                }
            }
        }
    };
}

object_key! {
    /// Where an object lives in the virtual cluster: the key the syncer
    /// queues, locks and reconciles by.
    VirtualKey
}

object_key! {
    /// Where a virtual object's copy lives on the host cluster.
    HostKey
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Pod;
    use std::collections::BTreeSet;

    #[test]
    fn gvk_display_matches_go() {
        assert_eq!(
            GroupVersionKind::of::<Pod>(&()).to_string(),
            "/v1, Kind=Pod"
        );
        assert_eq!(
            GroupVersionKind::of::<Deployment>(&()).to_string(),
            "apps/v1, Kind=Deployment"
        );
        let gvk = GroupVersionKind::from_api_version("apps/v1", "Deployment");
        assert_eq!(gvk, GroupVersionKind::of::<Deployment>(&()));
        assert_eq!(gvk.api_version(), "apps/v1");
        assert_eq!(
            GroupVersionKind::from_api_version("v1", "Pod").api_version(),
            "v1"
        );
        let kube_gvk: kube_core::GroupVersionKind = gvk.clone().into();
        assert_eq!(GroupVersionKind::from(kube_gvk), gvk);
    }

    #[test]
    fn keys_display_order_and_scope() {
        let a = VirtualKey::namespaced("default", "web");
        let b = VirtualKey::new(Some("default"), "web");
        let c = VirtualKey::cluster("node-1");
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "default/web");
        assert_eq!(c.to_string(), "node-1");
        assert_eq!(a.scope(), Scope::Namespaced);
        assert_eq!(c.scope(), Scope::Cluster);
        assert_eq!(VirtualKey::new(Some(""), "x"), VirtualKey::cluster("x"));
        let set: BTreeSet<_> = [a.clone(), c.clone(), b].into_iter().collect();
        assert_eq!(set.into_iter().collect::<Vec<_>>(), vec![c, a]);
        let h = HostKey::namespaced("host", "web-x-default-x-vc");
        assert_eq!(h.namespace(), Some("host"));
        assert_eq!(h.name(), "web-x-default-x-vc");
    }

    #[test]
    fn keys_from_metadata() {
        let meta = ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            ..Default::default()
        };
        assert_eq!(
            VirtualKey::from_meta(&meta),
            Some(VirtualKey::namespaced("default", "web"))
        );
        assert_eq!(VirtualKey::from_meta(&ObjectMeta::default()), None);
        let pod = Pod {
            metadata: meta,
            ..Default::default()
        };
        assert_eq!(
            HostKey::of(&pod).map(|k| k.to_string()),
            Some("default/web".into())
        );
    }
}
