//! Hostile and malformed requests over raw HTTP/1.1: every answer is a
//! `metav1.Status` with the right code and reason, nothing is stored (the
//! store's revision does not move), and the server keeps serving.

use serde_json::{json, Value};
use vcluster_apiserver::storage::Storage;
use vcluster_testkit::cluster::Cluster;
use vcluster_testkit::http::RawResponse;

const PODS: &str = "/api/v1/namespaces/default/pods";
const JSON: (&str, &str) = ("Content-Type", "application/json");
const YAML: (&str, &str) = ("Content-Type", "application/yaml");

/// What is wrong, content type, body, expected words of the message.
type BodyCase = (
    &'static str,
    (&'static str, &'static str),
    Vec<u8>,
    &'static str,
);
/// What is wrong, URL, body, expected kind, field and reason of the cause.
type NameCase<'a> = (&'a str, &'a str, Value, &'a str, &'a str, &'a str);

fn valid_pod(name: &str) -> Value {
    vcluster_testkit::http::pod_json(name, &[("app", "web")])
}

/// Checks a failure answer: status line, JSON content type and a
/// `metav1.Status` body with the same code and the given reason.
fn assert_status(response: &RawResponse, code: u16, reason: &str, what: &str) -> Value {
    assert_eq!(
        response.status,
        code,
        "{what}: {}",
        String::from_utf8_lossy(&response.body)
    );
    assert!(
        response
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{what}: content type {:?}",
        response.header("content-type")
    );
    let status = response.json();
    assert_eq!(status["kind"], "Status", "{what}: {status}");
    assert_eq!(status["apiVersion"], "v1", "{what}: {status}");
    assert_eq!(status["status"], "Failure", "{what}: {status}");
    assert_eq!(status["code"], code, "{what}: {status}");
    assert_eq!(status["reason"], reason, "{what}: {status}");
    assert!(
        status["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {status}"
    );
    status
}

/// The store's revision: it moves on every write, so an unchanged
/// revision proves that nothing was stored.
async fn revision(t: &Cluster) -> u64 {
    t.storage.current_revision().await.unwrap()
}

async fn post(t: &Cluster, path: &str, content_type: (&str, &str), body: &[u8]) -> RawResponse {
    t.raw("POST", path, &[content_type], body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_and_yaml_are_400_bad_request() {
    let t = Cluster::start().await;
    let before = revision(&t).await;
    let billion_laughs = "a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
    let cases: Vec<BodyCase> = vec![
        ("truncated JSON", JSON, b"{\"apiVersion\": \"v1\", \"kind\":".to_vec(), "not valid JSON"),
        ("trailing garbage", JSON, b"{\"kind\": \"Pod\"} trailing".to_vec(), "not valid JSON"),
        ("invalid UTF-8", JSON, b"{\"kind\": \"\xff\xfe\"}".to_vec(), "not valid JSON"),
        ("a JSON array", JSON, b"[1, 2, 3]".to_vec(), "must be a JSON or YAML object"),
        ("JSON null", JSON, b"null".to_vec(), "must be a JSON or YAML object"),
        ("a JSON string", JSON, b"\"pod\"".to_vec(), "must be a JSON or YAML object"),
        ("an empty body", JSON, Vec::new(), "empty"),
        ("whitespace only", JSON, b"  \n ".to_vec(), "empty"),
        ("broken YAML", YAML, b"metadata:\n  name: [unclosed\n".to_vec(), "not valid YAML"),
        ("bad YAML indentation", YAML, b"metadata:\n  name: a\n name: b\n".to_vec(), "not valid YAML"),
        ("two YAML documents", YAML, b"kind: Pod\n---\nkind: Pod\n".to_vec(), "not valid YAML"),
        ("a recursive YAML alias", YAML, b"a: &x [*x]\n".to_vec(), "not valid YAML"),
        ("a YAML alias bomb", YAML, billion_laughs.as_bytes().to_vec(), "not valid YAML"),
        ("a YAML scalar", YAML, b"just some text\n".to_vec(), "must be a JSON or YAML object"),
        (
            "a field of the wrong type",
            JSON,
            br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"},"spec":{"containers":"nope"}}"#.to_vec(),
            "cannot be handled as a Pod",
        ),
        (
            "metadata of the wrong type",
            JSON,
            br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":7},"spec":{"containers":[{"name":"c","image":"i"}]}}"#.to_vec(),
            "cannot be handled as a Pod",
        ),
    ];
    for (what, content_type, body, message) in cases {
        let response = post(&t, PODS, content_type, &body).await;
        let status = assert_status(&response, 400, "BadRequest", what);
        assert!(
            status["message"].as_str().unwrap().contains(message),
            "{what}: {status}"
        );
    }
    assert_eq!(revision(&t).await, before, "nothing was stored");
    assert!(t.stored_names("", "pods", None).await.is_empty());

    // The same on updates and patches of an existing object: it stays as is.
    let created = post(&t, PODS, JSON, valid_pod("web").to_string().as_bytes()).await;
    assert_eq!(created.status, 201);
    let stored = t.stored("", "pods", Some("default"), "web").await.unwrap();
    let before = revision(&t).await;
    let web = format!("{PODS}/web");
    let response = t.raw("PUT", &web, &[JSON], b"{\"metadata\": ").await;
    assert_status(&response, 400, "BadRequest", "truncated PUT");
    let response = t.raw("PUT", &web, &[YAML], b"- a\n- b\n").await;
    assert_status(&response, 400, "BadRequest", "PUT of a YAML list");
    let response = t
        .raw(
            "PATCH",
            &web,
            &[("Content-Type", "application/merge-patch+json")],
            b"{",
        )
        .await;
    assert_status(&response, 400, "BadRequest", "truncated merge patch");
    let response = t
        .raw(
            "PATCH",
            &web,
            &[("Content-Type", "application/merge-patch+json")],
            b"[1]",
        )
        .await;
    assert_status(
        &response,
        400,
        "BadRequest",
        "merge patch that is not an object",
    );
    let response = t
        .raw(
            "PATCH",
            &web,
            &[("Content-Type", "application/json-patch+json")],
            b"{\"op\": 1}",
        )
        .await;
    assert_status(
        &response,
        400,
        "BadRequest",
        "JSON patch that is not a list",
    );
    let response = t
        .raw(
            "PATCH",
            &web,
            &[("Content-Type", "application/json-patch+json")],
            br#"[{"op": "remove", "path": "/spec/nothing"}]"#,
        )
        .await;
    assert_status(&response, 422, "Invalid", "JSON patch that cannot apply");
    assert_eq!(revision(&t).await, before, "nothing was stored");
    assert_eq!(
        t.stored("", "pods", Some("default"), "web").await.unwrap(),
        stored
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kind_api_version_name_and_namespace_must_match_the_url() {
    let t = Cluster::start().await;
    let before = revision(&t).await;
    let mut wrong_kind = valid_pod("x");
    wrong_kind["kind"] = json!("Service");
    let mut wrong_version = valid_pod("x");
    wrong_version["apiVersion"] = json!("apps/v1");
    let mut future_version = valid_pod("x");
    future_version["apiVersion"] = json!("v2");
    let mut kind_not_string = valid_pod("x");
    kind_not_string["kind"] = json!(["Pod"]);
    let mut other_namespace = valid_pod("x");
    other_namespace["metadata"]["namespace"] = json!("kube-system");
    for (what, body, message) in [
        ("kind", &wrong_kind, "kind of the object (Service)"),
        ("apiVersion", &wrong_version, "apiVersion of the object (apps/v1)"),
        ("unserved version", &future_version, "apiVersion of the object (v2)"),
        ("kind that is not a string", &kind_not_string, "kind of the object"),
        (
            "namespace",
            &other_namespace,
            "the namespace of the provided object (kube-system) does not match the namespace sent on the request (default)",
        ),
    ] {
        let response = post(&t, PODS, JSON, body.to_string().as_bytes()).await;
        let status = assert_status(&response, 400, "BadRequest", what);
        assert!(
            status["message"].as_str().unwrap().contains(message),
            "{what}: {status}"
        );
    }

    // A Deployment posted to the pods URL, in YAML.
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec: {}\n";
    let response = post(&t, PODS, YAML, deployment.as_bytes()).await;
    assert_status(&response, 400, "BadRequest", "deployment at the pods URL");
    // A Pod posted to the deployments URL.
    let response = post(
        &t,
        "/apis/apps/v1/namespaces/default/deployments",
        JSON,
        valid_pod("x").to_string().as_bytes(),
    )
    .await;
    assert_status(&response, 400, "BadRequest", "pod at the deployments URL");
    assert_eq!(revision(&t).await, before, "nothing was stored");

    // Updates: the body's name and namespace must be the URL's.
    post(&t, PODS, JSON, valid_pod("web").to_string().as_bytes()).await;
    let before = revision(&t).await;
    let response = t
        .raw(
            "PUT",
            &format!("{PODS}/web"),
            &[JSON],
            valid_pod("other").to_string().as_bytes(),
        )
        .await;
    let status = assert_status(&response, 400, "BadRequest", "PUT with another name");
    assert!(status["message"]
        .as_str()
        .unwrap()
        .contains("does not match the name on the URL"));
    let mut moved = valid_pod("web");
    moved["metadata"]["namespace"] = json!("kube-public");
    let response = t
        .raw(
            "PUT",
            &format!("{PODS}/web"),
            &[JSON],
            moved.to_string().as_bytes(),
        )
        .await;
    assert_status(&response, 400, "BadRequest", "PUT into another namespace");
    assert_eq!(revision(&t).await, before, "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_three_mebibytes_are_413() {
    let t = Cluster::start().await;
    let before = revision(&t).await;
    let limit = 3 * 1024 * 1024;
    // A valid object just over the limit, with Content-Length and chunked.
    let mut pod = valid_pod("huge");
    pod["metadata"]["annotations"] = json!({"blob": "x".repeat(limit)});
    let body = pod.to_string();
    assert!(body.len() > limit);
    let response = post(&t, PODS, JSON, body.as_bytes()).await;
    assert_status(&response, 413, "RequestEntityTooLarge", "declared length");
    let response = t
        .raw(
            "POST",
            PODS,
            &[JSON, ("Transfer-Encoding", "chunked")],
            body.as_bytes(),
        )
        .await;
    assert_status(&response, 413, "RequestEntityTooLarge", "chunked body");
    let response = t
        .raw(
            "PUT",
            &format!("{PODS}/huge"),
            &[YAML, ("Transfer-Encoding", "chunked")],
            &vec![b'a'; limit + 1],
        )
        .await;
    assert_status(&response, 413, "RequestEntityTooLarge", "chunked PUT");
    assert_eq!(revision(&t).await, before, "nothing was stored");

    // Under the body limit, the objects' own limits still apply (422).
    let mut big_cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "big"},
        "data": {"blob": "x".repeat(2 * 1024 * 1024)},
    });
    let response = post(
        &t,
        "/api/v1/namespaces/default/configmaps",
        JSON,
        big_cm.to_string().as_bytes(),
    )
    .await;
    let status = assert_status(&response, 422, "Invalid", "2 MiB of ConfigMap data");
    assert_eq!(
        status["details"]["causes"][0]["reason"],
        "FieldValueTooLong"
    );
    assert_eq!(status["details"]["causes"][0]["field"], "data");
    let mut annotated = valid_pod("annotated");
    annotated["metadata"]["annotations"] = json!({"blob": "x".repeat(300 * 1024)});
    let response = post(&t, PODS, JSON, annotated.to_string().as_bytes()).await;
    let status = assert_status(&response, 422, "Invalid", "300 KiB of annotations");
    assert_eq!(
        status["details"]["causes"][0]["field"],
        "metadata.annotations"
    );
    assert_eq!(revision(&t).await, before, "nothing was stored");

    // A large but allowed object is stored.
    big_cm["data"]["blob"] = json!("x".repeat(900 * 1024));
    let response = post(
        &t,
        "/api/v1/namespaces/default/configmaps",
        JSON,
        big_cm.to_string().as_bytes(),
    )
    .await;
    assert_eq!(
        response.status,
        201,
        "{}",
        String::from_utf8_lossy(&response.body[..200])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_names_are_422_with_causes() {
    let t = Cluster::start().await;
    let before = revision(&t).await;
    let long = "a".repeat(254);
    let cases: Vec<NameCase> = vec![
        (
            "uppercase and underscore",
            PODS,
            valid_pod("Bad_Name"),
            "Pod",
            "metadata.name",
            "FieldValueInvalid",
        ),
        (
            "empty label",
            PODS,
            valid_pod("a..b"),
            "Pod",
            "metadata.name",
            "FieldValueInvalid",
        ),
        (
            "too long",
            PODS,
            valid_pod(&long),
            "Pod",
            "metadata.name",
            "FieldValueInvalid",
        ),
        (
            "trailing dash",
            PODS,
            valid_pod("web-"),
            "Pod",
            "metadata.name",
            "FieldValueInvalid",
        ),
        (
            "service names are DNS-1035 labels",
            "/api/v1/namespaces/default/services",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "1web"}, "spec": {"ports": [{"port": 80}]}}),
            "Service",
            "metadata.name",
            "FieldValueInvalid",
        ),
        (
            "namespace names are DNS-1123 labels",
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team.a"}}),
            "Namespace",
            "metadata.name",
            "FieldValueInvalid",
        ),
        (
            "no name at all",
            PODS,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
            "Pod",
            "metadata.name",
            "FieldValueRequired",
        ),
        (
            "a bad label key",
            PODS,
            vcluster_testkit::http::pod_json("labelled", &[("bad key", "v")]),
            "Pod",
            "metadata.labels",
            "FieldValueInvalid",
        ),
    ];
    for (what, path, body, kind, field, reason) in cases {
        let response = post(&t, path, JSON, body.to_string().as_bytes()).await;
        let status = assert_status(&response, 422, "Invalid", what);
        let name = body["metadata"]["name"].as_str().unwrap_or("");
        assert_eq!(status["details"]["kind"], kind, "{what}: {status}");
        assert_eq!(
            status["details"]["name"].as_str().unwrap_or(""),
            name,
            "{what}: {status}"
        );
        let causes = status["details"]["causes"].as_array().expect("causes");
        assert_eq!(causes.len(), 1, "{what}: {status}");
        assert_eq!(causes[0]["field"], field, "{what}: {status}");
        assert_eq!(causes[0]["reason"], reason, "{what}: {status}");
        assert!(
            status["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{kind} {name:?} is invalid: {field}: ")),
            "{what}: {status}"
        );
    }
    // The same in YAML.
    let response = post(&t, PODS, YAML, b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: Bad_Name\nspec:\n  containers:\n  - name: c\n    image: i\n").await;
    assert_status(&response, 422, "Invalid", "YAML with a bad name");
    assert_eq!(revision(&t).await, before, "nothing was stored");

    // A name in the URL that cannot exist is simply not found.
    let response = t.raw("GET", &format!("{PODS}/Bad_Name"), &[], b"").await;
    assert_status(&response, 404, "NotFound", "GET of an impossible name");
    let response = t
        .raw("GET", "/api/v1/namespaces/Bad_NS/pods", &[], b"")
        .await;
    assert_status(
        &response,
        400,
        "BadRequest",
        "an impossible namespace in the URL",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_content_types_are_415() {
    let t = Cluster::start().await;
    let before = revision(&t).await;
    let body = valid_pod("x").to_string();
    for content_type in [
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "image/png",
    ] {
        let response = post(&t, PODS, ("Content-Type", content_type), body.as_bytes()).await;
        let status = assert_status(&response, 415, "UnsupportedMediaType", content_type);
        assert!(status["message"]
            .as_str()
            .unwrap()
            .contains("application/json"));
    }
    post(&t, PODS, JSON, body.as_bytes()).await;
    let before_patch = revision(&t).await;
    assert_eq!(before_patch, before + 1);
    // A PATCH must say which kind of patch it is.
    for content_type in ["application/json", "application/yaml", "text/plain"] {
        let response = t
            .raw(
                "PATCH",
                &format!("{PODS}/x"),
                &[("Content-Type", content_type)],
                b"{}",
            )
            .await;
        assert_status(&response, 415, "UnsupportedMediaType", content_type);
    }
    assert_eq!(revision(&t).await, before_patch, "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_documents_are_400() {
    let t = Cluster::start().await;
    let before = revision(&t).await;
    let depth = 100_000;
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let objects = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    // Nested inside an otherwise valid pod.
    let in_pod = format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"deep","labels":{}1{}}},"spec":{{"containers":[{{"name":"c","image":"i"}}]}}}}"#,
        r#"{"a":"#.repeat(5_000),
        "}".repeat(5_000)
    );
    let yaml_flow = format!("a: {}{}\n", "[".repeat(depth), "]".repeat(depth));
    let yaml_block: String = (0..2_000)
        .map(|i| format!("{}a:\n", " ".repeat(i)))
        .collect();
    for (what, content_type, body) in [
        ("nested JSON arrays", JSON, arrays),
        ("nested JSON objects", JSON, objects),
        ("nesting inside a pod", JSON, in_pod),
        ("nested YAML flow sequences", YAML, yaml_flow),
        ("nested YAML blocks", YAML, yaml_block),
    ] {
        let response = post(&t, PODS, content_type, body.as_bytes()).await;
        assert_status(&response, 400, "BadRequest", what);
    }
    assert_eq!(revision(&t).await, before, "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_follow_field_validation() {
    let t = Cluster::start().await;
    let mut pod = valid_pod("web");
    pod["spec"]["bogus"] = json!(1);
    pod["metadata"]["extra"] = json!("x");
    let body = pod.to_string();
    let before = revision(&t).await;

    let response = post(
        &t,
        &format!("{PODS}?fieldValidation=Strict"),
        JSON,
        body.as_bytes(),
    )
    .await;
    let status = assert_status(&response, 400, "BadRequest", "Strict");
    let message = status["message"].as_str().unwrap();
    assert!(
        message.contains(r#"unknown field "spec.bogus""#)
            && message.contains(r#"unknown field "metadata.extra""#),
        "{message}"
    );
    let response = post(
        &t,
        &format!("{PODS}?fieldValidation=Sometimes"),
        JSON,
        body.as_bytes(),
    )
    .await;
    assert_status(&response, 400, "BadRequest", "an unknown fieldValidation");
    assert_eq!(revision(&t).await, before, "nothing was stored");

    // Warn: stored without the unknown fields, and the client is told.
    let response = post(
        &t,
        &format!("{PODS}?fieldValidation=Warn"),
        JSON,
        body.as_bytes(),
    )
    .await;
    assert_eq!(
        response.status,
        201,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    let mut warnings = response.headers_named("warning");
    warnings.sort();
    assert_eq!(
        warnings,
        [
            r#"299 - "unknown field \"metadata.extra\"""#,
            r#"299 - "unknown field \"spec.bogus\"""#
        ]
    );
    let stored = t.stored("", "pods", Some("default"), "web").await.unwrap();
    assert!(stored["spec"].get("bogus").is_none());
    assert!(stored["metadata"].get("extra").is_none());

    // Ignore: no warning. Known fields only: no warning either.
    pod["metadata"]["name"] = json!("quiet");
    let response = post(
        &t,
        &format!("{PODS}?fieldValidation=Ignore"),
        JSON,
        pod.to_string().as_bytes(),
    )
    .await;
    assert_eq!(response.status, 201);
    assert!(response.headers_named("warning").is_empty());
    let response = post(
        &t,
        &format!("{PODS}?fieldValidation=Strict"),
        JSON,
        valid_pod("clean").to_string().as_bytes(),
    )
    .await;
    assert_eq!(response.status, 201);
    assert!(response.headers_named("warning").is_empty());

    // Strict applies to updates too.
    let mut update = t
        .stored("", "pods", Some("default"), "clean")
        .await
        .unwrap();
    update["spec"]["bogus"] = json!(true);
    let before = revision(&t).await;
    let response = t
        .raw(
            "PUT",
            &format!("{PODS}/clean?fieldValidation=Strict"),
            &[JSON],
            update.to_string().as_bytes(),
        )
        .await;
    assert_status(&response, 400, "BadRequest", "Strict PUT");
    assert_eq!(revision(&t).await, before, "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_query_parameters_paths_and_methods_are_statuses() {
    let t = Cluster::start().await;
    for query in [
        "limit=-1",
        "limit=many",
        "watch=maybe",
        "resourceVersion=abc",
        "resourceVersion=1&resourceVersionMatch=Bogus",
        "resourceVersionMatch=Exact",
        "continue=garbage",
        "labelSelector=a%20in%20(",
        "labelSelector=%25ZZ",
        "fieldSelector=spec.unknown%3Dx",
        "timeoutSeconds=soon",
        "dryRun=Some",
    ] {
        let response = t.raw("GET", &format!("{PODS}?{query}"), &[], b"").await;
        assert_status(&response, 400, "BadRequest", query);
    }
    let response = t
        .raw("GET", "/api/v1/namespaces/default/unicorns", &[], b"")
        .await;
    assert_status(&response, 404, "NotFound", "unknown resource");
    // A group the server does not serve at all gets what kube-apiserver
    // answers there: Go's plain-text 404, not a Status.
    let response = t
        .raw("GET", "/apis/nope.example.com/v1/things", &[], b"")
        .await;
    assert_eq!(response.status, 404, "unknown group");
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8"),
        "unknown group"
    );
    assert_eq!(response.body, b"404 page not found\n", "unknown group");
    let response = t.raw("GET", "/api/v1/pods/web", &[], b"").await;
    assert_status(
        &response,
        404,
        "NotFound",
        "namespaced object without a namespace",
    );
    let response = t
        .raw("GET", "/api/v1/namespaces/default/nodes", &[], b"")
        .await;
    assert_status(
        &response,
        404,
        "NotFound",
        "cluster-scoped kind under a namespace",
    );
    let response = t.raw("BREW", PODS, &[], b"").await;
    assert_status(&response, 405, "MethodNotAllowed", "an unknown method");
    let response = t.raw("POST", "/api/v1", &[JSON], b"{}").await;
    assert_status(&response, 405, "MethodNotAllowed", "POST to discovery");
    let response = t.raw("PUT", PODS, &[JSON], b"{}").await;
    assert_status(&response, 405, "MethodNotAllowed", "PUT on a collection");
    let response = t
        .raw("GET", &format!("{PODS}/web/frobnicate"), &[], b"")
        .await;
    assert_status(&response, 404, "NotFound", "an unknown subresource");
    let response = t
        .raw(
            "GET",
            PODS,
            &[("Accept", "application/vnd.kubernetes.protobuf;as=Table")],
            b"",
        )
        .await;
    assert_status(
        &response,
        406,
        "NotAcceptable",
        "no acceptable representation",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_wire_does_not_wedge_the_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = Cluster::start().await;
    let before = revision(&t).await;
    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"POST /api/v1/namespaces/default/pods HTTP/1.1\r\nContent-Length: nope\r\n\r\n{}",
        b"POST /api/v1/namespaces/default/pods HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ] {
        let answer = vcluster_testkit::within("an answer to garbage", async {
            let mut stream = tokio::net::TcpStream::connect(t.addr).await.unwrap();
            stream.write_all(garbage).await.unwrap();
            let _ = stream.shutdown().await;
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer).await;
            answer
        })
        .await;
        // Either a 4xx or a closed connection; never a success or a hang.
        let text = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || text.starts_with("HTTP/1.1 4"),
            "{garbage:?} got {text}"
        );
    }
    // A request with a huge header is refused or served, but answered.
    let big = "a".repeat(1024 * 1024);
    let answer = vcluster_testkit::within("an answer to a huge header", async {
        let mut stream = tokio::net::TcpStream::connect(t.addr).await.unwrap();
        let request = format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\nConnection: close\r\n\r\n"
        );
        let _ = stream.write_all(request.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        answer
    })
    .await;
    let text = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || text.starts_with("HTTP/1.1 4"),
        "{text}"
    );

    // Still healthy, still serving writes, nothing stored from the garbage.
    assert_eq!(revision(&t).await, before);
    let response = t.raw("GET", "/healthz", &[], b"").await;
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"ok"[..])
    );
    let response = post(&t, PODS, JSON, valid_pod("after").to_string().as_bytes()).await;
    assert_eq!(response.status, 201);
    assert_eq!(t.stored_names("", "pods", None).await, ["after"]);
}
