//! The webhooks of the stored Mutating/ValidatingWebhookConfigurations,
//! read once per change into what a call needs: rules, selectors,
//! policies and a ready TLS client configuration.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use vcluster_core::selector::Selector;

use super::super::policy::compile::Expression;
use super::client::{self, Endpoint};
use super::matching::{self, Rule};

/// Upstream's ceiling on `timeoutSeconds`.
const MAX_TIMEOUT_SECONDS: u64 = 30;
/// Upstream's default `timeoutSeconds`.
const DEFAULT_TIMEOUT_SECONDS: u64 = 10;

/// One webhook of a configuration, parsed.
#[derive(Debug)]
pub struct Hook {
    /// The webhook's name (`pods.example.com`), which errors name.
    pub name: String,
    /// What the webhook applies to; a request matching any rule is sent.
    pub rules: Vec<Rule>,
    /// `failurePolicy: Fail` (the default); `false` is `Ignore`.
    pub fail_closed: bool,
    /// `matchPolicy: Exact`; `false` is `Equivalent` (the default).
    pub exact: bool,
    /// `namespaceSelector`; `None` when empty (matches everything) and
    /// `Err` when it does not parse (the webhook then fails to call).
    pub namespace_selector: Result<Option<Selector>, String>,
    /// `objectSelector`, as `namespace_selector`.
    pub object_selector: Result<Option<Selector>, String>,
    /// `sideEffects` is `None` or `NoneOnDryRun`: the webhook may be
    /// called on a dry run.
    pub dry_run_safe: bool,
    /// `timeoutSeconds` (default 10, at most 30).
    pub timeout: Duration,
    /// `admissionReviewVersions`, in the webhook's order of preference.
    pub review_versions: Vec<String>,
    /// `reinvocationPolicy: IfNeeded` (mutating webhooks only).
    pub reinvoke: bool,
    /// Where the webhook is and how its certificate is verified; `Err`
    /// when the client configuration cannot be used.
    pub client: Result<Client, String>,
    /// `matchConditions` (CEL), by name: all must hold for a call.
    pub match_conditions: Vec<(String, Expression)>,
}

/// How to reach a webhook.
#[derive(Clone, Debug)]
pub struct Client {
    /// A URL or a service.
    pub endpoint: Endpoint,
    /// TLS verified against the `caBundle` (the system roots without one).
    pub tls: Arc<rustls::ClientConfig>,
}

/// The webhooks of every configuration of one kind, in upstream's order:
/// configurations by name, webhooks in their order within each.
pub fn hooks(mut configurations: Vec<Value>, mutating: bool) -> Vec<Arc<Hook>> {
    configurations.sort_by(|a, b| crate::object::name(a).cmp(crate::object::name(b)));
    configurations
        .iter()
        .flat_map(|c| c.get("webhooks").and_then(Value::as_array).into_iter())
        .flatten()
        .map(|hook| Arc::new(parse(hook, mutating)))
        .collect()
}

fn parse(hook: &Value, mutating: bool) -> Hook {
    let text = |field: &str| hook.get(field).and_then(Value::as_str).unwrap_or("");
    let timeout = hook
        .get("timeoutSeconds")
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_TIMEOUT_SECONDS)
        .clamp(1, MAX_TIMEOUT_SECONDS);
    Hook {
        name: text("name").to_owned(),
        rules: hook
            .get("rules")
            .and_then(Value::as_array)
            .map(|rules| rules.iter().map(Rule::parse).collect())
            .unwrap_or_default(),
        fail_closed: text("failurePolicy") != "Ignore",
        exact: text("matchPolicy") == "Exact",
        namespace_selector: matching::selector(hook.get("namespaceSelector")),
        object_selector: matching::selector(hook.get("objectSelector")),
        dry_run_safe: matches!(text("sideEffects"), "None" | "NoneOnDryRun"),
        timeout: Duration::from_secs(timeout),
        review_versions: hook
            .get("admissionReviewVersions")
            .and_then(Value::as_array)
            .map(|v| {
                v.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        reinvoke: mutating && text("reinvocationPolicy") == "IfNeeded",
        client: client_of(hook.get("clientConfig").unwrap_or(&Value::Null)),
        match_conditions: hook
            .get("matchConditions")
            .and_then(Value::as_array)
            .map(|conditions| {
                conditions
                    .iter()
                    .map(|c| {
                        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
                        let source = c.get("expression").and_then(Value::as_str).unwrap_or("");
                        (name.to_owned(), Expression::compile(source))
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// How to reach the webhook a stored `clientConfig` names (admission and
/// CRD conversion webhooks alike).
pub fn client_of(config: &Value) -> Result<Client, String> {
    let endpoint = Endpoint::parse(config)?;
    let ca = match config.get("caBundle").and_then(Value::as_str) {
        Some(encoded) if !encoded.is_empty() => {
            use base64::Engine as _;
            Some(
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|e| format!("invalid caBundle: {e}"))?,
            )
        }
        _ => None,
    };
    let tls = client::tls_config(ca.as_deref())?;
    Ok(Client { endpoint, tls })
}
