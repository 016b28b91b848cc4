//! `/openapi/v2` in the protobuf form client-go asks for
//! (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`, gnostic's
//! `openapi.v2.Document`). kubectl reads it for client-side validation
//! whenever the OpenAPI v3 document does not cover a kind (a kind the server
//! does not serve, for one): without it, `kubectl apply` of a manifest with
//! an unknown kind stopped at "unable to respond with a content type"
//! instead of upstream's "no matches for kind".
//!
//! The document's swagger version, info and definitions are encoded (every
//! schema keyword kubectl's validation reads: `$ref`, type, format,
//! description, required, properties, items, additionalProperties, allOf,
//! enum, default, bounds and `x-` extensions). Paths are left out: no
//! client of this form reads them.

use serde_json::{Map, Value};

/// The content type of this form, as kube-openapi answers it (clients may
/// also ask for the older `...spec.v2@v1.0+protobuf`).
pub const CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// Whether an `Accept` header prefers this form to JSON: the first type
/// acceptable at the highest quality decides, as kube-openapi negotiates.
pub fn preferred(accept: &str) -> bool {
    let mut choices: Vec<(f32, bool)> = accept
        .split(',')
        .filter_map(|entry| {
            let mut parts = entry.split(';').map(str::trim);
            let media = parts.next()?;
            let quality = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let protobuf = matches!(
                media,
                "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
                    | "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
            );
            let json = matches!(media, "application/json" | "*/*" | "application/*");
            (protobuf || json).then_some((quality, protobuf))
        })
        .collect();
    // Stable: among equal qualities the earlier entry wins.
    choices.sort_by(|a, b| b.0.total_cmp(&a.0));
    choices.first().is_some_and(|(_, protobuf)| *protobuf)
}

/// A protobuf message being written.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.0.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire_type));
    }

    fn bytes(&mut self, field: u32, bytes: &[u8]) {
        self.key(field, 2);
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    fn string(&mut self, field: u32, text: &str) {
        if !text.is_empty() {
            self.bytes(field, text.as_bytes());
        }
    }

    fn message(&mut self, field: u32, message: Message) {
        self.bytes(field, &message.0);
    }

    fn boolean(&mut self, field: u32, value: bool) {
        if value {
            self.key(field, 0);
            self.varint(1);
        }
    }

    fn int(&mut self, field: u32, value: i64) {
        self.key(field, 0);
        self.varint(value as u64);
    }

    fn double(&mut self, field: u32, value: f64) {
        self.key(field, 1);
        self.0.extend_from_slice(&value.to_le_bytes());
    }
}

/// `Any { yaml }`: a value as YAML text (JSON is YAML).
fn any(value: &Value) -> Message {
    let mut any = Message::default();
    any.string(2, &value.to_string());
    any
}

/// `NamedSchema { name, value }` for each entry of a map of schemas.
fn named_schemas(field: u32, out: &mut Message, schemas: &Map<String, Value>) {
    for (name, schema) in schemas {
        let mut named = Message::default();
        named.string(1, name);
        named.message(2, schema_message(schema));
        out.message(field, named);
    }
}

/// An `openapi.v2.Schema`.
fn schema_message(schema: &Value) -> Message {
    let mut out = Message::default();
    let Value::Object(map) = schema else {
        return out;
    };
    let text = |key: &str| map.get(key).and_then(Value::as_str).unwrap_or_default();
    out.string(1, text("$ref"));
    out.string(2, text("format"));
    out.string(3, text("title"));
    out.string(4, text("description"));
    if let Some(default) = map.get("default") {
        out.message(5, any(default));
    }
    for (key, field) in [("maximum", 7), ("minimum", 9)] {
        if let Some(n) = map.get(key).and_then(Value::as_f64) {
            out.double(field, n);
        }
    }
    out.boolean(8, map.get("exclusiveMaximum") == Some(&Value::Bool(true)));
    out.boolean(10, map.get("exclusiveMinimum") == Some(&Value::Bool(true)));
    for (key, field) in [
        ("maxLength", 11),
        ("minLength", 12),
        ("maxItems", 14),
        ("minItems", 15),
        ("maxProperties", 17),
        ("minProperties", 18),
    ] {
        if let Some(n) = map.get(key).and_then(Value::as_i64) {
            out.int(field, n);
        }
    }
    out.string(13, text("pattern"));
    out.boolean(16, map.get("uniqueItems") == Some(&Value::Bool(true)));
    for required in map
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.string(19, required.as_str().unwrap_or_default());
    }
    for value in map
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.message(20, any(value));
    }
    match map.get("additionalProperties") {
        Some(Value::Bool(allowed)) => {
            let mut item = Message::default();
            item.key(2, 0);
            item.varint(u64::from(*allowed));
            out.message(21, item);
        }
        Some(schema @ Value::Object(_)) => {
            let mut item = Message::default();
            item.message(1, schema_message(schema));
            out.message(21, item);
        }
        _ => {}
    }
    match map.get("type") {
        Some(Value::String(ty)) => {
            let mut item = Message::default();
            item.string(1, ty);
            out.message(22, item);
        }
        Some(Value::Array(types)) => {
            let mut item = Message::default();
            for ty in types.iter().filter_map(Value::as_str) {
                item.string(1, ty);
            }
            out.message(22, item);
        }
        _ => {}
    }
    match map.get("items") {
        Some(items @ Value::Object(_)) => {
            let mut item = Message::default();
            item.message(1, schema_message(items));
            out.message(23, item);
        }
        Some(Value::Array(items)) => {
            let mut item = Message::default();
            for schema in items {
                item.message(1, schema_message(schema));
            }
            out.message(23, item);
        }
        _ => {}
    }
    for schema in map
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.message(24, schema_message(schema));
    }
    if let Some(Value::Object(properties)) = map.get("properties") {
        let mut item = Message::default();
        named_schemas(1, &mut item, properties);
        out.message(25, item);
    }
    out.string(26, text("discriminator"));
    out.boolean(27, map.get("readOnly") == Some(&Value::Bool(true)));
    for (key, value) in map.iter().filter(|(k, _)| k.starts_with("x-")) {
        let mut named = Message::default();
        named.string(1, key);
        named.message(2, any(value));
        out.message(31, named);
    }
    out
}

/// The whole `openapi.v2.Document` of a v2 JSON document.
pub fn encode(document: &Value) -> Vec<u8> {
    let mut out = Message::default();
    let text = |key: &str| {
        document
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    out.string(1, text("swagger"));
    if let Some(info) = document.get("info") {
        let mut message = Message::default();
        message.string(
            1,
            info.get("title")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        );
        message.string(
            2,
            info.get("version")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        );
        out.message(2, message);
    }
    if let Some(Value::Object(definitions)) = document.get("definitions") {
        let mut message = Message::default();
        named_schemas(1, &mut message, definitions);
        out.message(9, message);
    }
    out.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accept_headers_choose_as_kube_openapi_does() {
        let pb = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
        assert!(preferred(pb));
        assert!(preferred(&format!("{pb}, application/json")));
        assert!(!preferred(&format!("application/json, {pb}")));
        assert!(!preferred(&format!("{pb}; q=0.5, application/json")));
        assert!(!preferred("application/json"));
        assert!(!preferred(""));
    }

    #[test]
    fn documents_encode_field_by_field() {
        let doc = json!({"swagger": "2.0", "info": {"title": "K", "version": "v1"}});
        // swagger = 1 ("2.0"), info = 2 { title = 1 "K", version = 2 "v1" }
        assert_eq!(
            encode(&doc),
            [0x0a, 3, b'2', b'.', b'0', 0x12, 7, 0x0a, 1, b'K', 0x12, 2, b'v', b'1']
        );
        let schema =
            json!({"type": "object", "x-kubernetes-group-version-kind": [{"kind": "Pod"}]});
        let bytes = schema_message(&schema).0;
        // type = 22 { value = 1 "object" }: key (22 << 3 | 2) = 0xb2 0x01.
        assert_eq!(&bytes[..4], &[0xb2, 0x01, 8, 0x0a]);
        // The extension's value travels as YAML (JSON) text.
        let tail = String::from_utf8_lossy(&bytes);
        assert!(tail.contains(r#"[{"kind":"Pod"}]"#), "{tail}");
    }
}
