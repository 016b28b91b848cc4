//! Small JSON helpers the kinds' defaulting shares.

use serde_json::{json, Map, Value};

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
