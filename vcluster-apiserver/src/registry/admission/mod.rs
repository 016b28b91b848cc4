//! Admission: what a write passes through besides the kind's own rules.
//!
//! Two parts. The per-request [`Admission`] check the HTTP layer sets from
//! the request's authorization (RBAC escalation prevention), carried in
//! [`WriteOptions`]. And the server's [`AdmissionPlugin`]s, upstream's
//! admission chain: plugins that read other objects through the
//! [`Registry`] and change (mutating) or refuse (validating) a create or
//! update. The registry runs every plugin's mutating step after the body's
//! defaults and before validation, and every validating step after
//! validation, right before the object is stored, as kube-apiserver does.
//!
//! One file per plugin: [`limit_ranger`] (LimitRanger), [`service_account`]
//! (ServiceAccount), [`priority`] (Priority), [`policy`]
//! (ValidatingAdmissionPolicy), [`webhook`] (MutatingAdmissionWebhook and
//! ValidatingAdmissionWebhook) and [`resource_quota`] (ResourceQuota), in
//! upstream's order: the webhooks are the last mutating step, and policies
//! then webhooks the last validating ones before the quota is charged.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use super::{FieldManager, Registry};
use crate::error::ApiError;
use crate::object;
use crate::resources::ResourceInfo;

pub mod limit_ranger;
pub mod policy;
pub mod priority;
pub mod quantity;
pub mod quota_usage;
pub mod resource_quota;
pub mod service_account;
pub mod webhook;

/// Options shared by writes.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: validate and answer as if written, store nothing.
    pub dry_run: bool,
    /// Who writes: recorded in `metadata.managedFields` (none: entries are
    /// only carried over).
    pub field_manager: Option<FieldManager>,
    /// A last check of the object about to be stored (after patches,
    /// defaults and validation), such as RBAC escalation prevention.
    pub admission: Option<Admission>,
    /// Who asks and where admission's warnings go.
    pub context: RequestContext,
}

/// What admission needs of the request besides the object: the requester
/// (sent to webhooks as `userInfo`) and a sink for the warnings webhooks
/// answer with, which the HTTP layer returns as `Warning` headers.
#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    /// The authenticated requester; `None` for the server's own writes.
    pub user: Option<crate::auth::UserInfo>,
    /// Warnings gathered while the request is admitted.
    pub warnings: Warnings,
}

/// Warnings gathered during one request, shared between the registry
/// (which adds them) and the HTTP layer (which answers with them).
#[derive(Clone, Debug, Default)]
pub struct Warnings(Arc<std::sync::Mutex<Vec<String>>>);

impl Warnings {
    /// Adds a warning (an empty one is dropped, as upstream drops it).
    pub fn add(&self, warning: impl Into<String>) {
        let warning = warning.into();
        if warning.is_empty() {
            return;
        }
        let mut list = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if !list.contains(&warning) {
            list.push(warning);
        }
    }

    /// The warnings gathered so far, leaving none behind.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The signature of an [`Admission`] check: the resource, the object about
/// to be stored and, for updates, the stored one.
pub type AdmissionCheck =
    dyn Fn(&ResourceInfo, &Value, Option<&Value>) -> Result<(), ApiError> + Send + Sync;

/// A check a write's final object must pass before it is stored (create,
/// update, and the patches and applies built on them); an error refuses
/// the write. Set by the HTTP layer from the request's authorization.
#[derive(Clone)]
pub struct Admission(Arc<AdmissionCheck>);

impl Admission {
    /// Wraps a check.
    pub fn new(
        check: impl Fn(&ResourceInfo, &Value, Option<&Value>) -> Result<(), ApiError>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        Self(Arc::new(check))
    }

    /// Runs the check.
    pub fn check(
        &self,
        resource: &ResourceInfo,
        object: &Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        (self.0)(resource, object, old)
    }
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Admission(..)")
    }
}

impl WriteOptions {
    pub(super) fn admit(
        &self,
        resource: &ResourceInfo,
        object: &Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        match &self.admission {
            Some(admission) => admission.check(resource, object, old),
            None => Ok(()),
        }
    }
}

/// Options of the server's own writes (a quota's usage, the system
/// priority classes): recorded in `managedFields` as upstream records
/// them, under `kube-apiserver`.
pub fn server_write() -> WriteOptions {
    WriteOptions {
        field_manager: Some(FieldManager {
            name: "kube-apiserver".into(),
            subresource: None,
        }),
        ..WriteOptions::default()
    }
}

/// What a write does, as admission sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// A new object.
    Create,
    /// A change of a stored object (PUT, patch, apply, status).
    Update,
    /// The removal of a stored object (the object is `null`, the stored
    /// one is `old`).
    Delete,
}

impl Operation {
    /// Upstream's name of the operation (`CREATE`), as webhooks see it.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
        }
    }
}

/// The facts of one write an [`AdmissionPlugin`] decides on (upstream's
/// `admission.Attributes`); the object itself is passed beside them.
#[derive(Clone, Copy, Debug)]
pub struct Attributes<'a> {
    /// The resource written.
    pub resource: &'a Arc<ResourceInfo>,
    /// The namespace, for namespaced resources.
    pub namespace: Option<&'a str>,
    /// `Some("status")` for a status update; `None` for the main resource.
    pub subresource: Option<&'a str>,
    /// Create or update.
    pub operation: Operation,
    /// `dryRun=All`: a plugin must not change anything stored.
    pub dry_run: bool,
    /// The stored object, for updates and deletes.
    pub old: Option<&'a Value>,
    /// The requester and the warnings sink.
    pub context: &'a RequestContext,
}

impl Attributes<'_> {
    /// Whether the write is of `group`/`plural`'s main resource.
    pub fn is(&self, group: &str, plural: &str) -> bool {
        self.resource.group == group && self.resource.plural == plural && self.subresource.is_none()
    }

    /// Upstream's `admission.NewForbidden`: `403 <resource> "<name>" is
    /// forbidden: <why>`, naming the object in the details.
    pub fn forbidden(&self, object: &Value, why: impl std::fmt::Display) -> ApiError {
        let resource = self.resource.qualified_name();
        let name = object::name(object);
        let message = if name.is_empty() {
            format!("{resource} is forbidden: {why}")
        } else {
            format!("{resource} {name:?} is forbidden: {why}")
        };
        ApiError::forbidden(message).with_target(&self.resource.group, &self.resource.plural, name)
    }
}

/// One admission plugin of the server's chain. Both steps default to
/// admitting, so a plugin implements only what it does.
#[async_trait]
pub trait AdmissionPlugin: Send + Sync + std::fmt::Debug {
    /// The plugin's upstream name (`LimitRanger`), for logs.
    fn name(&self) -> &'static str;

    /// Whether the plugin takes part in `operation` (upstream's
    /// `Handles`): the built-in plugins look at creates and updates only.
    fn handles(&self, operation: Operation) -> bool {
        operation != Operation::Delete
    }

    /// The mutating step: may change `object` or refuse the write. Runs
    /// after the body's defaults, before the kind's validation.
    async fn admit(
        &self,
        _registry: &Registry,
        _attributes: &Attributes<'_>,
        _object: &mut Value,
    ) -> Result<(), ApiError> {
        Ok(())
    }

    /// The validating step: may refuse the write (and keep its own state,
    /// such as a quota's usage, unless the write is a dry run). Runs after
    /// validation, right before the object is stored.
    async fn validate(
        &self,
        _registry: &Registry,
        _attributes: &Attributes<'_>,
        _object: &Value,
    ) -> Result<(), ApiError> {
        Ok(())
    }
}

/// The plugins every registry runs, in upstream's order of its default
/// plugins (LimitRanger, ServiceAccount, Priority, ValidatingAdmissionPolicy, the admission
/// webhooks, ResourceQuota),
/// with webhooks' services resolved by `services`.
pub fn default_plugins(
    services: Arc<dyn webhook::ServiceResolver>,
) -> Vec<Arc<dyn AdmissionPlugin>> {
    vec![
        Arc::new(limit_ranger::LimitRanger),
        Arc::new(service_account::ServiceAccount),
        Arc::new(priority::Priority),
        Arc::new(policy::Policies::default()),
        Arc::new(webhook::Webhooks::new(services)),
        Arc::new(resource_quota::ResourceQuota::default()),
    ]
}

impl Registry {
    /// Runs every plugin's mutating step on `object`.
    pub(super) async fn admit_mutating(
        &self,
        attributes: &Attributes<'_>,
        object: &mut Value,
    ) -> Result<(), ApiError> {
        for plugin in &self.plugins {
            if plugin.handles(attributes.operation) {
                plugin.admit(self, attributes, object).await?;
            }
        }
        Ok(())
    }

    /// Runs every plugin's validating step on `object`.
    pub(super) async fn admit_validating(
        &self,
        attributes: &Attributes<'_>,
        object: &Value,
    ) -> Result<(), ApiError> {
        for plugin in &self.plugins {
            if plugin.handles(attributes.operation) {
                plugin.validate(self, attributes, object).await?;
            }
        }
        Ok(())
    }

    /// The objects of `group`/`plural` in `namespace`, for plugins; none
    /// when the resource is not served.
    pub async fn list_in(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<Value>, ApiError> {
        let Some(resource) = self.catalog().by_resource(group, plural) else {
            return Ok(Vec::new());
        };
        let page =
            Box::pin(self.list(&resource, namespace, &super::ListOptions::default())).await?;
        Ok(page.items)
    }
}
