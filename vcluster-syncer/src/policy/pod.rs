//! Pod checks: the host isolation rules that hold at every level, and the
//! pod-level controls of baseline and restricted (which also run the
//! container and volume checks, in this order, so a pod's findings read
//! top to bottom).

use k8s_openapi::api::core::v1::{Pod, PodSpec};

use super::container::{apparmor_type_allowed, containers, selinux, PodLevel};
use super::report::{Findings, Rule};
use super::PodPolicy;

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

/// The AppArmor annotation prefix (deprecated, still honoured by kubelets).
const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

impl PodPolicy {
    /// The rules that keep tenants apart whatever the level.
    pub(super) fn isolation(&self, spec: &PodSpec, out: &mut Findings) {
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
    pub(super) fn baseline(&self, pod: &Pod, spec: &PodSpec, out: &mut Findings) {
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
            self.baseline_container(c, out);
        }

        self.host_path_volumes(spec, out);

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

    pub(super) fn restricted(&self, spec: &PodSpec, out: &mut Findings) {
        let pod_security = spec.security_context.as_ref();
        let windows = spec.os.as_ref().is_some_and(|os| os.name == "windows");
        let views = containers(spec);

        self.restricted_volume_types(spec, out);

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

        let pod = PodLevel {
            windows,
            seccomp: pod_seccomp,
            non_root: pod_non_root,
        };
        for c in &views {
            self.restricted_container(c, &pod, out);
        }
    }
}
