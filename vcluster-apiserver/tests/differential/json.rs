//! JSON that keeps its keys in the order the server wrote them (field order
//! is part of what is compared), the normalisation that blanks what two
//! servers cannot agree on, and the first difference between two answers.

use std::fmt;
use std::net::Ipv4Addr;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value whose objects keep the server's key order.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parses one document, or every document of a stream (a watch) into
    /// an array.
    pub fn parse_stream(text: &str) -> Result<Vec<Json>, serde_json::Error> {
        serde_json::Deserializer::from_str(text)
            .into_iter::<Json>()
            .collect()
    }

    /// The value at `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string at a dotted path.
    pub fn str_at(&self, path: &[&str]) -> Option<&str> {
        let mut value = self;
        for key in path {
            value = value.get(key)?;
        }
        match value {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// Indented text, two spaces, keys in order.
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out
    }

    fn write(&self, out: &mut String, depth: usize) {
        let pad = |out: &mut String, d: usize| out.push_str(&"  ".repeat(d));
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(n),
            Json::String(s) => out.push_str(&serde_json::Value::String(s.clone()).to_string()),
            Json::Array(items) if items.is_empty() => out.push_str("[]"),
            Json::Array(items) => {
                out.push_str("[\n");
                for (i, item) in items.iter().enumerate() {
                    pad(out, depth + 1);
                    item.write(out, depth + 1);
                    out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
                }
                pad(out, depth);
                out.push(']');
            }
            Json::Object(fields) if fields.is_empty() => out.push_str("{}"),
            Json::Object(fields) => {
                out.push_str("{\n");
                for (i, (key, value)) in fields.iter().enumerate() {
                    pad(out, depth + 1);
                    out.push_str(&serde_json::Value::String(key.clone()).to_string());
                    out.push_str(": ");
                    value.write(out, depth + 1);
                    out.push_str(if i + 1 < fields.len() { ",\n" } else { "\n" });
                }
                pad(out, depth);
                out.push('}');
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct JsonVisitor;
        impl<'de> Visitor<'de> for JsonVisitor {
            type Value = Json;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
                Ok(Json::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
                Ok(Json::Number(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
                Ok(Json::Number(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
                Ok(Json::Number(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Json, E> {
                Ok(Json::String(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Json, E> {
                Ok(Json::String(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Json::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut fields = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Json>()? {
                    fields.push((key, value));
                }
                Ok(Json::Object(fields))
            }
        }
        deserializer.deserialize_any(JsonVisitor)
    }
}

/// Keys whose values are instants.
const TIME_KEYS: &[&str] = &[
    "creationTimestamp",
    "deletionTimestamp",
    "time",
    "firstTimestamp",
    "lastTimestamp",
    "eventTime",
    "lastTransitionTime",
    "lastUpdateTime",
    "lastHeartbeatTime",
    "lastProbeTime",
    "startTime",
    "expirationTimestamp",
];

/// Blanks what differs between any two servers by construction: object
/// identities (uid, resource versions, continue tokens), instants, allocated
/// addresses and ports, generated names and suffixes, ages in tables.
/// Everything else (codes, reasons, messages, defaults, key order) stays.
pub fn normalize(value: &mut Json) {
    normalize_at(value, None);
}

fn normalize_at(value: &mut Json, key: Option<&str>) {
    match value {
        Json::String(s) => {
            if let Some(blank) = blank_for(key, s) {
                *s = blank;
            }
        }
        Json::Number(n) if matches!(key, Some("nodePort")) => *n = "\"<port>\"".into(),
        Json::Array(items) => {
            for item in items.iter_mut() {
                normalize_at(item, key);
            }
        }
        Json::Object(fields) => {
            let generated = fields.iter().any(|(k, _)| k == "generateName");
            let age_column = table_age_column(fields);
            for (k, v) in fields.iter_mut() {
                if generated && k == "name" {
                    *v = Json::String("<generated>".into());
                    continue;
                }
                if k == "rows" {
                    if let (Some(age), Json::Array(rows)) = (age_column, &mut *v) {
                        blank_cells(rows, age);
                    }
                }
                normalize_at(v, Some(k));
            }
        }
        _ => {}
    }
}

fn blank_for(key: Option<&str>, s: &str) -> Option<String> {
    let key = key.unwrap_or("");
    if s.is_empty() {
        return None;
    }
    if key == "uid" || is_uuid(s) {
        return Some("<uid>".into());
    }
    if key == "resourceVersion" {
        return Some("<rv>".into());
    }
    if key == "continue" {
        return Some("<continue>".into());
    }
    if TIME_KEYS.contains(&key) {
        return Some("<time>".into());
    }
    if s.parse::<Ipv4Addr>().is_ok() {
        return Some("<ip>".into());
    }
    // Names the server derives with a random suffix (service-account
    // token volumes, generated names inside messages).
    if let Some(prefix) = s.strip_prefix("kube-api-access-") {
        if prefix.len() == 5 {
            return Some("kube-api-access-<suffix>".into());
        }
    }
    None
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && [8, 4, 4, 4, 12]
            .iter()
            .zip(&parts)
            .all(|(len, p)| p.len() == *len && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The index of a table's `Age` column, if this object is a table.
fn table_age_column(fields: &[(String, Json)]) -> Option<usize> {
    let columns = fields.iter().find(|(k, _)| k == "columnDefinitions")?;
    let Json::Array(columns) = &columns.1 else {
        return None;
    };
    columns
        .iter()
        .position(|c| c.str_at(&["name"]) == Some("Age"))
}

fn blank_cells(rows: &mut [Json], column: usize) {
    for row in rows {
        if let Json::Object(fields) = row {
            for (k, v) in fields.iter_mut() {
                if let (true, Json::Array(cells)) = (k == "cells", v) {
                    if let Some(cell) = cells.get_mut(column) {
                        *cell = Json::String("<age>".into());
                    }
                }
            }
        }
    }
}

/// Where two values first differ, as `path: ours … / upstream …`.
pub fn first_difference(ours: &Json, upstream: &Json) -> Option<String> {
    difference_at(ours, upstream, "")
}

fn difference_at(ours: &Json, upstream: &Json, path: &str) -> Option<String> {
    match (ours, upstream) {
        (Json::Object(a), Json::Object(b)) => {
            for (key, b_value) in b {
                let here = format!("{path}.{key}");
                match a.iter().find(|(k, _)| k == key) {
                    None => return Some(format!("{here}: missing in ours")),
                    Some((_, a_value)) => {
                        if let Some(d) = difference_at(a_value, b_value, &here) {
                            return Some(d);
                        }
                    }
                }
            }
            if let Some((key, _)) = a.iter().find(|(k, _)| !b.iter().any(|(bk, _)| bk == k)) {
                return Some(format!("{path}.{key}: only in ours"));
            }
            let order = |fields: &[(String, Json)]| {
                fields
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            (order(a) != order(b)).then(|| {
                format!(
                    "{path}: key order: ours [{}] / upstream [{}]",
                    order(a),
                    order(b)
                )
            })
        }
        (Json::Array(a), Json::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                if let Some(d) = difference_at(x, y, &format!("{path}[{i}]")) {
                    return Some(d);
                }
            }
            (a.len() != b.len())
                .then(|| format!("{path}: {} items in ours / {} upstream", a.len(), b.len()))
        }
        (a, b) if a == b => None,
        (a, b) => Some(format!(
            "{}: ours {} / upstream {}",
            if path.is_empty() { "." } else { path },
            short(a),
            short(b)
        )),
    }
}

fn short(value: &Json) -> String {
    let text = value.pretty().replace('\n', " ");
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() > 160 {
        let cut: String = text.chars().take(160).collect();
        format!("{cut}…")
    } else {
        text
    }
}

#[test]
fn key_order_and_identities() {
    let parse = |s: &str| Json::parse_stream(s).expect("json").remove(0);
    let mut a = parse(r#"{"kind":"X","metadata":{"uid":"abc","resourceVersion":"7"}}"#);
    let mut b = parse(r#"{"kind":"X","metadata":{"uid":"def","resourceVersion":"9"}}"#);
    normalize(&mut a);
    normalize(&mut b);
    assert_eq!(first_difference(&a, &b), None);
    let c = parse(r#"{"metadata":{"uid":"<uid>","resourceVersion":"<rv>"},"kind":"X"}"#);
    let d = first_difference(&c, &b).expect("order differs");
    assert!(d.contains("key order"), "{d}");
}
