//! API priority and fairness's bootstrap configuration: the priority
//! levels and flow schemas every kube-apiserver creates (`exempt`,
//! `system`, `leader-election`, `workload-high`, `global-default`,
//! `catch-all`, ...), so clients and `kubectl get flowschemas` see what
//! they see on a real cluster.
//!
//! `flowcontrol.json` holds their specs as kube-apiserver 1.34 creates
//! them (read back from one, see docs/apiserver.md). Like upstream's
//! ensurer, objects annotated `apf.kubernetes.io/autoupdate-spec: "true"`
//! get their spec put back on every start; missing ones are re-created.
//! Each flow schema's `Dangling` condition says whether its level exists.

use serde_json::{json, Value};

use super::super::{ObjectAddress, Registry, UpdateTarget, WriteOptions};
use super::{ignore_conflict, ignore_exists};
use crate::error::ApiError;
use crate::object;

const GROUP: &str = "flowcontrol.apiserver.k8s.io";
const AUTOUPDATE: &str = "apf.kubernetes.io/autoupdate-spec";

/// The bootstrap objects, by plural.
fn bootstrap_objects() -> Result<Value, ApiError> {
    serde_json::from_str(include_str!("flowcontrol.json"))
        .map_err(|err| ApiError::internal(format!("the flow-control bootstrap data: {err}")))
}

impl Registry {
    /// Creates the missing bootstrap priority levels and flow schemas,
    /// puts back the spec of those still marked for auto-update, and
    /// records whether each flow schema's level exists.
    pub(super) async fn bootstrap_flow_control(&self) -> Result<(), ApiError> {
        let objects = bootstrap_objects()?;
        let catalog = self.catalog();
        for (plural, kind) in [
            ("prioritylevelconfigurations", "PriorityLevelConfiguration"),
            ("flowschemas", "FlowSchema"),
        ] {
            let Some(resource) = catalog.get(GROUP, "v1", plural) else {
                continue;
            };
            let items = objects
                .get(plural)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for mut item in items {
                item["apiVersion"] = json!(format!("{GROUP}/v1"));
                item["kind"] = json!(kind);
                let address = ObjectAddress {
                    resource: resource.clone(),
                    namespace: None,
                    name: object::name(&item).to_owned(),
                };
                match self.get(&address).await {
                    Ok(mut stored) => {
                        let autoupdate =
                            object::path(&stored, &format!("metadata.annotations.{AUTOUPDATE}"))
                                .and_then(Value::as_str)
                                == Some("true");
                        if autoupdate && stored.get("spec") != item.get("spec") {
                            stored["spec"] = item["spec"].clone();
                            ignore_conflict(
                                self.update(
                                    &address,
                                    stored,
                                    UpdateTarget::Main,
                                    &WriteOptions::default(),
                                )
                                .await,
                            )?;
                        }
                    }
                    Err(err) if err.reason == "NotFound" => ignore_exists(
                        self.create(&resource, None, item, &WriteOptions::default())
                            .await,
                    )?,
                    Err(err) => return Err(err),
                }
            }
        }
        self.mark_dangling_flow_schemas().await
    }

    /// Sets each flow schema's `Dangling` condition from whether the
    /// priority level it names exists, as upstream's configuration
    /// controller does.
    async fn mark_dangling_flow_schemas(&self) -> Result<(), ApiError> {
        let catalog = self.catalog();
        let (Some(schemas), Some(levels)) = (
            catalog.get(GROUP, "v1", "flowschemas"),
            catalog.get(GROUP, "v1", "prioritylevelconfigurations"),
        ) else {
            return Ok(());
        };
        let level_names: Vec<String> = self
            .list(&levels, None, &Default::default())
            .await?
            .items
            .iter()
            .map(|level| object::name(level).to_owned())
            .collect();
        for schema in self.list(&schemas, None, &Default::default()).await?.items {
            let level =
                object::path_str(&schema, "spec.priorityLevelConfiguration.name").to_owned();
            let exists = level_names.contains(&level);
            let (status, reason, message) = if exists {
                ("False", "Found", format!("This FlowSchema references the PriorityLevelConfiguration object named {level:?} and it exists"))
            } else {
                ("True", "NotFound", format!("This FlowSchema references the PriorityLevelConfiguration object named {level:?} but there is no such object"))
            };
            let current = object::path(&schema, "status.conditions")
                .and_then(Value::as_array)
                .and_then(|c| c.iter().find(|c| c["type"] == "Dangling"));
            if current.is_some_and(|c| c["status"] == status && c["reason"] == reason) {
                continue;
            }
            let mut updated = schema.clone();
            updated["status"] = json!({"conditions": [{
                "type": "Dangling",
                "status": status,
                "lastTransitionTime": object::now_rfc3339(),
                "reason": reason,
                "message": message,
            }]});
            let address = ObjectAddress {
                resource: schemas.clone(),
                namespace: None,
                name: object::name(&schema).to_owned(),
            };
            ignore_conflict(
                self.update(
                    &address,
                    updated,
                    UpdateTarget::Status,
                    &WriteOptions::default(),
                )
                .await,
            )?;
        }
        Ok(())
    }
}
