//! The query parameters of resource requests, parsed once with clear
//! errors for values that cannot be right.

use crate::error::ApiError;

/// Query parameters understood on resource paths; unknown ones are ignored,
/// as kube-apiserver does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// `labelSelector`.
    pub label_selector: Option<String>,
    /// `fieldSelector`.
    pub field_selector: Option<String>,
    /// `limit`.
    pub limit: Option<usize>,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`.
    pub resource_version_match: Option<String>,
    /// `watch=true|1`.
    pub watch: bool,
    /// `allowWatchBookmarks=true`.
    pub allow_watch_bookmarks: bool,
    /// `sendInitialEvents`.
    pub send_initial_events: Option<bool>,
    /// `timeoutSeconds`.
    pub timeout_seconds: Option<u64>,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `includeObject` (tables).
    pub include_object: Option<String>,
    /// `gracePeriodSeconds` (deletes).
    pub grace_period_seconds: Option<i64>,
    /// `propagationPolicy` (deletes).
    pub propagation_policy: Option<String>,
    /// `fieldManager` (writes).
    pub field_manager: Option<String>,
    /// `force` (server-side apply).
    pub force: bool,
    /// `fieldValidation`: what to do about unknown fields in a write.
    pub field_validation: FieldValidation,
}

/// How a write treats fields its kind does not know.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and say so in a `Warning` header (the default).
    #[default]
    Warn,
    /// Refuse the write with 400.
    Strict,
}

pub(crate) fn parse_bool(name: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" | "1" | "True" => Ok(true),
        "false" | "0" | "False" | "" => Ok(false),
        other => Err(ApiError::bad_request(format!(
            "invalid value for {name}: {other:?} is not a boolean"
        ))),
    }
}

pub(crate) fn parse_number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ApiError> {
    value.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "invalid value for {name}: {value:?} is not a valid number"
        ))
    })
}

impl Query {
    /// Parses a raw query string (`None` when the URL has none).
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut query = Self::default();
        let Some(raw) = raw else {
            return Ok(query);
        };
        let mut request_timeout = None;
        for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
            let value = value.into_owned();
            match key.as_ref() {
                "labelSelector" => query.label_selector = Some(value),
                "fieldSelector" => query.field_selector = Some(value),
                "limit" => {
                    query.limit = match value.as_str() {
                        "" | "0" => None,
                        v => Some(parse_number("limit", v)?),
                    }
                }
                "continue" => query.continue_token = Some(value).filter(|v| !v.is_empty()),
                "resourceVersion" => query.resource_version = Some(value).filter(|v| !v.is_empty()),
                "resourceVersionMatch" => {
                    query.resource_version_match = Some(value).filter(|v| !v.is_empty())
                }
                "watch" => query.watch = parse_bool("watch", &value)?,
                "allowWatchBookmarks" => {
                    query.allow_watch_bookmarks = parse_bool("allowWatchBookmarks", &value)?
                }
                "sendInitialEvents" => {
                    query.send_initial_events = Some(parse_bool("sendInitialEvents", &value)?)
                }
                "timeoutSeconds" => {
                    query.timeout_seconds = Some(parse_number("timeoutSeconds", &value)?)
                }
                // A Go duration (`30s`, `1m0s`, `1.5s`), as client-go sends
                // it; like kube-apiserver, a value it cannot parse is ignored.
                "timeout" => request_timeout = go_duration_seconds(&value),
                "dryRun" => match value.as_str() {
                    "All" => query.dry_run = true,
                    "" => {}
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "dryRun: Unsupported value: {other:?}: supported values: \"All\""
                        )))
                    }
                },
                "includeObject" => query.include_object = Some(value),
                "gracePeriodSeconds" => {
                    query.grace_period_seconds = Some(parse_number("gracePeriodSeconds", &value)?)
                }
                "propagationPolicy" => query.propagation_policy = Some(value),
                "fieldManager" => query.field_manager = Some(value),
                "force" => query.force = parse_bool("force", &value)?,
                "fieldValidation" => {
                    query.field_validation = match value.as_str() {
                        "Ignore" => FieldValidation::Ignore,
                        "Warn" | "" => FieldValidation::Warn,
                        "Strict" => FieldValidation::Strict,
                        other => {
                            return Err(ApiError::bad_request(format!(
                                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
                            )))
                        }
                    }
                }
                _ => {}
            }
        }
        // `timeoutSeconds` is the watch's own limit and wins over `timeout`.
        if query.timeout_seconds.is_none() {
            query.timeout_seconds = request_timeout;
        }
        Ok(query)
    }
}

/// Parses a Go duration (`1h2m3.5s`, `500ms`) into whole seconds, rounded
/// up so a short positive timeout never becomes "no time at all".
fn go_duration_seconds(text: &str) -> Option<u64> {
    if text == "0" {
        return Some(0);
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.is_empty() {
        return None;
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        nanos += number * scale;
    }
    Some((nanos / 1e9).ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_parameters_clients_send() {
        let q = Query::parse(Some(
            "labelSelector=app%3Dweb&limit=500&watch=1&allowWatchBookmarks=true&resourceVersion=12&timeoutSeconds=30&dryRun=All",
        ))
        .expect("valid");
        assert_eq!(q.label_selector.as_deref(), Some("app=web"));
        assert_eq!(q.limit, Some(500));
        assert!(q.watch && q.allow_watch_bookmarks && q.dry_run);
        assert_eq!(q.resource_version.as_deref(), Some("12"));
        assert_eq!(q.timeout_seconds, Some(30));
        assert_eq!(Query::parse(None).expect("empty"), Query::default());
    }

    #[test]
    fn request_timeouts_are_go_durations() {
        let secs = |raw: &str| Query::parse(Some(raw)).expect(raw).timeout_seconds;
        assert_eq!(secs("timeout=30s"), Some(30));
        assert_eq!(secs("timeout=1m0s"), Some(60));
        assert_eq!(secs("timeout=1h0m30s"), Some(3630));
        assert_eq!(secs("timeout=1.5s"), Some(2));
        assert_eq!(secs("timeout=250ms"), Some(1));
        assert_eq!(secs("timeout=0"), Some(0));
        assert_eq!(
            secs("timeout=soon"),
            None,
            "ignored, as kube-apiserver does"
        );
        assert_eq!(secs("timeout=10"), None, "a Go duration needs a unit");
        assert_eq!(secs("timeoutSeconds=5&timeout=1m0s"), Some(5));
        assert_eq!(secs("timeout=1m0s&timeoutSeconds=5"), Some(5));
    }

    #[test]
    fn bad_values_are_400s() {
        for bad in [
            "limit=-1",
            "limit=x",
            "watch=maybe",
            "dryRun=Some",
            "timeoutSeconds=1h",
        ] {
            let err = Query::parse(Some(bad)).expect_err(bad);
            assert_eq!(err.code.as_u16(), 400, "{bad}");
        }
    }
}
