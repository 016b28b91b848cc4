//! Role-based access control (`rbac.authorization.k8s.io/v1`), with
//! upstream's semantics:
//!
//! - **Rules** ([`PolicyRule`]): verbs × API groups × resources (`*`,
//!   `pods`, `pods/status`, `*/status`) × optional resource names, or
//!   verbs × non-resource URLs (`/healthz`, `/apis/*`).
//! - **Resolution** ([`Policy`]): a request in namespace `ns` is allowed
//!   when a ClusterRoleBinding, or a RoleBinding in `ns`, binds a subject
//!   that is the user (User by name, Group by membership, ServiceAccount
//!   by `system:serviceaccount:<ns>:<name>`) to a Role or ClusterRole
//!   with a rule that allows it. ClusterRoles with an `aggregationRule`
//!   have the rules of every ClusterRole their selectors match.
//!   `system:masters` is allowed everything.
//! - **Escalation prevention** ([`admission`]): a Role or ClusterRole may
//!   only be written with rules its writer holds (or with the `escalate`
//!   verb on it), a binding only to a role whose rules the writer holds
//!   (or with the `bind` verb on it); an `aggregationRule` needs full
//!   authority.
//!
//! The policy is read from the store into an immutable [`Policy`] snapshot
//! that [`PolicyCache`] keeps until an RBAC object changes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use vcluster_core::selector::Selector;

use super::{Attributes, UserInfo, SYSTEM_MASTERS};
use crate::error::{ApiError, FieldCause};
use crate::object;
use crate::registry::{Admission, ListOptions, Registry};
use crate::resources::ResourceInfo;

/// The RBAC API group.
pub const GROUP: &str = "rbac.authorization.k8s.io";
/// `*`: every verb, group, resource or URL.
const ALL: &str = "*";

/// One rule of a Role or ClusterRole.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    /// Verbs (`get`, `list`, ..., `*`).
    #[serde(default)]
    pub verbs: Vec<String>,
    /// API groups (`""` is the core group, `*` all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    /// Resources (`pods`, `pods/status`, `*/status`, `*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Object names; empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
    /// Non-resource paths (`/healthz`, `/apis/*`); only in ClusterRoles.
    #[serde(
        default,
        rename = "nonResourceURLs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub non_resource_urls: Vec<String>,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn has(set: &[String], item: &str) -> bool {
    set.iter().any(|s| s == item)
}

impl PolicyRule {
    /// A resource rule.
    pub fn resources(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Self {
        Self {
            verbs: strings(verbs),
            api_groups: strings(groups),
            resources: strings(resources),
            ..Self::default()
        }
    }

    /// A non-resource rule.
    pub fn urls(verbs: &[&str], urls: &[&str]) -> Self {
        Self {
            verbs: strings(verbs),
            non_resource_urls: strings(urls),
            ..Self::default()
        }
    }

    /// The same rule limited to `names`.
    pub fn named(mut self, names: &[&str]) -> Self {
        self.resource_names = strings(names);
        self
    }

    /// Whether this rule allows the request (upstream's `RuleAllows`).
    pub fn allows(&self, request: &Attributes) -> bool {
        if !(has(&self.verbs, ALL) || has(&self.verbs, &request.verb)) {
            return false;
        }
        if !request.resource_request {
            return self
                .non_resource_urls
                .iter()
                .any(|url| url_matches(url, &request.path));
        }
        (has(&self.api_groups, ALL) || has(&self.api_groups, &request.api_group))
            && self.resource_matches(&request.combined_resource(), &request.subresource)
            && (self.resource_names.is_empty() || has(&self.resource_names, &request.name))
    }

    fn resource_matches(&self, combined: &str, subresource: &str) -> bool {
        self.resources.iter().any(|rule| {
            rule == ALL
                || rule == combined
                || (!subresource.is_empty()
                    && rule.len() == subresource.len() + 2
                    && rule.starts_with("*/")
                    && rule.ends_with(subresource))
        })
    }

    /// Splits into rules of one verb and one group/resource/name or URL
    /// (upstream's `BreakdownRule`).
    fn breakdown(&self) -> Vec<PolicyRule> {
        let mut out = Vec::new();
        for group in &self.api_groups {
            for resource in &self.resources {
                for verb in &self.verbs {
                    let simple = PolicyRule {
                        verbs: vec![verb.clone()],
                        api_groups: vec![group.clone()],
                        resources: vec![resource.clone()],
                        ..PolicyRule::default()
                    };
                    if self.resource_names.is_empty() {
                        out.push(simple);
                    } else {
                        for name in &self.resource_names {
                            out.push(PolicyRule {
                                resource_names: vec![name.clone()],
                                ..simple.clone()
                            });
                        }
                    }
                }
            }
        }
        for url in &self.non_resource_urls {
            for verb in &self.verbs {
                out.push(PolicyRule::urls(&[verb], &[url]));
            }
        }
        out
    }

    /// Whether this rule grants everything `sub` does (upstream's `ruleCovers`).
    fn covers(&self, sub: &PolicyRule) -> bool {
        let all_in = |set: &[String], items: &[String]| items.iter().all(|i| has(set, i));
        let verbs = has(&self.verbs, ALL) || all_in(&self.verbs, &sub.verbs);
        let groups = has(&self.api_groups, ALL) || all_in(&self.api_groups, &sub.api_groups);
        let resources = has(&self.resources, ALL)
            || sub.resources.iter().all(|path| {
                has(&self.resources, path)
                    || path
                        .split_once('/')
                        .is_some_and(|(_, sub)| has(&self.resources, &format!("*/{sub}")))
            });
        let urls = sub.non_resource_urls.iter().all(|sub_url| {
            self.non_resource_urls
                .iter()
                .any(|owner| url_covers(owner, sub_url))
        });
        // Names do not apply to URLs (`allows` ignores them there too).
        let names = !sub.non_resource_urls.is_empty()
            || self.resource_names.is_empty()
            || (!sub.resource_names.is_empty()
                && all_in(&self.resource_names, &sub.resource_names));
        verbs && groups && resources && urls && names
    }

    /// Upstream's compact form (`{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}`).
    pub fn compact(&self) -> String {
        let list = |items: &[String]| {
            let quoted: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
            format!("[{}]", quoted.join(", "))
        };
        let mut parts = Vec::new();
        if !self.api_groups.is_empty() {
            parts.push(format!("APIGroups:{}", list(&self.api_groups)));
        }
        if !self.resources.is_empty() {
            parts.push(format!("Resources:{}", list(&self.resources)));
        }
        if !self.resource_names.is_empty() {
            parts.push(format!("ResourceNames:{}", list(&self.resource_names)));
        }
        if !self.non_resource_urls.is_empty() {
            parts.push(format!("NonResourceURLs:{}", list(&self.non_resource_urls)));
        }
        parts.push(format!("Verbs:{}", list(&self.verbs)));
        format!("{{{}}}", parts.join(", "))
    }
}

/// A non-resource rule URL against a request path: exact, `*`, or a
/// prefix ending in `*`.
fn url_matches(rule: &str, path: &str) -> bool {
    rule == ALL
        || rule == path
        || rule
            .strip_suffix('*')
            .is_some_and(|prefix| path.starts_with(prefix))
}

/// Whether an owner's URL grants everything a sub-rule's URL does.
fn url_covers(owner: &str, sub: &str) -> bool {
    owner == sub
        || owner
            .strip_suffix('*')
            .is_some_and(|prefix| sub.starts_with(prefix.trim_end_matches('*')))
}

/// The parts of `servant` that `owner` does not grant, compacted (verbs
/// of the same group/resource/name merged); empty when covered.
pub fn uncovered(owner: &[PolicyRule], servant: &[PolicyRule]) -> Vec<PolicyRule> {
    /// Groups, resources, names, URLs: what missing verbs are merged by.
    type Target = (Vec<String>, Vec<String>, Vec<String>, Vec<String>);
    let mut missing: BTreeMap<Target, BTreeSet<String>> = BTreeMap::new();
    for rule in servant {
        for simple in rule.breakdown() {
            if !owner.iter().any(|o| o.covers(&simple)) {
                let PolicyRule {
                    verbs,
                    api_groups,
                    resources,
                    resource_names,
                    non_resource_urls,
                } = simple;
                missing
                    .entry((api_groups, resources, resource_names, non_resource_urls))
                    .or_default()
                    .extend(verbs);
            }
        }
    }
    missing
        .into_iter()
        .map(
            |((api_groups, resources, resource_names, non_resource_urls), verbs)| PolicyRule {
                verbs: verbs.into_iter().collect(),
                api_groups,
                resources,
                resource_names,
                non_resource_urls,
            },
        )
        .collect()
}

/// Whether `owner` grants everything `servant` does.
pub fn covers(owner: &[PolicyRule], servant: &[PolicyRule]) -> bool {
    uncovered(owner, servant).is_empty()
}

/// A subject of a binding.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subject {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
}

impl Subject {
    fn applies_to(&self, user: &UserInfo, binding_namespace: &str) -> bool {
        match self.kind.as_str() {
            "User" => user.name == self.name,
            "Group" => user.in_group(&self.name),
            "ServiceAccount" => {
                let namespace = if self.namespace.is_empty() {
                    binding_namespace
                } else {
                    &self.namespace
                };
                !namespace.is_empty()
                    && user.name == format!("system:serviceaccount:{namespace}:{}", self.name)
            }
            _ => false,
        }
    }

    fn describe(&self, binding_namespace: &str) -> String {
        match self.kind.as_str() {
            "ServiceAccount" => {
                let namespace = if self.namespace.is_empty() {
                    binding_namespace
                } else {
                    &self.namespace
                };
                format!("ServiceAccount \"{}/{namespace}\"", self.name)
            }
            kind => format!("{kind} {:?}", self.name),
        }
    }
}

/// The role a binding grants.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleRef {
    #[serde(default)]
    api_group: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
}

#[derive(Clone, Debug)]
struct Binding {
    name: String,
    /// Empty for ClusterRoleBindings.
    namespace: String,
    role_ref: RoleRef,
    subjects: Vec<Subject>,
}

impl Binding {
    fn parse(object: &Value) -> Self {
        Self {
            name: object::name(object).to_owned(),
            namespace: object::namespace(object).to_owned(),
            role_ref: object
                .get("roleRef")
                .cloned()
                .and_then(|r| serde_json::from_value(r).ok())
                .unwrap_or_default(),
            subjects: object
                .get("subjects")
                .cloned()
                .and_then(|s| serde_json::from_value(s).ok())
                .unwrap_or_default(),
        }
    }

    /// `ClusterRoleBinding "x" of ClusterRole "y" to Group "z"`.
    fn describe(&self, subject: &Subject) -> String {
        let binding = if self.namespace.is_empty() {
            format!("ClusterRoleBinding {:?}", self.name)
        } else {
            format!("RoleBinding \"{}/{}\"", self.name, self.namespace)
        };
        format!(
            "{binding} of {} {:?} to {}",
            self.role_ref.kind,
            self.role_ref.name,
            subject.describe(&self.namespace)
        )
    }
}

fn rules_of(object: &Value) -> Vec<PolicyRule> {
    object
        .get("rules")
        .cloned()
        .and_then(|r| serde_json::from_value(r).ok())
        .unwrap_or_default()
}

/// The selectors of a ClusterRole's `aggregationRule`, if it has one.
fn aggregation_selectors(object: &Value) -> Option<Vec<Selector>> {
    let selectors = object.pointer("/aggregationRule/clusterRoleSelectors")?;
    let selectors: Vec<LabelSelector> = serde_json::from_value(selectors.clone()).ok()?;
    Some(
        selectors
            .iter()
            .filter_map(|s| Selector::from_label_selector(s).ok())
            .collect(),
    )
}

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
    cluster_roles: HashMap<String, Vec<PolicyRule>>,
    /// (namespace, Role name) -> rules.
    roles: HashMap<(String, String), Vec<PolicyRule>>,
    cluster_bindings: Vec<Binding>,
    /// namespace -> RoleBindings.
    bindings: HashMap<String, Vec<Binding>>,
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
    fn role_ref_rules(&self, role_ref: &RoleRef, namespace: &str) -> Option<&[PolicyRule]> {
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
    fn visit<'a>(
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
    generation: AtomicU64,
    current: RwLock<Option<(u64, Arc<Policy>)>>,
    /// One reload at a time.
    reload: tokio::sync::Mutex<()>,
}

impl PolicyCache {
    /// Marks the snapshot stale: the next request reads the store again.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn cached(&self, generation: u64) -> Option<Arc<Policy>> {
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

/// `pods` or `deployments.apps`.
fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}.{group}")
    }
}

/// The 403 of a denied request, worded as upstream's, and logged.
pub fn forbidden(user: &UserInfo, request: &Attributes, reason: &str) -> ApiError {
    tracing::info!(
        user = %user.name,
        groups = ?user.groups,
        verb = %request.verb,
        api_group = %request.api_group,
        resource = %request.combined_resource(),
        namespace = %request.namespace,
        name = %request.name,
        path = %request.path,
        "request forbidden"
    );
    let mut what = if !request.resource_request {
        format!(
            "User {:?} cannot {} path {:?}",
            user.name, request.verb, request.path
        )
    } else if request.namespace.is_empty() {
        format!(
            "User {:?} cannot {} resource {:?} in API group {:?} at the cluster scope",
            user.name,
            request.verb,
            request.combined_resource(),
            request.api_group
        )
    } else {
        format!(
            "User {:?} cannot {} resource {:?} in API group {:?} in the namespace {:?}",
            user.name,
            request.verb,
            request.combined_resource(),
            request.api_group,
            request.namespace
        )
    };
    if !reason.is_empty() {
        what = format!("{what}: {reason}");
    }
    if !request.resource_request {
        return ApiError::forbidden(format!("forbidden: {what}"));
    }
    forbidden_on(&request.api_group, &request.resource, &request.name, &what)
}

/// `<resource> "<name>" is forbidden: <why>`, with the object as details.
pub fn forbidden_on(group: &str, resource: &str, name: &str, why: &str) -> ApiError {
    let resource_name = qualified(group, resource);
    let message = if name.is_empty() {
        format!("{resource_name} is forbidden: {why}")
    } else {
        format!("{resource_name} {name:?} is forbidden: {why}")
    };
    ApiError::forbidden(message).with_target(group, resource, name)
}

/// The admission check of writes to RBAC objects: validation (always) and
/// escalation prevention (when `policy` is given, i.e. the request was
/// authorized by it).
pub(crate) fn admission(policy: Option<Arc<Policy>>, user: UserInfo) -> Admission {
    Admission::new(move |resource, object, old| {
        admit(policy.as_deref(), &user, resource, object, old)
    })
}

fn admit(
    policy: Option<&Policy>,
    user: &UserInfo,
    resource: &ResourceInfo,
    object: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    if resource.group != GROUP {
        return Ok(());
    }
    let name = object::name(object);
    let namespace = object::namespace(object);
    match resource.plural.as_str() {
        "roles" | "clusterroles" => {
            let cluster = resource.plural == "clusterroles";
            let rules = parse_rules(resource, object, cluster)?;
            let Some(policy) = policy else {
                return Ok(());
            };
            let aggregated = cluster && object.get("aggregationRule").is_some_and(|a| !a.is_null());
            if aggregated {
                let full = [
                    PolicyRule::resources(&[ALL], &[ALL], &[ALL]),
                    PolicyRule::urls(&[ALL], &[ALL]),
                ];
                if policy.confirm_no_escalation(user, "", &full).is_err() {
                    return Err(forbidden_on(
                        GROUP,
                        &resource.plural,
                        name,
                        "must have cluster-admin privileges to use the aggregationRule",
                    ));
                }
            }
            let escalate =
                Attributes::resource("escalate", GROUP, &resource.plural, namespace, name);
            if policy.authorize(user, &escalate).allowed() {
                return Ok(());
            }
            policy
                .confirm_no_escalation(user, namespace, &rules)
                .map_err(|why| forbidden_on(GROUP, &resource.plural, name, &why))
        }
        "rolebindings" | "clusterrolebindings" => {
            let cluster = resource.plural == "clusterrolebindings";
            let role_ref = parse_binding(resource, object, cluster)?;
            if let Some(old) = old {
                if old.get("roleRef") != object.get("roleRef") {
                    return Err(ApiError::invalid(
                        &resource.kind,
                        name,
                        vec![FieldCause::invalid(
                            "roleRef",
                            &object
                                .get("roleRef")
                                .map(Value::to_string)
                                .unwrap_or_default(),
                            "cannot change roleRef",
                        )],
                    ));
                }
            }
            let Some(policy) = policy else {
                return Ok(());
            };
            let role_resource = if role_ref.kind == "Role" {
                "roles"
            } else {
                "clusterroles"
            };
            let bind =
                Attributes::resource("bind", GROUP, role_resource, namespace, &role_ref.name);
            if policy.authorize(user, &bind).allowed() {
                return Ok(());
            }
            let rules = policy
                .role_ref_rules(&role_ref, namespace)
                .ok_or_else(|| ApiError::not_found(GROUP, role_resource, &role_ref.name))?;
            policy
                .confirm_no_escalation(user, namespace, rules)
                .map_err(|why| forbidden_on(GROUP, &resource.plural, name, &why))
        }
        _ => Ok(()),
    }
}

/// The rules of a Role or ClusterRole, validated as upstream does.
fn parse_rules(
    resource: &ResourceInfo,
    object: &Value,
    cluster: bool,
) -> Result<Vec<PolicyRule>, ApiError> {
    let rules = rules_of(object);
    let mut causes = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let field = |f: &str| format!("rules[{i}].{f}");
        if rule.verbs.is_empty() {
            causes.push(FieldCause::required(field("verbs")));
        }
        if !rule.non_resource_urls.is_empty() {
            if !cluster {
                causes.push(FieldCause::invalid(
                    field("nonResourceURLs"),
                    &rule.non_resource_urls.join(","),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if !rule.api_groups.is_empty() || !rule.resources.is_empty() {
                causes.push(FieldCause::invalid(
                    field("nonResourceURLs"),
                    &rule.non_resource_urls.join(","),
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if rule.api_groups.is_empty() {
            causes.push(FieldCause::required(field("apiGroups")));
        }
        if rule.resources.is_empty() {
            causes.push(FieldCause::required(field("resources")));
        }
    }
    if causes.is_empty() {
        Ok(rules)
    } else {
        Err(ApiError::invalid(
            &resource.kind,
            object::name(object),
            causes,
        ))
    }
}

/// The role reference of a binding, with its subjects validated.
fn parse_binding(
    resource: &ResourceInfo,
    object: &Value,
    cluster: bool,
) -> Result<RoleRef, ApiError> {
    let binding = Binding::parse(object);
    let mut causes = Vec::new();
    let role_ref = &binding.role_ref;
    let kinds: &[&str] = if cluster {
        &["ClusterRole"]
    } else {
        &["Role", "ClusterRole"]
    };
    if !kinds.contains(&role_ref.kind.as_str()) {
        causes.push(FieldCause::not_supported(
            "roleRef.kind",
            &role_ref.kind,
            kinds,
        ));
    }
    if role_ref.api_group != GROUP {
        causes.push(FieldCause::not_supported(
            "roleRef.apiGroup",
            &role_ref.api_group,
            &[GROUP],
        ));
    }
    if role_ref.name.is_empty() {
        causes.push(FieldCause::required("roleRef.name"));
    }
    let subjects = object
        .get("subjects")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, subject) in subjects.iter().enumerate() {
        let field = |f: &str| format!("subjects[{i}].{f}");
        let kind = object::path_str(subject, "kind");
        let group = object::path_str(subject, "apiGroup");
        if object::path_str(subject, "name").is_empty() {
            causes.push(FieldCause::required(field("name")));
        }
        match kind {
            "ServiceAccount" => {
                if !group.is_empty() {
                    causes.push(FieldCause::not_supported(field("apiGroup"), group, &[""]));
                }
                if cluster && object::path_str(subject, "namespace").is_empty() {
                    causes.push(FieldCause::required(field("namespace")));
                }
            }
            "User" | "Group" => {
                if group != GROUP {
                    causes.push(FieldCause::not_supported(
                        field("apiGroup"),
                        group,
                        &[GROUP],
                    ));
                }
            }
            other => causes.push(FieldCause::not_supported(
                field("kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
    if causes.is_empty() {
        Ok(binding.role_ref)
    } else {
        Err(ApiError::invalid(
            &resource.kind,
            object::name(object),
            causes,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn alice() -> UserInfo {
        UserInfo::new("alice", &["team"])
    }

    fn pods(verb: &str, namespace: &str) -> Attributes {
        Attributes::resource(verb, "", "pods", namespace, "")
    }

    #[test]
    fn rules_match_verbs_groups_resources_and_names() {
        let rule = PolicyRule::resources(&["get", "list"], &[""], &["pods"]);
        assert!(rule.allows(&pods("list", "team")));
        assert!(!rule.allows(&pods("create", "team")));
        assert!(!rule.allows(&Attributes::resource("list", "apps", "pods", "team", "")));
        assert!(!rule.allows(&Attributes::resource("get", "", "pods/status", "team", "p")));
        let named = PolicyRule::resources(&["get"], &[""], &["configmaps"]).named(&["settings"]);
        assert!(named.allows(&Attributes::resource(
            "get",
            "",
            "configmaps",
            "t",
            "settings"
        )));
        assert!(!named.allows(&Attributes::resource("get", "", "configmaps", "t", "other")));
        assert!(!named.allows(&Attributes::resource("get", "", "configmaps", "t", "")));
        let status = PolicyRule::resources(&["update"], &["*"], &["*/status"]);
        assert!(status.allows(&Attributes::resource(
            "update",
            "apps",
            "deployments/status",
            "t",
            "d"
        )));
        assert!(!status.allows(&Attributes::resource(
            "update",
            "apps",
            "deployments",
            "t",
            "d"
        )));
        let urls = PolicyRule::urls(&["get"], &["/apis/*", "/healthz"]);
        assert!(urls.allows(&Attributes::non_resource("get", "/apis/apps/v1")));
        assert!(urls.allows(&Attributes::non_resource("get", "/healthz")));
        assert!(!urls.allows(&Attributes::non_resource("get", "/healthz/x")));
        assert!(!urls.allows(&Attributes::non_resource("post", "/apis")));
        assert!(!urls.allows(&pods("get", "")));
    }

    fn policy() -> Policy {
        Policy::from_objects(
            &[
                json!({"metadata": {"name": "view", "labels": {"agg": "admin"}}, "rules": [
                    {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods"]}]}),
                json!({"metadata": {"name": "edit-extra", "labels": {"agg": "admin"}}, "rules": [
                    {"verbs": ["create"], "apiGroups": [""], "resources": ["pods"]}]}),
                json!({"metadata": {"name": "admin"}, "aggregationRule": {"clusterRoleSelectors": [
                    {"matchLabels": {"agg": "admin"}}]}}),
                json!({"metadata": {"name": "nodes-reader"}, "rules": [
                    {"verbs": ["list"], "apiGroups": [""], "resources": ["nodes"]}]}),
            ],
            &[
                json!({"metadata": {"name": "cm", "namespace": "team"}, "rules": [
                {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"]}]}),
            ],
            &[
                json!({"metadata": {"name": "nodes"}, "roleRef": {"kind": "ClusterRole", "name": "nodes-reader", "apiGroup": GROUP},
                "subjects": [{"kind": "Group", "name": "team", "apiGroup": GROUP}]}),
            ],
            &[
                json!({"metadata": {"name": "alice-view", "namespace": "team"}, "roleRef": {"kind": "ClusterRole", "name": "view", "apiGroup": GROUP},
                    "subjects": [{"kind": "User", "name": "alice", "apiGroup": GROUP}]}),
                json!({"metadata": {"name": "cm", "namespace": "team"}, "roleRef": {"kind": "Role", "name": "cm", "apiGroup": GROUP},
                    "subjects": [{"kind": "ServiceAccount", "name": "builder"}]}),
                json!({"metadata": {"name": "bob-admin", "namespace": "ops"}, "roleRef": {"kind": "ClusterRole", "name": "admin", "apiGroup": GROUP},
                    "subjects": [{"kind": "User", "name": "bob", "apiGroup": GROUP}]}),
            ],
        )
    }

    #[test]
    fn bindings_grant_in_their_namespace_only() {
        let policy = policy();
        let allowed = policy.authorize(&alice(), &pods("list", "team"));
        assert_eq!(
            allowed,
            Decision::Allow(
                "RBAC: allowed by RoleBinding \"alice-view/team\" of ClusterRole \"view\" to User \"alice\"".into()
            )
        );
        assert!(!policy
            .authorize(&alice(), &pods("list", "default"))
            .allowed());
        assert!(!policy.authorize(&alice(), &pods("list", "")).allowed());
        assert!(!policy
            .authorize(&alice(), &pods("create", "team"))
            .allowed());
        // Cluster-wide through the group.
        let nodes = Attributes::resource("list", "", "nodes", "", "");
        assert!(policy.authorize(&alice(), &nodes).allowed());
        // Service accounts, namespace defaulted from the binding.
        let builder = UserInfo::new("system:serviceaccount:team:builder", &[]);
        let cm = Attributes::resource("get", "", "configmaps", "team", "x");
        assert!(policy.authorize(&builder, &cm).allowed());
        let other = UserInfo::new("system:serviceaccount:ops:builder", &[]);
        assert!(!policy.authorize(&other, &cm).allowed());
        // Masters bypass.
        let admin = UserInfo::new("root", &[SYSTEM_MASTERS]);
        assert!(policy.authorize(&admin, &pods("delete", "x")).allowed());
    }

    #[test]
    fn aggregated_roles_collect_matching_rules() {
        let policy = policy();
        let bob = UserInfo::new("bob", &[]);
        assert!(policy.authorize(&bob, &pods("create", "ops")).allowed());
        assert!(policy.authorize(&bob, &pods("watch", "ops")).allowed());
        assert!(!policy.authorize(&bob, &pods("delete", "ops")).allowed());
    }

    #[test]
    fn escalation_lists_what_is_missing() {
        let policy = policy();
        let grant = [PolicyRule::resources(
            &["get", "list"],
            &[""],
            &["pods", "secrets"],
        )];
        let err = policy
            .confirm_no_escalation(&alice(), "team", &grant)
            .expect_err("secrets are not held");
        assert!(err.starts_with(
            "user \"alice\" (groups=[\"team\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n"
        ), "{err}");
        assert!(
            err.ends_with("{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\", \"list\"]}"),
            "{err}"
        );
        let subset = [PolicyRule::resources(&["get"], &[""], &["pods"])];
        assert!(policy
            .confirm_no_escalation(&alice(), "team", &subset)
            .is_ok());
        assert!(policy
            .confirm_no_escalation(&alice(), "default", &subset)
            .is_err());
    }

    #[test]
    fn covering_follows_upstream() {
        let owner = [
            PolicyRule::resources(&["*"], &[""], &["*/status", "pods"]),
            PolicyRule::urls(&["get"], &["/apis/*"]),
        ];
        assert!(covers(
            &owner,
            &[PolicyRule::resources(&["get"], &[""], &["services/status"])]
        ));
        assert!(covers(
            &owner,
            &[PolicyRule::resources(&["*"], &[""], &["pods"]).named(&["a"])]
        ));
        assert!(!covers(
            &owner,
            &[PolicyRule::resources(&["get"], &[""], &["*"])]
        ));
        assert!(!covers(
            &owner,
            &[PolicyRule::resources(&["get"], &["*"], &["pods"])]
        ));
        assert!(covers(
            &owner,
            &[PolicyRule::urls(&["get"], &["/apis/apps*"])]
        ));
        assert!(!covers(&owner, &[PolicyRule::urls(&["get"], &["/api"])]));
        let named_owner = [PolicyRule::resources(&["get"], &[""], &["pods"]).named(&["a"])];
        assert!(!covers(
            &named_owner,
            &[PolicyRule::resources(&["get"], &[""], &["pods"])]
        ));
    }

    #[test]
    fn forbidden_messages_read_like_upstream() {
        let err = forbidden(&alice(), &pods("list", "default"), "");
        assert_eq!(err.code.as_u16(), 403);
        assert_eq!(
            err.message,
            "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        );
        let nodes = Attributes::resource("get", "", "nodes", "", "n1");
        assert_eq!(
            forbidden(&alice(), &nodes, "").message,
            "nodes \"n1\" is forbidden: User \"alice\" cannot get resource \"nodes\" in API group \"\" at the cluster scope"
        );
        let path = Attributes::non_resource("get", "/metrics");
        assert_eq!(
            forbidden(&alice(), &path, "").message,
            "forbidden: User \"alice\" cannot get path \"/metrics\""
        );
        let deploy = Attributes::resource("update", "apps", "deployments/scale", "t", "web");
        assert_eq!(
            forbidden(&alice(), &deploy, "").message,
            "deployments.apps \"web\" is forbidden: User \"alice\" cannot update resource \"deployments/scale\" in API group \"apps\" in the namespace \"t\""
        );
    }

    #[test]
    fn admission_validates_and_prevents_escalation() {
        let policy = policy();
        let catalog = crate::resources::Catalog::builtin();
        let roles = catalog.get(GROUP, "v1", "roles").expect("roles");
        let bindings = catalog
            .get(GROUP, "v1", "rolebindings")
            .expect("rolebindings");
        let role =
            |rules: Value| json!({"metadata": {"name": "r", "namespace": "team"}, "rules": rules});
        let ok = role(json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]));
        assert!(admit(Some(&policy), &alice(), &roles, &ok, None).is_ok());
        let escalating =
            role(json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}]));
        let err = admit(Some(&policy), &alice(), &roles, &escalating, None).expect_err("escalates");
        assert_eq!(err.code.as_u16(), 403);
        assert!(
            err.message
                .starts_with("roles.rbac.authorization.k8s.io \"r\" is forbidden: user \"alice\""),
            "{}",
            err.message
        );
        // Without enforcement only validation applies.
        assert!(admit(None, &alice(), &roles, &escalating, None).is_ok());
        let invalid = role(json!([{"verbs": [], "apiGroups": [""], "resources": ["pods"]}]));
        assert_eq!(
            admit(None, &alice(), &roles, &invalid, None).map_err(|e| e.code.as_u16()),
            Err(422)
        );
        let binding = |role: &str| {
            json!({"metadata": {"name": "b", "namespace": "team"},
            "roleRef": {"kind": "ClusterRole", "name": role, "apiGroup": GROUP},
            "subjects": [{"kind": "User", "name": "carol", "apiGroup": GROUP}]})
        };
        assert!(admit(Some(&policy), &alice(), &bindings, &binding("view"), None).is_ok());
        let err =
            admit(Some(&policy), &alice(), &bindings, &binding("admin"), None).expect_err("admin");
        assert_eq!(err.code.as_u16(), 403);
        let missing =
            admit(Some(&policy), &alice(), &bindings, &binding("nope"), None).expect_err("missing");
        assert_eq!(missing.code.as_u16(), 404);
        let changed = admit(
            None,
            &alice(),
            &bindings,
            &binding("view"),
            Some(&binding("admin")),
        );
        assert_eq!(changed.map_err(|e| e.code.as_u16()), Err(422));
    }

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("*".to_owned()),
            Just("".to_owned()),
            "[a-c]{1,2}",
            "[a-c]{1,2}/[a-c]{1,2}",
            Just("*/a".to_owned()),
            Just("/a*".to_owned()),
            Just("/a/b".to_owned()),
        ]
    }

    fn verb() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("*".to_owned()),
            Just("get".to_owned()),
            Just("list".to_owned()),
            Just("create".to_owned()),
            Just("delete".to_owned()),
        ]
    }

    fn rule() -> impl Strategy<Value = PolicyRule> {
        (
            prop::collection::vec(verb(), 0..3),
            prop::collection::vec(word(), 0..3),
            prop::collection::vec(word(), 0..3),
            prop::collection::vec(word(), 0..2),
            prop::collection::vec(word(), 0..2),
        )
            .prop_map(
                |(verbs, api_groups, resources, resource_names, non_resource_urls)| PolicyRule {
                    verbs,
                    api_groups,
                    resources,
                    resource_names,
                    non_resource_urls,
                },
            )
    }

    fn request() -> impl Strategy<Value = Attributes> {
        (
            prop_oneof![
                Just("get"),
                Just("list"),
                Just("create"),
                Just("delete"),
                Just("patch")
            ],
            any::<bool>(),
            word(),
            "[a-c]{1,2}",
            prop_oneof![Just(String::new()), "[a-c]{1,2}"],
            prop_oneof![Just(String::new()), "[a-c]{1,2}"],
            prop_oneof![
                Just("/a".to_owned()),
                Just("/a/b".to_owned()),
                Just("/b".to_owned())
            ],
        )
            .prop_map(
                |(verb, resource_request, group, resource, sub, name, path)| Attributes {
                    verb: verb.to_owned(),
                    resource_request,
                    api_group: group,
                    resource,
                    subresource: sub,
                    name,
                    path,
                    ..Attributes::default()
                },
            )
    }

    proptest! {
        /// A rule set never grants a verb none of its rules lists.
        #[test]
        fn rules_never_grant_unlisted_verbs(rules in prop::collection::vec(rule(), 0..4), request in request()) {
            if rules.iter().any(|r| r.allows(&request)) {
                prop_assert!(rules.iter().any(|r| r.verbs.iter().any(|v| v == "*" || *v == request.verb)));
            }
        }

        /// What a covered rule set allows, its owner allows too: escalation
        /// checks never let a role grant more than its writer holds.
        #[test]
        fn covered_rules_allow_nothing_more(
            owner in prop::collection::vec(rule(), 0..4),
            servant in prop::collection::vec(rule(), 0..3),
            request in request(),
        ) {
            if covers(&owner, &servant) && servant.iter().any(|r| r.allows(&request)) {
                prop_assert!(owner.iter().any(|r| r.allows(&request)), "owner {owner:?} servant {servant:?}");
            }
        }

        /// Every rule set covers itself.
        #[test]
        fn rules_cover_themselves(rules in prop::collection::vec(rule(), 0..4)) {
            prop_assert!(covers(&rules, &rules));
        }
    }
}
