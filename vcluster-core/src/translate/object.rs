//! Whole-object helpers, generic over `kube::Resource`.
//!
//! They work for typed k8s-openapi objects (`DynamicType = ()`) and for
//! `DynamicObject` (pass its `ApiResource`), so custom resources sync the
//! same way as built-in kinds.

use std::collections::BTreeMap;

use kube_core::Resource;

use super::Translator;
use crate::error::Result;
use crate::identity::{GroupVersionKind, VirtualKey};

/// Generic object translation on top of any [`Translator`], including
/// `dyn Translator`.
pub trait TranslatorExt: Translator {
    /// The host copy of a typed object: same body, host metadata
    /// (see [`super::MetadataTranslator::host_metadata`]). The caller adapts
    /// the body (e.g. a pod's volume references) afterwards.
    fn host_object<K>(&self, virtual_object: &K) -> Result<K>
    where
        K: Resource + Clone,
        K::DynamicType: Default,
    {
        self.host_object_with(virtual_object, &K::DynamicType::default(), None)
    }

    /// The host copy of an object whose kind is given by `dt` (the
    /// `ApiResource` of a `DynamicObject`, `&()` for typed objects), with the
    /// virtual namespace's labels copied on when given (pods).
    fn host_object_with<K>(
        &self,
        virtual_object: &K,
        dt: &K::DynamicType,
        namespace_labels: Option<&BTreeMap<String, String>>,
    ) -> Result<K>
    where
        K: Resource + Clone,
    {
        let kind = GroupVersionKind::of::<K>(dt);
        let meta = self.host_metadata(virtual_object.meta(), &kind, namespace_labels)?;
        let mut host = virtual_object.clone();
        *host.meta_mut() = meta;
        Ok(host)
    }

    /// The virtual key of the object `host_object` is a copy of, if this
    /// translator manages it (see [`super::OwnershipTranslator::owner_of`]).
    fn virtual_key_of<K: Resource>(&self, host_object: &K) -> Option<VirtualKey> {
        self.owner_of(host_object.meta())
    }
}

impl<T: Translator + ?Sized> TranslatorExt for T {}
