//! Watch responses: a stream of `{"type": ..., "object": ...}` lines fed by
//! the watch cache, with selectors applied per client, bookmarks, initial
//! events and timeouts.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use http::{header, HeaderValue, StatusCode};
use serde_json::{json, Value};

use super::resource::{list_options, partial_metadata};
use super::{stream_body, ApiState, Query};
use crate::error::ApiError;
use crate::field_selector::{FieldRequirement, FieldSelector, ObjectFilter};
use crate::object;
use crate::registry::{parse_resource_version, ListOptions};
use crate::request::negotiate::Representation;
use crate::resources::table::{self, IncludeObject};
use crate::resources::ResourceInfo;
use crate::storage::{EventKind, Revision};
use crate::watch_cache::{CachedEvent, Source, WatchEnd};

/// Where a watch starts.
enum Start {
    /// Send the current state as ADDED events first (at this revision).
    InitialEvents,
    /// Only changes after this revision.
    After(Revision),
    /// Only changes from now on.
    Now,
}

/// Serves a watch on a collection (or on one object, when `name` is given)
/// for the client `user` (see [`watch_user`]).
pub(super) async fn serve(
    state: &Arc<ApiState>,
    resource: &Arc<ResourceInfo>,
    namespace: Option<&str>,
    query: &Query,
    representation: Representation,
    name: Option<&str>,
    user: &str,
) -> Result<Response, ApiError> {
    let mut filter = list_options(resource, query)?.filter;
    if let Some(name) = name {
        let pinned = FieldRequirement {
            field: "metadata.name".into(),
            negated: false,
            value: name.to_owned(),
        };
        filter
            .fields
            .get_or_insert_with(FieldSelector::default)
            .push(pinned);
    }
    let rv = query.resource_version.as_deref().unwrap_or("");
    let send_initial = query.send_initial_events;
    if send_initial == Some(true) && !query.allow_watch_bookmarks {
        return Err(ApiError::invalid(
            "ListOptions",
            "",
            vec![crate::error::FieldCause::invalid(
                "allowWatchBookmarks",
                "false",
                "allowWatchBookmarks must be true when sendInitialEvents is set",
            )],
        ));
    }
    let start = match (send_initial, rv) {
        (Some(true), "" | "0") => Start::InitialEvents,
        (Some(true), _) => {
            return Err(ApiError::bad_request(
                "sendInitialEvents is only supported with resourceVersion \"\" or \"0\"",
            ))
        }
        (Some(false), "") => Start::Now,
        (None, "" | "0") => Start::InitialEvents,
        (_, rv) => Start::After(parse_resource_version(rv)?),
    };
    let prefix = resource.storage_prefix(namespace);
    let hub = state.registry.hub().clone();
    let registry = state.registry.clone();
    // A CRD converted by a webhook: every event not at the watched version
    // goes through it before it is framed.
    let by_webhook = crate::registry::conversion::converts_by_webhook(resource);
    let user = Some(user);
    let (source, initial) = match start {
        Start::After(after) => (hub.subscribe_as(user, &prefix, Some(after))?, Vec::new()),
        Start::Now => (hub.subscribe_as(user, &prefix, None)?, Vec::new()),
        Start::InitialEvents => {
            // resourceVersion "" asks for the most recent state: the cache
            // must first have seen every write acknowledged so far (as
            // upstream's consistent reads from the cache), or an object
            // created just before would be missing from the initial events.
            // "0" (any state) waits too: a fresher state is as valid, and
            // upstream's cache is never far behind, while ours can be on a
            // loaded machine (kube-rs's streaming lists ask with "0").
            {
                let wanted = state.registry.storage().current_revision().await?;
                let deadline = tokio::time::Instant::now() + CACHE_CATCH_UP;
                while hub.revision() < wanted && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            let source = hub.subscribe_as(user, &prefix, None)?;
            let at = match &source {
                Source::Cache(subscription) => subscription.after,
                Source::Storage(_) => hub.revision(),
            };
            let page = state
                .registry
                .list(
                    resource,
                    namespace,
                    &ListOptions {
                        filter: filter.clone(),
                        resource_version: Some(at.to_string()),
                        resource_version_match: Some("Exact".into()),
                        ..ListOptions::default()
                    },
                )
                .await?;
            (source, page.items)
        }
    };
    let initial_revision = match &source {
        Source::Cache(subscription) => subscription.after,
        Source::Storage(_) => hub.revision(),
    };
    let timeout = query
        .timeout_seconds
        .map(Duration::from_secs)
        .unwrap_or(state.options.default_watch_timeout)
        .min(state.options.max_watch_timeout);
    let encoder = FrameEncoder {
        resource: resource.clone(),
        representation,
        include: IncludeObject::parse(query.include_object.as_deref())
            .map_err(ApiError::bad_request)?,
        headers_sent: std::sync::atomic::AtomicBool::new(false),
    };
    let bookmarks = query
        .allow_watch_bookmarks
        .then_some(state.options.bookmark_interval);
    let initial_end_bookmark = send_initial == Some(true);
    let shutdown = state.shutdown.clone();

    let stream = async_stream::stream! {
        let mut last = initial_revision;
        for object in &initial {
            yield Ok(encoder.frame("ADDED", object));
        }
        if initial_end_bookmark {
            yield Ok(encoder.bookmark(initial_revision, true));
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(bookmarks.unwrap_or(Duration::from_secs(3600)));
        ticker.tick().await;
        let mut source = source;
        loop {
            match &mut source {
                Source::Cache(subscription) => {
                    tokio::select! {
                        _ = &mut deadline => break,
                        _ = shutdown.cancelled() => break,
                        _ = ticker.tick(), if bookmarks.is_some() => {
                            // Read the hub's revision before checking the
                            // buffer: every event up to it is already queued.
                            let revision = hub.revision();
                            if subscription.events.is_empty() && revision > last {
                                last = revision;
                                yield Ok(encoder.bookmark(revision, false));
                            }
                        }
                        event = subscription.events.recv() => match event {
                            Some(event) if by_webhook => {
                                last = last.max(event.revision);
                                let converted = registry
                                    .converted_event(&encoder.resource, &event.object, event.prev_object.as_ref())
                                    .await;
                                match converted {
                                    Ok((object, prev)) => {
                                        if let Some(frame) = encoder.event_frame(&filter, event.kind, &object, prev.as_ref()) {
                                            yield Ok(frame);
                                        }
                                    }
                                    Err(err) => {
                                        yield Ok(error_frame(&err));
                                        break;
                                    }
                                }
                            }
                            Some(event) => {
                                last = last.max(event.revision);
                                if let Some(frame) = encoder.cached_event_frame(&filter, &event) {
                                    yield Ok(frame);
                                }
                            }
                            None => {
                                let ended = subscription.ended.lock().map(|e| e.clone()).unwrap_or(None);
                                if let Some(frame) = end_frame(ended) {
                                    yield Ok(frame);
                                }
                                break;
                            }
                        },
                    }
                }
                Source::Storage(stream) => {
                    tokio::select! {
                        _ = &mut deadline => break,
                        _ = shutdown.cancelled() => break,
                        item = stream.next() => match item {
                            Some(Ok(event)) => {
                                let decoded = object::decode_stored(&event.value, event.revision);
                                let prev = event.prev_value.as_ref().and_then(|p| object::decode_stored(p, event.revision).ok());
                                let decoded = match decoded {
                                    Ok(object) if by_webhook => {
                                        match registry.converted_event(&encoder.resource, &object, prev.as_ref()).await {
                                            Ok(pair) => Some(pair),
                                            Err(err) => {
                                                yield Ok(error_frame(&err));
                                                break;
                                            }
                                        }
                                    }
                                    Ok(object) => Some((object, prev)),
                                    Err(_) => None,
                                };
                                if let Some((object, prev)) = decoded {
                                    if let Some(frame) = encoder.event_frame(&filter, event.kind, &object, prev.as_ref()) {
                                        yield Ok(frame);
                                    }
                                }
                            }
                            Some(Err(err)) => {
                                yield Ok(error_frame(&ApiError::from(err)));
                                break;
                            }
                            None => break,
                        },
                    }
                }
            }
        }
    };
    let content_type = match representation {
        Representation::Table => "application/json;as=Table;v=v1;g=meta.k8s.io",
        _ => "application/json",
    };
    let mut response = Response::new(stream_body(stream));
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

/// Whose watch a request opens, for the per-user watch limit
/// ([`crate::watch_cache::WatchLimits::max_watchers_per_user`]): the user that
/// authentication established, or, for anonymous requests, the client's IP
/// address (not its port: one client opening many connections is still
/// one client); in-process requests without either share one key.
pub(super) fn watch_user(request: &axum::extract::Request) -> String {
    let extensions = request.extensions();
    match extensions.get::<crate::auth::UserInfo>() {
        Some(user) if !user.is_anonymous() && !user.name.is_empty() => {
            format!("user:{}", user.name)
        }
        _ => match extensions.get::<super::PeerAddr>() {
            Some(super::PeerAddr(addr)) => format!("peer:{}", addr.ip()),
            None => "in-process".to_owned(),
        },
    }
}

fn error_frame(err: &ApiError) -> Bytes {
    line(&json!({"type": "ERROR", "object": err.to_status()}))
}

fn end_frame(ended: Option<WatchEnd>) -> Option<Bytes> {
    match ended? {
        WatchEnd::TooSlow => Some(error_frame(&ApiError::expired(
            "watch closed: the client did not keep up with the event stream; list again and watch from the new resourceVersion",
        ))),
        WatchEnd::Expired => Some(error_frame(&ApiError::expired(
            "watch closed: the server lost the history of this resource; list again",
        ))),
        WatchEnd::Shutdown => None,
    }
}

/// How long a watch asking for the most recent state waits for the watch
/// cache to reach the store's revision (beyond it, the cache's own state
/// is served, as after a stalled storage watch).
const CACHE_CATCH_UP: Duration = Duration::from_secs(3);

fn line(value: &Value) -> Bytes {
    let mut bytes = serde_json::to_vec(&crate::request::wire_order::UpstreamOrder(value))
        .unwrap_or_else(|_| b"{}".to_vec());
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// Turns objects into watch frames in the client's representation.
struct FrameEncoder {
    resource: Arc<ResourceInfo>,
    representation: Representation,
    include: IncludeObject,
    /// Tables carry column definitions in the first frame only.
    headers_sent: std::sync::atomic::AtomicBool,
}

impl FrameEncoder {
    /// The object as this watch's resource shows it: custom resources at
    /// the version watched (one storage serves every version),
    /// `events.k8s.io` events converted from their stored core form.
    fn presented<'a>(&self, stored: &'a Value) -> Cow<'a, Value> {
        if crate::registry::needs_presenting(&self.resource, stored) {
            let mut copy = stored.clone();
            crate::registry::present(&self.resource, &mut copy);
            Cow::Owned(copy)
        } else {
            Cow::Borrowed(stored)
        }
    }

    fn frame(&self, kind: &str, object: &Value) -> Bytes {
        let object = self.presented(object);
        let object = object.as_ref();
        let object = match self.representation {
            Representation::Object => return line_with_raw(kind, object),
            Representation::Metadata => partial_metadata(object),
            Representation::Table => {
                let metadata =
                    json!({"resourceVersion": object::meta_str(object, "resourceVersion")});
                let mut table = table::to_table(
                    &self.resource,
                    std::slice::from_ref(object),
                    self.include,
                    metadata,
                    jiff::Timestamp::now(),
                );
                if self
                    .headers_sent
                    .swap(true, std::sync::atomic::Ordering::Relaxed)
                {
                    table["columnDefinitions"] = json!([]);
                }
                table
            }
        };
        line(&json!({"type": kind, "object": object}))
    }

    /// The frame of one write as this client sees it through its
    /// selectors: leaving the selection reads as DELETED, entering it as
    /// ADDED.
    fn event_frame(
        &self,
        filter: &ObjectFilter,
        kind: EventKind,
        object: &Value,
        prev: Option<&Value>,
    ) -> Option<Bytes> {
        // Selectors read the object as the client sees it, as lists do.
        let object = self.presented(object);
        let prev = prev.map(|p| self.presented(p));
        let kind = frame_kind(filter, kind, &object, prev.as_deref())?;
        Some(self.frame(kind, &object))
    }

    /// [`FrameEncoder::event_frame`] for an event of the watch cache: plain
    /// JSON watches reuse the event's shared serialisation.
    fn cached_event_frame(&self, filter: &ObjectFilter, event: &CachedEvent) -> Option<Bytes> {
        if crate::registry::needs_presenting(&self.resource, &event.object) {
            return self.event_frame(
                filter,
                event.kind,
                &event.object,
                event.prev_object.as_ref(),
            );
        }
        let kind = frame_kind(
            filter,
            event.kind,
            &event.object,
            event.prev_object.as_ref(),
        )?;
        if self.representation == Representation::Object {
            return Some(line_with_json(kind, event.object_json()));
        }
        Some(self.frame(kind, &event.object))
    }

    fn bookmark(&self, revision: Revision, initial_events_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": revision.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = match self.representation {
            Representation::Metadata => {
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata})
            }
            _ => {
                json!({"kind": self.resource.kind, "apiVersion": self.resource.api_version(), "metadata": metadata})
            }
        };
        line(&json!({"type": "BOOKMARK", "object": object}))
    }
}

/// How a write shows to a client with these selectors, if at all.
fn frame_kind(
    filter: &ObjectFilter,
    kind: EventKind,
    object: &Value,
    prev: Option<&Value>,
) -> Option<&'static str> {
    let now = filter.matches(object);
    let before = prev.is_some_and(|p| filter.matches(p));
    match kind {
        EventKind::Created => now.then_some("ADDED"),
        EventKind::Deleted => now.then_some("DELETED"),
        EventKind::Updated => match (before, now) {
            (true, true) => Some("MODIFIED"),
            (false, true) => Some("ADDED"),
            (true, false) => Some("DELETED"),
            (false, false) => None,
        },
    }
}

/// A frame around an object already serialised to JSON.
fn line_with_json(kind: &str, object: &[u8]) -> Bytes {
    let mut bytes = Vec::with_capacity(object.len() + 32);
    bytes.extend_from_slice(b"{\"type\":\"");
    bytes.extend_from_slice(kind.as_bytes());
    bytes.extend_from_slice(b"\",\"object\":");
    bytes.extend_from_slice(object);
    bytes.extend_from_slice(b"}\n");
    Bytes::from(bytes)
}

/// A frame around an object, without cloning it into a new tree.
fn line_with_raw(kind: &str, object: &Value) -> Bytes {
    let mut bytes = Vec::with_capacity(256);
    bytes.extend_from_slice(b"{\"type\":\"");
    bytes.extend_from_slice(kind.as_bytes());
    bytes.extend_from_slice(b"\",\"object\":");
    let ordered = crate::request::wire_order::UpstreamOrder(object);
    if serde_json::to_writer(&mut bytes, &ordered).is_err() {
        bytes.extend_from_slice(b"{}");
    }
    bytes.extend_from_slice(b"}\n");
    Bytes::from(bytes)
}
