//! Parsing a resource request into a [`Call`]: which resource, object and
//! subresource it addresses (refusing paths nothing serves), the query,
//! the negotiated formats and the options of a write.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use http::{header, Method};
use vcluster_core::validation;

use super::super::{watch, ApiState, Query};
use crate::error::ApiError;
use crate::registry::{Admission, FieldManager, ObjectAddress, WriteOptions};
use crate::request::path::ResourcePath;
use crate::resources::ResourceInfo;

/// One request on a resource path, parsed and checked.
pub(super) struct Call {
    /// The served resource.
    pub resource: Arc<ResourceInfo>,
    /// The namespace, for namespaced resources.
    pub namespace: Option<String>,
    /// The object's name, when the path names one.
    pub name: Option<String>,
    /// `status`, `scale`, `log`, ...
    pub subresource: Option<String>,
    /// A `/watch/...` path (the deprecated form of `?watch=true`).
    pub legacy_watch: bool,
    /// The HTTP method.
    pub method: Method,
    /// The query parameters.
    pub query: Query,
    /// The `Accept` header.
    pub accept: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The options of a write (dry run, field manager, admission).
    pub write: WriteOptions,
    /// Who is watching, for per-user watch limits.
    pub watcher: String,
    /// How long a request body may take to arrive.
    pub body_timeout: Duration,
    /// The request, for its body.
    pub request: Request,
}

impl Call {
    /// Parses `request` on `target`: a 404 for paths no resource serves,
    /// a 400 for malformed namespaces and query parameters.
    pub(super) fn parse(
        state: &ApiState,
        target: ResourcePath<'_>,
        request: Request,
    ) -> Result<Self, ApiError> {
        let catalog = state.registry.catalog();
        // Outside every served group and version: Go's plain 404; a
        // resource a served group does not have: a `Status`.
        if !catalog.serves(target.group, target.version) {
            return Err(ApiError::page_not_found());
        }
        let resource = catalog
            .get(target.group, target.version, target.plural)
            .ok_or_else(|| ApiError::no_route(request.uri().path()))?;
        let scoped_wrong = if resource.namespaced {
            target.namespace.is_none() && target.name.is_some()
        } else {
            target.namespace.is_some()
        };
        if scoped_wrong {
            return Err(ApiError::no_route(request.uri().path()));
        }
        if let Some(namespace) = target.namespace {
            if let Some(why) = validation::dns1123_label_errors(namespace)
                .into_iter()
                .next()
            {
                return Err(ApiError::bad_request(format!(
                    "invalid namespace {namespace:?}: {why}"
                )));
            }
        }
        if let Some(name) = target.name {
            if let Some(why) = resource.strategy.name_errors(name).into_iter().next() {
                return Err(ApiError::not_found(&resource.group, &resource.plural, name)
                    .with_message_suffix(&why));
            }
        }
        let query = Query::parse(request.uri().query())?;
        let header = |name: header::HeaderName| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let accept = header(header::ACCEPT);
        let content_type = header(header::CONTENT_TYPE);
        let write = write_options(&query, header(header::USER_AGENT).as_deref(), &request)?;
        Ok(Self {
            namespace: target.namespace.map(str::to_owned),
            name: target.name.map(str::to_owned),
            subresource: target.subresource.map(str::to_owned),
            legacy_watch: target.legacy_watch,
            method: request.method().clone(),
            watcher: watch::watch_user(&request),
            body_timeout: state.options.body_read_timeout,
            resource,
            query,
            accept,
            content_type,
            write,
            request,
        })
    }

    /// The object `name` of this call's resource and namespace.
    pub(super) fn address(&self, name: &str) -> ObjectAddress {
        ObjectAddress {
            resource: self.resource.clone(),
            namespace: self.namespace.clone(),
            name: name.to_owned(),
        }
    }
}

/// A write's options. Every write records its field manager: the
/// `fieldManager` parameter, else the program part of the User-Agent, as
/// upstream does; the authorization layer's admission check (RBAC
/// escalation prevention and the like, see `crate::auth`) comes along.
fn write_options(
    query: &Query,
    user_agent: Option<&str>,
    request: &Request,
) -> Result<WriteOptions, ApiError> {
    if let Some(manager) = &query.field_manager {
        FieldManager::validate(manager)?;
    }
    Ok(WriteOptions {
        dry_run: query.dry_run,
        field_manager: Some(FieldManager {
            name: query
                .field_manager
                .clone()
                .unwrap_or_else(|| FieldManager::from_user_agent(user_agent)),
            subresource: None,
        }),
        admission: request.extensions().get::<Admission>().cloned(),
        context: crate::registry::RequestContext {
            user: request.extensions().get::<crate::auth::UserInfo>().cloned(),
            ..Default::default()
        },
    })
}
