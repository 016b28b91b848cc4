//! The `kubernetes.io/kube-apiserver-client` signer, as upstream's
//! csrsigning controller runs it: an approved request for that signer
//! gets a client certificate signed by the cluster CA (the one the API
//! server trusts for client certificates), valid for the requested
//! duration up to [`ClusterSigner::max_duration`], written to
//! `status.certificate`. A request that asks for what the signer does
//! not issue (server usages, a CA) gets a `Failed` condition instead.
//!
//! Other signers' requests are left to their own signers; denied and
//! failed ones are never signed.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use rcgen::{CertificateSigningRequestParams, Issuer, KeyPair};
use rustls_pki_types::CertificateSigningRequestDer;
use tokio_util::sync::CancellationToken;

use crate::error::{ApiContext, Result};
use crate::meta::name_of;
use crate::runtime::{drive, Shared};

/// The signer this controller serves.
pub const KUBE_APISERVER_CLIENT: &str = "kubernetes.io/kube-apiserver-client";

const KIND: &str = "CertificateSigningRequest";

/// The usages a client certificate may carry.
const CLIENT_USAGES: &[&str] = &["client auth", "digital signature", "key encipherment"];

/// The CA that signs client certificates, and for how long at most.
#[derive(Clone)]
pub struct ClusterSigner {
    /// The CA certificate (PEM).
    pub ca_cert_pem: String,
    /// Its private key (PEM).
    pub ca_key_pem: String,
    /// The longest validity handed out (upstream's
    /// `--cluster-signing-duration`: one year).
    pub max_duration: Duration,
}

impl ClusterSigner {
    /// A signer with upstream's one-year limit.
    pub fn new(ca_cert_pem: impl Into<String>, ca_key_pem: impl Into<String>) -> Self {
        Self {
            ca_cert_pem: ca_cert_pem.into(),
            ca_key_pem: ca_key_pem.into(),
            max_duration: Duration::from_secs(365 * 24 * 3600),
        }
    }
}

impl std::fmt::Debug for ClusterSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSigner")
            .field("max_duration", &self.max_duration)
            .finish_non_exhaustive()
    }
}

/// Runs the signer until `cancel` fires (only when a signer is set).
pub(crate) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let api = Api::<CertificateSigningRequest>::all(shared.client.clone());
    let controller = Controller::new(api, watcher::Config::default());
    drive("csrsigning", controller, shared, reconcile, cancel).await;
}

/// What to do with a request: nothing, sign it, or fail it (and why).
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Not this signer's, not approved, already issued, denied or failed.
    Skip,
    /// Issue a certificate.
    Sign,
    /// Refuse with a `Failed` condition carrying this message.
    Fail(String),
}

/// Decides, from the request alone.
pub fn decide(csr: &CertificateSigningRequest) -> Decision {
    if csr.spec.signer_name != KUBE_APISERVER_CLIENT {
        return Decision::Skip;
    }
    let status = csr.status.as_ref();
    if status
        .and_then(|s| s.certificate.as_ref())
        .is_some_and(|c| !c.0.is_empty())
    {
        return Decision::Skip;
    }
    let has = |kind: &str| {
        status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == kind && c.status == "True"))
    };
    if !has("Approved") || has("Denied") || has("Failed") {
        return Decision::Skip;
    }
    let usages = csr.spec.usages.clone().unwrap_or_default();
    if !usages.iter().any(|u| u == "client auth") {
        return Decision::Fail("missing required usages [\"client auth\"]".into());
    }
    let invalid: Vec<&String> = usages
        .iter()
        .filter(|u| !CLIENT_USAGES.contains(&u.as_str()))
        .collect();
    if !invalid.is_empty() {
        return Decision::Fail(format!("invalid usages: {invalid:?}"));
    }
    Decision::Sign
}

/// Signs `request` (DER) with `signer` for `duration`: the subject and
/// public key of the request, client-auth usage, never a CA.
pub fn sign(
    signer: &ClusterSigner,
    request: &[u8],
    duration: Duration,
) -> std::result::Result<String, String> {
    let der = CertificateSigningRequestDer::from(request.to_vec());
    let mut params = CertificateSigningRequestParams::from_der(&der)
        .map_err(|err| format!("the request does not parse: {err}"))?;
    if !params.params.subject_alt_names.is_empty() {
        return Err("a client certificate may not carry subject alternative names".into());
    }
    let now = time::OffsetDateTime::now_utc();
    params.params.not_before = now - time::Duration::minutes(5);
    params.params.not_after = now + time::Duration::seconds(duration.as_secs() as i64);
    params.params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    params.params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    params.params.use_authority_key_identifier_extension = true;
    let key = KeyPair::from_pem(&signer.ca_key_pem).map_err(|err| format!("the CA key: {err}"))?;
    let issuer = Issuer::from_ca_cert_pem(&signer.ca_cert_pem, key)
        .map_err(|err| format!("the CA certificate: {err}"))?;
    let certificate = params
        .signed_by(&issuer)
        .map_err(|err| format!("signing failed: {err}"))?;
    Ok(certificate.pem())
}

/// The PEM request's DER.
fn request_der(csr: &CertificateSigningRequest) -> std::result::Result<Vec<u8>, String> {
    let pem = String::from_utf8_lossy(&csr.spec.request.0).into_owned();
    let begin = "-----BEGIN CERTIFICATE REQUEST-----";
    let end = "-----END CERTIFICATE REQUEST-----";
    let (Some(start), Some(stop)) = (pem.find(begin), pem.find(end)) else {
        return Err("PEM block type must be CERTIFICATE REQUEST".into());
    };
    let body: String = pem[start + begin.len()..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|err| format!("the PEM block does not decode: {err}"))
}

async fn reconcile(obj: Arc<CertificateSigningRequest>, shared: Arc<Shared>) -> Result<Action> {
    let Some(signer) = shared.options.signer.clone() else {
        return Ok(Action::await_change());
    };
    let name = name_of(obj.as_ref())?;
    let api = Api::<CertificateSigningRequest>::all(shared.client.clone());
    let Some(mut csr) = api.get_opt(&name).await.context("get", KIND, &name)? else {
        return Ok(Action::await_change());
    };
    let outcome = match decide(&csr) {
        Decision::Skip => return Ok(Action::await_change()),
        Decision::Fail(message) => Err(message),
        Decision::Sign => {
            let requested = csr
                .spec
                .expiration_seconds
                .map(|s| Duration::from_secs(s.max(0) as u64))
                .unwrap_or(signer.max_duration);
            request_der(&csr)
                .and_then(|der| sign(&signer, &der, requested.min(signer.max_duration)))
        }
    };
    let status = csr.status.get_or_insert_with(Default::default);
    match outcome {
        Ok(pem) => {
            status.certificate = Some(k8s_openapi::ByteString(pem.into_bytes()));
        }
        Err(message) => {
            let now = Time(shared.now());
            status.conditions.get_or_insert_with(Vec::new).push(
                CertificateSigningRequestCondition {
                    type_: "Failed".into(),
                    status: "True".into(),
                    reason: Some("SignerValidationFailure".into()),
                    message: Some(message),
                    last_update_time: Some(now.clone()),
                    last_transition_time: Some(now),
                },
            );
        }
    }
    api.replace_status(&name, &PostParams::default(), &csr)
        .await
        .context("update status", KIND, &name)?;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::certificates::v1::{
        CertificateSigningRequestSpec, CertificateSigningRequestStatus,
    };

    fn request(usages: &[&str], conditions: &[&str]) -> CertificateSigningRequest {
        CertificateSigningRequest {
            spec: CertificateSigningRequestSpec {
                signer_name: KUBE_APISERVER_CLIENT.into(),
                usages: Some(usages.iter().map(|u| (*u).to_owned()).collect()),
                ..Default::default()
            },
            status: Some(CertificateSigningRequestStatus {
                conditions: Some(
                    conditions
                        .iter()
                        .map(|c| CertificateSigningRequestCondition {
                            type_: (*c).into(),
                            status: "True".into(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                certificate: None,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn only_approved_client_requests_are_signed() {
        assert_eq!(
            decide(&request(&["client auth"], &["Approved"])),
            Decision::Sign
        );
        assert_eq!(decide(&request(&["client auth"], &[])), Decision::Skip);
        assert_eq!(
            decide(&request(&["client auth"], &["Approved", "Denied"])),
            Decision::Skip
        );
        assert!(matches!(
            decide(&request(&["server auth"], &["Approved"])),
            Decision::Fail(_)
        ));
        let mut other = request(&["client auth"], &["Approved"]);
        other.spec.signer_name = "example.com/signer".into();
        assert_eq!(decide(&other), Decision::Skip);
    }
}
