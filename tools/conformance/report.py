#!/usr/bin/env python3
"""Reads what tools/conformance/run produced and reports on it.

  select       the tests of `e2e.test --list-tests` the focus regexes select
  check-names  every name of a subset file is a test of e2e.test
  summary      one line of counts, then the tests that did not pass
  markdown     docs/conformance.md: the counts first, how the suite ran,
               the causes of failure, then every test and its result
  baseline     a subset's results against its baseline of known failures:
               exit 1 when a test outside it does not pass, or one in it passes

A test's result comes from ginkgo's JSON report; a selected test the report
does not show as run (the time limit ended the suite first, or ginkgo died)
is "not run", never counted as passed or failed.
"""

import argparse
import json
import re
import sys

# ginkgo prepends its suite description to a spec's name when it matches
# --focus (RunSpecs in k8s.io/kubernetes/test/e2e/e2e.go).
SUITE_DESCRIPTION = "Kubernetes e2e suite"

FAILED_STATES = {"failed", "panicked", "timedout", "aborted"}

# Causes of failure, tried in order against a failed test's whole failure
# message; the first that matches names the cause. A title may use the
# match's groups (the resource a 404 names, the group discovery lacks), so
# one rule sorts failures by what is missing.
def _resource_of(path):
    """`/apis/G/V/namespaces/N/R/NAME/SUB` -> `R` or `R/SUB`."""
    if not path.startswith("/"):
        return path  # already a resource ("pods/exec", "pods.meta.k8s.io")
    parts = [p for p in path.split("?")[0].split("/") if p]
    group = ""
    if parts[:1] == ["api"]:
        parts = parts[2:]
    elif parts[:1] == ["apis"]:
        group = parts[1] if len(parts) > 1 else ""
        parts = parts[3:]
    if parts[:1] == ["namespaces"] and len(parts) > 2:
        parts = parts[2:]
    if not parts:
        return path
    return parts[0] + (f".{group}" if group else "") + (f"/{parts[2]}" if len(parts) > 2 else "")


CAUSES = [
    (
        r"container streams|pods/exec|pods/attach|pods/portforward|/exec\b|"
        r"error executing command|unable to upgrade connection",
        lambda m: "exec / attach / port-forward not served",
        "the test runs a command in a container (kubectl exec, the framework's "
        "ExecWithOptions) or forwards a port: the pod's exec, attach and "
        "portforward subresources are not served (issue 21), and the simulated "
        "node runs no process either way.",
    ),
    (
        r"failed to get logs|getting pod client logs|"
        r"unable to handle the request \(get pods",
        lambda m: "pod logs answered 503 (the simulated node advertises kubelet port 0)",
        "the test reads a container's log; the host kube-apiserver dials the "
        "node's kubelet at 127.0.0.1:10250 and is refused, because the "
        "simulated node reports `daemonEndpoints.kubeletEndpoint.Port` 0 from "
        "its first 30 s heartbeat on (`vcluster-simnode/src/lib.rs`: `run` "
        "takes `self.kubelet`, and `heartbeat` then reports port 0). Served, "
        "the log would still be a fixed line, not the command's output the "
        "test checks.",
    ),
    (
        r"Failed to open websocket",
        lambda m: "WebSocket streams (pods/log, exec) not served",
        "the test opens a pod's log or exec over a WebSocket (the protocol "
        "kubectl now prefers); the upgrade fails.",
    ),
    (
        r"CronJob|ensure job|job completion|active jobs|job \"[^\"]+\" to",
        lambda m: "Jobs and CronJobs never reach the state the test scripts",
        "a Job's pods are meant to fail, succeed or run in a pattern their "
        "command decides; the simulated node runs no command, so the job and "
        "cronjob controllers never see it.",
    ),
    (
        r"roleRef\.apiGroup: Unsupported value: \"\"",
        lambda m: "RoleBinding roleRef.apiGroup not defaulted",
        "the test creates a RoleBinding with an empty roleRef.apiGroup, which "
        "kube-apiserver defaults to rbac.authorization.k8s.io; the virtual API "
        "server rejects it (the webhook and CRD-conversion tests stop in their "
        "setup there).",
    ),
    (
        r"could not find the requested resource \([a-z]+ ([^) ]+)",
        lambda m: f"404 for {_resource_of(m.group(1))}",
        "the virtual API server answers 404 NotFound for the path (the kind or "
        "subresource is not served).",
    ),
    (
        r"no ready, schedulable nodes",
        lambda m: "no node listed (a node appears only while a pod runs on it)",
        "the test looks for a schedulable node before it creates a pod; the "
        "virtual cluster lists a node only while one of its pods runs there.",
    ),
    (
        r"to be present|to exist in discovery",
        lambda m: "aggregated discovery lacks resources",
        "the aggregated discovery document (/apis with the "
        "apidiscovery.k8s.io/v2 Accept header) lacks a resource kube-apiserver lists.",
    ),
    (
        r"expected (.+?) API group/version",
        lambda m: f"discovery lacks {m.group(1)}",
        "the test looks for a group/version in discovery (/apis) that the "
        "virtual API server does not list.",
    ),
    (
        r"failed to download openapi",
        lambda m: "kubectl cannot download the OpenAPI document",
        "kubectl validates what it sends against /openapi/v3 (or v2) and stops "
        "when the server does not answer it as kube-apiserver does.",
    ),
    (
        r"served with the right OpenAPI schema|OpenAPI",
        lambda m: "CRD schemas not published in OpenAPI",
        "a CustomResourceDefinition's schema never appears in /openapi/v2 or "
        "/openapi/v3.",
    ),
    (
        r"strict decoding error|unknown field|duplicate field",
        lambda m: "field validation (fieldValidation=Strict/Warn) answers differ",
        "unknown and duplicate fields must be reported the way kube-apiserver "
        "does (the error's wording, warnings for Warn).",
    ),
    (
        r"no process runs on a simulated node|in container output|"
        r"should not be out of waiting|failed to get output for container|"
        r"expected number of restarts|became ready before|ContainerStatus|"
        r"expected to be able to write|"
        r"Succeeded or Failed|to be \"(Succeeded|Failed)\"|success or failure",
        lambda m: "no process runs: container output or exit never comes",
        "the test waits for a container's output, exit, restart or probe; the "
        "simulated node reports containers Running and never runs their command.",
    ),
    (
        r"dial tcp|connection refused|no endpoints available|not reachable|"
        r"connections failed|"
        r"unable to handle the request|/proxy",
        lambda m: "network or proxying to pods and services",
        "no traffic reaches simulated pods; proxy subresources and service "
        "traffic cannot work.",
    ),
    (
        r"to be running and ready|to be running, got|pods? (were|was) not (running|ready)|"
        r"Expected Pod to be in|to enter running",
        lambda m: "pods never Running and Ready in time",
        "the test waits for a pod to be Running and Ready; the first error "
        "shows the pod as the virtual cluster saw it.",
    ),
    (
        r"timed out|context deadline exceeded|Timed out after|timeout|rate limiter Wait",
        lambda m: "a wait timed out (pods, controllers, deletion)",
        "a wait on the cluster (a pod Running or Ready, a controller's "
        "replicas, a deletion) ran out; the first error names the object.",
    ),
]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["select", "check-names", "summary", "markdown", "baseline"])
    parser.add_argument("--tests", required=True, help="one test name a line (select: e2e.test --list-tests output)")
    parser.add_argument("--focus", action="append", default=[])
    parser.add_argument("--subset")
    parser.add_argument("--baseline")
    parser.add_argument("--report")
    parser.add_argument("--release", default="unknown")
    parser.add_argument("--started", default="")
    parser.add_argument("--duration", type=int, default=0)
    parser.add_argument("--time-limit", type=int, default=0)
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--command", dest="command_line", default="")
    parser.add_argument("--ginkgo-status", type=int, default=0)
    parser.add_argument("--mode", default="full")
    return parser.parse_args()


def read_list(path):
    """Lines of a name list, without comments and blank lines."""
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip() and not line.lstrip().startswith("#")]


def listed_tests(path):
    """`e2e.test --list-tests` prints `    file:line: full name` per test."""
    names = []
    pattern = re.compile(r"^\s+\S+:\d+: (.*)$")
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = pattern.match(line.rstrip("\n"))
            if m:
                names.append(m.group(1))
    return names


def first_error_line(message):
    """The failure's first line; gomega's one-word openings ("Expected")
    get the lines after them, up to a readable length."""
    lines = [l.strip() for l in message.splitlines() if l.strip()]
    if not lines:
        return ""
    text = lines[0]
    for line in lines[1:]:
        if len(text) >= 40:
            break
        text += " " + line
    return text if len(text) <= 300 else text[:297] + "..."


class Results:
    def __init__(self, args):
        self.args = args
        self.selected = read_list(args.tests)
        self.specs = {}
        self.suite_failures = []
        self.special = []
        self.report_missing = False
        try:
            with open(args.report, encoding="utf-8") as f:
                reports = json.load(f)
        except (OSError, ValueError):
            reports = []
            self.report_missing = True
        for report in reports:
            self.special += report.get("SpecialSuiteFailureReasons") or []
            for spec in report.get("SpecReports") or []:
                kind = spec.get("LeafNodeType", "")
                texts = list(spec.get("ContainerHierarchyTexts") or [])
                if spec.get("LeafNodeText"):
                    texts.append(spec["LeafNodeText"])
                name = " ".join(texts)
                if kind == "It":
                    self.specs[name] = spec
                elif spec.get("State") in FAILED_STATES:
                    message = (spec.get("Failure") or {}).get("Message", "")
                    self.suite_failures.append((kind, first_error_line(message)))
        self.timed_out = any("Timeout" in s or "timeout" in s for s in self.special) or args.ginkgo_status == 124

    def not_run_reason(self):
        if self.timed_out:
            return f"the time limit ({self.args.time_limit} min) ended the suite before it ran"
        if self.report_missing:
            return f"ginkgo wrote no report (it exited with status {self.args.ginkgo_status})"
        if self.special:
            return "the suite stopped early: " + "; ".join(self.special)
        return "ginkgo did not run it"

    def classify(self):
        """name -> (result, detail, seconds); result is passed, failed,
        skipped or not run."""
        out = {}
        for name in self.selected:
            spec = self.specs.get(name)
            if spec is None:
                out[name] = ("not run", self.not_run_reason(), 0.0)
                continue
            state = spec.get("State", "")
            message = (spec.get("Failure") or {}).get("Message", "")
            seconds = spec.get("RunTime", 0) / 1e9
            if state == "passed":
                out[name] = ("passed", "", seconds)
            elif state in ("timedout", "interrupted") and "suite timeout" in message.lower():
                out[name] = ("not run", f"interrupted by the time limit after {seconds:.0f} s", seconds)
            elif state in FAILED_STATES:
                out[name] = ("failed", first_error_line(message), seconds)
            elif state == "interrupted":
                out[name] = ("not run", f"interrupted by the time limit after {seconds:.0f} s", seconds)
            elif state == "skipped" and message.strip():
                out[name] = ("skipped", first_error_line(message), seconds)
            elif state in ("skipped", "pending"):
                out[name] = ("not run", self.not_run_reason(), seconds)
            else:
                out[name] = ("failed", f"ginkgo state {state!r}: {first_error_line(message)}", seconds)
        return out

    def messages(self, name):
        spec = self.specs.get(name) or {}
        return (spec.get("Failure") or {}).get("Message", "")


def counts(results):
    c = {"passed": 0, "failed": 0, "skipped": 0, "not run": 0}
    for result, _, _ in results.values():
        c[result] += 1
    return c


def headline(results, what="Conformance"):
    c = counts(results)
    total = len(results)
    return (
        f"{what}: {c['passed']} of {total} passed "
        f"({c['failed']} failed, {c['skipped']} skipped, {c['not run']} not run)"
    )


def cause_of(message):
    """(title, explanation) of the first cause matching the message."""
    for pattern, title, explanation in CAUSES:
        m = re.search(pattern, message, re.DOTALL)
        if m:
            return title(m), explanation
    return "other", "not matched by a known cause; read the first error below."


def md_escape(text):
    return text.replace("|", "\\|").replace("`", "'").replace("<", "&lt;").replace(">", "&gt;")


def cmd_select(args):
    names = listed_tests(args.tests)
    regexes = [re.compile(f) for f in args.focus]
    seen = set()
    for name in names:
        text = f"{SUITE_DESCRIPTION} {name}"
        if name not in seen and any(r.search(text) for r in regexes):
            seen.add(name)
            print(name)
    return 0


def cmd_check_names(args):
    selected = set(read_list(args.tests))
    missing = [n for n in read_list(args.subset) if n not in selected]
    for name in missing:
        print(f"error: {args.subset} names a test e2e.test does not have: {name}", file=sys.stderr)
    return 1 if missing else 0


def cmd_summary(args):
    results = Results(args).classify()
    print(headline(results, "Conformance" if args.mode == "full" else "Tests"))
    for name, (result, detail, _) in sorted(results.items()):
        if result != "passed":
            print(f"  {result}: {name}" + (f"\n      {detail}" if detail else ""))
    return 0


def cmd_markdown(args):
    r = Results(args)
    results = r.classify()
    c = counts(results)
    minutes, seconds = divmod(args.duration, 60)
    out = []
    out.append(headline(results) + f", release {args.release}")
    out.append("")
    out.append("# Kubernetes conformance of the demo virtual cluster")
    out.append("")
    out.append(
        "Generated by `tools/conformance/run` (see docs/testing.md); do not edit by hand. "
        "The upstream e2e suite (`k8s.io/kubernetes/test/e2e`, built by "
        "`tools/conformance/build`) ran its `[Conformance]` tests against the demo "
        "virtual cluster, synced into the reference real host (`oracle-env --demo`: "
        "upstream kube-apiserver, kube-controller-manager and etcd, and the simulated "
        "node, which binds pods and reports them Running but runs no process)."
    )
    out.append("")
    out.append(f"- command: `{args.command_line}`")
    out.append(f"- release: e2e.test {args.release}, ginkgo from its module")
    out.append(f"- started: {args.started}; duration: {minutes} min {seconds} s "
               f"(time limit {args.time_limit} min, {args.procs} ginkgo process(es))")
    out.append("- e2e.test flags: `--provider=skeleton --num-nodes=1` (the virtual cluster "
               "lists a node only while one of its pods runs there, so the suite's start-up "
               "count would find none; the host has one node) `--dump-logs-on-failure=false`")
    out.append(f"- ginkgo exit status: {args.ginkgo_status}"
               + (f"; suite: {'; '.join(r.special)}" if r.special else ""))
    out.append(f"- totals: {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped, "
               f"{c['not run']} not run, of {len(results)}")
    not_run = [n for n, v in results.items() if v[0] == "not run"]
    serial = sum(1 for n in not_run if "[Serial]" in n)
    if serial:
        out.append(f"- of the {len(not_run)} not run, {serial} are [Serial]: ginkgo runs those "
                   "last, one at a time, after every parallel test")
    for kind, line in r.suite_failures:
        out.append(f"- suite node {kind} failed: {md_escape(line)}")
    out.append("")

    failed = sorted(n for n, v in results.items() if v[0] == "failed")
    if failed:
        out.append("## Causes of failure")
        out.append("")
        out.append("Each failed test's failure message, matched against the causes in "
                   "`tools/conformance/report.py` (first match wins):")
        out.append("")
        out.append("| cause | tests | examples |")
        out.append("| --- | ---: | --- |")
        groups = {}
        explanations = {}
        for name in failed:
            title, explanation = cause_of(r.messages(name))
            groups.setdefault(title, []).append(name)
            explanations[title] = explanation
        for title, names in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            examples = "; ".join(md_escape(n) for n in names[:2])
            out.append(f"| **{md_escape(title)}**: {explanations[title]} | {len(names)} | {examples} |")
        out.append("")

    sections = [
        ("failed", "Failed", "first error line"),
        ("not run", "Not run", "why"),
        ("skipped", "Skipped", "why (the suite's own skip message)"),
        ("passed", "Passed", "seconds"),
    ]
    for key, title, column in sections:
        names = sorted(n for n, v in results.items() if v[0] == key)
        if not names:
            continue
        out.append(f"## {title} ({len(names)})")
        out.append("")
        out.append(f"| test | {column} |")
        out.append("| --- | --- |")
        for name in names:
            _, detail, secs = results[name]
            if key == "passed":
                detail = f"{secs:.1f}"
            elif key == "failed":
                detail = f"{detail} ({secs:.0f} s)"
            out.append(f"| {md_escape(name)} | {md_escape(detail)} |")
        out.append("")
    print("\n".join(out))
    return 0


def read_baseline(path):
    """`full test name  # reason`, one a line."""
    entries = {}
    problems = []
    for line in read_list(path):
        name, sep, reason = line.partition(" # ")
        name = name.strip()
        if not sep or not reason.strip():
            problems.append(f"{path}: an entry without a reason (`name  # reason`): {line}")
        entries[name] = reason.strip()
    return entries, problems


def cmd_baseline(args):
    results = Results(args).classify()
    known, problems = read_baseline(args.baseline)
    for name in known:
        if name not in results:
            problems.append(f"{args.baseline} names a test this run did not select: {name}")
    for name, (result, detail, _) in sorted(results.items()):
        if result == "passed" and name in known:
            problems.append(f"now passes, remove it from {args.baseline} (a baseline may only shrink): {name}")
        elif result != "passed" and name not in known:
            problems.append(f"{result}, and not in {args.baseline}: {name}\n      {detail}")
    failing = sum(1 for v in results.values() if v[0] != "passed")
    if problems:
        for p in problems:
            print(f"error: {p}", file=sys.stderr)
        return 1
    print(f"baseline holds: {len(results) - failing} passed, {failing} known failures ({args.baseline})")
    return 0


def main():
    args = parse_args()
    return {
        "select": cmd_select,
        "check-names": cmd_check_names,
        "summary": cmd_summary,
        "markdown": cmd_markdown,
        "baseline": cmd_baseline,
    }[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
