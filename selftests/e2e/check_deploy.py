#!/usr/bin/python3
# Usage: kubectl kustomize deploy/ | check_deploy.py ROOT
# Checks the rendered manifests against what the agent needs and keeps
# (Documentation/security.md, deploy/sluice-agent.service.in): one TAP line
# per check. Needs PyYAML (Debian: python3-yaml).
import re
import sys

import yaml

root = sys.argv[1]
docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
failed = 0


def check(name, cond, detail=""):
    global failed
    if cond:
        print(f"ok - {name}")
    else:
        failed += 1
        print(f"not ok - {name}" + (f" ({detail})" if detail else ""))


def one(kind):
    found = [d for d in docs if d.get("kind") == kind]
    return found[0] if len(found) == 1 else None


kinds = sorted(d["kind"] for d in docs)
check("renders a ServiceAccount, ClusterRole, ClusterRoleBinding and DaemonSet, nothing else",
      kinds == ["ClusterRole", "ClusterRoleBinding", "DaemonSet", "ServiceAccount"], kinds)
ds, sa = one("DaemonSet"), one("ServiceAccount")
role, binding = one("ClusterRole"), one("ClusterRoleBinding")
if not (ds and sa and role and binding):
    sys.exit(1)
pod = ds["spec"]["template"]["spec"]
ctrs = pod["containers"]
check("one container", len(ctrs) == 1)
c = ctrs[0]
args = c.get("args", [])


def arg(flag):
    vals = [a.split("=", 1)[1] for a in args if a.startswith(flag + "=")]
    return vals[-1] if vals else None


# The image: kustomization.yaml's name and tag, nothing else.
kust = yaml.safe_load(open(f"{root}/deploy/kustomization.yaml"))
img = [i for i in kust["images"] if i["name"] == "sluice-agent"][0]
check(f"image is kustomization.yaml's {img['newName']}:{img['newTag']}",
      c["image"] == f"{img['newName']}:{img['newTag']}", c["image"])
check("the image is the agent: no command overrides the entrypoint", "command" not in c)

check("hostNetwork: the node's own network namespace", pod.get("hostNetwork") is True)
check("dnsPolicy ClusterFirstWithHostNet", pod.get("dnsPolicy") == "ClusterFirstWithHostNet")
check("priorityClassName system-node-critical",
      pod.get("priorityClassName") == "system-node-critical")
check("tolerates every taint (operator: Exists, no key)",
      {"operator": "Exists"} in pod.get("tolerations", []))
check("kube-system", ds["metadata"].get("namespace") == "kube-system")
check("rolling update", ds["spec"].get("updateStrategy", {}).get("type") == "RollingUpdate")
env = {e["name"]: e for e in c.get("env", [])}
check("NODE_NAME from spec.nodeName",
      env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName")
check("--source=kube", arg("--source") == "kube")

# Capabilities: not privileged, drop ALL, add what opening a datapath needs:
# the unit's bounding set less NET_BIND_SERVICE (security.md: the DaemonSet
# does not grant it), and what each datapath keeps is among them.
sc = c.get("securityContext", {})
caps = sc.get("capabilities", {})
add = set(caps.get("add", []))
unit = open(f"{root}/deploy/sluice-agent.service.in").read()
bounding = set(re.search(r"^CapabilityBoundingSet=(.*)$", unit, re.M).group(1).split())
want = {b.removeprefix("CAP_") for b in bounding} - {"NET_BIND_SERVICE"}
check("not privileged", sc.get("privileged") is False)
check("capabilities: drop ALL", caps.get("drop") == ["ALL"])
check(f"capabilities: add exactly {' '.join(sorted(want))} (the unit's, less NET_BIND_SERVICE)",
      add == want, " ".join(sorted(add)))
sec = open(f"{root}/Documentation/security.md").read()
kept = set()
for dp in ("bpf", "nftables"):
    row = re.search(rf"^\| {dp} \| (.*) \|$", sec, re.M)
    kept |= {k.strip(" `").removeprefix("cap_").upper() for k in row.group(1).split(",")} if row else {"?"}
check(f"what the datapaths keep (security.md: {' '.join(sorted(kept))}) is granted, but NET_BIND_SERVICE",
      kept - {"NET_BIND_SERVICE"} <= add, " ".join(sorted(kept - add)))

# Mounts: the host's bpffs at /sys/fs/bpf (pins under --bpffs), the cgroup2
# root at --cgroup.
vols = {v["name"]: v for v in pod.get("volumes", [])}
mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}


def host_path(mount_path):
    m = mounts.get(mount_path)
    return vols.get(m["name"], {}).get("hostPath", {}).get("path") if m else None


bpffs, cgroup = arg("--bpffs") or "/sys/fs/bpf/sluice", arg("--cgroup")
check("the host's /sys/fs/bpf at /sys/fs/bpf, HostToContainer",
      host_path("/sys/fs/bpf") == "/sys/fs/bpf" and
      mounts["/sys/fs/bpf"].get("mountPropagation") == "HostToContainer")
check(f"--bpffs={bpffs} is under it", bpffs.startswith("/sys/fs/bpf/"))
check(f"the host's cgroup2 root /sys/fs/cgroup at --cgroup={cgroup}",
      cgroup is not None and host_path(cgroup) == "/sys/fs/cgroup")
check("no mount is read-write but those two and no hostPath is / or /proc",
      all(m.get("readOnly") or p in ("/sys/fs/bpf", cgroup) for p, m in mounts.items()) and
      not any(v.get("hostPath", {}).get("path") in ("/", "/proc") for v in vols.values()))

# kube-proxy's ports: healthz 10256 (/healthz readiness, /livez liveness), metrics 10249.
ports = {p["containerPort"]: p for p in c.get("ports", [])}
check("--healthz-addr on port 10256 and --metrics-addr on 10249",
      (arg("--healthz-addr") or "").endswith(":10256") and (arg("--metrics-addr") or "").endswith(":10249"))
check("ports healthz 10256 and metrics 10249 (TCP)",
      ports.get(10256, {}).get("name") == "healthz" and ports.get(10249, {}).get("name") == "metrics")
rp, lp = c.get("readinessProbe", {}).get("httpGet", {}), c.get("livenessProbe", {}).get("httpGet", {})
check("readiness probe GET /healthz on 10256", rp.get("path") == "/healthz" and rp.get("port") == 10256)
check("liveness probe GET /livez on 10256", lp.get("path") == "/livez" and lp.get("port") == 10256)

# Identity: the ServiceAccount, bound to a role that lists and watches
# Services, EndpointSlices and Nodes, and nothing more.
check("serviceAccountName is the ServiceAccount",
      pod.get("serviceAccountName") == sa["metadata"]["name"] and
      sa["metadata"].get("namespace") == ds["metadata"].get("namespace"))
subj = binding.get("subjects", [])
check("the ClusterRoleBinding binds the ClusterRole to it, only",
      binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                             "name": role["metadata"]["name"]} and
      subj == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                "namespace": sa["metadata"]["namespace"]}], subj)
granted = set()
for r in role.get("rules", []):
    for g in r.get("apiGroups", []):
        for res in r.get("resources", []):
            for v in r.get("verbs", []):
                granted.add((g, res, v))
want = {(g, r, v) for g, r in (("", "services"), ("", "nodes"), ("discovery.k8s.io", "endpointslices"))
        for v in ("list", "watch")}
check("RBAC: list and watch Services, EndpointSlices and Nodes, nothing more",
      granted == want, sorted(granted ^ want))
check("RBAC: no resourceNames, nonResourceURLs or aggregation",
      all(set(r) <= {"apiGroups", "resources", "verbs"} for r in role["rules"]) and
      "aggregationRule" not in role)
sys.exit(1 if failed else 0)
