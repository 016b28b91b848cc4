//! Per-field patch metadata of the built-in API types: which lists merge by
//! which key, which are sets of scalars, which objects clear sibling keys
//! (`retainKeys`). Strategic merge patch, server-side apply and the OpenAPI
//! extensions all read it from here.
//!
//! The data (`meta.txt`) is generated from the Go struct tags kubectl carries
//! (`patchStrategy:"merge" patchMergeKey:"name"`) by `tools/gen_patch_meta.py`;
//! re-run it when kubectl or the Kubernetes crates change. Types missing from
//! the data (custom resources) behave as upstream treats CRDs: objects merge
//! recursively and lists are replaced whole.

use std::collections::HashMap;
use std::sync::OnceLock;

const META_TEXT: &str = include_str!("meta.txt");

/// How a field is patched, from its Go `patchStrategy` tag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Strategy {
    /// `merge`: lists merge by key (or as sets of scalars).
    pub merge: bool,
    /// `replace`: the value is replaced whole.
    pub replace: bool,
    /// `retainKeys`: keys missing from the patch's `$retainKeys` are cleared.
    pub retain_keys: bool,
}

impl Strategy {
    /// The tag text (`merge,retainKeys`), or `None` without a strategy.
    pub fn tag(&self) -> Option<&'static str> {
        match (self.merge, self.replace, self.retain_keys) {
            (true, _, true) => Some("merge,retainKeys"),
            (true, _, false) => Some("merge"),
            (false, true, _) => Some("replace"),
            (false, false, true) => Some("retainKeys"),
            (false, false, false) => None,
        }
    }
}

/// Whether a field holds one value, a list, or a map of values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A single value.
    Single,
    /// A JSON array.
    List,
    /// A JSON object with arbitrary keys (`map[string]T`).
    Map,
}

/// One field of a message that carries metadata or leads to some.
#[derive(Clone, Debug)]
pub struct FieldMeta {
    /// Index of the referenced message in [`PatchMeta::types`].
    pub ty: Option<usize>,
    /// Single, list or map.
    pub shape: Shape,
    /// The patch strategy.
    pub strategy: Strategy,
    /// The merge key of a list of objects.
    pub merge_key: Option<String>,
}

/// A message: its fields that matter for patching.
#[derive(Clone, Debug)]
pub struct TypeMeta {
    /// Full proto name (`k8s.io.api.core.v1.PodSpec`).
    pub name: String,
    /// JSON field name -> metadata.
    pub fields: HashMap<String, FieldMeta>,
}

impl TypeMeta {
    /// The OpenAPI definition name (`io.k8s.api.core.v1.PodSpec`).
    pub fn openapi_name(&self) -> String {
        openapi_name(&self.name)
    }
}

/// `k8s.io.api.core.v1.Pod` -> `io.k8s.api.core.v1.Pod`.
pub fn openapi_name(proto: &str) -> String {
    match proto.strip_prefix("k8s.io.") {
        Some(rest) => format!(
            "io.k8s.{}",
            rest.replace("apiextensions_apiserver", "apiextensions-apiserver")
                .replace("kube_aggregator", "kube-aggregator")
        ),
        None => proto.to_owned(),
    }
}

/// All metadata, indexed by type and by kind.
#[derive(Debug, Default)]
pub struct PatchMeta {
    /// Every message with metadata in its subtree.
    pub types: Vec<TypeMeta>,
    by_name: HashMap<String, usize>,
    by_kind: HashMap<(String, String), usize>,
}

/// Where in the type tree a JSON value sits.
#[derive(Clone, Copy, Debug)]
pub enum Node<'a> {
    /// No metadata: plain merge-patch semantics, atomic lists.
    Untyped,
    /// An object of a known message type.
    Struct(&'a TypeMeta),
    /// A `map[string]T` whose values are of the given type.
    MapOf(Option<&'a TypeMeta>),
}

/// A key field of a list map, and the value of items that leave it out
/// (the field's default).
pub type KeyField = (&'static str, Option<&'static str>);

/// Lists whose items upstream identifies by more than the patch merge key
/// (`x-kubernetes-list-map-keys` in kube-apiserver's OpenAPI): the struct
/// tags `meta.txt` comes from name only the merge key, so these few are
/// listed here. Two ports may share a number with different protocols
/// (DNS on 53/UDP and 53/TCP).
const COMPOUND_LIST_KEYS: &[(&str, &str, &[KeyField])] = &[
    (
        "k8s.io.api.core.v1.Container",
        "ports",
        &[("containerPort", None), ("protocol", Some("TCP"))],
    ),
    (
        "k8s.io.api.core.v1.EphemeralContainer",
        "ports",
        &[("containerPort", None), ("protocol", Some("TCP"))],
    ),
    (
        "k8s.io.api.core.v1.ServiceSpec",
        "ports",
        &[("port", None), ("protocol", Some("TCP"))],
    ),
    (
        "k8s.io.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        &[("topologyKey", None), ("whenUnsatisfiable", None)],
    ),
];

/// The compound key of list `field` of message `type_name` (proto name),
/// if it has one.
pub fn compound_keys(type_name: &str, field: &str) -> Option<&'static [KeyField]> {
    COMPOUND_LIST_KEYS
        .iter()
        .find(|(ty, name, _)| *ty == type_name && *name == field)
        .map(|(_, _, keys)| *keys)
}

/// What a field lookup answers: how to treat the value under a key.
#[derive(Clone, Copy, Debug)]
pub struct Field<'a> {
    /// The node of the value (for lists: of each element).
    pub node: Node<'a>,
    /// Whether the value is a list (by type; untyped lists are atomic).
    pub shape: Shape,
    /// The patch strategy.
    pub strategy: Strategy,
    /// The merge key of a list of objects.
    pub merge_key: Option<&'a str>,
    /// The full key of a list map keyed by several fields
    /// ([`compound_keys`]); `None` when the merge key alone is the key.
    pub list_keys: Option<&'static [KeyField]>,
}

impl<'a> Field<'a> {
    const UNTYPED: Field<'static> = Field {
        node: Node::Untyped,
        shape: Shape::Single,
        strategy: Strategy {
            merge: false,
            replace: false,
            retain_keys: false,
        },
        merge_key: None,
        list_keys: None,
    };
}

impl<'a> Node<'a> {
    /// The metadata of `key` under this node.
    pub fn field(self, meta: &'a PatchMeta, key: &str) -> Field<'a> {
        match self {
            Node::Untyped => Field::UNTYPED,
            Node::MapOf(ty) => Field {
                node: ty.map_or(Node::Untyped, Node::Struct),
                ..Field::UNTYPED
            },
            Node::Struct(ty) => match ty.fields.get(key) {
                None => Field::UNTYPED,
                Some(f) => {
                    let inner = f.ty.and_then(|i| meta.types.get(i));
                    let node = match f.shape {
                        Shape::Map => Node::MapOf(inner),
                        Shape::Single | Shape::List => inner.map_or(Node::Untyped, Node::Struct),
                    };
                    Field {
                        node,
                        shape: f.shape,
                        strategy: f.strategy,
                        merge_key: f.merge_key.as_deref(),
                        list_keys: compound_keys(&ty.name, key),
                    }
                }
            },
        }
    }
}

impl PatchMeta {
    /// The generated metadata, parsed once.
    pub fn global() -> &'static PatchMeta {
        static META: OnceLock<PatchMeta> = OnceLock::new();
        META.get_or_init(|| match PatchMeta::parse(META_TEXT) {
            Ok(meta) => meta,
            Err(err) => {
                // Covered by a unit test; never expected at run time.
                tracing::error!("patch metadata cannot be parsed: {err}");
                PatchMeta::default()
            }
        })
    }

    /// The node of a top-level object of `apiVersion`/`kind`.
    pub fn root(&self, api_version: &str, kind: &str) -> Node<'_> {
        self.by_kind
            .get(&(api_version.to_owned(), kind.to_owned()))
            .and_then(|i| self.types.get(*i))
            .map_or(Node::Untyped, Node::Struct)
    }

    /// The node of an object, from its own `apiVersion` and `kind`.
    pub fn root_of(&self, object: &serde_json::Value) -> Node<'_> {
        let field = |name| object.get(name).and_then(|v| v.as_str()).unwrap_or("");
        self.root(field("apiVersion"), field("kind"))
    }

    /// A message by its full proto name.
    pub fn by_name(&self, name: &str) -> Option<&TypeMeta> {
        self.by_name.get(name).and_then(|i| self.types.get(*i))
    }

    /// Parses the generated `meta.txt` format.
    pub fn parse(text: &str) -> Result<PatchMeta, String> {
        let mut meta = PatchMeta::default();
        let mut kinds = Vec::new();
        // Field references are resolved once every type is known.
        let mut pending: Vec<(usize, String, String, Shape, Strategy, Option<String>)> = Vec::new();
        for (lineno, line) in text.lines().enumerate() {
            let bad = |what: &str| format!("meta.txt line {}: {what}: {line:?}", lineno + 1);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                ["K", api_version, kind, ty] => kinds.push((
                    (*api_version).to_owned(),
                    (*kind).to_owned(),
                    (*ty).to_owned(),
                )),
                ["T", name] => {
                    meta.by_name.insert((*name).to_owned(), meta.types.len());
                    meta.types.push(TypeMeta {
                        name: (*name).to_owned(),
                        fields: HashMap::new(),
                    });
                }
                ["F", json, ty, shape, strategy, rest @ ..] if rest.len() <= 1 => {
                    let owner = meta
                        .types
                        .len()
                        .checked_sub(1)
                        .ok_or_else(|| bad("field before any type"))?;
                    let shape = match *shape {
                        "o" => Shape::Single,
                        "l" => Shape::List,
                        "m" => Shape::Map,
                        _ => return Err(bad("unknown shape")),
                    };
                    let strategy = match *strategy {
                        "-" => Strategy::default(),
                        "merge" => Strategy {
                            merge: true,
                            ..Strategy::default()
                        },
                        "replace" => Strategy {
                            replace: true,
                            ..Strategy::default()
                        },
                        "retainKeys" => Strategy {
                            retain_keys: true,
                            ..Strategy::default()
                        },
                        "merge,retainKeys" => Strategy {
                            merge: true,
                            retain_keys: true,
                            ..Strategy::default()
                        },
                        _ => return Err(bad("unknown strategy")),
                    };
                    pending.push((
                        owner,
                        (*json).to_owned(),
                        (*ty).to_owned(),
                        shape,
                        strategy,
                        rest.first().map(|k| (*k).to_owned()),
                    ));
                }
                _ => return Err(bad("unknown line")),
            }
        }
        for (owner, json, ty, shape, strategy, merge_key) in pending {
            let ty =
                match ty.as_str() {
                    "-" => None,
                    name => Some(*meta.by_name.get(name).ok_or_else(|| {
                        format!("meta.txt: {json} refers to unknown type {name}")
                    })?),
                };
            let field = FieldMeta {
                ty,
                shape,
                strategy,
                merge_key,
            };
            if let Some(owner) = meta.types.get_mut(owner) {
                owner.fields.insert(json, field);
            }
        }
        for (api_version, kind, ty) in kinds {
            let index = *meta
                .by_name
                .get(&ty)
                .ok_or_else(|| format!("meta.txt: kind {kind} refers to unknown type {ty}"))?;
            meta.by_kind.insert((api_version, kind), index);
        }
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_metadata_parses_and_knows_pods() {
        let meta = PatchMeta::parse(META_TEXT).expect("meta.txt parses");
        let pod = meta.root("v1", "Pod");
        let spec = pod.field(&meta, "spec");
        let containers = spec.node.field(&meta, "containers");
        assert_eq!(containers.shape, Shape::List);
        assert!(containers.strategy.merge);
        assert_eq!(containers.merge_key, Some("name"));
        let ports = containers.node.field(&meta, "ports");
        assert_eq!(ports.merge_key, Some("containerPort"));
        let volumes = spec.node.field(&meta, "volumes");
        assert_eq!(volumes.strategy.tag(), Some("merge,retainKeys"));
        let tolerations = spec.node.field(&meta, "tolerations");
        assert_eq!(tolerations.strategy.tag(), None);
        let deployment = meta.root("apps/v1", "Deployment");
        let strategy = deployment
            .field(&meta, "spec")
            .node
            .field(&meta, "strategy");
        assert_eq!(strategy.strategy.tag(), Some("retainKeys"));
        let finalizers = pod.field(&meta, "metadata").node.field(&meta, "finalizers");
        assert!(finalizers.strategy.merge && finalizers.merge_key.is_none());
        assert!(matches!(
            meta.root("example.com/v1", "Widget"),
            Node::Untyped
        ));
    }

    #[test]
    fn malformed_metadata_is_an_error_not_a_panic() {
        for text in [
            "F a - o -",
            "T x\nF a - q -",
            "T x\nF a y o -",
            "K v1 X y",
            "Z",
        ] {
            assert!(PatchMeta::parse(text).is_err(), "{text:?}");
        }
        assert_eq!(
            openapi_name("k8s.io.api.core.v1.Pod"),
            "io.k8s.api.core.v1.Pod"
        );
    }
}
