//! CustomResourceDefinitions through kubectl and kube-rs: served,
//! validated, terminated with their objects, and served again after a
//! restart.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_serves_a_crd_and_its_custom_resources_then_deletes_them() {
    let t = Cluster::start().await;
    let crd = t.write_file("crd.yaml", CRD);
    let crd = crd.display().to_string();
    t.kubectl_ok(&["apply", "-f", &crd]).await;
    t.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd/crontabs.stable.example.com",
        "--timeout=10s",
    ])
    .await;
    let table = Table::parse(&t.kubectl_ok(&["get", "crd"]).await);
    assert_eq!(table.header, ["NAME", "CREATED AT"]);
    table.row("crontabs.stable.example.com");
    // Applying the same file again is a no-op update.
    t.kubectl_ok(&["apply", "-f", &crd]).await;

    // kubectl explain finds the custom kind in /openapi/v3, described by
    // the CRD's schema, with the standard metadata.
    let explained = t.kubectl_ok(&["explain", "crontabs.spec.cronSpec"]).await;
    assert!(explained.contains("KIND:       CronTab"), "{explained}");
    assert!(
        explained.contains("FIELD: cronSpec <string>"),
        "{explained}"
    );
    assert!(
        explained.contains("When the job runs, in five-field cron syntax."),
        "{explained}"
    );
    let explained = t.kubectl_ok(&["explain", "ct"]).await;
    assert!(explained.contains("metadata\t<ObjectMeta>"), "{explained}");
    assert!(explained.contains("spec\t<Object>"), "{explained}");

    // Strict field validation refuses unknown fields; without it they are
    // pruned, and defaults are filled.
    let cron = t.write_file("cron.yaml", CRON_TAB).display().to_string();
    let err = t.kubectl_err(&["create", "-f", &cron]).await;
    assert!(
        err.contains("unknown field \\\"spec.unknownField\\\"")
            || err.contains("unknown field \"spec.unknownField\""),
        "{err}"
    );
    t.kubectl_ok(&["create", "-f", &cron, "--validate=false"])
        .await;
    let stored = t
        .stored("stable.example.com", "crontabs", Some("default"), "my-cron")
        .await
        .expect("stored");
    assert!(stored["spec"].get("unknownField").is_none(), "{stored}");
    assert_eq!(stored["spec"]["replicas"], 1, "defaulted");

    // Schema validation: pattern and maximum.
    let bad = t.write_file("bad.yaml", BAD_CRON_TAB).display().to_string();
    let err = t.kubectl_err(&["create", "-f", &bad]).await;
    assert!(err.contains("spec.cronSpec in body should match"), "{err}");
    assert!(
        err.contains("spec.replicas in body should be less than or equal to 10"),
        "{err}"
    );

    // kubectl get by plural, singular, short name and category, with the
    // printer columns.
    for what in ["crontabs", "crontab", "ct"] {
        let table = Table::parse(&t.kubectl_ok(&["get", what]).await);
        assert_eq!(table.header, ["NAME", "SPEC", "REPLICAS", "AGE"], "{what}");
        let row = table.row("my-cron");
        assert_eq!(table.cell(row, "SPEC"), "* * * * */5");
        assert_eq!(table.cell(row, "REPLICAS"), "1");
    }
    let all = t.kubectl_ok(&["get", "all"]).await;
    assert!(all.contains("crontab.stable.example.com/my-cron"), "{all}");
    // Another served version reads the same object.
    let other = t
        .kubectl_ok(&[
            "get",
            "crontabs.v1beta1.stable.example.com",
            "my-cron",
            "-o",
            "json",
        ])
        .await;
    let other: Value = serde_json::from_str(&other).expect("json");
    assert_eq!(other["apiVersion"], "stable.example.com/v1beta1");
    assert_eq!(other["spec"]["cronSpec"], "* * * * */5");

    // The scale subresource.
    t.kubectl_ok(&["scale", "crontab", "my-cron", "--replicas=3"])
        .await;
    let replicas = t
        .kubectl_ok(&["get", "ct", "my-cron", "-o", "jsonpath={.spec.replicas}"])
        .await;
    assert_eq!(replicas.trim(), "3");

    // Deleting the CRD removes its objects and stops serving the resource.
    t.kubectl_ok(&[
        "delete",
        "crd",
        "crontabs.stable.example.com",
        "--timeout=20s",
    ])
    .await;
    assert!(t
        .kubectl_err(&["get", "crd", "crontabs.stable.example.com"])
        .await
        .contains("NotFound"));
    // kubectl answers from its discovery cache or asks again; either way
    // the server no longer serves the resource.
    let err = t.kubectl_err(&["get", "crontabs"]).await;
    assert!(
        err.contains("the server doesn't have a resource type \"crontabs\"")
            || err.contains("the server could not find the requested resource"),
        "{err}"
    );
    let gone = t
        .raw("GET", "/apis/stable.example.com/v1/crontabs", &[], b"")
        .await;
    assert_eq!(gone.status, 404);
    let left = t
        .storage
        .list(vcluster_apiserver::storage::ListRequest::prefix(
            "/registry/stable.example.com/",
        ))
        .await
        .expect("list");
    assert!(left.items.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminating_crd_refuses_new_objects_and_waits_for_finalizers() {
    let t = Cluster::start().await;
    let crd = t.write_file("crd.yaml", CRD).display().to_string();
    t.kubectl_ok(&["create", "-f", &crd]).await;
    let held = json!({
        "apiVersion": "stable.example.com/v1", "kind": "CronTab",
        "metadata": {"name": "held", "finalizers": ["example.com/hold"]},
        "spec": {"cronSpec": "* * * * *"},
    });
    let created = t
        .raw(
            "POST",
            "/apis/stable.example.com/v1/namespaces/default/crontabs",
            &[("Content-Type", "application/json")],
            held.to_string().as_bytes(),
        )
        .await;
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    // Status goes through /status only; replicas through /scale.
    let status = t
        .raw(
            "PATCH",
            "/apis/stable.example.com/v1/namespaces/default/crontabs/held/status",
            &[("Content-Type", "application/merge-patch+json")],
            br#"{"status":{"replicas":2}}"#,
        )
        .await;
    assert_eq!(
        status.status,
        200,
        "{}",
        String::from_utf8_lossy(&status.body)
    );
    let scale = t
        .raw(
            "GET",
            "/apis/stable.example.com/v1/namespaces/default/crontabs/held/scale",
            &[],
            b"",
        )
        .await
        .json();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 1);
    assert_eq!(scale["status"]["replicas"], 2);

    t.kubectl_ok(&[
        "delete",
        "crd",
        "crontabs.stable.example.com",
        "--wait=false",
    ])
    .await;
    let definition = t
        .stored(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            None,
            "crontabs.stable.example.com",
        )
        .await
        .expect("still there");
    let conditions = definition["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .clone();
    assert!(conditions
        .iter()
        .any(|c| c["type"] == "Terminating" && c["status"] == "True"));
    let refused = t
        .raw(
            "POST",
            "/apis/stable.example.com/v1/namespaces/default/crontabs",
            &[("Content-Type", "application/json")],
            br#"{"metadata":{"name":"late"},"spec":{"cronSpec":"* * * * *"}}"#,
        )
        .await;
    assert_eq!(refused.status, 405);
    assert!(refused.json()["message"]
        .as_str()
        .unwrap_or("")
        .contains("not allowed while custom resource definition is terminating"));
    eventually("the held object to be marked", || async {
        let cr = t
            .stored("stable.example.com", "crontabs", Some("default"), "held")
            .await
            .ok()?;
        cr["metadata"]["deletionTimestamp"]
            .is_string()
            .then_some(())
    })
    .await;
    let release = t
        .raw(
            "PATCH",
            "/apis/stable.example.com/v1/namespaces/default/crontabs/held",
            &[("Content-Type", "application/merge-patch+json")],
            br#"{"metadata":{"finalizers":null}}"#,
        )
        .await;
    assert_eq!(
        release.status,
        200,
        "{}",
        String::from_utf8_lossy(&release.body)
    );
    eventually("the CRD to go", || async {
        t.stored(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            None,
            "crontabs.stable.example.com",
        )
        .await
        .is_err()
        .then_some(())
    })
    .await;
    let gone = t
        .raw("GET", "/apis/stable.example.com/v1/crontabs", &[], b"")
        .await;
    assert_eq!(gone.status, 404);
    let discovery = t.raw("GET", "/apis", &[], b"").await.json();
    assert!(!discovery.to_string().contains("stable.example.com"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crds_are_discovered_watched_and_served_again_after_a_restart() {
    let storage = MemoryStorage::new();
    let t = Cluster::start_with(Options {
        storage: storage.clone(),
        ..Options::default()
    })
    .await;
    let crd = t.write_file("crd.yaml", CRD).display().to_string();
    t.kubectl_ok(&["create", "-f", &crd]).await;
    // Legacy and aggregated discovery both list it at once.
    let group = t
        .raw("GET", "/apis/stable.example.com", &[], b"")
        .await
        .json();
    assert_eq!(group["preferredVersion"]["version"], "v1");
    let resources = t
        .raw("GET", "/apis/stable.example.com/v1", &[], b"")
        .await
        .json();
    let names: Vec<&str> = resources["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["crontabs", "crontabs/status", "crontabs/scale"]);
    let aggregated = t
        .raw(
            "GET",
            "/apis",
            &[(
                "Accept",
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
            )],
            b"",
        )
        .await
        .json();
    let entry = aggregated["items"]
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .find(|g| g["metadata"]["name"] == "stable.example.com")
        })
        .cloned()
        .expect("aggregated group");
    assert_eq!(entry["versions"][0]["version"], "v1");
    assert_eq!(
        entry["versions"][0]["resources"][0]["shortNames"],
        json!(["ct"])
    );

    // Watch custom resources through kube-rs's dynamic API.
    let resource = kube::discovery::ApiResource {
        group: "stable.example.com".into(),
        version: "v1".into(),
        api_version: "stable.example.com/v1".into(),
        kind: "CronTab".into(),
        plural: "crontabs".into(),
    };
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(t.client(), "default", &resource);
    let mut events = kube::runtime::watcher(api.clone(), watcher::Config::default()).boxed();
    let object: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "stable.example.com/v1", "kind": "CronTab",
        "metadata": {"name": "watched"}, "spec": {"cronSpec": "* * * * *"},
    }))
    .expect("object");
    api.create(&PostParams::default(), &object)
        .await
        .expect("create");
    within("the watch to see the custom resource", async {
        loop {
            match events.next().await {
                Some(Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)))
                    if o.name_any() == "watched" =>
                {
                    assert_eq!(o.data["spec"]["replicas"], 1);
                    break;
                }
                Some(_) => {}
                None => panic!("watch ended"),
            }
        }
    })
    .await;
    drop(events);
    drop(t);

    // A new server over the same store serves the CRD from the start.
    let again = Cluster::start_with(Options {
        storage,
        ..Options::default()
    })
    .await;
    let listed = again.kubectl_ok(&["get", "crontabs", "-o", "name"]).await;
    assert_eq!(listed.trim(), "crontab.stable.example.com/watched");
}
