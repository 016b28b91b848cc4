//! How a virtual object looks on the host, and how a host object maps back.
//!
//! The rules are split into small object-safe traits, one per concern, so a
//! syncer can hold an `Arc<dyn Translator>` and a different host layout can
//! replace one concern without re-implementing the others:
//!
//! | trait | concern | required methods |
//! | --- | --- | --- |
//! | [`NameTranslator`] | host name and namespace | `host_key`, `host_namespace` |
//! | [`LabelTranslator`] | label keys, marker labels | `host_label_key`, `virtual_label_key`, `namespace_label_key`, `marker_labels` |
//! | [`MetadataTranslator`] | whole metadata, annotations, bookkeeping | none |
//! | [`SelectorTranslator`] | label selectors | none |
//! | [`OwnershipTranslator`] | which virtual object a host object belongs to | `owner_of` |
//!
//! [`Translator`] is all of them together, and [`TranslatorExt`] adds the
//! generic helpers that work on whole `kube::Resource` objects (typed
//! k8s-openapi objects and `DynamicObject`). The built-in layout is
//! [`SingleNamespaceTranslator`].

mod metadata;
mod object;
mod selectors;
mod single_namespace;

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use crate::error::Result;
use crate::identity::{GroupVersionKind, HostKey, VirtualKey};
use crate::selector::Selector;
use crate::validation::validate_label_value;

pub use metadata::merge_host_metadata;
pub use object::TranslatorExt;
pub use single_namespace::SingleNamespaceTranslator;

/// Which host objects a set of marker labels (or a selector) is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MarkerScope<'a> {
    /// Namespaced objects of one virtual namespace.
    Namespace(&'a str),
    /// Namespaced objects of any virtual namespace of this virtual cluster.
    AllNamespaces,
    /// Cluster-scoped objects of this virtual cluster.
    Cluster,
}

impl<'a> MarkerScope<'a> {
    /// The scope of an object in `namespace` (`None`: cluster-scoped).
    pub fn of_namespace(namespace: Option<&'a str>) -> Self {
        namespace.map_or(MarkerScope::Cluster, MarkerScope::Namespace)
    }
}

/// Maps virtual names to host names.
pub trait NameTranslator: Send + Sync {
    /// The host key of the virtual object `key`. A key without namespace is
    /// a cluster-scoped object. Invalid names are an error.
    fn host_key(&self, key: &VirtualKey) -> Result<HostKey>;

    /// The host namespace that objects of `virtual_namespace` are synced into.
    fn host_namespace(&self, virtual_namespace: &str) -> Result<String>;
}

/// Maps label keys between the virtual cluster and the host.
pub trait LabelTranslator: Send + Sync {
    /// The host key of the virtual label `key`; an error if `key` is not a
    /// label key or would forge one of the translator's own keys.
    fn host_label_key<'k>(&self, key: &'k str) -> Result<Cow<'k, str>>;

    /// The virtual key of the host label `host_key`, or `None` if the label
    /// is bookkeeping that never reaches the virtual object.
    fn virtual_label_key<'k>(&self, host_key: &'k str) -> Option<Cow<'k, str>>;

    /// The host pod label key that carries the virtual namespace label `key`.
    fn namespace_label_key(&self, key: &str) -> Result<String>;

    /// The labels that every host object in `scope` carries and nobody else's
    /// does: what ownership checks and translated selectors rely on.
    fn marker_labels(&self, scope: MarkerScope<'_>) -> Result<BTreeMap<String, String>>;

    /// The host labels of a virtual object in `virtual_namespace` (`None`:
    /// cluster-scoped): its labels under their host keys, plus the markers.
    fn host_labels(
        &self,
        labels: &BTreeMap<String, String>,
        virtual_namespace: Option<&str>,
    ) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for (key, value) in labels {
            validate_label_value(key, value)?;
            out.insert(self.host_label_key(key)?.into_owned(), value.clone());
        }
        out.extend(self.marker_labels(MarkerScope::of_namespace(virtual_namespace))?);
        Ok(out)
    }

    /// The host pod labels that carry a virtual namespace's labels.
    fn namespace_labels(
        &self,
        namespace_labels: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for (key, value) in namespace_labels {
            validate_label_value(key, value)?;
            out.insert(self.namespace_label_key(key)?, value.clone());
        }
        Ok(out)
    }

    /// The virtual labels of a host object: bookkeeping removed, original
    /// keys restored. `virtual_labels(host_labels(l, ns)) == l`.
    fn virtual_labels(&self, host_labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        host_labels
            .iter()
            .filter_map(|(key, value)| {
                let key = self.virtual_label_key(key)?;
                Some((key.into_owned(), value.clone()))
            })
            .collect()
    }
}

/// Builds host metadata: name, namespace, labels, annotations and the
/// ownership and bookkeeping markers. Everything is provided from the name
/// and label rules; override to change the annotation rules.
pub trait MetadataTranslator: NameTranslator + LabelTranslator {
    /// The metadata of the host copy of an object of kind `kind` with
    /// metadata `virtual_meta`. Only name, namespace, labels and annotations
    /// are set: uid, resourceVersion, ownerReferences, managedFields,
    /// finalizers, timestamps and generation belong to the virtual object.
    /// `namespace_labels` (for pods) are the labels of the virtual namespace.
    fn host_metadata(
        &self,
        virtual_meta: &ObjectMeta,
        kind: &GroupVersionKind,
        namespace_labels: Option<&BTreeMap<String, String>>,
    ) -> Result<ObjectMeta> {
        metadata::host_metadata(self, virtual_meta, kind, namespace_labels)
    }

    /// The virtual annotations of a host object: every annotation except the
    /// translator's markers.
    fn virtual_annotations(
        &self,
        host_annotations: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        metadata::virtual_annotations(host_annotations)
    }
}

/// Rewrites label selectors so that on the host they select exactly the
/// copies of the virtual objects they selected, and nothing else.
pub trait SelectorTranslator: LabelTranslator {
    /// A [`Selector`] for host objects in `scope`.
    fn host_selector(&self, selector: &Selector, scope: MarkerScope<'_>) -> Result<Selector> {
        selectors::host_selector(self, selector, scope)
    }

    /// A `metav1.LabelSelector` (`matchLabels` and `matchExpressions`) for
    /// host objects in `scope`, e.g. a NetworkPolicy `podSelector`.
    fn host_label_selector(
        &self,
        selector: &LabelSelector,
        scope: MarkerScope<'_>,
    ) -> Result<LabelSelector> {
        selectors::host_label_selector(self, selector, scope)
    }

    /// A plain map selector (Service `spec.selector`) for host objects in
    /// `scope`. An empty map stays empty: a Service without selector selects
    /// nothing and must not start selecting every tenant pod.
    fn host_map_selector(
        &self,
        selector: &BTreeMap<String, String>,
        scope: MarkerScope<'_>,
    ) -> Result<BTreeMap<String, String>> {
        selectors::host_map_selector(self, selector, scope)
    }

    /// A selector of virtual *namespace* labels (NetworkPolicy
    /// `namespaceSelector`) as a selector of host pods, which carry their
    /// namespace's labels under [`LabelTranslator::namespace_label_key`].
    fn host_namespace_selector(&self, selector: &LabelSelector) -> Result<LabelSelector> {
        selectors::host_namespace_selector(self, selector)
    }
}

/// Decides which virtual object, if any, a host object belongs to.
pub trait OwnershipTranslator: Send + Sync {
    /// The virtual key of the object `host` is the copy of, read from its
    /// ownership markers (never parsed out of its name); `None` if the host
    /// object is not managed by this translator.
    fn owner_of(&self, host: &ObjectMeta) -> Option<VirtualKey>;

    /// Whether this translator manages `host` at all.
    fn is_managed(&self, host: &ObjectMeta) -> bool {
        self.owner_of(host).is_some()
    }

    /// Whether `host` is the copy of exactly `key`. The syncer checks this
    /// before overwriting or deleting a host object, so a name collision can
    /// never make it touch another virtual object's copy.
    fn is_owned_by(&self, host: &ObjectMeta, key: &VirtualKey) -> bool {
        self.owner_of(host).as_ref() == Some(key)
    }
}

/// Every translation concern together; what a syncer holds as
/// `Arc<dyn Translator>`. Implemented for every type that implements the
/// parts.
pub trait Translator:
    NameTranslator + LabelTranslator + MetadataTranslator + SelectorTranslator + OwnershipTranslator
{
}

impl<T> Translator for T where
    T: NameTranslator
        + LabelTranslator
        + MetadataTranslator
        + SelectorTranslator
        + OwnershipTranslator
        + ?Sized
{
}
