//! `GET /api/v1/namespaces/<ns>/pods/<name>/log`: checks the pod and the
//! container as kube-apiserver does, then streams from the configured
//! [`PodLogs`](crate::logs::PodLogs) source as `text/plain`.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use futures::StreamExt;
use http::{header, HeaderValue, StatusCode};
use serde_json::Value;

use super::ApiState;
use crate::error::ApiError;
use crate::logs::{LogOptions, PodLogRequest};
use crate::registry::ObjectAddress;
use crate::request::query::{parse_bool, parse_number};
use crate::resources::ResourceInfo;

/// Serves one log request.
pub(super) async fn pod_log(
    state: &Arc<ApiState>,
    pods: Arc<ResourceInfo>,
    namespace: &str,
    name: &str,
    raw_query: Option<&str>,
) -> Result<Response, ApiError> {
    let (requested, options) = parse_query(raw_query)?;
    let address = ObjectAddress {
        resource: pods,
        namespace: Some(namespace.to_owned()),
        name: name.to_owned(),
    };
    let pod = state.registry.get(&address).await?;
    let container = choose_container(&pod, name, requested.as_deref())?;
    let Some(source) = &state.pod_logs else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "this API server has no source of container logs (no kubelet); \
             see ApiServerConfig::pod_logs",
        ));
    };
    let limit = options.limit_bytes;
    let stream = source
        .logs(PodLogRequest {
            namespace: namespace.to_owned(),
            pod_name: name.to_owned(),
            container,
            pod,
            options,
        })
        .await?;
    // The log ends with the server, at the byte limit, or at the source's
    // first error (the status line is already sent: the client sees a
    // short log, as with a kubelet that goes away).
    let shutdown = state.shutdown.clone().cancelled_owned();
    let left = limit.and_then(|l| usize::try_from(l).ok());
    let body = stream
        .take_until(shutdown)
        .take_while(|chunk| {
            if let Err(err) = chunk {
                tracing::warn!(error = %err, "container log stream failed");
            }
            futures::future::ready(chunk.is_ok())
        })
        .filter_map(|chunk| futures::future::ready(chunk.ok().filter(|c| !c.is_empty())))
        .scan(left, |left, mut chunk| {
            let chunk = match left {
                Some(0) => None,
                Some(left) => {
                    chunk.truncate(*left);
                    *left -= chunk.len();
                    Some(chunk)
                }
                None => Some(chunk),
            };
            futures::future::ready(chunk)
        })
        .map(Ok::<_, std::convert::Infallible>);
    let mut response = Response::new(Body::from_stream(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}

/// The container named in the request, or the pod's only one; errors in
/// kube-apiserver's words.
pub(super) fn choose_container(
    pod: &Value,
    pod_name: &str,
    requested: Option<&str>,
) -> Result<String, ApiError> {
    let names = |list: &str| -> Vec<String> {
        pod.pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|c| c.get("name").and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let containers = names("containers");
    let init = names("initContainers");
    let ephemeral = names("ephemeralContainers");
    match requested {
        Some(name) => {
            if containers
                .iter()
                .chain(&init)
                .chain(&ephemeral)
                .any(|c| c == name)
            {
                Ok(name.to_owned())
            } else {
                Err(ApiError::bad_request(format!(
                    "container {name} is not valid for pod {pod_name}"
                )))
            }
        }
        None => match containers.as_slice() {
            [only] => Ok(only.clone()),
            _ => {
                let mut message = format!(
                    "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                    containers.join(" ")
                );
                if !init.is_empty() {
                    message.push_str(&format!(
                        " or one of the init containers: [{}]",
                        init.join(" ")
                    ));
                }
                Err(ApiError::bad_request(message))
            }
        },
    }
}

/// `container` and the `PodLogOptions` fields, checked.
fn parse_query(raw: Option<&str>) -> Result<(Option<String>, LogOptions), ApiError> {
    let mut container = None;
    let mut options = LogOptions::default();
    // Counts the query parses as numbers, with the minimum each allows.
    let at_least = |name: &str, value: &str, min: i64| {
        let number: i64 = parse_number(name, value)?;
        if number < min {
            return Err(ApiError::bad_request(format!(
                "invalid value for {name}: {value:?} must be at least {min}"
            )));
        }
        Ok(number)
    };
    for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "container" => container = Some(value.into_owned()).filter(|c| !c.is_empty()),
            "follow" => options.follow = parse_bool("follow", &value)?,
            "previous" => options.previous = parse_bool("previous", &value)?,
            "timestamps" => options.timestamps = parse_bool("timestamps", &value)?,
            "tailLines" => options.tail_lines = Some(at_least("tailLines", &value, 0)?),
            "limitBytes" => options.limit_bytes = Some(at_least("limitBytes", &value, 1)?),
            "sinceSeconds" => options.since_seconds = Some(at_least("sinceSeconds", &value, 1)?),
            "sinceTime" => options.since_time = Some(value.into_owned()),
            _ => {}
        }
    }
    if options.since_seconds.is_some() && options.since_time.is_some() {
        return Err(ApiError::bad_request(
            "at most one of sinceTime or sinceSeconds may be specified",
        ));
    }
    Ok((container, options))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_container_is_the_only_one_or_must_be_named() {
        let one = json!({"spec": {"containers": [{"name": "app"}]}});
        assert_eq!(choose_container(&one, "web", None).expect("only"), "app");
        let two = json!({"spec": {
            "containers": [{"name": "app"}, {"name": "proxy"}],
            "initContainers": [{"name": "setup"}],
        }});
        let err = choose_container(&two, "web", None).expect_err("ambiguous");
        assert_eq!(err.code, StatusCode::BAD_REQUEST);
        assert_eq!(
            err.message,
            "a container name must be specified for pod web, choose one of: [app proxy] or one of the init containers: [setup]"
        );
        assert_eq!(
            choose_container(&two, "web", Some("setup")).expect("init"),
            "setup"
        );
        let err = choose_container(&two, "web", Some("db")).expect_err("unknown");
        assert_eq!(err.message, "container db is not valid for pod web");
    }

    #[test]
    fn options_are_parsed_and_checked() {
        let (container, options) = parse_query(Some(
            "container=app&follow=true&tailLines=10&limitBytes=5&timestamps=1",
        ))
        .expect("valid");
        assert_eq!(container.as_deref(), Some("app"));
        assert!(options.follow && options.timestamps && !options.previous);
        assert_eq!(
            (options.tail_lines, options.limit_bytes),
            (Some(10), Some(5))
        );
        for bad in [
            "tailLines=-1",
            "limitBytes=0",
            "follow=maybe",
            "sinceSeconds=x",
        ] {
            let err = parse_query(Some(bad)).expect_err(bad);
            assert_eq!(err.code, StatusCode::BAD_REQUEST, "{bad}");
        }
        assert!(parse_query(Some("sinceSeconds=5&sinceTime=2026-01-01T00:00:00Z")).is_err());
    }
}
