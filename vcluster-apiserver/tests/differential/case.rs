//! What a case is: one named HTTP request, sent in turn to both servers as
//! a step of a scenario (a sequence sharing one namespace, so a case can
//! read what an earlier one created).

use http::Method;

/// `application/json` (what clients send and ask for by default).
pub const JSON: &str = "application/json";
/// Strategic merge patch.
pub const STRATEGIC: &str = "application/strategic-merge-patch+json";
/// JSON merge patch (RFC 7386).
pub const MERGE: &str = "application/merge-patch+json";
/// JSON patch (RFC 6902).
pub const JSON_PATCH: &str = "application/json-patch+json";
/// Server-side apply.
pub const APPLY: &str = "application/apply-patch+yaml";
/// What `kubectl get` asks for.
pub const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
/// What metadata-only clients (kube-rs `Api::get_metadata`) ask for.
pub const METADATA: &str =
    "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io,application/json";
/// A list of metadata only.
pub const METADATA_LIST: &str =
    "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json";

/// One request, named, as both servers receive it. In `path` and `body`,
/// `{ns}` is the scenario's namespace and `{rv}` the resource version of
/// the side's previous answer (each server has its own).
#[derive(Clone, Debug)]
pub struct Step {
    pub name: String,
    pub method: Method,
    pub path: String,
    pub accept: Option<String>,
    pub content_type: Option<String>,
    pub body: Option<String>,
    /// Sent as this user (`Impersonate-User`), in no group but
    /// `system:authenticated`.
    pub user: Option<String>,
    /// Compared only by status code and, for a `Status`, its reason and
    /// code (answers whose body is legitimately server-specific).
    pub status_only: bool,
    /// Set up, not compared (a request whose answer another case checks).
    pub setup: bool,
    /// Sent again, for a bounded time, until the answer has this code
    /// (what a client waiting for an asynchronous change does).
    pub until: Option<u16>,
}

impl Step {
    fn new(name: impl Into<String>, method: Method, path: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            method,
            path: path.into(),
            accept: None,
            content_type: None,
            body: None,
            user: None,
            status_only: false,
            setup: false,
            until: None,
        }
    }

    pub fn get(name: impl Into<String>, path: impl Into<String>) -> Self {
        Self::new(name, Method::GET, path)
    }

    pub fn delete(name: impl Into<String>, path: impl Into<String>) -> Self {
        Self::new(name, Method::DELETE, path)
    }

    pub fn post(name: impl Into<String>, path: impl Into<String>, body: impl Into<String>) -> Self {
        Self::new(name, Method::POST, path).body(JSON, body)
    }

    pub fn put(name: impl Into<String>, path: impl Into<String>, body: impl Into<String>) -> Self {
        Self::new(name, Method::PUT, path).body(JSON, body)
    }

    pub fn patch(
        name: impl Into<String>,
        path: impl Into<String>,
        content_type: &str,
        body: impl Into<String>,
    ) -> Self {
        Self::new(name, Method::PATCH, path).body(content_type, body)
    }

    pub fn body(mut self, content_type: &str, body: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self.body = Some(body.into());
        self
    }

    pub fn accept(mut self, accept: &str) -> Self {
        self.accept = Some(accept.into());
        self
    }

    pub fn by_user(mut self, user: &str) -> Self {
        self.user = Some(user.into());
        self
    }

    pub fn status_only(mut self) -> Self {
        self.status_only = true;
        self
    }

    pub fn until(mut self, code: u16) -> Self {
        self.until = Some(code);
        self
    }

    pub fn setup(mut self) -> Self {
        self.setup = true;
        self
    }
}

/// Steps in one namespace, created (with its `default` service account)
/// on both servers before the first step.
pub struct Scenario {
    pub name: String,
    pub steps: Vec<Step>,
}

impl Scenario {
    pub fn new(name: impl Into<String>, steps: Vec<Step>) -> Self {
        Self {
            name: name.into(),
            steps,
        }
    }

    /// The namespace of this scenario (a valid DNS label).
    pub fn namespace(&self) -> String {
        let mut ns: String = format!("diff-{}", self.name)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        ns.truncate(63);
        ns.trim_end_matches('-').to_owned()
    }
}
