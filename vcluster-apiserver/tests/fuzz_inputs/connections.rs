//! Hostile connections over TCP: huge headers, a body sent byte by byte,
//! one user opening every watch, a watch client that never reads.

use super::*;

/// Reads one HTTP/1.1 response head (and the status code) from `stream`.
async fn read_head(stream: &mut TcpStream) -> (u16, String) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(0) | Err(_) => break,
            Ok(_) => head.push(byte[0]),
        }
        assert!(head.len() < 64 * 1024, "response head too long");
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

/// Sends `request` (ignoring a write the server cuts short) and reads
/// whatever answer arrives before the server closes.
async fn send_and_read(addr: SocketAddr, request: &[u8]) -> (u16, Vec<u8>) {
    within("a raw exchange", async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let _ = stream.write_all(request).await;
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        let text = String::from_utf8_lossy(&raw);
        let code = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (code, raw)
    })
    .await
}

/// Whether `raw` holds a whole response with a `Content-Length` body.
fn response_complete(raw: &[u8]) -> bool {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    length.is_some_and(|len| raw.len() >= end + 4 + len)
}

async fn healthy(addr: SocketAddr) {
    let response = raw_request(addr, "GET", "/healthz", &[], b"").await;
    assert_eq!(response.status, 200, "the server stopped answering");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_headers_are_refused_by_explicit_limits() {
    let t = Cluster::start_with(vcluster_testkit::cluster::Options {
        configure: Box::new(|c| {
            c.http.max_header_bytes = 64 * 1024;
            c.http.max_headers = 50;
        }),
        ..vcluster_testkit::cluster::Options::default()
    })
    .await;
    let request = |extra: &str| {
        format!("GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n")
            .into_bytes()
    };
    // One huge header, far above the limit, and one just above it.
    for size in [4 << 20, 80 * 1024] {
        let (code, _) = send_and_read(
            t.addr,
            &request(&format!("X-Big: {}\r\n", "a".repeat(size))),
        )
        .await;
        assert!(code == 431 || code == 0, "{size} bytes of header: {code}");
        healthy(t.addr).await;
    }
    // Too many header fields.
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let (code, _) = send_and_read(t.addr, &request(&many)).await;
    assert!(code == 431 || code == 0, "200 headers: {code}");
    // Below the limits: served.
    let (code, raw) = send_and_read(
        t.addr,
        &request(&format!("X-Ok: {}\r\n", "a".repeat(32 * 1024))),
    )
    .await;
    assert_eq!(
        code,
        200,
        "{}",
        String::from_utf8_lossy(&raw[..raw.len().min(300)])
    );
    healthy(t.addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_byte_by_byte_times_out_with_408_and_stores_nothing() {
    let t = Cluster::start_with(vcluster_testkit::cluster::Options {
        configure: Box::new(|c| c.http.body_read_timeout = Duration::from_millis(800)),
        ..vcluster_testkit::cluster::Options::default()
    })
    .await;
    let before = t.storage.current_revision().await.expect("revision");
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "slow"}, "data": {"k": "v"}}).to_string();
    let mut stream = TcpStream::connect(t.addr).await.expect("connect");
    let head = format!(
        "POST {CONFIGMAPS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        for byte in body.as_bytes() {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    // Others are served meanwhile.
    let other = raw_request(t.addr, "GET", CONFIGMAPS, &[], b"").await;
    assert_eq!(other.status, 200);
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "another client waited for the slow one"
    );
    let answer = within("the 408", async {
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
            if response_complete(&raw) {
                break;
            }
        }
        raw
    })
    .await;
    trickle.abort();
    let response = vcluster_testkit::http::parse_response(&answer);
    assert_eq!(
        response.status,
        408,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    let status = response.json();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Timeout");
    assert_eq!(status["code"], 408);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(700) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert_eq!(
        t.storage.current_revision().await.expect("revision"),
        before,
        "nothing stored"
    );
    healthy(t.addr).await;
}

/// Opens a raw watch from `local` (a loopback address to bind, for another
/// client address) and returns the stream and the answer's status code.
async fn open_watch(addr: SocketAddr, local: Option<&str>, path: &str) -> (TcpStream, u16) {
    let socket = TcpSocket::new_v4().expect("socket");
    if let Some(local) = local {
        socket
            .bind(format!("{local}:0").parse().expect("local address"))
            .expect("bind a loopback source address");
    }
    let mut stream = socket.connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let (code, _) = within("a watch's answer", read_head(&mut stream)).await;
    (stream, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_cannot_take_every_watch() {
    let t = Cluster::start_with(vcluster_testkit::cluster::Options {
        configure: Box::new(|c| c.watch.max_watchers_per_user = 4),
        ..vcluster_testkit::cluster::Options::default()
    })
    .await;
    let path = format!("{CONFIGMAPS}?watch=true");
    let hub = t.server.registry().hub().clone();
    // Anonymous clients are told apart by address: 127.0.0.1 gets four.
    let mut open = Vec::new();
    for _ in 0..4 {
        let (stream, code) = open_watch(t.addr, None, &path).await;
        assert_eq!(code, 200);
        open.push(stream);
    }
    let response = raw_request(t.addr, "GET", &path, &[], b"").await;
    assert_eq!(response.status, 429);
    let status = response.json();
    assert_eq!(status["reason"], "TooManyRequests");
    assert!(
        status["message"]
            .as_str()
            .unwrap_or("")
            .contains("per user"),
        "{status}"
    );
    assert_eq!(hub.open_watchers_by_user().get("peer:127.0.0.1"), Some(&4));
    // Another client address still gets its watches, and everyone else
    // their answers.
    let (_other, code) = open_watch(t.addr, Some("127.0.0.2"), &path).await;
    assert_eq!(code, 200);
    healthy(t.addr).await;
    // A closed watch frees its slot.
    drop(open.pop());
    vcluster_testkit::eventually("the slot freed", || async {
        (hub.open_watchers_by_user().get("peer:127.0.0.1") == Some(&3)).then_some(())
    })
    .await;
    let (_again, code) = open_watch(t.addr, None, &path).await;
    assert_eq!(code, 200);

    // Authenticated users count by name, wherever they connect from.
    let as_user = |name: &str| t.server.router_as(UserInfo::new(name, &["system:masters"]));
    let alice = as_user("alice");
    let mut bodies = Vec::new();
    for _ in 0..4 {
        let response = alice
            .clone()
            .oneshot(
                Request::get(path.as_str())
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        assert_eq!(response.status(), 200);
        bodies.push(response.into_body());
    }
    let (code, answer) = call(&alice, Method::GET, &path, None, Vec::new()).await;
    assert_eq!(code, 429);
    check_status(code, &answer).expect("a Status");
    let bob = as_user("bob");
    let response = bob
        .oneshot(
            Request::get(path.as_str())
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(response.status(), 200);
    assert_eq!(hub.open_watchers_by_user().get("user:alice"), Some(&4));
    drop(bodies);
    vcluster_testkit::eventually("alice's slots freed", || async {
        (!hub.open_watchers_by_user().contains_key("user:alice")).then_some(())
    })
    .await;
}

/// Resident memory of this process, in bytes (Linux).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_client_that_never_reads_is_cut_off_and_memory_stays_bounded() {
    const BUFFER: usize = 64;
    const WRITES: usize = 1_500;
    let t = Cluster::start_with(vcluster_testkit::cluster::Options {
        storage: MemoryStorage::new(),
        configure: Box::new(|c| {
            c.watch.client_buffer = BUFFER;
            c.garbage_collector = None;
        }),
        ..vcluster_testkit::cluster::Options::default()
    })
    .await;
    let hub = t.server.registry().hub().clone();
    let path = format!("{CONFIGMAPS}?watch=true");
    // A client that never reads, with a small receive window.
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("small receive buffer");
    let mut stalled = socket.connect(t.addr).await.expect("connect");
    stalled
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .expect("send");
    let (code, _) = within("the stalled watch's answer", read_head(&mut stalled)).await;
    assert_eq!(code, 200);

    // A client that reads, re-watching when it falls behind, as clients do.
    let client = t.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let seen = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let reader = {
        let seen = seen.clone();
        let stream = watcher(api.clone(), watcher::Config::default());
        tokio::spawn(async move {
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                if let Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm)) = event {
                    if let Some(name) = cm.metadata.name.filter(|n| n.starts_with("flood-")) {
                        seen.lock().unwrap_or_else(|p| p.into_inner()).insert(name);
                    }
                }
            }
        })
    };
    vcluster_testkit::eventually("both watches open", || async {
        (hub.open_watchers() >= 2).then_some(())
    })
    .await;

    let rss_before = rss();
    let payload = "x".repeat(8 * 1024);
    let writer = t.server.client();
    let cms: Api<ConfigMap> = Api::namespaced(writer, "default");
    let started = Instant::now();
    futures::stream::iter(0..WRITES)
        .for_each_concurrent(8, |i| {
            let cms = cms.clone();
            let payload = payload.clone();
            async move {
                let cm: ConfigMap = serde_json::from_value(json!({
                    "metadata": {"name": format!("flood-{i}")}, "data": {"payload": payload}
                }))
                .expect("configmap");
                cms.create(&PostParams::default(), &cm)
                    .await
                    .expect("create");
            }
        })
        .await;
    let write_time = started.elapsed();
    // The reader has everything; the stalled client was cut off.
    vcluster_testkit::eventually("the reading client has every object", || async {
        (seen.lock().unwrap_or_else(|p| p.into_inner()).len() == WRITES).then_some(())
    })
    .await;
    vcluster_testkit::eventually("the stalled watch cut off", || async {
        (hub.live_watchers() == 1).then_some(())
    })
    .await;
    assert!(
        hub.queued_events() <= BUFFER,
        "queued {}",
        hub.queued_events()
    );
    healthy(t.addr).await;
    let growth = rss().saturating_sub(rss_before);
    println!(
        "WATCH never-reading client: {WRITES} writes of 8 KiB in {:.1}s, cut off, queued {} (limit {BUFFER}), RSS growth {} MiB",
        write_time.as_secs_f64(),
        hub.queued_events(),
        growth >> 20
    );
    // The store itself holds ~12 MiB and the history a few more; a leak of
    // the stalled client's events (every event kept) would be far more.
    assert!(growth < 400 << 20, "RSS grew by {} MiB", growth >> 20);
    reader.abort();
    drop(stalled);
}
