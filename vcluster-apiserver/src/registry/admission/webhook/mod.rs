//! MutatingAdmissionWebhook and ValidatingAdmissionWebhook: the webhooks
//! of the stored Mutating/ValidatingWebhookConfigurations, called on
//! creates, updates and deletes as kube-apiserver calls them.
//!
//! - [`config`]: the stored configurations, parsed once per change.
//! - [`matching`]: rules, namespace and object selectors.
//! - [`equivalent`]: `matchPolicy: Equivalent` across served versions.
//! - [`review`]: the `AdmissionReview` sent and the answer read.
//! - [`client`]: reaching the webhook (URL or service) over verified TLS.
//! - [`patch`]: a mutating webhook's JSON patch applied.
//! - [`dispatch`]: the calls in order, with failure policies.
//!
//! The configurations are read from storage only after one of them was
//! written through this registry ([`Registry::admission_generation`]); a
//! request otherwise costs no storage read.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;

use super::{AdmissionPlugin, Attributes, Operation};
use crate::error::ApiError;
use crate::registry::Registry;

pub mod client;
pub mod config;
pub mod dispatch;
pub mod equivalent;
pub mod matching;
pub mod patch;
pub mod review;

pub use client::{EndpointsResolver, ServiceRef, ServiceResolver};

const GROUP: &str = "admissionregistration.k8s.io";

/// The admission webhooks, as one plugin: mutating webhooks are its
/// mutating step, validating webhooks its validating step.
#[derive(Debug)]
pub struct Webhooks {
    services: Arc<dyn ServiceResolver>,
    cache: Mutex<Option<Loaded>>,
}

/// The webhooks as of one admission generation.
#[derive(Clone, Debug)]
struct Loaded {
    generation: u64,
    mutating: Arc<[Arc<config::Hook>]>,
    validating: Arc<[Arc<config::Hook>]>,
}

impl Webhooks {
    /// The plugin, resolving webhooks' services with `services`.
    pub fn new(services: Arc<dyn ServiceResolver>) -> Self {
        Self {
            services,
            cache: Mutex::new(None),
        }
    }

    /// The webhooks now: the cached ones unless a configuration changed.
    async fn loaded(&self, registry: &Registry) -> Result<Loaded, ApiError> {
        let generation = registry.admission_generation();
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(loaded) = cache.as_ref().filter(|l| l.generation == generation) {
                return Ok(loaded.clone());
            }
        }
        let mutating = registry
            .list_in(GROUP, "mutatingwebhookconfigurations", None)
            .await?;
        let validating = registry
            .list_in(GROUP, "validatingwebhookconfigurations", None)
            .await?;
        let loaded = Loaded {
            generation,
            mutating: config::hooks(mutating, true).into(),
            validating: config::hooks(validating, false).into(),
        };
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Some(loaded.clone());
        Ok(loaded)
    }
}

/// Upstream never sends the admission configuration kinds themselves to
/// webhooks, so a broken webhook cannot lock its own fix out.
pub(crate) fn exempt(attributes: &Attributes<'_>) -> bool {
    attributes.resource.group == GROUP
        && matches!(
            attributes.resource.plural.as_str(),
            "mutatingwebhookconfigurations"
                | "validatingwebhookconfigurations"
                | "validatingadmissionpolicies"
                | "validatingadmissionpolicybindings"
                | "mutatingadmissionpolicies"
                | "mutatingadmissionpolicybindings"
        )
}

#[async_trait]
impl AdmissionPlugin for Webhooks {
    fn name(&self) -> &'static str {
        "AdmissionWebhook"
    }

    fn handles(&self, _operation: Operation) -> bool {
        true
    }

    async fn admit(
        &self,
        registry: &Registry,
        attributes: &Attributes<'_>,
        object: &mut Value,
    ) -> Result<(), ApiError> {
        if exempt(attributes) {
            return Ok(());
        }
        let loaded = self.loaded(registry).await?;
        if loaded.mutating.is_empty() {
            return Ok(());
        }
        let dispatch = dispatch::Dispatch {
            registry,
            services: self.services.as_ref(),
            attributes,
        };
        dispatch.mutate(&loaded.mutating, object).await
    }

    async fn validate(
        &self,
        registry: &Registry,
        attributes: &Attributes<'_>,
        object: &Value,
    ) -> Result<(), ApiError> {
        if exempt(attributes) {
            return Ok(());
        }
        let loaded = self.loaded(registry).await?;
        if loaded.validating.is_empty() {
            return Ok(());
        }
        let dispatch = dispatch::Dispatch {
            registry,
            services: self.services.as_ref(),
            attributes,
        };
        dispatch.validate(&loaded.validating, object).await
    }
}
