//! Server-side apply (`application/apply-patch+yaml`) and field ownership.
//!
//! `metadata.managedFields` keeps, per manager and operation, the set of
//! fields that manager set ([`FieldSet`], encoded as `FieldsV1`). An apply
//! merges the applied configuration into the live object, removes fields the
//! manager applied before but no longer does (unless someone else owns
//! them), and refuses to change a field another manager owns (409 Conflict)
//! unless forced, in which case ownership moves. Ordinary writes (create,
//! update, patch) record ownership too, taking over whatever they change,
//! so that a later apply by someone else conflicts as upstream's would.

use serde_json::{json, Map, Value};

use super::fieldset::{
    self, display_path, fill_key_defaults, item_elements, list_kind, value_at, FieldSet, ListKind,
    PathElement,
};
use super::meta::{Node, PatchMeta, Shape};
use crate::error::{ApiError, FieldCause};
use crate::object;
use crate::resources::ResourceInfo;

/// The longest field manager name upstream accepts.
const MAX_MANAGER_LENGTH: usize = 128;

/// Metadata fields the server owns: never tracked as anyone's.
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// Who writes: a manager name, and the subresource written (`status`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldManager {
    /// The `fieldManager` (or a name derived from the User-Agent).
    pub name: String,
    /// `status` for writes to the status subresource.
    pub subresource: Option<String>,
}

impl FieldManager {
    /// Checks a client-supplied manager name as upstream does.
    pub fn validate(name: &str) -> Result<(), ApiError> {
        if name.chars().count() > MAX_MANAGER_LENGTH {
            return Err(invalid_options(
                "fieldManager",
                format!("Too long: may not be more than {MAX_MANAGER_LENGTH} bytes"),
            ));
        }
        if name.chars().any(|c| c.is_control()) {
            return Err(invalid_options(
                "fieldManager",
                format!("Invalid value: {name:?}: must only contain printable characters"),
            ));
        }
        Ok(())
    }

    /// The manager upstream uses when a client names none: the program
    /// part of its User-Agent (`kubectl/v1.32 ...` -> `kubectl`).
    pub fn from_user_agent(user_agent: Option<&str>) -> String {
        let program = user_agent
            .and_then(|ua| ua.split('/').next())
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .unwrap_or("unknown");
        program.chars().take(MAX_MANAGER_LENGTH).collect()
    }
}

/// A 422 about the patch options (`PatchOptions.meta.k8s.io`).
pub fn invalid_options(field: &str, message: impl Into<String>) -> ApiError {
    let message = message.into();
    let mut err = ApiError::new(
        http::StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
        format!("PatchOptions.meta.k8s.io \"\" is invalid: {field}: {message}"),
    );
    err.causes.push(FieldCause {
        reason: "FieldValueInvalid",
        field: field.to_owned(),
        message,
    });
    err
}

/// One `managedFields` entry.
#[derive(Clone, Debug, PartialEq)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: Option<String>,
    subresource: String,
    fields: FieldSet,
}

impl Entry {
    fn parse(value: &Value) -> Result<Entry, String> {
        let text = |name: &str| {
            value
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let fields = match value.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::default(),
            Some(v) => FieldSet::from_fields_v1(v)?,
        };
        match value.get("fieldsType").and_then(Value::as_str) {
            None | Some("FieldsV1") => {}
            Some(other) => {
                return Err(format!(
                    "fieldsType {other:?} is not supported (only FieldsV1)"
                ))
            }
        }
        let operation = text("operation");
        if !matches!(operation.as_str(), "Apply" | "Update") {
            return Err(format!(
                "operation must be Apply or Update, not {operation:?}"
            ));
        }
        Ok(Entry {
            manager: text("manager"),
            operation,
            api_version: text("apiVersion"),
            time: value.get("time").and_then(Value::as_str).map(str::to_owned),
            subresource: text("subresource"),
            fields,
        })
    }

    fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("manager".into(), json!(self.manager));
        map.insert("operation".into(), json!(self.operation));
        map.insert("apiVersion".into(), json!(self.api_version));
        if let Some(time) = &self.time {
            map.insert("time".into(), json!(time));
        }
        map.insert("fieldsType".into(), json!("FieldsV1"));
        map.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if !self.subresource.is_empty() {
            map.insert("subresource".into(), json!(self.subresource));
        }
        Value::Object(map)
    }

    fn is(&self, manager: &FieldManager, operation: &str) -> bool {
        self.manager == manager.name
            && self.operation == operation
            && self.subresource == manager.subresource.as_deref().unwrap_or("")
    }

    /// How upstream names a manager in conflict messages.
    fn describe(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            out.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == "Update" {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }
}

fn read_entries(list: &Value) -> Result<Vec<Entry>, String> {
    match list {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.iter().map(Entry::parse).collect(),
        _ => Err("metadata.managedFields must be a list".into()),
    }
}

fn stored_entries(object: Option<&Value>) -> Vec<Entry> {
    object
        .and_then(|o| o.pointer("/metadata/managedFields"))
        .and_then(|list| read_entries(list).ok())
        .unwrap_or_default()
}

fn write_entries(object: &mut Value, entries: Vec<Entry>) {
    let entries: Vec<Value> = entries
        .into_iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| e.to_json())
        .collect();
    let meta = object::metadata_mut(object);
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(entries));
    }
}

/// The part of an object ownership is tracked for: no type or server
/// metadata, and only `status` (status subresource, with the metadata when
/// the kind's status writes take it) or everything but it (main resource
/// of a kind with a status subresource).
fn tracked_view(resource: &ResourceInfo, object: &Value, subresource: Option<&str>) -> Value {
    let mut view = object.as_object().cloned().unwrap_or_default();
    view.remove("apiVersion");
    view.remove("kind");
    if let Some(Value::Object(meta)) = view.get_mut("metadata") {
        for field in SERVER_METADATA {
            meta.remove(*field);
        }
        if meta.is_empty() {
            view.remove("metadata");
        }
    }
    match subresource {
        // A status write owns the metadata it may change too.
        Some("status") if resource.strategy.status_writes_metadata() => {
            view.retain(|k, _| k == "status" || k == "metadata")
        }
        Some("status") => view.retain(|k, _| k == "status"),
        _ if resource.status_subresource => {
            view.remove("status");
        }
        _ => {}
    }
    if subresource.is_none() {
        for field in resource.strategy.reset_fields() {
            view.remove(*field);
        }
    }
    Value::Object(view)
}

/// Whether the value at `path` differs between two objects; list items
/// and set values count as unchanged when present in both.
fn changed(before: &Value, after: &Value, path: &[String]) -> bool {
    let item = path
        .last()
        .and_then(|e| PathElement::parse(e))
        .is_some_and(|e| matches!(e, PathElement::Key(_) | PathElement::Value(_)));
    match (value_at(before, path), value_at(after, path)) {
        (Some(_), Some(_)) if item => false,
        (Some(b), Some(a)) => !same_value(b, a),
        (None, None) => false,
        _ => true,
    }
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}

fn set_of(paths: &[Vec<String>]) -> FieldSet {
    let mut set = FieldSet::default();
    for path in paths {
        let mut node = &mut set;
        for element in path {
            node = node.children.entry(element.clone()).or_default();
        }
        node.member = true;
    }
    set
}

/// Records an ordinary write (create, update, non-apply patch) in
/// `new.metadata.managedFields`: the writer takes ownership of what it
/// changed, everyone loses what was removed. A body without
/// `managedFields` keeps the stored ones; an empty list resets them.
/// Without a manager the entries are only carried over.
pub fn record_update(
    resource: &ResourceInfo,
    old: Option<&Value>,
    new: &mut Value,
    manager: Option<&FieldManager>,
) -> Result<(), ApiError> {
    let meta = PatchMeta::global();
    let mut entries = match new.pointer("/metadata/managedFields") {
        None | Some(Value::Null) => stored_entries(old),
        Some(list) => read_entries(list).map_err(|err| {
            ApiError::bad_request(format!("metadata.managedFields is invalid: {err}"))
        })?,
    };
    let Some(manager) = manager else {
        write_entries(new, entries);
        return Ok(());
    };
    let subresource = manager.subresource.as_deref();
    let empty = json!({});
    let before = tracked_view(resource, old.unwrap_or(&empty), subresource);
    let after = tracked_view(resource, new, subresource);
    if old.is_some() && same_value(&before, &after) {
        write_entries(new, entries);
        return Ok(());
    }
    let node = meta.root_of(new);
    let after_set = FieldSet::of_object(&after, meta, node, new);
    let before_set = FieldSet::of_object(&before, meta, node, new);
    let mut changed_paths: Vec<Vec<String>> = after_set
        .paths()
        .into_iter()
        .filter(|p| changed(&before, &after, p))
        .collect();
    changed_paths.extend(FieldSet::added_containers(&after, &before, meta, node, new));
    let mut removed_paths: Vec<Vec<String>> = before_set
        .paths()
        .into_iter()
        .filter(|p| value_at(&after, p).is_none())
        .collect();
    // Maps and lists that are gone, which their owners held themselves.
    removed_paths.extend(FieldSet::added_containers(&before, &after, meta, node, new));
    let changed = set_of(&changed_paths);
    let removed = set_of(&removed_paths);
    let now = Some(now());
    for entry in entries.iter_mut() {
        let previous = entry.fields.clone();
        entry.fields.subtract(&removed);
        if !entry.is(manager, "Update") {
            entry.fields.subtract(&changed);
        }
        if entry.fields != previous && !entry.fields.is_empty() && entry.operation == "Update" {
            entry.time = now.clone();
        }
    }
    if !changed.is_empty() {
        match entries.iter_mut().find(|e| e.is(manager, "Update")) {
            Some(entry) => {
                entry.fields.union_with(&changed);
                entry.time = now.clone();
                entry.api_version = resource.api_version();
            }
            None => entries.push(Entry {
                manager: manager.name.clone(),
                operation: "Update".into(),
                api_version: resource.api_version(),
                time: now,
                subresource: manager.subresource.clone().unwrap_or_default(),
                fields: changed,
            }),
        }
    }
    write_entries(new, entries);
    Ok(())
}

fn now() -> String {
    object::now_rfc3339()
}

/// Merges an applied configuration into the live object (or an empty
/// one), enforcing ownership. Returns the object to store, with its
/// `managedFields` updated.
pub fn apply(
    resource: &ResourceInfo,
    live: Option<&Value>,
    config: &Value,
    manager: &FieldManager,
    force: bool,
) -> Result<Value, ApiError> {
    let meta = PatchMeta::global();
    let Value::Object(config_map) = config else {
        return Err(ApiError::bad_request(
            "the applied configuration must be an object",
        ));
    };
    if config
        .pointer("/metadata/managedFields")
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    for field in ["apiVersion", "kind"] {
        if config_map
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            return Err(ApiError::bad_request(format!(
                "{field} must be set in the applied configuration"
            )));
        }
    }
    let subresource = manager.subresource.as_deref();
    let mut entries = stored_entries(live);
    let empty = json!({});
    let live_value = live.unwrap_or(&empty);
    let node = meta.root_of(config);
    // Items of compound-keyed lists (ports) are identified with their
    // defaults, as live objects carry them.
    let mut defaulted = config.clone();
    fill_key_defaults(&mut defaulted, meta, node);
    let config = &defaulted;

    // What the manager applies, and the object with it merged in.
    let applied = tracked_view(resource, config, subresource);
    let applied_set = FieldSet::of_object(&applied, meta, node, config);
    let mut scoped = config.clone();
    if let Some(map) = scoped.as_object_mut() {
        match subresource {
            Some("status") => map
                .retain(|k, _| matches!(k.as_str(), "status" | "apiVersion" | "kind" | "metadata")),
            _ if resource.status_subresource => {
                map.remove("status");
            }
            _ => {}
        }
    }
    if let Some(meta_map) = scoped.get_mut("metadata").and_then(Value::as_object_mut) {
        // Server-owned metadata is never taken from an apply.
        for field in SERVER_METADATA
            .iter()
            .filter(|f| !matches!(**f, "name" | "namespace"))
        {
            meta_map.remove(*field);
        }
        if subresource == Some("status") {
            meta_map.retain(|k, _| matches!(k.as_str(), "name" | "namespace"));
        }
    }
    let mut merged = merge(live_value, &scoped, meta, node);

    // Fields applied before and not any more go, unless someone else owns
    // them (or something below them).
    let previous = entries
        .iter()
        .find(|e| e.is(manager, "Apply"))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut dropped = previous.clone();
    dropped.subtract(&applied_set);
    let mut others = FieldSet::default();
    for entry in entries.iter().filter(|e| !e.is(manager, "Apply")) {
        others.union_with(&entry.fields);
    }
    let mut dropped_paths = dropped.paths();
    dropped_paths.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for path in &dropped_paths {
        // An item keeps its key fields while it stays; when nobody else
        // owns anything in it, the item itself goes (a shorter path).
        // A map or list this apply still sets something in stays (its own
        // `.` entry may have been dropped: kubectl's migration from
        // client-side apply writes one).
        if !is_key_field(path)
            && !owned_at_or_below(&others, path)
            && !owned_at_or_below(&applied_set, path)
        {
            fieldset::remove_at(&mut merged, path);
        }
    }

    // Conflicts: fields this apply changes that another manager owns.
    let live_view = tracked_view(resource, live_value, subresource);
    let merged_view = tracked_view(resource, &merged, subresource);
    let changed_paths: Vec<Vec<String>> = applied_set
        .paths()
        .into_iter()
        .filter(|p| changed(&live_view, &merged_view, p))
        .collect();
    let changed_set = set_of(&changed_paths);
    // kubectl moving from client-side to server-side apply: fields its
    // last client-side apply set, with the live value unchanged, are not
    // conflicts (upstream's lastAppliedManager).
    let allowed = if manager.name == "kubectl" && !force {
        fields_of_last_applied(live_value, meta, node, config)
    } else {
        Vec::new()
    };
    let mut conflicts: Vec<(String, String)> = Vec::new();
    let mut clashes = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        if entry.manager == manager.name {
            continue;
        }
        let clash = entry.fields.intersection(&changed_set);
        if clash.is_empty() {
            continue;
        }
        for path in clash.paths().iter().filter(|p| !allowed.contains(p)) {
            conflicts.push((entry.describe(), display_path(path)));
        }
        clashes.push((index, clash));
    }
    if !force && !conflicts.is_empty() {
        return Err(conflict_error(&conflicts));
    }
    // Forced (or every clash allowed): the others lose what was taken.
    for (index, clash) in clashes {
        entries[index].fields.subtract(&clash);
    }
    // Removed fields are nobody's any more.
    let removed_paths: Vec<Vec<String>> = FieldSet::of_object(&live_view, meta, node, config)
        .paths()
        .into_iter()
        .filter(|p| value_at(&merged_view, p).is_none())
        .collect();
    let removed = set_of(&removed_paths);
    for entry in entries.iter_mut() {
        entry.fields.subtract(&removed);
    }
    let now = Some(now());
    match entries.iter_mut().find(|e| e.is(manager, "Apply")) {
        // Timestamps move only when ownership does: a repeated apply of
        // the same configuration writes nothing.
        Some(entry) if entry.fields == applied_set => {}
        Some(entry) => {
            entry.fields = applied_set;
            entry.time = now;
            entry.api_version = resource.api_version();
        }
        None => entries.push(Entry {
            manager: manager.name.clone(),
            operation: "Apply".into(),
            api_version: resource.api_version(),
            time: now,
            subresource: manager.subresource.clone().unwrap_or_default(),
            fields: applied_set,
        }),
    }
    write_entries(&mut merged, entries);
    Ok(merged)
}

/// Whether `path` is a key field of the list item it is in
/// (`...k:{"port":53,"protocol":"UDP"}, f:port`).
fn is_key_field(path: &[String]) -> bool {
    let [.., parent, last] = path else {
        return false;
    };
    match (PathElement::parse(parent), PathElement::parse(last)) {
        (Some(PathElement::Key(key)), Some(PathElement::Field(field))) => key.contains_key(&field),
        _ => false,
    }
}

fn owned_at_or_below(set: &FieldSet, path: &[String]) -> bool {
    let mut node = set;
    for element in path {
        match node.children.get(element) {
            Some(child) => node = child,
            None => return false,
        }
    }
    node.has_any()
}

/// 409 as upstream words it: `Apply failed with 1 conflict: conflict with
/// "kubectl" using apps/v1: .spec.replicas`.
/// The paths kubectl's last client-side apply set
/// (`kubectl.kubernetes.io/last-applied-configuration`) whose live values
/// are still what it applied: kubectl's first server-side apply may take
/// them over without `--force-conflicts`.
fn fields_of_last_applied(
    live: &Value,
    meta: &PatchMeta,
    node: Node<'_>,
    typed_as: &Value,
) -> Vec<Vec<String>> {
    let Some(text) = live
        .pointer("/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration")
        .and_then(Value::as_str)
    else {
        return Vec::new();
    };
    let Ok(mut last) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    if last.get("apiVersion") != live.get("apiVersion") && live.get("apiVersion").is_some() {
        return Vec::new();
    }
    fill_key_defaults(&mut last, meta, node);
    FieldSet::of_object(&last, meta, node, typed_as)
        .paths()
        .into_iter()
        .filter(|path| match (value_at(&last, path), value_at(live, path)) {
            (Some(applied), Some(current)) => same_value(applied, current),
            _ => false,
        })
        .collect()
}

/// The 409 of an apply that conflicts: like upstream's, its details carry
/// the causes only (no name or kind).
fn conflict_error(conflicts: &[(String, String)]) -> ApiError {
    let message = if let [(manager, path)] = conflicts {
        format!("Apply failed with 1 conflict: conflict with {manager}: {path}")
    } else {
        let mut managers: Vec<&String> = conflicts.iter().map(|(m, _)| m).collect();
        managers.sort();
        managers.dedup();
        let mut lines = Vec::new();
        for manager in managers {
            lines.push(format!("conflicts with {manager}:"));
            for (_, path) in conflicts.iter().filter(|(m, _)| m == manager) {
                lines.push(format!("- {path}"));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let mut err = ApiError::new(http::StatusCode::CONFLICT, "Conflict", message);
    err.causes = conflicts
        .iter()
        .map(|(manager, path)| FieldCause {
            reason: "FieldManagerConflict",
            field: path.clone(),
            message: format!("conflict with {manager}"),
        })
        .collect();
    err
}

/// Server-side apply's merge: objects merge key by key, lists by their
/// type (keyed lists item by item, sets by value, others replaced), and an
/// explicit `null` removes the field.
pub fn merge(live: &Value, config: &Value, meta: &PatchMeta, node: Node<'_>) -> Value {
    match (live, config) {
        (Value::Object(live), Value::Object(config)) => {
            let mut out = live.clone();
            for (key, value) in config {
                if value.is_null() {
                    out.remove(key);
                    continue;
                }
                let field = node.field(meta, key);
                let merged = match (out.get(key), value) {
                    (Some(current @ Value::Object(_)), Value::Object(_)) => {
                        merge(current, value, meta, field.node)
                    }
                    (Some(Value::Array(current)), Value::Array(items))
                        if field.shape == Shape::List =>
                    {
                        merge_list(current, items, list_kind(&field), meta, field.node)
                    }
                    (None, Value::Object(_)) => {
                        merge(&Value::Object(Map::new()), value, meta, field.node)
                    }
                    _ => value.clone(),
                };
                out.insert(key.clone(), merged);
            }
            Value::Object(out)
        }
        _ => strip_nulls(config),
    }
}

fn strip_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn merge_list(
    live: &[Value],
    config: &[Value],
    kind: ListKind<'_>,
    meta: &PatchMeta,
    node: Node<'_>,
) -> Value {
    let (Some(live_keys), Some(config_keys)) =
        (item_elements(kind, live), item_elements(kind, config))
    else {
        return Value::Array(config.to_vec());
    };
    let mut out: Vec<Value> = live.to_vec();
    for (key, item) in config_keys.iter().zip(config) {
        match live_keys.iter().position(|k| k == key) {
            Some(i) => {
                if let Some(slot) = out.get_mut(i) {
                    *slot = merge(slot, item, meta, node);
                }
            }
            None => out.push(strip_nulls(item)),
        }
    }
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Catalog;

    fn deployments() -> std::sync::Arc<ResourceInfo> {
        Catalog::builtin()
            .get("apps", "v1", "deployments")
            .expect("deployments")
    }

    fn config(replicas: i64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": image}]}}},
        })
    }

    fn manager(name: &str) -> FieldManager {
        FieldManager {
            name: name.into(),
            subresource: None,
        }
    }

    fn dns_service(ports: Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "dns", "namespace": "default"},
            "spec": {"selector": {"app": "dns"}, "ports": ports},
        })
    }

    #[test]
    fn ports_are_keyed_by_number_and_protocol() {
        let services = Catalog::builtin()
            .get("", "v1", "services")
            .expect("services");
        // The protocol left out is TCP, as the stored object will say.
        let udp = json!([{"name": "dns", "port": 53, "protocol": "UDP"}]);
        let first = apply(
            &services,
            None,
            &dns_service(udp),
            &manager("tenant"),
            false,
        )
        .expect("create");
        let both = json!([
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53},
        ]);
        let second = apply(
            &services,
            Some(&first),
            &dns_service(both),
            &manager("tenant"),
            false,
        )
        .expect("a second port with the same number");
        let ports = second["spec"]["ports"].as_array().expect("ports");
        assert_eq!(ports.len(), 2, "{ports:?}");
        assert_eq!(ports[1]["protocol"], "TCP");
        let owned = &second["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:ports"];
        assert!(
            owned[r#"k:{"port":53,"protocol":"UDP"}"#].is_object(),
            "{owned}"
        );
        assert!(
            owned[r#"k:{"port":53,"protocol":"TCP"}"#].is_object(),
            "{owned}"
        );

        // Dropping the UDP port from the configuration removes that item only.
        let tcp = json!([{"name": "dns-tcp", "port": 53, "protocol": "TCP"}]);
        let third = apply(
            &services,
            Some(&second),
            &dns_service(tcp),
            &manager("tenant"),
            false,
        )
        .expect("drop a port");
        assert_eq!(
            third["spec"]["ports"],
            json!([{"name": "dns-tcp", "port": 53, "protocol": "TCP"}])
        );
    }

    #[test]
    fn apply_creates_records_and_conflicts() {
        let resource = deployments();
        let first = apply(
            &resource,
            None,
            &config(2, "nginx:1"),
            &manager("alice"),
            false,
        )
        .expect("create");
        let entries = first["metadata"]["managedFields"]
            .as_array()
            .expect("entries");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0]["manager"], "alice");
        assert_eq!(entries[0]["operation"], "Apply");
        assert_eq!(entries[0]["fieldsType"], "FieldsV1");
        assert_eq!(entries[0]["fieldsV1"]["f:spec"]["f:replicas"], json!({}));

        // Same values from someone else: shared ownership, no conflict.
        let shared = apply(
            &resource,
            Some(&first),
            &config(2, "nginx:1"),
            &manager("bob"),
            false,
        )
        .expect("shared");
        assert_eq!(
            shared["metadata"]["managedFields"].as_array().map(Vec::len),
            Some(2)
        );

        // A different value: conflict naming the field and the manager.
        let err = apply(
            &resource,
            Some(&shared),
            &config(3, "nginx:1"),
            &manager("carol"),
            false,
        )
        .expect_err("conflict");
        assert_eq!(err.code.as_u16(), 409);
        assert_eq!(err.reason, "Conflict");
        assert!(
            err.message.starts_with("Apply failed with 2 conflicts"),
            "{}",
            err.message
        );
        assert!(
            err.message
                .contains("conflicts with \"alice\":\n- .spec.replicas"),
            "{}",
            err.message
        );
        assert!(err
            .causes
            .iter()
            .all(|c| c.reason == "FieldManagerConflict" && c.field == ".spec.replicas"));

        // Forced: carol owns replicas alone now.
        let forced = apply(
            &resource,
            Some(&shared),
            &config(3, "nginx:1"),
            &manager("carol"),
            true,
        )
        .expect("force");
        assert_eq!(forced["spec"]["replicas"], 3);
        for entry in forced["metadata"]["managedFields"]
            .as_array()
            .expect("entries")
        {
            let owns = entry["fieldsV1"]["f:spec"].get("f:replicas").is_some();
            assert_eq!(owns, entry["manager"] == "carol", "{entry}");
        }
    }

    #[test]
    fn apply_removes_fields_no_longer_applied() {
        let resource = deployments();
        let mut with_label = config(2, "nginx:1");
        with_label["metadata"]["labels"]["tier"] = json!("front");
        let first = apply(&resource, None, &with_label, &manager("alice"), false).expect("first");
        assert_eq!(first["metadata"]["labels"]["tier"], "front");
        let second = apply(
            &resource,
            Some(&first),
            &config(2, "nginx:1"),
            &manager("alice"),
            false,
        )
        .expect("second");
        assert!(second["metadata"]["labels"].get("tier").is_none());
        // An owned-by-someone-else field survives.
        let mut bob = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"tier": "front"}}});
        let shared = apply(&resource, Some(&first), &bob, &manager("bob"), false).expect("bob");
        let third = apply(
            &resource,
            Some(&shared),
            &config(2, "nginx:1"),
            &manager("alice"),
            false,
        )
        .expect("third");
        assert_eq!(third["metadata"]["labels"]["tier"], "front");
        bob["metadata"]["managedFields"] = json!([]);
        assert_eq!(
            apply(&resource, Some(&third), &bob, &manager("bob"), false)
                .expect_err("managedFields")
                .code
                .as_u16(),
            400
        );
    }

    #[test]
    fn updates_take_ownership_so_applies_conflict() {
        let resource = deployments();
        let created = apply(
            &resource,
            None,
            &config(2, "nginx:1"),
            &manager("alice"),
            false,
        )
        .expect("create");
        let mut edited = created.clone();
        edited["spec"]["replicas"] = json!(5);
        edited["metadata"]
            .as_object_mut()
            .expect("meta")
            .remove("managedFields");
        record_update(
            &resource,
            Some(&created),
            &mut edited,
            Some(&manager("kubectl-edit")),
        )
        .expect("record");
        let entries = edited["metadata"]["managedFields"]
            .as_array()
            .expect("entries")
            .clone();
        let editor = entries
            .iter()
            .find(|e| e["manager"] == "kubectl-edit")
            .expect("editor entry");
        assert_eq!(editor["operation"], "Update");
        assert_eq!(editor["apiVersion"], "apps/v1");
        assert_eq!(editor["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
        let alice = entries
            .iter()
            .find(|e| e["manager"] == "alice")
            .expect("alice");
        assert!(alice["fieldsV1"]["f:spec"].get("f:replicas").is_none());
        let err = apply(
            &resource,
            Some(&edited),
            &config(2, "nginx:1"),
            &manager("alice"),
            false,
        )
        .expect_err("conflict");
        assert!(
            err.message
                .contains("conflict with \"kubectl-edit\" using apps/v1: .spec.replicas"),
            "{}",
            err.message
        );
        // Without a manager, entries are carried over untouched.
        let mut again = edited.clone();
        again["metadata"]
            .as_object_mut()
            .expect("meta")
            .remove("managedFields");
        record_update(&resource, Some(&edited), &mut again, None).expect("carry");
        assert_eq!(
            again["metadata"]["managedFields"],
            edited["metadata"]["managedFields"]
        );
        // An empty list resets them.
        let mut reset = edited.clone();
        reset["metadata"]["managedFields"] = json!([]);
        record_update(&resource, Some(&edited), &mut reset, None).expect("reset");
        assert!(reset["metadata"].get("managedFields").is_none());
        let mut bad = edited.clone();
        bad["metadata"]["managedFields"] = json!([{"operation": "Bogus"}]);
        assert_eq!(
            record_update(&resource, Some(&edited), &mut bad, None)
                .expect_err("bad")
                .code
                .as_u16(),
            400
        );
    }

    #[test]
    fn apply_merges_keyed_lists() {
        let resource = deployments();
        let meta = PatchMeta::global();
        let live = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "a:1", "imagePullPolicy": "Always"}, {"name": "b", "image": "b:1"}]}}}});
        let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "a:2"}, {"name": "c", "image": "c:1"}]}}}});
        let merged = merge(&live, &cfg, meta, meta.root_of(&cfg));
        assert_eq!(
            merged["spec"]["template"]["spec"]["containers"],
            json!([{"name": "a", "image": "a:2", "imagePullPolicy": "Always"}, {"name": "b", "image": "b:1"}, {"name": "c", "image": "c:1"}])
        );
        assert!(FieldManager::validate(&"x".repeat(129)).is_err());
        assert!(FieldManager::validate("bad\u{7}").is_err());
        assert_eq!(
            FieldManager::from_user_agent(Some("kubectl/v1.32.4 (linux/amd64)")),
            "kubectl"
        );
        assert_eq!(FieldManager::from_user_agent(None), "unknown");
        let _ = resource;
    }
}
