//! The data of config maps and secrets: keys must be config keys, and the
//! data (decoded, for base64 fields) at most 1 MiB, as upstream checks.

use serde_json::Value;

use crate::error::FieldCause;

/// The most data one config map or secret may hold (upstream's
/// `MaxSecretSize`, also applied to config maps).
pub const DATA_MAX_BYTES: usize = 1024 * 1024;

/// How many bytes base64 text decodes to.
fn decoded_len(encoded: &str) -> usize {
    let padding = encoded.bytes().rev().take_while(|&c| c == b'=').count();
    (encoded.len() / 4 * 3).saturating_sub(padding)
}

/// Checks keys and size; `base64_data` says whether `data` is base64 (secrets).
pub(super) fn validate(object: &Value, base64_data: bool, causes: &mut Vec<FieldCause>) {
    let mut total = 0;
    for field in ["data", "binaryData", "stringData"] {
        let Some(map) = object.get(field).and_then(Value::as_object) else {
            continue;
        };
        let encoded = field == "binaryData" || (field == "data" && base64_data);
        total += map
            .values()
            .filter_map(Value::as_str)
            .map(|value| {
                if encoded {
                    decoded_len(value)
                } else {
                    value.len()
                }
            })
            .sum::<usize>();
        for key in map.keys() {
            let ok = !key.is_empty()
                && key.len() <= vcluster_core::validation::MAX_SUBDOMAIN_LENGTH
                && key
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
            if !ok {
                causes.push(FieldCause::invalid(
                    format!("{field}[{key}]"),
                    key,
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ));
            }
        }
    }
    if total > DATA_MAX_BYTES {
        causes.push(FieldCause::too_long("data", DATA_MAX_BYTES));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_lengths_are_the_decoded_sizes() {
        assert_eq!(decoded_len("QUI="), 2);
        assert_eq!(decoded_len("QUJD"), 3);
        assert_eq!(decoded_len(""), 0);
    }
}
