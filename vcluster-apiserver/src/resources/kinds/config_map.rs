//! Config maps (core/v1): keys must be config keys and the data at most 1
//! MiB.

use k8s_openapi::api::core;
use serde_json::Value;

use super::{config_data, BuiltinKind};
use crate::error::FieldCause;
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{cluster, columns, Printer};

/// The ConfigMap kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "",
    "configmaps",
    "ConfigMap",
    Typed::of::<core::v1::ConfigMap>(),
    &ConfigMaps,
)
.short_names(&["cm"]);

/// The rules of ConfigMap objects.
#[derive(Debug)]
struct ConfigMaps;

impl Strategy for ConfigMaps {
    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        config_data::validate(object, false, causes);
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::CONFIG_MAP, cluster::config_map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kinds::invalid_fields;
    use serde_json::json;

    #[test]
    fn data_is_bounded_like_kubernetes() {
        let at_limit = "x".repeat(config_data::DATA_MAX_BYTES);
        assert!(invalid_fields(&KIND, &json!({"data": {"a": at_limit}})).is_empty());
        let over = "x".repeat(config_data::DATA_MAX_BYTES + 1);
        assert_eq!(
            invalid_fields(&KIND, &json!({"data": {"a": over}})),
            ["data"]
        );
    }
}
