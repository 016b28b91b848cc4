//! What every cluster has from its first second: the system namespaces,
//! the `kubernetes` service and its ServiceCIDR, the system priority
//! classes, API priority and fairness's configuration, plus the service
//! allocations of a store that already holds services.

mod flowcontrol;

use serde_json::json;

use super::{ListOptions, Registry, WriteOptions, SYSTEM_NAMESPACES};
use crate::error::ApiError;

impl Registry {
    /// Adopts the allocations of stored services and creates what is
    /// missing of the system namespaces and the `kubernetes` service.
    /// Safe to run on every start.
    pub async fn bootstrap(&self, api_port: u16) -> Result<(), ApiError> {
        let catalog = self.catalog();
        let services = catalog
            .get("", "v1", "services")
            .ok_or_else(|| ApiError::internal("the services resource is not served"))?;
        let namespaces = catalog
            .get("", "v1", "namespaces")
            .ok_or_else(|| ApiError::internal("the namespaces resource is not served"))?;

        let stored = self.list(&services, None, &ListOptions::default()).await?;
        for service in &stored.items {
            self.services.adopt(service).await;
        }
        // What other servers sharing the store hold, too.
        self.services.refresh().await?;

        for name in SYSTEM_NAMESPACES {
            let namespace =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            ignore_exists(
                self.create(&namespaces, None, namespace, &WriteOptions::default())
                    .await,
            )?;
        }

        self.bootstrap_flow_control().await?;
        self.bootstrap_service_cidr().await?;
        if let Some(classes) = catalog.get("scheduling.k8s.io", "v1", "priorityclasses") {
            for (name, value, description) in crate::resources::kinds::SYSTEM_PRIORITY_CLASSES {
                let class = json!({
                    "apiVersion": "scheduling.k8s.io/v1",
                    "kind": "PriorityClass",
                    "metadata": {"name": name},
                    "value": value,
                    "description": description,
                });
                ignore_exists(
                    self.create(&classes, None, class, &super::admission::server_write())
                        .await,
                )?;
            }
        }

        let first_ip = self.services.first_ip().to_string();
        let kubernetes = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "kubernetes",
                "labels": {"component": "apiserver", "provider": "kubernetes"},
            },
            "spec": {
                "type": "ClusterIP",
                "clusterIP": first_ip,
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": api_port}],
            },
        });
        let address = super::ObjectAddress {
            resource: services.clone(),
            namespace: Some("default".into()),
            name: "kubernetes".into(),
        };
        match self.get(&address).await {
            Ok(_) => Ok(()),
            Err(err) if err.reason == "NotFound" => {
                let created = self
                    .create(
                        &services,
                        Some("default"),
                        kubernetes,
                        &WriteOptions::default(),
                    )
                    .await;
                match created {
                    Ok(_) => Ok(()),
                    // Another replica sharing the store created it first
                    // (its address may be what our create was refused).
                    Err(err) => match self.get(&address).await {
                        Ok(_) => Ok(()),
                        Err(_) => Err(err),
                    },
                }
            }
            Err(err) => Err(err),
        }
    }
}

impl Registry {
    /// The `kubernetes` ServiceCIDR: the range cluster IPs come from, as
    /// kube-apiserver publishes it (with its `Ready` condition).
    async fn bootstrap_service_cidr(&self) -> Result<(), ApiError> {
        let Some(cidrs) = self
            .catalog()
            .get("networking.k8s.io", "v1", "servicecidrs")
        else {
            return Ok(());
        };
        let address = super::ObjectAddress {
            resource: cidrs.clone(),
            namespace: None,
            name: "kubernetes".into(),
        };
        match self.get(&address).await {
            Ok(_) => return Ok(()),
            Err(err) if err.reason != "NotFound" => return Err(err),
            Err(_) => {}
        }
        let cidr = json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "ServiceCIDR",
            "metadata": {"name": "kubernetes"},
            "spec": {"cidrs": [self.services.primary_cidr()]},
        });
        let created = self
            .create(&cidrs, None, cidr, &WriteOptions::default())
            .await;
        let mut created = match created {
            Ok(created) => created,
            Err(err) if err.reason == "AlreadyExists" => return Ok(()),
            Err(err) => return Err(err),
        };
        created["status"] = json!({"conditions": [{
            "type": "Ready",
            "status": "True",
            "lastTransitionTime": crate::object::now_rfc3339(),
            "reason": "",
            "message": "Kubernetes default Service CIDR is ready",
        }]});
        ignore_conflict(
            self.update(
                &address,
                created,
                super::UpdateTarget::Status,
                &WriteOptions::default(),
            )
            .await,
        )
    }
}

/// A start-up write another replica sharing the store made first (every
/// replica writes the same built-in objects) is no failure: its 409
/// `Conflict` means the object was just written, by the same rule.
fn ignore_conflict<T>(result: Result<T, ApiError>) -> Result<(), ApiError> {
    match result {
        Ok(_) => Ok(()),
        Err(err) if err.reason == "Conflict" => Ok(()),
        Err(err) => Err(err),
    }
}

fn ignore_exists<T>(result: Result<T, ApiError>) -> Result<(), ApiError> {
    match result {
        Ok(_) => Ok(()),
        Err(err) if err.reason == "AlreadyExists" => Ok(()),
        Err(err) => Err(err),
    }
}
