//! The connection: a watch client that never reads is cut off without
//! blocking others, and kube-rs over TLS.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_client_that_never_reads_is_cut_off_without_blocking_others() {
    let t = Cluster::start_with(Options {
        configure: Box::new(|config| {
            config.watch = WatchLimits {
                client_buffer: 8,
                ..WatchLimits::default()
            }
        }),
        ..Options::default()
    })
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client(), "default");
    let from = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let hub = t.server.registry().hub().clone();

    // The slow client: a raw watch with a tiny receive buffer, never read.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut slow = within("connect", socket.connect(t.addr)).await.unwrap();
    slow.write_all(
        format!(
            "GET /api/v1/namespaces/default/configmaps?watch=true&resourceVersion={from} HTTP/1.1\r\nHost: {}\r\n\r\n",
            t.addr
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    eventually("the slow watch to open", || {
        let open = hub.open_watchers();
        async move { (open == 1).then_some(()) }
    })
    .await;

    // A normal watcher, read all the time.
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = received.clone();
    let mut normal = cms
        .watch(&WatchParams::default().disable_bookmarks(), &from)
        .await
        .unwrap()
        .boxed();
    let reader = tokio::spawn(async move {
        while let Some(event) = normal.next().await {
            let line = match event {
                Ok(WatchEvent::Added(cm)) => cm.name_any(),
                other => format!("unexpected {other:?}"),
            };
            sink.lock().unwrap().push(line);
        }
    });
    eventually("the normal watch to open", || {
        let open = hub.open_watchers();
        async move { (open == 2).then_some(()) }
    })
    .await;

    // Big objects, far more than the slow client's socket buffers and
    // its 8-event queue hold. The writer paces itself on the normal
    // watcher, which must see every one of them.
    let payload = "x".repeat(128 * 1024);
    let in_process: Api<ConfigMap> = Api::namespaced(t.server.client(), "default");
    const N: usize = 100;
    for i in 0..N {
        let name = format!("big{i:03}");
        in_process
            .create(
                &PostParams::default(),
                &config_map(&name, &[("blob", &payload)]),
            )
            .await
            .unwrap();
        eventually("the normal watcher to keep up", || {
            let got = received.lock().unwrap().len();
            async move { (got > i).then_some(()) }
        })
        .await;
    }
    let got = received.lock().unwrap().clone();
    let expected: Vec<String> = (0..N).map(|i| format!("big{i:03}")).collect();
    assert_eq!(
        got, expected,
        "the normal watcher saw every event, in order"
    );

    // Now read the slow client: what fitted in its buffers, then an
    // ERROR (410 Expired) saying it was cut off, then the end of the stream.
    let mut raw = Vec::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let body = within("the slow client's stream to end", async {
        loop {
            let n = slow.read(&mut buffer).await.unwrap();
            raw.extend_from_slice(&buffer[..n]);
            if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let (body, complete) = vcluster_testkit::http::dechunk(&raw[split + 4..]);
                if complete {
                    return body;
                }
            }
            assert!(
                n > 0,
                "the server closed the connection without ending the stream"
            );
        }
    })
    .await;
    let head =
        String::from_utf8_lossy(&raw[..raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap()])
            .into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let lines = vcluster_testkit::http::watch_lines(&body);
    let (last, events) = lines.split_last().expect("some frames");
    assert!(
        events.len() < N,
        "the slow client was cut off before the end ({} events)",
        events.len()
    );
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event["type"], "ADDED");
        assert_eq!(event["object"]["metadata"]["name"], format!("big{i:03}"));
    }
    assert_eq!(last["type"], "ERROR", "{last}");
    assert_eq!(last["object"]["kind"], "Status");
    assert_eq!(last["object"]["code"], 410);
    assert_eq!(last["object"]["reason"], "Expired");
    assert!(last["object"]["message"]
        .as_str()
        .unwrap()
        .contains("did not keep up"));

    // The normal watcher is still open and still served.
    in_process
        .create(&PostParams::default(), &config_map("after", &[]))
        .await
        .unwrap();
    eventually("the normal watcher to see one more", || {
        let last = received.lock().unwrap().last().cloned();
        async move { (last.as_deref() == Some("after")).then_some(()) }
    })
    .await;
    eventually("the slow watch to be released", || {
        let open = hub.open_watchers();
        async move { (open == 1).then_some(()) }
    })
    .await;
    reader.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_client_over_tls() {
    let t = Cluster::start_tls().await;
    let pods: Api<Pod> = Api::namespaced(t.client(), "default");
    let created = pods
        .create(&PostParams::default(), &pod("secure", &[]))
        .await
        .unwrap();
    assert_eq!(pods.get("secure").await.unwrap().uid(), created.uid());
    let events: Vec<_> = within(
        "a watch over TLS",
        watcher(pods.clone(), watcher::Config::default())
            .applied_objects()
            .take(1)
            .try_collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    assert_eq!(events[0].name_any(), "secure");

    // A client that trusts another certificate is refused.
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let mut config = kube::Config::new(t.url.parse().unwrap());
    config.root_cert = Some(vec![other.cert.der().to_vec()]);
    let untrusting: Api<Pod> = Api::namespaced(kube::Client::try_from(config).unwrap(), "default");
    let result = within("an untrusted TLS call", untrusting.get("secure")).await;
    assert!(
        !matches!(result, Ok(_) | Err(kube::Error::Api(_))),
        "the TLS handshake must fail: {result:?}"
    );
}
