//! CRUD and its errors, pagination, selectors, cluster-scoped kinds and
//! the status subresource, through kube-rs `Api<K>`.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_create_get_list_replace_delete() {
    let t = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(t.client(), "default");

    let created = pods
        .create(&PostParams::default(), &pod("web", &[("app", "web")]))
        .await
        .unwrap();
    assert!(created.uid().is_some_and(|u| !u.is_empty()));
    assert!(created.creation_timestamp().is_some());
    assert_eq!(created.namespace().as_deref(), Some("default"));
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(
        created.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Pending")
    );

    let got = pods.get("web").await.unwrap();
    assert_eq!(got.uid(), created.uid());
    assert_eq!(rv(&got), rv(&created));

    let listed = pods.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        listed
            .items
            .iter()
            .map(|p| p.name_any())
            .collect::<Vec<_>>(),
        ["web"]
    );
    let list_rv: u64 = listed
        .metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    assert!(list_rv >= rv(&created));

    // Replace: a label change is stored, the RV moves, the uid stays, and
    // metadata changes do not bump the generation.
    let mut changed = got.clone();
    changed
        .labels_mut()
        .insert("tier".into(), "frontend".into());
    let replaced = pods
        .replace("web", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_eq!(
        replaced.labels().get("tier").map(String::as_str),
        Some("frontend")
    );
    assert!(rv(&replaced) > rv(&got));
    assert_eq!(replaced.uid(), created.uid());
    assert_eq!(replaced.metadata.generation, Some(1));
    assert_eq!(
        t.stored("", "pods", Some("default"), "web").await.unwrap()["metadata"]["labels"]["tier"],
        "frontend"
    );

    // generateName.
    let mut generated = pod("", &[]);
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("batch-".into());
    let generated = pods
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    let name = generated.name_any();
    assert!(
        name.starts_with("batch-") && name.len() == "batch-".len() + 5,
        "{name}"
    );

    // Dry run stores nothing.
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    pods.create(&dry, &pod("dry", &[])).await.unwrap();
    assert!(pods.get_opt("dry").await.unwrap().is_none());

    // Delete returns the object, and it is gone.
    let deleted = pods.delete("web", &DeleteParams::default()).await.unwrap();
    let deleted = deleted.left().expect("the deleted pod");
    assert_eq!(deleted.uid(), created.uid());
    assert!(pods.get_opt("web").await.unwrap().is_none());
    let err = t
        .stored("", "pods", Some("default"), "web")
        .await
        .unwrap_err();
    assert_eq!(err.code.as_u16(), 404);
    assert_eq!(
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|p| p.name_any())
            .collect::<Vec<_>>(),
        [name]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_and_not_found_are_api_errors() {
    let t = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(t.client(), "default");
    let first = pods
        .create(&PostParams::default(), &pod("web", &[]))
        .await
        .unwrap();

    let (code, reason, message) =
        api_error(pods.create(&PostParams::default(), &pod("web", &[])).await);
    assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(message, r#"pods "web" already exists"#);

    // Move the object on, then write with the first version: stale.
    let mut newer = first.clone();
    newer.labels_mut().insert("v".into(), "2".into());
    let newer = pods
        .replace("web", &PostParams::default(), &newer)
        .await
        .unwrap();
    let mut stale = first.clone();
    stale.labels_mut().insert("v".into(), "stale".into());
    let (code, reason, message) =
        api_error(pods.replace("web", &PostParams::default(), &stale).await);
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert!(
        message.contains("the object has been modified"),
        "{message}"
    );
    let stored = pods.get("web").await.unwrap();
    assert_eq!(rv(&stored), rv(&newer), "the stale write stored nothing");
    assert_eq!(stored.labels().get("v").map(String::as_str), Some("2"));

    // Delete with a stale resourceVersion precondition is a conflict too.
    let stale_delete = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            resource_version: first.resource_version(),
            uid: None,
        }),
        ..DeleteParams::default()
    };
    let (code, reason, _) = api_error(pods.delete("web", &stale_delete).await);
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert!(pods.get_opt("web").await.unwrap().is_some());

    // 404s.
    let (code, reason, message) = api_error(pods.get("nope").await);
    assert_eq!((code, reason.as_str()), (404, "NotFound"));
    assert_eq!(message, r#"pods "nope" not found"#);
    let (code, reason, _) = api_error(pods.delete("nope", &DeleteParams::default()).await);
    assert_eq!((code, reason.as_str()), (404, "NotFound"));
    let (code, reason, _) = api_error(
        pods.replace("nope", &PostParams::default(), &pod("nope", &[]))
            .await,
    );
    assert_eq!((code, reason.as_str()), (404, "NotFound"));
    let elsewhere: Api<Pod> = Api::namespaced(t.client(), "missing");
    let (code, reason, message) = api_error(
        elsewhere
            .create(&PostParams::default(), &pod("web", &[]))
            .await,
    );
    assert_eq!((code, reason.as_str()), (404, "NotFound"));
    assert_eq!(message, r#"namespaces "missing" not found"#);

    // 422 with causes for an invalid name.
    match pods
        .create(&PostParams::default(), &pod("Not_Valid", &[]))
        .await
    {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
            let causes = status
                .details
                .as_ref()
                .map(|d| d.causes.clone())
                .unwrap_or_default();
            assert_eq!(causes.len(), 1, "{causes:?}");
            assert_eq!(causes[0].field, "metadata.name");
            assert_eq!(causes[0].reason, "FieldValueInvalid");
        }
        other => panic!("expected 422, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_are_one_consistent_snapshot() {
    let t = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(t.client(), "default");
    let mut expected = BTreeSet::new();
    for i in 0..23 {
        let name = format!("pod-{i:02}");
        pods.create(&PostParams::default(), &pod(&name, &[("app", "paged")]))
            .await
            .unwrap();
        expected.insert(name);
    }

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut snapshot_rv: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut params = ListParams::default().limit(5);
        if let Some(token) = &token {
            params = params.continue_token(token);
        }
        let page = pods.list(&params).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 5);
        let page_rv = page.metadata.resource_version.clone().unwrap();
        match &snapshot_rv {
            None => snapshot_rv = Some(page_rv),
            Some(first) => assert_eq!(&page_rv, first, "every page is read at one revision"),
        }
        for item in &page.items {
            assert!(rv(item) <= snapshot_rv.as_deref().unwrap().parse().unwrap());
        }
        seen.extend(page.items.iter().map(|p| p.name_any()));
        // Writes between pages: none of them may show up in this list.
        let i = pages;
        pods.create(
            &PostParams::default(),
            &pod(&format!("pod-{i:02}-late"), &[]),
        )
        .await
        .unwrap();
        pods.delete(&format!("pod-{:02}", 22 - i), &DeleteParams::default())
            .await
            .unwrap();
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(next) => {
                let remaining = page
                    .metadata
                    .remaining_item_count
                    .expect("remainingItemCount");
                assert_eq!(remaining as usize, 23 - seen.len());
                token = Some(next);
            }
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 5);
    assert_eq!(seen.len(), 23, "no item twice: {seen:?}");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), expected);
    let sorted = {
        let mut s = seen.clone();
        s.sort();
        s
    };
    assert_eq!(seen, sorted, "pages come in key order");

    // A fresh list sees the writes.
    let now = pods.list(&ListParams::default()).await.unwrap();
    assert_eq!(now.items.len(), 23);
    assert!(now.items.iter().any(|p| p.name_any() == "pod-01-late"));

    // A token for another resource, or garbage, is refused.
    let cms: Api<ConfigMap> = Api::namespaced(t.client(), "default");
    let first = pods.list(&ListParams::default().limit(2)).await.unwrap();
    let token = first.metadata.continue_.unwrap();
    let (code, reason, _) = api_error(
        cms.list(&ListParams::default().limit(2).continue_token(&token))
            .await,
    );
    assert_eq!((code, reason.as_str()), (400, "BadRequest"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_and_field_selectors_filter_lists() {
    let t = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(t.client(), "default");
    for (name, labels) in [
        ("a", vec![("app", "web"), ("tier", "fe")]),
        ("b", vec![("app", "web"), ("tier", "be")]),
        ("c", vec![("app", "db")]),
    ] {
        pods.create(&PostParams::default(), &pod(name, &labels))
            .await
            .unwrap();
    }
    pods.patch_status(
        "c",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running"}})),
    )
    .await
    .unwrap();
    let names = |list: kube::core::ObjectList<Pod>| -> Vec<String> {
        list.items.iter().map(|p| p.name_any()).collect()
    };
    for (labels, fields, expected) in [
        (Some("app=web"), None, vec!["a", "b"]),
        (Some("app in (db, web),tier!=fe"), None, vec!["b", "c"]),
        (Some("tier"), None, vec!["a", "b"]),
        (Some("!tier"), None, vec!["c"]),
        (None, Some("status.phase=Running"), vec!["c"]),
        (None, Some("status.phase!=Running"), vec!["a", "b"]),
        (None, Some("metadata.name=a"), vec!["a"]),
        (Some("app=web"), Some("metadata.name!=a"), vec!["b"]),
        (
            None,
            Some("metadata.namespace=default"),
            vec!["a", "b", "c"],
        ),
        (None, Some("metadata.namespace=other"), vec![]),
    ] {
        let mut params = ListParams::default();
        if let Some(l) = labels {
            params = params.labels(l);
        }
        if let Some(f) = fields {
            params = params.fields(f);
        }
        assert_eq!(
            names(pods.list(&params).await.unwrap()),
            expected,
            "labels {labels:?} fields {fields:?}"
        );
    }
    // Paginated and filtered at once.
    let page = pods
        .list(&ListParams::default().labels("app=web").limit(1))
        .await
        .unwrap();
    assert_eq!(names(page.clone()), ["a"]);
    let page = pods
        .list(
            &ListParams::default()
                .labels("app=web")
                .limit(1)
                .continue_token(&page.metadata.continue_.unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(names(page), ["b"]);

    let (code, reason, _) = api_error(
        pods.list(&ListParams::default().fields("spec.bogus=1"))
            .await,
    );
    assert_eq!((code, reason.as_str()), (400, "BadRequest"));
    let (code, _, _) = api_error(pods.list(&ListParams::default().labels("a in (")).await);
    assert_eq!(code, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_are_cluster_scoped() {
    let t = Cluster::start().await;
    let namespaces: Api<Namespace> = Api::all(t.client());
    let names: BTreeSet<String> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|n| n.name_any())
        .collect();
    assert_eq!(
        names,
        ["default", "kube-node-lease", "kube-public", "kube-system"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    );

    let mut ns = Namespace::default();
    ns.metadata.name = Some("team-a".into());
    ns.metadata.namespace = None;
    let created = namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    assert_eq!(
        created.namespace(),
        None,
        "cluster-scoped objects have none"
    );
    assert_eq!(
        created.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Active")
    );
    let got = namespaces.get("team-a").await.unwrap();
    assert_eq!(got.uid(), created.uid());

    // Objects can now live in it; all-namespace lists see them.
    let cms: Api<ConfigMap> = Api::namespaced(t.client(), "team-a");
    cms.create(
        &PostParams::default(),
        &config_map("settings", &[("a", "1")]),
    )
    .await
    .unwrap();
    let all: Api<ConfigMap> = Api::all(t.client());
    let listed = all.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        listed
            .items
            .iter()
            .map(|c| (c.namespace().unwrap(), c.name_any()))
            .collect::<Vec<_>>(),
        [("team-a".to_owned(), "settings".to_owned())]
    );

    // An invalid namespace name is a 422 (namespaces are DNS-1123 labels).
    let mut bad = Namespace::default();
    bad.metadata.name = Some("team.a".into());
    let (code, reason, _) = api_error(namespaces.create(&PostParams::default(), &bad).await);
    assert_eq!((code, reason.as_str()), (422, "Invalid"));

    // System namespaces cannot be deleted; others can, with their content.
    let (code, reason, _) = api_error(namespaces.delete("default", &DeleteParams::default()).await);
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    namespaces
        .delete("team-a", &DeleteParams::default())
        .await
        .unwrap();
    // The namespace goes once its content is gone, which the server's
    // namespace deletion does in the background.
    vcluster_testkit::eventually_gone("namespace team-a to go", &namespaces, "team-a").await;
    assert!(all
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_subresource_keeps_spec_and_status_apart() {
    let t = Cluster::start().await;
    let deployments: Api<Deployment> = Api::namespaced(t.client(), "default");
    let created = deployments
        .create(&PostParams::default(), &deployment("web", 1))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));

    // The main resource ignores status but takes spec (generation + 1).
    let mut main = created.clone();
    main.spec.as_mut().unwrap().replicas = Some(3);
    main.status = Some(serde_json::from_value(json!({"replicas": 42})).unwrap());
    let updated = deployments
        .replace("web", &PostParams::default(), &main)
        .await
        .unwrap();
    assert_eq!(updated.spec.as_ref().unwrap().replicas, Some(3));
    assert_eq!(updated.metadata.generation, Some(2));
    assert_ne!(
        updated.status.as_ref().and_then(|s| s.replicas),
        Some(42),
        "status ignored by the main resource"
    );

    // The status subresource takes status and ignores spec and labels.
    let mut status_write = updated.clone();
    status_write.spec.as_mut().unwrap().replicas = Some(7);
    status_write
        .labels_mut()
        .insert("ignored".into(), "yes".into());
    status_write.status = Some(
        serde_json::from_value(json!({"replicas": 3, "readyReplicas": 2, "observedGeneration": 2}))
            .unwrap(),
    );
    let after_status = deployments
        .replace_status("web", &PostParams::default(), &status_write)
        .await
        .unwrap();
    let status = after_status.status.as_ref().unwrap();
    assert_eq!((status.replicas, status.ready_replicas), (Some(3), Some(2)));
    assert_eq!(after_status.spec.as_ref().unwrap().replicas, Some(3));
    assert!(!after_status.labels().contains_key("ignored"));
    assert_eq!(
        after_status.metadata.generation,
        Some(2),
        "status is not spec"
    );

    // Merge patches of status.
    let patched = deployments
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"readyReplicas": 3}, "spec": {"replicas": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.status.as_ref().unwrap().ready_replicas, Some(3));
    assert_eq!(patched.status.as_ref().unwrap().replicas, Some(3));
    assert_eq!(patched.spec.as_ref().unwrap().replicas, Some(3));
    let read = deployments.get_status("web").await.unwrap();
    assert_eq!(read.status.as_ref().unwrap().ready_replicas, Some(3));

    // A merge patch of the main resource leaves status alone.
    let patched = deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}, "status": {"readyReplicas": 0}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.spec.as_ref().unwrap().replicas, Some(4));
    assert_eq!(patched.status.as_ref().unwrap().ready_replicas, Some(3));
    assert_eq!(patched.metadata.generation, Some(3));

    // Stale status writes conflict.
    let (code, reason, _) = api_error(
        deployments
            .replace_status("web", &PostParams::default(), &status_write)
            .await,
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));

    // Pods too: status through /status only.
    let pods: Api<Pod> = Api::namespaced(t.client(), "default");
    let created = pods
        .create(&PostParams::default(), &pod("web", &[]))
        .await
        .unwrap();
    let mut running = created.clone();
    running.status.as_mut().unwrap().phase = Some("Running".into());
    let ignored = pods
        .replace("web", &PostParams::default(), &running)
        .await
        .unwrap();
    assert_eq!(
        ignored.status.as_ref().unwrap().phase.as_deref(),
        Some("Pending")
    );
    assert_eq!(rv(&ignored), rv(&created), "a no-op update writes nothing");
    let running = pods
        .replace_status("web", &PostParams::default(), &running)
        .await
        .unwrap();
    assert_eq!(
        running.status.as_ref().unwrap().phase.as_deref(),
        Some("Running")
    );
}
