"""Drives the API server with the official Python `kubernetes` client.

Usage: pods.py SERVER_URL NAMESPACE SEED_NAMES COUNT WATCH_TIMEOUT

Lists the seed pods (whole and paginated), creates a pod, checks the
errors of a second create and of a missing pod, prints `READY <rv>`, then
watches pods labelled `role=rust` from that resourceVersion until it has
seen COUNT pods each go through ADDED, MODIFIED and DELETED (the writes are
made concurrently by the Rust test). Prints one `EVENT <type> <name> <rv>`
line per event and `DONE` at the end; exits non-zero on any mismatch.
"""

import json
import sys


def fail(message):
    print("MISMATCH: " + message, file=sys.stderr, flush=True)
    sys.exit(1)


def expect(condition, message):
    if not condition:
        fail(message)


try:
    from kubernetes import client, watch
    from kubernetes.client.rest import ApiException
except ImportError as err:  # pragma: no cover - environment problem
    print(
        "the official Python client is missing (pip install kubernetes): %s" % err,
        file=sys.stderr,
        flush=True,
    )
    sys.exit(3)


def api_error(call):
    """Runs `call`, which must fail; returns (status code, Status body)."""
    try:
        call()
    except ApiException as err:
        return err.status, json.loads(err.body)
    fail("the call should have failed")


def main():
    url, namespace, seeds, count, watch_timeout = sys.argv[1:6]
    seeds = sorted(s for s in seeds.split(",") if s)
    count = int(count)
    watch_timeout = int(watch_timeout)

    configuration = client.Configuration()
    configuration.host = url
    v1 = client.CoreV1Api(client.ApiClient(configuration))

    # List: everything at once, then page by page.
    pods = v1.list_namespaced_pod(namespace)
    names = sorted(p.metadata.name for p in pods.items)
    expect(names == seeds, "list: %r != %r" % (names, seeds))
    expect(pods.metadata.resource_version, "list without resourceVersion")
    paged, token, versions = [], None, set()
    while True:
        page = v1.list_namespaced_pod(
            namespace, label_selector="role=seed", limit=2, _continue=token
        )
        expect(len(page.items) <= 2, "page over the limit")
        paged += [p.metadata.name for p in page.items]
        versions.add(page.metadata.resource_version)
        token = page.metadata._continue
        if not token:
            break
    expect(sorted(paged) == seeds, "paged list: %r" % paged)
    expect(len(versions) == 1, "pages at different revisions: %r" % versions)

    # Create, read back, and the errors clients branch on.
    body = client.V1Pod(
        metadata=client.V1ObjectMeta(name="py-made", labels={"role": "python"}),
        spec=client.V1PodSpec(
            containers=[client.V1Container(name="app", image="python:3.12")]
        ),
    )
    created = v1.create_namespaced_pod(namespace, body)
    expect(created.metadata.uid, "created pod has no uid")
    expect(created.status.phase == "Pending", "phase %r" % created.status.phase)
    read = v1.read_namespaced_pod("py-made", namespace)
    expect(read.metadata.uid == created.metadata.uid, "read back another pod")
    code, status = api_error(lambda: v1.create_namespaced_pod(namespace, body))
    expect(
        (code, status["reason"]) == (409, "AlreadyExists"),
        "second create: %r %r" % (code, status),
    )
    code, status = api_error(lambda: v1.read_namespaced_pod("nope", namespace))
    expect(
        (code, status["reason"], status["kind"]) == (404, "NotFound", "Status"),
        "missing pod: %r %r" % (code, status),
    )

    start = created.metadata.resource_version
    print("READY %s" % start, flush=True)

    # Watch what the Rust side writes meanwhile.
    events = []
    last_rv = int(start)
    w = watch.Watch()
    for event in w.stream(
        v1.list_namespaced_pod,
        namespace=namespace,
        label_selector="role=rust",
        resource_version=start,
        timeout_seconds=watch_timeout,
    ):
        pod = event["object"]
        rv = int(pod.metadata.resource_version)
        print(
            "EVENT %s %s %d" % (event["type"], pod.metadata.name, rv), flush=True
        )
        expect(rv > last_rv, "resourceVersion went back: %d after %d" % (rv, last_rv))
        expect(pod.metadata.labels.get("role") == "rust", "unselected pod seen")
        last_rv = rv
        events.append((event["type"], pod.metadata.name))
        if len(events) == 3 * count:
            w.stop()
            break
    expect(
        len(events) == 3 * count,
        "the watch ended after %d of %d events" % (len(events), 3 * count),
    )
    for name in sorted({n for _, n in events}):
        kinds = [k for k, n in events if n == name]
        expect(
            kinds == ["ADDED", "MODIFIED", "DELETED"],
            "events of %s: %r" % (name, kinds),
        )

    # The Rust pods are gone again; ours is still there, then deleted.
    left = v1.list_namespaced_pod(namespace, label_selector="role=rust")
    expect(left.items == [], "rust pods left: %r" % [p.metadata.name for p in left.items])
    v1.delete_namespaced_pod("py-made", namespace)
    code, _ = api_error(lambda: v1.read_namespaced_pod("py-made", namespace))
    expect(code == 404, "py-made still readable after delete")
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
