//! Secrets (core/v1): type `Opaque` by default, config keys, at most 1 MiB of
//! decoded data, selectable by `type`.

use k8s_openapi::api::core;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

use super::{config_data, fields::default_field, BuiltinKind};
use crate::error::FieldCause;
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{cluster, columns, Printer};

/// The Secret kind.
pub(super) const KIND: BuiltinKind =
    BuiltinKind::namespaced("", "secrets", "Secret", Typed::of::<core::v1::Secret>(), &Secrets);

/// The rules of Secret objects.
#[derive(Debug)]
struct Secrets;

impl Strategy for Secrets {
    fn default(&self, object: &mut Value) {
        let Some(map) = object.as_object_mut() else {
            return;
        };
        default_field(map, "type", json!("Opaque"));
        // `stringData` is write-only: its entries are encoded into `data`
        // (winning over the same keys there) and it is never stored, as
        // upstream's conversion does.
        if let Some(Value::Object(strings)) = map.remove("stringData") {
            let data = map.entry("data").or_insert_with(|| json!({}));
            if data.is_null() {
                *data = json!({});
            }
            if let Some(data) = data.as_object_mut() {
                for (key, text) in strings {
                    let text = text.as_str().unwrap_or_default().to_owned();
                    data.insert(key, json!(STANDARD.encode(text)));
                }
            }
        }
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        config_data::validate(object, true, causes);
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &["metadata.name", "metadata.namespace", "type"]
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::SECRET, cluster::secret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kinds::invalid_fields;
    use serde_json::json;

    #[test]
    fn string_data_is_written_into_data() {
        let mut secret = json!({"data": {"a": "eA==", "b": "eQ=="}, "stringData": {"b": "new", "c": "s3cr3t"}});
        KIND.strategy.default(&mut secret);
        assert_eq!(
            secret,
            json!({"type": "Opaque", "data": {"a": "eA==", "b": "bmV3", "c": "czNjcjN0"}})
        );
    }

    #[test]
    fn data_is_bounded_by_its_decoded_size() {
        let encoded = "QUJD".repeat(config_data::DATA_MAX_BYTES / 4);
        assert!(invalid_fields(&KIND, &json!({"data": {"a": encoded}})).is_empty());
        let over = "QUJD".repeat(config_data::DATA_MAX_BYTES / 3 + 1);
        assert_eq!(
            invalid_fields(&KIND, &json!({"data": {"a": over}})),
            ["data"]
        );
        assert_eq!(
            invalid_fields(&KIND, &json!({"data": {"a b": ""}})),
            ["data[a b]"]
        );
    }
}
