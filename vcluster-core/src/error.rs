//! The one error type of the crate.
//!
//! Translation runs on data a tenant controls, so every bad input becomes a
//! value of [`Error`] that names the offending field and says why it was
//! refused; nothing in this crate panics on input.

/// Everything that can go wrong while validating or translating.
///
/// Each variant carries the rejected value and a human-readable reason, so
/// the message can go straight into a Kubernetes event or a `metav1.Status`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A name (object name, namespace, virtual cluster name, ...) that
    /// Kubernetes would not accept where it is going to be used.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// Which name this is, e.g. `"virtual namespace"`.
        what: &'static str,
        /// The rejected value.
        value: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A label key that is not a Kubernetes qualified name.
    #[error("invalid label key {key:?}: {reason}")]
    InvalidLabelKey {
        /// The rejected key.
        key: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A label value that Kubernetes would not store.
    #[error("invalid value {value:?} for label {key:?}: {reason}")]
    InvalidLabelValue {
        /// The key the value belongs to.
        key: String,
        /// The rejected value.
        value: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A virtual label key that lies in the key space this virtual cluster
    /// uses for its own bookkeeping on the host (hashed reserved keys and
    /// namespace labels). Accepting it would let a tenant forge those keys.
    #[error(
        "label key {key:?} is reserved for the bookkeeping of virtual cluster {vcluster:?} \
         and cannot be set on a virtual object"
    )]
    ReservedLabelKey {
        /// The rejected key.
        key: String,
        /// The virtual cluster whose key space it collides with.
        vcluster: String,
    },

    /// A label selector string that does not parse.
    #[error("invalid label selector {input:?} at byte {position}: {reason}")]
    InvalidSelector {
        /// The whole selector string.
        input: String,
        /// Byte offset in `input` where the problem was found.
        position: usize,
        /// What was expected or why the requirement there is invalid.
        reason: String,
    },

    /// A selector requirement whose operator and values do not fit together.
    #[error("invalid selector requirement on key {key:?} with operator {operator:?}: {reason}")]
    InvalidRequirement {
        /// The requirement's label key.
        key: String,
        /// The operator as written (e.g. `"In"`, `"notin"`, `"Gt"`).
        operator: String,
        /// Why the requirement was rejected.
        reason: String,
    },

    /// Translating a particular object failed; `error` says why.
    #[error("cannot translate {object}: {error}")]
    Object {
        /// The object, as `<group/version, Kind=kind> <namespace/name>`.
        object: String,
        /// The underlying failure.
        error: Box<Error>,
    },
}

/// Shorthand for results whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
