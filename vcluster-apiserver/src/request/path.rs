//! Request paths: which API document or which resource a URL addresses.

/// What a URL addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/api`: the legacy group's versions.
    CoreVersions,
    /// `/apis`: every named group.
    Groups,
    /// `/apis/<group>`.
    Group(&'a str),
    /// `/api/v1` or `/apis/<group>/<version>`: the resource list.
    Resources {
        /// API group (empty for core).
        group: &'a str,
        /// Version.
        version: &'a str,
    },
    /// A collection, an object or a subresource.
    Resource(ResourcePath<'a>),
}

/// The resource part of a URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourcePath<'a> {
    /// API group (empty for core).
    pub group: &'a str,
    /// Version.
    pub version: &'a str,
    /// The namespace from `/namespaces/<ns>/...`, if any.
    pub namespace: Option<&'a str>,
    /// Plural resource name.
    pub plural: &'a str,
    /// Object name, if one is addressed.
    pub name: Option<&'a str>,
    /// Subresource (`status`, `scale`, `binding`), if any.
    pub subresource: Option<&'a str>,
    /// Legacy `/watch/` path prefix: a watch.
    pub legacy_watch: bool,
}

/// Parses a request path; `None` for paths that are not API paths.
pub fn parse(path: &str) -> Option<Route<'_>> {
    let trimmed = path.trim_end_matches('/');
    let segments: Vec<&str> = trimmed.split('/').skip(1).collect();
    if segments.iter().any(|s| s.is_empty()) {
        return None;
    }
    match segments.as_slice() {
        ["api"] => Some(Route::CoreVersions),
        ["apis"] => Some(Route::Groups),
        ["apis", group] => Some(Route::Group(group)),
        ["api", version] => Some(Route::Resources { group: "", version }),
        ["apis", group, version] => Some(Route::Resources { group, version }),
        ["api", version, rest @ ..] => resource(&"", version, rest),
        ["apis", group, version, rest @ ..] => resource(group, version, rest),
        _ => None,
    }
}

fn resource<'a>(group: &&'a str, version: &'a str, rest: &[&'a str]) -> Option<Route<'a>> {
    let (legacy_watch, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let is_namespace_subresource = |s: &str| matches!(s, "status" | "finalize");
    let (namespace, plural, name, subresource) = match rest {
        ["namespaces", ns, plural] if !is_namespace_subresource(plural) => {
            (Some(*ns), *plural, None, None)
        }
        ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name), None),
        ["namespaces", ns, plural, name, sub] => (Some(*ns), *plural, Some(*name), Some(*sub)),
        [plural] => (None, *plural, None, None),
        [plural, name] => (None, *plural, Some(*name), None),
        [plural, name, sub] => (None, *plural, Some(*name), Some(*sub)),
        _ => return None,
    };
    Some(Route::Resource(ResourcePath {
        group,
        version,
        namespace,
        plural,
        name,
        subresource,
        legacy_watch,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourcePath<'_> {
        match parse(path) {
            Some(Route::Resource(r)) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn discovery_paths() {
        assert_eq!(parse("/api"), Some(Route::CoreVersions));
        assert_eq!(parse("/apis/"), Some(Route::Groups));
        assert_eq!(parse("/apis/apps"), Some(Route::Group("apps")));
        assert_eq!(
            parse("/api/v1"),
            Some(Route::Resources {
                group: "",
                version: "v1"
            })
        );
        assert_eq!(
            parse("/apis/apps/v1"),
            Some(Route::Resources {
                group: "apps",
                version: "v1"
            })
        );
        assert_eq!(parse("/other"), None);
        assert_eq!(parse("/api//v1"), None);
    }

    #[test]
    fn resource_paths() {
        let r = res("/api/v1/namespaces/default/pods/web/status");
        assert_eq!(
            (r.namespace, r.plural, r.name, r.subresource),
            (Some("default"), "pods", Some("web"), Some("status"))
        );
        let r = res("/api/v1/pods");
        assert_eq!((r.namespace, r.plural, r.name), (None, "pods", None));
        let r = res("/api/v1/namespaces/team");
        assert_eq!(
            (r.namespace, r.plural, r.name),
            (None, "namespaces", Some("team"))
        );
        let r = res("/api/v1/namespaces/team/status");
        assert_eq!(
            (r.namespace, r.plural, r.name, r.subresource),
            (None, "namespaces", Some("team"), Some("status"))
        );
        let r = res("/apis/apps/v1/namespaces/ns/deployments");
        assert_eq!(
            (r.group, r.namespace, r.plural),
            ("apps", Some("ns"), "deployments")
        );
        let r = res("/api/v1/watch/namespaces/ns/pods");
        assert!(r.legacy_watch);
        assert_eq!(parse("/api/v1/namespaces/a/b/c/d/e"), None);
    }
}
