//! The demo's audit log: kube-apiserver's `--audit-policy-file`,
//! `--audit-log-path`, `--audit-log-maxsize` and `--audit-log-maxbackup`,
//! applied to the virtual API server (the one tenants talk to).

use std::path::PathBuf;
use std::sync::Arc;

use vcluster_apiserver::audit::{AuditConfig, FileSink, Policy, Rotation};

/// lumberjack's size when `--audit-log-maxsize` is 0, as kube-apiserver.
const DEFAULT_MAX_SIZE_MB: u64 = 100;

/// The audit flags; off (nothing logged) unless both the policy and the
/// log path are given, as kube-apiserver.
#[derive(Clone, Debug, Default)]
pub struct AuditOptions {
    /// The `audit.k8s.io/v1` Policy file (YAML or JSON).
    pub policy_file: Option<PathBuf>,
    /// Where events go, as JSON lines (created `0600`).
    pub log_path: Option<PathBuf>,
    /// Rotate the log at this many megabytes (0: 100, lumberjack's default).
    pub max_size_mb: u64,
    /// Rotated files kept (0: all).
    pub max_backup: usize,
}

/// Why the audit flags could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum AuditSetupError {
    /// The policy file is unreadable or invalid.
    #[error("--audit-policy-file: {0}")]
    Policy(#[from] vcluster_apiserver::audit::PolicyError),
    /// The log file cannot be opened.
    #[error("--audit-log-path: {0}")]
    Log(#[from] vcluster_apiserver::audit::SinkError),
}

impl AuditOptions {
    /// The API server's audit configuration, `None` when auditing is off
    /// (a flag given alone is warned about: it does nothing).
    pub fn config(&self) -> Result<Option<AuditConfig>, AuditSetupError> {
        let (policy_file, log_path) = match (&self.policy_file, &self.log_path) {
            (Some(policy), Some(log)) => (policy, log),
            (None, None) => return Ok(None),
            (Some(_), None) => {
                tracing::warn!("--audit-policy-file without --audit-log-path: nothing is audited");
                return Ok(None);
            }
            (None, Some(_)) => {
                tracing::warn!("--audit-log-path without --audit-policy-file: nothing is audited");
                return Ok(None);
            }
        };
        let policy = Policy::load(policy_file)?;
        let max_size_mb = match self.max_size_mb {
            0 => DEFAULT_MAX_SIZE_MB,
            mb => mb,
        };
        let rotation = Rotation {
            max_bytes: max_size_mb.saturating_mul(1024 * 1024),
            max_backups: self.max_backup,
        };
        let sink = FileSink::open(log_path, rotation)?;
        tracing::info!(path = %log_path.display(), rules = policy.rules.len(), "audit log on");
        Ok(Some(AuditConfig::new(policy, Arc::new(sink))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auditing_needs_both_flags_and_a_valid_policy() {
        let dir = tempfile::tempdir().expect("temp dir");
        let policy = dir.path().join("policy.yaml");
        std::fs::write(
            &policy,
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n",
        )
        .expect("write the policy");
        let log = dir.path().join("audit").join("audit.log");
        let mut options = AuditOptions {
            policy_file: Some(policy.clone()),
            ..AuditOptions::default()
        };
        assert!(options.config().expect("no error").is_none());
        options.log_path = Some(log.clone());
        let config = options.config().expect("valid").expect("on");
        assert_eq!(config.policy.rules.len(), 1);
        assert!(log.exists(), "the log is created at start");
        std::fs::write(&policy, "kind: Policy\n").expect("write");
        let err = options.config().expect_err("invalid policy").to_string();
        assert!(err.starts_with("--audit-policy-file: "), "{err}");
    }
}
