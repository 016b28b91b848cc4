//! Structural schemas of custom resources: pruning of unknown fields,
//! defaulting, and validation against a subset of OpenAPI v3, the way
//! apiextensions-apiserver treats a CRD's `openAPIV3Schema`.
//!
//! Supported keywords (everything else is accepted and ignored):
//! - types: `type` (`object`, `array`, `string`, `integer`, `number`,
//!   `boolean`), `nullable`, `x-kubernetes-int-or-string`;
//! - structure: `properties`, `additionalProperties` (a schema or `true`),
//!   `items`, `required`, `x-kubernetes-preserve-unknown-fields`,
//!   `x-kubernetes-embedded-resource`;
//! - values: `enum`, `minimum`, `maximum`, `exclusiveMinimum`,
//!   `exclusiveMaximum`, `multipleOf`, `minLength`, `maxLength`, `pattern`,
//!   `minItems`, `maxItems`, `uniqueItems`, `minProperties`,
//!   `maxProperties`, `allOf`, `anyOf`, `oneOf`, `not`;
//! - `default` (applied to missing fields, and to `null` ones that are not
//!   `nullable`).
//!
//! Not supported: `format` checks, CEL rules (`x-kubernetes-validations`),
//! list types and map keys (`x-kubernetes-list-type`, ...), `$ref`.

use std::collections::HashMap;

use regex::Regex;
use serde_json::{Map, Value};

use crate::error::FieldCause;

/// Compiled `pattern`s of one schema, by pattern text.
pub type Patterns = HashMap<String, Regex>;

/// The JSON type names a structural schema may use.
const TYPES: &[&str] = &["object", "array", "string", "integer", "number", "boolean"];

/// The fields every object keeps whatever its schema says.
const ROOT_FIELDS: &[&str] = &["apiVersion", "kind", "metadata"];

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool).unwrap_or(false)
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The schema of `additionalProperties`, if it is one (not a boolean).
fn additional_schema(schema: &Value) -> Option<&Value> {
    schema
        .get("additionalProperties")
        .filter(|value| value.is_object())
}

/// Removes the fields `schema` does not specify from `value`; returns
/// their paths (`spec.unknown`). The root keeps `apiVersion`, `kind` and
/// `metadata`.
pub fn prune(schema: &Value, value: &mut Value) -> Vec<String> {
    let mut pruned = Vec::new();
    prune_at(schema, value, "", true, &mut pruned);
    pruned
}

/// The fields of `metav1.ObjectMeta`, as JSON names them.
const OBJECT_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// Drops what `metav1.ObjectMeta` does not have from an object's (or an
/// embedded resource's) metadata, as decoding it into ObjectMeta does.
fn prune_object_meta(metadata: &mut Value, path: &str, out: &mut Vec<String>) {
    if let Value::Object(meta) = metadata {
        meta.retain(|key, _| {
            let known = OBJECT_META_FIELDS.contains(&key.as_str());
            if !known {
                out.push(child_path(path, key));
            }
            known
        });
    }
}

fn prune_at(schema: &Value, value: &mut Value, path: &str, root: bool, out: &mut Vec<String>) {
    if flag(schema, "x-kubernetes-int-or-string") {
        return;
    }
    match value {
        Value::Object(map) => {
            let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
            let embedded = root || flag(schema, "x-kubernetes-embedded-resource");
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = additional_schema(schema);
            let additional_any = schema.get("additionalProperties") == Some(&Value::Bool(true));
            let mut unknown = Vec::new();
            for (key, child) in map.iter_mut() {
                let child_at = child_path(path, key);
                if embedded && ROOT_FIELDS.contains(&key.as_str()) {
                    // Metadata is ObjectMeta's business, not the schema's:
                    // what ObjectMeta has no field for goes.
                    if key == "metadata" {
                        prune_object_meta(child, &child_at, out);
                    } else if let Some(child_schema) = properties.and_then(|p| p.get(key)) {
                        prune_at(child_schema, child, &child_at, false, out);
                    }
                } else if let Some(child_schema) = properties.and_then(|p| p.get(key)) {
                    prune_at(child_schema, child, &child_at, false, out);
                } else if let Some(child_schema) = additional {
                    prune_at(child_schema, child, &child_at, false, out);
                } else if !(preserve || additional_any) {
                    unknown.push(key.clone());
                    out.push(child_at);
                }
            }
            for key in unknown {
                map.remove(&key);
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items").filter(|s| s.is_object()) {
                for (index, item) in items.iter_mut().enumerate() {
                    prune_at(item_schema, item, &format!("{path}[{index}]"), false, out);
                }
            }
        }
        _ => {}
    }
}

/// Fills `default`s of missing (or non-nullable `null`) fields, at every
/// depth that exists in `value`.
pub fn apply_defaults(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            if let Some(properties) = properties {
                for (key, child_schema) in properties {
                    let Some(default) = child_schema.get("default") else {
                        continue;
                    };
                    let missing = match map.get(key) {
                        None => true,
                        Some(Value::Null) => !flag(child_schema, "nullable"),
                        Some(_) => false,
                    };
                    if missing {
                        map.insert(key.clone(), default.clone());
                    }
                }
            }
            let additional = additional_schema(schema);
            for (key, child) in map.iter_mut() {
                if let Some(child_schema) = properties.and_then(|p| p.get(key)) {
                    apply_defaults(child_schema, child);
                } else if let Some(child_schema) = additional {
                    apply_defaults(child_schema, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items").filter(|s| s.is_object()) {
                for item in items {
                    apply_defaults(item_schema, item);
                }
            }
        }
        _ => {}
    }
}

/// Validates a whole custom resource against its root schema; metadata,
/// `apiVersion` and `kind` are checked elsewhere.
pub fn validate_object(schema: &Value, object: &Value, patterns: &Patterns) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let Some(map) = object.as_object() else {
        return causes;
    };
    let mut rest = Map::new();
    for (key, value) in map {
        if !ROOT_FIELDS.contains(&key.as_str()) {
            rest.insert(key.clone(), value.clone());
        }
    }
    let mut root = schema.clone();
    if let Some(required) = root.get_mut("required").and_then(Value::as_array_mut) {
        required.retain(|r| !r.as_str().is_some_and(|r| ROOT_FIELDS.contains(&r)));
    }
    validate(&root, &Value::Object(rest), "", patterns, &mut causes);
    causes
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_integer(value: &Value) -> bool {
    match value {
        Value::Number(n) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

fn has_type(value: &Value, wanted: &str) -> bool {
    match wanted {
        "integer" => is_integer(value),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => true,
    }
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn invalid(path: &str, value: &Value, why: String) -> FieldCause {
    FieldCause {
        reason: "FieldValueInvalid",
        field: path.to_owned(),
        message: format!("Invalid value: {}: {why}", shown(value)),
    }
}

/// Validates `value` at `path` against `schema`, adding causes.
pub fn validate(
    schema: &Value,
    value: &Value,
    path: &str,
    patterns: &Patterns,
    causes: &mut Vec<FieldCause>,
) {
    let name = if path.is_empty() { "body" } else { path };
    if value.is_null() {
        if flag(schema, "nullable") {
            return;
        }
        if let Some(wanted) = schema.get("type").and_then(Value::as_str) {
            causes.push(FieldCause {
                reason: "FieldValueTypeInvalid",
                field: path.to_owned(),
                message: format!(
                    "Invalid value: \"null\": {name} in body must be of type {wanted}: \"null\""
                ),
            });
        }
        return;
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        if !(is_integer(value) || value.is_string()) {
            causes.push(FieldCause {
                reason: "FieldValueTypeInvalid",
                field: path.to_owned(),
                message: format!(
                    "Invalid value: {:?}: {name} in body must be of type integer or string: {:?}",
                    json_type(value),
                    json_type(value)
                ),
            });
            return;
        }
    } else if let Some(wanted) = schema.get("type").and_then(Value::as_str) {
        if !has_type(value, wanted) {
            causes.push(FieldCause {
                reason: "FieldValueTypeInvalid",
                field: path.to_owned(),
                message: format!(
                    "Invalid value: {:?}: {name} in body must be of type {wanted}: {:?}",
                    json_type(value),
                    json_type(value)
                ),
            });
            return;
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            let listed: Vec<String> = options.iter().map(shown).collect();
            causes.push(FieldCause {
                reason: "FieldValueNotSupported",
                field: path.to_owned(),
                message: format!(
                    "Unsupported value: {}: supported values: {}",
                    shown(value),
                    listed.join(", ")
                ),
            });
        }
    }
    match value {
        Value::Number(number) => validate_number(schema, value, number, path, name, causes),
        Value::String(text) => validate_string(schema, value, text, path, name, patterns, causes),
        Value::Array(items) => validate_array(schema, value, items, path, name, patterns, causes),
        Value::Object(map) => validate_map(schema, map, path, name, patterns, causes),
        _ => {}
    }
    validate_combinators(schema, value, path, name, patterns, causes);
}

fn validate_number(
    schema: &Value,
    value: &Value,
    number: &serde_json::Number,
    path: &str,
    name: &str,
    causes: &mut Vec<FieldCause>,
) {
    let Some(n) = number.as_f64() else {
        return;
    };
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        let exclusive = flag(schema, "exclusiveMinimum");
        if (exclusive && n <= min) || n < min {
            let op = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            causes.push(invalid(
                path,
                value,
                format!("{name} in body should be {op} {}", fmt_number(min)),
            ));
        }
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        let exclusive = flag(schema, "exclusiveMaximum");
        if (exclusive && n >= max) || n > max {
            let op = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            causes.push(invalid(
                path,
                value,
                format!("{name} in body should be {op} {}", fmt_number(max)),
            ));
        }
    }
    if let Some(factor) = schema.get("multipleOf").and_then(Value::as_f64) {
        if factor > 0.0 && (n / factor).fract().abs() > f64::EPSILON {
            causes.push(invalid(
                path,
                value,
                format!(
                    "{name} in body should be a multiple of {}",
                    fmt_number(factor)
                ),
            ));
        }
    }
}

fn fmt_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn validate_string(
    schema: &Value,
    value: &Value,
    text: &str,
    path: &str,
    name: &str,
    patterns: &Patterns,
    causes: &mut Vec<FieldCause>,
) {
    let length = text.chars().count() as u64;
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
        if length > max {
            causes.push(FieldCause {
                reason: "FieldValueTooLong",
                field: path.to_owned(),
                message: format!("Too long: may not be more than {max} bytes"),
            });
        }
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
        if length < min {
            causes.push(invalid(
                path,
                value,
                format!("{name} in body should be at least {min} chars long"),
            ));
        }
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        if let Some(regex) = patterns.get(pattern) {
            if !regex.is_match(text) {
                causes.push(invalid(
                    path,
                    value,
                    format!("{name} in body should match '{pattern}'"),
                ));
            }
        }
    }
}

fn validate_array(
    schema: &Value,
    value: &Value,
    items: &[Value],
    path: &str,
    name: &str,
    patterns: &Patterns,
    causes: &mut Vec<FieldCause>,
) {
    let count = items.len() as u64;
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
        if count > max {
            causes.push(FieldCause {
                reason: "FieldValueTooMany",
                field: path.to_owned(),
                message: format!("Too many: {count}: must have at most {max} items"),
            });
        }
    }
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
        if count < min {
            causes.push(invalid(
                path,
                value,
                format!("{name} in body should have at least {min} items"),
            ));
        }
    }
    if flag(schema, "uniqueItems") {
        for (index, item) in items.iter().enumerate() {
            if items[..index].contains(item) {
                causes.push(FieldCause {
                    reason: "FieldValueDuplicate",
                    field: format!("{path}[{index}]"),
                    message: format!("Duplicate value: {}", shown(item)),
                });
            }
        }
    }
    if let Some(item_schema) = schema.get("items").filter(|s| s.is_object()) {
        for (index, item) in items.iter().enumerate() {
            validate(
                item_schema,
                item,
                &format!("{path}[{index}]"),
                patterns,
                causes,
            );
        }
    }
}

fn validate_map(
    schema: &Value,
    map: &Map<String, Value>,
    path: &str,
    name: &str,
    patterns: &Patterns,
    causes: &mut Vec<FieldCause>,
) {
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for field in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(field) {
                causes.push(FieldCause::required(child_path(path, field)));
            }
        }
    }
    let count = map.len() as u64;
    if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64) {
        if count > max {
            causes.push(FieldCause {
                reason: "FieldValueTooMany",
                field: path.to_owned(),
                message: format!("Too many: {count}: must have at most {max} items"),
            });
        }
    }
    if let Some(min) = schema.get("minProperties").and_then(Value::as_u64) {
        if count < min {
            causes.push(FieldCause {
                reason: "FieldValueInvalid",
                field: path.to_owned(),
                message: format!(
                    "Invalid value: {count}: {name} in body should have at least {min} properties"
                ),
            });
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = additional_schema(schema);
    for (key, child) in map {
        let child_at = child_path(path, key);
        if let Some(child_schema) = properties.and_then(|p| p.get(key)) {
            validate(child_schema, child, &child_at, patterns, causes);
        } else if let Some(child_schema) = additional {
            validate(child_schema, child, &child_at, patterns, causes);
        }
    }
}

fn passes(schema: &Value, value: &Value, path: &str, patterns: &Patterns) -> bool {
    let mut causes = Vec::new();
    validate(schema, value, path, patterns, &mut causes);
    causes.is_empty()
}

fn validate_combinators(
    schema: &Value,
    value: &Value,
    path: &str,
    name: &str,
    patterns: &Patterns,
    causes: &mut Vec<FieldCause>,
) {
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for sub in all {
            validate(sub, value, path, patterns, causes);
        }
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        if !any.is_empty() && !any.iter().any(|sub| passes(sub, value, path, patterns)) {
            causes.push(invalid(
                path,
                value,
                format!("{name} in body must validate at least one schema (anyOf)"),
            ));
        }
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = one
            .iter()
            .filter(|sub| passes(sub, value, path, patterns))
            .count();
        if !one.is_empty() && matching != 1 {
            causes.push(invalid(
                path,
                value,
                format!("{name} in body must validate one and only one schema (oneOf)"),
            ));
        }
    }
    if let Some(not) = schema.get("not") {
        if not.is_object() && passes(not, value, path, patterns) {
            causes.push(invalid(
                path,
                value,
                format!("{name} in body must not validate the schema (not)"),
            ));
        }
    }
}

/// Every `pattern` in `schema`, compiled; the ones that do not compile are
/// reported as causes under `path`.
pub fn compile_patterns(
    schema: &Value,
    path: &str,
    out: &mut Patterns,
    causes: &mut Vec<FieldCause>,
) {
    walk(schema, path, &mut |node, at| {
        if let Some(pattern) = node.get("pattern").and_then(Value::as_str) {
            if !out.contains_key(pattern) {
                match Regex::new(pattern) {
                    Ok(regex) => {
                        out.insert(pattern.to_owned(), regex);
                    }
                    Err(err) => causes.push(FieldCause::invalid(
                        child_path(at, "pattern"),
                        pattern,
                        format!("must be a valid regular expression: {err}"),
                    )),
                }
            }
        }
    });
}

/// Calls `visit` on `schema` and every sub-schema, with its path in the CRD.
fn walk(schema: &Value, path: &str, visit: &mut dyn FnMut(&Value, &str)) {
    visit(schema, path);
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (key, child) in properties {
            walk(child, &format!("{path}.properties[{key}]"), visit);
        }
    }
    if let Some(child) = additional_schema(schema) {
        walk(child, &format!("{path}.additionalProperties"), visit);
    }
    if let Some(child) = schema.get("items").filter(|s| s.is_object()) {
        walk(child, &format!("{path}.items"), visit);
    }
    for combinator in ["allOf", "anyOf", "oneOf"] {
        if let Some(subs) = schema.get(combinator).and_then(Value::as_array) {
            for (index, sub) in subs.iter().enumerate() {
                walk(sub, &format!("{path}.{combinator}[{index}]"), visit);
            }
        }
    }
    if let Some(child) = schema.get("not").filter(|s| s.is_object()) {
        walk(child, &format!("{path}.not"), visit);
    }
}

/// Checks that a CRD's schema is structural (every specified field has a
/// type, arrays have items, ...) and that its defaults are valid; `path`
/// is where the schema sits in the CRD.
pub fn check_structural(schema: &Value, path: &str) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {}
        Some(other) => causes.push(FieldCause::not_supported(
            format!("{path}.type"),
            other,
            &["object"],
        )),
        None => causes.push(FieldCause {
            reason: "FieldValueRequired",
            field: format!("{path}.type"),
            message: "Required value: must not be empty at the root".into(),
        }),
    }
    let mut patterns = Patterns::new();
    compile_patterns(schema, path, &mut patterns, &mut causes);
    check_node(schema, path, &patterns, &mut causes);
    causes
}

fn check_node(schema: &Value, path: &str, patterns: &Patterns, causes: &mut Vec<FieldCause>) {
    if let Some(kind) = schema.get("type") {
        match kind.as_str() {
            Some(kind) if TYPES.contains(&kind) => {
                if kind == "array" && !schema.get("items").is_some_and(Value::is_object) {
                    causes.push(FieldCause {
                        reason: "FieldValueRequired",
                        field: format!("{path}.items"),
                        message: "Required value: must be specified".into(),
                    });
                }
            }
            _ => causes.push(FieldCause::not_supported(
                format!("{path}.type"),
                &shown(kind),
                TYPES,
            )),
        }
    }
    if schema.get("properties").is_some() && additional_schema(schema).is_some() {
        causes.push(FieldCause {
            reason: "FieldValueForbidden",
            field: format!("{path}.additionalProperties"),
            message: "Forbidden: additionalProperties and properties are mutual exclusive".into(),
        });
    }
    if let Some(default) = schema.get("default") {
        let mut defaulted = default.clone();
        apply_defaults(schema, &mut defaulted);
        let mut found = Vec::new();
        validate(schema, &defaulted, "", patterns, &mut found);
        for cause in found {
            causes.push(FieldCause {
                reason: cause.reason,
                field: format!(
                    "{path}.default{}",
                    if cause.field.is_empty() {
                        String::new()
                    } else {
                        format!(".{}", cause.field)
                    }
                ),
                message: cause.message,
            });
        }
    }
    let typeless = |node: &Value| {
        node.get("type").is_none()
            && !flag(node, "x-kubernetes-int-or-string")
            && !flag(node, "x-kubernetes-preserve-unknown-fields")
    };
    let mut children: Vec<(String, &Value)> = Vec::new();
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (key, child) in properties {
            children.push((format!("{path}.properties[{key}]"), child));
        }
    }
    if let Some(child) = additional_schema(schema) {
        children.push((format!("{path}.additionalProperties"), child));
    }
    if let Some(child) = schema.get("items").filter(|s| s.is_object()) {
        children.push((format!("{path}.items"), child));
    }
    for (child_path, child) in children {
        if typeless(child) {
            causes.push(FieldCause {
                reason: "FieldValueRequired",
                field: format!("{child_path}.type"),
                message: "Required value: must not be empty for specified object fields".into(),
            });
        }
        check_node(child, &child_path, patterns, causes);
    }
}

/// Follows a simple JSONPath (`.spec.replicas`, `.status.conditions[0].type`,
/// also wrapped in `{...}`) through `value`.
pub fn json_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    let path = path.trim();
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path);
    let mut current = value;
    for segment in path.trim_start_matches('.').split('.') {
        if segment.is_empty() {
            continue;
        }
        let (field, indexes) = match segment.find('[') {
            Some(at) => (&segment[..at], &segment[at..]),
            None => (segment, ""),
        };
        if !field.is_empty() {
            current = current.get(field)?;
        }
        for index in indexes.split('[').filter(|i| !i.is_empty()) {
            let index: usize = index.trim_end_matches(']').parse().ok()?;
            current = current.get(index)?;
        }
    }
    Some(current)
}

/// Whether `path` is a JSONPath [`json_path`] can follow.
pub fn is_simple_json_path(path: &str) -> bool {
    let path = path.trim();
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path);
    path.starts_with('.')
        && path.len() > 1
        && path[1..].split('.').all(|segment| {
            let field = segment.split('[').next().unwrap_or("");
            !field.is_empty()
                && segment.split('[').skip(1).all(|i| {
                    i.strip_suffix(']')
                        .is_some_and(|n| n.parse::<usize>().is_ok())
                })
        })
}

/// Sets the value at a `.a.b.c` path, creating objects on the way.
pub fn set_path(value: &mut Value, path: &str, new: Value) -> bool {
    let segments: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    let mut current = value;
    for (index, segment) in segments.iter().enumerate() {
        if segment.is_empty() || segment.contains('[') {
            return false;
        }
        if !current.is_object() {
            *current = Value::Object(Map::new());
        }
        let Some(map) = current.as_object_mut() else {
            return false;
        };
        if index + 1 == segments.len() {
            map.insert((*segment).to_owned(), new);
            return true;
        }
        current = map
            .entry((*segment).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["cronSpec"],
                    "properties": {
                        "cronSpec": {"type": "string", "pattern": "^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$"},
                        "image": {"type": "string", "minLength": 1, "maxLength": 20},
                        "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                        "mode": {"type": "string", "enum": ["Fast", "Slow"], "default": "Slow"},
                        "ports": {"type": "array", "maxItems": 2, "uniqueItems": true, "items": {"type": "integer"}},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "size": {"x-kubernetes-int-or-string": true},
                        "nested": {"type": "object", "default": {}, "properties": {"depth": {"type": "integer", "default": 3}}},
                        "note": {"type": "string", "nullable": true},
                    },
                },
                "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
            },
        })
    }

    fn patterns(schema: &Value) -> Patterns {
        let mut out = Patterns::new();
        let mut causes = Vec::new();
        compile_patterns(schema, "", &mut out, &mut causes);
        assert!(causes.is_empty(), "{causes:?}");
        out
    }

    #[test]
    fn unknown_fields_are_pruned_except_where_preserved() {
        let mut object = json!({
            "apiVersion": "example.com/v1", "kind": "CronTab",
            "metadata": {"name": "x", "whatever": 1},
            "spec": {"cronSpec": "* * * * *", "bogus": 1, "extra": {"anything": {"goes": true}},
                     "labels": {"a": "b"}, "size": "50%"},
            "status": {"ready": true, "phase": "x"},
            "topLevel": 1,
        });
        let pruned = prune(&schema(), &mut object);
        assert_eq!(
            pruned,
            [
                "metadata.whatever",
                "spec.bogus",
                "status.phase",
                "topLevel"
            ]
        );
        assert_eq!(object["spec"]["extra"]["anything"]["goes"], true);
        assert_eq!(object["spec"]["labels"]["a"], "b");
        // Metadata keeps what ObjectMeta has, whatever the schema says.
        assert_eq!(object["metadata"], json!({"name": "x"}));
    }

    #[test]
    fn defaults_fill_missing_and_null_fields_at_every_depth() {
        let mut object = json!({"spec": {"cronSpec": "* * * * *", "mode": null}});
        apply_defaults(&schema(), &mut object);
        assert_eq!(object["spec"]["replicas"], 1);
        assert_eq!(object["spec"]["mode"], "Slow");
        assert_eq!(object["spec"]["nested"], json!({"depth": 3}));
        assert!(object.get("status").is_none(), "absent parents stay absent");
    }

    #[test]
    fn validation_reports_each_broken_keyword() {
        let schema = schema();
        let patterns = patterns(&schema);
        let object = json!({
            "apiVersion": "example.com/v1", "kind": "CronTab", "metadata": {"name": "x"},
            "spec": {"cronSpec": "every minute", "image": "", "replicas": 11, "mode": "Medium",
                     "ports": [1, 1, 2], "labels": {"a": 1}, "size": true, "note": null},
            "status": {"ready": "yes"},
        });
        let causes = validate_object(&schema, &object, &patterns);
        let fields: Vec<(&str, &str)> = causes
            .iter()
            .map(|c| (c.field.as_str(), c.reason))
            .collect();
        for expected in [
            ("spec.cronSpec", "FieldValueInvalid"),
            ("spec.image", "FieldValueInvalid"),
            ("spec.replicas", "FieldValueInvalid"),
            ("spec.mode", "FieldValueNotSupported"),
            ("spec.ports", "FieldValueTooMany"),
            ("spec.ports[1]", "FieldValueDuplicate"),
            ("spec.labels.a", "FieldValueTypeInvalid"),
            ("spec.size", "FieldValueTypeInvalid"),
            ("status.ready", "FieldValueTypeInvalid"),
        ] {
            assert!(
                fields.contains(&expected),
                "{expected:?} missing from {fields:?}"
            );
        }
        assert_eq!(causes.len(), 9, "{causes:#?}");
        let missing = validate_object(&schema, &json!({"spec": {}}), &patterns);
        assert_eq!(missing[0].field, "spec.cronSpec");
        assert_eq!(missing[0].reason, "FieldValueRequired");
        let max = causes
            .iter()
            .find(|c| c.field == "spec.replicas")
            .expect("replicas");
        assert_eq!(
            max.message,
            "Invalid value: 11: spec.replicas in body should be less than or equal to 10"
        );
        let good = json!({"spec": {"cronSpec": "*/5 * * * *", "replicas": 3, "size": 2}});
        assert!(validate_object(&schema, &good, &patterns).is_empty());
    }

    #[test]
    fn combinators_and_exclusive_bounds() {
        let schema = json!({"type": "object", "properties": {
            "a": {"type": "number", "minimum": 0, "exclusiveMinimum": true, "multipleOf": 0.5},
            "b": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "c": {"type": "string", "not": {"enum": ["forbidden"]}},
        }});
        let patterns = Patterns::new();
        let causes = validate_object(
            &schema,
            &json!({"a": 0, "b": true, "c": "forbidden"}),
            &patterns,
        );
        assert_eq!(causes.len(), 3, "{causes:#?}");
        assert!(
            validate_object(&schema, &json!({"a": 1.5, "b": "x", "c": "ok"}), &patterns).is_empty()
        );
        assert_eq!(
            validate_object(&schema, &json!({"a": 0.7}), &patterns).len(),
            1
        );
    }

    #[test]
    fn structural_checks_find_typeless_fields_bad_defaults_and_patterns() {
        assert!(check_structural(&schema(), "s").is_empty());
        let bad = json!({"type": "object", "properties": {
            "a": {"description": "no type"},
            "b": {"type": "array"},
            "c": {"type": "integer", "default": "x"},
            "d": {"type": "string", "pattern": "("},
            "e": {"type": "float"},
        }});
        let fields: Vec<String> = check_structural(&bad, "s")
            .into_iter()
            .map(|c| c.field)
            .collect();
        for expected in [
            "s.properties[a].type",
            "s.properties[b].items",
            "s.properties[c].default",
            "s.properties[d].pattern",
            "s.properties[e].type",
        ] {
            assert!(
                fields.iter().any(|f| f == expected),
                "{expected} missing from {fields:?}"
            );
        }
        assert_eq!(
            check_structural(&json!({"type": "string"}), "s")[0].field,
            "s.type"
        );
    }

    #[test]
    fn json_paths_follow_fields_and_indexes() {
        let object =
            json!({"spec": {"replicas": 3}, "status": {"conditions": [{"type": "Ready"}]}});
        assert_eq!(json_path(&object, ".spec.replicas"), Some(&json!(3)));
        assert_eq!(
            json_path(&object, "{.status.conditions[0].type}"),
            Some(&json!("Ready"))
        );
        assert_eq!(json_path(&object, ".status.conditions[1].type"), None);
        assert!(is_simple_json_path(".status.conditions[0].type"));
        assert!(
            !is_simple_json_path("spec.x")
                && !is_simple_json_path(".a..b")
                && !is_simple_json_path(".a[x]")
        );
        let mut target = json!({});
        assert!(set_path(&mut target, ".spec.size.replicas", json!(4)));
        assert_eq!(target, json!({"spec": {"size": {"replicas": 4}}}));
    }
}
