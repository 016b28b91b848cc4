//! The policy: an immutable snapshot of every role and binding that
//! decides requests, and the cache that keeps it until RBAC changes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde_json::Value;
use vcluster_core::selector::Selector;

use super::*;
use crate::auth::{Attributes, UserInfo, SYSTEM_MASTERS};
use crate::error::ApiError;
use crate::object;
use crate::registry::{ListOptions, Registry};

/// Whether authorization allows a request, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Allowed; the reason names the binding (or `system:masters`).
    Allow(String),
    /// Not allowed; the reason, if any, is appended to the denial.
    Deny(String),
}

impl Decision {
    /// Whether the request is allowed.
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

/// An immutable view of every Role, ClusterRole and binding.
#[derive(Debug, Default)]
pub struct Policy {
    /// ClusterRole name -> rules (aggregated ones resolved).
    pub(super) cluster_roles: HashMap<String, Vec<PolicyRule>>,
    /// (namespace, Role name) -> rules.
    pub(super) roles: HashMap<(String, String), Vec<PolicyRule>>,
    pub(super) cluster_bindings: Vec<Binding>,
    /// namespace -> RoleBindings.
    pub(super) bindings: HashMap<String, Vec<Binding>>,
}

impl Policy {
    /// A policy from stored objects (as the API serves them).
    pub fn from_objects(
        cluster_roles: &[Value],
        roles: &[Value],
        cluster_role_bindings: &[Value],
        role_bindings: &[Value],
    ) -> Self {
        let mut policy = Self::default();
        for role in cluster_roles {
            policy
                .cluster_roles
                .insert(object::name(role).to_owned(), rules_of(role));
        }
        // Aggregation: an aggregated role has the rules of the roles its
        // selectors match, which may be aggregated themselves (upstream's
        // `admin` gets `edit`, which gets `view`): iterate to a fixpoint,
        // at most once per aggregated role.
        let aggregated: Vec<(String, Vec<Selector>)> = cluster_roles
            .iter()
            .filter_map(|r| Some((object::name(r).to_owned(), aggregation_selectors(r)?)))
            .collect();
        for _ in 0..=aggregated.len() {
            let mut changed = false;
            for (name, selectors) in &aggregated {
                let mut rules: Vec<PolicyRule> = Vec::new();
                for role in cluster_roles {
                    let role_name = object::name(role);
                    if role_name == name {
                        continue;
                    }
                    let labels = object::labels(role);
                    if selectors.iter().any(|s| s.matches(&labels)) {
                        for rule in policy.cluster_roles.get(role_name).into_iter().flatten() {
                            if !rules.contains(rule) {
                                rules.push(rule.clone());
                            }
                        }
                    }
                }
                if policy.cluster_roles.get(name) != Some(&rules) {
                    policy.cluster_roles.insert(name.clone(), rules);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        for role in roles {
            policy.roles.insert(
                (
                    object::namespace(role).to_owned(),
                    object::name(role).to_owned(),
                ),
                rules_of(role),
            );
        }
        policy.cluster_bindings = cluster_role_bindings.iter().map(Binding::parse).collect();
        for binding in role_bindings.iter().map(Binding::parse) {
            policy
                .bindings
                .entry(binding.namespace.clone())
                .or_default()
                .push(binding);
        }
        policy
    }

    /// Reads every RBAC object from the registry.
    pub async fn load(registry: &Registry) -> Result<Self, ApiError> {
        let catalog = registry.catalog();
        let mut lists = Vec::with_capacity(4);
        for plural in [
            "clusterroles",
            "roles",
            "clusterrolebindings",
            "rolebindings",
        ] {
            let items = match catalog.get(GROUP, "v1", plural) {
                Some(resource) => {
                    registry
                        .list(&resource, None, &ListOptions::default())
                        .await?
                        .items
                }
                None => Vec::new(),
            };
            lists.push(items);
        }
        Ok(Self::from_objects(
            &lists[0], &lists[1], &lists[2], &lists[3],
        ))
    }

    /// The rules a role reference grants in `namespace`, if the role exists.
    pub(super) fn role_ref_rules(
        &self,
        role_ref: &RoleRef,
        namespace: &str,
    ) -> Option<&[PolicyRule]> {
        match role_ref.kind.as_str() {
            "ClusterRole" => self.cluster_roles.get(&role_ref.name).map(Vec::as_slice),
            "Role" if !namespace.is_empty() => self
                .roles
                .get(&(namespace.to_owned(), role_ref.name.clone()))
                .map(Vec::as_slice),
            _ => None,
        }
    }

    /// Calls `visit` with every binding that applies to `user` in
    /// `namespace` (cluster-wide ones first), its subject and its rules,
    /// until `visit` returns false.
    pub(super) fn visit<'a>(
        &'a self,
        user: &UserInfo,
        namespace: &str,
        mut visit: impl FnMut(&'a Binding, &'a Subject, &'a [PolicyRule]) -> bool,
    ) {
        let namespaced = if namespace.is_empty() {
            None
        } else {
            self.bindings.get(namespace)
        };
        for binding in self
            .cluster_bindings
            .iter()
            .chain(namespaced.into_iter().flatten())
        {
            if binding.namespace.is_empty() && binding.role_ref.kind != "ClusterRole" {
                continue;
            }
            let Some(subject) = binding
                .subjects
                .iter()
                .find(|s| s.applies_to(user, &binding.namespace))
            else {
                continue;
            };
            let Some(rules) = self.role_ref_rules(&binding.role_ref, &binding.namespace) else {
                continue;
            };
            if !visit(binding, subject, rules) {
                return;
            }
        }
    }

    /// Decides a request (upstream's RBAC authorizer plus the
    /// `system:masters` bypass).
    pub fn authorize(&self, user: &UserInfo, request: &Attributes) -> Decision {
        if user.in_group(SYSTEM_MASTERS) {
            return Decision::Allow(format!("the user is in the {SYSTEM_MASTERS} group"));
        }
        let mut reason = None;
        self.visit(user, &request.namespace, |binding, subject, rules| {
            if rules.iter().any(|rule| rule.allows(request)) {
                reason = Some(format!("RBAC: allowed by {}", binding.describe(subject)));
                false
            } else {
                true
            }
        });
        match reason {
            Some(reason) => Decision::Allow(reason),
            None => Decision::Deny(String::new()),
        }
    }

    /// Every rule `user` holds in `namespace` (cluster-wide ones included).
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> Vec<PolicyRule> {
        let mut out: Vec<PolicyRule> = Vec::new();
        self.visit(user, namespace, |_, _, rules| {
            for rule in rules {
                if !out.contains(rule) {
                    out.push(rule.clone());
                }
            }
            true
        });
        out
    }

    /// Refuses to let `user` grant `rules` in `namespace` that it does not
    /// hold itself (upstream's `ConfirmNoEscalation`).
    pub fn confirm_no_escalation(
        &self,
        user: &UserInfo,
        namespace: &str,
        rules: &[PolicyRule],
    ) -> Result<(), String> {
        if user.in_group(SYSTEM_MASTERS) {
            return Ok(());
        }
        let missing = uncovered(&self.rules_for(user, namespace), rules);
        if missing.is_empty() {
            return Ok(());
        }
        let groups: Vec<String> = user.groups.iter().map(|g| format!("{g:?}")).collect();
        let lines: Vec<String> = missing.iter().map(PolicyRule::compact).collect();
        Err(format!(
            "user {:?} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
            user.name,
            groups.join(" "),
            lines.join("\n")
        ))
    }
}

/// Keeps the current [`Policy`] until an RBAC object changes.
#[derive(Debug, Default)]
pub struct PolicyCache {
    /// Bumped by every change; a snapshot is valid for one generation.
    pub(super) generation: AtomicU64,
    pub(super) current: RwLock<Option<(u64, Arc<Policy>)>>,
    /// One reload at a time.
    pub(super) reload: tokio::sync::Mutex<()>,
}

impl PolicyCache {
    /// Marks the snapshot stale: the next request reads the store again.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn cached(&self, generation: u64) -> Option<Arc<Policy>> {
        let current = self
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        current
            .as_ref()
            .filter(|(g, _)| *g == generation)
            .map(|(_, p)| p.clone())
    }

    /// The policy as stored now (a cached snapshot while nothing changed).
    pub async fn current(&self, registry: &Registry) -> Result<Arc<Policy>, ApiError> {
        let generation = self.generation.load(Ordering::SeqCst);
        if let Some(policy) = self.cached(generation) {
            return Ok(policy);
        }
        let _reload = self.reload.lock().await;
        // Read the generation before loading: a change during the load
        // leaves the snapshot stale, and the next request loads again.
        let generation = self.generation.load(Ordering::SeqCst);
        if let Some(policy) = self.cached(generation) {
            return Ok(policy);
        }
        let policy = Arc::new(Policy::load(registry).await?);
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((generation, policy.clone()));
        Ok(policy)
    }
}
