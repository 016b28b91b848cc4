//! CustomResourceDefinitions (`apiextensions.k8s.io/v1`): what a CRD must
//! look like, the status the server gives it (`NamesAccepted`,
//! `Established`, `Terminating`), and the [`ResourceInfo`]s it turns into
//! when the catalog starts serving it.
//!
//! Every `served: true` version is served from the same storage (objects
//! live at `/registry/<group>/<plural>/...` whatever the version). With
//! conversion strategy `None` an object read at another version only gets
//! that `apiVersion`; with `Webhook` it goes through the CRD's conversion
//! webhook (`crate::registry::conversion`). Versions are assumed to share one schema; each version's
//! own schema is used to validate writes made at that version.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::error::FieldCause;
use crate::object;
use crate::resources::{Catalog, ResourceInfo};
use vcluster_core::validation;

pub mod schema;

/// The finalizer that holds a deleted CRD until its objects are gone.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// The group of CustomResourceDefinitions.
pub const GROUP: &str = "apiextensions.k8s.io";

/// The plural of CustomResourceDefinitions.
pub const PLURAL: &str = "customresourcedefinitions";

/// A column of `additionalPrinterColumns`.
#[derive(Clone, Debug, PartialEq)]
pub struct PrinterColumn {
    /// Header (`Replicas`).
    pub name: String,
    /// `integer`, `number`, `string`, `boolean` or `date`.
    pub kind: String,
    /// OpenAPI format hint (`name` for the name column).
    pub format: String,
    /// Help text.
    pub description: String,
    /// 0 for default columns, more for `-o wide`.
    pub priority: i64,
    /// Where the value is (`.spec.replicas`).
    pub json_path: String,
}

/// Where a custom resource's `scale` subresource reads and writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalePaths {
    /// `.spec.replicas`.
    pub spec_replicas: String,
    /// `.status.replicas`.
    pub status_replicas: String,
    /// `.status.selector`, a label selector in string form, if declared.
    pub label_selector: Option<String>,
}

/// What a CRD says about one served version of its resource, kept on the
/// [`ResourceInfo`] so every request handler can reach it.
#[derive(Debug)]
pub struct CustomResource {
    /// The CRD's name (`crontabs.stable.example.com`).
    pub crd_name: String,
    /// Whether this version is the storage version.
    pub storage: bool,
    /// The storage version (`v1`).
    pub storage_version: String,
    /// `openAPIV3Schema` of this version.
    pub schema_json: Value,
    /// Its compiled `pattern`s.
    patterns: schema::Patterns,
    /// `additionalPrinterColumns`; empty for the default NAME/AGE table.
    pub printer_columns: Vec<PrinterColumn>,
    /// The `scale` subresource, when declared.
    pub scale: Option<ScalePaths>,
    /// The CRD is being deleted: no new objects.
    pub terminating: bool,
    /// `spec.conversion` when its strategy is `Webhook`: objects read or
    /// written at another version than the storage one go through the
    /// webhook (`crate::registry::conversion`).
    pub conversion_webhook: Option<Arc<Value>>,
}

impl CustomResource {
    /// Drops fields the schema does not know and fills its defaults, as
    /// apiextensions-apiserver does on every write.
    pub fn prepare(&self, object: &mut Value) {
        schema::prune(&self.schema_json, object);
        schema::apply_defaults(&self.schema_json, object);
        // Defaults may bring fields the schema prunes (upstream prunes
        // again after defaulting).
        schema::prune(&self.schema_json, object);
    }

    /// The schema violations of an object (after [`Self::prepare`]).
    pub fn validate(&self, object: &Value) -> Vec<FieldCause> {
        schema::validate_object(&self.schema_json, object, &self.patterns)
    }

    /// The fields pruning would drop, as dotted paths (for
    /// `fieldValidation`).
    pub fn unknown_fields(&self, object: &Value) -> Vec<String> {
        let mut copy = object.clone();
        schema::prune(&self.schema_json, &mut copy)
    }
}

/// The CRD's `spec.names`, with the defaults filled.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Names {
    plural: String,
    singular: String,
    kind: String,
    list_kind: String,
    short_names: Vec<String>,
    categories: Vec<String>,
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn names_of(crd: &Value) -> Names {
    let names = crd.pointer("/spec/names").cloned().unwrap_or(Value::Null);
    let text = |field: &str| {
        names
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let kind = text("kind");
    let singular = match text("singular") {
        s if s.is_empty() => kind.to_lowercase(),
        s => s,
    };
    let list_kind = match text("listKind") {
        s if s.is_empty() => format!("{kind}List"),
        s => s,
    };
    Names {
        plural: text("plural"),
        singular,
        kind,
        list_kind,
        short_names: strings(names.get("shortNames")),
        categories: strings(names.get("categories")),
    }
}

/// The group and plural a CRD's name stands for (`crontabs.example.com`).
pub fn split_name(name: &str) -> Option<(&str, &str)> {
    let (plural, group) = name.split_once('.')?;
    Some((group, plural))
}

/// Fills the defaults of a CRD: names, conversion strategy, column
/// priorities.
pub fn apply_defaults(crd: &mut Value) {
    let names = names_of(crd);
    if let Some(spec_names) = crd
        .pointer_mut("/spec/names")
        .and_then(Value::as_object_mut)
    {
        if !names.kind.is_empty() {
            spec_names
                .entry("singular")
                .or_insert_with(|| json!(names.singular));
            spec_names
                .entry("listKind")
                .or_insert_with(|| json!(names.list_kind));
        }
    }
    if let Some(spec) = crd.get_mut("spec").and_then(Value::as_object_mut) {
        spec.entry("conversion")
            .or_insert_with(|| json!({"strategy": "None"}));
    }
    if let Some(versions) = crd
        .pointer_mut("/spec/versions")
        .and_then(Value::as_array_mut)
    {
        for version in versions {
            if let Some(columns) = version
                .get_mut("additionalPrinterColumns")
                .and_then(Value::as_array_mut)
            {
                for column in columns.iter_mut().filter_map(Value::as_object_mut) {
                    column.entry("priority").or_insert(json!(0));
                }
            }
        }
    }
}

/// Validates a CRD the way apiextensions-apiserver does, for the parts
/// this server relies on: name, group, names, scope, versions (exactly one
/// storage version), structural schemas, subresources and printer columns.
pub fn validate(crd: &Value, old: Option<&Value>) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let group = object::path_str(crd, "spec.group");
    let names = names_of(crd);
    let name = object::name(crd);
    if group.is_empty() {
        causes.push(FieldCause::required("spec.group"));
    } else if let Some(why) = first(validation::dns1123_subdomain_errors(group)) {
        causes.push(FieldCause::invalid("spec.group", group, why));
    } else if !group.contains('.') {
        causes.push(FieldCause::invalid(
            "spec.group",
            group,
            "should be a domain with at least one dot",
        ));
    }
    if names.plural.is_empty() {
        causes.push(FieldCause::required("spec.names.plural"));
    } else if let Some(why) = first(validation::dns1035_label_errors(&names.plural)) {
        causes.push(FieldCause::invalid("spec.names.plural", &names.plural, why));
    }
    if let Some(why) = first(validation::dns1035_label_errors(&names.singular))
        .filter(|_| !names.singular.is_empty())
    {
        causes.push(FieldCause::invalid(
            "spec.names.singular",
            &names.singular,
            why,
        ));
    }
    for (index, short) in names.short_names.iter().enumerate() {
        if let Some(why) = first(validation::dns1035_label_errors(short)) {
            causes.push(FieldCause::invalid(
                format!("spec.names.shortNames[{index}]"),
                short,
                why,
            ));
        }
    }
    if names.kind.is_empty() {
        causes.push(FieldCause::required("spec.names.kind"));
    }
    if !names.plural.is_empty() && !group.is_empty() && name != format!("{}.{group}", names.plural)
    {
        causes.push(FieldCause::invalid(
            "metadata.name",
            name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    let scope = object::path_str(crd, "spec.scope");
    if !matches!(scope, "Namespaced" | "Cluster") {
        causes.push(FieldCause::not_supported(
            "spec.scope",
            scope,
            &["Cluster", "Namespaced"],
        ));
    }
    if let Some(old) = old {
        for field in ["spec.scope", "spec.group"] {
            if object::path_str(old, field) != object::path_str(crd, field) {
                causes.push(FieldCause::immutable(field));
            }
        }
    }
    validate_versions(crd, &mut causes);
    causes
}

fn validate_versions(crd: &Value, causes: &mut Vec<FieldCause>) {
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        causes.push(FieldCause {
            reason: "FieldValueInvalid",
            field: "spec.versions".into(),
            message: "Invalid value: []: must have exactly one version marked as storage version"
                .into(),
        });
        return;
    }
    let storage = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count();
    if storage != 1 {
        causes.push(FieldCause {
            reason: "FieldValueInvalid",
            field: "spec.versions".into(),
            message: format!(
                "Invalid value: {storage}: must have exactly one version marked as storage version"
            ),
        });
    }
    if !versions
        .iter()
        .any(|v| v.get("served").and_then(Value::as_bool) == Some(true))
    {
        causes.push(FieldCause {
            reason: "FieldValueInvalid",
            field: "spec.versions".into(),
            message: "Invalid value: must have at least one version marked as served".into(),
        });
    }
    let mut seen = Vec::new();
    for (index, version) in versions.iter().enumerate() {
        let at = format!("spec.versions[{index}]");
        let name = version.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            causes.push(FieldCause::required(format!("{at}.name")));
        } else if let Some(why) = first(validation::dns1035_label_errors(name)) {
            causes.push(FieldCause::invalid(format!("{at}.name"), name, why));
        } else if seen.contains(&name) {
            causes.push(FieldCause {
                reason: "FieldValueDuplicate",
                field: format!("{at}.name"),
                message: format!("Duplicate value: {name:?}"),
            });
        }
        seen.push(name);
        match version.pointer("/schema/openAPIV3Schema") {
            Some(schema_json) if schema_json.is_object() => causes.extend(
                schema::check_structural(schema_json, &format!("{at}.schema.openAPIV3Schema")),
            ),
            _ => causes.push(FieldCause {
                reason: "FieldValueRequired",
                field: format!("{at}.schema.openAPIV3Schema"),
                message: "Required value: schemas are required".into(),
            }),
        }
        if let Some(scale) = version.pointer("/subresources/scale") {
            for (field, prefix) in [
                ("specReplicasPath", ".spec."),
                ("statusReplicasPath", ".status."),
            ] {
                let path = scale.get(field).and_then(Value::as_str).unwrap_or("");
                if !path.starts_with(prefix) || !schema::is_simple_json_path(path) {
                    causes.push(FieldCause::invalid(
                        format!("{at}.subresources.scale.{field}"),
                        path,
                        format!(
                            "should be a json path under {}",
                            prefix.trim_end_matches('.')
                        ),
                    ));
                }
            }
            if let Some(path) = scale.get("labelSelectorPath").and_then(Value::as_str) {
                if !schema::is_simple_json_path(path) {
                    causes.push(FieldCause::invalid(
                        format!("{at}.subresources.scale.labelSelectorPath"),
                        path,
                        "should be a json path under .spec or .status",
                    ));
                }
            }
        }
        let columns = version
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (column_index, column) in columns.iter().enumerate() {
            let column_at = format!("{at}.additionalPrinterColumns[{column_index}]");
            let kind = column.get("type").and_then(Value::as_str).unwrap_or("");
            const COLUMN_TYPES: &[&str] = &["integer", "number", "string", "boolean", "date"];
            if !COLUMN_TYPES.contains(&kind) {
                causes.push(FieldCause::not_supported(
                    format!("{column_at}.type"),
                    kind,
                    COLUMN_TYPES,
                ));
            }
            let path = column.get("jsonPath").and_then(Value::as_str).unwrap_or("");
            if !schema::is_simple_json_path(path) {
                causes.push(FieldCause::invalid(
                    format!("{column_at}.jsonPath"),
                    path,
                    "must be a simple json path",
                ));
            }
        }
    }
}

fn condition(kind: &str, status: bool, reason: &str, message: &str, previous: &Value) -> Value {
    let status = if status { "True" } else { "False" };
    // Keep the transition time when the status did not change.
    let old = previous
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| {
            c.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
        });
    let since = match old {
        Some(old) if old.get("status").and_then(Value::as_str) == Some(status) => old
            .get("lastTransitionTime")
            .cloned()
            .unwrap_or_else(|| json!(object::now_rfc3339())),
        _ => json!(object::now_rfc3339()),
    };
    json!({"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": since})
}

/// Why the CRD's names clash with what the catalog already serves in its
/// group (another resource's kind, plural, singular or short names), if
/// they do.
fn name_conflict(crd: &Value, catalog: &Catalog) -> Option<(&'static str, String)> {
    let group = object::path_str(crd, "spec.group");
    let names = names_of(crd);
    let own = |r: &ResourceInfo| {
        r.custom
            .as_ref()
            .is_some_and(|c| c.crd_name == object::name(crd))
    };
    if catalog
        .iter()
        .any(|r| r.group == group && r.plural == names.plural && !own(r))
    {
        return Some((
            "PluralConflict",
            format!("{:?} is already in use", names.plural),
        ));
    }
    for other in catalog
        .iter()
        .filter(|r| r.group == group && r.plural != names.plural)
    {
        if other.kind == names.kind {
            return Some((
                "KindConflict",
                format!("{:?} is already in use", names.kind),
            ));
        }
        if other.singular == names.plural || other.singular == names.singular {
            return Some((
                "SingularConflict",
                format!("{:?} is already in use", names.singular),
            ));
        }
        if let Some(short) = names
            .short_names
            .iter()
            .find(|s| other.short_names.contains(s))
        {
            return Some(("ShortNamesConflict", format!("{short:?} is already in use")));
        }
    }
    None
}

/// The status the server keeps on a CRD: accepted names, conditions and
/// stored versions. `previous` is the stored CRD (for transition times and
/// stored versions), `Null` on create.
pub fn status(crd: &Value, previous: &Value, catalog: &Catalog) -> Value {
    let names = names_of(crd);
    let conflict = name_conflict(crd, catalog);
    let accepted = conflict.is_none();
    let mut conditions = vec![
        match &conflict {
            None => condition(
                "NamesAccepted",
                true,
                "NoConflicts",
                "no conflicts found",
                previous,
            ),
            Some((reason, message)) => condition("NamesAccepted", false, reason, message, previous),
        },
        if accepted {
            condition(
                "Established",
                true,
                "InitialNamesAccepted",
                "the initial names have been accepted",
                previous,
            )
        } else {
            condition(
                "Established",
                false,
                "NotAccepted",
                "not all names are accepted",
                previous,
            )
        },
    ];
    if !object::meta_str(crd, "deletionTimestamp").is_empty() {
        conditions.push(condition(
            "Terminating",
            true,
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress",
            previous,
        ));
    }
    let mut stored = strings(previous.pointer("/status/storedVersions"));
    if let Some(storage) = storage_version(crd) {
        if !stored.contains(&storage) {
            stored.push(storage);
        }
    }
    let accepted_names = if accepted {
        json!({
            "plural": names.plural, "singular": names.singular, "kind": names.kind,
            "listKind": names.list_kind, "shortNames": names.short_names, "categories": names.categories,
        })
    } else {
        previous
            .pointer("/status/acceptedNames")
            .cloned()
            .unwrap_or_else(|| json!({"plural": "", "kind": ""}))
    };
    json!({"acceptedNames": accepted_names, "conditions": conditions, "storedVersions": stored})
}

fn storage_version(crd: &Value) -> Option<String> {
    crd.pointer("/spec/versions")
        .and_then(Value::as_array)?
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .and_then(|v| v.get("name").and_then(Value::as_str))
        .map(str::to_owned)
}

/// Whether a condition of the CRD's status is `True`.
pub fn condition_true(crd: &Value, kind: &str) -> bool {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|conditions| {
            conditions.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some(kind)
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

fn printer_columns(version: &Value) -> Vec<PrinterColumn> {
    version
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .map(|columns| {
            columns
                .iter()
                .map(|c| {
                    let text = |f: &str| c.get(f).and_then(Value::as_str).unwrap_or("").to_owned();
                    PrinterColumn {
                        name: text("name"),
                        kind: text("type"),
                        format: text("format"),
                        description: text("description"),
                        priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                        json_path: text("jsonPath"),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The resources an established CRD serves: one per `served` version.
/// Empty when the CRD is not established (names not accepted).
pub fn resources(crd: &Value) -> Vec<ResourceInfo> {
    if !condition_true(crd, "Established") {
        return Vec::new();
    }
    let group = object::path_str(crd, "spec.group").to_owned();
    let names = names_of(crd);
    let namespaced = object::path_str(crd, "spec.scope") == "Namespaced";
    let Some(storage) = storage_version(crd) else {
        return Vec::new();
    };
    let terminating = !object::meta_str(crd, "deletionTimestamp").is_empty();
    let conversion_webhook = crd
        .pointer("/spec/conversion")
        .filter(|c| c.get("strategy").and_then(Value::as_str) == Some("Webhook"))
        .map(|c| Arc::new(c.clone()));
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool) == Some(true))
        .filter_map(|version| {
            let name = version.get("name").and_then(Value::as_str)?.to_owned();
            let schema_json = version
                .pointer("/schema/openAPIV3Schema")
                .cloned()
                .unwrap_or_else(
                    || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
                );
            let mut patterns = schema::Patterns::new();
            schema::compile_patterns(&schema_json, "", &mut patterns, &mut Vec::new());
            let scale = version.pointer("/subresources/scale").map(|scale| {
                let text = |f: &str| scale.get(f).and_then(Value::as_str).map(str::to_owned);
                ScalePaths {
                    spec_replicas: text("specReplicasPath")
                        .unwrap_or_else(|| ".spec.replicas".into()),
                    status_replicas: text("statusReplicasPath")
                        .unwrap_or_else(|| ".status.replicas".into()),
                    label_selector: text("labelSelectorPath"),
                }
            });
            Some(ResourceInfo {
                group: group.clone(),
                version: name.clone(),
                plural: names.plural.clone(),
                singular: names.singular.clone(),
                kind: names.kind.clone(),
                namespaced,
                short_names: names.short_names.clone(),
                categories: names.categories.clone(),
                status_subresource: version.pointer("/subresources/status").is_some(),
                scale_subresource: scale.is_some(),
                custom: Some(Arc::new(CustomResource {
                    crd_name: object::name(crd).to_owned(),
                    storage: name == storage,
                    storage_version: storage.clone(),
                    schema_json,
                    patterns,
                    printer_columns: printer_columns(version),
                    scale,
                    terminating,
                    conversion_webhook: conversion_webhook.clone(),
                })),
                ..ResourceInfo::default()
            })
        })
        .collect()
}

/// Replaces what the catalog serves for this CRD by what it declares now.
pub fn install(catalog: &mut Catalog, crd: &Value) {
    let group = object::path_str(crd, "spec.group").to_owned();
    let plural = names_of(crd).plural;
    let taken = catalog.by_resource(&group, &plural).is_some_and(|r| {
        r.custom
            .as_ref()
            .is_none_or(|c| c.crd_name != object::name(crd))
    });
    if taken {
        // A built-in or another CRD serves it: this CRD's names were not
        // accepted, and it never takes a resource away.
        return;
    }
    let infos = resources(crd);
    if infos.is_empty() {
        // Not established: serve nothing, but never take a built-in away.
        if catalog
            .by_resource(&group, &plural)
            .is_some_and(|r| r.custom.is_some())
        {
            catalog.remove_resource(&group, &plural);
        }
        return;
    }
    catalog.remove_resource(&group, &plural);
    for info in infos {
        catalog.insert(info);
    }
}

/// Stops serving the resource of a deleted CRD (by the CRD's name).
pub fn uninstall(catalog: &mut Catalog, crd_name: &str) {
    if let Some((group, plural)) = split_name(crd_name) {
        if catalog
            .by_resource(group, plural)
            .is_some_and(|r| r.custom.as_ref().is_some_and(|c| c.crd_name == crd_name))
        {
            catalog.remove_resource(group, plural);
        }
    }
}

/// The first of a rule's problems: CRD checks report one per field.
fn first(errors: Vec<String>) -> Option<String> {
    errors.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crontab() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "crontabs.stable.example.com"},
            "spec": {
                "group": "stable.example.com", "scope": "Namespaced",
                "names": {"plural": "crontabs", "kind": "CronTab", "shortNames": ["ct"], "categories": ["all"]},
                "versions": [
                    {"name": "v1", "served": true, "storage": true,
                     "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {"replicas": {"type": "integer"}}}}}},
                     "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                     "additionalPrinterColumns": [{"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"}]},
                    {"name": "v1beta1", "served": true, "storage": false,
                     "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
                    {"name": "v1alpha1", "served": false, "storage": false,
                     "schema": {"openAPIV3Schema": {"type": "object"}}},
                ],
            },
        })
    }

    #[test]
    fn a_good_crd_validates_and_gets_its_defaults() {
        let mut crd = crontab();
        apply_defaults(&mut crd);
        assert!(
            validate(&crd, None).is_empty(),
            "{:?}",
            validate(&crd, None)
        );
        assert_eq!(crd["spec"]["names"]["singular"], "crontab");
        assert_eq!(crd["spec"]["names"]["listKind"], "CronTabList");
        assert_eq!(crd["spec"]["conversion"]["strategy"], "None");
        assert_eq!(
            crd["spec"]["versions"][0]["additionalPrinterColumns"][0]["priority"],
            0
        );
    }

    #[test]
    fn bad_crds_are_refused_field_by_field() {
        let mut crd = crontab();
        crd["metadata"]["name"] = json!("wrong.stable.example.com");
        crd["spec"]["scope"] = json!("Galaxy");
        crd["spec"]["versions"][1]["storage"] = json!(true);
        crd["spec"]["versions"][2]["schema"] = json!(null);
        let fields: Vec<String> = validate(&crd, None).into_iter().map(|c| c.field).collect();
        for expected in [
            "metadata.name",
            "spec.scope",
            "spec.versions",
            "spec.versions[2].schema.openAPIV3Schema",
        ] {
            assert!(
                fields.iter().any(|f| f == expected),
                "{expected} missing from {fields:?}"
            );
        }
        let mut no_dot = crontab();
        no_dot["spec"]["group"] = json!("example");
        no_dot["metadata"]["name"] = json!("crontabs.example");
        assert_eq!(validate(&no_dot, None)[0].field, "spec.group");
        let mut moved = crontab();
        moved["spec"]["scope"] = json!("Cluster");
        assert!(validate(&moved, Some(&crontab()))
            .iter()
            .any(|c| c.field == "spec.scope"));
    }

    #[test]
    fn an_established_crd_serves_each_served_version_from_one_storage() {
        let mut crd = crontab();
        apply_defaults(&mut crd);
        let catalog = Catalog::builtin();
        crd["status"] = status(&crd, &Value::Null, &catalog);
        assert!(condition_true(&crd, "Established") && condition_true(&crd, "NamesAccepted"));
        assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));
        let infos = resources(&crd);
        let versions: Vec<&str> = infos.iter().map(|i| i.version.as_str()).collect();
        assert_eq!(versions, ["v1", "v1beta1"]);
        assert!(infos[0].status_subresource && infos[0].scale_subresource);
        assert!(!infos[1].status_subresource);
        let custom = infos[0].custom.as_ref().expect("custom");
        assert!(custom.storage && custom.printer_columns.len() == 1);
        let mut catalog = catalog;
        install(&mut catalog, &crd);
        assert_eq!(
            catalog
                .by_resource("stable.example.com", "crontabs")
                .map(|r| r.version.clone()),
            Some("v1".into())
        );
        assert!(catalog.by_kind("stable.example.com", "CronTab").is_some());
        assert!(catalog
            .custom_schema("stable.example.com", "v1", "CronTab")
            .is_some());
        uninstall(&mut catalog, "crontabs.stable.example.com");
        assert!(catalog
            .by_resource("stable.example.com", "crontabs")
            .is_none());
    }

    #[test]
    fn clashing_names_are_not_accepted_and_not_served() {
        let mut catalog = Catalog::builtin();
        let mut first = crontab();
        first["status"] = status(&first, &Value::Null, &catalog);
        install(&mut catalog, &first);
        let mut second = crontab();
        second["metadata"]["name"] = json!("crontabz.stable.example.com");
        second["spec"]["names"]["plural"] = json!("crontabz");
        second["spec"]["names"]["shortNames"] = json!([]);
        second["status"] = status(&second, &Value::Null, &catalog);
        assert!(!condition_true(&second, "NamesAccepted"));
        assert!(!condition_true(&second, "Established"));
        assert!(resources(&second).is_empty());
        let mut apps = crontab();
        apps["spec"]["group"] = json!("apps");
        apps["spec"]["names"]["kind"] = json!("Deployment");
        assert!(!condition_true(
            &json!({"status": status(&apps, &Value::Null, &catalog)}),
            "Established"
        ));
        // A CRD for a built-in's group and plural never replaces it.
        let mut ingresses = crontab();
        ingresses["metadata"]["name"] = json!("ingresses.networking.k8s.io");
        ingresses["spec"]["group"] = json!("networking.k8s.io");
        ingresses["spec"]["names"] = json!({"plural": "ingresses", "kind": "MyIngress"});
        ingresses["status"] = status(&ingresses, &Value::Null, &catalog);
        assert!(!condition_true(&ingresses, "NamesAccepted"));
        ingresses["status"]["conditions"] = json!([{"type": "Established", "status": "True"}]);
        install(&mut catalog, &ingresses);
        assert_eq!(
            catalog
                .get("networking.k8s.io", "v1", "ingresses")
                .map(|r| r.kind.clone()),
            Some("Ingress".into())
        );
        uninstall(&mut catalog, "ingresses.networking.k8s.io");
        assert!(catalog
            .get("networking.k8s.io", "v1", "ingresses")
            .is_some());
    }
}
