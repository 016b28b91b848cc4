//! Duplicate fields of a JSON document, which a JSON parser silently
//! resolves (the last one wins) but kube-apiserver's strict decoding
//! reports: `duplicate field "spec.replicas"`, refused under
//! `fieldValidation=Strict`, a warning under `Warn`.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// The paths of the fields a JSON document repeats, in document order
/// (`spec.replicas`, `spec.containers[0].name`); empty for a document that
/// does not parse (its parser reports that).
pub fn duplicate_fields(json: &[u8]) -> Vec<String> {
    let found = RefCell::new(Vec::new());
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let scan = Scan {
        path: String::new(),
        found: &found,
    };
    if scan.deserialize(&mut deserializer).is_err() {
        return Vec::new();
    }
    found.into_inner()
}

/// Walks one value at `path`, noting repeated keys.
struct Scan<'a> {
    path: String,
    found: &'a RefCell<Vec<String>>,
}

impl<'de> DeserializeSeed<'de> for Scan<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scan<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if !seen.insert(key) {
                self.found.borrow_mut().push(path.clone());
            }
            map.next_value_seed(Scan {
                path,
                found: self.found,
            })?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while seq
            .next_element_seed(Scan {
                path: format!("{}[{index}]", self.path),
                found: self.found,
            })?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_found_with_their_paths() {
        let doc = br#"{"kind":"Deployment","spec":{"replicas":2,"unknown":null,"replicas":3,
            "template":{"spec":{"containers":[{"name":"a","image":"x","name":"b"}]}}},"kind":"Deployment"}"#;
        assert_eq!(
            duplicate_fields(doc),
            [
                "spec.replicas",
                "spec.template.spec.containers[0].name",
                "kind"
            ]
        );
        assert!(duplicate_fields(br#"{"a":{"b":1},"c":{"b":[true,1.5,"x"]}}"#).is_empty());
        assert!(duplicate_fields(b"{not json").is_empty());
    }
}
