//! Authentication and authorization of API requests.
//!
//! Every request passes through [`middleware`] (one layer around the whole
//! router, so discovery, OpenAPI and health paths are covered too):
//!
//! 1. **Authentication** ([`authn`]) finds who is asking: a verified TLS
//!    client certificate (CN = user, O = groups), a static bearer token
//!    from a token file, a service-account token ([`tokens`]: a JWT this
//!    server signed), an identity given in-process
//!    ([`InProcessUser`]), or nobody (`system:anonymous`). Impersonation
//!    headers (`Impersonate-User`, ...) then switch to another identity if
//!    the caller may impersonate it. Every authenticated user is in
//!    `system:authenticated`. The result is a [`UserInfo`] in the request's
//!    extensions, for handlers and other layers (per-user limits).
//! 2. **Authorization** ([`rbac`]): the request's [`Attributes`] (verb,
//!    resource, namespace, name, or non-resource path) are checked against
//!    the stored Roles, ClusterRoles and bindings; members of
//!    `system:masters` bypass it.
//!
//! Whether a request must pass both is decided per connection
//! ([`AuthMode`]): by default on TLS listeners that verify client
//! certificates, and not on plain-HTTP listeners or the in-process router,
//! which are then served as before (tests, embedding). See
//! `docs/security.md`.
//!
//! The review APIs (`SelfSubjectAccessReview`, `SelfSubjectRulesReview`,
//! `SubjectAccessReview`, `LocalSubjectAccessReview`, `TokenReview`,
//! `SelfSubjectReview`) live in [`reviews`], the `serviceaccounts/token`
//! subresource in [`tokens`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use http::{header, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::registry::Registry;
use crate::request::negotiate::{self, BodyFormat, MAX_BODY_BYTES};

pub mod attributes;
pub mod authn;
mod bootstrap;
mod layer;
pub mod rbac;
pub mod reviews;
pub mod tokens;

pub use attributes::Attributes;
pub use authn::{StaticTokens, TokenFileError};
pub use bootstrap::bootstrap_policy;
pub use layer::{middleware, request_identity, AuthOutcome};
pub use rbac::{Decision, Policy, PolicyCache, PolicyRule};
pub use tokens::{KeyError, ServiceAccountKey};

/// The group whose members every authorization check lets through.
pub const SYSTEM_MASTERS: &str = "system:masters";
/// The group of every authenticated user.
pub const AUTHENTICATED: &str = "system:authenticated";
/// The group of the anonymous user.
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
/// The name of the anonymous user.
pub const ANONYMOUS: &str = "system:anonymous";
/// The identity of the in-process client ([`crate::ApiServer::client`]).
pub const IN_PROCESS_USER: &str = "system:apiserver";
/// The default issuer (and audience) of service-account tokens, as upstream.
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// Paths anyone may `GET`, authenticated or not.
pub const PUBLIC_PATHS: &[&str] = &["/healthz", "/livez", "/readyz", "/version"];

/// Who a request comes from, as authentication established it (upstream's
/// `user.Info`). Put in every request's extensions by [`middleware`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name (`alice`, `system:serviceaccount:team:builder`).
    pub name: String,
    /// A unique id, when the source has one (service accounts, tokens).
    pub uid: String,
    /// The groups, always with `system:authenticated` for authenticated users.
    pub groups: Vec<String>,
    /// Extra attributes (service-account tokens: the bound pod, the token id).
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// An authenticated user in `groups` (plus `system:authenticated`).
    pub fn new(name: impl Into<String>, groups: &[&str]) -> Self {
        Self {
            name: name.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            ..Self::default()
        }
        .authenticated()
    }

    /// The anonymous user: `system:anonymous` in `system:unauthenticated`.
    pub fn anonymous() -> Self {
        Self {
            name: ANONYMOUS.to_owned(),
            groups: vec![UNAUTHENTICATED.to_owned()],
            ..Self::default()
        }
    }

    /// The identity of the server's own in-process clients (the syncer,
    /// the controllers): `system:apiserver` in `system:masters`.
    pub fn in_process_admin() -> Self {
        Self::new(IN_PROCESS_USER, &[SYSTEM_MASTERS])
    }

    /// Whether this is the anonymous user.
    pub fn is_anonymous(&self) -> bool {
        self.name == ANONYMOUS
    }

    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// Adds `system:authenticated` (once); the anonymous user is left as is.
    pub fn authenticated(mut self) -> Self {
        if !self.is_anonymous() && !self.in_group(AUTHENTICATED) {
            self.groups.push(AUTHENTICATED.to_owned());
        }
        self
    }

    /// The `authentication.k8s.io/v1` `UserInfo` JSON form.
    pub fn to_json(&self) -> Value {
        let mut out = json!({"username": self.name, "groups": self.groups});
        if !self.uid.is_empty() {
            out["uid"] = json!(self.uid);
        }
        if !self.extra.is_empty() {
            out["extra"] = json!(self.extra);
        }
        out
    }
}

/// When requests must authenticate and pass RBAC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthMode {
    /// On TLS listeners whose [`crate::TlsConfig`] verifies client
    /// certificates, and for in-process identities given with
    /// [`crate::ApiServer::client_as`]; not on plain-HTTP listeners nor for
    /// the bare in-process [`crate::ApiServer::router`]. The default.
    #[default]
    Auto,
    /// On every listener and for the in-process router too (plain HTTP
    /// then only knows bearer tokens).
    Always,
    /// Never: every request is served, as before authentication existed.
    /// Credentials that verify still name the user (for logs and limits).
    Never,
}

impl AuthMode {
    /// Whether a listener enforces authentication and RBAC in this mode,
    /// given whether its TLS verifies client certificates.
    pub fn enforced_on_listener(self, verifies_client_certificates: bool) -> bool {
        match self {
            AuthMode::Auto => verifies_client_certificates,
            AuthMode::Always => true,
            AuthMode::Never => false,
        }
    }
}

/// Authentication and authorization settings of an API server.
#[derive(Clone)]
pub struct AuthConfig {
    /// When requests must authenticate and pass RBAC.
    pub mode: AuthMode,
    /// Static bearer tokens (kube-apiserver's `--token-auth-file`).
    pub static_tokens: StaticTokens,
    /// The key service-account tokens are signed with; `None`: a fresh
    /// key per start (tokens stop working on restart). The demo persists
    /// one in its data directory.
    pub service_account_key: Option<ServiceAccountKey>,
    /// `iss` of the tokens this server issues and accepts.
    pub issuer: String,
    /// The audiences the API accepts tokens for (default: the issuer);
    /// also the audiences of a TokenRequest that names none.
    pub api_audiences: Vec<String>,
    /// The longest lifetime a TokenRequest gets (longer asks are cut).
    pub max_token_expiration: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            mode: AuthMode::Auto,
            static_tokens: StaticTokens::default(),
            service_account_key: None,
            issuer: DEFAULT_ISSUER.to_owned(),
            api_audiences: vec![DEFAULT_ISSUER.to_owned()],
            max_token_expiration: Duration::from_secs(48 * 3600),
        }
    }
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("mode", &self.mode)
            .field("static_tokens", &self.static_tokens.len())
            .field("issuer", &self.issuer)
            .field("api_audiences", &self.api_audiences)
            .finish_non_exhaustive()
    }
}

/// What a connection tells authentication, put in each of its requests'
/// extensions by [`crate::ApiServer::serve`]. Not settable from the wire.
#[derive(Clone, Debug)]
pub struct ConnectionAuth {
    /// The user of the verified TLS client certificate, if one was sent.
    pub client_certificate: Option<UserInfo>,
    /// Whether requests of this connection must authenticate and pass RBAC.
    pub enforced: bool,
}

/// An identity given by embedding code to an in-process router
/// ([`crate::ApiServer::router_as`]); trusted as authenticated.
#[derive(Clone, Debug)]
pub struct InProcessUser(pub UserInfo);

/// Whether a request was authenticated and authorized (in its extensions
/// next to [`UserInfo`]); handlers of the review APIs answer by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enforcement(pub bool);

/// The authentication and authorization state of one server.
pub struct Auth {
    mode: AuthMode,
    static_tokens: StaticTokens,
    key: ServiceAccountKey,
    issuer: String,
    api_audiences: Vec<String>,
    max_token_expiration: Duration,
    policy: PolicyCache,
    /// Where RBAC objects and service accounts are read.
    registry: Arc<Registry>,
}

impl Auth {
    /// The runtime form of `config` over `registry` (RBAC objects, service
    /// accounts); generates a signing key when none is configured.
    pub fn new(config: AuthConfig, registry: Arc<Registry>) -> Result<Self, KeyError> {
        let key = match config.service_account_key {
            Some(key) => key,
            None => ServiceAccountKey::generate()?,
        };
        let api_audiences = if config.api_audiences.is_empty() {
            vec![config.issuer.clone()]
        } else {
            config.api_audiences
        };
        Ok(Self {
            mode: config.mode,
            static_tokens: config.static_tokens,
            key,
            issuer: config.issuer,
            api_audiences,
            max_token_expiration: config.max_token_expiration,
            policy: PolicyCache::default(),
            registry,
        })
    }

    /// Whether a listener enforces authentication and RBAC, given whether
    /// its TLS verifies client certificates.
    pub fn enforced_on_listener(&self, verifies_client_certificates: bool) -> bool {
        self.mode.enforced_on_listener(verifies_client_certificates)
    }

    /// The RBAC policy cache.
    pub fn policy(&self) -> &PolicyCache {
        &self.policy
    }

    /// The service-account signing key.
    pub fn service_account_key(&self) -> &ServiceAccountKey {
        &self.key
    }
}

/// 401, as upstream answers failed or missing authentication.
pub fn unauthorized() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized")
}

/// Reads and decodes an object body (JSON, YAML or protobuf) of at most
/// [`MAX_BODY_BYTES`].
pub(crate) async fn read_object(request: Request) -> Result<Value, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let format = negotiate::body_format(content_type.as_deref())?;
    let body: Body = request.into_body();
    let bytes = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(ApiError::too_large(MAX_BODY_BYTES))
        }
        Err(err) => {
            return Err(ApiError::bad_request(format!(
                "the request body could not be read: {err}"
            )))
        }
    };
    match format {
        BodyFormat::Json => negotiate::decode_document(&bytes, false),
        BodyFormat::Yaml => negotiate::decode_document(&bytes, true),
        BodyFormat::Protobuf => negotiate::decode_protobuf(&bytes),
        _ => Err(ApiError::unsupported_media_type()),
    }
}

/// Spawns the task that invalidates the policy cache on every stored
/// change of an RBAC object (also those made by the garbage collector,
/// namespace deletion or another server on the same store).
pub(crate) fn spawn_policy_watch(auth: Arc<Auth>, shutdown: tokio_util::sync::CancellationToken) {
    tokio::spawn(async move {
        let prefix = format!("/registry/{}/", rbac::GROUP);
        loop {
            let mut subscription = auth.registry.hub().subscribe_all(1024);
            // Anything may have changed before the subscription started.
            auth.policy.invalidate();
            loop {
                let event = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    event = subscription.events.recv() => event,
                };
                match event {
                    Some(event) if event.key.starts_with(&prefix) => auth.policy.invalidate(),
                    Some(_) => {}
                    // Cut off (too slow) or the hub ended: subscribe again.
                    None => break,
                }
            }
            if shutdown.is_cancelled() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authenticated_users_get_the_group_once() {
        let user = UserInfo::new("alice", &["team", AUTHENTICATED]);
        assert_eq!(user.groups, ["team", AUTHENTICATED]);
        let anonymous = UserInfo::anonymous().authenticated();
        assert!(!anonymous.in_group(AUTHENTICATED));
        assert!(UserInfo::in_process_admin().in_group(SYSTEM_MASTERS));
    }

    #[test]
    fn modes_decide_per_listener() {
        assert!(AuthMode::Auto.enforced_on_listener(true));
        assert!(!AuthMode::Auto.enforced_on_listener(false));
        assert!(AuthMode::Always.enforced_on_listener(false));
        assert!(!AuthMode::Never.enforced_on_listener(true));
    }
}
