//! Host isolation policy: which tenant pods may run on the host at all.
//!
//! A tenant writes every field of its pods, and the pod syncer copies the
//! spec to the host, so without a policy a tenant could ask the host for
//! its network, its process table, a privileged container or a `hostPath`
//! mount of `/`. The policy follows the Kubernetes Pod Security Standards
//! (the controls that the built-in Pod Security Admission enforces, as of
//! Kubernetes 1.34), at a configurable [`PodSecurityLevel`], default
//! [`PodSecurityLevel::Baseline`]:
//!
//! - **baseline**: no Windows host processes; no `hostNetwork`, `hostPID`,
//!   `hostIPC`; no privileged containers; added capabilities only from the
//!   container runtime's default set; no `hostPath` volumes; no host ports;
//!   AppArmor only `RuntimeDefault`/`Localhost` (fields) and
//!   `runtime/default`/`localhost/*` (annotations); SELinux type only
//!   `container_t`, `container_init_t`, `container_kvm_t` or
//!   `container_engine_t`, no SELinux user or role; `procMount` only
//!   `Default`; seccomp never `Unconfined`; only the safe sysctls; no `host`
//!   in probes and lifecycle handlers.
//! - **restricted**: everything of baseline, plus: volumes only of the
//!   types `configMap`, `csi`, `downwardAPI`, `emptyDir`, `ephemeral`,
//!   `image`, `persistentVolumeClaim`, `projected`, `secret`;
//!   `allowPrivilegeEscalation: false`; `runAsNonRoot: true`; no
//!   `runAsUser: 0`; seccomp `RuntimeDefault` or `Localhost` set explicitly;
//!   capabilities: drop `ALL`, add at most `NET_BIND_SERVICE`. Windows pods
//!   (`spec.os.name: windows`) are exempt from the Linux-only ones
//!   (privilege escalation, seccomp, capabilities), as upstream.
//! - **privileged**: none of the above.
//!
//! Whatever the level, two host isolation rules hold, because a pod could
//! otherwise reach objects the syncer does not translate: a projected
//! `serviceAccountToken` volume would hand the tenant a token of a *host*
//! service account, and `spec.resourceClaims` name host ResourceClaims
//! directly. An [`AllowList`] relaxes single rules for trusted tenants
//! (`hostPath` under given prefixes, named capabilities, host ports, more
//! sysctls, service account tokens).
//!
//! The policy is checked on the pod *as it would be created on the host*
//! (after translation), so what is checked is exactly what would run.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::RangeInclusive;

use k8s_openapi::api::core::v1::{
    Capabilities, ContainerPort, HTTPGetAction, Lifecycle, Pod, PodSpec, Probe, SELinuxOptions,
    SecurityContext, TCPSocketAction, Volume,
};

/// How much of the host a tenant pod may use (the Pod Security Standards
/// level enforced on pods before they are synced).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PodSecurityLevel {
    /// No Pod Security Standards restriction (only the host isolation
    /// rules that keep tenants apart).
    Privileged,
    /// Prevents known privilege escalations (the default).
    #[default]
    Baseline,
    /// Baseline plus current pod hardening best practices.
    Restricted,
}

impl fmt::Display for PodSecurityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PodSecurityLevel::Privileged => "privileged",
            PodSecurityLevel::Baseline => "baseline",
            PodSecurityLevel::Restricted => "restricted",
        })
    }
}

impl std::str::FromStr for PodSecurityLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "privileged" => Ok(Self::Privileged),
            "baseline" => Ok(Self::Baseline),
            "restricted" => Ok(Self::Restricted),
            other => Err(format!(
                "unknown pod security level {other:?} (privileged, baseline or restricted)"
            )),
        }
    }
}

/// Explicit exceptions to the policy, for tenants trusted with a little
/// more of the host. Empty by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    /// `hostPath` volumes whose path lies under one of these absolute
    /// prefixes (compared by whole path components, after refusing `.`,
    /// `..` and empty components) are allowed, e.g. `/var/log`.
    pub host_path_prefixes: Vec<String>,
    /// Capabilities that may be added beyond the level's set (exact names
    /// as in the pod spec, e.g. `NET_ADMIN`).
    pub capabilities: BTreeSet<String>,
    /// Host ports that containers may ask for.
    pub host_ports: Vec<RangeInclusive<u16>>,
    /// Sysctls allowed beyond the safe set.
    pub sysctls: BTreeSet<String>,
    /// Projected `serviceAccountToken` volumes are allowed (they mint
    /// tokens of the host service account the pod runs under).
    pub service_account_tokens: bool,
}

/// The policy pods must satisfy to be synced to the host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodPolicy {
    /// The Pod Security Standards level (default baseline).
    pub level: PodSecurityLevel,
    /// Exceptions to single rules.
    pub allow: AllowList,
}

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

/// Capabilities a container runtime grants by default: the only ones
/// baseline lets a container add.
pub const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Sysctls that are namespaced and isolated from other pods: the only ones
/// baseline allows.
pub const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

/// SELinux types baseline allows (besides none).
pub const SELINUX_TYPES: &[&str] = &[
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

/// The AppArmor annotation prefix (deprecated, still honoured by kubelets).
const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

/// One container of any of the three lists, seen uniformly.
struct ContainerView<'a> {
    path: String,
    security: Option<&'a SecurityContext>,
    ports: Option<&'a Vec<ContainerPort>>,
    probes: [(&'static str, Option<&'a Probe>); 3],
    lifecycle: Option<&'a Lifecycle>,
}

fn containers(spec: &PodSpec) -> Vec<ContainerView<'_>> {
    // `Container` and `EphemeralContainer` are distinct types with the same
    // security-relevant fields, so one macro reads all three lists.
    macro_rules! view {
        ($list:literal, $i:expr, $c:expr) => {
            ContainerView {
                path: format!("spec.{}[{}]", $list, $i),
                security: $c.security_context.as_ref(),
                ports: $c.ports.as_ref(),
                probes: [
                    ("livenessProbe", $c.liveness_probe.as_ref()),
                    ("readinessProbe", $c.readiness_probe.as_ref()),
                    ("startupProbe", $c.startup_probe.as_ref()),
                ],
                lifecycle: $c.lifecycle.as_ref(),
            }
        };
    }
    let mut out = Vec::new();
    for (i, c) in spec.containers.iter().enumerate() {
        out.push(view!("containers", i, c));
    }
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        out.push(view!("initContainers", i, c));
    }
    for (i, c) in spec.ephemeral_containers.iter().flatten().enumerate() {
        out.push(view!("ephemeralContainers", i, c));
    }
    out
}

/// Collects violations.
struct Findings(Vec<Violation>);

impl Findings {
    fn add(&mut self, rule: Rule, field: impl Into<String>, detail: impl Into<String>) {
        self.0.push(Violation {
            rule,
            field: field.into(),
            detail: detail.into(),
        });
    }

    /// A probe or lifecycle handler must not aim at another host (the
    /// kubelet would connect from the node, reaching the host's network).
    fn no_handler_host(
        &mut self,
        prefix: &str,
        http_get: Option<&HTTPGetAction>,
        tcp_socket: Option<&TCPSocketAction>,
    ) {
        let set = |host: Option<&String>| host.is_some_and(|h| !h.is_empty());
        if set(http_get.and_then(|h| h.host.as_ref())) {
            self.add(
                Rule::ProbeHost,
                format!("{prefix}.httpGet.host"),
                "must not be set",
            );
        }
        if set(tcp_socket.and_then(|t| t.host.as_ref())) {
            self.add(
                Rule::ProbeHost,
                format!("{prefix}.tcpSocket.host"),
                "must not be set",
            );
        }
    }
}

impl PodPolicy {
    /// A policy at `level` without exceptions.
    pub fn new(level: PodSecurityLevel) -> Self {
        Self {
            level,
            allow: AllowList::default(),
        }
    }

    /// Everything about `pod` the policy forbids; empty when it may run.
    pub fn check(&self, pod: &Pod) -> Vec<Violation> {
        let mut findings = Findings(Vec::new());
        if let Some(spec) = pod.spec.as_ref() {
            self.isolation(spec, &mut findings);
            if self.level >= PodSecurityLevel::Baseline {
                self.baseline(pod, spec, &mut findings);
            }
            if self.level >= PodSecurityLevel::Restricted {
                self.restricted(spec, &mut findings);
            }
        }
        findings.0
    }

    /// The rules that keep tenants apart whatever the level.
    fn isolation(&self, spec: &PodSpec, out: &mut Findings) {
        if !self.allow.service_account_tokens {
            for (i, volume) in spec.volumes.iter().flatten().enumerate() {
                let sources = volume
                    .projected
                    .iter()
                    .flat_map(|p| p.sources.iter().flatten());
                for (j, source) in sources.enumerate() {
                    if source.service_account_token.is_some() {
                        out.add(
                            Rule::ServiceAccountToken,
                            format!("spec.volumes[{i}].projected.sources[{j}].serviceAccountToken"),
                            "a projected service account token would be a token of the host cluster",
                        );
                    }
                }
            }
        }
        for (i, volume) in spec.volumes.iter().flatten().enumerate() {
            let source_namespace = volume
                .ephemeral
                .as_ref()
                .and_then(|e| e.volume_claim_template.as_ref())
                .and_then(|t| t.spec.data_source_ref.as_ref())
                .and_then(|r| r.namespace.as_deref());
            if source_namespace.is_some_and(|ns| !ns.is_empty()) {
                out.add(
                    Rule::UntranslatedReference,
                    format!("spec.volumes[{i}].ephemeral.volumeClaimTemplate.spec.dataSourceRef.namespace"),
                    "a data source in another namespace would be a host namespace",
                );
            }
        }
        for (i, claim) in spec.resource_claims.iter().flatten().enumerate() {
            if claim.resource_claim_name.is_some() || claim.resource_claim_template_name.is_some() {
                out.add(
                    Rule::UntranslatedReference,
                    format!("spec.resourceClaims[{i}]"),
                    "resource claims are not synced; the name would refer to a host object",
                );
            }
        }
    }

    fn baseline(&self, pod: &Pod, spec: &PodSpec, out: &mut Findings) {
        let pod_security = spec.security_context.as_ref();
        let views = containers(spec);

        // HostProcess.
        if pod_security
            .and_then(|s| s.windows_options.as_ref())
            .and_then(|w| w.host_process)
            == Some(true)
        {
            out.add(
                Rule::HostProcess,
                "spec.securityContext.windowsOptions.hostProcess",
                "must not be true",
            );
        }
        for c in &views {
            if c.security
                .and_then(|s| s.windows_options.as_ref())
                .and_then(|w| w.host_process)
                == Some(true)
            {
                out.add(
                    Rule::HostProcess,
                    format!("{}.securityContext.windowsOptions.hostProcess", c.path),
                    "must not be true",
                );
            }
        }

        // Host namespaces.
        for (field, value) in [
            ("spec.hostNetwork", spec.host_network),
            ("spec.hostPID", spec.host_pid),
            ("spec.hostIPC", spec.host_ipc),
        ] {
            if value == Some(true) {
                out.add(Rule::HostNamespaces, field, "must not be true");
            }
        }

        for c in &views {
            let security = c.security;
            // Privileged containers.
            if security.and_then(|s| s.privileged) == Some(true) {
                out.add(
                    Rule::Privileged,
                    format!("{}.securityContext.privileged", c.path),
                    "must not be true",
                );
            }
            // Capabilities (baseline set; restricted narrows it further).
            if let Some(caps) = security.and_then(|s| s.capabilities.as_ref()) {
                for (k, cap) in caps.add.iter().flatten().enumerate() {
                    let allowed = cap.is_empty()
                        || BASELINE_CAPABILITIES.contains(&cap.as_str())
                        || self.allow.capabilities.contains(cap);
                    if !allowed {
                        out.add(
                            Rule::Capabilities,
                            format!("{}.securityContext.capabilities.add[{k}]", c.path),
                            format!("capability {cap:?} is not in the default set"),
                        );
                    }
                }
            }
            // Host ports.
            for (k, port) in c.ports.iter().flat_map(|p| p.iter()).enumerate() {
                let host_port = port.host_port.unwrap_or(0);
                if host_port != 0 && !self.host_port_allowed(host_port) {
                    out.add(
                        Rule::HostPorts,
                        format!("{}.ports[{k}].hostPort", c.path),
                        format!("host port {host_port} is not allowed"),
                    );
                }
            }
            // AppArmor.
            if let Some(profile) = security.and_then(|s| s.app_armor_profile.as_ref()) {
                if !apparmor_type_allowed(&profile.type_) {
                    out.add(
                        Rule::AppArmor,
                        format!("{}.securityContext.appArmorProfile.type", c.path),
                        format!("type {:?} is not allowed", profile.type_),
                    );
                }
            }
            // SELinux.
            if let Some(options) = security.and_then(|s| s.se_linux_options.as_ref()) {
                selinux(
                    options,
                    &format!("{}.securityContext.seLinuxOptions", c.path),
                    out,
                );
            }
            // /proc mount.
            if let Some(mount) = security.and_then(|s| s.proc_mount.as_deref()) {
                if mount != "Default" {
                    out.add(
                        Rule::ProcMount,
                        format!("{}.securityContext.procMount", c.path),
                        format!("{mount:?} is not allowed (only Default)"),
                    );
                }
            }
            // Seccomp: never Unconfined.
            if let Some(profile) = security.and_then(|s| s.seccomp_profile.as_ref()) {
                if profile.type_ == "Unconfined" {
                    out.add(
                        Rule::Seccomp,
                        format!("{}.securityContext.seccompProfile.type", c.path),
                        "Unconfined is not allowed",
                    );
                }
            }
            // Host in probes and lifecycle handlers.
            for (name, probe) in c.probes {
                if let Some(probe) = probe {
                    let prefix = format!("{}.{name}", c.path);
                    out.no_handler_host(
                        &prefix,
                        probe.http_get.as_ref(),
                        probe.tcp_socket.as_ref(),
                    );
                }
            }
            if let Some(lifecycle) = c.lifecycle {
                for (name, handler) in [
                    ("postStart", lifecycle.post_start.as_ref()),
                    ("preStop", lifecycle.pre_stop.as_ref()),
                ] {
                    if let Some(handler) = handler {
                        let prefix = format!("{}.lifecycle.{name}", c.path);
                        out.no_handler_host(
                            &prefix,
                            handler.http_get.as_ref(),
                            handler.tcp_socket.as_ref(),
                        );
                    }
                }
            }
        }

        // HostPath volumes.
        for (i, volume) in spec.volumes.iter().flatten().enumerate() {
            if let Some(host_path) = &volume.host_path {
                if !self.host_path_allowed(&host_path.path) {
                    out.add(
                        Rule::HostPathVolumes,
                        format!("spec.volumes[{i}].hostPath"),
                        format!("hostPath {:?} is not allowed", host_path.path),
                    );
                }
            }
        }

        // AppArmor, pod level and annotations.
        if let Some(profile) = pod_security.and_then(|s| s.app_armor_profile.as_ref()) {
            if !apparmor_type_allowed(&profile.type_) {
                out.add(
                    Rule::AppArmor,
                    "spec.securityContext.appArmorProfile.type",
                    format!("type {:?} is not allowed", profile.type_),
                );
            }
        }
        for (key, value) in pod.metadata.annotations.iter().flatten() {
            if key.starts_with(APPARMOR_ANNOTATION_PREFIX)
                && !(value.is_empty()
                    || value == "runtime/default"
                    || value.starts_with("localhost/"))
            {
                out.add(
                    Rule::AppArmor,
                    format!("metadata.annotations[{key}]"),
                    format!("profile {value:?} is not allowed"),
                );
            }
        }
        // SELinux, pod level.
        if let Some(options) = pod_security.and_then(|s| s.se_linux_options.as_ref()) {
            selinux(options, "spec.securityContext.seLinuxOptions", out);
        }
        // Seccomp, pod level.
        if let Some(profile) = pod_security.and_then(|s| s.seccomp_profile.as_ref()) {
            if profile.type_ == "Unconfined" {
                out.add(
                    Rule::Seccomp,
                    "spec.securityContext.seccompProfile.type",
                    "Unconfined is not allowed",
                );
            }
        }
        // Sysctls.
        for (i, sysctl) in pod_security
            .and_then(|s| s.sysctls.as_ref())
            .into_iter()
            .flatten()
            .enumerate()
        {
            if !SAFE_SYSCTLS.contains(&sysctl.name.as_str())
                && !self.allow.sysctls.contains(&sysctl.name)
            {
                out.add(
                    Rule::Sysctls,
                    format!("spec.securityContext.sysctls[{i}].name"),
                    format!("sysctl {:?} is not safe", sysctl.name),
                );
            }
        }
    }

    fn restricted(&self, spec: &PodSpec, out: &mut Findings) {
        let pod_security = spec.security_context.as_ref();
        let windows = spec.os.as_ref().is_some_and(|os| os.name == "windows");
        let views = containers(spec);

        // Volume types.
        for (i, volume) in spec.volumes.iter().flatten().enumerate() {
            if let Some(kind) = restricted_volume_type(volume) {
                // hostPath has its own rule (and its allow-list) in baseline.
                if kind != "hostPath" {
                    out.add(
                        Rule::VolumeTypes,
                        format!("spec.volumes[{i}]"),
                        format!("volume type {kind} is not allowed"),
                    );
                }
            }
        }

        // runAsNonRoot and runAsUser, pod level.
        let pod_non_root = pod_security.and_then(|s| s.run_as_non_root);
        if pod_non_root == Some(false) {
            out.add(
                Rule::RunAsNonRoot,
                "spec.securityContext.runAsNonRoot",
                "must be true",
            );
        }
        if pod_security.and_then(|s| s.run_as_user) == Some(0) {
            out.add(
                Rule::RunAsUser,
                "spec.securityContext.runAsUser",
                "must not be 0",
            );
        }
        let pod_seccomp = pod_security
            .and_then(|s| s.seccomp_profile.as_ref())
            .map(|p| p.type_.as_str());
        if !windows {
            if let Some(kind) = pod_seccomp {
                if !matches!(kind, "RuntimeDefault" | "Localhost" | "Unconfined") {
                    out.add(
                        Rule::Seccomp,
                        "spec.securityContext.seccompProfile.type",
                        format!("{kind:?} is not allowed (RuntimeDefault or Localhost)"),
                    );
                }
            }
        }

        for c in &views {
            let security = c.security;
            if !windows {
                // Privilege escalation.
                if security.and_then(|s| s.allow_privilege_escalation) != Some(false) {
                    out.add(
                        Rule::PrivilegeEscalation,
                        format!("{}.securityContext.allowPrivilegeEscalation", c.path),
                        "must be false",
                    );
                }
                // Seccomp must be set, here or on the pod.
                match security
                    .and_then(|s| s.seccomp_profile.as_ref())
                    .map(|p| p.type_.as_str())
                {
                    Some("RuntimeDefault" | "Localhost") => {}
                    // Unconfined is already a baseline violation.
                    Some("Unconfined") => {}
                    Some(other) => out.add(
                        Rule::Seccomp,
                        format!("{}.securityContext.seccompProfile.type", c.path),
                        format!("{other:?} is not allowed (RuntimeDefault or Localhost)"),
                    ),
                    None if matches!(pod_seccomp, Some("RuntimeDefault" | "Localhost")) => {}
                    None => out.add(
                        Rule::Seccomp,
                        format!("{}.securityContext.seccompProfile", c.path),
                        "must be RuntimeDefault or Localhost (here or on the pod)",
                    ),
                }
                // Capabilities: drop ALL, add at most NET_BIND_SERVICE.
                self.restricted_capabilities(
                    security.and_then(|s| s.capabilities.as_ref()),
                    &c.path,
                    out,
                );
            }
            // runAsNonRoot.
            match security.and_then(|s| s.run_as_non_root) {
                Some(true) => {}
                Some(false) => out.add(
                    Rule::RunAsNonRoot,
                    format!("{}.securityContext.runAsNonRoot", c.path),
                    "must be true",
                ),
                None if pod_non_root == Some(true) => {}
                None => out.add(
                    Rule::RunAsNonRoot,
                    format!("{}.securityContext.runAsNonRoot", c.path),
                    "must be true (here or on the pod)",
                ),
            }
            // runAsUser.
            if security.and_then(|s| s.run_as_user) == Some(0) {
                out.add(
                    Rule::RunAsUser,
                    format!("{}.securityContext.runAsUser", c.path),
                    "must not be 0",
                );
            }
        }
    }

    fn restricted_capabilities(&self, caps: Option<&Capabilities>, path: &str, out: &mut Findings) {
        let drops_all = caps
            .and_then(|c| c.drop.as_ref())
            .is_some_and(|d| d.iter().any(|c| c == "ALL"));
        if !drops_all {
            out.add(
                Rule::Capabilities,
                format!("{path}.securityContext.capabilities.drop"),
                "must include ALL",
            );
        }
        for (k, cap) in caps
            .and_then(|c| c.add.as_ref())
            .into_iter()
            .flatten()
            .enumerate()
        {
            // Beyond-baseline capabilities are reported by baseline already.
            let in_baseline = cap.is_empty() || BASELINE_CAPABILITIES.contains(&cap.as_str());
            if in_baseline && cap != "NET_BIND_SERVICE" && !self.allow.capabilities.contains(cap) {
                out.add(
                    Rule::Capabilities,
                    format!("{path}.securityContext.capabilities.add[{k}]"),
                    format!("capability {cap:?} is not allowed (only NET_BIND_SERVICE)"),
                );
            }
        }
    }

    fn host_port_allowed(&self, port: i32) -> bool {
        u16::try_from(port).is_ok_and(|p| self.allow.host_ports.iter().any(|r| r.contains(&p)))
    }

    fn host_path_allowed(&self, path: &str) -> bool {
        let Some(components) = clean_components(path) else {
            return false;
        };
        self.allow.host_path_prefixes.iter().any(|prefix| {
            clean_components(prefix).is_some_and(|prefix| {
                components.len() >= prefix.len() && components.starts_with(&prefix)
            })
        })
    }
}

/// The components of an absolute path, or `None` for a relative path or one
/// with `.` or `..` components (which could step out of an allowed prefix).
fn clean_components(path: &str) -> Option<Vec<&str>> {
    let rest = path.strip_prefix('/')?;
    let mut out = Vec::new();
    for component in rest.split('/') {
        match component {
            // `//` and a trailing `/` name the same directory.
            "" => continue,
            "." | ".." => return None,
            other => out.push(other),
        }
    }
    Some(out)
}

fn apparmor_type_allowed(kind: &str) -> bool {
    matches!(kind, "RuntimeDefault" | "Localhost")
}

fn selinux(options: &SELinuxOptions, path: &str, out: &mut Findings) {
    if let Some(kind) = options.type_.as_deref().filter(|t| !t.is_empty()) {
        if !SELINUX_TYPES.contains(&kind) {
            out.add(
                Rule::SeLinux,
                format!("{path}.type"),
                format!("type {kind:?} is not allowed"),
            );
        }
    }
    if options.user.as_deref().is_some_and(|u| !u.is_empty()) {
        out.add(Rule::SeLinux, format!("{path}.user"), "must not be set");
    }
    if options.role.as_deref().is_some_and(|r| !r.is_empty()) {
        out.add(Rule::SeLinux, format!("{path}.role"), "must not be set");
    }
}

/// The type of a volume that restricted forbids, if it is one.
fn restricted_volume_type(volume: &Volume) -> Option<&'static str> {
    let allowed = volume.config_map.is_some()
        || volume.csi.is_some()
        || volume.downward_api.is_some()
        || volume.empty_dir.is_some()
        || volume.ephemeral.is_some()
        || volume.image.is_some()
        || volume.persistent_volume_claim.is_some()
        || volume.projected.is_some()
        || volume.secret.is_some();
    if allowed {
        return None;
    }
    let kinds: [(&'static str, bool); 21] = [
        ("hostPath", volume.host_path.is_some()),
        ("gcePersistentDisk", volume.gce_persistent_disk.is_some()),
        (
            "awsElasticBlockStore",
            volume.aws_elastic_block_store.is_some(),
        ),
        ("gitRepo", volume.git_repo.is_some()),
        ("nfs", volume.nfs.is_some()),
        ("iscsi", volume.iscsi.is_some()),
        ("glusterfs", volume.glusterfs.is_some()),
        ("rbd", volume.rbd.is_some()),
        ("flexVolume", volume.flex_volume.is_some()),
        ("cinder", volume.cinder.is_some()),
        ("cephfs", volume.cephfs.is_some()),
        ("flocker", volume.flocker.is_some()),
        ("fc", volume.fc.is_some()),
        ("azureFile", volume.azure_file.is_some()),
        ("vsphereVolume", volume.vsphere_volume.is_some()),
        ("quobyte", volume.quobyte.is_some()),
        ("azureDisk", volume.azure_disk.is_some()),
        ("portworxVolume", volume.portworx_volume.is_some()),
        (
            "photonPersistentDisk",
            volume.photon_persistent_disk.is_some(),
        ),
        ("scaleIO", volume.scale_io.is_some()),
        ("storageos", volume.storageos.is_some()),
    ];
    // A volume without any source is defaulted to an emptyDir.
    kinds.iter().find(|(_, set)| *set).map(|(kind, _)| *kind)
}

/// One line per violation, for conditions and events.
pub fn describe(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// A pod that passes every level: non-root, no privilege escalation,
    /// all capabilities dropped, seccomp RuntimeDefault.
    fn hardened() -> Value {
        json!({
            "metadata": {"name": "web", "namespace": "team"},
            "spec": {
                "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                "volumes": [{"name": "cfg", "configMap": {"name": "settings"}}, {"name": "tmp", "emptyDir": {}}],
                "containers": [{
                    "name": "app", "image": "nginx",
                    "ports": [{"containerPort": 8080}],
                    "securityContext": {
                        "allowPrivilegeEscalation": false,
                        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
                    },
                    "livenessProbe": {"httpGet": {"path": "/", "port": 8080}}
                }],
                "initContainers": [{
                    "name": "init", "image": "busybox",
                    "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}
                }]
            }
        })
    }

    fn pod(value: Value) -> Pod {
        serde_json::from_value(value).expect("a valid pod")
    }

    fn rules(policy: &PodPolicy, value: Value) -> BTreeSet<Rule> {
        policy
            .check(&pod(value))
            .into_iter()
            .map(|v| v.rule)
            .collect()
    }

    type Mutation = fn(&mut Value);

    fn add_volume(pod: &mut Value, volume: Value) {
        if let Some(volumes) = pod["spec"]["volumes"].as_array_mut() {
            volumes.push(volume);
        }
    }

    /// Every baseline control, one way to break it each.
    fn baseline_breaches() -> Vec<(&'static str, Rule, Mutation)> {
        vec![
            ("hostNetwork", Rule::HostNamespaces, |p| {
                p["spec"]["hostNetwork"] = json!(true)
            }),
            ("hostPID", Rule::HostNamespaces, |p| {
                p["spec"]["hostPID"] = json!(true)
            }),
            ("hostIPC", Rule::HostNamespaces, |p| {
                p["spec"]["hostIPC"] = json!(true)
            }),
            ("privileged", Rule::Privileged, |p| {
                p["spec"]["containers"][0]["securityContext"]["privileged"] = json!(true)
            }),
            ("privileged init container", Rule::Privileged, |p| {
                p["spec"]["initContainers"][0]["securityContext"]["privileged"] = json!(true)
            }),
            ("privileged ephemeral container", Rule::Privileged, |p| {
                p["spec"]["ephemeralContainers"] = json!([{"name": "debug", "image": "busybox", "securityContext": {"privileged": true}}])
            }),
            ("SYS_ADMIN", Rule::Capabilities, |p| {
                p["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] =
                    json!(["SYS_ADMIN"])
            }),
            ("CAP_ prefixed", Rule::Capabilities, |p| {
                p["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] =
                    json!(["CAP_CHOWN"])
            }),
            ("hostPath", Rule::HostPathVolumes, |p| {
                add_volume(p, json!({"name": "root", "hostPath": {"path": "/"}}))
            }),
            ("hostPort", Rule::HostPorts, |p| {
                p["spec"]["containers"][0]["ports"][0]["hostPort"] = json!(80)
            }),
            ("AppArmor field", Rule::AppArmor, |p| {
                p["spec"]["containers"][0]["securityContext"]["appArmorProfile"] =
                    json!({"type": "Unconfined"})
            }),
            ("AppArmor pod field", Rule::AppArmor, |p| {
                p["spec"]["securityContext"]["appArmorProfile"] = json!({"type": "Unconfined"})
            }),
            ("AppArmor annotation", Rule::AppArmor, |p| {
                p["metadata"]["annotations"] =
                    json!({"container.apparmor.security.beta.kubernetes.io/app": "unconfined"})
            }),
            ("SELinux type", Rule::SeLinux, |p| {
                p["spec"]["securityContext"]["seLinuxOptions"] = json!({"type": "spc_t"})
            }),
            ("SELinux user", Rule::SeLinux, |p| {
                p["spec"]["containers"][0]["securityContext"]["seLinuxOptions"] =
                    json!({"user": "system_u"})
            }),
            ("SELinux role", Rule::SeLinux, |p| {
                p["spec"]["initContainers"][0]["securityContext"]["seLinuxOptions"] =
                    json!({"role": "sysadm_r"})
            }),
            ("procMount", Rule::ProcMount, |p| {
                p["spec"]["containers"][0]["securityContext"]["procMount"] = json!("Unmasked")
            }),
            ("seccomp pod", Rule::Seccomp, |p| {
                p["spec"]["securityContext"]["seccompProfile"] = json!({"type": "Unconfined"})
            }),
            ("seccomp container", Rule::Seccomp, |p| {
                p["spec"]["containers"][0]["securityContext"]["seccompProfile"] =
                    json!({"type": "Unconfined"})
            }),
            ("sysctl", Rule::Sysctls, |p| {
                p["spec"]["securityContext"]["sysctls"] =
                    json!([{"name": "kernel.msgmax", "value": "65536"}])
            }),
            ("hostProcess", Rule::HostProcess, |p| {
                p["spec"]["securityContext"]["windowsOptions"] = json!({"hostProcess": true})
            }),
            ("hostProcess container", Rule::HostProcess, |p| {
                p["spec"]["containers"][0]["securityContext"]["windowsOptions"] =
                    json!({"hostProcess": true})
            }),
            ("probe host", Rule::ProbeHost, |p| {
                p["spec"]["containers"][0]["livenessProbe"]["httpGet"]["host"] = json!("10.0.0.1")
            }),
            ("lifecycle host", Rule::ProbeHost, |p| {
                p["spec"]["containers"][0]["lifecycle"] =
                    json!({"preStop": {"tcpSocket": {"host": "metadata.internal", "port": 80}}})
            }),
            ("service account token", Rule::ServiceAccountToken, |p| {
                add_volume(
                    p,
                    json!({"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}),
                )
            }),
            ("resource claim", Rule::UntranslatedReference, |p| {
                p["spec"]["resourceClaims"] =
                    json!([{"name": "gpu", "resourceClaimName": "someone-elses-gpu"}])
            }),
            (
                "cross-namespace data source",
                Rule::UntranslatedReference,
                |p| {
                    add_volume(
                        p,
                        json!({"name": "data", "ephemeral": {"volumeClaimTemplate": {"spec": {
                            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                            "dataSourceRef": {"kind": "PersistentVolumeClaim", "name": "db", "namespace": "other-tenant"}
                        }}}}),
                    )
                },
            ),
        ]
    }

    /// The controls restricted adds.
    fn restricted_breaches() -> Vec<(&'static str, Rule, Mutation)> {
        vec![
            ("nfs volume", Rule::VolumeTypes, |p| {
                add_volume(
                    p,
                    json!({"name": "share", "nfs": {"server": "nfs", "path": "/"}}),
                )
            }),
            (
                "allowPrivilegeEscalation unset",
                Rule::PrivilegeEscalation,
                |p| {
                    p["spec"]["containers"][0]["securityContext"]
                        .as_object_mut()
                        .expect("context")
                        .remove("allowPrivilegeEscalation");
                },
            ),
            (
                "allowPrivilegeEscalation true",
                Rule::PrivilegeEscalation,
                |p| {
                    p["spec"]["initContainers"][0]["securityContext"]["allowPrivilegeEscalation"] =
                        json!(true)
                },
            ),
            ("runAsNonRoot false", Rule::RunAsNonRoot, |p| {
                p["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] = json!(false)
            }),
            ("runAsNonRoot unset", Rule::RunAsNonRoot, |p| {
                p["spec"]["securityContext"]
                    .as_object_mut()
                    .expect("context")
                    .remove("runAsNonRoot");
            }),
            ("runAsUser 0", Rule::RunAsUser, |p| {
                p["spec"]["containers"][0]["securityContext"]["runAsUser"] = json!(0)
            }),
            ("runAsUser 0 on the pod", Rule::RunAsUser, |p| {
                p["spec"]["securityContext"]["runAsUser"] = json!(0)
            }),
            ("seccomp unset", Rule::Seccomp, |p| {
                p["spec"]["securityContext"]
                    .as_object_mut()
                    .expect("context")
                    .remove("seccompProfile");
            }),
            ("capabilities not dropped", Rule::Capabilities, |p| {
                p["spec"]["initContainers"][0]["securityContext"]["capabilities"] =
                    json!({"drop": ["NET_RAW"]})
            }),
            ("baseline capability added", Rule::Capabilities, |p| {
                p["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] =
                    json!(["CHOWN"])
            }),
        ]
    }

    #[test]
    fn the_hardened_pod_passes_every_level() {
        for level in [
            PodSecurityLevel::Privileged,
            PodSecurityLevel::Baseline,
            PodSecurityLevel::Restricted,
        ] {
            assert_eq!(
                PodPolicy::new(level).check(&pod(hardened())),
                vec![],
                "{level}"
            );
        }
        // A default pod (no security settings at all) passes baseline.
        let plain = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        assert!(PodPolicy::default().check(&pod(plain)).is_empty());
    }

    #[test]
    fn each_baseline_control_is_enforced_at_baseline_and_restricted() {
        for (name, rule, breach) in baseline_breaches() {
            let mut value = hardened();
            breach(&mut value);
            for level in [PodSecurityLevel::Baseline, PodSecurityLevel::Restricted] {
                let found = rules(&PodPolicy::new(level), value.clone());
                assert!(found.contains(&rule), "{name} at {level}: {found:?}");
            }
            // Privileged only keeps the tenant-isolation rules.
            let found = rules(&PodPolicy::new(PodSecurityLevel::Privileged), value.clone());
            let isolation = matches!(
                rule,
                Rule::ServiceAccountToken | Rule::UntranslatedReference
            );
            assert_eq!(
                found.contains(&rule),
                isolation,
                "{name} at privileged: {found:?}"
            );
        }
    }

    #[test]
    fn each_restricted_control_is_enforced_at_restricted_only() {
        for (name, rule, breach) in restricted_breaches() {
            let mut value = hardened();
            breach(&mut value);
            let found = rules(&PodPolicy::new(PodSecurityLevel::Restricted), value.clone());
            assert!(found.contains(&rule), "{name}: {found:?}");
            let found = rules(&PodPolicy::new(PodSecurityLevel::Baseline), value);
            assert!(found.is_empty(), "{name} at baseline: {found:?}");
        }
    }

    #[test]
    fn violations_name_the_field() {
        let mut value = hardened();
        value["spec"]["initContainers"][0]["securityContext"]["privileged"] = json!(true);
        let violations = PodPolicy::default().check(&pod(value));
        assert_eq!(violations.len(), 1);
        assert_eq!(
            violations[0].field,
            "spec.initContainers[0].securityContext.privileged"
        );
        assert!(describe(&violations).contains("privileged"));
    }

    #[test]
    fn the_allow_list_relaxes_single_rules() {
        let mut policy = PodPolicy::default();
        policy.allow.host_path_prefixes = vec!["/var/log".into()];
        policy.allow.capabilities = BTreeSet::from(["NET_ADMIN".to_owned()]);
        policy.allow.host_ports = vec![8000..=8099];
        policy.allow.sysctls = BTreeSet::from(["net.core.somaxconn".to_owned()]);
        policy.allow.service_account_tokens = true;
        let with = |mutate: &dyn Fn(&mut Value)| {
            let mut value = hardened();
            mutate(&mut value);
            rules(&policy, value)
        };
        let host_path = |path: &'static str| {
            move |p: &mut Value| {
                p["spec"]["volumes"][1] = json!({"name": "h", "hostPath": {"path": path}})
            }
        };
        assert!(with(&host_path("/var/log")).is_empty());
        assert!(with(&host_path("/var/log/pods/")).is_empty());
        assert!(with(&host_path("/var//log/x")).is_empty());
        // Prefixes are whole components, and `..` cannot climb out.
        assert!(!with(&host_path("/var/logs")).is_empty());
        assert!(!with(&host_path("/var/log/../../etc")).is_empty());
        assert!(!with(&host_path("/var/log/./x")).is_empty());
        assert!(!with(&host_path("var/log")).is_empty());
        assert!(!with(&host_path("/")).is_empty());
        assert!(with(&|p: &mut Value| {
            p["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] =
                json!(["NET_ADMIN"])
        })
        .is_empty());
        assert!(!with(&|p: &mut Value| {
            p["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] =
                json!(["SYS_ADMIN"])
        })
        .is_empty());
        assert!(with(
            &|p: &mut Value| p["spec"]["containers"][0]["ports"][0]["hostPort"] = json!(8080)
        )
        .is_empty());
        assert!(!with(
            &|p: &mut Value| p["spec"]["containers"][0]["ports"][0]["hostPort"] = json!(80)
        )
        .is_empty());
        assert!(!with(
            &|p: &mut Value| p["spec"]["containers"][0]["ports"][0]["hostPort"] = json!(-1)
        )
        .is_empty());
        assert!(with(&|p: &mut Value| {
            p["spec"]["securityContext"]["sysctls"] =
                json!([{"name": "net.core.somaxconn", "value": "1"}])
        })
        .is_empty());
        assert!(with(&|p: &mut Value| {
            p["spec"]["volumes"][1] = json!({"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}})
        })
        .is_empty());
    }

    #[test]
    fn windows_pods_are_exempt_from_linux_only_restricted_controls() {
        let value = json!({
            "metadata": {"name": "win"},
            "spec": {
                "os": {"name": "windows"},
                "securityContext": {"runAsNonRoot": true},
                "containers": [{"name": "c", "image": "iis"}]
            }
        });
        assert!(rules(&PodPolicy::new(PodSecurityLevel::Restricted), value).is_empty());
    }

    #[test]
    fn safe_values_pass() {
        let mut value = hardened();
        value["spec"]["securityContext"]["sysctls"] =
            json!([{"name": "net.ipv4.tcp_keepalive_time", "value": "60"}]);
        value["spec"]["securityContext"]["seLinuxOptions"] =
            json!({"type": "container_init_t", "level": "s0:c1"});
        value["spec"]["containers"][0]["securityContext"]["appArmorProfile"] =
            json!({"type": "Localhost", "localhostProfile": "p"});
        value["spec"]["containers"][0]["securityContext"]["procMount"] = json!("Default");
        value["spec"]["containers"][0]["ports"][0]["hostPort"] = json!(0);
        value["metadata"]["annotations"] =
            json!({"container.apparmor.security.beta.kubernetes.io/app": "localhost/p"});
        value["spec"]["volumes"][1] = json!({"name": "no-source"});
        assert_eq!(
            rules(&PodPolicy::new(PodSecurityLevel::Restricted), value),
            BTreeSet::new()
        );
    }

    #[test]
    fn levels_parse_and_print() {
        for level in [
            PodSecurityLevel::Privileged,
            PodSecurityLevel::Baseline,
            PodSecurityLevel::Restricted,
        ] {
            assert_eq!(level.to_string().parse::<PodSecurityLevel>(), Ok(level));
        }
        assert!("open".parse::<PodSecurityLevel>().is_err());
        assert_eq!(PodPolicy::default().level, PodSecurityLevel::Baseline);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        use crate::syncer::{Syncer, VirtualOnly};
        use crate::syncers::pods::{PodEnvironment, PodSyncer, WaitFor};

        fn decide(policy: &PodPolicy, pod: &Pod) -> bool {
            let syncer = PodSyncer::new(PodEnvironment::default(), WaitFor::default())
                .with_policy(policy.clone());
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            // Err (reporting to the unreachable virtual cluster failed) and
            // anything but CreateHost mean "not synced".
            runtime.block_on(async {
                let ctx = crate::syncers::tests::context();
                matches!(
                    syncer.virtual_only(&ctx, pod, None).await,
                    Ok(VirtualOnly::CreateHost(_))
                )
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(192))]

            /// Any combination of breaches: the pod is never synced, and
            /// every breached control is reported; without a breach it is.
            #[test]
            fn a_pod_that_violates_any_rule_is_never_synced(
                chosen in proptest::collection::vec(any::<bool>(), 27),
                restricted in proptest::collection::vec(any::<bool>(), 10),
                level in prop_oneof![Just(PodSecurityLevel::Baseline), Just(PodSecurityLevel::Restricted)],
            ) {
                let baseline = baseline_breaches();
                let extra = restricted_breaches();
                prop_assert_eq!(baseline.len(), chosen.len());
                prop_assert_eq!(extra.len(), restricted.len());
                let mut value = hardened();
                let mut expected = BTreeSet::new();
                for ((_, rule, breach), on) in baseline.iter().zip(&chosen) {
                    if *on {
                        breach(&mut value);
                        expected.insert(*rule);
                    }
                }
                if level == PodSecurityLevel::Restricted {
                    for ((_, rule, breach), on) in extra.iter().zip(&restricted) {
                        if *on {
                            breach(&mut value);
                            expected.insert(*rule);
                        }
                    }
                }
                let pod = pod(value);
                let policy = PodPolicy::new(level);
                let found: BTreeSet<Rule> = policy.check(&pod).into_iter().map(|v| v.rule).collect();
                prop_assert!(expected.is_subset(&found), "expected {:?}, found {:?}", expected, found);
                prop_assert_eq!(found.is_empty(), expected.is_empty());
                prop_assert_eq!(decide(&policy, &pod), expected.is_empty());
            }
        }
    }
}
