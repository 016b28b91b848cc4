//! Strategic merge patch (`application/strategic-merge-patch+json`), with
//! the semantics of apimachinery's `strategicpatch` package: what kubectl
//! `apply` (client-side), `edit`, `set image` and `rollout restart` send.
//!
//! Objects merge key by key and `null` deletes; lists follow the field's
//! metadata ([`super::meta`]): merged by a key (`containers` by `name`), as
//! sets of scalars (`finalizers`), or replaced whole (no metadata, including
//! every field of a custom resource). Directives: `$patch: replace|delete`
//! on objects and list items, `$retainKeys`, `$deleteFromPrimitiveList/<f>`
//! and `$setElementOrder/<f>`.

use serde_json::{Map, Value};

use super::meta::{Field, Node, PatchMeta};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";

/// Applies a strategic merge patch to `original` (typed by `node`).
/// Errors describe a patch that cannot be applied (a 422 upstream).
pub fn apply(
    original: &Value,
    patch: &Value,
    meta: &PatchMeta,
    node: Node<'_>,
) -> Result<Value, String> {
    let Value::Object(patch) = patch else {
        return Err("a strategic merge patch must be a JSON object".into());
    };
    let original = match original {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    merge_map(original, patch.clone(), meta, node).map(Value::Object)
}

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    meta: &PatchMeta,
    node: Node<'_>,
) -> Result<Map<String, Value>, String> {
    if let Some(directive) = patch.remove(DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => Ok(patch),
            Some("delete") => Ok(Map::new()),
            _ => Err(format!(
                "unknown patch type {directive} in map {}",
                Value::Object(patch)
            )),
        };
    }
    if let Some(retain) = patch.remove(RETAIN_KEYS) {
        let keys = string_list(&retain).ok_or("$retainKeys must be a list of strings")?;
        for (key, value) in &patch {
            if value.is_null()
                || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
                || key.starts_with(SET_ELEMENT_ORDER)
            {
                continue;
            }
            if !keys.contains(&key.as_str()) {
                return Err(format!(
                    "$retainKeys does not list the patched field {key:?}"
                ));
            }
        }
        original.retain(|key, _| keys.contains(&key.as_str()));
    }
    let order_keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for key in order_keys {
        let order = match patch.remove(&key) {
            Some(Value::Array(order)) => order,
            _ => return Err(format!("{key} must be a list")),
        };
        let name = &key[SET_ELEMENT_ORDER.len()..];
        let field = node.field(meta, name);
        let live = match original.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(items.clone()),
            Some(_) => return Err(format!("{name} is not a list in the object")),
        };
        let patched = match patch.remove(name) {
            None => None,
            Some(Value::Array(items)) => Some(items),
            Some(_) => return Err(format!("{name} must be a list in the patch")),
        };
        let merged = match (&live, patched) {
            (Some(live), None) => live.clone(),
            (None, Some(patched)) => merge_list(Vec::new(), patched, meta, field, false)?,
            (Some(live), Some(patched)) => merge_list(live.clone(), patched, meta, field, false)?,
            (None, None) => continue,
        };
        let key_name = field.merge_key.unwrap_or("");
        let (in_patch, server_only): (Vec<Value>, Vec<Value>) = merged
            .into_iter()
            .partition(|item| position(&order, item, key_name).is_some());
        let server_order = live.unwrap_or_default();
        original.insert(
            name.to_owned(),
            Value::Array(normalize_order(
                in_patch,
                server_only,
                &order,
                &server_order,
                key_name,
            )),
        );
    }
    for (key, value) in patch {
        let (name, delete_list) = match key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            Some(name) => (name.to_owned(), true),
            None if key.starts_with('$') => return Err(format!("unknown patch directive {key:?}")),
            None => (key, false),
        };
        if value.is_null() {
            original.remove(&name);
            continue;
        }
        let field = node.field(meta, &name);
        let merged = match original.remove(&name) {
            None | Some(Value::Null) if delete_list => continue,
            None | Some(Value::Null) => fresh(value, meta, field)?,
            Some(Value::Object(live)) => match value {
                Value::Object(patch) if field.strategy.replace => Value::Object(patch),
                Value::Object(patch) => Value::Object(merge_map(live, patch, meta, field.node)?),
                other => other,
            },
            Some(Value::Array(live)) => match value {
                Value::Array(patch) if delete_list => Value::Array(delete_from(live, &patch)),
                Value::Array(patch) if field.strategy.merge => {
                    Value::Array(merge_list(live, patch, meta, field, false)?)
                }
                other => other,
            },
            Some(_) => value,
        };
        original.insert(name, merged);
    }
    Ok(original)
}

/// A patch value for a key the object does not have: directives inside it
/// are still applied (to an empty value) so they never reach storage.
fn fresh(value: Value, meta: &PatchMeta, field: Field<'_>) -> Result<Value, String> {
    match value {
        Value::Object(patch) if !field.strategy.replace => Ok(Value::Object(merge_map(
            Map::new(),
            patch,
            meta,
            field.node,
        )?)),
        Value::Array(patch) if field.strategy.merge => Ok(Value::Array(merge_list(
            Vec::new(),
            patch,
            meta,
            field,
            false,
        )?)),
        other => Ok(other),
    }
}

/// The JSON type of list elements, to refuse mixed lists as upstream does.
fn element_kind(items: &[Value]) -> Result<Option<u8>, String> {
    let mut kind = None;
    for item in items {
        let k = match item {
            Value::Object(_) => 0,
            Value::String(_) => 1,
            Value::Number(_) => 2,
            Value::Bool(_) => 3,
            Value::Null => 4,
            Value::Array(_) => return Err("lists of lists cannot be merged".into()),
        };
        match kind {
            None => kind = Some(k),
            Some(prev) if prev != k => return Err("list element types are not identical".into()),
            Some(_) => {}
        }
    }
    Ok(kind)
}

fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    meta: &PatchMeta,
    field: Field<'_>,
    delete_list: bool,
) -> Result<Vec<Value>, String> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let mut both = original.clone();
    both.extend(patch.iter().cloned());
    let maps = element_kind(&both)? == Some(0);
    if !maps {
        if delete_list {
            return Ok(delete_from(original, &patch));
        }
        let mut merged: Vec<Value> = Vec::with_capacity(both.len());
        for item in both {
            if !merged.iter().any(|m| same(m, &item)) {
                merged.push(item);
            }
        }
        let (in_patch, server_only): (Vec<Value>, Vec<Value>) = merged
            .into_iter()
            .partition(|item| position(&patch, item, "").is_some());
        return Ok(normalize_order(
            in_patch,
            server_only,
            &patch,
            &original,
            "",
        ));
    }
    let key = field
        .merge_key
        .ok_or("cannot merge lists of objects without a merge key")?;
    // Special elements: `$patch: delete` items delete by key, a `$patch:
    // replace` item makes the rest of the patch list the whole list.
    let mut live = original;
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in &patch {
        let Value::Object(map) = item else {
            return Err("list element is not an object".into());
        };
        match map.get(DIRECTIVE) {
            None => plain.push(item.clone()),
            Some(Value::String(d)) if d == "delete" => {
                let value = map.get(key).ok_or_else(|| no_merge_key(item, key))?;
                live.retain(|l| !l.get(key).is_some_and(|v| same(v, value)));
            }
            Some(Value::String(d)) if d == "replace" => replace = true,
            Some(Value::String(d)) if d == "merge" => {
                return Err("merging lists cannot yet be specified in the patch".into())
            }
            Some(other) => return Err(format!("unknown patch type {other} in list element")),
        }
    }
    if replace {
        return plain
            .into_iter()
            .map(|item| match item {
                Value::Object(map) => {
                    merge_map(Map::new(), map, meta, field.node).map(Value::Object)
                }
                other => Ok(other),
            })
            .collect();
    }
    let server_order = live.clone();
    for item in &plain {
        let Value::Object(map) = item else { continue };
        let value = map.get(key).ok_or_else(|| no_merge_key(item, key))?;
        match live
            .iter()
            .position(|l| l.get(key).is_some_and(|v| same(v, value)))
        {
            Some(i) => {
                let current = match std::mem::take(&mut live[i]) {
                    Value::Object(current) => current,
                    _ => Map::new(),
                };
                live[i] = Value::Object(merge_map(current, map.clone(), meta, field.node)?);
            }
            None => live.push(Value::Object(merge_map(
                Map::new(),
                map.clone(),
                meta,
                field.node,
            )?)),
        }
    }
    for item in &live {
        if item.get(key).is_none() {
            return Err(no_merge_key(item, key));
        }
    }
    let (in_patch, server_only): (Vec<Value>, Vec<Value>) = live
        .into_iter()
        .partition(|item| position(&plain, item, key).is_some());
    Ok(normalize_order(
        in_patch,
        server_only,
        &plain,
        &server_order,
        key,
    ))
}

fn no_merge_key(item: &Value, key: &str) -> String {
    format!("map: {item} does not contain declared merge key: {key}")
}

fn delete_from(current: Vec<Value>, remove: &[Value]) -> Vec<Value> {
    current
        .into_iter()
        .filter(|v| !remove.iter().any(|r| same(r, v)))
        .collect()
}

/// Equality as Go compares decoded JSON: numbers by value.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Where `item` is in `list`: by merge key for objects, by value otherwise.
fn position(list: &[Value], item: &Value, key: &str) -> Option<usize> {
    if key.is_empty() {
        return list.iter().position(|v| same(v, item));
    }
    let wanted = item.get(key)?;
    list.iter()
        .position(|v| v.get(key).is_some_and(|v| same(v, wanted)))
}

/// Orders a merged list: patch items in the patch's (or
/// `$setElementOrder`'s) order, server-only items in the live order, the
/// two interleaved by their live positions (apimachinery's
/// `normalizeElementOrder`).
fn normalize_order(
    mut in_patch: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: &str,
) -> Vec<Value> {
    let rank = |order: &[Value], item: &Value| position(order, item, key).map_or(-1, |i| i as i64);
    in_patch.sort_by_key(|item| rank(patch_order, item));
    server_only.sort_by_key(|item| rank(server_order, item));
    let mut out = Vec::with_capacity(in_patch.len() + server_only.len());
    let (mut left, mut right) = (
        server_only.into_iter().peekable(),
        in_patch.into_iter().peekable(),
    );
    loop {
        match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => out.extend(left.next()),
            (None, Some(_)) => out.extend(right.next()),
            (Some(l), Some(r)) => {
                let (li, ri) = (rank(server_order, l), rank(server_order, r));
                if li >= 0 && ri >= 0 && li < ri {
                    out.extend(left.next());
                } else {
                    out.extend(right.next());
                }
            }
        }
    }
    out
}

fn string_list(value: &Value) -> Option<Vec<&str>> {
    value.as_array()?.iter().map(Value::as_str).collect()
}

/// A two-way strategic merge patch from `from` to `to`: what kubectl computes
/// before it sends a patch. Used by tests to check that applying the patch
/// gives `to` back.
#[cfg(test)]
pub fn diff(from: &Value, to: &Value, meta: &PatchMeta, node: Node<'_>) -> Value {
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => Value::Object(diff_maps(a, b, meta, node)),
        _ => to.clone(),
    }
}

#[cfg(test)]
fn diff_maps(
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    meta: &PatchMeta,
    node: Node<'_>,
) -> Map<String, Value> {
    let mut patch = Map::new();
    for key in a.keys() {
        if !b.contains_key(key) {
            patch.insert(key.clone(), Value::Null);
        }
    }
    for (key, new) in b {
        let field = node.field(meta, key);
        match (a.get(key), new) {
            (Some(old), _) if old == new => {}
            (Some(Value::Object(old)), Value::Object(new)) if !field.strategy.replace => {
                let inner = diff_maps(old, new, meta, field.node);
                if !inner.is_empty() {
                    patch.insert(key.clone(), Value::Object(inner));
                }
            }
            (Some(Value::Array(old)), Value::Array(new)) if field.strategy.merge => {
                match field.merge_key {
                    Some(mk) if new.iter().chain(old).all(Value::is_object) => {
                        let mut items = Vec::new();
                        for item in new {
                            match old.iter().find(|o| o.get(mk) == item.get(mk)) {
                                Some(o) => {
                                    let d = diff(o, item, meta, field.node);
                                    if d.as_object().is_some_and(|m| !m.is_empty()) {
                                        let mut d = d;
                                        d[mk] = item[mk].clone();
                                        items.push(d);
                                    }
                                }
                                None => items.push(item.clone()),
                            }
                        }
                        for o in old {
                            if !new.iter().any(|n| n.get(mk) == o.get(mk)) {
                                items.push(
                                    serde_json::json!({ DIRECTIVE: "delete", mk: o[mk].clone() }),
                                );
                            }
                        }
                        let order: Vec<Value> = new
                            .iter()
                            .map(|n| serde_json::json!({ mk: n[mk].clone() }))
                            .collect();
                        patch.insert(format!("{SET_ELEMENT_ORDER}{key}"), Value::Array(order));
                        if !items.is_empty() {
                            patch.insert(key.clone(), Value::Array(items));
                        }
                    }
                    Some(_) => {
                        patch.insert(key.clone(), Value::Array(new.clone()));
                    }
                    None => {
                        let added: Vec<Value> =
                            new.iter().filter(|n| !old.contains(n)).cloned().collect();
                        let removed: Vec<Value> =
                            old.iter().filter(|o| !new.contains(o)).cloned().collect();
                        if !removed.is_empty() {
                            patch.insert(
                                format!("{DELETE_FROM_PRIMITIVE_LIST}{key}"),
                                Value::Array(removed),
                            );
                        }
                        patch.insert(
                            format!("{SET_ELEMENT_ORDER}{key}"),
                            Value::Array(new.clone()),
                        );
                        if !added.is_empty() {
                            patch.insert(key.clone(), Value::Array(added));
                        }
                    }
                }
            }
            _ => {
                patch.insert(key.clone(), new.clone());
            }
        }
    }
    patch
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod_patch(original: Value, patch: Value) -> Result<Value, String> {
        let meta = PatchMeta::global();
        apply(&original, &patch, meta, meta.root("v1", "Pod"))
    }

    fn pod(containers: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}})
    }

    #[test]
    fn containers_merge_by_name_and_null_deletes() {
        let original = pod(json!([
            {"name": "a", "image": "a:1", "ports": [{"containerPort": 80}, {"containerPort": 81}]},
            {"name": "b", "image": "b:1", "args": ["x"]}
        ]));
        let out = pod_patch(
            original,
            json!({"spec": {"containers": [
                {"name": "b", "image": "b:2", "args": null},
                {"name": "c", "image": "c:1"},
                {"name": "a", "ports": [{"containerPort": 82}]}
            ]}}),
        )
        .expect("patch");
        // The patch's order wins (as upstream): b, c, a.
        let containers = &out["spec"]["containers"];
        assert_eq!(containers[0], json!({"name": "b", "image": "b:2"}));
        assert_eq!(containers[1]["name"], "c");
        assert_eq!(containers[2]["name"], "a");
        assert_eq!(containers[2]["image"], "a:1");
        // ports merge by containerPort: the new one joins the old ones.
        assert_eq!(containers[2]["ports"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn patch_delete_and_replace_directives() {
        let original = pod(json!([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}]));
        let out = pod_patch(
            original.clone(),
            json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}),
        )
        .expect("delete");
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "b", "image": "b"}])
        );
        let out = pod_patch(
            original.clone(),
            json!({"spec": {"containers": [{"name": "z", "image": "z"}, {"$patch": "replace"}]}}),
        )
        .expect("replace list");
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "z", "image": "z"}])
        );
        let out = pod_patch(
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
            json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
        )
        .expect("replace map");
        assert_eq!(out["metadata"]["labels"], json!({"c": "3"}));
        let out = pod_patch(
            json!({"metadata": {"labels": {"a": "1"}}}),
            json!({"metadata": {"labels": {"$patch": "delete"}}}),
        )
        .expect("delete map");
        assert_eq!(out["metadata"]["labels"], json!({}));
        assert!(pod_patch(original.clone(), json!({"spec": {"$patch": "explode"}})).is_err());
        assert!(pod_patch(
            original,
            json!({"spec": {"containers": [{"image": "no-name"}]}})
        )
        .is_err());
    }

    #[test]
    fn primitive_lists_merge_as_sets_and_delete_by_value() {
        let original = json!({"metadata": {"finalizers": ["a", "b"]}});
        let out = pod_patch(
            original.clone(),
            json!({"metadata": {"finalizers": ["c", "a"]}}),
        )
        .expect("merge");
        // Patch items in patch order, server-only ones after (upstream's
        // normalizeElementOrder).
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
        let out = pod_patch(
            original.clone(),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        )
        .expect("delete");
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
        // Lists without a strategy are replaced.
        let out = pod_patch(
            pod(json!([{"name": "a", "args": ["1", "2"]}])),
            json!({"spec": {"containers": [{"name": "a", "args": ["3"]}]}}),
        )
        .expect("atomic");
        assert_eq!(out["spec"]["containers"][0]["args"], json!(["3"]));
    }

    #[test]
    fn set_element_order_reorders() {
        let original = pod(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
        let out = pod_patch(
            original,
            json!({"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}]}}),
        )
        .expect("order");
        let names: Vec<&str> = out["spec"]["containers"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, ["c", "a", "b"]);
        let out = pod_patch(
            json!({"metadata": {"finalizers": ["x", "y"]}}),
            json!({"metadata": {"$setElementOrder/finalizers": ["y", "z", "x"], "finalizers": ["z"]}}),
        )
        .expect("primitive order");
        assert_eq!(out["metadata"]["finalizers"], json!(["y", "z", "x"]));
    }

    #[test]
    fn retain_keys_clears_other_keys() {
        let meta = PatchMeta::global();
        let original = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        let out = apply(
            &original,
            &json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
            meta,
            meta.root("apps/v1", "Deployment"),
        )
        .expect("retain");
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        let bad = apply(
            &original,
            &json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}),
            meta,
            meta.root("apps/v1", "Deployment"),
        );
        assert!(bad.is_err());
        // Volumes: retainKeys inside list items keyed by name.
        let out = pod_patch(
            json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}}),
            json!({"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "configMap"], "configMap": {"name": "cm"}}]}}),
        )
        .expect("volume");
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "v", "configMap": {"name": "cm"}}])
        );
    }

    #[test]
    fn untyped_objects_use_merge_patch_semantics() {
        let meta = PatchMeta::global();
        let original = json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"items": [1, 2], "a": {"b": 1}}});
        let out = apply(
            &original,
            &json!({"spec": {"items": [3], "a": {"c": 2}}}),
            meta,
            meta.root_of(&original),
        )
        .expect("untyped");
        assert_eq!(out["spec"], json!({"items": [3], "a": {"b": 1, "c": 2}}));
    }

    #[test]
    fn odd_inputs_are_errors_not_panics() {
        for patch in [
            json!([]),
            json!({"$unknown": 1}),
            json!({"spec": {"containers": [1, {"name": "a"}]}}),
            json!({"spec": {"containers": [[1]]}}),
            json!({"metadata": {"$retainKeys": "x"}}),
            json!({"spec": {"$setElementOrder/containers": 3}}),
            json!({"spec": {"containers": [{"$patch": 3, "name": "a"}]}}),
        ] {
            let _ = pod_patch(pod(json!([{"name": "a"}])), patch);
        }
        assert!(pod_patch(pod(json!([])), json!([])).is_err());
    }

    #[test]
    fn diff_then_apply_round_trips() {
        let meta = PatchMeta::global();
        let a = pod(
            json!([{"name": "a", "image": "1", "env": [{"name": "X", "value": "1"}]}, {"name": "b"}]),
        );
        let mut b = pod(
            json!([{"name": "c"}, {"name": "a", "image": "2", "env": [{"name": "Y", "value": "2"}]}]),
        );
        b["metadata"]["finalizers"] = json!(["f"]);
        let node = meta.root("v1", "Pod");
        let patch = diff(&a, &b, meta, node);
        assert_eq!(apply(&a, &patch, meta, node).expect("apply"), b);
    }

    mod property {
        use super::*;
        use proptest::prelude::*;
        use std::collections::BTreeMap;

        fn env() -> impl Strategy<Value = Value> {
            proptest::collection::btree_map("[A-C]", "[0-2]", 0..3).prop_map(|m| {
                Value::Array(
                    m.into_iter()
                        .map(|(k, v)| json!({"name": k, "value": v}))
                        .collect(),
                )
            })
        }

        fn container(
        ) -> impl Strategy<Value = (Value, Option<Value>, Vec<u16>, Option<Vec<String>>)> {
            (
                prop_oneof![
                    Just(json!("nginx:1")),
                    Just(json!("nginx:2")),
                    Just(json!("busybox"))
                ],
                proptest::option::of(env()),
                proptest::collection::btree_set(80u16..84, 0..3)
                    .prop_map(|s| s.into_iter().collect()),
                proptest::option::of(proptest::collection::vec("[xy]", 0..3)),
            )
        }

        /// A pod whose lists have unique keys (as valid pods do), in a
        /// random order.
        fn pod() -> impl Strategy<Value = Value> {
            (
                proptest::collection::btree_map("[a-d]", container(), 1..4),
                proptest::collection::btree_set("[f-h]", 0..3),
                proptest::collection::btree_map("[k-m]", "[0-1]", 0..3),
                any::<bool>(),
                any::<u64>(),
            )
                .prop_map(|(containers, finalizers, labels, host_network, seed)| {
                    let mut items: Vec<Value> = containers
                        .into_iter()
                        .map(|(name, (image, env, ports, args))| {
                            let mut c = json!({"name": name, "image": image});
                            if let Some(env) = env {
                                c["env"] = env;
                            }
                            if !ports.is_empty() {
                                c["ports"] = Value::Array(ports.iter().map(|p| json!({"containerPort": p})).collect());
                            }
                            if let Some(args) = args {
                                c["args"] = json!(args);
                            }
                            c
                        })
                        .collect();
                    // A deterministic shuffle from the seed.
                    let n = items.len();
                    for i in 0..n {
                        let j = ((seed >> (i * 4)) as usize) % n;
                        items.swap(i, j);
                    }
                    let mut pod = json!({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": "p", "labels": labels.into_iter().collect::<BTreeMap<_, _>>()},
                        "spec": {"containers": items}});
                    if !finalizers.is_empty() {
                        let mut list: Vec<String> = finalizers.into_iter().collect();
                        if seed % 2 == 1 {
                            list.reverse();
                        }
                        pod["metadata"]["finalizers"] = json!(list);
                    }
                    if host_network {
                        pod["spec"]["hostNetwork"] = json!(true);
                    }
                    pod
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// A strategic merge patch of a random change to a pod, applied
            /// to the old pod, gives the new pod.
            #[test]
            fn patch_of_a_change_gives_the_new_pod(old in pod(), new in pod()) {
                let meta = PatchMeta::global();
                let node = meta.root("v1", "Pod");
                let patch = diff(&old, &new, meta, node);
                let patched = apply(&old, &patch, meta, node);
                prop_assert_eq!(patched.as_ref().ok(), Some(&new), "patch {}", patch);
            }
        }
    }
}
