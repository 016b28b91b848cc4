#!/usr/bin/env python3
"""Records the protobuf request bodies real kubectl sends, for decoder tests.

Starts a throwaway HTTP server on 127.0.0.1 that answers discovery minimally,
stores every POST body and answers it with a 500 Status. For each command it
also stores `kubectl ... --dry-run=client -o json`: the same object as a JSON
client would send it, which is the decoder's expected output.

    python3 record_kubectl.py [--kubectl /usr/bin/kubectl] [--out testdata/kubectl]

Writes <name>.pb (body) and, when kubectl can dry-run the command, <name>.json.
"""

import argparse
import http.server
import json
import os
import subprocess
import threading

COMMANDS = [
    ("namespace", ["create", "namespace", "demo", "--validate=false"], []),
    ("configmap", ["create", "configmap", "x", "--from-literal=a=b"], []),
    ("deployment", ["create", "deployment", "web", "--image=nginx", "--replicas=2"], []),
    ("deployment_port", ["create", "deployment", "web2", "--image=nginx", "--port=80"], ["--", "sleep", "1"]),
    ("secret", ["create", "secret", "generic", "s", "--from-literal=k=v"], []),
    ("service", ["create", "service", "clusterip", "my-svc", "--tcp=5678:8080"], []),
    ("job", ["create", "job", "j", "--image=busybox"], ["--", "echo", "hi"]),
    ("cronjob", ["create", "cronjob", "cj", "--image=busybox", "--schedule=*/1 * * * *"], []),
    ("role", ["create", "role", "r", "--verb=get", "--verb=list", "--resource=pods"], []),
    ("rolebinding", ["create", "rolebinding", "rb", "--role=r", "--user=u", "--serviceaccount=default:sa"], []),
    ("serviceaccount", ["create", "serviceaccount", "sa"], []),
    ("quota", ["create", "quota", "q", "--hard=cpu=1,memory=1Gi,pods=10"], []),
    ("pdb", ["create", "poddisruptionbudget", "p", "--selector=app=web", "--min-available=50%"], []),
    ("priorityclass", ["create", "priorityclass", "high", "--value=1000", "--description=important",
                       "--preemption-policy=Never"], []),
    ("ingress", ["create", "ingress", "ing", "--rule=foo.com/bar=svc1:8080,tls=my-cert"], []),
    ("token", ["create", "token", "sa", "--duration=1h"], None),
    ("can_i", ["auth", "can-i", "get", "pods"], None),
]


def resources(group_version, items):
    return {
        "kind": "APIResourceList",
        "groupVersion": group_version,
        "resources": [
            {"name": name, "singularName": "", "namespaced": namespaced, "kind": kind,
             "verbs": ["create", "delete", "get", "list"]}
            for name, kind, namespaced in items
        ],
    }


def group(name):
    gv = {"groupVersion": f"{name}/v1", "version": "v1"}
    return {"name": name, "versions": [gv], "preferredVersion": gv}


GROUPS = ["apps", "batch", "rbac.authorization.k8s.io", "authorization.k8s.io", "policy",
          "scheduling.k8s.io", "networking.k8s.io"]
DISCOVERY = {
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group(g) for g in GROUPS]},
    "/api/v1": resources("v1", [
        ("namespaces", "Namespace", False), ("configmaps", "ConfigMap", True), ("secrets", "Secret", True),
        ("services", "Service", True), ("serviceaccounts", "ServiceAccount", True), ("pods", "Pod", True),
        ("resourcequotas", "ResourceQuota", True)]),
    "/apis/apps/v1": resources("apps/v1", [("deployments", "Deployment", True)]),
    "/apis/batch/v1": resources("batch/v1", [("jobs", "Job", True), ("cronjobs", "CronJob", True)]),
    "/apis/rbac.authorization.k8s.io/v1": resources("rbac.authorization.k8s.io/v1", [
        ("roles", "Role", True), ("rolebindings", "RoleBinding", True)]),
    "/apis/authorization.k8s.io/v1": resources("authorization.k8s.io/v1", [
        ("selfsubjectaccessreviews", "SelfSubjectAccessReview", False)]),
    "/apis/policy/v1": resources("policy/v1", [("poddisruptionbudgets", "PodDisruptionBudget", True)]),
    "/apis/scheduling.k8s.io/v1": resources("scheduling.k8s.io/v1", [("priorityclasses", "PriorityClass", False)]),
    "/apis/networking.k8s.io/v1": resources("networking.k8s.io/v1", [("ingresses", "Ingress", True)]),
}


class Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    bodies = []

    def reply(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?")[0]
        if path in DISCOVERY:
            return self.reply(200, DISCOVERY[path])
        self.reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        Recorder.bodies.append((self.headers.get("Content-Type"), self.rfile.read(length)))
        self.reply(500, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 500,
                         "message": "recorded"})

    def log_message(self, *args):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubectl", default="kubectl")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "kubectl"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = [args.kubectl, f"--server=http://127.0.0.1:{server.server_address[1]}", "--request-timeout=5s"]
    try:
        for name, command, trailing in COMMANDS:
            Recorder.bodies.clear()
            subprocess.run(base + command + (trailing or []), capture_output=True, timeout=60)
            if len(Recorder.bodies) != 1:
                raise SystemExit(f"{name}: expected one request body, got {len(Recorder.bodies)}")
            content_type, body = Recorder.bodies[0]
            if content_type != "application/vnd.kubernetes.protobuf":
                raise SystemExit(f"{name}: kubectl sent {content_type}")
            with open(os.path.join(args.out, name + ".pb"), "wb") as f:
                f.write(body)
            print(f"recorded {name}")
            if trailing is None:
                continue
            dry = subprocess.run(base + command + ["--dry-run=client", "-o", "json"] + trailing,
                                 capture_output=True, timeout=60, check=True)
            with open(os.path.join(args.out, name + ".json"), "w") as f:
                f.write(json.dumps(json.loads(dry.stdout), indent=2, sort_keys=True) + "\n")
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
