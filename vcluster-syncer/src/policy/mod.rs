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
//!
//! Files: `report` (what a check finds), `pod` (the isolation rules and
//! pod-level controls, and the order of all checks), `container` (the
//! controls of each container), `volume` (volume controls).

use std::collections::BTreeSet;
use std::fmt;
use std::ops::RangeInclusive;

use k8s_openapi::api::core::v1::Pod;

mod container;
mod pod;
mod report;
mod volume;

pub use container::{BASELINE_CAPABILITIES, SELINUX_TYPES};
pub use pod::SAFE_SYSCTLS;
pub use report::{describe, Rule, Violation};

use report::Findings;

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
}

#[cfg(test)]
mod fixtures;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::{json, Value};

    use super::fixtures::*;
    use super::*;

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
