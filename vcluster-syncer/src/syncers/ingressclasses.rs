//! IngressClasses (optional, from the host): tenants see the ingress
//! controllers the host runs, so an Ingress's `ingressClassName` (synced
//! to the host unchanged, see [`super::ingresses`]) names a real one.
//! Copied as [`super::classes`] describes; any change re-creates the copy
//! (the controller may not change; the parameters rarely do).

use k8s_openapi::api::networking::v1::IngressClass;

use super::classes::{ClassSyncer, HostClass};

impl HostClass for IngressClass {
    const KIND: &'static str = "ingressclasses";
    const MUTABLE: &'static [&'static str] = &[];
}

/// The ingress class syncer.
pub type IngressClassSyncer = ClassSyncer<IngressClass>;
