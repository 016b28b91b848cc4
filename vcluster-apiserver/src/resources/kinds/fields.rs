//! Small JSON helpers the kinds' defaulting shares.

use serde_json::{json, Map, Value};

use crate::error::FieldCause;

/// The object at `field` of `parent`, created empty when missing or null.
pub(super) fn obj_mut<'a>(
    parent: &'a mut Value,
    field: &str,
) -> Option<&'a mut Map<String, Value>> {
    let map = parent.as_object_mut()?;
    let child = map.entry(field).or_insert_with(|| json!({}));
    if child.is_null() {
        *child = json!({});
    }
    child.as_object_mut()
}

/// Sets `field` to `value` unless the client set it.
pub(super) fn default_field(map: &mut Map<String, Value>, field: &str, value: Value) {
    let slot = map.entry(field).or_insert(Value::Null);
    if slot.is_null() {
        *slot = value;
    }
}

/// `Invalid value` of a value that is not a string, written as upstream's
/// field errors write it (`-1`, `null`, a struct as JSON), unquoted.
pub(super) fn invalid_raw(field: impl Into<String>, value: &str, why: &str) -> FieldCause {
    FieldCause {
        reason: "FieldValueInvalid",
        field: field.into(),
        message: format!("Invalid value: {value}: {why}"),
    }
}

/// `Unsupported value` of a value that is not a string (rendered as
/// upstream does), with the supported values quoted.
pub(super) fn not_supported_raw(
    field: impl Into<String>,
    value: &str,
    supported: &[&str],
) -> FieldCause {
    let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    FieldCause {
        reason: "FieldValueNotSupported",
        field: field.into(),
        message: format!(
            "Unsupported value: {value}: supported values: {}",
            list.join(", ")
        ),
    }
}

/// A `Required value` with upstream's explanation after it.
pub(super) fn required_because(field: impl Into<String>, why: &str) -> FieldCause {
    FieldCause {
        reason: "FieldValueRequired",
        field: field.into(),
        message: format!("Required value: {why}"),
    }
}

/// An integer field that must not be negative
/// (`ValidateNonnegativeField`).
pub(super) fn nonnegative(object: &Value, path: &str, causes: &mut Vec<FieldCause>) {
    if let Some(n) = crate::object::path(object, path).and_then(Value::as_i64) {
        if n < 0 {
            causes.push(invalid_raw(
                path,
                &n.to_string(),
                "must be greater than or equal to 0",
            ));
        }
    }
}

/// The string at `path`, `""` when unset.
pub(super) fn text<'a>(object: &'a Value, path: &str) -> &'a str {
    crate::object::path(object, path)
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `Required value` when the string at `path` is unset or empty.
pub(super) fn require_text(object: &Value, path: &str, causes: &mut Vec<FieldCause>) {
    if text(object, path).is_empty() {
        causes.push(FieldCause::required(path));
    }
}

/// `Unsupported value` when the string at `path` is set and not one of
/// `supported`.
pub(super) fn one_of(object: &Value, path: &str, supported: &[&str], causes: &mut Vec<FieldCause>) {
    if let Some(value) = crate::object::path(object, path).and_then(Value::as_str) {
        if !supported.contains(&value) {
            causes.push(FieldCause::not_supported(path, value, supported));
        }
    }
}

/// A CSI driver's name (`ValidateCSIDriverName`) at `path`: required, at
/// most 63 characters, a DNS subdomain. Says whether it was valid.
pub(super) fn csi_driver_name(name: &str, path: &str, causes: &mut Vec<FieldCause>) -> bool {
    let before = causes.len();
    if name.is_empty() {
        causes.push(FieldCause::required(path));
    } else if name.len() > 63 {
        causes.push(FieldCause::too_long(path, 63));
    } else if let Some(why) = vcluster_core::validation::dns1123_subdomain_errors(name)
        .into_iter()
        .next()
    {
        causes.push(FieldCause::invalid(path, name, why));
    }
    causes.len() == before
}

/// `field is immutable` when an update changed the string at `path`
/// (`ValidateImmutableField`).
pub(super) fn immutable_text(old: &Value, new: &Value, path: &str, causes: &mut Vec<FieldCause>) {
    let (before, after) = (text(old, path), text(new, path));
    if before != after {
        causes.push(FieldCause::invalid(path, after, "field is immutable"));
    }
}

/// An internal Go struct as upstream's errors print it: JSON with the
/// exported (capitalised) field names in declaration order, `null` when
/// unset.
pub(super) fn go_struct(value: &Value, fields: &[&str]) -> String {
    let parts: Vec<String> = fields
        .iter()
        .map(|f| {
            let mut name = f.to_owned().to_owned();
            if let Some(first) = name.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            let v = value.get(*f).cloned().unwrap_or(Value::Null);
            format!("{name:?}:{v}")
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// For a kind whose strategy keeps `metadata.generation` although it has
/// no `spec` (pod templates, endpoint slices): 1 when created; the
/// registry bumps it when the object's content changes.
pub(super) fn track_generation(object: &mut Value) {
    let meta = crate::object::metadata_mut(object);
    if meta.get("generation").is_none_or(Value::is_null) {
        meta.insert("generation".into(), json!(1));
    }
}

/// For a kind whose strategy sets no `metadata.generation` although it has
/// a `spec` (nodes, services, volumes, leases...): none, ever.
pub(super) fn untrack_generation(object: &mut Value) {
    crate::object::metadata_mut(object).remove("generation");
}

/// A rollout strategy's defaults (`SetDefaults_Deployment` and kin):
/// `RollingUpdate` unless a type is given, and for that type its
/// parameters, field by field.
pub(super) fn default_strategy(
    spec: &mut Map<String, Value>,
    field: &str,
    rolling: &[(&str, Value)],
) {
    let Some(strategy) = child_object(spec, field) else {
        return;
    };
    default_field(strategy, "type", json!("RollingUpdate"));
    if strategy.get("type").and_then(Value::as_str) != Some("RollingUpdate") {
        return;
    }
    if let Some(params) = child_object(strategy, "rollingUpdate") {
        for (name, value) in rolling {
            default_field(params, name, value.clone());
        }
    }
}

/// The object at `field` of `map`, created empty when missing or null.
pub(super) fn child_object<'a>(
    map: &'a mut Map<String, Value>,
    field: &str,
) -> Option<&'a mut Map<String, Value>> {
    let child = map.entry(field).or_insert_with(|| json!({}));
    if child.is_null() {
        *child = json!({});
    }
    child.as_object_mut()
}

/// Puts the stored object's `metadata.<field>` back into an update (absent
/// when it was absent): what a write path may not change.
pub(super) fn keep_stored_metadata(old: &Value, new: &mut Value, field: &str) {
    let stored = old.get("metadata").and_then(|m| m.get(field)).cloned();
    let meta = crate::object::metadata_mut(new);
    match stored {
        Some(value) => meta.insert(field.into(), value),
        None => meta.remove(field),
    };
}
