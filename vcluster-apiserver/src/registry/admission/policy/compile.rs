//! A ValidatingAdmissionPolicy compiled once per change: its CEL
//! expressions (match conditions, variables, validations and their
//! message expressions) parsed with cel-rust, its constraints parsed.

use std::sync::Arc;

use serde_json::Value;

use super::constraints::MatchResources;

/// One CEL expression: its source and the program, or why it does not
/// compile (evaluated as an error, which the failure policy decides).
pub struct Expression {
    /// The source, for messages (`failed expression: <source>`).
    pub source: String,
    /// The compiled program.
    pub program: Result<cel::Program, String>,
}

impl std::fmt::Debug for Expression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Expression")
            .field("source", &self.source)
            .field("compiles", &self.program.is_ok())
            .finish()
    }
}

impl Expression {
    /// Compiles `source` in [`environment`] (an error is kept, not raised).
    pub fn compile(source: &str) -> Self {
        Self {
            source: source.to_owned(),
            program: environment().compile(source).map_err(|e| e.to_string()),
        }
    }
}

/// The CEL environment of admission expressions: the standard library
/// with cel-rust's extensions (strings, lists, math, base64 encoders,
/// optional values), the nearest it has to Kubernetes' environment (whose
/// own libraries, such as `quantity` or `url`, are not there).
pub fn environment() -> Arc<cel::Env> {
    static ENVIRONMENT: std::sync::LazyLock<Arc<cel::Env>> = std::sync::LazyLock::new(|| {
        let mut env = cel::Env::stdlib().with_optional_support(true);
        for extension in [
            cel::extensions::strings as fn(&mut cel::Env) -> _,
            cel::extensions::lists,
            cel::extensions::math,
            cel::extensions::encoders,
        ] {
            if let Err(err) = env.add_extension(extension) {
                tracing::warn!(%err, "a CEL extension could not be added");
            }
        }
        Arc::new(env)
    });
    ENVIRONMENT.clone()
}

/// One entry of `spec.validations`.
#[derive(Debug)]
pub struct Validation {
    /// `expression`: must be true.
    pub expression: Expression,
    /// `message`.
    pub message: String,
    /// `messageExpression`.
    pub message_expression: Option<Expression>,
    /// `reason` (default `Invalid`).
    pub reason: String,
}

/// A policy, compiled.
#[derive(Debug)]
pub struct Policy {
    /// The policy's name.
    pub name: String,
    /// `failurePolicy: Fail` (the default); `false` is `Ignore`.
    pub fail_closed: bool,
    /// `paramKind`: the group, version and kind of its parameters.
    pub param_kind: Option<(String, String, String)>,
    /// `matchConstraints`; `Err` when a selector does not parse.
    pub constraints: Result<Option<MatchResources>, String>,
    /// `matchConditions`: all must be true for the policy to apply.
    pub match_conditions: Vec<(String, Expression)>,
    /// `variables`, in order (a later one may use an earlier one).
    pub variables: Vec<(String, Expression)>,
    /// `validations`.
    pub validations: Vec<Validation>,
}

/// Compiles a stored policy.
pub fn policy(object: &Value) -> Arc<Policy> {
    let spec = object.get("spec").unwrap_or(&Value::Null);
    let text = |v: &Value, field: &str| {
        v.get(field)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let named = |field: &str, source: &str| -> Vec<(String, Expression)> {
        spec.get(field)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|item| (text(item, "name"), Expression::compile(&text(item, source))))
                    .collect()
            })
            .unwrap_or_default()
    };
    let param_kind = spec.get("paramKind").filter(|p| p.is_object()).map(|p| {
        let api_version = text(p, "apiVersion");
        let (group, version) = api_version
            .split_once('/')
            .map(|(g, v)| (g.to_owned(), v.to_owned()))
            .unwrap_or((String::new(), api_version.clone()));
        (group, version, text(p, "kind"))
    });
    let validations = spec
        .get("validations")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|v| Validation {
                    expression: Expression::compile(&text(v, "expression")),
                    message: text(v, "message"),
                    message_expression: v
                        .get("messageExpression")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(Expression::compile),
                    reason: match text(v, "reason") {
                        reason if reason.is_empty() => "Invalid".to_owned(),
                        reason => reason,
                    },
                })
                .collect()
        })
        .unwrap_or_default();
    Arc::new(Policy {
        name: crate::object::name(object).to_owned(),
        fail_closed: text(spec, "failurePolicy") != "Ignore",
        param_kind,
        constraints: MatchResources::parse(spec.get("matchConstraints")),
        match_conditions: named("matchConditions", "expression"),
        variables: named("variables", "expression"),
        validations,
    })
}

/// A binding of a policy, parsed.
#[derive(Debug)]
pub struct Binding {
    /// The binding's name.
    pub name: String,
    /// `policyName`.
    pub policy: String,
    /// `paramRef`, as stored.
    pub param_ref: Option<Value>,
    /// `matchResources`; `Err` when a selector does not parse.
    pub match_resources: Result<Option<MatchResources>, String>,
    /// `validationActions` has `Deny`.
    pub deny: bool,
    /// `validationActions` has `Warn`.
    pub warn: bool,
}

/// Parses a stored binding.
pub fn binding(object: &Value) -> Binding {
    let spec = object.get("spec").unwrap_or(&Value::Null);
    let actions: Vec<&str> = spec
        .get("validationActions")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    Binding {
        name: crate::object::name(object).to_owned(),
        policy: spec
            .get("policyName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        param_ref: spec.get("paramRef").filter(|p| p.is_object()).cloned(),
        match_resources: MatchResources::parse(spec.get("matchResources")),
        deny: actions.contains(&"Deny"),
        warn: actions.contains(&"Warn"),
    }
}
