//! Random and mutated request bodies, selectors, query strings and deep
//! patches through the in-process router: always a Status, never a
//! panic, nothing stored when refused.

use super::*;

/// One kind of request to fuzz: method, path, and valid bodies (with
/// their content types) to start from.
struct Target {
    method: Method,
    path: &'static str,
    seeds: Vec<(&'static str, Vec<u8>)>,
}

const JSON_TYPE: &str = "application/json";
const YAML_TYPE: &str = "application/yaml";
const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

fn targets() -> Vec<Target> {
    let pod = vcluster_testkit::http::pod_json("fuzzed", &[("app", "web")]);
    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fuzzed", "labels": {"a": "b"}, "annotations": {"n": "v"}}, "data": {"k": "v"}, "binaryData": {"b": "AAE="}});
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "fuzzed"}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
        "template": {"metadata": {"labels": {"app": "web", "tier": "a"}}, "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}],
            "env": [{"name": "A", "value": "1"}], "resources": {"limits": {"cpu": "1"}}}]}}
    }});
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fuzzed", "labels": {"a": "b"}}});
    let json_patch = json!([{"op": "add", "path": "/metadata/labels", "value": {"x": "y"}}, {"op": "replace", "path": "/data/k", "value": "w"}, {"op": "test", "path": "/data/k", "value": "w"}, {"op": "remove", "path": "/metadata/labels/x"}]);
    let merge = json!({"metadata": {"labels": {"x": "y", "a": null}, "finalizers": ["example.com/f"]}, "data": {"k": null, "n": "1"}});
    let strategic_pod = json!({"metadata": {"labels": {"x": null}, "$setElementOrder/finalizers": []}, "spec": {"containers": [{"name": "c", "image": "nginx:2", "env": [{"name": "E", "value": "1"}, {"name": "F", "$patch": "delete"}]}], "tolerations": [{"key": "k", "operator": "Exists"}]}});
    let strategic_deploy = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 81}], "$retainKeys": ["name", "ports"]}]}}, "strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
    let apply_cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: seed\n  labels: {a: b}\ndata:\n  k: v\n";
    let apply_deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: seed\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - {name: c, image: nginx}\n";
    let status = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "seed"}, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}], "podIP": "10.0.0.1"}});
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "seed"}, "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}});
    let delete = json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0, "propagationPolicy": "Foreground", "preconditions": {"uid": "x"}, "dryRun": ["All"]});
    let scale = json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "seed"}, "spec": {"replicas": 3}});
    let text = |v: &Value| v.to_string().into_bytes();
    let yaml = |v: &Value| serde_yaml::to_string(v).unwrap_or_default().into_bytes();
    let mut seed_cm = config_map.clone();
    seed_cm["metadata"]["name"] = json!("seed");
    let pb = |bytes: &[u8]| bytes.to_vec();
    vec![
        Target {
            method: Method::POST,
            path: CONFIGMAPS,
            seeds: vec![
                (JSON_TYPE, text(&config_map)),
                (YAML_TYPE, yaml(&config_map)),
                (
                    PROTOBUF,
                    pb(include_bytes!(
                        "../../src/protobuf/testdata/kubectl/configmap.pb"
                    )),
                ),
            ],
        },
        Target {
            method: Method::POST,
            path: "/api/v1/namespaces/default/pods",
            seeds: vec![(JSON_TYPE, text(&pod)), (YAML_TYPE, yaml(&pod))],
        },
        Target {
            method: Method::POST,
            path: "/apis/apps/v1/namespaces/default/deployments",
            seeds: vec![
                (JSON_TYPE, text(&deployment)),
                (
                    PROTOBUF,
                    pb(include_bytes!(
                        "../../src/protobuf/testdata/kubectl/deployment.pb"
                    )),
                ),
            ],
        },
        Target {
            method: Method::POST,
            path: "/api/v1/namespaces",
            seeds: vec![(JSON_TYPE, text(&namespace)), (YAML_TYPE, yaml(&namespace))],
        },
        Target {
            method: Method::POST,
            path: "/api/v1/namespaces/default/secrets",
            seeds: vec![(
                PROTOBUF,
                pb(include_bytes!(
                    "../../src/protobuf/testdata/kubectl/secret.pb"
                )),
            )],
        },
        Target {
            method: Method::POST,
            path: "/api/v1/namespaces/default/services",
            seeds: vec![(
                PROTOBUF,
                pb(include_bytes!(
                    "../../src/protobuf/testdata/kubectl/service.pb"
                )),
            )],
        },
        Target {
            method: Method::PUT,
            path: "/api/v1/namespaces/default/configmaps/seed",
            seeds: vec![(JSON_TYPE, text(&seed_cm)), (YAML_TYPE, yaml(&seed_cm))],
        },
        Target {
            method: Method::PATCH,
            path: "/api/v1/namespaces/default/configmaps/seed",
            seeds: vec![
                ("application/json-patch+json", text(&json_patch)),
                ("application/merge-patch+json", text(&merge)),
                ("application/strategic-merge-patch+json", text(&merge)),
            ],
        },
        Target {
            method: Method::PATCH,
            path: "/api/v1/namespaces/default/configmaps/seed?fieldManager=fuzz",
            seeds: vec![("application/apply-patch+yaml", apply_cm.as_bytes().to_vec())],
        },
        Target {
            method: Method::PATCH,
            path: "/api/v1/namespaces/default/pods/seed",
            seeds: vec![
                (
                    "application/strategic-merge-patch+json",
                    text(&strategic_pod),
                ),
                ("application/merge-patch+json", text(&strategic_pod)),
            ],
        },
        Target {
            method: Method::PATCH,
            path: "/apis/apps/v1/namespaces/default/deployments/seed",
            seeds: vec![(
                "application/strategic-merge-patch+json",
                text(&strategic_deploy),
            )],
        },
        Target {
            method: Method::PATCH,
            path: "/apis/apps/v1/namespaces/default/deployments/seed?fieldManager=fuzz&force=true",
            seeds: vec![(
                "application/apply-patch+yaml",
                apply_deploy.as_bytes().to_vec(),
            )],
        },
        Target {
            method: Method::PUT,
            path: "/api/v1/namespaces/default/pods/seed/status",
            seeds: vec![(JSON_TYPE, text(&status))],
        },
        Target {
            method: Method::POST,
            path: "/api/v1/namespaces/default/pods/seed/binding",
            seeds: vec![(JSON_TYPE, text(&binding))],
        },
        Target {
            method: Method::DELETE,
            path: "/api/v1/namespaces/default/configmaps/absent",
            seeds: vec![
                (JSON_TYPE, text(&delete)),
                (
                    PROTOBUF,
                    pb(include_bytes!(
                        "../../src/protobuf/testdata/encoded/deleteoptions_meta.pb"
                    )),
                ),
            ],
        },
        Target {
            method: Method::PUT,
            path: "/apis/apps/v1/namespaces/default/deployments/seed/scale",
            seeds: vec![(JSON_TYPE, text(&scale))],
        },
    ]
}

/// One edit of a byte string.
#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Duplicate(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), 0usize..16).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (
            any::<usize>(),
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 1..8),
                Just(b"{".to_vec()),
                Just(b"[".to_vec()),
                Just(b"\"".to_vec()),
                Just(b"null".to_vec()),
                Just(b"\\u0000".to_vec()),
                Just(b"&a *a ".to_vec()),
                Just(b"\x08".to_vec()),
            ]
        )
            .prop_map(|(i, bytes)| Mutation::Insert(i, bytes)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len();
        let at = |i: usize| if len == 0 { 0 } else { i % (len + 1) };
        match m {
            Mutation::Flip(i, b) if len > 0 => bytes[i % len] ^= b,
            Mutation::Flip(..) => {}
            Mutation::Delete(i, n) => {
                let start = at(*i).min(len);
                let end = (start + n).min(len);
                bytes.drain(start..end);
            }
            Mutation::Insert(i, extra) => {
                let start = at(*i);
                bytes.splice(start..start, extra.iter().copied());
            }
            Mutation::Duplicate(i, n) => {
                let start = at(*i).min(len);
                let end = (start + n).min(len);
                let copy = bytes[start..end].to_vec();
                bytes.splice(end..end, copy);
            }
            Mutation::Truncate(i) => bytes.truncate(at(*i)),
        }
    }
    bytes
}

/// Arbitrary JSON, up to a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        "[a-zA-Z0-9./:_$-]{0,12}".prop_map(Value::String),
        Just(json!("ALL")),
        Just(json!("$patch")),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    "[a-z]{1,8}",
                    Just("metadata".to_owned()),
                    Just("spec".to_owned()),
                    Just("data".to_owned()),
                    Just("$patch".to_owned()),
                    Just("$retainKeys".to_owned()),
                    Just("$setElementOrder/containers".to_owned()),
                    Just("containers".to_owned()),
                    Just("managedFields".to_owned()),
                    Just("finalizers".to_owned()),
                    Just("ownerReferences".to_owned()),
                    Just("op".to_owned()),
                    Just("path".to_owned()),
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A random object that passes the first checks more often: the right
/// `apiVersion`/`kind` and a name, the rest random.
fn objectish() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            Just(("v1", "ConfigMap")),
            Just(("v1", "Pod")),
            Just(("apps/v1", "Deployment")),
            Just(("v1", "Namespace")),
            Just(("v1", "Binding")),
            Just(("autoscaling/v1", "Scale")),
        ],
        "[a-z][a-z0-9-]{0,8}",
        json_value(),
        json_value(),
    )
        .prop_map(|((api_version, kind), name, metadata, spec)| {
            let mut metadata = match metadata {
                Value::Object(m) => Value::Object(m),
                other => json!({"annotations": {"x": other.to_string()}}),
            };
            metadata["name"] = json!(name);
            json!({"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec, "data": spec})
        })
}

/// Every JSON pointer into `value`.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = k.replace('~', "~0").replace('/', "~1");
                pointers(v, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                pointers(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// A seed with one value replaced (or removed): still JSON, but wrong in
/// one place, which reaches validation, defaulting and patching.
fn structural(seed: &[u8], at: prop::sample::Index, replacement: Option<Value>) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<Value>(seed) else {
        return seed.to_vec();
    };
    let mut all = Vec::new();
    pointers(&value, String::new(), &mut all);
    let pointer = all[at.index(all.len())].clone();
    match replacement {
        Some(new) => {
            if let Some(slot) = value.pointer_mut(&pointer) {
                *slot = new;
            }
        }
        None => {
            if let Some((parent, key)) = pointer.rsplit_once('/') {
                match value.pointer_mut(parent) {
                    Some(Value::Object(map)) => {
                        map.remove(&key.replace("~1", "/").replace("~0", "~"));
                    }
                    Some(Value::Array(items)) => {
                        if let Ok(i) = key.parse::<usize>() {
                            if i < items.len() {
                                items.remove(i);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    value.to_string().into_bytes()
}

/// A request: a target's seed, edited as bytes or as JSON, or random
/// bytes, random JSON or a random object in the target's content type.
fn request() -> impl Strategy<Value = (Method, String, Option<String>, Vec<u8>)> {
    let targets = targets();
    (
        (
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
            0..5u8,
        ),
        proptest::collection::vec(mutation(), 1..4),
        any::<prop::sample::Index>(),
        proptest::option::weighted(0.8, json_value()),
        proptest::collection::vec(any::<u8>(), 0..256),
        objectish(),
    )
        .prop_map(
            move |((t, s, mode), mutations, at, replacement, random, object)| {
                let target = &targets[t.index(targets.len())];
                let (content_type, seed) = &target.seeds[s.index(target.seeds.len())];
                let body = match mode {
                    0 => seed.clone(),
                    1 => mutate(seed.clone(), &mutations),
                    2 => structural(seed, at, replacement),
                    3 => random,
                    _ => object.to_string().into_bytes(),
                };
                (
                    target.method.clone(),
                    target.path.to_owned(),
                    Some((*content_type).to_owned()),
                    body,
                )
            },
        )
}

/// Runs `cases` requests built by `strategy` against `t`; returns
/// (requests, failures answered with a Status).
fn fuzz<S>(t: &Cluster, name: &str, strategy: S) -> (usize, usize)
where
    S: Strategy<Value = (Method, String, Option<String>, Vec<u8>)>,
{
    let router = t.server.router();
    let storage = t.storage.clone();
    let handle = tokio::runtime::Handle::current();
    let served = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let started = Instant::now();
    let mut runner = TestRunner::new(RunnerConfig {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 256,
        ..RunnerConfig::default()
    });
    let result = runner.run(&strategy, |(method, path, content_type, body)| {
        let (code, answer, before, after) = tokio::task::block_in_place(|| {
            handle.block_on(async {
                let before = storage.current_revision().await.expect("revision");
                let (code, answer) =
                    call(&router, method.clone(), &path, content_type.as_deref(), body.clone()).await;
                let after = storage.current_revision().await.expect("revision");
                (code, answer, before, after)
            })
        });
        served.fetch_add(1, Ordering::Relaxed);
        if code == 500 {
            return Err(TestCaseError::fail(format!(
                "{method} {path} ({content_type:?}) answered 500: {}",
                String::from_utf8_lossy(&answer)
            )));
        }
        check_status(code, &answer).map_err(TestCaseError::fail)?;
        if code >= 400 {
            failed.fetch_add(1, Ordering::Relaxed);
            if before != after {
                return Err(TestCaseError::fail(format!(
                    "{method} {path} was refused ({code}) but the store moved from {before} to {after}"
                )));
            }
        }
        Ok(())
    });
    let (served, failed) = (served.into_inner(), failed.into_inner());
    println!(
        "FUZZ {name}: {served} requests ({failed} refused with a Status, none 500, no partial write) in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    if let Err(err) = result {
        panic!("{name}: {err}");
    }
    (served, failed)
}

async fn seed_objects(t: &Cluster) {
    let router = t.server.router();
    let pod = vcluster_testkit::http::pod_json("seed", &[("app", "web")]);
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "seed"}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    }});
    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "seed"}, "data": {"k": "v"}});
    for (path, body) in [
        ("/api/v1/namespaces/default/pods", pod),
        ("/apis/apps/v1/namespaces/default/deployments", deployment),
        (CONFIGMAPS, config_map),
    ] {
        let (code, answer) = call(
            &router,
            Method::POST,
            path,
            Some("application/json"),
            body.to_string().into_bytes(),
        )
        .await;
        assert_eq!(code, 201, "{}", String::from_utf8_lossy(&answer));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_and_mutated_bodies_never_panic_and_store_nothing_when_refused() {
    let t = quiet_server().await;
    seed_objects(&t).await;
    let strategy = request();
    let (served, refused) = fuzz(&t, "bodies", strategy);
    assert!(served > 0 && refused > 0);
    // Still serving, and the seeds are all still readable.
    let (code, _) = call(
        &t.server.router(),
        Method::GET,
        CONFIGMAPS,
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_selectors_and_query_strings_are_statuses() {
    let t = quiet_server().await;
    seed_objects(&t).await;
    let noise = "[a-z0-9=!(),<> ._/-]{0,24}|(in|notin|!|=|==|!=|,|\\(|\\)| |a|app|metadata\\.name|spec\\.nodeName|status\\.phase|x/y|\\x00|%|%zz|é){0,12}";
    let key = "(app|tier|a\\.b/c|x|[a-z]{1,3}|-bad|a/b/c|[A-Z]{2}|x{64})";
    let value = "(web|v1|[a-z0-9]{0,4}|-x|x{64}|1|-1|99999999999999999999)";
    let requirement = (key, value, value, 0..8usize).prop_map(|(k, v, w, op)| match op {
        0 => format!("{k}={v}"),
        1 => format!("{k}!={v}"),
        2 => format!("{k} in ({v},{w})"),
        3 => format!("{k} notin ({v})"),
        4 => k,
        5 => format!("!{k}"),
        6 => format!("{k}>{v}"),
        _ => format!("{k}<{w}"),
    });
    let labels = prop_oneof![
        Just(String::new()),
        noise.prop_map(|s| s),
        proptest::collection::vec(requirement, 1..4).prop_map(|r| r.join(",")),
    ];
    let field = (
        "(metadata\\.name|metadata\\.namespace|spec\\.nodeName|status\\.phase|spec\\.unknown|type)",
        "(=|==|!=|~)",
        value,
    )
        .prop_map(|(f, op, v)| format!("{f}{op}{v}"));
    let fields = prop_oneof![
        2 => Just(String::new()),
        1 => noise.prop_map(|s| s),
        1 => proptest::collection::vec(field, 1..3).prop_map(|r| r.join(",")),
    ];
    let strategy = (
        any::<prop::sample::Index>(),
        labels,
        fields,
        prop_oneof![
            6 => Just("".to_owned()),
            1 => Just("&watch=false&limit=1".to_owned()),
            1 => Just("&resourceVersion=0&resourceVersionMatch=NotOlderThan".to_owned()),
            1 => "&[a-zA-Z]{1,10}=[a-zA-Z0-9%]{0,10}",
            1 => Just("&limit=-1".to_owned()),
            1 => Just("&continue=garbage".to_owned()),
            1 => Just("&timeoutSeconds=99999999999999999999".to_owned()),
        ],
    )
        .prop_map(|(path, labels, fields, extra)| {
            let paths = [
                CONFIGMAPS,
                "/api/v1/namespaces/default/pods",
                "/api/v1/pods",
                "/apis/apps/v1/deployments",
                "/api/v1/nodes",
                "/api/v1/namespaces/default/events",
            ];
            let encode =
                |s: &str| -> String { form_urlencoded::byte_serialize(s.as_bytes()).collect() };
            let path = format!(
                "{}?labelSelector={}&fieldSelector={}{extra}",
                paths[path.index(paths.len())],
                encode(&labels),
                encode(&fields),
            );
            (Method::GET, path, None, Vec::new())
        });
    fuzz(&t, "selectors", strategy);
}

/// Aliases and deep structures in YAML and in patches: refused or bounded,
/// never a crash, never a partial write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_and_deep_patches_are_bounded() {
    let t = quiet_server().await;
    seed_objects(&t).await;
    let router = t.server.router();
    let before = t.storage.current_revision().await.expect("revision");
    // "Billion laughs": nine levels of aliases of ten.
    let mut laughs = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for level in 1..9u8 {
        let prev = (b'a' + level - 1) as char;
        let name = (b'a' + level) as char;
        laughs.push_str(&format!(
            "{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        ));
    }
    let laughs_object =
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: laughs\n{laughs}");
    let depth = 50_000;
    let deep_merge = format!("{}1{}", r#"{"data":"#.repeat(depth), "}".repeat(depth));
    let deep_pointer = json!([{"op": "add", "path": format!("/metadata/labels{}", "/a".repeat(20_000)), "value": "x"}]).to_string();
    let deep_strategic = format!(
        r#"{{"spec":{{"containers":[{{"name":"c","env":{}1{}}}]}}}}"#,
        r#"[{"name":"#.repeat(5_000),
        "}]".repeat(5_000)
    );
    let nested_fields = json!({"metadata": {"managedFields": [{"manager": "m", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
        "fieldsV1": serde_json::from_str::<Value>(&format!("{}{{}}{}", r#"{"f:a":"#.repeat(120), "}".repeat(120))).expect("json")}]}});
    let cases: Vec<(Method, &str, &str, Vec<u8>)> = vec![
        (
            Method::POST,
            CONFIGMAPS,
            "application/yaml",
            laughs_object.into_bytes(),
        ),
        (
            Method::PATCH,
            "/api/v1/namespaces/default/configmaps/seed?fieldManager=fuzz",
            "application/apply-patch+yaml",
            laughs.clone().into_bytes(),
        ),
        (
            Method::PATCH,
            "/api/v1/namespaces/default/configmaps/seed",
            "application/merge-patch+json",
            deep_merge.clone().into_bytes(),
        ),
        (
            Method::PATCH,
            "/api/v1/namespaces/default/configmaps/seed",
            "application/strategic-merge-patch+json",
            deep_merge.into_bytes(),
        ),
        (
            Method::PATCH,
            "/api/v1/namespaces/default/configmaps/seed",
            "application/json-patch+json",
            deep_pointer.into_bytes(),
        ),
        (
            Method::PATCH,
            "/api/v1/namespaces/default/pods/seed",
            "application/strategic-merge-patch+json",
            deep_strategic.into_bytes(),
        ),
    ];
    for (method, path, content_type, body) in cases {
        let (code, answer) = call(&router, method.clone(), path, Some(content_type), body).await;
        assert!(
            (400..500).contains(&code),
            "{method} {path} {content_type}: {code} {}",
            String::from_utf8_lossy(&answer)
        );
        check_status(code, &answer).unwrap_or_else(|e| panic!("{content_type}: {e}"));
    }
    assert_eq!(
        t.storage.current_revision().await.expect("revision"),
        before,
        "nothing stored"
    );
    // Nesting within the decoder's limit, where the kind allows any JSON
    // (managed fields): accepted or refused, but answered.
    let (code, answer) = call(
        &router,
        Method::PATCH,
        "/api/v1/namespaces/default/configmaps/seed",
        Some("application/merge-patch+json"),
        nested_fields.to_string().into_bytes(),
    )
    .await;
    assert_ne!(code, 500, "{}", String::from_utf8_lossy(&answer));
    check_status(code, &answer).expect("a Status");
}
