#!/usr/bin/env python3
"""Generates vcluster-apiserver/src/protobuf/go_order.txt: for every API
struct of the pinned Kubernetes release, its JSON keys in the order Go
declares them, which is the order kube-apiserver writes them (Go's
encoding/json follows declaration order; `json:",inline"` fields are
expanded in place). The API server orders typed objects by it so that
answers read field by field like upstream's.

Usage: tools/gen_go_field_order.py [GOMODCACHE]
Reads k8s.io/api, k8s.io/apimachinery and k8s.io/apiextensions-apiserver at
the version tools/upstream/go.mod pins, from the Go module cache (default:
`go env GOMODCACHE`, else ~/go/pkg/mod).

Output lines: `<proto message> <json key> <json key> ...`, where the proto
message is named as in schema.txt (`k8s.io.api.apps.v1.DeploymentSpec`).
A key may carry flags, what server-side apply's field tracking needs:
  !  Go always writes the field, even in an empty object (no omitempty, or
     a struct held by value): a write never adds it
  @  its value is atomic (`+mapType=atomic`, `+listType=atomic`, a struct
     type marked `+structType=atomic`, an embedded raw object): owned whole
  ~  its Go zero value is nil (a pointer, slice or map): written as null
  $  a list of scalars that is a set (`+listType=set`): items owned by value
  ^k1,k2  (last) a list map (`+listType=map`) keyed by these `+listMapKey`s
"""

import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "vcluster-apiserver", "src", "protobuf", "go_order.txt")


def pinned_version():
    with open(os.path.join(HERE, "upstream", "go.mod")) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "require" and parts[1] == "k8s.io/kubernetes":
                return "v0." + parts[2].split(".", 1)[1]
            if len(parts) >= 2 and parts[0] == "k8s.io/kubernetes":
                return "v0." + parts[1].split(".", 1)[1]
    sys.exit("error: k8s.io/kubernetes is not required in tools/upstream/go.mod")


def module_cache():
    if len(sys.argv) > 1:
        return sys.argv[1]
    try:
        out = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True)
        if out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return os.path.expanduser("~/go/pkg/mod")


STRUCT = re.compile(r"^type (\w+) struct \{\s*$")
FIELD = re.compile(r'^\s+(?:(\w+)\s+)?(\S+)\s+`[^`]*json:"([^"]*)"')


# Go types that `omitempty` can omit when zero. Structs (Time, Quantity,
# IntOrString, RawExtension...) are never omitted, whatever their tag.
SCALARS = {"string", "bool", "int", "int32", "int64", "uint", "uint32", "uint64",
           "float32", "float64", "byte", "UID"}


def parse_file(path, package, atomic_structs, named_scalars, named_collections):
    """{struct: [(json key or None for inline, type, omitempty, atomic)]}"""
    structs = {}
    current = None
    depth = 0
    markers = []
    with open(path) as f:
        for line in f:
            stripped = line.strip()
            if current is None:
                m = STRUCT.match(line)
                if m:
                    current, depth = m.group(1), 1
                    structs[current] = []
                    if any("+structType=atomic" in m for m in markers):
                        # By package: autoscaling/v1's object reference is
                        # atomic, v2's of the same name is not.
                        atomic_structs.add((package, current))
                    markers = []
                    continue
                alias = re.match(r"^type (\w+) (string|int32|int64|bool|float64|\[\]byte)\b", line)
                if alias:
                    named_scalars.add(alias.group(1))
                collection = re.match(r"^type (\w+) (map\[|\[\])", line)
                if collection:
                    named_collections.add(collection.group(1))
                markers = markers + [stripped] if stripped.startswith("//") else []
                continue
            if stripped.startswith("//"):
                markers.append(stripped)
                continue
            depth += line.count("{") - line.count("}")
            if depth <= 0:
                current = None
                continue
            if depth != 1:
                continue
            m = FIELD.match(line)
            field_markers, markers = markers, []
            if not m:
                continue
            name, ty, tag = m.group(1), m.group(2), m.group(3)
            key = tag.split(",")[0]
            if key == "-":
                continue
            if ",inline" in tag or key == "":
                structs[current].append((None, ty.split(".")[-1].lstrip("*"), False, False, False,
                                         None))
            else:
                joined = " ".join(field_markers)
                atomic = any(x in joined
                             for x in ("+mapType=atomic", "+listType=atomic", "+structType=atomic"))
                list_type = None
                if "+listType=set" in joined:
                    list_type = "$"
                elif "+listType=map" in joined:
                    keys = re.findall(r"\+listMapKey=(\w+)", joined)
                    if keys:
                        list_type = "^" + ",".join(keys)
                structs[current].append((key, ty, ",omitempty" in tag, ",omitzero" in tag,
                                         atomic, list_type))
    return structs


def element_type(ty):
    """`*[]metav1.LabelSelector` -> `LabelSelector`."""
    ty = ty.lstrip("*")
    while ty.startswith("[]"):
        ty = ty[2:].lstrip("*")
    if ty.startswith("map["):
        ty = ty[ty.index("]") + 1:].lstrip("*")
    return ty.split(".")[-1]


def main():
    cache = module_cache()
    version = pinned_version()
    roots = [
        (os.path.join(cache, f"k8s.io/api@{version}"), "k8s.io.api"),
        (os.path.join(cache, f"k8s.io/apimachinery@{version}", "pkg/apis/meta/v1"),
         "k8s.io.apimachinery.pkg.apis.meta.v1"),
        (os.path.join(cache, f"k8s.io/apiextensions-apiserver@{version}", "pkg/apis/apiextensions/v1"),
         "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1"),
    ]
    packages = {}
    atomic_structs = set()
    named_scalars = set()
    named_collections = set()
    for root, prefix in roots:
        if not os.path.isdir(root):
            sys.exit(f"error: {root} is missing: `go mod download` in tools/upstream first")
        for dirpath, _, files in os.walk(root):
            if "testdata" in dirpath or "/internal" in dirpath:
                continue
            rel = os.path.relpath(dirpath, root)
            package = prefix if rel == "." else prefix + "." + rel.replace(os.sep, ".")
            for name in sorted(files):
                if name.endswith(".go") and not name.endswith("_test.go") and "types" in name:
                    packages.setdefault(package, {}).update(
                        parse_file(os.path.join(dirpath, name), package, atomic_structs, named_scalars,
                                   named_collections))

    meta = packages.get("k8s.io.apimachinery.pkg.apis.meta.v1", {})

    def flags(package, ty, omitempty, omitzero, atomic, list_type):
        base = element_type(ty)
        nil_able = ty.startswith(("*", "[]", "map[")) or base in named_collections
        by_value_struct = (not nil_able and base not in SCALARS
                           and base not in named_scalars)
        out = ""
        # omitzero (Go 1.24) drops a zero value of any type, structs too.
        if not omitzero and (not omitempty or by_value_struct):
            out += "!"
        # An unqualified type is this package's; a qualified one
        # (`corev1.ObjectReference`) another package's, found by name.
        if "." in ty:
            typed_atomic = any(name == base for _, name in atomic_structs)
        else:
            typed_atomic = (package, base) in atomic_structs
        if atomic or typed_atomic or base == "RawExtension":
            out += "@"
        if nil_able:
            out += "~"
        if list_type and not atomic:
            out += list_type
        return out

    def expand(package, struct, seen=()):
        keys = []
        fields = packages.get(package, {}).get(struct) or meta.get(struct) or []
        for key, ty, omitempty, omitzero, atomic, list_type in fields:
            if key is not None:
                keys.append(key + flags(package, ty, omitempty, omitzero, atomic, list_type))
            elif ty and ty not in seen:
                where = package if ty in packages.get(package, {}) else "k8s.io.apimachinery.pkg.apis.meta.v1"
                keys.extend(expand(where, ty, seen + (ty,)))
        return keys

    lines = [
        "# JSON keys of every Kubernetes API struct in Go declaration order (the order",
        "# kube-apiserver writes them). GENERATED by tools/gen_go_field_order.py from",
        f"# k8s.io/api, apimachinery and apiextensions-apiserver {version}; do not edit.",
    ]
    for package in sorted(packages):
        for struct in sorted(packages[package]):
            keys = expand(package, struct)
            if len(keys) > 1:
                lines.append(f"{package}.{struct} {' '.join(keys)}")
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{OUT}: {len(lines) - 3} structs")


if __name__ == "__main__":
    main()
