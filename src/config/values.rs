//! Value shapes shared by every section of `vcluster.yaml`: vCluster keys
//! that vcluster-rs does not implement ([`Unsupported`]), vCluster's
//! `true | false | auto` switches ([`AutoBool`]) and Kubernetes quantities
//! written as YAML numbers or strings ([`Quantity`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Marks an [`Unsupported`] error in serde's message, followed by the key
/// path (relative to the key) of the first setting that asks for
/// something, then [`UNSUPPORTED_END`]. Serde errors are strings; the
/// loader turns this back into [`super::ConfigError::Unsupported`].
pub(crate) const UNSUPPORTED_MARK: &str = "\u{1}unsupported:";
/// Ends the relative path after [`UNSUPPORTED_MARK`].
pub(crate) const UNSUPPORTED_END: &str = "\u{1}";

/// A key that is part of vCluster's config but not implemented by
/// vcluster-rs.
///
/// It is accepted only with a value that asks for nothing, which is what
/// vcluster-rs does anyway: `null`, `false`, `0`, an empty string, list or
/// map, a map whose `enabled` is `false` (or `auto`, which vcluster-rs
/// resolves to off for every feature it lacks), or a map of such values.
/// Anything else is an error naming the first key that asks for
/// something, so a copied vCluster config never silently loses a setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unsupported;

impl<'de> Deserialize<'de> for Unsupported {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_yaml::Value::deserialize(deserializer)?;
        match asks_for(&value) {
            None => Ok(Unsupported),
            Some(relative) => Err(de::Error::custom(format!(
                "{UNSUPPORTED_MARK}{relative}{UNSUPPORTED_END}"
            ))),
        }
    }
}

impl Serialize for Unsupported {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_none()
    }
}

impl JsonSchema for Unsupported {
    fn schema_name() -> Cow<'static, str> {
        "Unsupported".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Part of vCluster's config but not supported by vcluster-rs: accepted only with a value that asks for nothing (null, false, 0, an empty string, list or map, or a map with `enabled: false`)."
        })
    }
}

/// Where in `value` something is asked for: `Some("")` for the value
/// itself, `Some("a.b")` for a nested key, `None` when nothing is.
pub(crate) fn asks_for(value: &serde_yaml::Value) -> Option<String> {
    use serde_yaml::Value;
    match value {
        Value::Null | Value::Bool(false) => None,
        Value::Bool(true) => Some(String::new()),
        Value::Number(n) => (n.as_f64() != Some(0.0)).then(String::new),
        Value::String(s) => (!(s.is_empty() || s == "false")).then(String::new),
        Value::Sequence(items) => (!items.is_empty()).then(String::new),
        Value::Tagged(tagged) => asks_for(&tagged.value),
        Value::Mapping(map) => {
            let switched_off = map.get("enabled").is_some_and(|enabled| {
                matches!(enabled, Value::Bool(false))
                    || matches!(enabled.as_str(), Some("false" | "auto"))
            });
            if switched_off {
                return None;
            }
            map.iter().find_map(|(key, value)| {
                let inner = asks_for(value)?;
                let key = match key {
                    Value::String(s) => s.clone(),
                    other => serde_yaml::to_string(other)
                        .map(|s| s.trim().to_owned())
                        .unwrap_or_else(|_| "?".into()),
                };
                Some(if inner.is_empty() {
                    key
                } else {
                    format!("{key}.{inner}")
                })
            })
        }
    }
}

/// vCluster's `enabled: true | false | auto`. What `auto` means is said
/// where each key is resolved (documented per key in docs/config.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoBool {
    /// On.
    True,
    /// Off.
    False,
    /// Decided from other settings.
    Auto,
}

impl AutoBool {
    /// `true` and `false` as they are; `auto` as `auto`.
    pub fn resolve(self, auto: bool) -> bool {
        match self {
            AutoBool::True => true,
            AutoBool::False => false,
            AutoBool::Auto => auto,
        }
    }
}

impl Serialize for AutoBool {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            AutoBool::True => serializer.serialize_bool(true),
            AutoBool::False => serializer.serialize_bool(false),
            AutoBool::Auto => serializer.serialize_str("auto"),
        }
    }
}

impl<'de> Deserialize<'de> for AutoBool {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AutoBoolVisitor;
        impl Visitor<'_> for AutoBoolVisitor {
            type Value = AutoBool;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or \"auto\"")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<AutoBool, E> {
                Ok(if v { AutoBool::True } else { AutoBool::False })
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<AutoBool, E> {
                match v {
                    "true" => Ok(AutoBool::True),
                    "false" => Ok(AutoBool::False),
                    "auto" => Ok(AutoBool::Auto),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }
        }
        deserializer.deserialize_any(AutoBoolVisitor)
    }
}

impl JsonSchema for AutoBool {
    fn schema_name() -> Cow<'static, str> {
        "AutoBool".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "true, false or \"auto\" (decided from other settings).",
            "anyOf": [
                {"type": "boolean"},
                {"type": "string", "enum": ["auto", "true", "false"]}
            ]
        })
    }
}

/// A Kubernetes quantity (`100m`, `2Gi`, `10`), written as a YAML string or
/// number as in vCluster's config; checked when the file is loaded.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Quantity(pub String);

impl Quantity {
    /// The quantity for k8s-openapi objects.
    pub fn to_k8s(&self) -> k8s_openapi::apimachinery::pkg::api::resource::Quantity {
        k8s_openapi::apimachinery::pkg::api::resource::Quantity(self.0.clone())
    }
}

impl From<&str> for Quantity {
    fn from(value: &str) -> Self {
        Quantity(value.to_owned())
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `text` is a Kubernetes quantity: a decimal number with an
/// optional binary (`Ki`..`Ei`), decimal (`n`, `u`, `m`, `k`, `M`..`E`) or
/// exponent (`e3`, `E-2`) suffix.
pub(crate) fn is_quantity(text: &str) -> bool {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let digits_end = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(digits_end);
    let number_ok = !number.is_empty()
        && number.matches('.').count() <= 1
        && number.chars().any(|c| c.is_ascii_digit());
    let suffix_ok = match suffix {
        "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "n" | "u" | "m" | "k" | "M" | "G" | "T"
        | "P" | "E" => true,
        exponent => exponent
            .strip_prefix(['e', 'E'])
            .map(|rest| rest.strip_prefix(['+', '-']).unwrap_or(rest))
            .is_some_and(|digits| !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())),
    };
    number_ok && suffix_ok
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct QuantityVisitor;
        impl Visitor<'_> for QuantityVisitor {
            type Value = Quantity;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Kubernetes quantity such as 500m, 2Gi or 10")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Quantity, E> {
                if v.is_finite() {
                    Ok(Quantity(v.to_string()))
                } else {
                    Err(E::invalid_value(de::Unexpected::Float(v), &self))
                }
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
                if is_quantity(v) {
                    Ok(Quantity(v.to_owned()))
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
        }
        deserializer.deserialize_any(QuantityVisitor)
    }
}

impl JsonSchema for Quantity {
    fn schema_name() -> Cow<'static, str> {
        "Quantity".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A Kubernetes quantity, e.g. 500m, 2Gi or 10.",
            "anyOf": [
                {"type": "string", "pattern": "^[+-]?[0-9.]+([eEinumkKMGTP]*[-+]?[0-9]*)$"},
                {"type": "number"}
            ]
        })
    }
}

/// Quantities by resource name (`cpu`, `memory`, `count/pods`, ...).
pub type QuantityMap = BTreeMap<String, Quantity>;

/// The default of a quantity map that, as in vCluster (whose Helm values
/// merge into the chart's), a user's map is merged over: a key the user
/// sets replaces the default, a key set to `null` removes it.
pub(crate) trait QuantityDefaults {
    /// The defaults.
    fn defaults() -> QuantityMap;
}

/// Deserializes a [`QuantityMap`] merged over `T`'s defaults.
pub(crate) fn merged_quantities<'de, T, D>(deserializer: D) -> Result<QuantityMap, D::Error>
where
    T: QuantityDefaults,
    D: Deserializer<'de>,
{
    let given: BTreeMap<String, Option<Quantity>> =
        Option::<BTreeMap<String, Option<Quantity>>>::deserialize(deserializer)?
            .unwrap_or_default();
    let mut map = T::defaults();
    for (key, value) in given {
        match value {
            Some(value) => map.insert(key, value),
            None => map.remove(&key),
        };
    }
    Ok(map)
}

/// A quantity map from `(name, quantity)` pairs.
pub(crate) fn quantities(pairs: &[(&str, &str)]) -> QuantityMap {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), Quantity::from(*value)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_checked() {
        for good in ["1", "100m", "2Gi", "0.5", "1e3", "1E-2", "+4k", "20"] {
            assert!(is_quantity(good), "{good}");
        }
        for bad in ["", "Gi", "1.2.3", "2GB", "abc", "1e", "--1"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }

    #[test]
    fn values_that_ask_for_nothing() {
        let nothing = "{enabled: false, other: [1, 2]}";
        let value: serde_yaml::Value = serde_yaml::from_str(nothing).expect("yaml");
        assert_eq!(asks_for(&value), None);
        let value: serde_yaml::Value =
            serde_yaml::from_str("{toHost: [], fromHost: [{from: a, to: b}]}").expect("yaml");
        assert_eq!(asks_for(&value).as_deref(), Some("fromHost"));
        let value: serde_yaml::Value =
            serde_yaml::from_str("{a: {b: {enabled: true}}}").expect("yaml");
        assert_eq!(asks_for(&value).as_deref(), Some("a.b.enabled"));
        let value: serde_yaml::Value = serde_yaml::from_str("{x: 0, y: '', z: {}}").expect("yaml");
        assert_eq!(asks_for(&value), None);
    }
}
