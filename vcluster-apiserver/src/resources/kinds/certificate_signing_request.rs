//! Certificate signing requests (certificates.k8s.io/v1): a client asks
//! a signer for a certificate; someone with the right approves or denies
//! it through the `approval` subresource; the signer writes the
//! certificate into `status` (for `kubernetes.io/kube-apiserver-client`,
//! the controllers crate's signer, with the cluster CA).
//!
//! As upstream: the requester's identity is stamped into the spec on
//! create (never taken from the body), the spec never changes, and an
//! update of the main resource keeps the stored status.

use std::collections::BTreeSet;

use base64::Engine as _;
use k8s_openapi::api::certificates;
use serde_json::{json, Value};

use super::fields::{invalid_raw, text, untrack_generation};
use super::BuiltinKind;
use crate::auth::UserInfo;
use crate::error::FieldCause;
use crate::resources::strategy::{default_for_update, Strategy, Subresource};
use crate::resources::table::{columns, platform, Printer};
use crate::resources::Typed;

/// The CertificateSigningRequest kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "certificates.k8s.io",
    "certificatesigningrequests",
    "CertificateSigningRequest",
    Typed::of::<certificates::v1::CertificateSigningRequest>(),
    &CertificateSigningRequests,
)
.short_names(&["csr"])
.with_status()
.subresources(&[APPROVAL]);

/// `certificatesigningrequests/approval`: where approvers add the
/// `Approved` or `Denied` condition.
const APPROVAL: Subresource = Subresource {
    name: "approval",
    kind: "CertificateSigningRequest",
    verbs: &["get", "patch", "update"],
};

/// Key usages a request may ask for (upstream's `allValidUsages`, sorted
/// as its error lists them).
const USAGES: &[&str] = &[
    "any",
    "cert sign",
    "client auth",
    "code signing",
    "content commitment",
    "crl sign",
    "data encipherment",
    "decipher only",
    "digital signature",
    "email protection",
    "encipher only",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "key agreement",
    "key encipherment",
    "microsoft sgc",
    "netscape sgc",
    "ocsp signing",
    "s/mime",
    "server auth",
    "signing",
    "timestamping",
];

/// Shortest validity a request may ask for.
const MIN_EXPIRATION_SECONDS: i64 = 600;

/// The rules of CertificateSigningRequest objects.
#[derive(Debug)]
struct CertificateSigningRequests;

impl Strategy for CertificateSigningRequests {
    fn default(&self, object: &mut Value) {
        untrack_generation(object);
    }

    fn prepare_for_create(&self, object: &mut Value) {
        // A new request has no conditions and no certificate yet.
        if let Some(map) = object.as_object_mut() {
            map.insert("status".into(), json!({}));
        }
    }

    fn stamp_requester(&self, object: &mut Value, requester: &UserInfo) {
        let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        spec.insert("username".into(), json!(requester.name));
        for field in ["uid", "groups", "extra"] {
            spec.remove(field);
        }
        if !requester.uid.is_empty() {
            spec.insert("uid".into(), json!(requester.uid));
        }
        if !requester.groups.is_empty() {
            spec.insert("groups".into(), json!(requester.groups));
        }
        if !requester.extra.is_empty() {
            spec.insert("extra".into(), json!(requester.extra));
        }
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        let spec = object.get("spec").unwrap_or(&Value::Null);
        let request = text(object, "spec.request");
        if let Err(why) = parse_request(request) {
            causes.push(invalid_raw("spec.request", &go_bytes(request), &why));
        }
        let usages: Vec<&str> = spec
            .get("usages")
            .and_then(Value::as_array)
            .map(|u| u.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if usages.is_empty() {
            causes.push(FieldCause::required("spec.usages"));
        }
        let mut seen = BTreeSet::new();
        for (i, usage) in usages.iter().enumerate() {
            let field = format!("spec.usages[{i}]");
            if !USAGES.contains(usage) {
                causes.push(FieldCause::not_supported(field, usage, USAGES));
            } else if !seen.insert(*usage) {
                causes.push(FieldCause {
                    reason: "FieldValueDuplicate",
                    field,
                    message: format!("Duplicate value: {usage:?}"),
                });
            }
        }
        let signer = text(object, "spec.signerName");
        if signer.is_empty() {
            causes.push(FieldCause::required("spec.signerName"));
        } else if signer == "kubernetes.io/legacy-unknown" {
            causes.push(FieldCause::invalid(
                "spec.signerName",
                signer,
                "the legacy signerName is not allowed via this API version",
            ));
        } else if let Some(why) = signer_name_error(signer) {
            causes.push(FieldCause::invalid("spec.signerName", signer, why));
        }
        if let Some(seconds) = spec.get("expirationSeconds").and_then(Value::as_i64) {
            if seconds < MIN_EXPIRATION_SECONDS {
                causes.push(invalid_raw(
                    "spec.expirationSeconds",
                    &seconds.to_string(),
                    "may not specify a duration less than 600 seconds (10 minutes)",
                ));
            }
        }
        validate_conditions(object, causes);
    }

    fn reset_fields(&self) -> &'static [&'static str] {
        // The spec is the requester's stamp and never changes after create:
        // no writer owns it, as upstream's strategy says.
        &["spec"]
    }

    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        default_for_update(self, old, new);
        // Neither the spec nor the status changes through the main
        // resource; `status` and `approval` have their own paths.
        for field in ["spec", "status"] {
            match old.get(field) {
                Some(value) => new[field] = value.clone(),
                None => {
                    if let Some(map) = new.as_object_mut() {
                        map.remove(field);
                    }
                }
            }
        }
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(
            columns::CSR,
            platform::certificate_signing_request,
        ))
    }
}

/// The conditions: typed, with a valid status, each type once, and never
/// both approved and denied.
fn validate_conditions(object: &Value, causes: &mut Vec<FieldCause>) {
    let conditions = crate::object::path(object, "status.conditions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut seen = BTreeSet::new();
    for (i, condition) in conditions.iter().enumerate() {
        let at = format!("status.conditions[{i}]");
        let kind = text(condition, "type");
        if kind.is_empty() {
            causes.push(FieldCause::required(format!("{at}.type")));
        }
        match text(condition, "status") {
            "" => causes.push(FieldCause::required(format!("{at}.status"))),
            "True" | "False" | "Unknown" => {}
            other => causes.push(FieldCause::not_supported(
                format!("{at}.status"),
                other,
                &["False", "True", "Unknown"],
            )),
        }
        if !kind.is_empty() && !seen.insert(kind) {
            causes.push(FieldCause {
                reason: "FieldValueDuplicate",
                field: format!("{at}.type"),
                message: format!("Duplicate value: {kind:?}"),
            });
        }
    }
    if seen.contains("Approved") && seen.contains("Denied") {
        causes.push(FieldCause::invalid(
            "status.conditions",
            "Denied",
            "Approved and Denied conditions are mutually exclusive",
        ));
    }
}

/// The DER of the PEM `CERTIFICATE REQUEST` in `request` (base64 of the
/// PEM, as JSON carries bytes), or upstream's reason it is not one.
pub(crate) fn parse_request(request: &str) -> Result<Vec<u8>, String> {
    let pem = base64::engine::general_purpose::STANDARD
        .decode(request)
        .map_err(|_| "PEM block type must be CERTIFICATE REQUEST".to_owned())?;
    let pem = String::from_utf8_lossy(&pem);
    let begin = "-----BEGIN CERTIFICATE REQUEST-----";
    let end = "-----END CERTIFICATE REQUEST-----";
    let (Some(start), Some(stop)) = (pem.find(begin), pem.find(end)) else {
        return Err("PEM block type must be CERTIFICATE REQUEST".into());
    };
    let body: String = pem[start + begin.len()..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| "PEM block type must be CERTIFICATE REQUEST".to_owned())?;
    use x509_parser::prelude::FromDer;
    x509_parser::certification_request::X509CertificationRequest::from_der(&der)
        .map_err(|err| format!("x509: malformed certificate request: {err}"))?;
    Ok(der)
}

/// A signer name is `domain/path`, the domain a DNS subdomain.
fn signer_name_error(signer: &str) -> Option<String> {
    let Some((domain, path)) = signer.split_once('/') else {
        return Some("must be a fully qualified domain and path of the form 'example.com/signer-name'".into());
    };
    if path.is_empty() {
        return Some("validating path: must not be empty".into());
    }
    vcluster_core::validation::dns1123_subdomain_errors(domain)
        .into_iter()
        .next()
        .map(|why| format!("validating domain: {why}"))
}

/// A byte field as Go's `%#v` of `[]byte` shows it, shortened: upstream
/// prints the bytes themselves.
fn go_bytes(base64_text: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(base64_text)
        .unwrap_or_default();
    let shown: Vec<String> = bytes.iter().map(|b| format!("0x{b:x}")).collect();
    format!("[]byte{{{}}}", shown.join(", "))
}
