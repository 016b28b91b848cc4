"""Container streams with the official Python `kubernetes` client.

Usage: streams.py SERVER_URL

Against pod `web` (container `app`) of namespace `default`, served by the
test's `Commands` backend: runs `echo` (output gathered by
`kubernetes.stream.stream`), `cat` with stdin written through a
`WSClient`, and a port-forward with an HTTP request through its socket.
Prints one JSON object with what came back; the Rust test checks it.
"""

import faulthandler
import json
import sys

# A hang shows where it is (the Rust test gives the script 20 s).
faulthandler.dump_traceback_later(15, exit=True)

try:
    from kubernetes import client
    from kubernetes.stream import portforward, stream
except ImportError as err:  # pragma: no cover - environment problem
    print("the official Python client is missing: %s" % err, file=sys.stderr)
    sys.exit(3)

configuration = client.Configuration()
configuration.host = sys.argv[1]
api = client.CoreV1Api(client.ApiClient(configuration))
results = {}

results["echo"] = stream(
    api.connect_get_namespaced_pod_exec,
    "web",
    "default",
    container="app",
    command=["echo", "from", "python"],
    stderr=True,
    stdin=False,
    stdout=True,
    tty=False,
)

session = stream(
    api.connect_get_namespaced_pod_exec,
    "web",
    "default",
    container="app",
    command=["cat"],
    stderr=True,
    stdin=True,
    stdout=True,
    tty=False,
    _preload_content=False,
)
session.write_stdin("typed into python\n")
echoed = ""
for _ in range(50):
    session.update(timeout=1)
    echoed += session.read_stdout() if session.peek_stdout() else ""
    if echoed.endswith("\n"):
        break
session.close()
results["cat"] = echoed

forward = portforward(
    api.connect_get_namespaced_pod_portforward, "web", "default", ports="8080"
)
sock = forward.socket(8080)
sock.setblocking(True)
sock.settimeout(10)
sock.sendall(b"GET / HTTP/1.1\r\nHost: web\r\n\r\n")
answer = b""
while True:
    chunk = sock.recv(4096)
    if not chunk:
        break
    answer += chunk
results["forwarded"] = answer.decode()
forward.close()

print(json.dumps(results), flush=True)
