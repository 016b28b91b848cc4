//! What a policy check finds: a [`Violation`] per broken control, named by
//! [`Rule`], and the one-line [`describe`] of them that blocked pods show.

use std::fmt;

/// The control a violation breaks (named as in the Pod Security
/// Standards, plus the host isolation rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// Baseline: Windows `hostProcess`.
    HostProcess,
    /// Baseline: `hostNetwork`, `hostPID`, `hostIPC`.
    HostNamespaces,
    /// Baseline: privileged containers.
    Privileged,
    /// Baseline: capabilities beyond the default set (restricted: beyond
    /// `NET_BIND_SERVICE`, and `ALL` must be dropped).
    Capabilities,
    /// Baseline: `hostPath` volumes.
    HostPathVolumes,
    /// Baseline: host ports.
    HostPorts,
    /// Baseline: AppArmor profiles.
    AppArmor,
    /// Baseline: SELinux options.
    SeLinux,
    /// Baseline: `/proc` mount type.
    ProcMount,
    /// Baseline: seccomp `Unconfined` (restricted: a profile must be set).
    Seccomp,
    /// Baseline: unsafe sysctls.
    Sysctls,
    /// Baseline: `host` in probes and lifecycle handlers.
    ProbeHost,
    /// Restricted: volume types.
    VolumeTypes,
    /// Restricted: `allowPrivilegeEscalation` must be false.
    PrivilegeEscalation,
    /// Restricted: `runAsNonRoot` must be true.
    RunAsNonRoot,
    /// Restricted: `runAsUser` must not be 0.
    RunAsUser,
    /// Host isolation: projected service account tokens (host tokens).
    ServiceAccountToken,
    /// Host isolation: references the syncer does not translate
    /// (`spec.resourceClaims`).
    UntranslatedReference,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rule::HostProcess => "hostProcess",
            Rule::HostNamespaces => "host namespaces",
            Rule::Privileged => "privileged",
            Rule::Capabilities => "capabilities",
            Rule::HostPathVolumes => "hostPath volumes",
            Rule::HostPorts => "host ports",
            Rule::AppArmor => "AppArmor",
            Rule::SeLinux => "SELinux",
            Rule::ProcMount => "procMount",
            Rule::Seccomp => "seccomp",
            Rule::Sysctls => "sysctls",
            Rule::ProbeHost => "probe or lifecycle host",
            Rule::VolumeTypes => "volume types",
            Rule::PrivilegeEscalation => "allowPrivilegeEscalation",
            Rule::RunAsNonRoot => "runAsNonRoot",
            Rule::RunAsUser => "runAsUser",
            Rule::ServiceAccountToken => "service account token",
            Rule::UntranslatedReference => "untranslated reference",
        })
    }
}

/// One field of a pod that the policy forbids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The control broken.
    pub rule: Rule,
    /// The field, as a path (`spec.containers[0].securityContext.privileged`).
    pub field: String,
    /// What is wrong with it.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.field, self.rule, self.detail)
    }
}

/// Collects violations.
pub(super) struct Findings(pub(super) Vec<Violation>);

impl Findings {
    pub(super) fn add(&mut self, rule: Rule, field: impl Into<String>, detail: impl Into<String>) {
        self.0.push(Violation {
            rule,
            field: field.into(),
            detail: detail.into(),
        });
    }
}

/// One line per violation, for conditions and events.
pub fn describe(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
