//! Server-side printing: answers list and get requests that ask for
//! `application/json;as=Table;v=v1;g=meta.k8s.io`, which is how `kubectl get`
//! fetches what it shows. The columns and cell texts follow kube-apiserver's
//! printers, so `kubectl get` output reads exactly as on a real cluster.
//!
//! Objects are read tolerantly: a missing or mistyped field reads as the
//! zero value kube would have printed, never as an error. Fields that
//! kube-apiserver always defaults on write (a Service's `type`, a port's
//! `protocol`, a Deployment's `replicas`, ...) print their default when
//! absent, because a real cluster never shows them unset.

pub(crate) mod cluster;
pub(crate) mod columns;
pub(crate) mod format;
pub(crate) mod network;
pub(crate) mod platform;
pub(crate) mod pod;
pub(crate) mod volumes;
pub(crate) mod workloads;

use jiff::Timestamp;
use serde_json::{json, Map, Value};

use crate::resources::ResourceInfo;
use columns::Column;

/// How much of each object a row carries (the `includeObject` query parameter: None, Metadata (default), Object).
///
/// kubectl asks for `Metadata` by default (it needs names and namespaces
/// for follow-up requests) and `Object` when it must print from the full
/// object itself, e.g. with `--show-labels` on older clients or `-o` custom
/// formats that still go through the table path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// Rows carry no object.
    None,
    /// Rows carry a `PartialObjectMetadata` (the object's metadata only).
    #[default]
    Metadata,
    /// Rows carry the whole object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter. Absent or empty means
    /// `Metadata`; anything but the three exact names is rejected with the
    /// message kube-apiserver returns as a 400 Bad Request.
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.unwrap_or("") {
            "" | "Metadata" => Ok(Self::Metadata),
            "None" => Ok(Self::None),
            "Object" => Ok(Self::Object),
            other => Err(format!("unrecognized includeObject value: {other:?}")),
        }
    }
}

/// Builds a meta.k8s.io/v1 Table for `objects` of `resource`, with `now` for AGE columns.
/// `list_metadata` becomes the Table's `metadata` (resourceVersion, continue, remainingItemCount).
///
/// Every row carries all cells, including the `-o wide` ones (priority 1):
/// kube-apiserver always renders wide and kubectl hides what it does not
/// show. Kinds without a printer get kube's default table, NAME and AGE.
/// `now` is a parameter so that AGE is computed once per response and
/// tests are deterministic.
pub fn to_table(
    resource: &ResourceInfo,
    objects: &[Value],
    include: IncludeObject,
    list_metadata: Value,
    now: Timestamp,
) -> Value {
    if let Some(custom) = resource
        .custom
        .as_ref()
        .filter(|c| !c.printer_columns.is_empty())
    {
        return custom_table(resource, custom, objects, include, list_metadata, now);
    }
    let printer = resource.strategy.printer().unwrap_or(Printer::DEFAULT);
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let row = (printer.print)(object, now);
            let mut out = Map::new();
            out.insert("cells".to_owned(), Value::Array(row.cells));
            if !row.conditions.is_empty() {
                out.insert("conditions".to_owned(), Value::Array(row.conditions));
            }
            if let Some(embedded) = row_object(resource, object, include) {
                out.insert("object".to_owned(), embedded);
            }
            Value::Object(out)
        })
        .collect();
    let metadata = if list_metadata.is_object() {
        list_metadata
    } else {
        json!({})
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": printer.columns.iter().map(|c| c.to_json()).collect::<Vec<_>>(),
        "rows": rows,
    })
}

/// The table of a custom resource with `additionalPrinterColumns`: NAME,
/// then each declared column, its cell read at the column's JSONPath
/// (absent values are `null`, which kubectl prints as `<none>`; `date`
/// cells are shown as ages, as kubectl shows them for CRDs).
fn custom_table(
    resource: &ResourceInfo,
    custom: &crate::resources::custom::CustomResource,
    objects: &[Value],
    include: IncludeObject,
    list_metadata: Value,
    now: Timestamp,
) -> Value {
    let mut columns = vec![columns::name_column()];
    for column in &custom.printer_columns {
        columns.push(json!({
            "name": column.name,
            "type": column.kind,
            "format": column.format,
            "description": column.description,
            "priority": column.priority,
        }));
    }
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let mut cells = vec![Value::String(format::name(object).to_owned())];
            for column in &custom.printer_columns {
                let found = crate::resources::custom::schema::json_path(object, &column.json_path);
                cells.push(match (column.kind.as_str(), found) {
                    (_, None | Some(Value::Null)) => Value::Null,
                    ("date", Some(value)) => {
                        Value::String(format::since(format::parse_time(Some(value)), now))
                    }
                    ("integer", Some(value)) => format::as_int(value)
                        .map(Value::from)
                        .unwrap_or(Value::Null),
                    ("number", Some(value)) if value.is_number() => value.clone(),
                    ("boolean", Some(value)) if value.is_boolean() => value.clone(),
                    (_, Some(Value::String(text))) => Value::String(text.clone()),
                    (_, Some(other)) => Value::String(other.to_string()),
                });
            }
            let mut row = Map::new();
            row.insert("cells".to_owned(), Value::Array(cells));
            if let Some(embedded) = row_object(resource, object, include) {
                row.insert("object".to_owned(), embedded);
            }
            Value::Object(row)
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": if list_metadata.is_object() { list_metadata } else { json!({}) },
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// The cells (and row conditions) one printer makes of one object.
pub(crate) struct Row {
    cells: Vec<Value>,
    /// `TableRowCondition`s; kube sets `Completed` on finished pods.
    conditions: Vec<Value>,
}

impl From<Vec<Value>> for Row {
    fn from(cells: Vec<Value>) -> Self {
        Self {
            cells,
            conditions: Vec::new(),
        }
    }
}

/// Turns one object into its row; `now` anchors the ages.
pub(crate) type Print = fn(&Value, Timestamp) -> Row;

/// How `kubectl get` shows one kind: its columns, and the function that
/// makes an object's row. Each kind's strategy names its printer
/// ([`crate::resources::Strategy::printer`]).
#[derive(Clone, Copy)]
pub struct Printer {
    columns: &'static [Column],
    print: Print,
}

impl std::fmt::Debug for Printer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.columns.iter().map(|c| c.name).collect();
        f.debug_struct("Printer").field("columns", &names).finish()
    }
}

impl Printer {
    /// A printer of `columns`, filled by `print`.
    pub(crate) const fn new(columns: &'static [Column], print: Print) -> Self {
        Self { columns, print }
    }

    /// kube's default table (NAME, AGE), for kinds without a printer of
    /// their own and CRDs without printer columns.
    pub const DEFAULT: Printer = Printer::new(columns::DEFAULT, default_row);
}

fn default_row(object: &Value, now: Timestamp) -> Row {
    vec![format::name(object).into(), format::age(object, now).into()].into()
}

/// Upstream prints the internal form of an object, whose metadata lacks
/// what apps/v1 only keeps in annotations: a daemon set's template
/// generation is a spec field there.
fn internal_metadata(resource: &ResourceInfo, metadata: &mut Value) {
    if resource.group != "apps" || resource.kind != "DaemonSet" {
        return;
    }
    let Some(meta) = metadata.as_object_mut() else {
        return;
    };
    if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
        annotations.remove("deprecated.daemonset.template.generation");
        if annotations.is_empty() {
            meta.remove("annotations");
        }
    }
}

/// What a row embeds under `object` for the requested `includeObject`.
fn row_object(resource: &ResourceInfo, object: &Value, include: IncludeObject) -> Option<Value> {
    match include {
        IncludeObject::None => None,
        IncludeObject::Metadata => {
            let mut metadata = format::get(object, &["metadata"])
                .filter(|m| m.is_object())
                .cloned()
                .unwrap_or_else(|| json!({}));
            internal_metadata(resource, &mut metadata);
            Some(json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": metadata,
            }))
        }
        IncludeObject::Object => {
            let mut full = object.clone();
            // Stored objects normally carry their type; fill it in if not,
            // as kube's conversion to the request version would.
            if let Some(map) = full.as_object_mut() {
                for (key, value) in [
                    ("apiVersion", resource.api_version()),
                    ("kind", resource.kind.clone()),
                ] {
                    if !map.get(key).is_some_and(Value::is_string) {
                        map.insert(key.to_owned(), Value::String(value));
                    }
                }
            }
            Some(full)
        }
    }
}

#[cfg(test)]
mod test_support {
    //! Shared fixtures for the printer tests.

    use jiff::Timestamp;
    use serde_json::Value;

    use super::IncludeObject;
    use crate::resources::ResourceInfo;

    /// The fixed "now" every test renders against.
    pub(super) fn now() -> Timestamp {
        "2024-06-01T12:00:00Z".parse().expect("valid timestamp")
    }

    /// The catalog entry of the built-in `group`/`kind`, or a resource
    /// without a printer of its own for any other pair.
    pub(super) fn resource(group: &str, kind: &str) -> ResourceInfo {
        crate::resources::kinds::BUILTIN
            .iter()
            .find(|k| k.group == group && k.kind == kind)
            .map(|k| k.resource())
            .unwrap_or_else(|| ResourceInfo {
                group: group.to_owned(),
                version: "v1".to_owned(),
                plural: format!("{}s", kind.to_lowercase()),
                singular: kind.to_lowercase(),
                kind: kind.to_owned(),
                namespaced: true,
                ..ResourceInfo::default()
            })
    }

    /// The single row's cells for one object.
    pub(super) fn cells(group: &str, kind: &str, object: Value) -> Vec<Value> {
        let table = super::to_table(
            &resource(group, kind),
            &[object],
            IncludeObject::None,
            Value::Null,
            now(),
        );
        table["rows"][0]["cells"]
            .as_array()
            .cloned()
            .expect("one row with cells")
    }

    /// The header names of a kind's table, upper-cased as kubectl shows them.
    pub(super) fn headers(group: &str, kind: &str) -> Vec<String> {
        let table = super::to_table(
            &resource(group, kind),
            &[],
            IncludeObject::None,
            Value::Null,
            now(),
        );
        table["columnDefinitions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["name"].as_str().unwrap_or("").to_uppercase())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{cells, headers, now, resource};
    use super::*;
    use proptest::prelude::*;

    const KINDS: &[(&str, &str)] = &[
        ("", "Pod"),
        ("", "Namespace"),
        ("", "Node"),
        ("", "ConfigMap"),
        ("", "Secret"),
        ("", "ServiceAccount"),
        ("", "Event"),
        ("events.k8s.io", "Event"),
        ("coordination.k8s.io", "Lease"),
        ("", "Service"),
        ("", "Endpoints"),
        ("discovery.k8s.io", "EndpointSlice"),
        ("networking.k8s.io", "Ingress"),
        ("networking.k8s.io", "NetworkPolicy"),
        ("", "PersistentVolume"),
        ("", "PersistentVolumeClaim"),
        ("storage.k8s.io", "StorageClass"),
        ("apps", "Deployment"),
        ("apps", "ReplicaSet"),
        ("apps", "StatefulSet"),
        ("apps", "DaemonSet"),
        ("apps", "ControllerRevision"),
        ("batch", "Job"),
        ("batch", "CronJob"),
        ("example.com", "Widget"),
    ];

    fn pod() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "uid": "u1",
                         "creationTimestamp": "2024-06-01T11:00:00Z", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            "status": {"phase": "Running"}
        })
    }

    #[test]
    fn table_envelope_has_kube_shape() {
        let meta = json!({"resourceVersion": "42", "continue": "abc", "remainingItemCount": 3});
        let table = to_table(
            &resource("", "Pod"),
            &[pod()],
            IncludeObject::None,
            meta.clone(),
            now(),
        );
        assert_eq!(table["kind"], "Table");
        assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(table["metadata"], meta);
        let first = &table["columnDefinitions"][0];
        assert_eq!(first["name"], "Name");
        assert_eq!(first["type"], "string");
        assert_eq!(first["format"], "name");
        assert_eq!(first["priority"], 0);
        assert!(first["description"]
            .as_str()
            .is_some_and(|d| d.starts_with("Name must be unique")));
        let row = &table["rows"][0];
        assert!(row.get("object").is_none());
        assert!(row.get("conditions").is_none());
        // Every row has one cell per column, wide ones included.
        assert_eq!(row["cells"].as_array().map(Vec::len), Some(9));
    }

    #[test]
    fn empty_lists_and_odd_metadata_still_make_a_table() {
        let table = to_table(
            &resource("", "Pod"),
            &[],
            IncludeObject::Metadata,
            json!("junk"),
            now(),
        );
        assert_eq!(table["rows"], json!([]));
        assert_eq!(table["metadata"], json!({}));
    }

    #[test]
    fn every_kind_has_one_cell_per_column_even_for_empty_objects() {
        for (group, kind) in KINDS {
            let table = to_table(
                &resource(group, kind),
                &[json!({})],
                IncludeObject::None,
                json!({}),
                now(),
            );
            let columns = table["columnDefinitions"].as_array().map_or(0, Vec::len);
            let cells = table["rows"][0]["cells"].as_array().map_or(0, Vec::len);
            assert_eq!(columns, cells, "{group}/{kind}");
            let names = table["columnDefinitions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["format"] == "name")
                .count();
            assert_eq!(names, 1, "{group}/{kind} has one name column");
        }
    }

    #[test]
    fn include_object_parses_like_kube() {
        assert_eq!(IncludeObject::parse(None), Ok(IncludeObject::Metadata));
        assert_eq!(IncludeObject::parse(Some("")), Ok(IncludeObject::Metadata));
        assert_eq!(
            IncludeObject::parse(Some("Metadata")),
            Ok(IncludeObject::Metadata)
        );
        assert_eq!(IncludeObject::parse(Some("None")), Ok(IncludeObject::None));
        assert_eq!(
            IncludeObject::parse(Some("Object")),
            Ok(IncludeObject::Object)
        );
        assert_eq!(
            IncludeObject::parse(Some("object")),
            Err("unrecognized includeObject value: \"object\"".to_owned())
        );
    }

    #[test]
    fn include_object_modes_embed_metadata_object_or_nothing() {
        let res = resource("", "Pod");
        let meta = to_table(&res, &[pod()], IncludeObject::Metadata, json!({}), now());
        assert_eq!(
            meta["rows"][0]["object"],
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                   "metadata": pod()["metadata"].clone()})
        );
        let full = to_table(&res, &[pod()], IncludeObject::Object, json!({}), now());
        assert_eq!(full["rows"][0]["object"], pod());
        let none = to_table(&res, &[pod()], IncludeObject::None, json!({}), now());
        assert!(none["rows"][0].get("object").is_none());

        // Objects missing their type get it from the catalog; metadata
        // that is not an object becomes empty.
        let bare = json!({"metadata": 7, "spec": {}});
        let full = to_table(
            &res,
            std::slice::from_ref(&bare),
            IncludeObject::Object,
            json!({}),
            now(),
        );
        assert_eq!(full["rows"][0]["object"]["kind"], "Pod");
        assert_eq!(full["rows"][0]["object"]["apiVersion"], "v1");
        let meta = to_table(&res, &[bare], IncludeObject::Metadata, json!({}), now());
        assert_eq!(meta["rows"][0]["object"]["metadata"], json!({}));
    }

    #[test]
    fn unknown_kinds_get_name_and_age() {
        assert_eq!(headers("example.com", "Widget"), ["NAME", "AGE"]);
        // A CRD reusing a built-in kind name in its own group is not a pod.
        assert_eq!(headers("example.com", "Pod"), ["NAME", "AGE"]);
        let table = to_table(
            &resource("example.com", "Widget"),
            &[],
            IncludeObject::None,
            json!({}),
            now(),
        );
        assert_eq!(table["columnDefinitions"][1]["type"], "date");
        let widget =
            json!({"metadata": {"name": "w1", "creationTimestamp": "2024-05-30T10:00:00Z"}});
        assert_eq!(
            cells("example.com", "Widget", widget),
            [json!("w1"), json!("2d2h")]
        );
        assert_eq!(
            cells("example.com", "Widget", json!({})),
            [json!(""), json!("<unknown>")]
        );
    }

    /// Arbitrary JSON, nested a few levels deep.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-zA-Z0-9:./ -]{0,12}".prop_map(Value::String),
            Just(json!("2024-01-01T00:00:00Z")),
            Just(json!("9999-12-31T23:59:59Z")),
            Just(json!("-009999-01-01T00:00:00Z")),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(field_name(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Field names the printers actually read, so garbage lands where it hurts.
    fn field_name() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "metadata",
            "name",
            "creationTimestamp",
            "deletionTimestamp",
            "labels",
            "annotations",
            "spec",
            "status",
            "containers",
            "initContainers",
            "containerStatuses",
            "initContainerStatuses",
            "state",
            "lastState",
            "waiting",
            "running",
            "terminated",
            "reason",
            "exitCode",
            "signal",
            "finishedAt",
            "restartCount",
            "ready",
            "started",
            "conditions",
            "type",
            "phase",
            "ports",
            "port",
            "nodePort",
            "protocol",
            "clusterIP",
            "clusterIPs",
            "externalIPs",
            "loadBalancer",
            "ingress",
            "ip",
            "hostname",
            "selector",
            "matchLabels",
            "matchExpressions",
            "key",
            "operator",
            "values",
            "replicas",
            "readyReplicas",
            "template",
            "subsets",
            "addresses",
            "endpoints",
            "rules",
            "host",
            "tls",
            "series",
            "count",
            "lastObservedTime",
            "eventTime",
            "involvedObject",
            "regarding",
            "source",
            "capacity",
            "storage",
            "accessModes",
            "claimRef",
            "data",
            "jobTemplate",
            "startTime",
            "completionTime",
            "completions",
            "parallelism",
            "restartPolicy",
            "readinessGates",
            "conditionType",
            "podIPs",
            "nodeInfo",
        ])
        .prop_map(str::to_owned)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn garbage_objects_never_panic(objects in prop::collection::vec(any_json(), 0..4),
                                       meta in any_json()) {
            for (group, kind) in KINDS {
                for include in [IncludeObject::None, IncludeObject::Metadata, IncludeObject::Object] {
                    let table = to_table(&resource(group, kind), &objects, include, meta.clone(), now());
                    let columns = table["columnDefinitions"].as_array().map_or(0, Vec::len);
                    for row in table["rows"].as_array().into_iter().flatten() {
                        prop_assert_eq!(row["cells"].as_array().map_or(0, Vec::len), columns);
                    }
                }
            }
        }

        #[test]
        fn garbage_inside_real_objects_never_panics(garbage in any_json(),
                                                    slot in 0usize..8) {
            let mut object = pod();
            let target = match slot {
                0 => &mut object["status"],
                1 => &mut object["spec"],
                2 => &mut object["metadata"],
                3 => &mut object["spec"]["containers"],
                4 => &mut object["status"]["phase"],
                5 => &mut object["metadata"]["creationTimestamp"],
                6 => &mut object["metadata"]["labels"],
                _ => &mut object,
            };
            *target = garbage;
            for (group, kind) in KINDS {
                let _ = to_table(&resource(group, kind), std::slice::from_ref(&object),
                                 IncludeObject::Object, json!({}), now());
            }
        }
    }
}
