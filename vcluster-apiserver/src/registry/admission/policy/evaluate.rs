//! Evaluating a compiled policy against one request: the CEL variables
//! upstream declares (`object`, `oldObject`, `request`, `params`,
//! `namespaceObject`, `variables`), match conditions, then validations
//! with upstream's messages.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::compile::{Expression, Policy};

/// What an expression sees besides `variables`.
pub struct Inputs {
    /// The object written (`null` on delete).
    pub object: Value,
    /// The stored object (`null` on create).
    pub old_object: Value,
    /// Upstream's `request`: operation, names, kind, resource, user.
    pub request: Value,
    /// The binding's parameter object (`null` without one).
    pub params: Value,
    /// The request's namespace (`null` for cluster-scoped requests).
    pub namespace_object: Value,
}

/// A failed validation (or an evaluation error the failure policy turns
/// into one): its message and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The message (`failed expression: ...` without one of its own).
    pub message: String,
    /// The `StatusReason` (`Invalid` by default).
    pub reason: String,
}

/// The failed validations of `policy` for `inputs`; empty when it admits
/// (or its match conditions say it does not apply).
pub fn evaluate(policy: &Policy, inputs: &Inputs) -> Vec<Failure> {
    let mut scope = Scope::new(inputs);
    let error = |expression: &Expression, why: String| Failure {
        message: format!(
            "expression '{}' resulted in error: {why}",
            expression.source
        ),
        reason: "Invalid".into(),
    };
    for (_, condition) in &policy.match_conditions {
        match scope.eval(condition).and_then(boolean) {
            Ok(true) => {}
            Ok(false) => return Vec::new(),
            Err(why) if policy.fail_closed => return vec![error(condition, why)],
            Err(_) => return Vec::new(),
        }
    }
    for (name, expression) in &policy.variables {
        // A variable that fails leaves `variables.<name>` unset: the
        // validations that use it fail in turn.
        if let Ok(value) = scope
            .eval(expression)
            .and_then(|v| v.json().map_err(|e| e.to_string()))
        {
            scope.variables.insert(name.clone(), value);
        }
    }
    let mut failures = Vec::new();
    for validation in &policy.validations {
        match scope.eval(&validation.expression).and_then(boolean) {
            Ok(true) => {}
            Ok(false) => {
                let own = validation
                    .message_expression
                    .as_ref()
                    .and_then(|m| scope.eval(m).ok())
                    .and_then(|v| match v {
                        cel::Value::String(s) => Some(s.trim().to_owned()),
                        _ => None,
                    })
                    .filter(|s| !s.is_empty());
                let message = own.unwrap_or_else(|| match validation.message.trim() {
                    "" => format!("failed expression: {}", validation.expression.source.trim()),
                    message => message.to_owned(),
                });
                failures.push(Failure {
                    message,
                    reason: validation.reason.clone(),
                });
            }
            Err(why) if policy.fail_closed => failures.push(error(&validation.expression, why)),
            Err(_) => {}
        }
    }
    failures
}

/// Whether every one of `conditions` holds (upstream's `matchConditions`
/// of webhooks): `Ok(false)` at the first false one, `Err` naming the
/// first that fails to evaluate.
pub fn conditions_hold(
    conditions: &[(String, Expression)],
    inputs: &Inputs,
) -> Result<bool, String> {
    let scope = Scope::new(inputs);
    for (name, condition) in conditions {
        match scope.eval(condition).and_then(boolean) {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(why) => {
                return Err(format!(
                    "expression '{}' ({name}) resulted in error: {why}",
                    condition.source
                ))
            }
        }
    }
    Ok(true)
}

fn boolean(value: cel::Value) -> Result<bool, String> {
    match value {
        cel::Value::Bool(b) => Ok(b),
        other => Err(format!(
            "validation expression must evaluate to bool, got {:?}",
            other.type_of()
        )),
    }
}

/// The CEL variables of one evaluation.
struct Scope {
    base: Vec<(&'static str, cel::Value)>,
    variables: Map<String, Value>,
}

impl Scope {
    fn new(inputs: &Inputs) -> Self {
        let value = cel_value;
        Self {
            base: vec![
                ("object", value(&inputs.object)),
                ("oldObject", value(&inputs.old_object)),
                ("request", value(&inputs.request)),
                ("params", value(&inputs.params)),
                ("namespaceObject", value(&inputs.namespace_object)),
            ],
            variables: Map::new(),
        }
    }

    fn eval(&self, expression: &Expression) -> Result<cel::Value, String> {
        let program = expression.program.as_ref().map_err(Clone::clone)?;
        let mut context = cel::Context::with_env(super::compile::environment());
        for (name, value) in &self.base {
            context.add_variable_from_value(*name, value.clone());
        }
        context.add_variable_from_value(
            "variables",
            cel_value(&Value::Object(self.variables.clone())),
        );
        program.execute(&context).map_err(|e| e.to_string())
    }
}

/// A JSON value as CEL sees a Kubernetes object: integers are `int`
/// (Go's int64), as upstream's unstructured conversion makes them.
fn cel_value(value: &Value) -> cel::Value {
    match value {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            _ => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(items) => cel::Value::List(Arc::new(items.iter().map(cel_value).collect())),
        Value::Object(map) => {
            let map: HashMap<String, cel::Value> =
                map.iter().map(|(k, v)| (k.clone(), cel_value(v))).collect();
            cel::Value::from(map)
        }
    }
}

/// Upstream's `request` variable for a request.
pub fn request(attributes: &super::super::Attributes<'_>, object: &Value) -> Value {
    let resource = attributes.resource;
    let name = match crate::object::name(object) {
        "" => attributes.old.map(crate::object::name).unwrap_or(""),
        name => name,
    };
    let user = attributes.context.user.as_ref().map_or_else(
        || json!({"username": "system:apiserver", "groups": ["system:masters"]}),
        |u| json!({"username": u.name, "uid": u.uid, "groups": u.groups, "extra": u.extra}),
    );
    json!({
        "kind": {"group": resource.group, "version": resource.version, "kind": resource.kind},
        "resource": {"group": resource.group, "version": resource.version, "resource": resource.plural},
        "subResource": attributes.subresource.unwrap_or(""),
        "name": name,
        "namespace": attributes.namespace.unwrap_or(""),
        "operation": attributes.operation.as_str(),
        "userInfo": user,
        "dryRun": attributes.dry_run,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment_policy(validations: Value) -> std::sync::Arc<Policy> {
        super::super::compile::policy(&json!({
            "metadata": {"name": "p"},
            "spec": {
                "variables": [
                    {"name": "replicas", "expression": "object.spec.replicas"},
                    {"name": "odd", "expression": "variables.replicas % 2 == 1"},
                ],
                "validations": validations,
            },
        }))
    }

    fn inputs(replicas: i64) -> Inputs {
        Inputs {
            object: json!({"spec": {"replicas": replicas}}),
            old_object: Value::Null,
            request: json!({"operation": "CREATE"}),
            params: Value::Null,
            namespace_object: json!({"metadata": {"name": "team"}}),
        }
    }

    #[test]
    fn validations_see_the_object_variables_and_namespace() {
        let policy = deployment_policy(json!([
            {"expression": "variables.replicas > 1", "messageExpression": "'wants more than ' + string(variables.replicas)"},
            {"expression": "variables.odd", "message": "odd please"},
            {"expression": "namespaceObject.metadata.name == 'team'"},
        ]));
        assert_eq!(evaluate(&policy, &inputs(3)), Vec::new());
        let failures = evaluate(&policy, &inputs(2));
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].message, "odd please");
        let failures = evaluate(&policy, &inputs(1));
        assert_eq!(failures[0].message, "wants more than 1");
        assert_eq!(failures[0].reason, "Invalid");
    }

    #[test]
    fn kubernetes_style_extensions_are_there() {
        let policy = deployment_policy(json!([
            {"expression": "'Team'.lowerAscii() == 'team' && ['a', 'b'].join('-') == 'a-b'"},
            {"expression": "math.greatest(1, variables.replicas) == variables.replicas"},
        ]));
        assert_eq!(evaluate(&policy, &inputs(3)), Vec::new());
    }

    #[test]
    fn a_failing_message_expression_falls_back_and_errors_fail_closed() {
        let policy = deployment_policy(json!([
            {"expression": "object.spec.replicas > 1", "messageExpression": "'got ' + object.spec.replicas"},
            {"expression": "object.spec.missing == 1"},
        ]));
        let failures = evaluate(&policy, &inputs(1));
        assert_eq!(
            failures[0].message,
            "failed expression: object.spec.replicas > 1"
        );
        assert!(
            failures[1]
                .message
                .starts_with("expression 'object.spec.missing == 1' resulted in error: "),
            "{failures:?}"
        );
    }
}
