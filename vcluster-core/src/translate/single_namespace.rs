//! vCluster's default layout: every virtual namespace syncs into one host
//! namespace.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{
    LabelTranslator, MarkerScope, MetadataTranslator, NameTranslator, OwnershipTranslator,
    SelectorTranslator,
};
use crate::error::{Error, Result};
use crate::identity::{HostKey, VirtualKey};
use crate::markers::{
    is_reserved_label_key, LABEL_PREFIX, MANAGED_BY_LABEL, NAMESPACE_LABEL, NAMESPACE_LABEL_PREFIX,
    OBJECT_NAMESPACE_ANNOTATION, OBJECT_NAME_ANNOTATION, RESERVED_LABEL_KEYS,
};
use crate::naming::{safe_concat_name, safe_concat_name_eq, HashedKeySpace};
use crate::validation::{validate_dns1123_label, validate_dns1123_subdomain, validate_label_key};

/// Translator for vCluster's default layout: all virtual namespaces of
/// virtual cluster `vcluster_name` share one host namespace.
///
/// - namespaced `ns/name` → `host_namespace/<safe_concat_name([name, "x", ns, "x", vc])>`
/// - cluster-scoped `name` → `<safe_concat_name(["vcluster", name, "x", host_namespace, "x", vc])>`
/// - reserved label keys are stored under `vcluster.loft.sh/label-<vc>-x-<hash10>`
/// - virtual namespace labels go onto pods as `vcluster.loft.sh/ns-label-<vc>-x-<hash10>`
///
/// Everything derived from the two names is computed once here, so the
/// per-object work is lookups and one concatenation.
#[derive(Debug, Clone)]
pub struct SingleNamespaceTranslator {
    vcluster_name: Arc<str>,
    host_namespace: Arc<str>,
    /// `managed-by` value of cluster-scoped host objects.
    cluster_marker: String,
    /// Each reserved virtual key with its hashed host key.
    reserved: [(&'static str, String); 4],
    label_keys: HashedKeySpace,
    namespace_label_keys: HashedKeySpace,
}

impl SingleNamespaceTranslator {
    /// A translator for virtual cluster `vcluster_name` syncing into host
    /// namespace `host_namespace`; both must be DNS-1123 labels (the name
    /// is also a label value on every host object).
    pub fn new(vcluster_name: &str, host_namespace: &str) -> Result<Self> {
        validate_dns1123_label("virtual cluster name", vcluster_name)?;
        validate_dns1123_label("host namespace", host_namespace)?;
        let label_keys = HashedKeySpace::new(LABEL_PREFIX, vcluster_name);
        Ok(SingleNamespaceTranslator {
            vcluster_name: Arc::from(vcluster_name),
            host_namespace: Arc::from(host_namespace),
            cluster_marker: safe_concat_name(&[host_namespace, "x", vcluster_name]),
            reserved: RESERVED_LABEL_KEYS.map(|key| (key, label_keys.key_for(key))),
            namespace_label_keys: HashedKeySpace::new(NAMESPACE_LABEL_PREFIX, vcluster_name),
            label_keys,
        })
    }

    /// The virtual cluster's name (the `managed-by` value of namespaced
    /// host objects).
    pub fn vcluster_name(&self) -> &str {
        &self.vcluster_name
    }

    /// The host namespace every namespaced object is synced into.
    pub fn target_namespace(&self) -> &str {
        &self.host_namespace
    }

    /// The `managed-by` value of cluster-scoped host objects,
    /// `safe_concat_name([host_namespace, "x", vcluster_name])` as in vCluster
    /// (so two virtual clusters with the same name in different host
    /// namespaces do not claim each other's cluster-scoped objects).
    pub fn cluster_marker(&self) -> &str {
        &self.cluster_marker
    }

    fn namespaced_host_name_parts<'a>(&'a self, name: &'a str, namespace: &'a str) -> [&'a str; 5] {
        [name, "x", namespace, "x", &self.vcluster_name]
    }

    fn cluster_host_name_parts<'a>(&'a self, name: &'a str) -> [&'a str; 6] {
        [
            "vcluster",
            name,
            "x",
            &self.host_namespace,
            "x",
            &self.vcluster_name,
        ]
    }
}

impl NameTranslator for SingleNamespaceTranslator {
    fn host_key(&self, key: &VirtualKey) -> Result<HostKey> {
        validate_dns1123_subdomain("virtual object name", key.name())?;
        match key.namespace() {
            Some(namespace) => {
                validate_dns1123_label("virtual namespace", namespace)?;
                let name =
                    safe_concat_name(&self.namespaced_host_name_parts(key.name(), namespace));
                Ok(HostKey::namespaced(self.host_namespace.clone(), name))
            }
            None => Ok(HostKey::cluster(safe_concat_name(
                &self.cluster_host_name_parts(key.name()),
            ))),
        }
    }

    fn host_namespace(&self, virtual_namespace: &str) -> Result<String> {
        validate_dns1123_label("virtual namespace", virtual_namespace)?;
        Ok(self.host_namespace.to_string())
    }
}

impl LabelTranslator for SingleNamespaceTranslator {
    fn host_label_key<'k>(&self, key: &'k str) -> Result<Cow<'k, str>> {
        validate_label_key(key)?;
        if let Some((_, hashed)) = self.reserved.iter().find(|(k, _)| *k == key) {
            return Ok(Cow::Owned(hashed.clone()));
        }
        if self.label_keys.contains(key) || self.namespace_label_keys.contains(key) {
            return Err(Error::ReservedLabelKey {
                key: key.to_owned(),
                vcluster: self.vcluster_name.to_string(),
            });
        }
        Ok(Cow::Borrowed(key))
    }

    fn virtual_label_key<'k>(&self, host_key: &'k str) -> Option<Cow<'k, str>> {
        // Raw reserved keys on the host are vCluster's own (markers, Helm's
        // release, controlled-by); virtual ones are always hashed.
        if is_reserved_label_key(host_key) || self.namespace_label_keys.contains(host_key) {
            return None;
        }
        if self.label_keys.contains(host_key) {
            return self
                .reserved
                .iter()
                .find(|(_, hashed)| hashed == host_key)
                .map(|(key, _)| Cow::Borrowed(*key));
        }
        Some(Cow::Borrowed(host_key))
    }

    fn namespace_label_key(&self, key: &str) -> Result<String> {
        validate_label_key(key)?;
        Ok(self.namespace_label_keys.key_for(key))
    }

    fn marker_labels(&self, scope: MarkerScope<'_>) -> Result<BTreeMap<String, String>> {
        let mut markers = BTreeMap::new();
        let managed_by = match scope {
            MarkerScope::Namespace(namespace) => {
                validate_dns1123_label("virtual namespace", namespace)?;
                markers.insert(NAMESPACE_LABEL.to_owned(), namespace.to_owned());
                self.vcluster_name.to_string()
            }
            MarkerScope::AllNamespaces => self.vcluster_name.to_string(),
            MarkerScope::Cluster => self.cluster_marker.clone(),
        };
        markers.insert(MANAGED_BY_LABEL.to_owned(), managed_by);
        Ok(markers)
    }
}

impl MetadataTranslator for SingleNamespaceTranslator {}

impl SelectorTranslator for SingleNamespaceTranslator {}

impl OwnershipTranslator for SingleNamespaceTranslator {
    /// Managed means all of: the `managed-by` label of this virtual cluster
    /// (namespaced) or of this host namespace and virtual cluster
    /// (cluster-scoped); for namespaced objects, living in the target
    /// namespace; an `object-name` annotation (and `object-namespace` for
    /// namespaced objects); and a host name equal to the translation of
    /// those annotations, so copied or hand-edited markers do not count.
    fn owner_of(&self, host: &ObjectMeta) -> Option<VirtualKey> {
        let labels = host.labels.as_ref()?;
        let annotations = host.annotations.as_ref()?;
        let host_name = host.name.as_deref()?;
        let name = annotations
            .get(OBJECT_NAME_ANNOTATION)
            .map(String::as_str)
            .filter(|n| !n.is_empty())?;
        let managed_by = labels.get(MANAGED_BY_LABEL).map(String::as_str);

        match host.namespace.as_deref().filter(|ns| !ns.is_empty()) {
            Some(host_namespace) => {
                if host_namespace != &*self.host_namespace
                    || managed_by != Some(&*self.vcluster_name)
                {
                    return None;
                }
                let namespace = annotations
                    .get(OBJECT_NAMESPACE_ANNOTATION)
                    .map(String::as_str)
                    .filter(|ns| !ns.is_empty())?;
                safe_concat_name_eq(&self.namespaced_host_name_parts(name, namespace), host_name)
                    .then(|| VirtualKey::namespaced(namespace, name))
            }
            None => {
                if managed_by != Some(self.cluster_marker.as_str()) {
                    return None;
                }
                safe_concat_name_eq(&self.cluster_host_name_parts(name), host_name)
                    .then(|| VirtualKey::cluster(name))
            }
        }
    }
}
