//! The Kubernetes message schema, parsed once from the generated `schema.txt`.
//!
//! The data file is produced by `tools/gen_protobuf_schema.py` (its header
//! documents the line format). Keeping it as data rather than generated Rust
//! keeps compile times flat; parsing ~200 KB of lines takes about a
//! millisecond and happens on the first protobuf request only.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::ProtobufError;

/// The generated schema text.
const SCHEMA_TEXT: &str = include_str!("schema.txt");

/// Index of a message in [`Schema::messages`].
pub(crate) type MessageId = usize;

/// Proto scalar types Kubernetes uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scalar {
    String,
    Bool,
    Int32,
    Int64,
    Double,
    Bytes,
}

/// What a field (or a map's value) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Type {
    Scalar(Scalar),
    Message(MessageId),
}

/// Whether the field is single, repeated or a `map<string, T>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cardinality {
    Single,
    Repeated,
    Map,
}

/// Messages whose JSON form is not an object of their fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Special {
    /// An ordinary message: a JSON object.
    Plain,
    /// `metav1.Time`: RFC 3339 seconds, `null` when zero.
    Time,
    /// `metav1.MicroTime`: RFC 3339 with microseconds, `null` when zero.
    MicroTime,
    /// `metav1.Duration`: Go `time.Duration` string.
    Duration,
    /// `resource.Quantity`: its string form.
    Quantity,
    /// `intstr.IntOrString`: a number or a string.
    IntOrString,
    /// `runtime.RawExtension`: the embedded object.
    RawExtension,
    /// `metav1.FieldsV1`: the embedded JSON.
    FieldsV1,
    /// apiextensions `JSON`: the embedded JSON.
    Json,
    /// `JSONSchemaPropsOrArray`: a schema or an array of schemas.
    SchemaOrArray,
    /// `JSONSchemaPropsOrBool`: a schema or a bool.
    SchemaOrBool,
    /// `JSONSchemaPropsOrStringArray`: a schema or an array of strings.
    SchemaOrStringArray,
    /// A Go `[]string` type wrapped in `message { repeated string items = 1; }`.
    StringList,
}

/// One field of a message.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) tag: u32,
    /// JSON key; meaningless when `inline` is set.
    pub(crate) json: Box<str>,
    /// Go `json:",inline"`: the sub-object's keys merge into the parent.
    pub(crate) inline: bool,
    pub(crate) ty: Type,
    pub(crate) cardinality: Cardinality,
    /// Go `omitempty` on a value (non-pointer) field: JSON clients never send
    /// its zero value, but Go's protobuf marshaller always writes it.
    pub(crate) omit_zero: bool,
}

/// One message type.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    /// Fully qualified proto name, for error messages.
    pub(crate) name: Box<str>,
    pub(crate) special: Special,
    /// Sorted by tag.
    pub(crate) fields: Vec<Field>,
}

impl Message {
    /// The field with protobuf number `tag`, if the schema knows it.
    pub(crate) fn field(&self, tag: u32) -> Option<(usize, &Field)> {
        let index = self.fields.binary_search_by_key(&tag, |f| f.tag).ok()?;
        Some((index, &self.fields[index]))
    }
}

/// All messages plus the index of top-level kinds.
#[derive(Debug)]
pub(crate) struct Schema {
    pub(crate) messages: Vec<Message>,
    kinds: HashMap<(Box<str>, Box<str>), MessageId>,
    any_version: HashMap<Box<str>, MessageId>,
    by_name: HashMap<String, MessageId>,
}

/// The process-wide schema, parsed on first use.
pub(crate) fn schema() -> Result<&'static Schema, ProtobufError> {
    static SCHEMA: OnceLock<Result<Schema, String>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| Schema::parse(SCHEMA_TEXT))
        .as_ref()
        .map_err(|why| ProtobufError::Schema(why.clone()))
}

impl Schema {
    /// The message for a top-level `(apiVersion, kind)`, falling back to the
    /// meta.k8s.io kinds that every group version registers (kubectl labels
    /// `DeleteOptions` with the resource's own group version).
    pub(crate) fn kind(&self, api_version: &str, kind: &str) -> Option<MessageId> {
        let key = (Box::<str>::from(api_version), Box::<str>::from(kind));
        self.kinds
            .get(&key)
            .or_else(|| self.any_version.get(kind))
            .copied()
    }

    /// The message of a fully qualified proto name
    /// (`k8s.io.apimachinery.pkg.apis.meta.v1.APIGroup`).
    pub(crate) fn message_named(&self, name: &str) -> Option<MessageId> {
        self.by_name.get(name).copied()
    }

    /// Parses the generated text format.
    pub(crate) fn parse(text: &str) -> Result<Schema, String> {
        // Pass 1: message names, so field types can refer forward.
        let mut ids: HashMap<String, MessageId> = HashMap::new();
        let mut package = "";
        for (n, line) in text.lines().enumerate() {
            let mut words = line.split_ascii_whitespace();
            match words.next() {
                Some("P") => {
                    package = words
                        .next()
                        .ok_or(format!("line {}: P without a name", n + 1))?
                }
                Some("M") => {
                    let name = words
                        .next()
                        .ok_or(format!("line {}: M without a name", n + 1))?;
                    let full = format!("{package}.{name}");
                    let id = ids.len();
                    if ids.insert(full.clone(), id).is_some() {
                        return Err(format!("line {}: duplicate message {full}", n + 1));
                    }
                }
                _ => {}
            }
        }

        // Pass 2: everything else.
        let mut messages: Vec<Message> = Vec::with_capacity(ids.len());
        let mut kinds = HashMap::new();
        let mut any_version = HashMap::new();
        let mut package = "";
        for (n, line) in text.lines().enumerate() {
            let at = |why: String| format!("line {}: {why}", n + 1);
            let words: Vec<&str> = line.split_ascii_whitespace().collect();
            match words.as_slice() {
                [] => {}
                [first, ..] if first.starts_with('#') => {}
                ["P", name] => package = name,
                ["M", name, rest @ ..] => {
                    let special = match rest {
                        [] => Special::Plain,
                        [word] => parse_special(word)
                            .ok_or_else(|| at(format!("unknown special {word}")))?,
                        _ => return Err(at("trailing words after M".into())),
                    };
                    messages.push(Message {
                        name: format!("{package}.{name}").into(),
                        special,
                        fields: Vec::new(),
                    });
                }
                ["F", tag, json, ty, rest @ ..] => {
                    let message = messages
                        .last_mut()
                        .ok_or_else(|| at("F before any M".into()))?;
                    let tag: u32 = tag.parse().map_err(|_| at(format!("bad tag {tag}")))?;
                    let flags = match rest {
                        [] => "",
                        [flags] => flags,
                        _ => return Err(at("trailing words after F".into())),
                    };
                    let (cardinality, ty) = match ty.strip_prefix("map:") {
                        Some(value) => (Cardinality::Map, value),
                        None if flags.contains('r') => (Cardinality::Repeated, *ty),
                        None => (Cardinality::Single, *ty),
                    };
                    let ty = resolve_type(ty, package, &ids)
                        .ok_or_else(|| at(format!("unknown type {ty}")))?;
                    if message.fields.last().is_some_and(|last| last.tag >= tag) {
                        return Err(at(format!(
                            "field tags of {} are not ascending",
                            message.name
                        )));
                    }
                    message.fields.push(Field {
                        tag,
                        inline: *json == "-",
                        json: (*json).into(),
                        ty,
                        cardinality,
                        omit_zero: flags.contains('z'),
                    });
                }
                ["K", api_version, kind, target] => {
                    let id = *ids
                        .get(*target)
                        .ok_or_else(|| at(format!("unknown message {target}")))?;
                    kinds.insert((Box::from(*api_version), Box::from(*kind)), id);
                }
                ["A", kind, target] => {
                    let id = *ids
                        .get(*target)
                        .ok_or_else(|| at(format!("unknown message {target}")))?;
                    any_version.insert(Box::from(*kind), id);
                }
                _ => return Err(at(format!("cannot parse {line:?}"))),
            }
        }
        let schema = Schema {
            messages,
            kinds,
            any_version,
            by_name: ids,
        };
        schema.check_specials()?;
        Ok(schema)
    }

    /// The decoder reads special messages by tag; make sure the tags mean
    /// what it assumes, so a regenerated schema cannot silently change them.
    fn check_specials(&self) -> Result<(), String> {
        use Cardinality::{Repeated, Single};
        use Scalar::{Bool, Bytes, Int32, Int64, String as Str};
        for message in &self.messages {
            let expect: &[(u32, Cardinality, Option<Scalar>)] = match message.special {
                Special::Plain => continue,
                Special::Time | Special::MicroTime => {
                    &[(1, Single, Some(Int64)), (2, Single, Some(Int32))]
                }
                Special::Duration => &[(1, Single, Some(Int64))],
                Special::Quantity => &[(1, Single, Some(Str))],
                Special::IntOrString => &[
                    (1, Single, Some(Int64)),
                    (2, Single, Some(Int32)),
                    (3, Single, Some(Str)),
                ],
                Special::RawExtension | Special::FieldsV1 | Special::Json => {
                    &[(1, Single, Some(Bytes))]
                }
                Special::SchemaOrArray => &[(1, Single, None), (2, Repeated, None)],
                Special::SchemaOrBool => &[(1, Single, Some(Bool)), (2, Single, None)],
                Special::SchemaOrStringArray => &[(1, Single, None), (2, Repeated, Some(Str))],
                Special::StringList => &[(1, Repeated, Some(Str))],
            };
            for (tag, cardinality, scalar) in expect {
                let ok = message.field(*tag).is_some_and(|(_, f)| {
                    f.cardinality == *cardinality
                        && match (scalar, f.ty) {
                            (Some(s), Type::Scalar(t)) => *s == t,
                            (None, Type::Message(_)) => true,
                            _ => false,
                        }
                });
                if !ok {
                    return Err(format!(
                        "{} does not have the layout its special kind needs",
                        message.name
                    ));
                }
            }
        }
        Ok(())
    }
}

fn parse_special(word: &str) -> Option<Special> {
    Some(match word {
        "time" => Special::Time,
        "microtime" => Special::MicroTime,
        "duration" => Special::Duration,
        "quantity" => Special::Quantity,
        "intorstring" => Special::IntOrString,
        "rawextension" => Special::RawExtension,
        "fieldsv1" => Special::FieldsV1,
        "json" => Special::Json,
        "schemaorarray" => Special::SchemaOrArray,
        "schemaorbool" => Special::SchemaOrBool,
        "schemaorstringarray" => Special::SchemaOrStringArray,
        "stringlist" => Special::StringList,
        _ => return None,
    })
}

fn resolve_type(word: &str, package: &str, ids: &HashMap<String, MessageId>) -> Option<Type> {
    let scalar = match word {
        "string" => Scalar::String,
        "bool" => Scalar::Bool,
        "int32" => Scalar::Int32,
        "int64" => Scalar::Int64,
        "double" => Scalar::Double,
        "bytes" => Scalar::Bytes,
        _ if word.contains('.') => return ids.get(word).copied().map(Type::Message),
        _ => {
            return ids
                .get(&format!("{package}.{word}"))
                .copied()
                .map(Type::Message)
        }
    };
    Some(Type::Scalar(scalar))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_schema_loads_and_indexes_kinds() {
        let schema = schema().expect("schema.txt parses");
        assert!(schema.messages.len() > 1000);
        let deployment = schema.kind("apps/v1", "Deployment").expect("Deployment");
        assert_eq!(
            &*schema.messages[deployment].name,
            "k8s.io.api.apps.v1.Deployment"
        );
        let ns = schema.kind("v1", "Namespace").expect("Namespace");
        assert_eq!(&*schema.messages[ns].name, "k8s.io.api.core.v1.Namespace");
        // DeleteOptions is accepted under any group version.
        let meta = schema
            .kind("meta.k8s.io/v1", "DeleteOptions")
            .expect("meta DeleteOptions");
        assert_eq!(schema.kind("apps/v1", "DeleteOptions"), Some(meta));
        assert_eq!(schema.kind("v1", "DeleteOptions"), Some(meta));
        assert_eq!(schema.kind("apps/v1", "NoSuchKind"), None);
    }

    #[test]
    fn field_metadata_is_carried() {
        let schema = schema().expect("schema");
        let id = schema.kind("v1", "Service").expect("Service");
        let spec = match schema.messages[id].field(2).map(|(_, f)| f.ty) {
            Some(Type::Message(spec)) => &schema.messages[spec],
            other => panic!("Service.spec is {other:?}"),
        };
        let (_, cluster_ips) = spec.field(18).expect("clusterIPs");
        assert_eq!(&*cluster_ips.json, "clusterIPs");
        assert_eq!(cluster_ips.cardinality, Cardinality::Repeated);
        let (_, selector) = spec.field(2).expect("selector");
        assert_eq!(selector.cardinality, Cardinality::Map);
    }

    #[test]
    fn malformed_text_is_rejected() {
        assert!(Schema::parse("P a\nM X\nF 1 x nosuch\n").is_err());
        assert!(Schema::parse("F 1 x string\n").is_err());
        assert!(Schema::parse("P a\nM X\nF 2 x string\nF 1 y string\n").is_err());
        assert!(Schema::parse("P a\nM X bogus\n").is_err());
        assert!(Schema::parse("P a\nM T time\nF 1 seconds string\n").is_err());
        assert!(Schema::parse("P a\nM X\nF 1 x string\nK v1 X a.X\n").is_ok());
    }
}
