#!/usr/bin/env python3
"""Regenerates k8s-protobuf.schema: the field numbers, names and types of the
Kubernetes protobuf messages the simulator decodes (those reachable from ROOTS),
read from the generated.proto files of k8s.io/api and k8s.io/apimachinery.

Usage: generate.py DIR_WITH_PROTOS > k8s-protobuf.schema
where DIR holds core_v1.proto, apps_v1.proto, coordination_v1.proto,
autoscaling_v1.proto, meta_v1.proto, intstr.proto, resource.proto, runtime.proto.
"""
import re
import sys

FILES = {
    "core_v1.proto": "core.v1",
    "apps_v1.proto": "apps.v1",
    "coordination_v1.proto": "coordination.v1",
    "autoscaling_v1.proto": "autoscaling.v1",
    "meta_v1.proto": "meta.v1",
    "intstr.proto": "intstr",
    "resource.proto": "resource",
    "runtime.proto": "runtime",
}
PACKAGES = {
    "k8s.io.api.core.v1": "core.v1",
    "k8s.io.api.apps.v1": "apps.v1",
    "k8s.io.api.coordination.v1": "coordination.v1",
    "k8s.io.api.autoscaling.v1": "autoscaling.v1",
    "k8s.io.apimachinery.pkg.apis.meta.v1": "meta.v1",
    "k8s.io.apimachinery.pkg.util.intstr": "intstr",
    "k8s.io.apimachinery.pkg.api.resource": "resource",
    "k8s.io.apimachinery.pkg.runtime": "runtime",
}
ROOTS = [
    "apps.v1.Deployment", "apps.v1.ReplicaSet", "core.v1.Namespace", "core.v1.ConfigMap",
    "core.v1.Secret", "core.v1.Service", "core.v1.ServiceAccount", "core.v1.Pod",
    "core.v1.Node", "core.v1.Event", "core.v1.Binding", "meta.v1.DeleteOptions",
    "autoscaling.v1.Scale", "coordination.v1.Lease",
]
SCALARS = {"string", "int32", "int64", "bool", "bytes", "double", "float", "uint32", "uint64"}
FIELD = re.compile(r"^\s*(optional|repeated)\s+(\S+)\s+(\w+)\s*=\s*(\d+)")
MAP = re.compile(r"^\s*map<\s*(\S+)\s*,\s*(\S+)\s*>\s+(\w+)\s*=\s*(\d+)")


def resolve(t, pkg):
    if t in SCALARS:
        return t
    if t.startswith("."):
        full = t[1:]
        p, name = full.rsplit(".", 1)
        return PACKAGES.get(p, p) + "." + name
    return pkg + "." + t


messages = {}
for fname, pkg in FILES.items():
    current = None
    for line in open(f"{sys.argv[1]}/{fname}"):
        line = line.split("//")[0]
        m = re.match(r"^message\s+(\w+)\s*\{", line)
        if m:
            current = pkg + "." + m.group(1)
            messages[current] = []
            continue
        if line.startswith("}"):
            current = None
            continue
        if current is None:
            continue
        m = MAP.match(line)
        if m:
            messages[current].append((int(m.group(4)), m.group(3), "m", resolve(m.group(1), pkg), resolve(m.group(2), pkg)))
            continue
        m = FIELD.match(line)
        if m:
            label = "r" if m.group(1) == "repeated" else "o"
            messages[current].append((int(m.group(4)), m.group(3), label, resolve(m.group(2), pkg), ""))

seen, todo = set(), list(ROOTS)
while todo:
    name = todo.pop()
    if name in seen or name not in messages:
        continue
    seen.add(name)
    for (_, _, _, t, v) in messages[name]:
        for x in (t, v):
            if x and x not in SCALARS:
                todo.append(x)

for name in sorted(seen):
    for (num, field, label, t, v) in sorted(messages[name]):
        print("\t".join([name, str(num), field, label, t, v]).rstrip("\t"))
