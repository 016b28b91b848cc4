//! Authentication sources: verified client certificates, static bearer
//! tokens (kube-apiserver's token file), service-account tokens (see
//! [`super::tokens`]) and impersonation.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use http::header::{self, HeaderMap};

use super::Auth;
use super::{rbac, Attributes, UserInfo};
use crate::error::ApiError;

/// The user a verified client certificate names: CN is the user, each O a
/// group (upstream's `CommonNameUserConversion`). `None` when the
/// certificate cannot be parsed or has no CN.
pub fn certificate_user(der: &[u8]) -> Option<UserInfo> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = certificate.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())?
        .to_owned();
    if name.is_empty() {
        return None;
    }
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(str::to_owned)
        .collect();
    Some(
        UserInfo {
            name,
            groups,
            ..UserInfo::default()
        }
        .authenticated(),
    )
}

/// Why a token file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// The file cannot be read.
    #[error("token file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line is malformed.
    #[error("token file line {line}: {message}")]
    Invalid {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Static bearer tokens, from a file in kube-apiserver's
/// `--token-auth-file` CSV format: `token,user,uid[,"group1,group2"]`.
#[derive(Clone, Default)]
pub struct StaticTokens {
    users: HashMap<String, UserInfo>,
}

impl std::fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the tokens themselves.
        f.debug_struct("StaticTokens")
            .field("count", &self.users.len())
            .finish()
    }
}

/// Splits one CSV record (RFC 4180 quoting: `"a,b"`, `""` for a quote).
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match c {
            '"' if at_start => {
                quoted = true;
                at_start = false;
            }
            '"' if quoted => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                    if !matches!(chars.peek(), None | Some(',')) {
                        return Err("extraneous text after a closing quote".into());
                    }
                }
            }
            ',' if !quoted => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
            }
            c => {
                field.push(c);
                at_start = false;
            }
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    fields.push(field);
    Ok(fields)
}

impl StaticTokens {
    /// Parses the CSV text of a token file. Empty lines and lines starting
    /// with `#` are skipped; a record needs a token, a user and a uid.
    pub fn from_csv(text: &str) -> Result<Self, TokenFileError> {
        let mut users = HashMap::new();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let invalid = |message: String| TokenFileError::Invalid { line, message };
            let fields = csv_fields(trimmed).map_err(invalid)?;
            if fields.len() < 3 {
                return Err(invalid(format!(
                    "needs at least 3 columns (token,user,uid), found {}",
                    fields.len()
                )));
            }
            let token = fields[0].trim();
            let name = fields[1].trim();
            if token.is_empty() {
                return Err(invalid("the token is empty".into()));
            }
            if name.is_empty() {
                return Err(invalid("the user name is empty".into()));
            }
            let groups = fields
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let user = UserInfo {
                name: name.to_owned(),
                uid: fields[2].trim().to_owned(),
                groups,
                extra: BTreeMap::new(),
            }
            .authenticated();
            if users.insert(token.to_owned(), user).is_some() {
                tracing::warn!(line, "duplicate token in the token file; the last one wins");
            }
        }
        Ok(Self { users })
    }

    /// Reads a token file.
    pub fn load(path: &Path) -> Result<Self, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_csv(&text)
    }

    /// The user of a token.
    pub fn get(&self, token: &str) -> Option<&UserInfo> {
        self.users.get(token)
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// The bearer token of the `Authorization` header, if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The user of a bearer token: a static token, else a service-account
/// token. The error says why (for the log; clients get a bare 401).
pub(crate) async fn authenticate_token(auth: &Auth, token: &str) -> Result<UserInfo, String> {
    authenticate_token_for(auth, token, &auth.api_audiences)
        .await
        .map(|(user, _)| user)
}

/// The user of a bearer token meant for one of `audiences` (a TokenReview
/// names its own), and the token's audiences among them, as upstream
/// reports them. Static tokens are audience-agnostic: they answer for the
/// API server's audiences only.
pub(crate) async fn authenticate_token_for(
    auth: &Auth,
    token: &str,
    audiences: &[String],
) -> Result<(UserInfo, Vec<String>), String> {
    if let Some(user) = auth.static_tokens.get(token) {
        let served: Vec<String> = audiences
            .iter()
            .filter(|a| auth.api_audiences.contains(a))
            .cloned()
            .collect();
        if served.is_empty() {
            return Err(format!(
                "token audiences {:?} is invalid for the target audiences {audiences:?}",
                auth.api_audiences
            ));
        }
        return Ok((user.clone(), served));
    }
    if token.split('.').count() == 3 {
        return super::tokens::authenticate_for(auth, token, audiences).await;
    }
    Err("unknown bearer token".into())
}

const IMPERSONATE_USER: &str = "impersonate-user";
const IMPERSONATE_UID: &str = "impersonate-uid";
const IMPERSONATE_GROUP: &str = "impersonate-group";
const IMPERSONATE_EXTRA: &str = "impersonate-extra-";

/// Percent-decodes an `Impersonate-Extra-` key, as upstream.
fn unescape(key: &str) -> String {
    form_urlencoded::parse(format!("k={}", key.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| key.to_owned())
}

/// Applies `Impersonate-*` headers: the request then acts as the named
/// user, if `user` may impersonate it (the `impersonate` verb on `users`,
/// `groups`, `serviceaccounts`, `uids` and `userextras/<key>`), else 403.
/// Without enforcement the headers are applied unchecked.
pub(crate) async fn impersonate(
    auth: &Auth,
    headers: &HeaderMap,
    user: UserInfo,
    enforced: bool,
) -> Result<UserInfo, ApiError> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect()
    };
    let target_user = values(IMPERSONATE_USER).into_iter().next();
    let groups = values(IMPERSONATE_GROUP);
    let uid = values(IMPERSONATE_UID).into_iter().next();
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        if let Some(key) = name.as_str().strip_prefix(IMPERSONATE_EXTRA) {
            if let Ok(value) = value.to_str() {
                extra
                    .entry(unescape(key))
                    .or_default()
                    .push(value.to_owned());
            }
        }
    }
    let Some(target) = target_user else {
        if !groups.is_empty() || uid.is_some() || !extra.is_empty() {
            return Err(ApiError::bad_request(
                "impersonating groups, a uid or extra fields requires impersonating a user (Impersonate-User)",
            ));
        }
        return Ok(user);
    };
    // What to check, upstream's way: (verb on) resource, group, namespace, name.
    let mut checks: Vec<Attributes> = Vec::new();
    let service_account = target
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'));
    match service_account {
        Some((namespace, name)) => checks.push(Attributes::resource(
            "impersonate",
            "",
            "serviceaccounts",
            namespace,
            name,
        )),
        None => checks.push(Attributes::resource(
            "impersonate",
            "",
            "users",
            "",
            &target,
        )),
    }
    for group in &groups {
        checks.push(Attributes::resource("impersonate", "", "groups", "", group));
    }
    if let Some(uid) = &uid {
        checks.push(Attributes::resource(
            "impersonate",
            "authentication.k8s.io",
            "uids",
            "",
            uid,
        ));
    }
    for (key, values) in &extra {
        for value in values {
            checks.push(Attributes::resource(
                "impersonate",
                "authentication.k8s.io",
                &format!("userextras/{key}"),
                "",
                value,
            ));
        }
    }
    if enforced {
        let policy = auth.policy().current(&auth.registry).await?;
        for check in &checks {
            if let rbac::Decision::Deny(reason) = policy.authorize(&user, check) {
                return Err(rbac::forbidden(&user, check, &reason));
            }
        }
    }
    let mut groups = groups;
    if let Some((namespace, _)) = service_account {
        for group in [
            "system:serviceaccounts".to_owned(),
            format!("system:serviceaccounts:{namespace}"),
        ] {
            if !groups.contains(&group) {
                groups.push(group);
            }
        }
    }
    tracing::debug!(user = %user.name, as_user = %target, "impersonating");
    let impersonated = UserInfo {
        name: target,
        uid: uid.unwrap_or_default(),
        groups,
        extra,
    };
    Ok(if impersonated.is_anonymous() {
        impersonated
    } else {
        impersonated.authenticated()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_files_parse_like_kube_apiserver() {
        let tokens = StaticTokens::from_csv(
            "\u{feff}# comment\n\
             secret1,alice,uid-1,\"team,dev\"\n\
             secret2,bob,uid-2\n\
             \n\
             \"sec,ret3\",carol,uid-3,ops\n",
        )
        .expect("parse");
        assert_eq!(tokens.len(), 3);
        let alice = tokens.get("secret1").expect("alice");
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.uid, "uid-1");
        assert_eq!(alice.groups, ["team", "dev", "system:authenticated"]);
        assert_eq!(
            tokens.get("secret2").expect("bob").groups,
            ["system:authenticated"]
        );
        assert_eq!(tokens.get("sec,ret3").expect("carol").groups[0], "ops");
        assert!(tokens.get("nope").is_none());
        assert!(matches!(
            StaticTokens::from_csv("only,two"),
            Err(TokenFileError::Invalid { line: 1, .. })
        ));
        assert!(StaticTokens::from_csv(",user,uid").is_err());
        assert!(StaticTokens::from_csv("t,u,i,\"open").is_err());
        assert!(format!("{tokens:?}").contains("count: 3"));
        assert!(!format!("{tokens:?}").contains("secret1"));
    }

    #[test]
    fn bearer_tokens_come_from_the_authorization_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().expect("header"));
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().expect("header"));
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, "bearer ".parse().expect("header"));
        assert_eq!(bearer_token(&headers), None);
    }

    #[test]
    fn certificates_name_user_and_groups() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "alice");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "team");
        let cert = params.self_signed(&key).expect("cert");
        let user = certificate_user(cert.der()).expect("user");
        assert_eq!(user.name, "alice");
        assert_eq!(user.groups, ["team", "system:authenticated"]);
        assert!(certificate_user(b"garbage").is_none());
    }

    #[test]
    fn extra_keys_are_unescaped() {
        assert_eq!(unescape("scopes"), "scopes");
        assert_eq!(unescape("example.com%2fscope"), "example.com/scope");
    }
}
