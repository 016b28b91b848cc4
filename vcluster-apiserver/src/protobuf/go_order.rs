//! Typed objects serialized with their keys in Go declaration order, the
//! order kube-apiserver writes them (`encoding/json` follows the struct),
//! instead of the sorted order of our maps: `metadata.name` before
//! `metadata.namespace`, a Status's `message` before its `reason`, a
//! Deployment's `replicas` before its `selector`. The order of every API
//! struct is data generated from the Go types of the pinned release
//! (`go_order.txt`, by `tools/gen_go_field_order.py`); which struct a
//! nested object is comes from the protobuf schema's field types. Keys the
//! data does not know keep their sorted order, after the known ones.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

use super::schema::{schema, Cardinality, MessageId, Schema, Special, Type};

/// The generated order data.
const GO_ORDER_TEXT: &str = include_str!("go_order.txt");

/// The package of the `meta.k8s.io` types every group version serves.
const META: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";

/// Every message's keys in Go order, indexed by message.
struct Orders {
    schema: &'static Schema,
    keys: Vec<Vec<&'static str>>,
    /// The keys Go writes even in an empty object (`!` in the data).
    always_written: Vec<Vec<&'static str>>,
    /// The keys whose Go zero value is nil (`~`): written as `null`.
    nilable: Vec<Vec<&'static str>>,
    /// The keys whose values are atomic (`@` in the data).
    atomic: Vec<Vec<&'static str>>,
    /// The keys whose lists are sets (`$`).
    sets: Vec<Vec<&'static str>>,
    /// The keys whose lists are list maps, with their item keys (`^k,..`).
    list_maps: Vec<Vec<(&'static str, Vec<KeyField>)>>,
}

/// An item key of a list map, with the value a missing one stands for.
pub type KeyField = (&'static str, Option<&'static str>);

/// A key of the data without its flags, and whether it has `flag`.
fn key_with(word: &'static str, flag: char) -> (&'static str, bool) {
    let word = word.split_once('^').map_or(word, |(word, _)| word);
    let key = word.trim_end_matches(['!', '@', '~', '$']);
    (key, word[key.len()..].contains(flag))
}

/// The item keys of a list map word (`conditions~^type`), if it is one.
fn map_keys(word: &'static str) -> Option<(&'static str, Vec<KeyField>)> {
    let (word, keys) = word.split_once('^')?;
    let key = word.trim_end_matches(['!', '@', '~', '$']);
    Some((key, keys.split(',').map(|k| (k, None)).collect()))
}

fn orders() -> Option<&'static Orders> {
    static ORDERS: OnceLock<Option<Orders>> = OnceLock::new();
    ORDERS
        .get_or_init(|| {
            let schema = schema().ok()?;
            let by_name: HashMap<&str, Vec<&'static str>> = GO_ORDER_TEXT
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let mut words = l.split_ascii_whitespace();
                    Some((words.next()?, words.collect()))
                })
                .collect();
            let words =
                |m: &super::schema::Message| by_name.get(&*m.name).cloned().unwrap_or_default();
            let flagged = |flag: char| -> Vec<Vec<&'static str>> {
                schema
                    .messages
                    .iter()
                    .map(|m| {
                        words(m)
                            .into_iter()
                            .map(|w| key_with(w, flag))
                            .filter(|(_, has)| *has)
                            .map(|(k, _)| k)
                            .collect()
                    })
                    .collect()
            };
            let keys = schema
                .messages
                .iter()
                .map(|m| words(m).into_iter().map(|w| key_with(w, '!').0).collect())
                .collect();
            let list_maps = schema
                .messages
                .iter()
                .map(|m| words(m).into_iter().filter_map(map_keys).collect())
                .collect();
            Some(Orders {
                schema,
                keys,
                always_written: flagged('!'),
                atomic: flagged('@'),
                nilable: flagged('~'),
                sets: flagged('$'),
                list_maps,
            })
        })
        .as_ref()
}

/// The Go order of a `meta.k8s.io` struct the protobuf schema does not
/// carry (`TableColumnDefinition`, `TableRow`), by its Go name.
pub fn meta_keys(name: &str) -> &'static [&'static str] {
    static META_KEYS: OnceLock<HashMap<&'static str, Vec<&'static str>>> = OnceLock::new();
    META_KEYS
        .get_or_init(|| {
            GO_ORDER_TEXT
                .lines()
                .filter_map(|l| {
                    let mut words = l.split_ascii_whitespace();
                    let name = words.next()?.strip_prefix(META)?.strip_prefix('.')?;
                    Some((name, words.map(|w| key_with(w, '!').0).collect()))
                })
                .collect()
        })
        .get(name)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The message of a top-level object, from its `apiVersion` and `kind`
/// (the `meta.k8s.io` and discovery types by name).
pub fn message_of(object: &Value) -> Option<MessageId> {
    let orders = orders()?;
    let api_version = object.get("apiVersion")?.as_str()?;
    let kind = object.get("kind")?.as_str()?;
    if let Some(id) = orders.schema.kind(api_version, kind) {
        return Some(id);
    }
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    match group {
        "" | "meta.k8s.io" => orders.schema.message_named(&format!("{META}.{kind}")),
        "apidiscovery.k8s.io" => orders
            .schema
            .message_named(&format!("k8s.io.api.apidiscovery.{version}.{kind}")),
        _ => None,
    }
}

/// What server-side apply's field tracking needs to know of a field.
#[derive(Clone, Copy, Debug, Default)]
pub struct FieldFacts {
    /// Its message (for a list or map, the item's), when a struct.
    pub message: Option<MessageId>,
    /// A free-form map (`map[string]T`) rather than a struct.
    pub is_map: bool,
    /// Go writes it even in an empty object (no `omitempty`, or a struct
    /// held by value), so no write ever adds it.
    pub always_written: bool,
    /// Owned whole (`+mapType=atomic`, `+structType=atomic`, ...).
    pub atomic: bool,
    /// Go would leave it out of the object when it holds its zero value
    /// (`omitempty` on a string, number or bool held by value): such a
    /// value was never written, so no writer owns it.
    pub omitted_when_zero: bool,
    /// How its items are told apart, when the Go type says
    /// (`+listType=set` or `map`); `None` leaves it to the patch strategy.
    pub list: Option<ListType>,
}

/// A list's type as the Go markers declare it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListType {
    /// Scalars told apart by value.
    Set,
    /// Objects told apart by these fields.
    Map(&'static [KeyField]),
}

/// The facts of the field `key` of an object of `message`.
pub fn field_facts(message: MessageId, key: &str) -> FieldFacts {
    let Some(orders) = orders() else {
        return FieldFacts::default();
    };
    let listed =
        |table: &Vec<Vec<&'static str>>| table.get(message).is_some_and(|keys| keys.contains(&key));
    let (child, cardinality) = child_kind(orders.schema, message, key);
    FieldFacts {
        message: match child {
            Child::Message(id) => Some(id),
            _ => None,
        },
        is_map: cardinality == Cardinality::Map,
        always_written: listed(&orders.always_written),
        atomic: listed(&orders.atomic),
        omitted_when_zero: listed(&orders.keys)
            && !listed(&orders.always_written)
            && !listed(&orders.nilable)
            && matches!(child, Child::Plain)
            && cardinality == Cardinality::Single,
        list: if listed(&orders.sets) {
            Some(ListType::Set)
        } else {
            orders
                .list_maps
                .get(message)
                .and_then(|maps| maps.iter().find(|(k, _)| *k == key))
                .map(|(_, keys)| ListType::Map(keys.as_slice()))
        },
    }
}

/// `value`, an object of message `message`, in Go order.
pub struct GoOrdered<'a> {
    pub value: &'a Value,
    pub message: MessageId,
}

/// What a child value is, once its field is known.
enum Child {
    /// A message of the schema.
    Message(MessageId),
    /// An embedded object (`RawExtension`): resolved by its own kind.
    Embedded,
    /// Anything else: written as it is.
    Plain,
}

fn child_kind(schema: &Schema, message: MessageId, key: &str) -> (Child, Cardinality) {
    // Scalars keep their cardinality too: `map[string]string` is a map.
    fn cardinality_of(schema: &Schema, message: MessageId, key: &str) -> Cardinality {
        schema
            .messages
            .get(message)
            .and_then(|m| m.fields.iter().find(|f| !f.inline && &*f.json == key))
            .map_or(Cardinality::Single, |f| f.cardinality)
    }
    fn find(
        schema: &Schema,
        message: MessageId,
        key: &str,
        depth: u8,
    ) -> Option<(Type, Cardinality)> {
        let fields = &schema.messages.get(message)?.fields;
        if let Some(f) = fields.iter().find(|f| !f.inline && &*f.json == key) {
            return Some((f.ty, f.cardinality));
        }
        if depth > 4 {
            return None;
        }
        fields.iter().filter(|f| f.inline).find_map(|f| match f.ty {
            Type::Message(inner) => find(schema, inner, key, depth + 1),
            Type::Scalar(_) => None,
        })
    }
    match find(schema, message, key, 0) {
        Some((Type::Message(id), cardinality)) => {
            let child = match schema.messages[id].special {
                Special::Plain => Child::Message(id),
                Special::RawExtension => Child::Embedded,
                _ => Child::Plain,
            };
            (child, cardinality)
        }
        _ => (Child::Plain, cardinality_of(schema, message, key)),
    }
}

impl Serialize for GoOrdered<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (Value::Object(map), Some(orders)) = (self.value, orders()) else {
            return self.value.serialize(serializer);
        };
        let order = orders
            .keys
            .get(self.message)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let always = orders
            .always_written
            .get(self.message)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let typed = |value, key: &str| {
            let (child, cardinality) = child_kind(orders.schema, self.message, key);
            Typed {
                value,
                child,
                cardinality,
            }
        };
        let mut out = serializer.serialize_map(None)?;
        for key in order {
            match map.get(*key) {
                Some(value) => out.serialize_entry(key, &typed(value, key))?,
                // Go writes a field without `omitempty` (and any struct
                // held by value) even when it is empty: so does upstream.
                None if always.contains(key) => {
                    out.serialize_entry(key, &Zero::of(orders, self.message, key))?
                }
                None => {}
            }
        }
        for (key, value) in map.iter().filter(|(k, _)| !order.contains(&k.as_str())) {
            out.serialize_entry(key, &typed(value, key))?;
        }
        out.end()
    }
}

/// The Go zero value of a field, as `encoding/json` writes it.
enum Zero {
    Null,
    EmptyString,
    Number,
    False,
    /// A struct held by value: an empty object, with its own fields that
    /// are always written.
    Struct(MessageId),
}

impl Zero {
    fn of(orders: &Orders, message: MessageId, key: &str) -> Zero {
        use super::schema::Scalar;
        let nilable = orders
            .nilable
            .get(message)
            .is_some_and(|keys| keys.contains(&key));
        let field = orders
            .schema
            .messages
            .get(message)
            .and_then(|m| m.fields.iter().find(|f| !f.inline && &*f.json == key));
        let Some(field) = field else {
            return Zero::Null;
        };
        if nilable || field.cardinality != Cardinality::Single {
            return Zero::Null;
        }
        match field.ty {
            Type::Scalar(Scalar::String) => Zero::EmptyString,
            Type::Scalar(Scalar::Bool) => Zero::False,
            Type::Scalar(Scalar::Bytes) => Zero::Null,
            Type::Scalar(_) => Zero::Number,
            Type::Message(id) => match orders.schema.messages[id].special {
                Special::Plain => Zero::Struct(id),
                // Time, raw objects and the like write `null` when zero.
                _ => Zero::Null,
            },
        }
    }
}

impl Serialize for Zero {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        static EMPTY: OnceLock<Value> = OnceLock::new();
        match self {
            Zero::Null => serializer.serialize_unit(),
            Zero::EmptyString => serializer.serialize_str(""),
            Zero::Number => serializer.serialize_i64(0),
            Zero::False => serializer.serialize_bool(false),
            Zero::Struct(message) => GoOrdered {
                value: EMPTY.get_or_init(|| Value::Object(serde_json::Map::new())),
                message: *message,
            }
            .serialize(serializer),
        }
    }
}

/// A field's value with what the schema says it holds.
struct Typed<'a> {
    value: &'a Value,
    child: Child,
    cardinality: Cardinality,
}

impl Serialize for Typed<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let one = |value| One {
            value,
            child: &self.child,
        };
        match (self.cardinality, self.value) {
            (Cardinality::Repeated, Value::Array(items)) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&one(item))?;
                }
                seq.end()
            }
            (Cardinality::Map, Value::Object(map)) => {
                let mut out = serializer.serialize_map(Some(map.len()))?;
                for (key, value) in map {
                    out.serialize_entry(key, &one(value))?;
                }
                out.end()
            }
            (_, value) => one(value).serialize(serializer),
        }
    }
}

/// One value of a message type (or embedded, or plain).
struct One<'a, 'b> {
    value: &'a Value,
    child: &'b Child,
}

impl Serialize for One<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.child {
            Child::Message(message) => GoOrdered {
                value: self.value,
                message: *message,
            }
            .serialize(serializer),
            Child::Embedded => match message_of(self.value) {
                Some(message) => GoOrdered {
                    value: self.value,
                    message,
                }
                .serialize(serializer),
                None => self.value.serialize(serializer),
            },
            Child::Plain => self.value.serialize(serializer),
        }
    }
}
