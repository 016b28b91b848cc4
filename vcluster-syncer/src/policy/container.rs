//! Container checks: every container of a pod (regular, init and
//! ephemeral) seen the same way, and the controls that apply to each.

use k8s_openapi::api::core::v1::{
    Capabilities, ContainerPort, HTTPGetAction, Lifecycle, PodSpec, Probe, SELinuxOptions,
    SecurityContext, TCPSocketAction,
};

use super::report::{Findings, Rule};
use super::PodPolicy;

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

/// SELinux types baseline allows (besides none).
pub const SELINUX_TYPES: &[&str] = &[
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

/// One container of any of the three lists, seen uniformly.
pub(super) struct ContainerView<'a> {
    /// Where it is in the pod (`spec.initContainers[0]`).
    pub(super) path: String,
    /// Its security context.
    pub(super) security: Option<&'a SecurityContext>,
    ports: Option<&'a Vec<ContainerPort>>,
    probes: [(&'static str, Option<&'a Probe>); 3],
    lifecycle: Option<&'a Lifecycle>,
}

pub(super) fn containers(spec: &PodSpec) -> Vec<ContainerView<'_>> {
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

/// What restricted's container checks need to know of the pod: a value set
/// on the pod satisfies a container that leaves it unset.
pub(super) struct PodLevel<'a> {
    /// A Windows pod is exempt from the Linux-only controls.
    pub(super) windows: bool,
    /// The pod's seccomp profile type.
    pub(super) seccomp: Option<&'a str>,
    /// The pod's `runAsNonRoot`.
    pub(super) non_root: Option<bool>,
}

impl PodPolicy {
    /// Baseline's controls of one container.
    pub(super) fn baseline_container(&self, c: &ContainerView<'_>, out: &mut Findings) {
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
                out.no_handler_host(&prefix, probe.http_get.as_ref(), probe.tcp_socket.as_ref());
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

    /// Restricted's controls of one container.
    pub(super) fn restricted_container(
        &self,
        c: &ContainerView<'_>,
        pod: &PodLevel<'_>,
        out: &mut Findings,
    ) {
        let security = c.security;
        if !pod.windows {
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
                None if matches!(pod.seccomp, Some("RuntimeDefault" | "Localhost")) => {}
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
            None if pod.non_root == Some(true) => {}
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
}

impl Findings {
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

pub(super) fn apparmor_type_allowed(kind: &str) -> bool {
    matches!(kind, "RuntimeDefault" | "Localhost")
}

pub(super) fn selinux(options: &SELinuxOptions, path: &str, out: &mut Findings) {
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
