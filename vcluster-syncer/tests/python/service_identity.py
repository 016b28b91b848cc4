"""A tenant's services keep their identity, seen with the official Python
`kubernetes` client.

Usage: service_identity.py SERVER_URL NAMESPACE COUNT

Creates COUNT services one after another and reads each back 20 ms after
its create answered; prints `SAME <name> <clusterIP>` when the uid and the
cluster IP read back are those of the create's answer, `CHANGED <name> ...`
otherwise (or `GONE <name>` on a 404), then `DONE`.
"""

import sys
import time

try:
    from kubernetes import client
    from kubernetes.client.rest import ApiException
except ImportError as err:  # pragma: no cover - environment problem
    print("the kubernetes package is missing: %s" % err, file=sys.stderr)
    sys.exit(2)


def main():
    url, namespace, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    configuration = client.Configuration()
    configuration.host = url
    api = client.CoreV1Api(client.ApiClient(configuration))
    for i in range(count):
        name = "py-svc-%d" % i
        body = client.V1Service(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1ServiceSpec(
                selector={"app": name},
                ports=[client.V1ServicePort(port=80)],
            ),
        )
        created = api.create_namespaced_service(namespace, body)
        time.sleep(0.02)
        try:
            read = api.read_namespaced_service(name, namespace)
        except ApiException as err:
            print("GONE %s %s" % (name, err.status), flush=True)
            continue
        same = (
            read.metadata.uid == created.metadata.uid
            and read.spec.cluster_ip == created.spec.cluster_ip
        )
        print(
            "%s %s %s %s"
            % (
                "SAME" if same else "CHANGED",
                name,
                created.spec.cluster_ip,
                read.spec.cluster_ip,
            ),
            flush=True,
        )
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
