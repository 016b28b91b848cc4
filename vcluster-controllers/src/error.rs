//! Errors of the controllers: every failure names the verb, the kind and
//! the object it was about, so a log line is enough to find the cause.

/// A reconcile failure. The controller that hit it retries the object with
/// backoff (conflicts quickly: they only mean someone wrote first).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the virtual API server failed.
    #[error("{verb} {kind} {key}: {source}")]
    Api {
        /// What was attempted (`get`, `create`, `patch status`, ...).
        verb: &'static str,
        /// The kind of object it was about.
        kind: &'static str,
        /// `namespace/name` (or `name` for cluster-scoped objects).
        key: String,
        /// The client's error.
        #[source]
        source: Box<kube::Error>,
    },
    /// The object's spec cannot be acted on (a selector that does not
    /// parse, a percentage that is not one). Retrying does not help; the
    /// object is reconciled again when it changes.
    #[error("{kind} {key}: {message}")]
    InvalidSpec {
        /// The kind of object.
        kind: &'static str,
        /// `namespace/name`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// An object came back from the API server without a field every
    /// stored object has (a name, a namespace, a uid).
    #[error("{kind} {key}: the API server returned it without {field}")]
    MissingField {
        /// The kind of object.
        kind: &'static str,
        /// What is known of its identity.
        key: String,
        /// The missing field.
        field: &'static str,
    },
}

impl Error {
    /// Whether this is a 409 Conflict (someone else wrote first): retried
    /// at once rather than backed off.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Api { source, .. } if is_status(source, 409))
    }

    /// Whether retrying can help (a spec error needs a new spec).
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Error::InvalidSpec { .. })
    }
}

/// The controllers' result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether `err` is an API error with HTTP status `code`.
pub(crate) fn is_status(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == code)
}

/// Attaches the verb, kind and object to a client error.
pub(crate) trait ApiContext<T> {
    /// Wraps the error in [`Error::Api`].
    fn context(self, verb: &'static str, kind: &'static str, key: &str) -> Result<T>;
}

impl<T> ApiContext<T> for std::result::Result<T, kube::Error> {
    fn context(self, verb: &'static str, kind: &'static str, key: &str) -> Result<T> {
        self.map_err(|source| Error::Api {
            verb,
            kind,
            key: key.to_owned(),
            source: Box::new(source),
        })
    }
}

/// Turns a 404 into `Ok(None)`: deleting or patching something already
/// gone is not a failure for a controller.
pub(crate) fn ignore_not_found<T>(
    result: std::result::Result<T, kube::Error>,
) -> std::result::Result<Option<T>, kube::Error> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(err) if is_status(&err, 404) => Ok(None),
        Err(err) => Err(err),
    }
}
