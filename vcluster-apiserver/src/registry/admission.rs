//! Admission: the check a write's final object must pass before it is
//! stored (the HTTP layer sets it from the request's authorization), and
//! the [`WriteOptions`] that carry it with the rest of a write's options.

use std::sync::Arc;

use serde_json::Value;

use super::FieldManager;
use crate::error::ApiError;
use crate::resources::ResourceInfo;

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
