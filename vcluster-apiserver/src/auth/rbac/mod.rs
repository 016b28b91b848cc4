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

mod bindings;
mod escalation;
mod policy;
mod rules;
#[cfg(test)]
mod tests;

use bindings::*;

pub(crate) use escalation::admission;
pub use escalation::{forbidden, forbidden_on};
pub use policy::{Decision, Policy, PolicyCache};
pub use rules::{covers, uncovered, PolicyRule};

/// The RBAC API group.
pub const GROUP: &str = "rbac.authorization.k8s.io";
/// `*`: every verb, group, resource or URL.
const ALL: &str = "*";
