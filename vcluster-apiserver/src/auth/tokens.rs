//! Service-account tokens: JWTs this server signs (TokenRequest, `POST
//! serviceaccounts/<name>/token`, what `kubectl create token` and the
//! kubelet use) and accepts as bearer tokens.
//!
//! Tokens carry upstream's claims: `iss`, `sub`
//! (`system:serviceaccount:<ns>:<name>`), `aud`, `exp`, `iat`, `nbf`,
//! `jti` and the `kubernetes.io` claim (namespace, service account name
//! and uid, the bound pod or secret). They are signed with ES256 (a P-256
//! key the server generates, or the demo persists) or RS256 (an RSA key
//! given in PKCS#8 PEM).
//!
//! The crypto is `ring`'s: it is already the provider of this server's
//! rustls, it is small and audited, and its API offers exactly the two
//! fixed algorithms we need, so there is no algorithm negotiation to get
//! wrong. The JWS compact framing around it (three base64url parts) is
//! done here and is strict: the header's `alg` must be the key's, `kid`
//! must match when present, no `crit`, bounded size.
//!
//! A token authenticates only while its service account (and bound
//! object) still exists with the uid it was issued for, so deleting a
//! service account revokes its tokens.

use std::path::Path;
use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::StatusCode;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use serde_json::{json, Value};

use super::Auth;
use super::UserInfo;
use crate::error::{ApiError, FieldCause};
use crate::object;
use crate::registry::ObjectAddress;

/// The longest token accepted (bytes); real ones are about 1 KiB.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// The shortest lifetime a TokenRequest may ask for (upstream: 10 minutes).
const MIN_EXPIRATION_SECONDS: i64 = 600;
/// The lifetime a TokenRequest gets when it names none (upstream: 1 hour).
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;

/// Why a signing key cannot be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The system's random generator failed.
    #[error("generating a service-account signing key failed")]
    Generate,
    /// The PEM holds no usable key.
    #[error("invalid service-account signing key: {0}")]
    Invalid(String),
    /// Signing failed.
    #[error("signing a token failed")]
    Sign,
    /// Reading or writing the key file failed.
    #[error("service-account key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

enum Signer {
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
}

struct KeyInner {
    signer: Signer,
    public: Vec<u8>,
    kid: String,
    pem: String,
    rng: SystemRandom,
}

/// The key service-account tokens are signed and verified with.
#[derive(Clone)]
pub struct ServiceAccountKey(Arc<KeyInner>);

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("alg", &self.algorithm())
            .field("kid", &self.0.kid)
            .finish_non_exhaustive()
    }
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

impl ServiceAccountKey {
    /// A fresh ES256 (P-256) key.
    pub fn generate() -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| KeyError::Generate)?;
        Self::from_pem(pem_encode("PRIVATE KEY", pkcs8.as_ref()).as_bytes())
    }

    /// A key from an unencrypted PKCS#8 PEM (`BEGIN PRIVATE KEY`): P-256
    /// (ES256) or RSA of 2048 bits or more (RS256).
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let der =
            PrivateKeyDer::from_pem_slice(pem).map_err(|e| KeyError::Invalid(e.to_string()))?;
        let PrivateKeyDer::Pkcs8(pkcs8) = der else {
            return Err(KeyError::Invalid(
                "the key must be PKCS#8 (BEGIN PRIVATE KEY); convert it with `openssl pkcs8 -topk8 -nocrypt`".into(),
            ));
        };
        let rng = SystemRandom::new();
        let der = pkcs8.secret_pkcs8_der();
        let (signer, public) =
            match EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng) {
                Ok(pair) => {
                    let public = pair.public_key().as_ref().to_vec();
                    (Signer::Es256(pair), public)
                }
                Err(ec_err) => match RsaKeyPair::from_pkcs8(der) {
                    Ok(pair) => {
                        let public = pair.public().as_ref().to_vec();
                        (Signer::Rs256(pair), public)
                    }
                    Err(rsa_err) => {
                        return Err(KeyError::Invalid(format!(
                            "neither a P-256 key ({ec_err}) nor an RSA key ({rsa_err})"
                        )))
                    }
                },
            };
        let digest = ring::digest::digest(&ring::digest::SHA256, &public);
        let kid = URL_SAFE_NO_PAD.encode(digest.as_ref());
        Ok(Self(Arc::new(KeyInner {
            signer,
            public,
            kid,
            pem: pem_encode("PRIVATE KEY", der),
            rng,
        })))
    }

    /// Reads the key at `path`, or generates one and writes it there
    /// (owner-only), so tokens survive restarts.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read(path) {
            Ok(pem) => Self::from_pem(&pem),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate()?;
                crate::state_files::write_private_file(path, key.to_pem().as_bytes())
                    .map_err(io)?;
                Ok(key)
            }
            Err(err) => Err(io(err)),
        }
    }

    /// The private key as PKCS#8 PEM.
    pub fn to_pem(&self) -> &str {
        &self.0.pem
    }

    /// The JWS algorithm: `ES256` or `RS256`.
    pub fn algorithm(&self) -> &'static str {
        match self.0.signer {
            Signer::Es256(_) => "ES256",
            Signer::Rs256(_) => "RS256",
        }
    }

    /// The key id in token headers (base64url SHA-256 of the public key).
    pub fn key_id(&self) -> &str {
        &self.0.kid
    }

    /// Signs `claims` into a compact JWS (embedders and tests may mint
    /// their own tokens; the server checks the claims on use).
    pub fn sign(&self, claims: &Value) -> Result<String, KeyError> {
        let header = json!({"alg": self.algorithm(), "kid": self.0.kid});
        let encode = |v: &Value| serde_json::to_vec(v).map(|b| URL_SAFE_NO_PAD.encode(b));
        let header = encode(&header).map_err(|_| KeyError::Sign)?;
        let claims = encode(claims).map_err(|_| KeyError::Sign)?;
        let signing_input = format!("{header}.{claims}");
        let signature = match &self.0.signer {
            Signer::Es256(pair) => pair
                .sign(&self.0.rng, signing_input.as_bytes())
                .map_err(|_| KeyError::Sign)?
                .as_ref()
                .to_vec(),
            Signer::Rs256(pair) => {
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &self.0.rng,
                    signing_input.as_bytes(),
                    &mut signature,
                )
                .map_err(|_| KeyError::Sign)?;
                signature
            }
        };
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }

    /// Checks a token's framing, header and signature; returns its claims
    /// (not yet validated).
    pub fn verify(&self, token: &str) -> Result<Value, String> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err("the token is too long".into());
        }
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a JWS compact token".into());
        };
        let decode = |part: &str, what: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| format!("the {what} is not base64url"))
        };
        let header_json: Value = serde_json::from_slice(&decode(header, "header")?)
            .map_err(|_| "the header is not JSON".to_owned())?;
        if header_json.get("alg").and_then(Value::as_str) != Some(self.algorithm()) {
            return Err(format!("the token is not signed with {}", self.algorithm()));
        }
        if header_json.get("crit").is_some() {
            return Err("critical header extensions are not supported".into());
        }
        if let Some(kid) = header_json.get("kid") {
            if kid.as_str() != Some(self.0.kid.as_str()) {
                return Err("the token was signed with another key".into());
            }
        }
        let signature = decode(signature, "signature")?;
        let signing_input = &token[..header.len() + 1 + claims.len()];
        let algorithm: &dyn ring::signature::VerificationAlgorithm = match self.0.signer {
            Signer::Es256(_) => &ECDSA_P256_SHA256_FIXED,
            Signer::Rs256(_) => &RSA_PKCS1_2048_8192_SHA256,
        };
        UnparsedPublicKey::new(algorithm, &self.0.public)
            .verify(signing_input.as_bytes(), &signature)
            .map_err(|_| "the signature does not verify".to_owned())?;
        let claims: Value = serde_json::from_slice(&decode(claims, "payload")?)
            .map_err(|_| "the payload is not JSON".to_owned())?;
        if !claims.is_object() {
            return Err("the payload is not a JSON object".into());
        }
        Ok(claims)
    }
}

/// What a valid token's claims say.
#[derive(Debug, PartialEq, Eq)]
struct Claims {
    /// The token's audiences that were asked for (upstream's intersection).
    audiences: Vec<String>,
    namespace: String,
    name: String,
    uid: String,
    /// Bound object: (kind, name, uid).
    bound: Option<(&'static str, String, String)>,
    jti: String,
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Validates the standard and Kubernetes claims against the server's
/// issuer and audiences at time `now`.
fn validate_claims(
    claims: &Value,
    issuer: &str,
    audiences: &[String],
    now: i64,
) -> Result<Claims, String> {
    let str_claim = |name: &str| claims.get(name).and_then(Value::as_str);
    if str_claim("iss") != Some(issuer) {
        return Err("the token has another issuer".into());
    }
    let token_audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let matched: Vec<String> = audiences
        .iter()
        .filter(|a| token_audiences.contains(&a.as_str()))
        .cloned()
        .collect();
    if matched.is_empty() {
        return Err(format!(
            "token audiences {token_audiences:?} is invalid for the target audiences {audiences:?}"
        ));
    }
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or("the token has no expiry")?;
    if now >= exp {
        return Err("the token has expired".into());
    }
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64) {
        if now < nbf {
            return Err("the token is not valid yet".into());
        }
    }
    let sub = str_claim("sub").ok_or("the token has no subject")?;
    let Some((namespace, name)) = sub
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
    else {
        return Err("the subject is not a service account".into());
    };
    let k8s = claims
        .get("kubernetes.io")
        .ok_or("the token has no kubernetes.io claim")?;
    let k8s_str = |path: &str| k8s.pointer(path).and_then(Value::as_str).unwrap_or("");
    if k8s_str("/namespace") != namespace || k8s_str("/serviceaccount/name") != name {
        return Err("the kubernetes.io claim does not match the subject".into());
    }
    let bound = [("pod", "Pod"), ("secret", "Secret")]
        .into_iter()
        .find_map(|(claim, kind)| {
            let object = k8s.get(claim)?;
            Some((
                kind,
                object::path_str(object, "name").to_owned(),
                object::path_str(object, "uid").to_owned(),
            ))
        });
    Ok(Claims {
        audiences: matched,
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        uid: k8s_str("/serviceaccount/uid").to_owned(),
        bound,
        jti: str_claim("jti").unwrap_or("").to_owned(),
    })
}

async fn stored_object(
    auth: &Auth,
    plural: &str,
    namespace: &str,
    name: &str,
) -> Result<Option<Value>, ApiError> {
    let Some(resource) = auth.registry.catalog().get("", "v1", plural) else {
        return Ok(None);
    };
    let address = ObjectAddress {
        resource,
        namespace: Some(namespace.to_owned()),
        name: name.to_owned(),
    };
    match auth.registry.get(&address).await {
        Ok(object) => Ok(Some(object)),
        Err(err) if err.reason == "NotFound" => Ok(None),
        Err(err) => Err(err),
    }
}

async fn object_uid(
    auth: &Auth,
    plural: &str,
    namespace: &str,
    name: &str,
) -> Result<Option<String>, ApiError> {
    Ok(stored_object(auth, plural, namespace, name)
        .await?
        .map(|object| object::meta_str(&object, "uid").to_owned()))
}

/// Authenticates a service-account token meant for one of `audiences`
/// (a TokenReview asks for its own); returns the user and the token's
/// audiences among them, which the review reports as upstream does.
pub(crate) async fn authenticate_for(
    auth: &Auth,
    token: &str,
    audiences: &[String],
) -> Result<(UserInfo, Vec<String>), String> {
    let claims = auth.key.verify(token)?;
    let claims = validate_claims(&claims, &auth.issuer, audiences, now())?;
    let stored = object_uid(auth, "serviceaccounts", &claims.namespace, &claims.name)
        .await
        .map_err(|e| format!("the service account cannot be read: {e}"))?;
    match stored {
        Some(uid) if claims.uid.is_empty() || uid == claims.uid => {}
        Some(_) => return Err("the service account was deleted and created again".into()),
        None => return Err("the service account does not exist".into()),
    }
    let mut extra = std::collections::BTreeMap::new();
    if let Some((kind, name, uid)) = &claims.bound {
        let plural = if *kind == "Pod" { "pods" } else { "secrets" };
        let stored = object_uid(auth, plural, &claims.namespace, name)
            .await
            .map_err(|e| format!("the bound object cannot be read: {e}"))?;
        if stored.as_deref() != Some(uid.as_str()) {
            return Err(format!("the {kind} the token is bound to no longer exists"));
        }
        if *kind == "Pod" {
            extra.insert(
                "authentication.kubernetes.io/pod-name".to_owned(),
                vec![name.clone()],
            );
            extra.insert(
                "authentication.kubernetes.io/pod-uid".to_owned(),
                vec![uid.clone()],
            );
        }
    }
    if !claims.jti.is_empty() {
        extra.insert(
            "authentication.kubernetes.io/credential-id".to_owned(),
            vec![format!("JTI={}", claims.jti)],
        );
    }
    let user = UserInfo {
        name: format!("system:serviceaccount:{}:{}", claims.namespace, claims.name),
        uid: claims.uid,
        groups: vec![
            "system:serviceaccounts".to_owned(),
            format!("system:serviceaccounts:{}", claims.namespace),
        ],
        extra,
    }
    .authenticated();
    Ok((user, claims.audiences))
}

fn invalid(field: &str, value: &str, why: &str) -> ApiError {
    ApiError::invalid(
        "TokenRequest",
        "",
        vec![FieldCause::invalid(field, value, why)],
    )
}

/// `POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token`: issues a
/// token for the service account (authentication.k8s.io/v1 TokenRequest).
pub(crate) async fn token_request(
    auth: &Auth,
    namespace: &str,
    name: &str,
    request: Request,
) -> Result<Response, ApiError> {
    let body = super::read_object(request).await?;
    let kind = object::path_str(&body, "kind");
    if !kind.is_empty() && kind != "TokenRequest" {
        return Err(ApiError::bad_request(format!(
            "expected a TokenRequest, got a {kind}"
        )));
    }
    let spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
    let mut audiences: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if audiences.is_empty() {
        audiences = auth.api_audiences.clone();
    }
    let requested = spec
        .get("expirationSeconds")
        .filter(|v| !v.is_null())
        .map(|v| {
            v.as_i64().ok_or_else(|| {
                invalid(
                    "spec.expirationSeconds",
                    &v.to_string(),
                    "must be an integer",
                )
            })
        })
        .transpose()?
        .unwrap_or(DEFAULT_EXPIRATION_SECONDS);
    if requested < MIN_EXPIRATION_SECONDS {
        return Err(invalid(
            "spec.expirationSeconds",
            &requested.to_string(),
            "may not specify a duration less than 10 minutes",
        ));
    }
    let max = i64::try_from(auth.max_token_expiration.as_secs()).unwrap_or(i64::MAX);
    let expiration = requested.min(max.max(MIN_EXPIRATION_SECONDS));
    let uid = object_uid(auth, "serviceaccounts", namespace, name)
        .await?
        .ok_or_else(|| ApiError::not_found("", "serviceaccounts", name))?;
    let mut k8s = json!({
        "namespace": namespace,
        "serviceaccount": {"name": name, "uid": uid},
    });
    let bound_ref = spec.get("boundObjectRef").filter(|b| !b.is_null()).cloned();
    if let Some(bound) = &bound_ref {
        let kind = object::path_str(bound, "kind");
        let bound_name = object::path_str(bound, "name");
        let (claim, plural) = match kind {
            "Pod" => ("pod", "pods"),
            "Secret" => ("secret", "secrets"),
            other => {
                return Err(invalid(
                    "spec.boundObjectRef.kind",
                    other,
                    "supported values: \"Pod\", \"Secret\"",
                ))
            }
        };
        let bound_object = stored_object(auth, plural, namespace, bound_name)
            .await?
            .ok_or_else(|| ApiError::not_found("", plural, bound_name))?;
        // A pod's token is for the account the pod runs as.
        let runs_as = match object::path_str(&bound_object, "spec.serviceAccountName") {
            "" => "default",
            account => account,
        };
        if kind == "Pod" && runs_as != name {
            return Err(ApiError::bad_request(format!(
                "cannot bind token for serviceaccount {name:?} to pod running with different serviceaccount name."
            )));
        }
        let stored = object::meta_str(&bound_object, "uid").to_owned();
        let wanted = object::path_str(bound, "uid");
        if !wanted.is_empty() && wanted != stored {
            return Err(ApiError::conflict(
                "",
                plural,
                bound_name,
                format!("the UID in the bound object reference ({wanted}) does not match the {kind}'s ({stored})"),
            ));
        }
        k8s[claim] = json!({"name": bound_name, "uid": stored});
    }
    let issued = now();
    let expires = issued.saturating_add(expiration);
    let claims = json!({
        "iss": auth.issuer,
        "sub": format!("system:serviceaccount:{namespace}:{name}"),
        "aud": audiences,
        "exp": expires,
        "iat": issued,
        "nbf": issued,
        "jti": uuid::Uuid::new_v4().to_string(),
        "kubernetes.io": k8s,
    });
    let token = auth
        .key
        .sign(&claims)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let expiration_timestamp = jiff::Timestamp::from_second(expires)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    let mut spec_out = json!({"audiences": audiences, "expirationSeconds": expiration});
    if let Some(bound) = bound_ref {
        spec_out["boundObjectRef"] = bound;
    }
    tracing::debug!(
        namespace,
        service_account = name,
        expiration,
        "issued a service-account token"
    );
    Ok(crate::request::negotiate::json(
        StatusCode::CREATED,
        &json!({
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": object::now_rfc3339()},
            "spec": spec_out,
            "status": {"token": token, "expirationTimestamp": expiration_timestamp},
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Value {
        json!({
            "iss": "https://issuer", "aud": ["https://issuer"], "exp": exp, "nbf": 0,
            "sub": "system:serviceaccount:team:builder", "jti": "j1",
            "kubernetes.io": {"namespace": "team", "serviceaccount": {"name": "builder", "uid": "u1"}},
        })
    }

    #[test]
    fn tokens_round_trip_and_forgeries_fail() {
        let key = ServiceAccountKey::generate().expect("key");
        assert_eq!(key.algorithm(), "ES256");
        let token = key.sign(&claims(10)).expect("sign");
        assert_eq!(
            key.verify(&token).expect("verify")["sub"],
            "system:serviceaccount:team:builder"
        );
        // Another key's signature.
        let other = ServiceAccountKey::generate().expect("key");
        assert!(other.verify(&token).is_err());
        // A changed payload.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(i64::MAX)).expect("json"));
        parts[1] = &forged;
        assert_eq!(
            key.verify(&parts.join(".")).expect_err("forged"),
            "the signature does not verify"
        );
        // `alg: none` and other framings.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(b"{}")
        );
        assert!(key.verify(&none).is_err());
        assert!(key.verify("a.b").is_err());
        assert!(key.verify("a.b.c.d").is_err());
        assert!(key.verify(&"x".repeat(MAX_TOKEN_BYTES + 1)).is_err());
    }

    #[test]
    fn keys_persist_as_pkcs8_pem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sa.key");
        let first = ServiceAccountKey::load_or_create(&path).expect("create");
        let again = ServiceAccountKey::load_or_create(&path).expect("load");
        assert_eq!(first.key_id(), again.key_id());
        let token = first.sign(&claims(10)).expect("sign");
        assert!(again.verify(&token).is_ok());
        assert!(ServiceAccountKey::from_pem(b"not a key").is_err());
    }

    #[test]
    fn claims_are_checked() {
        let audiences = vec!["https://issuer".to_owned()];
        let ok = validate_claims(&claims(100), "https://issuer", &audiences, 50).expect("valid");
        assert_eq!(
            (ok.namespace.as_str(), ok.name.as_str(), ok.uid.as_str()),
            ("team", "builder", "u1")
        );
        assert_eq!(
            validate_claims(&claims(100), "https://issuer", &audiences, 100).expect_err("expired"),
            "the token has expired"
        );
        assert!(validate_claims(&claims(100), "https://other", &audiences, 50).is_err());
        assert!(validate_claims(&claims(100), "https://issuer", &["x".to_owned()], 50).is_err());
        let mut wrong = claims(100);
        wrong["kubernetes.io"]["namespace"] = json!("other");
        assert!(validate_claims(&wrong, "https://issuer", &audiences, 50).is_err());
        let mut user = claims(100);
        user["sub"] = json!("alice");
        assert!(validate_claims(&user, "https://issuer", &audiences, 50).is_err());
    }
}
