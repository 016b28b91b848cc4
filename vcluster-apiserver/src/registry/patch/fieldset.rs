//! Sets of field paths, as server-side apply tracks ownership, and their
//! `FieldsV1` encoding (`{"f:spec":{"f:replicas":{}}}`), which kubectl and
//! client libraries read back from `metadata.managedFields`.
//!
//! Path elements are kept in their encoded form: `f:<name>` for a field,
//! `k:{"name":"c"}` for a list item identified by its merge key, `v:<json>`
//! for an item of a set of scalars, `i:<n>` for a list index. A node that is
//! itself in the set and has children gets `".": {}`, as upstream writes.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::meta::{Field, KeyField, Node, PatchMeta, Shape};
use crate::protobuf::{FieldFacts, ListType, MessageId};

/// A set of paths into an object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    /// Whether the path leading here is itself a member of the set.
    pub member: bool,
    /// Children by encoded path element.
    pub children: BTreeMap<String, FieldSet>,
}

/// One step of a path, decoded.
#[derive(Clone, Debug, PartialEq)]
pub enum PathElement {
    /// A field of an object (`f:`).
    Field(String),
    /// A list item by its key fields (`k:`).
    Key(Map<String, Value>),
    /// An item of a set of scalars (`v:`).
    Value(Value),
    /// A list item by position (`i:`).
    Index(usize),
}

impl PathElement {
    /// Parses an encoded element (`f:name`, `k:{...}`, `v:..`, `i:3`).
    pub fn parse(text: &str) -> Option<PathElement> {
        let (prefix, rest) = text.split_at_checked(2)?;
        match prefix {
            "f:" => Some(PathElement::Field(rest.to_owned())),
            "k:" => match serde_json::from_str(rest).ok()? {
                Value::Object(map) => Some(PathElement::Key(map)),
                _ => None,
            },
            "v:" => serde_json::from_str(rest).ok().map(PathElement::Value),
            "i:" => rest.parse().ok().map(PathElement::Index),
            _ => None,
        }
    }

    /// The element as upstream prints it in conflict messages
    /// (`.replicas`, `[name="nginx"]`, `[="a"]`, `[0]`).
    pub fn display(&self) -> String {
        match self {
            PathElement::Field(name) => format!(".{name}"),
            PathElement::Key(map) => {
                let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("[{}]", parts.join(","))
            }
            PathElement::Value(v) => format!("[={v}]"),
            PathElement::Index(i) => format!("[{i}]"),
        }
    }
}

/// Encodes a list item's key (`k:{"name":"a"}`), keys sorted.
fn key_element(key: &str, value: &Value) -> String {
    let mut map = Map::new();
    map.insert(key.to_owned(), value.clone());
    format!("k:{}", Value::Object(map))
}

/// `f:<name>`.
pub fn field_element(name: &str) -> String {
    format!("f:{name}")
}

/// How the items of a list are identified.
#[derive(Clone, Copy, Debug)]
pub enum ListKind<'a> {
    /// Replaced whole: owned as one value.
    Atomic,
    /// Items keyed by a merge key.
    Map(&'a str),
    /// Items keyed by several fields, some with a default.
    CompoundMap(&'static [KeyField]),
    /// A set of scalars.
    Set,
}

/// The list kind of a field, from its patch metadata (upstream derives
/// server-side apply list types from the same tags when no explicit
/// `x-kubernetes-list-type` is given) and the compound keys upstream
/// declares.
pub fn list_kind<'a>(field: &Field<'a>) -> ListKind<'a> {
    match (field.strategy.merge, field.list_keys, field.merge_key) {
        (true, Some(keys), _) => ListKind::CompoundMap(keys),
        (true, None, Some(key)) => ListKind::Map(key),
        (true, None, None) => ListKind::Set,
        _ => ListKind::Atomic,
    }
}

/// A scalar Go's `omitempty` drops: `""`, `0`, `false`.
fn is_go_zero(value: &Value) -> bool {
    match value {
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Bool(b) => !b,
        _ => false,
    }
}

/// The list kind of a typed field: the Go type's `+listType` markers
/// when it has them (what kube-apiserver's OpenAPI, and so server-side
/// apply, follows), else the patch strategy ([`list_kind`]).
pub fn typed_list_kind<'a>(field: &Field<'a>, facts: &FieldFacts) -> ListKind<'a> {
    match facts.list {
        Some(ListType::Set) => ListKind::Set,
        Some(ListType::Map(keys)) => match (field.list_keys, keys) {
            (Some(known), _) => ListKind::CompoundMap(known),
            (None, [(key, _)]) => ListKind::Map(key),
            (None, keys) => ListKind::CompoundMap(keys),
        },
        None => list_kind(field),
    }
}

/// `k:{...}` of an item keyed by several fields: every key field must be
/// a scalar, or missing with a default.
fn compound_element(keys: &[KeyField], item: &Value) -> Option<String> {
    let mut map = Map::new();
    for (key, default) in keys {
        let value = match item.get(*key) {
            Some(v) if !v.is_object() && !v.is_array() && !v.is_null() => v.clone(),
            _ => Value::String((*default)?.to_owned()),
        };
        map.insert((*key).to_owned(), value);
    }
    Some(format!("k:{}", Value::Object(map)))
}

/// Fills the defaulted key fields items of compound-keyed lists leave out,
/// everywhere in `object`, so items are found by their full key.
pub fn fill_key_defaults(object: &mut Value, meta: &PatchMeta, node: Node<'_>) {
    let Value::Object(map) = object else {
        return;
    };
    for (key, value) in map.iter_mut() {
        let field = node.field(meta, key);
        match value {
            Value::Array(items) => {
                for item in items.iter_mut() {
                    if let (Some(keys), Value::Object(fields)) = (field.list_keys, &mut *item) {
                        for (name, default) in keys {
                            if let (None, Some(default)) = (fields.get(*name), default) {
                                fields.insert(
                                    (*name).to_owned(),
                                    Value::String((*default).to_owned()),
                                );
                            }
                        }
                    }
                    fill_key_defaults(item, meta, field.node);
                }
            }
            Value::Object(_) => fill_key_defaults(value, meta, field.node),
            _ => {}
        }
    }
}

/// The encoded element of a list item, or `None` if the list cannot be
/// tracked item by item (missing key, duplicates): then it is atomic.
pub fn item_element(kind: ListKind<'_>, item: &Value) -> Option<String> {
    match kind {
        ListKind::Atomic => None,
        ListKind::Map(key) => item
            .get(key)
            .filter(|v| !v.is_object() && !v.is_array() && !v.is_null())
            .map(|v| key_element(key, v)),
        ListKind::CompoundMap(keys) => compound_element(keys, item),
        ListKind::Set => (!item.is_object() && !item.is_array()).then(|| format!("v:{item}")),
    }
}

/// Elements of every item of a list, if each is identifiable and unique.
pub fn item_elements(kind: ListKind<'_>, items: &[Value]) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let element = item_element(kind, item)?;
        if out.contains(&element) {
            return None;
        }
        out.push(element);
    }
    Some(out)
}

impl FieldSet {
    /// Whether nothing is in the set.
    pub fn is_empty(&self) -> bool {
        !self.member && self.children.values().all(FieldSet::is_empty)
    }

    /// The paths of an object's fields, as apply records what a manager
    /// sets: scalars, list items, atomic values, empty objects, and the
    /// keys of free-form maps. `typed_as` is the whole object (with
    /// `apiVersion` and `kind`): its Go types say which values are atomic.
    pub fn of_object(
        object: &Value,
        meta: &PatchMeta,
        node: Node<'_>,
        typed_as: &Value,
    ) -> FieldSet {
        let mut set = FieldSet::default();
        if let Value::Object(map) = object {
            set.add_map(map, meta, node, crate::protobuf::message_of(typed_as));
        }
        set
    }

    fn add_map(
        &mut self,
        map: &Map<String, Value>,
        meta: &PatchMeta,
        node: Node<'_>,
        message: Option<MessageId>,
    ) {
        for (key, value) in map {
            let field = node.field(meta, key);
            let facts = message
                .map(|m| crate::protobuf::field_facts(m, key))
                .unwrap_or_default();
            if facts.omitted_when_zero && is_go_zero(value) {
                // Go leaves it out of what it writes: nobody owns it.
                continue;
            }
            let child = self.children.entry(field_element(key)).or_default();
            if facts.atomic {
                child.member = true;
                continue;
            }
            // A map's values are of the map's item message.
            let inner_message = facts.message;
            match value {
                Value::Object(inner) if inner.is_empty() => child.member = true,
                Value::Object(inner) if facts.is_map => {
                    for (map_key, map_value) in inner {
                        let entry = child.children.entry(field_element(map_key)).or_default();
                        match map_value {
                            Value::Object(fields) if !fields.is_empty() => {
                                let value_node = field.node.field(meta, map_key).node;
                                entry.add_map(fields, meta, value_node, inner_message);
                                entry.member = true;
                            }
                            _ => entry.member = true,
                        }
                    }
                }
                Value::Object(inner) => {
                    child.add_map(inner, meta, field.node, inner_message);
                    // Values of a `map[string]T` are members themselves,
                    // as upstream records keys not declared as fields.
                    if matches!(node, Node::MapOf(_)) {
                        child.member = true;
                    }
                }
                Value::Array(items) => {
                    let kind = if field.shape == Shape::List {
                        typed_list_kind(&field, &facts)
                    } else {
                        ListKind::Atomic
                    };
                    match item_elements(kind, items) {
                        Some(elements) if !items.is_empty() => {
                            for (element, item) in elements.into_iter().zip(items) {
                                let entry = child.children.entry(element).or_default();
                                entry.member = true;
                                if let Value::Object(inner) = item {
                                    entry.add_map(inner, meta, field.node, inner_message);
                                }
                            }
                        }
                        _ => child.member = true,
                    }
                }
                _ => child.member = true,
            }
        }
    }

    /// The paths of the maps and lists `after` has and `before` did not:
    /// an ordinary write owns them as well as what is inside them (upstream
    /// compares the two objects and records every node it adds, printed as
    /// `".": {}`). Free-form maps, lists tracked item by item and their
    /// items count; fields of a known struct do not, as Go writes them in
    /// the empty object a create starts from. Untyped objects (custom
    /// resources) have no such fields: every object they add counts.
    /// `typed_as` is the whole object (with `apiVersion` and `kind`),
    /// which says which struct `after` is.
    pub fn added_containers(
        after: &Value,
        before: &Value,
        meta: &PatchMeta,
        node: Node<'_>,
        typed_as: &Value,
    ) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let message = crate::protobuf::message_of(typed_as);
        let walk = Walk {
            after,
            before,
            meta,
        };
        walk.collect(node, message, false, &mut Vec::new(), &mut out);
        out
    }

    /// Adds every path of `other`.
    pub fn union_with(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (key, child) in &other.children {
            self.children
                .entry(key.clone())
                .or_default()
                .union_with(child);
        }
    }

    /// Removes every path of `other` (only the paths themselves, not
    /// their descendants).
    pub fn subtract(&mut self, other: &FieldSet) {
        if other.member {
            self.member = false;
        }
        for (key, child) in &other.children {
            if let Some(mine) = self.children.get_mut(key) {
                mine.subtract(child);
            }
        }
        self.prune_empty();
    }

    /// The paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (key, child) in &self.children {
            if let Some(theirs) = other.children.get(key) {
                let both = child.intersection(theirs);
                if !both.is_empty() {
                    out.children.insert(key.clone(), both);
                }
            }
        }
        out
    }

    /// Whether this node or anything below it is a member.
    pub fn has_any(&self) -> bool {
        !self.is_empty()
    }

    fn prune_empty(&mut self) {
        self.children.retain(|_, child| {
            child.prune_empty();
            !child.is_empty()
        });
    }

    /// Every member path, as lists of encoded elements.
    pub fn paths(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if self.member {
            out.push(at.clone());
        }
        for (key, child) in &self.children {
            at.push(key.clone());
            child.collect(at, out);
            at.pop();
        }
    }

    /// The `fieldsV1` JSON.
    pub fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        if self.member && !self.children.is_empty() {
            map.insert(".".into(), Value::Object(Map::new()));
        }
        for (key, child) in &self.children {
            if !child.is_empty() {
                map.insert(key.clone(), child.to_fields_v1());
            }
        }
        Value::Object(map)
    }

    /// Parses `fieldsV1`; `Err` names what is malformed.
    pub fn from_fields_v1(value: &Value) -> Result<FieldSet, String> {
        let mut set = FieldSet::default();
        set.read(value, 0)?;
        Ok(set)
    }

    fn read(&mut self, value: &Value, depth: usize) -> Result<(), String> {
        if depth > 64 {
            return Err("fieldsV1 is nested too deeply".into());
        }
        let Value::Object(map) = value else {
            return Err(format!("fieldsV1 entries must be objects, found {value}"));
        };
        if map.is_empty() {
            self.member = true;
        }
        for (key, child) in map {
            if key == "." {
                self.member = true;
                continue;
            }
            if PathElement::parse(key).is_none() {
                return Err(format!("fieldsV1 has an invalid path element {key:?}"));
            }
            let mut node = FieldSet::default();
            node.read(child, depth + 1)?;
            self.children.insert(key.clone(), node);
        }
        Ok(())
    }
}

/// `.spec.containers[name="a"].image`: a path as conflict messages print it.
pub fn display_path(path: &[String]) -> String {
    path.iter()
        .map(|e| PathElement::parse(e).map_or_else(|| e.clone(), |p| p.display()))
        .collect()
}

/// The value at an encoded path of an object, if present.
pub fn value_at<'v>(object: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut current = object;
    for element in path {
        current = match PathElement::parse(element)? {
            PathElement::Field(name) => current.get(&name)?,
            PathElement::Index(i) => current.get(i)?,
            PathElement::Key(key) => current.as_array()?.iter().find(|item| {
                key.iter()
                    .all(|(k, v)| item.get(k).is_some_and(|iv| same(iv, v)))
            })?,
            PathElement::Value(v) => current.as_array()?.iter().find(|item| same(item, &v))?,
        };
    }
    Some(current)
}

/// The two objects [`FieldSet::added_containers`] compares.
struct Walk<'v> {
    after: &'v Value,
    before: &'v Value,
    meta: &'v PatchMeta,
}

impl Walk<'_> {
    /// Walks the object at `at` in `after`, of protobuf `message` when
    /// typed (which tells maps from structs). `parent_new`: the object at
    /// `at` was added itself (a struct behind a pointer, such as a
    /// replication controller's template), so even the fields Go always
    /// writes were not there before.
    fn collect(
        &self,
        node: Node<'_>,
        message: Option<MessageId>,
        parent_new: bool,
        at: &mut Vec<String>,
        out: &mut Vec<Vec<String>>,
    ) {
        let Some(Value::Object(map)) = value_at(self.after, at) else {
            return;
        };
        for (key, value) in map {
            let field = node.field(self.meta, key);
            let facts = message.map(|m| crate::protobuf::field_facts(m, key));
            let FieldFacts {
                message: child,
                is_map,
                always_written,
                atomic,
                ..
            } = facts.unwrap_or_default();
            if atomic {
                // Owned whole, as a leaf: nothing inside is tracked.
                continue;
            }
            at.push(field_element(key));
            // A field Go writes even in an empty object was there before.
            let is_new = value_at(self.before, at).is_none() && (!always_written || parent_new);
            match value {
                Value::Object(inner) if !inner.is_empty() => {
                    if is_new && (is_map || facts.is_none() || child.is_some()) {
                        out.push(at.clone());
                    }
                    // A map's values are of the item message; a struct's
                    // fields of its own.
                    if is_map {
                        for value_key in inner.keys() {
                            at.push(field_element(value_key));
                            if value_at(self.after, at).is_some_and(Value::is_object) {
                                self.collect(
                                    field.node.field(self.meta, value_key).node,
                                    child,
                                    false,
                                    at,
                                    out,
                                );
                            }
                            at.pop();
                        }
                    } else {
                        self.collect(field.node, child, is_new, at, out);
                    }
                }
                Value::Array(items) if !items.is_empty() && field.shape == Shape::List => {
                    let kind = typed_list_kind(&field, &facts.unwrap_or_default());
                    if let Some(elements) = item_elements(kind, items) {
                        if is_new {
                            out.push(at.clone());
                        }
                        for (element, item) in elements.into_iter().zip(items) {
                            at.push(element);
                            if item.is_object() {
                                // Items are tracked as themselves: their
                                // always-written fields stay unowned.
                                self.collect(field.node, child, false, at, out);
                            }
                            at.pop();
                        }
                    }
                }
                _ => {}
            }
            at.pop();
        }
    }
}

/// Removes the value at an encoded path (a field, or a list item).
pub fn remove_at(object: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = object;
    for element in parents {
        let next = match PathElement::parse(element) {
            Some(PathElement::Field(name)) => current.get_mut(&name),
            Some(PathElement::Index(i)) => current.get_mut(i),
            Some(PathElement::Key(key)) => current.as_array_mut().and_then(|items| {
                items.iter_mut().find(|item| {
                    key.iter()
                        .all(|(k, v)| item.get(k).is_some_and(|iv| same(iv, v)))
                })
            }),
            Some(PathElement::Value(_)) | None => None,
        };
        match next {
            Some(next) => current = next,
            None => return,
        }
    }
    match PathElement::parse(last) {
        Some(PathElement::Field(name)) => {
            if let Some(map) = current.as_object_mut() {
                map.remove(&name);
            }
        }
        Some(PathElement::Key(key)) => {
            if let Some(items) = current.as_array_mut() {
                items.retain(|item| {
                    !key.iter()
                        .all(|(k, v)| item.get(k).is_some_and(|iv| same(iv, v)))
                });
            }
        }
        Some(PathElement::Value(v)) => {
            if let Some(items) = current.as_array_mut() {
                items.retain(|item| !same(item, &v));
            }
        }
        Some(PathElement::Index(i)) => {
            if let Some(items) = current.as_array_mut() {
                if i < items.len() {
                    items.remove(i);
                }
            }
        }
        None => {}
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}], "args": ["a"]}]}},
            },
        })
    }

    #[test]
    fn a_write_owns_the_maps_and_lists_it_adds() {
        let meta = PatchMeta::global();
        let object = deployment();
        let node = meta.root_of(&object);
        let added = FieldSet::added_containers(&object, &json!({}), meta, node, &object);
        let has = |path: &[&str]| added.iter().any(|p| p == path);
        assert!(has(&["f:metadata", "f:labels"]), "{added:?}");
        let container = [
            "f:spec",
            "f:template",
            "f:spec",
            "f:containers",
            "k:{\"name\":\"nginx\"}",
        ];
        assert!(has(&[&container[..], &["f:ports"]].concat()), "{added:?}");
        // Fields of a struct held by value, and fields Go writes even when
        // empty (`containers` has no omitempty), are in the empty object a
        // create starts from.
        assert!(!has(&["f:spec"]) && !has(&["f:metadata"]), "{added:?}");
        assert!(!has(&container[..4]), "{added:?}");
        // An atomic selector is owned whole, nothing inside it.
        let selector = ["f:spec".to_owned(), "f:selector".to_owned()];
        assert!(!added.iter().any(|p| p.starts_with(&selector)), "{added:?}");
        // What was there before is not added again.
        let before = json!({"metadata": {"labels": {"old": "x"}}});
        let added = FieldSet::added_containers(&object, &before, meta, node, &object);
        assert!(
            !added.iter().any(|p| p == &["f:metadata", "f:labels"]),
            "{added:?}"
        );
    }

    #[test]
    fn object_fields_encode_like_upstream() {
        let meta = PatchMeta::global();
        let object = deployment();
        let set = FieldSet::of_object(&object, meta, meta.root_of(&object), &object);
        let encoded = set.to_fields_v1();
        assert_eq!(encoded["f:metadata"]["f:labels"], json!({"f:app": {}}));
        assert_eq!(encoded["f:spec"]["f:replicas"], json!({}));
        // A label selector is atomic (`+structType=atomic`): owned whole.
        assert_eq!(encoded["f:spec"]["f:selector"], json!({}));
        let container =
            &encoded["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"];
        assert_eq!(container["."], json!({}));
        assert_eq!(container["f:image"], json!({}));
        assert_eq!(container["f:args"], json!({}));
        // Ports are keyed by number and protocol, the left-out protocol
        // being TCP, as upstream encodes them.
        assert_eq!(
            container["f:ports"]["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"],
            json!({".": {}, "f:containerPort": {}})
        );
        let back = FieldSet::from_fields_v1(&encoded).expect("decode");
        assert_eq!(back, set);
    }

    #[test]
    fn sets_and_paths() {
        let meta = PatchMeta::global();
        let object = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"finalizers": ["a"]}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let set = FieldSet::of_object(&object, meta, meta.root_of(&object), &object);
        let paths: Vec<String> = set.paths().iter().map(|p| display_path(p)).collect();
        assert!(
            paths.contains(&".metadata.finalizers[=\"a\"]".to_owned()),
            "{paths:?}"
        );
        assert!(
            paths.contains(&".spec.containers[name=\"c\"].image".to_owned()),
            "{paths:?}"
        );
        for path in set.paths() {
            assert!(value_at(&object, &path).is_some(), "{path:?}");
        }
        let mut other = set.clone();
        other.subtract(&set);
        assert!(other.is_empty());
        let mut removed = object.clone();
        remove_at(
            &mut removed,
            &[
                "f:spec".into(),
                "f:containers".into(),
                "k:{\"name\":\"c\"}".into(),
            ],
        );
        assert_eq!(removed["spec"]["containers"], json!([]));
        remove_at(
            &mut removed,
            &["f:metadata".into(), "f:finalizers".into(), "v:\"a\"".into()],
        );
        assert_eq!(removed["metadata"]["finalizers"], json!([]));
    }

    #[test]
    fn malformed_fields_v1_is_an_error() {
        for bad in [
            json!([]),
            json!({"x:y": {}}),
            json!({"f:a": 1}),
            json!({"k:nope": {}}),
            json!({"i:z": {}}),
        ] {
            assert!(FieldSet::from_fields_v1(&bad).is_err(), "{bad}");
        }
    }
}
