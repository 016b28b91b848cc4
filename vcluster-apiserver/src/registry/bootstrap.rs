//! What every cluster has from its first second: the system namespaces,
//! the system priority classes and the `kubernetes` service, plus the
//! service allocations of a store that already holds services.

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
            self.services.adopt(service);
        }

        for name in SYSTEM_NAMESPACES {
            let namespace =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            ignore_exists(
                self.create(&namespaces, None, namespace, &WriteOptions::default())
                    .await,
            )?;
        }

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
            Err(err) if err.reason == "NotFound" => ignore_exists(
                self.create(
                    &services,
                    Some("default"),
                    kubernetes,
                    &WriteOptions::default(),
                )
                .await,
            ),
            Err(err) => Err(err),
        }
    }
}

fn ignore_exists<T>(result: Result<T, ApiError>) -> Result<(), ApiError> {
    match result {
        Ok(_) => Ok(()),
        Err(err) if err.reason == "AlreadyExists" => Ok(()),
        Err(err) => Err(err),
    }
}
