//! The HTTP surface: Kubernetes REST over the [`Registry`], as an axum
//! router (a tower `Service`), so it can be served over TCP, TLS, or called
//! in-process by a `kube::Client`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::{header, HeaderValue, Method, StatusCode};
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::registry::Registry;

pub mod discovery;
mod logs;
pub mod openapi;
mod resource;
mod streams;
mod watch;

pub(crate) use crate::request::negotiate::{json, json_with_type};
use crate::request::{negotiate, path, Query};

/// Settings of the HTTP surface.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// How often idle watches that asked for bookmarks get one.
    pub bookmark_interval: Duration,
    /// Watch duration when the client gives no `timeoutSeconds`.
    pub default_watch_timeout: Duration,
    /// Longest watch a client may ask for.
    pub max_watch_timeout: Duration,
    /// Longest a request body may take to arrive in full; a slower one is
    /// answered `408` with a `Timeout` Status (default 60 s).
    pub body_read_timeout: Duration,
    /// Largest request head (request line and headers) in bytes: HTTP/1's
    /// read buffer and HTTP/2's header list size. Larger heads are refused
    /// (HTTP/1: `431`, HTTP/2: the stream is reset). Default 1 MiB, as Go's
    /// `net/http`; values below 8 KiB count as 8 KiB.
    pub max_header_bytes: usize,
    /// Most header fields in one HTTP/1 request (default 100).
    pub max_headers: usize,
    /// Most concurrent HTTP/2 streams (requests, watches) per connection
    /// (default 1000).
    pub max_concurrent_streams: u32,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            bookmark_interval: Duration::from_secs(5),
            default_watch_timeout: Duration::from_secs(30 * 60),
            max_watch_timeout: Duration::from_secs(60 * 60),
            body_read_timeout: Duration::from_secs(60),
            max_header_bytes: 1 << 20,
            max_headers: 100,
            max_concurrent_streams: 1000,
        }
    }
}

/// The client's address, put in each request's extensions by
/// [`crate::ApiServer::serve`] (absent for in-process requests): per-client
/// limits fall back on it for unauthenticated requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// What every handler shares.
pub struct ApiState {
    /// Object semantics over the store (shared with the garbage collector).
    pub registry: Arc<Registry>,
    /// HTTP settings.
    pub options: HttpOptions,
    /// Cancelled when the server shuts down: watches end cleanly.
    pub shutdown: CancellationToken,
    /// Authentication and authorization (see [`crate::auth`]).
    pub auth: Arc<crate::auth::Auth>,
    /// Where container logs come from (`pods/log`), if anywhere.
    pub pod_logs: Option<Arc<dyn crate::logs::PodLogs>>,
    /// Where exec, attach and port-forward go, if anywhere.
    pub container_streams: Option<Arc<dyn vcluster_streams::ContainerStreams>>,
    /// The control-plane parts `componentstatuses` reports.
    pub components: Vec<crate::health::Component>,
    /// Extra `/metrics` text (see [`crate::metrics`]).
    pub metrics: Vec<crate::metrics::MetricsSource>,
    /// The audit log, if on (see [`crate::audit`]).
    pub audit: Option<Arc<crate::audit::AuditConfig>>,
}

/// The router serving the whole API.
pub fn router(state: Arc<ApiState>) -> Router {
    let router = Router::new()
        .route(
            "/version",
            get(|| async { json(StatusCode::OK, &discovery::version()) }),
        )
        .route("/healthz", get(health))
        .route("/livez", get(health))
        .route("/readyz", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi/v3", get(openapi_root))
        .route("/openapi/v3/{*group_version}", get(openapi_group_version))
        .route("/openapi/v2", get(openapi_v2))
        .fallback(dispatch)
        // Every route, discovery and health included, is authenticated
        // and authorized first; handlers find the `auth::UserInfo` in the
        // request's extensions.
        .layer(axum::middleware::from_fn_with_state(
            state.auth.clone(),
            crate::auth::middleware,
        ));
    // The audit log is outermost: it sees requests authentication or RBAC
    // refuse, and reads their decision from the response.
    let router = match &state.audit {
        Some(audit) => router.layer(axum::middleware::from_fn_with_state(
            audit.clone(),
            crate::audit::layer::middleware,
        )),
        None => router,
    };
    router.with_state(state)
}

async fn openapi_root(State(state): State<Arc<ApiState>>, request: Request) -> Response {
    let catalog = state.registry.catalog().clone();
    let docs = openapi::documents(&catalog);
    openapi_response(&request, &docs.root)
}

async fn openapi_group_version(
    State(state): State<Arc<ApiState>>,
    axum::extract::Path(group_version): axum::extract::Path<String>,
    request: Request,
) -> Response {
    let catalog = state.registry.catalog().clone();
    let docs = openapi::documents(&catalog);
    match docs.group_versions.get(group_version.trim_end_matches('/')) {
        Some(doc) => openapi_response(&request, doc),
        // kube-apiserver answers an unknown group version here with an
        // empty 404 (no body, no content type).
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn openapi_v2(State(state): State<Arc<ApiState>>, request: Request) -> Response {
    let catalog = state.registry.catalog().clone();
    let docs = openapi::documents(&catalog);
    // client-go (kubectl's validation) asks for gnostic's protobuf form
    // only; everyone else takes JSON.
    let accept = header_str(&request, header::ACCEPT).unwrap_or("");
    if openapi::gnostic::preferred(accept) {
        return (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(openapi::gnostic::CONTENT_TYPE),
            )],
            docs.v2_protobuf.clone(),
        )
            .into_response();
    }
    openapi_response(&request, &docs.v2)
}

/// Serves an OpenAPI document with an `ETag` (304 when the client has it)
/// and, when fetched by its current `hash`, as immutable.
fn openapi_response(request: &Request, doc: &openapi::Document) -> Response {
    let etag = format!("\"{}\"", doc.hash);
    let hash_matches = request
        .uri()
        .query()
        .into_iter()
        .flat_map(|q| form_urlencoded::parse(q.as_bytes()))
        .any(|(k, v)| k == "hash" && v == doc.hash);
    let cache_control = if hash_matches {
        "public, immutable, max-age=31536000"
    } else {
        "no-cache, private"
    };
    let fresh = header_str(request, header::IF_NONE_MATCH)
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            doc.body.clone(),
        )
            .into_response()
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    response
}

async fn metrics(State(state): State<Arc<ApiState>>) -> Response {
    let body = crate::metrics::render(state.registry.hub(), &state.metrics);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn health() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "ok",
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.plain_text {
            return (
                self.code,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{}\n", self.message),
            )
                .into_response();
        }
        let mut response = json(self.code, &self.to_status());
        if let Some(secs) = self.retry_after_seconds {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

async fn dispatch(State(state): State<Arc<ApiState>>, request: Request) -> Response {
    let method = request.method().clone();
    let uri = request.uri().clone();
    let span = tracing::debug_span!("request", %method, path = uri.path());
    let _enter = span.enter();
    match route(&state, request).await {
        Ok(response) => response,
        Err(err) => {
            tracing::debug!(code = err.code.as_u16(), reason = err.reason, message = %err.message, "request failed");
            err.into_response()
        }
    }
}

fn header_str(request: &Request, name: header::HeaderName) -> Option<&str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn route(state: &Arc<ApiState>, request: Request) -> Result<Response, ApiError> {
    let uri = request.uri().clone();
    let Some(route) = path::parse(uri.path()) else {
        return Err(ApiError::page_not_found());
    };
    let accept = header_str(&request, header::ACCEPT).map(str::to_owned);
    let catalog = state.registry.catalog();
    let discovery_only = |method: &Method| {
        if method == Method::GET {
            Ok(())
        } else {
            Err(ApiError::method_not_allowed(format!(
                "{method} is not supported on discovery documents"
            )))
        }
    };
    match route {
        path::Route::CoreVersions | path::Route::Groups => {
            discovery_only(request.method())?;
            let core = route == path::Route::CoreVersions;
            if negotiate::wants_aggregated_discovery(accept.as_deref()) {
                let document = discovery::aggregated(&catalog, core);
                return Ok(json_with_type(
                    StatusCode::OK,
                    &document,
                    discovery::AGGREGATED_CONTENT_TYPE,
                ));
            }
            let document = if core {
                discovery::core_versions()
            } else {
                discovery::groups(&catalog)
            };
            Ok(json(StatusCode::OK, &document))
        }
        path::Route::Group(group) => {
            discovery_only(request.method())?;
            let document =
                discovery::group(&catalog, group).ok_or_else(ApiError::page_not_found)?;
            Ok(json(StatusCode::OK, &document))
        }
        path::Route::Resources { group, version } => {
            discovery_only(request.method())?;
            let document = discovery::resource_list(&catalog, group, version)
                .ok_or_else(ApiError::page_not_found)?;
            Ok(json(StatusCode::OK, &document))
        }
        // Reviews and `serviceaccounts/token` (see `crate::auth::reviews`).
        path::Route::Resource(target) if crate::auth::reviews::handles(&target) => {
            crate::auth::reviews::handle(&state.auth, target, request).await
        }
        path::Route::Resource(target) => resource::handle(state, target, request).await,
    }
}

/// Body of a watch or other streamed answer.
pub(crate) fn stream_body<S>(stream: S) -> Body
where
    S: futures::Stream<Item = Result<bytes::Bytes, std::convert::Infallible>> + Send + 'static,
{
    Body::from_stream(stream)
}
