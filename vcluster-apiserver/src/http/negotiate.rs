//! Content negotiation: what the client asked to receive (`Accept`) and
//! what it sent (`Content-Type`).

use bytes::Bytes;
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
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Representation::Object);
    };
    for range in media_ranges(accept) {
        if !range.is_json() {
            continue;
        }
        match (range.param("as"), range.param("g"), range.param("v")) {
            (None, _, _) => return Ok(Representation::Object),
            (Some("Table"), Some("meta.k8s.io"), Some("v1" | "v1beta1")) => {
                return Ok(Representation::Table)
            }
            (
                Some("PartialObjectMetadata" | "PartialObjectMetadataList"),
                Some("meta.k8s.io"),
                Some("v1" | "v1beta1"),
            ) => return Ok(Representation::Metadata),
            _ => continue,
        }
    }
    Err(ApiError::not_acceptable(format!(
        "only the following media types are accepted: application/json, application/json;as=Table;v=v1;g=meta.k8s.io, application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io (asked for {accept:?})"
    )))
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
        _ => return Err(ApiError::unsupported_media_type(essence)),
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
/// [`MAX_YAML_FLOW_DEPTH`], in one linear pass and before the parser sees
/// it. The estimate never falls below the real depth: every `[` and `{`
/// counts, and a closing bracket only counts down where it cannot be inside
/// a quoted scalar, a comment or a tag under any reading of the document
/// (the union of every place such a token could start). Ordinary documents
/// stay far below the limit.
fn check_yaml_flow_depth(body: &[u8]) -> Result<(), String> {
    let len = body.len();
    let at = |i: usize| body.get(i).copied().unwrap_or(b'\n');
    let blank = |c: u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    // Where a quoted scalar, comment or tag may begin: at the start, after
    // blanks, or after a flow indicator or `:`.
    let may_start = |i: usize| i == 0 || blank(at(i - 1)) || b"[]{},:".contains(&at(i - 1));

    // Precomputed ends, so that every region is found in O(1).
    // The first `"` at or after i that no backslash escapes.
    let mut next_double = vec![len; len + 1];
    // The last quote of the first odd run of `'` at or after i (an even
    // run is only `''` escapes).
    let mut next_single = vec![len; len + 1];
    let mut backslashes_before = vec![0usize; len + 1];
    for i in 0..len {
        backslashes_before[i + 1] = if body[i] == b'\\' { backslashes_before[i] + 1 } else { 0 };
    }
    let mut i = len;
    while i > 0 {
        i -= 1;
        next_double[i] = if body[i] == b'"' && backslashes_before[i] % 2 == 0 {
            i
        } else {
            next_double[i + 1]
        };
        next_single[i] = if body[i] == b'\'' && (i == 0 || body[i - 1] != b'\'') {
            let mut end = i;
            while end + 1 < len && body[end + 1] == b'\'' {
                end += 1;
            }
            if (end - i + 1) % 2 == 1 {
                end
            } else {
                next_single[end + 1]
            }
        } else {
            next_single[i + 1]
        };
    }

    // Mark every region any reading could make a quoted scalar, comment
    // or tag (a difference array: +1 at the start, -1 after the end).
    let mut marks = vec![0i64; len + 2];
    for i in 0..len {
        let end = match body[i] {
            b'"' if may_start(i) => next_double[i + 1],
            b'\'' if may_start(i) => {
                // The rest of the opening run pairs up first.
                let mut run_end = i;
                while run_end + 1 < len && body[run_end + 1] == b'\'' {
                    run_end += 1;
                }
                if (run_end - i) % 2 == 1 {
                    run_end
                } else {
                    next_single[run_end + 1]
                }
            }
            b'#' if i == 0 || blank(at(i - 1)) => (i..len).find(|&j| body[j] == b'\n').unwrap_or(len),
            b'!' if may_start(i) => (i..len).find(|&j| blank(body[j])).unwrap_or(len),
            _ => continue,
        };
        marks[i] += 1;
        marks[end.min(len) + 1] -= 1;
    }

    let mut covered = 0i64;
    let mut depth = 0usize;
    for (i, &c) in body.iter().enumerate() {
        covered += marks[i];
        match c {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_YAML_FLOW_DEPTH {
                    return Err(format!(
                        "flow collections nest deeper than {MAX_YAML_FLOW_DEPTH} levels"
                    ));
                }
            }
            b']' | b'}' if covered == 0 => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
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
            body_format(Some("application/vnd.kubernetes.protobuf"))
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
}
