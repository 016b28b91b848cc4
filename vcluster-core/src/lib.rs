//! Translation primitives of vcluster-rs: how a virtual cluster's objects
//! look on the host cluster, and how host objects map back.
//!
//! The naming is byte-compatible with vCluster, so a host cluster that ran
//! vCluster sees the same layout. The crate knows nothing about HTTP,
//! storage or clients: it is pure, cheap functions over Kubernetes metadata.
//!
//! - [`identity`]: [`GroupVersionKind`], [`Scope`], [`VirtualKey`], [`HostKey`].
//! - [`naming`]: vCluster's safe name concatenation and hashed label keys.
//! - [`markers`]: the label and annotation keys that mark host objects as ours.
//! - [`selector`]: Kubernetes label selectors (parse, match, convert).
//! - [`validation`]: Kubernetes name and label rules.
//! - [`translate`]: the [`Translator`] traits and [`SingleNamespaceTranslator`];
//!   [`prelude`] imports all the traits at once.
//!
//! # Example
//!
//! Translate a Pod `default/web` of virtual cluster `my-vc`, which syncs into
//! host namespace `vcluster-my-vc`, and map the host copy back:
//!
//! ```
//! use k8s_openapi::api::core::v1::Pod;
//! use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
//! use vcluster_core::markers;
//! use vcluster_core::{SingleNamespaceTranslator, TranslatorExt, VirtualKey};
//!
//! let translator = SingleNamespaceTranslator::new("my-vc", "vcluster-my-vc")?;
//!
//! let pod = Pod {
//!     metadata: ObjectMeta {
//!         name: Some("web".into()),
//!         namespace: Some("default".into()),
//!         uid: Some("1b4e28ba-2fa1-11d2-883f-0016d3cca427".into()),
//!         labels: Some([("app".to_string(), "web".to_string())].into()),
//!         ..Default::default()
//!     },
//!     ..Default::default()
//! };
//!
//! let host = translator.host_object(&pod)?;
//! assert_eq!(host.metadata.name.as_deref(), Some("web-x-default-x-my-vc"));
//! assert_eq!(host.metadata.namespace.as_deref(), Some("vcluster-my-vc"));
//! assert_eq!(host.metadata.uid, None); // server-set fields are not copied
//!
//! let labels = host.metadata.labels.clone().unwrap_or_default();
//! assert_eq!(labels["app"], "web");
//! assert_eq!(labels[markers::MANAGED_BY_LABEL], "my-vc");
//! assert_eq!(labels[markers::NAMESPACE_LABEL], "default");
//!
//! let annotations = host.metadata.annotations.clone().unwrap_or_default();
//! assert_eq!(annotations[markers::OBJECT_NAME_ANNOTATION], "web");
//! assert_eq!(annotations[markers::OBJECT_NAMESPACE_ANNOTATION], "default");
//! assert_eq!(annotations[markers::OBJECT_KIND_ANNOTATION], "/v1, Kind=Pod");
//! assert_eq!(annotations[markers::OBJECT_HOST_NAME_ANNOTATION], "web-x-default-x-my-vc");
//!
//! // Back to the virtual object, through the annotations (never the name).
//! assert_eq!(
//!     translator.virtual_key_of(&host),
//!     Some(VirtualKey::namespaced("default", "web"))
//! );
//! # Ok::<(), vcluster_core::Error>(())
//! ```
//!
//! A syncer typically holds the translator as `Arc<dyn Translator>`; every
//! method above is available through it. The rules, with worked examples,
//! are in `docs/translation.md`.

#![deny(missing_docs)]

pub mod error;
pub mod identity;
pub mod markers;
pub mod naming;
pub mod selector;
pub mod service_addresses;
pub mod translate;
pub mod validation;
pub mod writes;

/// The translation traits, for `use vcluster_core::prelude::*;` so their
/// methods are callable on any translator.
pub mod prelude {
    pub use crate::translate::{
        LabelTranslator, MetadataTranslator, NameTranslator, OwnershipTranslator,
        SelectorTranslator, Translator, TranslatorExt,
    };
}

pub use error::{Error, Result};
pub use identity::{GroupVersionKind, HostKey, Scope, VirtualKey};
pub use naming::safe_concat_name;
pub use selector::{Operator, Requirement, Selector};
pub use translate::{
    merge_host_metadata, LabelTranslator, MarkerScope, MetadataTranslator, NameTranslator,
    OwnershipTranslator, SelectorTranslator, SingleNamespaceTranslator, Translator, TranslatorExt,
};
pub use writes::FieldManager;
