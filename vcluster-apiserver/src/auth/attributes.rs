//! What a request does, in authorization's terms (upstream's
//! `RequestInfo` / `authorizer.Attributes`): a verb on a resource (group,
//! resource, subresource, namespace, name) or on a non-resource path.
//!
//! Resource paths are read with the same parser the handlers route with
//! ([`crate::request::path::parse`]), so what is authorized is what is served.

use http::{Method, Uri};

use crate::request::path::{self, Route};
use crate::request::Query;

/// The attributes of one request (or of a review's question).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection` (resources), or the lower-case HTTP method
    /// (non-resource paths); `impersonate`, `bind`, `escalate` in checks.
    pub verb: String,
    /// A resource request (else a non-resource path).
    pub resource_request: bool,
    /// The namespace (empty: cluster scope). For `namespaces/<name>` it is
    /// the name, as upstream.
    pub namespace: String,
    /// API group (empty for the core group).
    pub api_group: String,
    /// API version.
    pub api_version: String,
    /// The resource (`pods`).
    pub resource: String,
    /// The subresource (`status`), or empty.
    pub subresource: String,
    /// The object name, if one is addressed (for list and watch: a
    /// `metadata.name` field selector).
    pub name: String,
    /// The URL path (non-resource requests).
    pub path: String,
}

impl Attributes {
    /// A resource check (reviews, escalation checks).
    pub fn resource(verb: &str, group: &str, resource: &str, namespace: &str, name: &str) -> Self {
        let (resource, subresource) = match resource.split_once('/') {
            Some((resource, sub)) => (resource, sub),
            None => (resource, ""),
        };
        Self {
            verb: verb.to_owned(),
            resource_request: true,
            namespace: namespace.to_owned(),
            api_group: group.to_owned(),
            resource: resource.to_owned(),
            subresource: subresource.to_owned(),
            name: name.to_owned(),
            ..Self::default()
        }
    }

    /// A non-resource check.
    pub fn non_resource(verb: &str, path: &str) -> Self {
        Self {
            verb: verb.to_owned(),
            path: path.to_owned(),
            ..Self::default()
        }
    }

    /// `pods` or `pods/status`: the resource as RBAC rules name it.
    pub fn combined_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }

    /// The attributes of an HTTP request.
    pub fn from_request(method: &Method, uri: &Uri) -> Self {
        let path = uri.path();
        let Some(Route::Resource(target)) = path::parse(path) else {
            return Self::non_resource(&method.as_str().to_ascii_lowercase(), path);
        };
        // A query the handler refuses (400) authorizes as a plain request.
        let query = Query::parse(uri.query()).unwrap_or_default();
        let watch = query.watch || target.legacy_watch;
        let verb = match *method {
            Method::GET | Method::HEAD if watch => "watch".to_owned(),
            Method::GET | Method::HEAD if target.name.is_none() => "list".to_owned(),
            Method::GET | Method::HEAD => "get".to_owned(),
            Method::POST => "create".to_owned(),
            Method::PUT => "update".to_owned(),
            Method::PATCH => "patch".to_owned(),
            Method::DELETE if target.name.is_none() => "deletecollection".to_owned(),
            Method::DELETE => "delete".to_owned(),
            ref other => other.as_str().to_ascii_lowercase(),
        };
        let mut name = target.name.unwrap_or("").to_owned();
        if name.is_empty() && matches!(verb.as_str(), "list" | "watch") {
            name = selected_name(query.field_selector.as_deref()).unwrap_or_default();
        }
        let namespace = match target.namespace {
            Some(namespace) => namespace.to_owned(),
            None if target.group.is_empty() && target.plural == "namespaces" => name.clone(),
            None => String::new(),
        };
        Self {
            verb,
            resource_request: true,
            namespace,
            api_group: target.group.to_owned(),
            api_version: target.version.to_owned(),
            resource: target.plural.to_owned(),
            subresource: target.subresource.unwrap_or("").to_owned(),
            name,
            path: path.to_owned(),
        }
    }
}

/// The name a `metadata.name=<name>` field selector pins a list or watch
/// to (what `kubectl get pod web -w` sends), as upstream uses it for
/// `resourceNames`.
fn selected_name(selector: Option<&str>) -> Option<String> {
    selector?.split(',').find_map(|term| {
        let (key, value) = term
            .split_once("==")
            .or_else(|| term.split_once('='))
            .filter(|(key, _)| !key.ends_with('!'))?;
        (key.trim() == "metadata.name").then(|| value.trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(method: Method, uri: &str) -> Attributes {
        Attributes::from_request(&method, &uri.parse().expect("uri"))
    }

    #[test]
    fn verbs_follow_method_and_path() {
        let a = attrs(Method::GET, "/api/v1/namespaces/team/pods");
        assert_eq!(
            (a.verb.as_str(), a.namespace.as_str(), a.resource.as_str()),
            ("list", "team", "pods")
        );
        assert_eq!(
            attrs(Method::GET, "/api/v1/namespaces/team/pods?watch=true").verb,
            "watch"
        );
        assert_eq!(attrs(Method::GET, "/api/v1/watch/pods").verb, "watch");
        assert_eq!(
            attrs(Method::GET, "/api/v1/namespaces/t/pods/p").verb,
            "get"
        );
        assert_eq!(
            attrs(Method::POST, "/api/v1/namespaces/t/pods").verb,
            "create"
        );
        assert_eq!(
            attrs(Method::PUT, "/api/v1/namespaces/t/pods/p").verb,
            "update"
        );
        assert_eq!(
            attrs(Method::PATCH, "/api/v1/namespaces/t/pods/p").verb,
            "patch"
        );
        assert_eq!(
            attrs(Method::DELETE, "/api/v1/namespaces/t/pods/p").verb,
            "delete"
        );
        assert_eq!(
            attrs(Method::DELETE, "/api/v1/namespaces/t/pods").verb,
            "deletecollection"
        );
        let status = attrs(Method::PUT, "/api/v1/namespaces/t/pods/p/status");
        assert_eq!(status.combined_resource(), "pods/status");
        let deploy = attrs(Method::GET, "/apis/apps/v1/deployments");
        assert_eq!(
            (deploy.api_group.as_str(), deploy.namespace.as_str()),
            ("apps", "")
        );
    }

    #[test]
    fn namespaces_are_their_own_namespace() {
        let a = attrs(Method::GET, "/api/v1/namespaces/team");
        assert_eq!(
            (a.resource.as_str(), a.name.as_str(), a.namespace.as_str()),
            ("namespaces", "team", "team")
        );
        let a = attrs(Method::PUT, "/api/v1/namespaces/team/finalize");
        assert_eq!(
            (a.subresource.as_str(), a.namespace.as_str()),
            ("finalize", "team")
        );
    }

    #[test]
    fn field_selectors_name_the_object_of_a_watch() {
        let a = attrs(
            Method::GET,
            "/api/v1/namespaces/t/pods?watch=1&fieldSelector=metadata.name%3Dweb",
        );
        assert_eq!((a.verb.as_str(), a.name.as_str()), ("watch", "web"));
        let a = attrs(
            Method::GET,
            "/api/v1/namespaces/t/pods?fieldSelector=metadata.name!%3Dweb",
        );
        assert_eq!(a.name, "");
    }

    #[test]
    fn discovery_is_non_resource() {
        for path in [
            "/api",
            "/api/v1",
            "/apis/apps/v1",
            "/openapi/v3",
            "/healthz",
        ] {
            let a = attrs(Method::GET, path);
            assert!(!a.resource_request, "{path}");
            assert_eq!((a.verb.as_str(), a.path.as_str()), ("get", path));
        }
    }
}
