//! Small, total helpers the printers share: tolerant JSON access (a missing
//! or mistyped field reads as Go's zero value), timestamps and kube's
//! `HumanDuration`, and the label and selector renderings kubectl shows.

use jiff::Timestamp;
use serde_json::{Map, Value};

/// Placeholder kube prints for an empty list-like cell.
pub(crate) const NONE: &str = "<none>";
/// Placeholder kube prints for a missing timestamp.
pub(crate) const UNKNOWN: &str = "<unknown>";
/// Placeholder kube prints for an unset optional field.
pub(crate) const UNSET: &str = "<unset>";

/// The value at `path`, treating JSON `null` like a missing field (a nil
/// pointer in Go).
pub(crate) fn get<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut current = value;
    for key in path {
        current = current.as_object()?.get(*key)?;
    }
    (!current.is_null()).then_some(current)
}

/// The string at `path`, if present and a string.
pub(crate) fn opt_str<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(value, path)?.as_str()
}

/// The string at `path`, or `""` like an unset Go string.
pub(crate) fn str_at<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    opt_str(value, path).unwrap_or("")
}

/// The integer at `path`, if present and integral.
pub(crate) fn opt_int(value: &Value, path: &[&str]) -> Option<i64> {
    as_int(get(value, path)?)
}

/// The integer at `path`, or 0 like an unset Go integer.
pub(crate) fn int_at(value: &Value, path: &[&str]) -> i64 {
    opt_int(value, path).unwrap_or(0)
}

/// Reads a JSON number as an integer; whole floats count, anything else
/// does not.
pub(crate) fn as_int(value: &Value) -> Option<i64> {
    if let Some(i) = value.as_i64() {
        return Some(i);
    }
    if let Some(u) = value.as_u64() {
        return Some(i64::try_from(u).unwrap_or(i64::MAX));
    }
    let f = value.as_f64()?;
    // The range check makes the cast exact.
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e18).then_some(f as i64)
}

/// The boolean at `path`, if present and a boolean.
pub(crate) fn opt_bool(value: &Value, path: &[&str]) -> Option<bool> {
    get(value, path)?.as_bool()
}

/// The array at `path`, or an empty slice.
pub(crate) fn list_at<'a>(value: &'a Value, path: &[&str]) -> &'a [Value] {
    get(value, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The object at `path`, if present and an object.
pub(crate) fn map_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Map<String, Value>> {
    get(value, path)?.as_object()
}

/// Number of entries of the map at `path` (0 when absent).
pub(crate) fn map_len(value: &Value, path: &[&str]) -> i64 {
    map_at(value, path).map_or(0, |m| i64::try_from(m.len()).unwrap_or(i64::MAX))
}

/// Whether the field is present as an object (a non-nil Go pointer to a
/// struct, such as `state.running`).
pub(crate) fn has_object(value: &Value, path: &[&str]) -> bool {
    map_at(value, path).is_some()
}

/// `metadata.name`.
pub(crate) fn name(object: &Value) -> &str {
    str_at(object, &["metadata", "name"])
}

/// Parses a `metav1.Time`/`MicroTime` string. Go's zero time
/// (`0001-01-01T00:00:00Z`) counts as unset, as `Time.IsZero` does.
pub(crate) fn parse_time(value: Option<&Value>) -> Option<Timestamp> {
    let text = value?.as_str()?;
    let ts: Timestamp = text.parse().ok()?;
    (ts.as_second() != GO_ZERO_TIME_UNIX).then_some(ts)
}

/// Unix seconds of Go's zero `time.Time`.
const GO_ZERO_TIME_UNIX: i64 = -62_135_596_800;

/// The timestamp at `path`.
pub(crate) fn time_at(value: &Value, path: &[&str]) -> Option<Timestamp> {
    parse_time(get(value, path))
}

/// kube's `translateTimestampSince`: the age of `ts` or `<unknown>`.
pub(crate) fn since(ts: Option<Timestamp>, now: Timestamp) -> String {
    match ts {
        Some(ts) => human_duration(now.as_nanosecond() - ts.as_nanosecond()),
        None => UNKNOWN.to_owned(),
    }
}

/// The AGE cell: time since `metadata.creationTimestamp`.
pub(crate) fn age(object: &Value, now: Timestamp) -> String {
    since(time_at(object, &["metadata", "creationTimestamp"]), now)
}

const SECOND: i64 = 1_000_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;

/// kube's `duration.HumanDuration`: two or three significant figures, from
/// seconds up to years. Takes nanoseconds and saturates to Go's 64-bit
/// `time.Duration` range the way `time.Since` does.
pub(crate) fn human_duration(nanos: i128) -> String {
    let d = i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX });
    // Integer division truncates toward zero, like Go's int(d.Seconds()).
    let seconds = d / SECOND;
    if seconds < -1 {
        // More than the two seconds of tolerated clock skew in the future.
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = d / MINUTE;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = d / HOUR;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{h}h")
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        let dy = days % 365;
        return if dy == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{dy}d")
        };
    }
    format!("{years}y")
}

/// A map's values rendered as strings (non-string values as their JSON).
fn entry_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// kube's `labels.FormatLabels`: sorted `k=v` pairs or `<none>`.
pub(crate) fn format_labels(map: Option<&Map<String, Value>>) -> String {
    let mut pairs: Vec<String> = map
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", entry_text(v)))
        .collect();
    pairs.sort();
    if pairs.is_empty() {
        NONE.to_owned()
    } else {
        pairs.join(",")
    }
}

/// One selector requirement, as `labels.Requirement` prints it.
struct Requirement {
    key: String,
    text: String,
}

/// kube's `metav1.LabelSelectorAsSelector(..).String()`: `Ok("")` for a
/// nil or empty selector, `Err` for one kube would refuse to convert.
pub(crate) fn selector_string(selector: Option<&Value>) -> Result<String, ()> {
    let Some(selector) = selector else {
        return Ok(String::new());
    };
    let Some(selector) = selector.as_object() else {
        return Err(());
    };
    let labels = selector.get("matchLabels").and_then(Value::as_object);
    let expressions = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut requirements = Vec::new();
    for (key, value) in labels.into_iter().flatten() {
        let value = value.as_str().ok_or(())?;
        if !is_qualified_name(key) || !is_label_value(value) {
            return Err(());
        }
        requirements.push(Requirement {
            key: key.clone(),
            text: format!("{key}={value}"),
        });
    }
    for expression in expressions {
        let key = str_at(expression, &["key"]);
        let mut values = Vec::new();
        for v in list_at(expression, &["values"]) {
            let v = v.as_str().ok_or(())?;
            if !is_label_value(v) {
                return Err(());
            }
            values.push(v);
        }
        values.sort_unstable();
        if !is_qualified_name(key) {
            return Err(());
        }
        let text = match str_at(expression, &["operator"]) {
            "In" if !values.is_empty() => format!("{key} in ({})", values.join(",")),
            "NotIn" if !values.is_empty() => format!("{key} notin ({})", values.join(",")),
            "Exists" if values.is_empty() => key.to_owned(),
            "DoesNotExist" if values.is_empty() => format!("!{key}"),
            _ => return Err(()),
        };
        requirements.push(Requirement {
            key: key.to_owned(),
            text,
        });
    }
    requirements.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(requirements
        .into_iter()
        .map(|r| r.text)
        .collect::<Vec<_>>()
        .join(","))
}

/// kube's `metav1.FormatLabelSelector`: `<none>` when empty, `<error>`
/// when invalid.
pub(crate) fn format_label_selector(selector: Option<&Value>) -> String {
    match selector_string(selector) {
        Ok(s) if s.is_empty() => NONE.to_owned(),
        Ok(s) => s,
        Err(()) => "<error>".to_owned(),
    }
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63 characters.
fn is_label_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    let edge_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    !bytes.is_empty()
        && bytes.len() <= 63
        && edge_ok(bytes.first())
        && edge_ok(bytes.last())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A label value: empty or a label name.
fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_label_name(s)
}

/// A DNS-1123 subdomain (the optional prefix of a label key).
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|part| {
            let bytes = part.as_bytes();
            let edge_ok =
                |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            edge_ok(bytes.first())
                && edge_ok(bytes.last())
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        })
}

/// A label key: `[prefix/]name`.
fn is_qualified_name(s: &str) -> bool {
    match s.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_label_name(name),
        None => is_label_name(s),
    }
}

/// kube's `layoutContainerCells`: container names and images, comma-joined.
pub(crate) fn container_cells(pod_spec_path: &[&str], object: &Value) -> (String, String) {
    let containers = list_at(object, pod_spec_path);
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, &["image"])).collect();
    (names.join(","), images.join(","))
}

/// Load-balancer ingress points (IP, else hostname), sorted and unique, as
/// kube's `loadBalancerStatusStringer` in wide mode (the server always
/// renders wide, so nothing is clipped).
pub(crate) fn load_balancer_ingress(object: &Value) -> String {
    let mut points: Vec<&str> = list_at(object, &["status", "loadBalancer", "ingress"])
        .iter()
        .filter_map(|ingress| {
            let ip = str_at(ingress, &["ip"]);
            let host = str_at(ingress, &["hostname"]);
            if !ip.is_empty() {
                Some(ip)
            } else if !host.is_empty() {
                Some(host)
            } else {
                None
            }
        })
        .collect();
    points.sort_unstable();
    points.dedup();
    points.join(",")
}

/// The first `max` items joined by `,`, plus ` + N more...` when there
/// were more, or `<unset>` when there were none (kube's
/// `listWithMoreString`).
pub(crate) fn list_with_more(items: &[String], max: usize) -> String {
    let shown = items
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(",");
    if items.len() > max {
        format!("{shown} + {} more...", items.len() - max)
    } else if shown.is_empty() {
        UNSET.to_owned()
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hd(seconds: i128) -> String {
        human_duration(seconds * 1_000_000_000)
    }

    #[test]
    fn human_duration_matches_kube_at_every_boundary() {
        let m = 60;
        let h = 60 * m;
        let d = 24 * h;
        let y = 365 * d;
        let cases: &[(i128, &str)] = &[
            (-3, "<invalid>"),
            (-2, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (1, "1s"),
            (45, "45s"),
            (59, "59s"),
            (60, "60s"),
            (119, "119s"),
            (120, "2m"),
            (121, "2m1s"),
            (5 * m + 30, "5m30s"),
            (9 * m + 59, "9m59s"),
            (10 * m, "10m"),
            (10 * m + 30, "10m"),
            (179 * m + 59, "179m"),
            (3 * h, "3h"),
            (3 * h + 59, "3h"),
            (3 * h + m, "3h1m"),
            (7 * h + 59 * m + 59, "7h59m"),
            (8 * h, "8h"),
            (8 * h + 30 * m, "8h"),
            (47 * h + 59 * m, "47h"),
            (48 * h, "2d"),
            (2 * d + 5 * h, "2d5h"),
            (7 * d + 23 * h + 59 * m, "7d23h"),
            (8 * d, "8d"),
            (8 * d + 23 * h, "8d"),
            (729 * d + 23 * h, "729d"),
            (2 * y, "2y"),
            (2 * y + 45 * d, "2y45d"),
            (7 * y + 364 * d, "7y364d"),
            (8 * y, "8y"),
            (8 * y + 100 * d, "8y"),
            (123 * y, "123y"),
        ];
        for (seconds, want) in cases {
            assert_eq!(hd(*seconds), *want, "{seconds}s");
        }
    }

    #[test]
    fn human_duration_truncates_fractions_and_saturates() {
        // -1.999s truncates to -1s, which is tolerated skew.
        assert_eq!(human_duration(-1_999_999_999), "0s");
        assert_eq!(human_duration(-2_000_000_000), "<invalid>");
        assert_eq!(human_duration(-500_000_000), "0s");
        assert_eq!(human_duration(1_999_999_999), "1s");
        // Go durations saturate at ~292 years.
        assert_eq!(human_duration(i128::MAX), "292y");
        assert_eq!(human_duration(i128::MIN), "<invalid>");
    }

    #[test]
    fn timestamps_parse_leniently_and_go_zero_is_unknown() {
        let now: Timestamp = "2024-01-01T00:10:00Z".parse().unwrap();
        let obj = |ts: Value| json!({"metadata": {"creationTimestamp": ts}});
        assert_eq!(age(&obj(json!("2024-01-01T00:00:00Z")), now), "10m");
        assert_eq!(age(&obj(json!("2024-01-01T01:00:00+01:00")), now), "10m");
        assert_eq!(age(&obj(json!("2024-01-01T00:09:59.5Z")), now), "0s");
        assert_eq!(age(&obj(json!("0001-01-01T00:00:00Z")), now), UNKNOWN);
        assert_eq!(age(&obj(json!("yesterday")), now), UNKNOWN);
        assert_eq!(age(&obj(json!(17)), now), UNKNOWN);
        assert_eq!(age(&obj(Value::Null), now), UNKNOWN);
        assert_eq!(age(&json!("not an object"), now), UNKNOWN);
    }

    #[test]
    fn accessors_read_wrong_types_as_zero_values() {
        let v = json!({"a": {"s": "x", "n": 3, "f": 2.0, "bad": 2.5, "null": null, "list": [1]}});
        assert_eq!(str_at(&v, &["a", "s"]), "x");
        assert_eq!(str_at(&v, &["a", "n"]), "");
        assert_eq!(int_at(&v, &["a", "n"]), 3);
        assert_eq!(int_at(&v, &["a", "f"]), 2);
        assert_eq!(int_at(&v, &["a", "bad"]), 0);
        assert_eq!(int_at(&v, &["a", "s", "deeper"]), 0);
        assert!(get(&v, &["a", "null"]).is_none());
        assert_eq!(list_at(&v, &["a", "list"]).len(), 1);
        assert!(list_at(&v, &["a", "s"]).is_empty());
    }

    #[test]
    fn labels_and_selectors_render_like_kube() {
        let labels = json!({"b": "2", "a": "1"});
        assert_eq!(format_labels(labels.as_object()), "a=1,b=2");
        assert_eq!(format_labels(None), NONE);
        assert_eq!(format_labels(json!({}).as_object()), NONE);

        assert_eq!(format_label_selector(None), NONE);
        assert_eq!(format_label_selector(Some(&json!({}))), NONE);
        let selector = json!({
            "matchLabels": {"app": "web", "tier": "front"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                {"key": "zone", "operator": "NotIn", "values": ["b"]},
                {"key": "gpu", "operator": "Exists"},
                {"key": "spot", "operator": "DoesNotExist"}
            ]
        });
        assert_eq!(
            format_label_selector(Some(&selector)),
            "app=web,env in (dev,prod),gpu,!spot,tier=front,zone notin (b)"
        );
        let bad_op = json!({"matchExpressions": [{"key": "a", "operator": "Near"}]});
        assert_eq!(format_label_selector(Some(&bad_op)), "<error>");
        let empty_in = json!({"matchExpressions": [{"key": "a", "operator": "In"}]});
        assert_eq!(format_label_selector(Some(&empty_in)), "<error>");
        let bad_key = json!({"matchLabels": {"-bad": "x"}});
        assert_eq!(format_label_selector(Some(&bad_key)), "<error>");
        let prefixed = json!({"matchLabels": {"app.kubernetes.io/name": "x"}});
        assert_eq!(
            format_label_selector(Some(&prefixed)),
            "app.kubernetes.io/name=x"
        );
    }

    #[test]
    fn list_with_more_counts_the_hidden_items() {
        let items: Vec<String> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(list_with_more(&items, 3), "a,b,c + 2 more...");
        assert_eq!(list_with_more(&items[..3], 3), "a,b,c");
        assert_eq!(list_with_more(&[], 3), UNSET);
    }
}
