//! The `AdmissionReview` a webhook receives and what it answers, in
//! `admission.k8s.io/v1` or `v1beta1` (the first of the webhook's
//! `admissionReviewVersions` this server speaks).

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::super::{Attributes, Operation};
use crate::resources::ResourceInfo;

/// The review versions this server sends, preferred first.
const SPOKEN: &[&str] = &["v1", "v1beta1"];

/// The version to send to a webhook that accepts `accepted`.
pub fn version(accepted: &[String]) -> Result<&'static str, String> {
    accepted
        .iter()
        .find_map(|v| SPOKEN.iter().find(|s| *s == v).copied())
        .ok_or_else(|| {
            "webhook does not accept known AdmissionReview versions (v1, v1beta1)".to_owned()
        })
}

/// The review of one request, as the webhook sees it: at `seen` (the
/// requested resource, or another version of it the webhook's rules name),
/// with `object` and `old` at that version.
pub fn request(
    version: &str,
    uid: &str,
    attributes: &Attributes<'_>,
    seen: &ResourceInfo,
    object: &Value,
    old: Option<&Value>,
) -> Value {
    let kind_of =
        |r: &ResourceInfo| json!({"group": r.group, "version": r.version, "kind": r.kind});
    let gvr_of =
        |r: &ResourceInfo| json!({"group": r.group, "version": r.version, "resource": r.plural});
    let (kind, gvr) = (kind_of(seen), gvr_of(seen));
    let requested = attributes.resource;
    let name = match crate::object::name(object) {
        "" => old.map(crate::object::name).unwrap_or(""),
        name => name,
    };
    let options_kind = match attributes.operation {
        Operation::Create => "CreateOptions",
        Operation::Update => "UpdateOptions",
        Operation::Delete => "DeleteOptions",
    };
    let mut options = json!({"kind": options_kind, "apiVersion": "meta.k8s.io/v1"});
    if attributes.dry_run {
        options["dryRun"] = json!(["All"]);
    }
    let mut request = Map::new();
    request.insert("uid".into(), json!(uid));
    request.insert("kind".into(), kind);
    request.insert("resource".into(), gvr);
    request.insert("requestKind".into(), kind_of(requested));
    request.insert("requestResource".into(), gvr_of(requested));
    if let Some(sub) = attributes.subresource {
        request.insert("subResource".into(), json!(sub));
        request.insert("requestSubResource".into(), json!(sub));
    }
    if !name.is_empty() {
        request.insert("name".into(), json!(name));
    }
    if let Some(ns) = attributes.namespace.filter(|ns| !ns.is_empty()) {
        request.insert("namespace".into(), json!(ns));
    }
    request.insert("operation".into(), json!(attributes.operation.as_str()));
    request.insert("userInfo".into(), user_info(attributes));
    request.insert("object".into(), object.clone());
    request.insert(
        "oldObject".into(),
        match attributes.operation {
            Operation::Create => Value::Null,
            _ => old.cloned().unwrap_or(Value::Null),
        },
    );
    request.insert("dryRun".into(), json!(attributes.dry_run));
    request.insert("options".into(), options);
    json!({
        "kind": "AdmissionReview",
        "apiVersion": format!("admission.k8s.io/{version}"),
        "request": request,
    })
}

fn user_info(attributes: &Attributes<'_>) -> Value {
    let Some(user) = &attributes.context.user else {
        return json!({"username": "system:apiserver", "groups": ["system:masters"]});
    };
    let mut info = json!({"username": user.name});
    if !user.uid.is_empty() {
        info["uid"] = json!(user.uid);
    }
    if !user.groups.is_empty() {
        info["groups"] = json!(user.groups);
    }
    if !user.extra.is_empty() {
        info["extra"] = json!(user.extra);
    }
    info
}

/// What a webhook answered.
#[derive(Debug, Default)]
pub struct Response {
    /// Whether the request may go on.
    pub allowed: bool,
    /// The `status` of a denial.
    pub status: Option<Value>,
    /// A JSON patch (decoded from base64), for mutating webhooks.
    pub patch: Option<Vec<u8>>,
    /// `warnings`, returned to the client.
    pub warnings: Vec<String>,
}

/// Reads a webhook's answer to the review `uid` sent in `version`, with
/// upstream's checks in upstream's order (`VerifyAdmissionResponse`): v1
/// answers must carry the uid, be a v1 `AdmissionReview`, and pair
/// `patch` with `patchType`; validating webhooks may not patch.
pub fn response(version: &str, uid: &str, mutating: bool, body: &[u8]) -> Result<Response, String> {
    let review: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let Some(answer) = review.get("response").filter(|r| r.is_object()) else {
        return Err("webhook response was absent".into());
    };
    let encoded = answer
        .get("patch")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty());
    let patch_type = answer.get("patchType").and_then(Value::as_str);
    if version == "v1" {
        let got = answer.get("uid").and_then(Value::as_str).unwrap_or("");
        if got != uid {
            return Err(format!("expected response.uid={uid:?}, got {got:?}"));
        }
        let api_version = review
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = review.get("kind").and_then(Value::as_str).unwrap_or("");
        if api_version != "admission.k8s.io/v1" || kind != "AdmissionReview" {
            return Err(format!(
                "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got {api_version}, Kind={kind}"
            ));
        }
        match (mutating, encoded.is_some(), patch_type) {
            (true, true, None) => {
                return Err("webhook returned response.patch but not response.patchType".into())
            }
            (true, false, Some(_)) => {
                return Err("webhook returned response.patchType but not response.patch".into())
            }
            (true, _, Some("")) => {
                return Err("webhook returned invalid response.patchType of \"\"".into())
            }
            (true, _, Some(t)) if t != "JSONPatch" => {
                return Err(format!("unsupported patch type {t:?}"))
            }
            (false, true, _) => {
                return Err("validating webhook may not return response.patch".into())
            }
            (false, false, Some(_)) => {
                return Err("validating webhook may not return response.patchType".into())
            }
            _ => {}
        }
    }
    let patch = match encoded.filter(|_| mutating) {
        Some(encoded) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| format!("illegal base64 data in response.patch: {e}"))?,
        ),
        None => None,
    };
    Ok(Response {
        allowed: answer
            .get("allowed")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        status: answer.get("status").filter(|s| s.is_object()).cloned(),
        patch,
        warnings: answer
            .get("warnings")
            .and_then(Value::as_array)
            .map(|w| {
                w.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
    })
}
