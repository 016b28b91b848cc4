//! The audit log: kube-apiserver's audit policy and events, as a layer
//! around the whole API (outside authentication, so denials are logged).
//!
//! A [`Policy`] (`audit.k8s.io/v1`, `--audit-policy-file`) decides per
//! request the [`Level`] (None, Metadata, Request, RequestResponse) and the
//! stages to skip; the [`layer`] writes one [`Event`] per stage
//! (RequestReceived, ResponseStarted for watches and other long-running
//! requests, ResponseComplete, Panic) to an [`AuditSink`]: a [`FileSink`]
//! of JSON lines with size-based rotation, or a [`MemorySink`]. Every
//! response carries its event's id as the `Audit-Id` header. See
//! `docs/security.md`, "Audit log".

use std::sync::Arc;

mod body;
pub mod event;
pub mod layer;
pub mod policy;
pub mod sink;

pub use event::{Event, EventUser, ObjectRef};
pub use policy::{Level, Policy, PolicyError, PolicyRule, Stage};
pub use sink::{AuditSink, FileSink, MemorySink, Rotation, SinkError};

/// The most of a request or response body kept for an event (larger ones
/// are left out and the event says so): a log line should not be as
/// large as the biggest object.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

/// What is audited and where the events go (`ApiServerConfig::audit`).
#[derive(Clone)]
pub struct AuditConfig {
    /// Which requests are logged, and at what level.
    pub policy: Policy,
    /// Where events are written.
    pub sink: Arc<dyn AuditSink>,
    /// The most of a body captured for `requestObject`/`responseObject`.
    pub max_body_bytes: usize,
}

impl AuditConfig {
    /// `policy` writing to `sink`, bodies captured up to
    /// [`DEFAULT_MAX_BODY_BYTES`].
    pub fn new(policy: Policy, sink: Arc<dyn AuditSink>) -> Self {
        Self {
            policy,
            sink,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

impl std::fmt::Debug for AuditConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditConfig")
            .field("rules", &self.policy.rules.len())
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}
