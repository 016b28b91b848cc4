//! Lists: `resourceVersion` / `resourceVersionMatch` semantics, label and
//! field selectors, and `limit` + `continue` pagination over one snapshot.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{json, Value};

use super::{decode, parse_resource_version, Registry};
use crate::error::ApiError;
use crate::field_selector::ObjectFilter;
use crate::resources::ResourceInfo;
use crate::storage::{ListRequest, Revision, StorageError};

/// Smallest storage page read while filling a filtered page.
const FILTERED_BATCH: usize = 256;

/// The query of a list request.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// Label and field selectors.
    pub filter: ObjectFilter,
    /// `limit`: at most this many items per page.
    pub limit: Option<usize>,
    /// `continue`: the token of the previous page.
    pub continue_token: Option<String>,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch` (`Exact` or `NotOlderThan`).
    pub resource_version_match: Option<String>,
}

/// One page of a list.
#[derive(Clone, Debug)]
pub struct ListPage {
    /// The objects, each with its own resourceVersion.
    pub items: Vec<Value>,
    /// The revision the whole list was read at.
    pub resource_version: Revision,
    /// The token for the next page, if there is one.
    pub continue_token: Option<String>,
    /// How many objects follow (only known without selectors).
    pub remaining: Option<usize>,
}

/// Where the next page starts: an opaque token to clients.
fn encode_continue(revision: Revision, last_key: &str) -> String {
    let token = json!({"rv": revision, "start": last_key});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str, prefix: &str) -> Result<(Revision, String), ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "continue key is not valid: please start a new list without the continue parameter",
        )
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| invalid())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let revision = value
        .get("rv")
        .and_then(Value::as_u64)
        .ok_or_else(invalid)?;
    let start = value
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(invalid)?;
    if !start.starts_with(prefix) {
        return Err(invalid());
    }
    Ok((revision, start.to_owned()))
}

impl Registry {
    /// Lists the objects of a resource, in one namespace or all.
    pub async fn list(
        &self,
        resource: &Arc<ResourceInfo>,
        namespace: Option<&str>,
        options: &ListOptions,
    ) -> Result<ListPage, ApiError> {
        let prefix = resource.storage_prefix(namespace);
        let (mut revision, mut start_after) = self.list_start(&prefix, options).await?;
        let limit = options.limit.filter(|l| *l > 0);
        let mut items = Vec::new();
        let mut continue_token = None;
        let mut remaining = None;
        loop {
            let want = limit.map(|l| l - items.len());
            let batch = match want {
                Some(want) if !options.filter.is_empty() => Some(want.max(FILTERED_BATCH)),
                other => other,
            };
            let page = self
                .storage
                .list(ListRequest {
                    prefix: prefix.clone(),
                    revision,
                    start_after: start_after.clone(),
                    limit: batch,
                })
                .await
                .map_err(|err| list_error(err, options))?;
            revision = Some(page.revision);
            let fetched = page.items.len();
            let mut full_at = None;
            let mut objects = page
                .items
                .iter()
                .map(decode)
                .collect::<Result<Vec<_>, _>>()?;
            self.presented_all(resource, &mut objects).await?;
            for (index, object) in objects.into_iter().enumerate() {
                if options.filter.matches(&object) {
                    items.push(object);
                    if Some(items.len()) == limit {
                        full_at = Some(index);
                        break;
                    }
                }
            }
            if let Some(index) = full_at {
                let left_in_page = fetched - index - 1;
                if left_in_page > 0 || page.remaining > 0 {
                    continue_token = Some(encode_continue(page.revision, &page.items[index].key));
                    if options.filter.is_empty() {
                        remaining = Some(left_in_page + page.remaining);
                    }
                }
                break;
            }
            if page.remaining == 0 {
                break;
            }
            start_after = page.items.last().map(|kv| kv.key.clone());
        }
        Ok(ListPage {
            items,
            resource_version: match revision {
                Some(revision) => revision,
                None => self.storage.current_revision().await?,
            },
            continue_token,
            remaining,
        })
    }

    /// The revision to read at and the key to start after.
    async fn list_start(
        &self,
        prefix: &str,
        options: &ListOptions,
    ) -> Result<(Option<Revision>, Option<String>), ApiError> {
        let rv = options.resource_version.as_deref().unwrap_or("");
        let rv_match = options.resource_version_match.as_deref().unwrap_or("");
        if let Some(token) = options.continue_token.as_deref().filter(|t| !t.is_empty()) {
            if !rv.is_empty() && rv != "0" {
                return Err(ApiError::bad_request(
                    "specifying resource version is not allowed when using continue",
                ));
            }
            let (revision, start) = decode_continue(token, prefix)?;
            return Ok((Some(revision), Some(start)));
        }
        match rv_match {
            "" | "Exact" | "NotOlderThan" => {}
            other => {
                return Err(ApiError::bad_request(format!(
                    "resourceVersionMatch: Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\""
                )))
            }
        }
        if rv.is_empty() {
            if !rv_match.is_empty() {
                return Err(ApiError::bad_request(
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            return Ok((None, None));
        }
        let requested = parse_resource_version(rv)?;
        let exact = rv_match == "Exact"
            || (rv_match.is_empty() && options.limit.is_some() && requested != 0);
        if exact {
            if requested == 0 {
                return Err(ApiError::bad_request(
                    "resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
            return Ok((Some(requested), None));
        }
        // NotOlderThan: the latest state, provided it is at least as new.
        let current = self.storage.current_revision().await?;
        if requested > current {
            return Err(ApiError::timeout(format!(
                "Too large resource version: {requested}, current: {current}"
            )));
        }
        Ok((None, None))
    }
}

fn list_error(err: StorageError, options: &ListOptions) -> ApiError {
    match err {
        StorageError::Expired { .. } if options.continue_token.is_some() => ApiError::expired(
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
        ),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_foreign_prefixes() {
        let token = encode_continue(42, "/registry/core/pods/default/web");
        assert_eq!(
            decode_continue(&token, "/registry/core/pods/").expect("valid"),
            (42, "/registry/core/pods/default/web".to_owned())
        );
        assert!(decode_continue(&token, "/registry/core/secrets/").is_err());
        assert!(decode_continue("not-base64!", "/registry/").is_err());
        let garbage = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("{\"rv\":\"x\"}");
        assert!(decode_continue(&garbage, "/registry/").is_err());
    }
}
