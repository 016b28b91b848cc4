//! The layer around the whole router: who is asking ([`identify`]:
//! authentication, then impersonation) and whether they may ([`rbac`]),
//! with what was decided left for the layers outside ([`AuthOutcome`]).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

use super::{
    authn, rbac, unauthorized, Attributes, Auth, AuthMode, ConnectionAuth, Decision, Enforcement,
    InProcessUser, UserInfo, PUBLIC_PATHS, SYSTEM_MASTERS,
};
use crate::error::ApiError;

/// The per-request context authentication decided.
struct Identified {
    user: UserInfo,
    enforced: bool,
}

/// What authentication and authorization decided about a request: put in
/// its response's extensions by [`middleware`] (denials included), so the
/// audit log, a layer outside this one, can say who asked and why they
/// were let in or not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthOutcome {
    /// The authenticated user, before impersonation (`None`: failed
    /// authentication).
    pub user: Option<UserInfo>,
    /// The user the request acted as, when it impersonated another.
    pub impersonated: Option<UserInfo>,
    /// RBAC's decision (allowed?) and reason, when authorization ran.
    pub authorization: Option<(bool, String)>,
}

/// Authenticates (and impersonates), without judging anonymity; notes the
/// users in `outcome`.
async fn identify(
    auth: &Auth,
    headers: &http::HeaderMap,
    in_process: Option<UserInfo>,
    connection: Option<ConnectionAuth>,
    path: &str,
    outcome: &mut AuthOutcome,
) -> Result<Identified, ApiError> {
    let (user, enforced) = if let Some(user) = in_process {
        (user, auth.mode != AuthMode::Never)
    } else {
        let enforced = match &connection {
            Some(connection) => connection.enforced,
            None => auth.mode == AuthMode::Always,
        };
        let certificate = connection.and_then(|c| c.client_certificate);
        let user = match (certificate, authn::bearer_token(headers)) {
            (Some(user), _) => user,
            (None, Some(token)) => match authn::authenticate_token(auth, token).await {
                Ok(user) => user,
                Err(why) if enforced => {
                    tracing::info!(reason = %why, path, "authentication failed");
                    return Err(unauthorized());
                }
                // Not enforced: a credential that does not verify (such as
                // a placeholder token of a test kubeconfig) is ignored.
                Err(_) => UserInfo::anonymous(),
            },
            (None, None) => UserInfo::anonymous(),
        };
        (user, enforced)
    };
    outcome.user = Some(user.clone());
    let impersonating = headers.contains_key("impersonate-user")
        || headers.contains_key("impersonate-group")
        || headers.contains_key("impersonate-uid");
    let result = authn::impersonate(auth, headers, user, enforced).await;
    if let Err(err) = &result {
        if err.code == StatusCode::FORBIDDEN {
            outcome.authorization = Some((false, err.message.clone()));
        }
    }
    let user = result?;
    if impersonating {
        outcome.impersonated = Some(user.clone());
    }
    Ok(Identified { user, enforced })
}

fn is_public(request: &Request) -> bool {
    let path = request.uri().path();
    let path = path.strip_suffix('/').unwrap_or(path);
    (request.method() == http::Method::GET || request.method() == http::Method::HEAD)
        && PUBLIC_PATHS.contains(&path)
}

/// The layer around the whole router: authenticates, authorizes, and puts
/// [`UserInfo`] and [`Enforcement`] into the request's extensions.
pub async fn middleware(State(auth): State<Arc<Auth>>, request: Request, next: Next) -> Response {
    let mut outcome = AuthOutcome::default();
    let mut response = authenticate_and_authorize(&auth, request, next, &mut outcome).await;
    response.extensions_mut().insert(outcome);
    response
}

async fn authenticate_and_authorize(
    auth: &Arc<Auth>,
    mut request: Request,
    next: Next,
    outcome: &mut AuthOutcome,
) -> Response {
    let in_process = request
        .extensions()
        .get::<InProcessUser>()
        .map(|u| u.0.clone());
    let connection = request.extensions().get::<ConnectionAuth>().cloned();
    let path = request.uri().path().to_owned();
    let identified = identify(
        auth,
        request.headers(),
        in_process,
        connection,
        &path,
        outcome,
    )
    .await;
    let Identified { user, enforced } = match identified {
        Ok(identified) => identified,
        Err(err) => return err.into_response(),
    };
    let attributes = Attributes::from_request(request.method(), request.uri());
    let rbac_write = attributes.resource_request
        && attributes.api_group == rbac::GROUP
        && !matches!(attributes.verb.as_str(), "get" | "list" | "watch");
    let mut policy = None;
    if enforced && !is_public(&request) {
        if user.is_anonymous() {
            tracing::info!(
                method = %request.method(),
                path = request.uri().path(),
                "anonymous request refused"
            );
            return unauthorized().into_response();
        }
        // `system:masters` may do anything (no policy needed, nor any
        // escalation check); everybody else is judged by RBAC.
        if user.in_group(SYSTEM_MASTERS) {
            outcome.authorization = Some((true, format!("the user is in {SYSTEM_MASTERS}")));
        } else {
            let current = match auth.policy.current(&auth.registry).await {
                Ok(current) => current,
                Err(err) => return err.into_response(),
            };
            match current.authorize(&user, &attributes) {
                Decision::Deny(reason) => {
                    let err = rbac::forbidden(&user, &attributes, &reason);
                    // RBAC denies by finding no grant; the message says so.
                    let why = if reason.is_empty() {
                        format!("no RBAC rule allows it: {}", err.message)
                    } else {
                        reason
                    };
                    outcome.authorization = Some((false, why));
                    return err.into_response();
                }
                Decision::Allow(reason) => outcome.authorization = Some((true, reason)),
            }
            policy = Some(current);
        }
    }
    if rbac_write {
        request
            .extensions_mut()
            .insert(rbac::admission(policy, user.clone()));
    }
    request.extensions_mut().insert(Enforcement(enforced));
    request.extensions_mut().insert(user);
    let response = next.run(request).await;
    if rbac_write {
        // Read-your-writes for policy changes made through the API; the
        // watch of the policy cache catches every other change.
        auth.policy.invalidate();
    }
    response
}

/// The user and enforcement of a request that went through [`middleware`]
/// (the anonymous user, not enforced, for one that did not).
pub fn request_identity(request: &Request) -> (UserInfo, bool) {
    let user = request
        .extensions()
        .get::<UserInfo>()
        .cloned()
        .unwrap_or_else(UserInfo::anonymous);
    let enforced = request
        .extensions()
        .get::<Enforcement>()
        .is_some_and(|e| e.0);
    (user, enforced)
}
