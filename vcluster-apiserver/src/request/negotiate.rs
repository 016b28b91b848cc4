//! Content negotiation: what the client asked to receive (`Accept`) and
//! what it sent (`Content-Type`).

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use serde_json::Value;

use crate::error::ApiError;

/// The largest request body accepted, as kube-apiserver's default (3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The form a read answers in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Representation {
    /// The objects themselves.
    Object,
    /// A `meta.k8s.io/v1` Table (what `kubectl get` prints).
    Table,
    /// `PartialObjectMetadata(List)`: metadata only.
    Metadata,
}

/// One media range of an `Accept` header.
struct MediaRange<'a> {
    essence: &'a str,
    params: Vec<(&'a str, &'a str)>,
}

impl<'a> MediaRange<'a> {
    fn param(&self, name: &str) -> Option<&'a str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    fn is_json(&self) -> bool {
        matches!(self.essence, "application/json" | "application/*" | "*/*")
    }
}

fn media_ranges(accept: &str) -> impl Iterator<Item = MediaRange<'_>> {
    accept.split(',').filter_map(|range| {
        let mut parts = range.split(';').map(str::trim);
        let essence = parts.next().filter(|e| !e.is_empty())?;
        let params = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
            .collect();
        Some(MediaRange { essence, params })
    })
}

/// Picks the representation of a get, list or watch answer.
pub fn representation(accept: Option<&str>) -> Result<Representation, ApiError> {
    pick(accept, true).ok_or_else(|| {
        ApiError::not_acceptable(format!(
            "only the following media types are accepted: application/json, application/json;as=Table;v=v1;g=meta.k8s.io, application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io (asked for {:?})",
            accept.unwrap_or_default()
        ))
    })
}

/// [`representation`] for a resource with no table form (upstream's REST
/// storages without a `TableConvertor`: the reviews, TokenRequest), where
/// a client that accepts only a Table is refused, as kube-apiserver does.
pub fn representation_without_table(accept: Option<&str>) -> Result<Representation, ApiError> {
    pick(accept, false).ok_or_else(|| {
        ApiError::not_acceptable(
            "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf",
        )
    })
}

/// The first acceptable representation of `accept`; Tables only when
/// `tables`.
fn pick(accept: Option<&str>, tables: bool) -> Option<Representation> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Some(Representation::Object);
    };
    for range in media_ranges(accept) {
        if !range.is_json() {
            continue;
        }
        match (range.param("as"), range.param("g"), range.param("v")) {
            (None, _, _) => return Some(Representation::Object),
            (Some("Table"), Some("meta.k8s.io"), Some("v1" | "v1beta1")) if tables => {
                return Some(Representation::Table)
            }
            (
                Some("PartialObjectMetadata" | "PartialObjectMetadataList"),
                Some("meta.k8s.io"),
                Some("v1" | "v1beta1"),
            ) => return Some(Representation::Metadata),
            _ => continue,
        }
    }
    None
}

/// Whether the client asked for aggregated discovery (`APIGroupDiscoveryList`).
pub fn wants_aggregated_discovery(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    for range in media_ranges(accept) {
        if !range.is_json() {
            continue;
        }
        match (range.param("as"), range.param("g"), range.param("v")) {
            (Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io"), Some("v2")) => {
                return true
            }
            (None, _, _) => return false,
            _ => continue,
        }
    }
    false
}

/// How a request body is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json` (also when no content type is sent).
    Json,
    /// `application/yaml`.
    Yaml,
    /// `application/merge-patch+json` (RFC 7386).
    MergePatch,
    /// `application/json-patch+json` (RFC 6902).
    JsonPatch,
    /// `application/strategic-merge-patch+json`.
    StrategicMergePatch,
    /// `application/apply-patch+yaml` (server-side apply).
    ApplyPatch,
    /// `application/vnd.kubernetes.protobuf`: what kubectl's typed
    /// commands send for built-in kinds.
    Protobuf,
}

/// Reads the `Content-Type` of a request.
pub fn body_format(content_type: Option<&str>) -> Result<BodyFormat, ApiError> {
    let essence = content_type
        .and_then(|ct| ct.split(';').next())
        .map(str::trim)
        .unwrap_or("");
    Ok(match essence.to_ascii_lowercase().as_str() {
        "" | "application/json" | "*/*" => BodyFormat::Json,
        "application/yaml" | "application/x-yaml" | "text/yaml" => BodyFormat::Yaml,
        "application/merge-patch+json" => BodyFormat::MergePatch,
        "application/json-patch+json" => BodyFormat::JsonPatch,
        "application/strategic-merge-patch+json" => BodyFormat::StrategicMergePatch,
        "application/apply-patch+yaml" => BodyFormat::ApplyPatch,
        crate::protobuf::PROTOBUF_CONTENT_TYPE => BodyFormat::Protobuf,
        _ => return Err(ApiError::unsupported_media_type()),
    })
}

/// Decodes a Kubernetes protobuf body into the JSON a JSON client would
/// have sent; kinds without a protobuf form are a 415, malformed input 400.
pub fn decode_protobuf(body: &Bytes) -> Result<Value, ApiError> {
    crate::protobuf::decode_object(body).map_err(|err| {
        if err.is_unsupported() {
            ApiError::new(
                http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                format!("the protobuf body cannot be decoded: {err}; send JSON instead"),
            )
        } else {
            ApiError::bad_request(format!("the protobuf body is not valid: {err}"))
        }
    })
}

/// Decodes a JSON or YAML document into a JSON value; malformed input is a 400.
pub fn decode_document(body: &Bytes, yaml: bool) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    let parsed = if yaml {
        check_yaml_flow_depth(body)
            .and_then(|()| serde_yaml::from_slice::<Value>(body).map_err(|e| e.to_string()))
    } else {
        serde_json::from_slice::<Value>(body).map_err(|e| e.to_string())
    };
    parsed.map_err(|why| {
        let format = if yaml { "YAML" } else { "JSON" };
        ApiError::bad_request(format!("the request body is not valid {format}: {why}"))
    })
}

/// Deepest flow nesting (`[`, `{`) a YAML body may have. The decoder
/// refuses documents nested deeper than 128 levels anyway, but its scanner
/// spends time proportional to the nesting depth on every token first, so
/// a 3 MiB body of brackets would hold a worker thread for minutes.
const MAX_YAML_FLOW_DEPTH: usize = 128;

/// Refuses YAML whose flow collections may nest deeper than
/// [`MAX_YAML_FLOW_DEPTH`], in one linear pass before the parser sees it.
///
/// The estimate never falls below the real depth, however the document is
/// crafted: every `[` and `{` counts up, and a `]` or `}` only counts down
/// where it cannot be inside a quoted scalar, a comment or a tag under any
/// reading of the document (quotes, `#` and `!` are taken as starting one
/// wherever the YAML grammar could start it). Ordinary documents stay far
/// below the limit.
fn check_yaml_flow_depth(body: &[u8]) -> Result<(), String> {
    let openers = body.iter().filter(|c| matches!(c, b'[' | b'{')).count();
    if openers <= MAX_YAML_FLOW_DEPTH {
        return Ok(());
    }
    let blank = |c: u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    let mut depth = 0usize;
    // The last byte that some quoted scalar could still cover.
    let mut quoted_until: Option<usize> = None;
    let mut in_comment = false;
    let mut in_tag = false;
    for (i, &c) in body.iter().enumerate() {
        if c == b'\n' {
            in_comment = false;
        }
        if blank(c) {
            in_tag = false;
        }
        let prev = i.checked_sub(1).map(|p| body[p]);
        // A token can start here (anywhere else a quote, `#` or `!` is
        // part of a plain scalar, or the document does not parse).
        let may_start = prev.is_none_or(|p| blank(p) || b"[{,:".contains(&p));
        let covered = in_comment || in_tag || quoted_until.is_some_and(|end| end >= i);
        match c {
            b'"' if may_start => {
                // Ends at the next `"` not escaped by a backslash.
                let mut j = i + 1;
                while j < body.len() && body[j] != b'"' {
                    j += if body[j] == b'\\' { 2 } else { 1 };
                }
                quoted_until = quoted_until.max(Some(j));
            }
            b'\'' if may_start => {
                // Ends at the next `'` that is not a doubled `''`.
                let mut j = i + 1;
                while j < body.len() {
                    if body[j] != b'\'' {
                        j += 1;
                    } else if body.get(j + 1) == Some(&b'\'') {
                        j += 2;
                    } else {
                        break;
                    }
                }
                quoted_until = quoted_until.max(Some(j));
            }
            b'#' if prev.is_none_or(blank) => in_comment = true,
            b'!' if may_start => in_tag = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_YAML_FLOW_DEPTH {
                    return Err(format!(
                        "flow collections nest deeper than {MAX_YAML_FLOW_DEPTH} levels"
                    ));
                }
            }
            b']' | b'}' if !covered => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Serialises `value` as a JSON response.
pub(crate) fn json(code: StatusCode, value: &Value) -> Response {
    json_with_type(code, value, "application/json")
}

/// Serialises `value` with an explicit content type (tables, discovery).
pub(crate) fn json_with_type(
    code: StatusCode,
    value: &Value,
    content_type: &'static str,
) -> Response {
    match serde_json::to_vec(&super::wire_order::UpstreamOrder(value)) {
        Ok(bytes) => (
            code,
            [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            bytes,
        )
            .into_response(),
        Err(err) => {
            ApiError::internal(format!("response cannot be encoded: {err}")).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_get_asks_for_tables() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            representation(Some(kubectl)).expect("ok"),
            Representation::Table
        );
        assert_eq!(representation(None).expect("ok"), Representation::Object);
        assert_eq!(
            representation(Some("application/json")).expect("ok"),
            Representation::Object
        );
        assert_eq!(
            representation(Some(
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
            ))
            .expect("ok"),
            Representation::Metadata
        );
        assert!(representation(Some("application/vnd.kubernetes.protobuf")).is_err());
        assert_eq!(
            representation(Some(
                "application/vnd.kubernetes.protobuf, application/json"
            ))
            .expect("ok"),
            Representation::Object
        );
    }

    #[test]
    fn aggregated_discovery_is_detected() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert!(wants_aggregated_discovery(Some(kubectl)));
        assert!(!wants_aggregated_discovery(Some("application/json")));
        assert!(!wants_aggregated_discovery(None));
    }

    #[test]
    fn bodies_decode_or_fail_with_400() {
        assert_eq!(
            body_format(Some("application/json; charset=utf-8")).expect("ok"),
            BodyFormat::Json
        );
        assert_eq!(body_format(None).expect("ok"), BodyFormat::Json);
        assert_eq!(
            body_format(Some("application/vnd.kubernetes.protobuf")).expect("protobuf"),
            BodyFormat::Protobuf
        );
        assert_eq!(
            body_format(Some("application/xml"))
                .expect_err("415")
                .code
                .as_u16(),
            415
        );
        let yaml = decode_document(&Bytes::from_static(b"a: 1\nb: [x]\n"), true).expect("yaml");
        assert_eq!(yaml["b"][0], "x");
        assert_eq!(
            decode_document(&Bytes::from_static(b"{"), false)
                .expect_err("bad")
                .code
                .as_u16(),
            400
        );
        assert!(decode_document(&Bytes::from_static(b"  "), false).is_err());
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(
            decode_document(&Bytes::from(deep), false).is_err(),
            "nesting is bounded"
        );
    }

    #[test]
    fn deep_yaml_flow_nesting_is_refused_before_parsing() {
        let deep = |prefix: &str, level: &str, depth: usize| {
            Bytes::from(format!(
                "{prefix}{}{}",
                level.repeat(depth),
                "]".repeat(depth)
            ))
        };
        // Quadratic for the YAML scanner: must fail fast, without parsing.
        let started = std::time::Instant::now();
        for body in [
            deep("a: ", "[", 1_000_000),
            deep("a: ", "[\"]\", ", 300_000),
            deep("a: ", "['x]', ", 300_000),
            deep("a: ", "[ # ]\n", 300_000),
            deep("a: ", "[!t] ", 300_000),
            deep("a: ", "[&a ']', ", 300_000),
            deep("a: b'\nc: ", "[", 300_000),
        ] {
            let err = decode_document(&body, true).expect_err("too deep");
            assert!(err.message.contains("nest deeper than"), "{}", err.message);
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // Shallow flow collections, quotes and comments are fine, however many.
        let many: String = (0..2_000)
            .map(|i| format!("k{i}: {{a: [\"]\", 'it''s ]', x]}} # ]]\n"))
            .collect();
        let value = decode_document(&Bytes::from(many), true).expect("shallow YAML");
        assert_eq!(value["k7"]["a"][1], "it's ]");
        let json_style = format!(
            "{{\"items\": [{}1]}}",
            "[1], {\"a\": \"]\"}, ".repeat(2_000)
        );
        decode_document(&Bytes::from(json_style), true).expect("JSON-style YAML");
    }
}
