//! Message bytes → the JSON a Go JSON client would have sent.
//!
//! The mapping follows Go's encoders rather than generic proto3 JSON:
//! fields take their Kubernetes JSON names, maps become objects, `bytes`
//! become base64, the special apimachinery types take their custom JSON
//! forms, `json:",inline"` sub-messages are flattened, and zero values of
//! `omitempty` value fields (which Go's protobuf marshaller always writes)
//! are dropped. Anything else present on the wire is kept, so explicitly
//! set pointer fields such as `replicas: 0` survive.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use super::gotime;
use super::schema::{Cardinality, Field, Message, MessageId, Scalar, Schema, Special, Type};
use super::wire::{Reader, WireType, WireValue};
use super::{ProtobufError, MAGIC};

/// Deepest message nesting accepted; real objects stay far below it.
pub(crate) const MAX_DEPTH: usize = 100;

/// Where in the object a value sits, for error messages. A stack-allocated
/// linked list so that the happy path never builds strings.
#[derive(Clone, Copy)]
pub(crate) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    segment: Segment<'a>,
}

#[derive(Clone, Copy)]
enum Segment<'a> {
    Root(&'a str),
    Field(&'a str),
    Index(usize),
    Key(&'a str),
}

impl<'a> Path<'a> {
    /// The path of a top-level object, named after its kind.
    pub(crate) fn root(kind: &'a str) -> Self {
        Path {
            parent: None,
            segment: Segment::Root(kind),
        }
    }

    fn child(&'a self, segment: Segment<'a>) -> Path<'a> {
        Path {
            parent: Some(self),
            segment,
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(parent) = self.parent {
            parent.fmt(f)?;
        }
        match self.segment {
            Segment::Root(kind) => f.write_str(kind),
            Segment::Field(name) => write!(f, ".{name}"),
            Segment::Index(i) => write!(f, "[{i}]"),
            Segment::Key(key) => write!(f, "[{key:?}]"),
        }
    }
}

fn malformed(message: &Message, path: &Path<'_>, reason: impl fmt::Display) -> ProtobufError {
    ProtobufError::Malformed {
        path: path.to_string(),
        message: message.name.to_string(),
        reason: reason.to_string(),
    }
}

fn invalid(message: &Message, path: &Path<'_>, reason: impl fmt::Display) -> ProtobufError {
    ProtobufError::InvalidValue {
        path: path.to_string(),
        message: message.name.to_string(),
        reason: reason.to_string(),
    }
}

/// Decodes messages against one schema, bounding work for hostile input.
pub(crate) struct Decoder<'s> {
    schema: &'s Schema,
    /// Bytes that may still be copied to merge repeated occurrences of a
    /// singular message field (legal protobuf, never produced by Go).
    /// Without a budget, nesting could copy the input once per level.
    merge_budget: Cell<usize>,
}

/// Fields gathered while scanning one message.
enum Slot<'b> {
    Empty,
    Value(Value),
    Parts(Vec<&'b [u8]>),
    List(Vec<Value>),
    Map(Map<String, Value>),
}

/// The decoded `runtime.Unknown` envelope.
struct Envelope<'b> {
    api_version: String,
    kind: String,
    raw: &'b [u8],
    content_encoding: String,
    content_type: String,
}

impl<'s> Decoder<'s> {
    /// A decoder for one request body of `body_len` bytes.
    pub(crate) fn new(schema: &'s Schema, body_len: usize) -> Self {
        Decoder {
            schema,
            merge_budget: Cell::new(body_len),
        }
    }

    /// Decodes `k8s\0` + `runtime.Unknown` into a JSON object with
    /// `apiVersion` and `kind`. `depth` counts enclosing objects (for
    /// protobuf embedded in a `RawExtension`).
    pub(crate) fn object(&self, body: &[u8], depth: usize) -> Result<Value, ProtobufError> {
        if depth > MAX_DEPTH {
            return Err(ProtobufError::TooDeep {
                path: "embedded object".into(),
                limit: MAX_DEPTH,
            });
        }
        let rest = body
            .strip_prefix(MAGIC)
            .ok_or(ProtobufError::MissingMagic)?;
        let envelope = parse_envelope(rest)?;
        if !envelope.content_encoding.is_empty() {
            return Err(ProtobufError::UnsupportedEncoding(
                envelope.content_encoding,
            ));
        }
        if envelope.kind.is_empty() {
            return Err(ProtobufError::MissingTypeMeta("kind"));
        }
        if envelope.api_version.is_empty() {
            return Err(ProtobufError::MissingTypeMeta("apiVersion"));
        }
        let mut object = match media_type(&envelope.content_type).as_str() {
            "" | super::PROTOBUF_CONTENT_TYPE => {
                let id = self
                    .schema
                    .kind(&envelope.api_version, &envelope.kind)
                    .ok_or_else(|| ProtobufError::UnknownKind {
                        api_version: envelope.api_version.clone(),
                        kind: envelope.kind.clone(),
                    })?;
                let path = Path::root(&envelope.kind);
                match self.message(id, envelope.raw, depth + 1, &path)? {
                    Value::Object(map) => map,
                    _ => {
                        return Err(ProtobufError::Schema(format!(
                            "kind {} maps to a non-object message",
                            envelope.kind
                        )))
                    }
                }
            }
            "application/json" => match serde_json::from_slice(envelope.raw) {
                Ok(Value::Object(map)) => map,
                Ok(_) => {
                    return Err(ProtobufError::Envelope(
                        "embedded JSON is not an object".into(),
                    ))
                }
                Err(e) => return Err(ProtobufError::Envelope(format!("embedded JSON: {e}"))),
            },
            _ => return Err(ProtobufError::UnsupportedContentType(envelope.content_type)),
        };
        object.insert("apiVersion".into(), Value::String(envelope.api_version));
        object.insert("kind".into(), Value::String(envelope.kind));
        Ok(Value::Object(object))
    }

    /// Decodes `bytes` as message `id` into its JSON value.
    fn message(
        &self,
        id: MessageId,
        bytes: &[u8],
        depth: usize,
        path: &Path<'_>,
    ) -> Result<Value, ProtobufError> {
        if depth > MAX_DEPTH {
            return Err(ProtobufError::TooDeep {
                path: path.to_string(),
                limit: MAX_DEPTH,
            });
        }
        let message = &self.schema.messages[id];
        match message.special {
            Special::Plain => self.plain(message, bytes, depth, path).map(Value::Object),
            special => self.special(message, special, bytes, depth, path),
        }
    }

    /// An ordinary message: an object of its fields.
    fn plain(
        &self,
        message: &Message,
        bytes: &[u8],
        depth: usize,
        path: &Path<'_>,
    ) -> Result<Map<String, Value>, ProtobufError> {
        let mut slots: Vec<Slot<'_>> = message.fields.iter().map(|_| Slot::Empty).collect();
        let mut reader = Reader::new(bytes);
        while !reader.is_empty() {
            let (tag, value) = reader.field().map_err(|e| malformed(message, path, e))?;
            let Some((index, field)) = message.field(tag) else {
                continue; // unknown field: newer schema, skip it
            };
            let here = field_path(path, field);
            let slot = &mut slots[index];
            match (field.cardinality, field.ty) {
                (Cardinality::Single, Type::Scalar(scalar)) => {
                    *slot = Slot::Value(scalar_value(message, &here, scalar, value)?);
                }
                (Cardinality::Single, Type::Message(_)) => {
                    let part = expect_len(message, &here, value)?;
                    match slot {
                        Slot::Parts(parts) => parts.push(part),
                        _ => *slot = Slot::Parts(vec![part]),
                    }
                }
                (Cardinality::Repeated, ty) => {
                    if !matches!(slot, Slot::List(_)) {
                        *slot = Slot::List(Vec::new());
                    }
                    let Slot::List(list) = slot else { continue };
                    match ty {
                        Type::Scalar(scalar) => push_scalars(message, &here, scalar, value, list)?,
                        Type::Message(child) => {
                            let part = expect_len(message, &here, value)?;
                            let item = here.child(Segment::Index(list.len()));
                            list.push(self.message(child, part, depth + 1, &item)?);
                        }
                    }
                }
                (Cardinality::Map, ty) => {
                    if !matches!(slot, Slot::Map(_)) {
                        *slot = Slot::Map(Map::new());
                    }
                    let Slot::Map(map) = slot else { continue };
                    let entry = expect_len(message, &here, value)?;
                    let (key, value) = self.map_entry(message, ty, entry, depth, &here)?;
                    map.insert(key, value);
                }
            }
        }

        let mut out = Map::new();
        let mut inlined = Vec::new();
        for (field, slot) in message.fields.iter().zip(slots) {
            let value = match slot {
                Slot::Empty => continue,
                Slot::Value(value) if field.omit_zero && is_zero(&value) => continue,
                Slot::Value(value) => value,
                Slot::List(list) => Value::Array(list),
                Slot::Map(map) => Value::Object(map),
                Slot::Parts(parts) => {
                    let Type::Message(child) = field.ty else {
                        continue;
                    };
                    let here = field_path(path, field);
                    let bytes = self.merge(message, &here, &parts)?;
                    self.message(child, &bytes, depth + 1, &here)?
                }
            };
            if field.inline {
                match value {
                    Value::Object(map) => inlined.push(map),
                    _ => {
                        return Err(ProtobufError::Schema(format!(
                            "{}: inline field is not an object",
                            message.name
                        )))
                    }
                }
            } else {
                out.insert(field.json.to_string(), value);
            }
        }
        // Like Go's encoding/json, the outer struct's own keys win.
        for map in inlined {
            for (key, value) in map {
                out.entry(key).or_insert(value);
            }
        }
        Ok(out)
    }

    /// Joins repeated occurrences of a singular message field (protobuf
    /// merge semantics equal decoding their concatenation).
    fn merge<'b>(
        &self,
        message: &Message,
        path: &Path<'_>,
        parts: &[&'b [u8]],
    ) -> Result<Cow<'b, [u8]>, ProtobufError> {
        match parts {
            [] => Ok(Cow::Borrowed(&[])),
            [one] => Ok(Cow::Borrowed(one)),
            many => {
                let total: usize = many.iter().map(|p| p.len()).sum();
                let left = self.merge_budget.get();
                if total > left {
                    return Err(malformed(
                        message,
                        path,
                        "repeated occurrences of a singular message field exceed the merge budget",
                    ));
                }
                self.merge_budget.set(left - total);
                Ok(Cow::Owned(many.concat()))
            }
        }
    }

    /// One `map<string, T>` entry: `{key = 1; value = 2}`.
    fn map_entry(
        &self,
        message: &Message,
        ty: Type,
        entry: &[u8],
        depth: usize,
        path: &Path<'_>,
    ) -> Result<(String, Value), ProtobufError> {
        let mut key = String::new();
        let mut scalar: Option<WireValue<'_>> = None;
        let mut parts = Vec::new();
        let mut reader = Reader::new(entry);
        while !reader.is_empty() {
            match reader.field().map_err(|e| malformed(message, path, e))? {
                (1, WireValue::Len(bytes)) => key = String::from_utf8_lossy(bytes).into_owned(),
                (1, _) => return Err(malformed(message, path, "map key is not length-delimited")),
                (2, value) => match ty {
                    Type::Scalar(_) => scalar = Some(value),
                    Type::Message(_) => parts.push(expect_len(message, path, value)?),
                },
                _ => {}
            }
        }
        let here = path.child(Segment::Key(&key));
        let value = match ty {
            Type::Scalar(s) => match scalar {
                Some(value) => scalar_value(message, &here, s, value)?,
                None => zero_scalar(s),
            },
            Type::Message(child) => {
                let bytes = self.merge(message, &here, &parts)?;
                self.message(child, &bytes, depth + 1, &here)?
            }
        };
        Ok((key, value))
    }

    /// Messages with a custom Go JSON form.
    fn special(
        &self,
        message: &Message,
        special: Special,
        bytes: &[u8],
        depth: usize,
        path: &Path<'_>,
    ) -> Result<Value, ProtobufError> {
        match special {
            Special::Plain => self.plain(message, bytes, depth, path).map(Value::Object),
            Special::Time => {
                let f = ScalarFields::read(message, bytes, path)?;
                // Go marshals the zero time as an empty message; JSON says null.
                if bytes.is_empty() {
                    return Ok(Value::Null);
                }
                // metav1.Time keeps whole seconds only (nanos are dropped on decode).
                let seconds = f.varint(message, path, 1)?.unwrap_or(0) as i64;
                if seconds == gotime::GO_ZERO_UNIX {
                    return Ok(Value::Null);
                }
                gotime::rfc3339(seconds)
                    .map(Value::String)
                    .map_err(|e| invalid(message, path, e))
            }
            Special::MicroTime => {
                let f = ScalarFields::read(message, bytes, path)?;
                if bytes.is_empty() {
                    return Ok(Value::Null);
                }
                let seconds = f.varint(message, path, 1)?.unwrap_or(0) as i64;
                let nanos = i64::from(f.varint(message, path, 2)?.unwrap_or(0) as i32);
                // Go's time.Unix normalises nanoseconds outside [0, 1e9).
                let seconds = seconds.saturating_add(nanos.div_euclid(1_000_000_000));
                let nanos = nanos.rem_euclid(1_000_000_000) as u32;
                if seconds == gotime::GO_ZERO_UNIX && nanos == 0 {
                    return Ok(Value::Null);
                }
                gotime::rfc3339_micro(seconds, nanos)
                    .map(Value::String)
                    .map_err(|e| invalid(message, path, e))
            }
            Special::Duration => {
                let f = ScalarFields::read(message, bytes, path)?;
                let nanos = f.varint(message, path, 1)?.unwrap_or(0) as i64;
                Ok(Value::String(gotime::duration(nanos)))
            }
            Special::Quantity => {
                let f = ScalarFields::read(message, bytes, path)?;
                match f.bytes(message, path, 1)? {
                    // Go leaves an absent quantity at zero, which prints "0".
                    None => Ok(Value::String("0".into())),
                    Some([]) => Err(invalid(message, path, "empty quantity string")),
                    Some(text) => Ok(Value::String(String::from_utf8_lossy(text).into_owned())),
                }
            }
            Special::IntOrString => {
                let f = ScalarFields::read(message, bytes, path)?;
                match f.varint(message, path, 1)?.unwrap_or(0) {
                    0 => Ok(Value::from(f.varint(message, path, 2)?.unwrap_or(0) as i32)),
                    1 => {
                        let text = f.bytes(message, path, 3)?.unwrap_or_default();
                        Ok(Value::String(String::from_utf8_lossy(text).into_owned()))
                    }
                    other => Err(invalid(
                        message,
                        path,
                        format_args!("IntOrString type {other} is neither 0 (int) nor 1 (string)"),
                    )),
                }
            }
            Special::RawExtension | Special::FieldsV1 | Special::Json => {
                let f = ScalarFields::read(message, bytes, path)?;
                match f.bytes(message, path, 1)? {
                    None | Some([]) => Ok(Value::Null),
                    Some(raw) => self.embedded(message, raw, depth, path),
                }
            }
            Special::SchemaOrArray => {
                let mut fields = self.plain(message, bytes, depth, path)?;
                match take(message, &mut fields, 2) {
                    Some(Value::Array(items)) if !items.is_empty() => Ok(Value::Array(items)),
                    _ => Ok(take(message, &mut fields, 1).unwrap_or(Value::Null)),
                }
            }
            Special::SchemaOrBool => {
                let mut fields = self.plain(message, bytes, depth, path)?;
                match take(message, &mut fields, 2) {
                    Some(schema) => Ok(schema),
                    None => Ok(take(message, &mut fields, 1).unwrap_or(Value::Bool(false))),
                }
            }
            Special::SchemaOrStringArray => {
                let mut fields = self.plain(message, bytes, depth, path)?;
                match take(message, &mut fields, 2) {
                    Some(Value::Array(items)) if !items.is_empty() => Ok(Value::Array(items)),
                    _ => Ok(take(message, &mut fields, 1).unwrap_or(Value::Null)),
                }
            }
            Special::StringList => {
                let mut fields = self.plain(message, bytes, depth, path)?;
                Ok(take(message, &mut fields, 1).unwrap_or(Value::Array(Vec::new())))
            }
        }
    }

    /// The payload of a `RawExtension`/`FieldsV1`/`JSON`: JSON text, or a
    /// nested Kubernetes protobuf object.
    fn embedded(
        &self,
        message: &Message,
        raw: &[u8],
        depth: usize,
        path: &Path<'_>,
    ) -> Result<Value, ProtobufError> {
        if raw.starts_with(MAGIC) {
            return self.object(raw, depth + 1);
        }
        serde_json::from_slice(raw)
            .map_err(|e| invalid(message, path, format_args!("embedded JSON: {e}")))
    }
}

/// The path of `field`'s value below `path` (inline fields add no segment).
fn field_path<'a>(path: &'a Path<'a>, field: &'a Field) -> Path<'a> {
    if field.inline {
        *path
    } else {
        path.child(Segment::Field(&field.json))
    }
}

/// Removes the value of field `tag` from an object decoded by `plain`.
fn take(message: &Message, fields: &mut Map<String, Value>, tag: u32) -> Option<Value> {
    let (_, field) = message.field(tag)?;
    fields.remove(&*field.json)
}

/// Last occurrence of fields 1..=3 of a small special message.
struct ScalarFields<'b> {
    values: [Option<WireValue<'b>>; 3],
}

impl<'b> ScalarFields<'b> {
    fn read(message: &Message, bytes: &'b [u8], path: &Path<'_>) -> Result<Self, ProtobufError> {
        let mut values = [None; 3];
        let mut reader = Reader::new(bytes);
        while !reader.is_empty() {
            let (tag, value) = reader.field().map_err(|e| malformed(message, path, e))?;
            if let Some(slot) = (tag as usize)
                .checked_sub(1)
                .and_then(|i| values.get_mut(i))
            {
                *slot = Some(value);
            }
        }
        Ok(ScalarFields { values })
    }

    fn get(&self, tag: u32) -> Option<WireValue<'b>> {
        self.values
            .get((tag as usize).wrapping_sub(1))
            .copied()
            .flatten()
    }

    fn varint(
        &self,
        message: &Message,
        path: &Path<'_>,
        tag: u32,
    ) -> Result<Option<u64>, ProtobufError> {
        match self.get(tag) {
            None => Ok(None),
            Some(WireValue::Varint(v)) => Ok(Some(v)),
            Some(other) => Err(wrong_wire_type(message, path, other.wire_type(), "integer")),
        }
    }

    fn bytes(
        &self,
        message: &Message,
        path: &Path<'_>,
        tag: u32,
    ) -> Result<Option<&'b [u8]>, ProtobufError> {
        match self.get(tag) {
            None => Ok(None),
            Some(WireValue::Len(b)) => Ok(Some(b)),
            Some(other) => Err(wrong_wire_type(message, path, other.wire_type(), "bytes")),
        }
    }
}

fn wrong_wire_type(message: &Message, path: &Path<'_>, got: WireType, want: &str) -> ProtobufError {
    malformed(
        message,
        path,
        format_args!("wire type {got:?} does not fit a {want} field"),
    )
}

fn expect_len<'b>(
    message: &Message,
    path: &Path<'_>,
    value: WireValue<'b>,
) -> Result<&'b [u8], ProtobufError> {
    match value {
        WireValue::Len(bytes) => Ok(bytes),
        other => Err(wrong_wire_type(
            message,
            path,
            other.wire_type(),
            "length-delimited",
        )),
    }
}

/// Converts one wire value of a scalar field.
fn scalar_value(
    message: &Message,
    path: &Path<'_>,
    scalar: Scalar,
    value: WireValue<'_>,
) -> Result<Value, ProtobufError> {
    Ok(match (scalar, value) {
        // Proto int32 is a sign-extended varint; truncation recovers it.
        (Scalar::Int32, WireValue::Varint(v)) => Value::from(v as i32),
        (Scalar::Int64, WireValue::Varint(v)) => Value::from(v as i64),
        (Scalar::Bool, WireValue::Varint(v)) => Value::Bool(v != 0),
        (Scalar::Double, WireValue::Fixed64(bits)) => {
            let f = f64::from_bits(bits);
            // Go's JSON encoder refuses NaN and infinities too.
            Value::Number(
                Number::from_f64(f)
                    .ok_or_else(|| invalid(message, path, format_args!("{f} has no JSON form")))?,
            )
        }
        // Go does not validate UTF-8 in proto strings; its JSON encoder
        // substitutes U+FFFD for invalid bytes, as from_utf8_lossy does.
        (Scalar::String, WireValue::Len(b)) => {
            Value::String(String::from_utf8_lossy(b).into_owned())
        }
        (Scalar::Bytes, WireValue::Len(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        (want, got) => {
            return Err(wrong_wire_type(
                message,
                path,
                got.wire_type(),
                scalar_name(want),
            ));
        }
    })
}

/// Appends a repeated scalar's value(s), accepting packed and unpacked forms.
fn push_scalars(
    message: &Message,
    path: &Path<'_>,
    scalar: Scalar,
    value: WireValue<'_>,
    list: &mut Vec<Value>,
) -> Result<(), ProtobufError> {
    match (scalar, value) {
        (Scalar::Int32 | Scalar::Int64 | Scalar::Bool, WireValue::Len(packed)) => {
            let mut reader = Reader::new(packed);
            while !reader.is_empty() {
                let v = reader.varint().map_err(|e| malformed(message, path, e))?;
                list.push(scalar_value(message, path, scalar, WireValue::Varint(v))?);
            }
        }
        (Scalar::Double, WireValue::Len(packed)) => {
            if packed.len() % 8 != 0 {
                return Err(malformed(
                    message,
                    path,
                    "packed doubles are not a multiple of 8 bytes",
                ));
            }
            for chunk in packed.chunks_exact(8) {
                let mut word = [0u8; 8];
                word.copy_from_slice(chunk);
                list.push(scalar_value(
                    message,
                    path,
                    scalar,
                    WireValue::Fixed64(u64::from_le_bytes(word)),
                )?);
            }
        }
        _ => list.push(scalar_value(message, path, scalar, value)?),
    }
    Ok(())
}

fn scalar_name(scalar: Scalar) -> &'static str {
    match scalar {
        Scalar::String => "string",
        Scalar::Bool => "bool",
        Scalar::Int32 => "int32",
        Scalar::Int64 => "int64",
        Scalar::Double => "double",
        Scalar::Bytes => "bytes",
    }
}

/// The value of an absent map value (proto default).
fn zero_scalar(scalar: Scalar) -> Value {
    match scalar {
        Scalar::String | Scalar::Bytes => Value::String(String::new()),
        Scalar::Bool => Value::Bool(false),
        Scalar::Int32 | Scalar::Int64 => Value::from(0),
        Scalar::Double => Value::from(0.0),
    }
}

/// Go's `omitempty` notion of empty, for the scalar kinds it applies to.
fn is_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Reads the `runtime.Unknown` envelope.
fn parse_envelope(bytes: &[u8]) -> Result<Envelope<'_>, ProtobufError> {
    let bad = |what: String| ProtobufError::Envelope(what);
    let text = |value: WireValue<'_>, name: &str| match value {
        WireValue::Len(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        _ => Err(bad(format!("{name} is not length-delimited"))),
    };
    let mut envelope = Envelope {
        api_version: String::new(),
        kind: String::new(),
        raw: &[],
        content_encoding: String::new(),
        content_type: String::new(),
    };
    let mut reader = Reader::new(bytes);
    while !reader.is_empty() {
        let (tag, value) = reader.field().map_err(|e| bad(e.to_string()))?;
        match tag {
            1 => {
                let WireValue::Len(type_meta) = value else {
                    return Err(bad("typeMeta is not length-delimited".into()));
                };
                let mut inner = Reader::new(type_meta);
                while !inner.is_empty() {
                    match inner.field().map_err(|e| bad(format!("typeMeta: {e}")))? {
                        (1, v) => envelope.api_version = text(v, "typeMeta.apiVersion")?,
                        (2, v) => envelope.kind = text(v, "typeMeta.kind")?,
                        _ => {}
                    }
                }
            }
            2 => match value {
                WireValue::Len(raw) => envelope.raw = raw,
                _ => return Err(bad("raw is not length-delimited".into())),
            },
            3 => envelope.content_encoding = text(value, "contentEncoding")?,
            4 => envelope.content_type = text(value, "contentType")?,
            _ => {}
        }
    }
    Ok(envelope)
}

/// The media type of a Content-Type value, lower-cased, without parameters.
pub(crate) fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}
