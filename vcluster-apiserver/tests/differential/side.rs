//! One of the two servers: a client with the admin's identity, the values
//! a scenario carries from one answer to the next, and the normalised
//! answer of a step.

use std::time::Duration;

use http_body_util::BodyExt;

use crate::case::Step;
use crate::json::{normalize, Json};

/// How long one request may take (watches close themselves sooner).
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// A server under comparison.
pub struct Side {
    pub client: kube::Client,
    /// The resource version of this side's previous answer.
    last_rv: String,
    /// The continue token of this side's previous list.
    last_continue: String,
    /// The uid of this side's previous object answer.
    last_uid: String,
}

/// What a server answered, ready to compare.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The media type without parameters other than `as`, `g`, `v`.
    pub content_type: String,
    /// Every JSON document of the body, normalised.
    pub documents: Vec<Json>,
    /// The body when it is not JSON.
    pub text: Option<String>,
}

impl Answer {
    /// The answer as compared: code, type and documents.
    pub fn comparable(&self, status_only: bool) -> Json {
        let mut fields = vec![
            ("code".to_owned(), Json::Number(self.status.to_string())),
            (
                "contentType".to_owned(),
                Json::String(self.content_type.clone()),
            ),
        ];
        if status_only {
            if let Some(doc) = self.documents.first() {
                for key in ["reason", "code"] {
                    if let Some(v) = doc.get(key) {
                        fields.push((key.to_owned(), v.clone()));
                    }
                }
            }
        } else {
            fields.push(("body".to_owned(), Json::Array(self.documents.clone())));
            if let Some(text) = &self.text {
                fields.push(("text".to_owned(), Json::String(text.clone())));
            }
        }
        Json::Object(fields)
    }
}

impl Side {
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            last_rv: String::new(),
            last_continue: String::new(),
            last_uid: String::new(),
        }
    }

    /// Sends `step` with `{ns}`, `{rv}`, `{continue}` and `{uid}` filled
    /// in; a step with `until` is sent again (for a bounded time) until it
    /// gets that code.
    pub async fn send(&mut self, step: &Step, namespace: &str) -> Result<Answer, String> {
        let deadline = tokio::time::Instant::now() + REQUEST_DEADLINE;
        loop {
            let answer = self.send_once(step, namespace).await?;
            match step.until {
                Some(code) if answer.status != code && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                _ => return Ok(answer),
            }
        }
    }

    async fn send_once(&mut self, step: &Step, namespace: &str) -> Result<Answer, String> {
        let fill = |s: &str| {
            s.replace("{ns}", namespace)
                .replace("{rv}", &self.last_rv)
                .replace("{continue}", &self.last_continue)
                .replace("{uid}", &self.last_uid)
        };
        let mut request = http::Request::builder()
            .method(step.method.clone())
            .uri(fill(&step.path))
            .header("User-Agent", "differential/v1");
        if let Some(accept) = &step.accept {
            request = request.header("Accept", accept);
        }
        if let Some(content_type) = &step.content_type {
            request = request.header("Content-Type", content_type);
        }
        if let Some(user) = &step.user {
            request = request.header("Impersonate-User", user);
        }
        let body = step.body.as_deref().map(fill).unwrap_or_default();
        let request = request
            .body(kube::client::Body::from(body.into_bytes()))
            .map_err(|e| format!("{}: {e}", step.name))?;
        let response = tokio::time::timeout(REQUEST_DEADLINE, self.client.send(request))
            .await
            .map_err(|_| format!("no answer within {REQUEST_DEADLINE:?}"))?
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(media_type)
            .unwrap_or_default();
        let bytes = tokio::time::timeout(REQUEST_DEADLINE, response.into_body().collect())
            .await
            .map_err(|_| format!("the body did not end within {REQUEST_DEADLINE:?}"))?
            .map_err(|e| e.to_string())?
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let (mut documents, text) = match Json::parse_stream(&text) {
            Ok(documents) if !documents.is_empty() => (documents, None),
            _ => (Vec::new(), Some(text)),
        };
        if let Some(last) = documents.last() {
            if let Some(rv) = last.str_at(&["metadata", "resourceVersion"]) {
                self.last_rv = rv.to_owned();
            }
            if let Some(token) = last.str_at(&["metadata", "continue"]) {
                self.last_continue = token.to_owned();
            }
            if let Some(uid) = last.str_at(&["metadata", "uid"]) {
                self.last_uid = uid.to_owned();
            }
        }
        documents.iter_mut().for_each(normalize);
        Ok(Answer {
            status,
            content_type,
            documents,
            text,
        })
    }
}

/// `application/json;as=Table;g=meta.k8s.io;v=v1;charset=utf-8` ->
/// the media type and the parameters that say what the body is.
fn media_type(header: &str) -> String {
    let mut parts = header.split(';').map(str::trim);
    let mut kept = vec![parts.next().unwrap_or_default().to_owned()];
    let mut params: Vec<&str> = parts
        .filter(|p| p.starts_with("as=") || p.starts_with("g=") || p.starts_with("v="))
        .collect();
    params.sort_unstable();
    kept.extend(params.iter().map(|p| (*p).to_owned()));
    kept.join(";")
}
