#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks the deployment files against the programs of a build tree.

Usage: python3 tests/deploy_check.py BUILD_DIR

Reads every YAML document of deploy/k8s/, deploy/docker/compose.yaml and deploy/configs/, and
deploy/docker/Dockerfile, and checks:

- every document parses, and each Kubernetes object has the fields it needs (kind, apiVersion,
  a valid name, selectors that match their pods, named ports that exist, ...);
- every config file (the ConfigMaps' server.yaml/proxy.yaml/client.yaml, compose's inline
  configs, deploy/configs/*.yaml) uses only keys that its program accepts, as its `--help`
  lists them (`[yaml: KEY]`), with mappings, lists of records and scalars where they belong;
- that each container's `--config` file and the config's tls files are where the pod or the
  compose service mounts them (the config from a ConfigMap or config, the certificates from a
  Secret, read-only), and that the Secrets' keys are those deploy/k8s/README.md creates;
- ports: the relay's listen_addr, its containerPort, its readiness probe, the Services'
  targetPorts, the compose port mapping, and the relay addresses that proxies and clients
  dial (every relay pod of the StatefulSet, by its name in the headless Service);
- pods and services run as non-root (the image's user), with a read-only root file system,
  no privilege escalation and resources; grace periods longer than the drain timeout;
- the Dockerfile: Debian 12 slim stages, tests off, the sources it copies exist and cover
  the CMake project, the runtime packages provide every library the built programs load;
- finally, each server and proxy config is loaded by the real program, with the deployment's
  certificates and addresses replaced by test ones (flags override the file): it must not
  stop with status 2 (configuration error) or any other status within 2 s, and a relay must
  accept TCP connections.  The client is not run (it needs root and changes iptables).

Exits 0 when everything holds; prints each problem and exits 1 otherwise (2 on bad usage).
"""

import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover
    print("deploy_check.py: needs PyYAML (Debian: python3-yaml)", file=sys.stderr)
    sys.exit(2)

ROOT = Path(__file__).resolve().parent.parent
K8S_DIR = ROOT / "deploy" / "k8s"
DOCKER_DIR = ROOT / "deploy" / "docker"
COMPOSE = DOCKER_DIR / "compose.yaml"
DOCKERFILE = DOCKER_DIR / "Dockerfile"
CONFIGS_DIR = ROOT / "deploy" / "configs"
K8S_README = K8S_DIR / "README.md"

PROGRAMS = ("server", "proxy", "client")
CONFIG_NAMES = {"server.yaml": "server", "proxy.yaml": "proxy", "client.yaml": "client"}
# Fields of the list-of-records keys, should --help not show them as KEY=VALUE,... metavars.
RECORDS_FALLBACK = {
    "networks": {"cidr", "virtual_cidr"},
    "proxies": {"id", "networks"},
    "access": {"client", "networks", "ports"},
}
KINDS = {
    "ConfigMap": "v1",
    "Secret": "v1",
    "Service": "v1",
    "Namespace": "v1",
    "ServiceAccount": "v1",
    "StatefulSet": "apps/v1",
    "Deployment": "apps/v1",
    "PodDisruptionBudget": "policy/v1",
    "NetworkPolicy": "networking.k8s.io/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

problems = []


def problem(where, msg):
    problems.append(f"{where}: {msg}")


def rel(path):
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# ---- what the programs accept ---------------------------------------------------------------


class Spec:
    """A program's options, from its --help."""

    def __init__(self, prog):
        self.prog = prog
        self.top = {}  # top-level key -> set of sub-keys (a mapping) or None (a value)
        self.records = {}  # list-of-records key -> fields
        self.repeatable = set()  # top-level keys that may be lists
        self.defaults = {}  # dotted key -> default text
        self.flags = {}  # --flag -> (dotted key, takes a value)
        self.types = {}  # dotted key -> metavar (PORT, CIDR, DURATION, N, SIZE, ...) or BOOL
        self.choices = {}  # dotted key -> the values it may take


def parse_help(prog, text):
    spec = Spec(prog)
    entries = []
    for line in text.splitlines():
        if re.match(r"^  \S", line):
            entries.append(line.strip())
        elif re.match(r"^   +\S", line) and entries:
            entries[-1] += " " + line.strip()
    for e in entries:
        m = re.search(r"\[yaml: ([A-Za-z0-9_.]+)[,\]]", e)
        if not m:
            continue
        key = m.group(1)
        head = e[: m.start()]
        parts = key.split(".")
        if len(parts) == 1:
            spec.top.setdefault(key, None)
        else:
            sub = spec.top.get(parts[0]) or set()
            sub.add(parts[1])
            spec.top[parts[0]] = sub
        if "(repeatable)" in e:
            spec.repeatable.add(parts[0])
        d = re.search(r"\(default: ([^)]*)\)", e)
        if d:
            spec.defaults[key] = d.group(1)
        fm = re.match(r"^(?:-\w, )?(--[\w-]+)(?:[ =](\S+))?", head)
        c = re.search(r"\(one of: ([^)]*)\)", e)
        if c:
            spec.choices[key] = [x.strip() for x in c.group(1).split(",")]
        if fm:
            metavar = fm.group(2)
            spec.flags[fm.group(1)] = (key, bool(metavar) and not metavar.startswith("("))
            spec.types[key] = metavar if metavar and "=" not in metavar else ("BOOL" if not metavar else None)
            if metavar and "=" in metavar:
                fields = set(re.findall(r"([a-z_]+)=", metavar))
                if fields:
                    spec.records[key] = fields
    if "servers" in spec.top and "server_addr" in spec.types:
        spec.types.setdefault("servers", spec.types["server_addr"])
    for key, fields in RECORDS_FALLBACK.items():
        if key in spec.top and key not in spec.records:
            spec.records[key] = fields
    return spec


def load_specs(build):
    specs = {}
    for prog in PROGRAMS:
        exe = build / prog / prog
        if not os.access(exe, os.X_OK):
            problem(rel(exe), "missing: build the project first")
            continue
        r = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            problem(f"{prog} --help", f"exit status {r.returncode}")
            continue
        spec = parse_help(prog, r.stdout)
        for need in ("tls", "log"):
            if need not in spec.top:
                problem(f"{prog} --help", f"no [yaml: {need}.*] key: is this the tunnel's {prog}?")
        specs[prog] = spec
    return specs


# ---- config files ---------------------------------------------------------------------------


def duration_s(text):
    """Seconds of a duration as the programs parse it (a bare number is seconds)."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", str(text).strip())
    if not m:
        return None
    return int(m.group(1)) * {None: 1, "ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def hostport(text):
    """(host, port) of HOST:PORT, [V6]:PORT or :PORT; port None when not a number."""
    s = str(text).strip()
    m = re.fullmatch(r"\[([^\]]*)\]:(\d+)", s) or re.fullmatch(r"([^:]*):(\d+)", s)
    if not m:
        return None, None
    return m.group(1), int(m.group(2))


class Config:
    """A config file some program reads: its text, where it is, and its parsed form."""

    def __init__(self, where, prog, text):
        self.where = where
        self.prog = prog
        self.text = text
        self.data = None
        self.flags = {}  # dotted key -> value(s) given as flags on the command line
        try:
            self.data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            problem(where, f"not YAML: {e}")
            return
        if self.data is None:
            self.data = {}
        if not isinstance(self.data, dict):
            problem(where, "not a mapping of keys")
            self.data = None

    def get(self, key, spec=None):
        """The effective value of a dotted key: flag, file, or the program's default."""
        if key in self.flags:
            return self.flags[key]
        node = self.data or {}
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                node = None
                break
            node = node[part]
        if node is None and spec is not None:
            node = spec.defaults.get(key)
        return node

    def servers(self):
        v = self.get("server_addr")
        if self.data and "servers" in self.data and "server_addr" not in self.flags:
            v = self.data["servers"]
        if v is None:
            return []
        return [str(x) for x in (v if isinstance(v, list) else [v])]


def check_keys(cfg, spec):
    if cfg.data is None:
        return
    accepted = ", ".join(sorted(spec.top))
    for key, value in cfg.data.items():
        where = f"{cfg.where}: {key}"
        if key not in spec.top:
            problem(where, f"not a key {spec.prog} accepts ({accepted})")
            continue
        sub = spec.top[key]
        if key in spec.records:
            items = value if isinstance(value, list) else [value]
            for i, rec in enumerate(items):
                if not isinstance(rec, dict):
                    problem(f"{where}[{i}]", "should be a record {" + ", ".join(sorted(spec.records[key])) + "}")
                    continue
                for f in rec:
                    if f not in spec.records[key]:
                        problem(f"{where}[{i}].{f}", f"not a field of {key} ({', '.join(sorted(spec.records[key]))})")
        elif sub is not None:
            if not isinstance(value, dict):
                problem(where, f"should be a mapping of {', '.join(sorted(sub))}")
                continue
            for s in value:
                if s not in sub:
                    problem(f"{where}.{s}", f"not a key of {key} ({', '.join(sorted(sub))})")
                elif isinstance(value[s], (dict, list)):
                    problem(f"{where}.{s}", "should be a single value")
        elif isinstance(value, dict):
            problem(where, "should be a value, not a mapping")
        elif isinstance(value, list) and key not in spec.repeatable:
            problem(where, "should be a single value, not a list")
    for k in ("cert_file", "key_file", "ca_file"):
        if not cfg.get(f"tls.{k}"):
            problem(cfg.where, f"tls.{k} is not set: {spec.prog} cannot make its TLS identity")
    if spec.prog in ("proxy", "client") and not cfg.servers():
        problem(cfg.where, "no server_addr: the relay to connect to")
    if spec.prog == "server":
        _, port = hostport(cfg.get("listen_addr", spec) or "")
        if port is None:
            problem(cfg.where, f"listen_addr '{cfg.get('listen_addr', spec)}' has no port")
    check_values(cfg, spec)


SIZE = re.compile(r"\d+(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)?")


def value_problem(typ, v):
    """Why v is not a value of the metavar typ, or None (types this check does not know pass)."""
    s = str(v).strip()
    if isinstance(v, (dict, list)):
        return "should be a single value"
    if typ == "PORT":
        return None if s.isdigit() and 1 <= int(s) <= 65535 else f"'{s}' is not a port (1-65535)"
    if typ == "CIDR":
        try:
            ipaddress.ip_network(s, strict=False)
            return None if "/" in s else f"'{s}' is not a CIDR (address/prefix)"
        except ValueError:
            return f"'{s}' is not a CIDR"
    if typ == "DURATION":
        return None if duration_s(s) is not None else f"'{s}' is not a duration (250ms, 10s, 2m, 1h)"
    if typ == "N":
        return None if s.isdigit() else f"'{s}' is not a number"
    if typ == "SIZE":
        return None if SIZE.fullmatch(s) else f"'{s}' is not a size (e.g. 1MiB)"
    if typ == "BOOL":
        return None if isinstance(v, bool) or s in ("true", "false") else f"'{s}' is not true or false"
    if typ in ("HOST:PORT", "ADDR:PORT"):
        _, port = hostport(s)
        return None if port is not None and 1 <= port <= 65535 else f"'{s}' is not {typ}"
    return None


def check_values(cfg, spec):
    """The values of the file, by the type --help gives each key (the client is not run)."""
    for key, typ in spec.types.items():
        if typ is None and key not in spec.choices:
            continue
        v = cfg.get(key)
        if v is None or key in cfg.flags:
            continue
        for x in (v if isinstance(v, list) and key in spec.repeatable else [v]):
            if isinstance(x, (dict, list)):
                continue  # check_keys said so
            why = value_problem(typ, x)
            if why is None and key in spec.choices and str(x) not in spec.choices[key]:
                why = f"'{x}' is not one of {', '.join(spec.choices[key])}"
            if why:
                problem(f"{cfg.where}: {key}", why)
    for key, fields in spec.records.items():
        recs = (cfg.data or {}).get(key)
        for i, rec in enumerate(recs if isinstance(recs, list) else []):
            if not isinstance(rec, dict):
                continue
            for f in ("cidr", "virtual_cidr", "networks"):
                if f in fields and f in rec:
                    for x in rec[f] if isinstance(rec[f], list) else [rec[f]]:
                        why = value_problem("CIDR", x)
                        if why:
                            problem(f"{cfg.where}: {key}[{i}].{f}", why)


def flags_of(argv, spec):
    """The dotted keys that command-line flags set, from a container's command."""
    out = {}
    i = 0
    while i < len(argv):
        a = str(argv[i])
        name, _, inline = a.partition("=")
        if name in spec.flags:
            key, takes = spec.flags[name]
            if takes:
                val = inline if inline else (str(argv[i + 1]) if i + 1 < len(argv) else "")
                i += 0 if inline else 1
            else:
                val = "true"
            if key in spec.repeatable:
                out.setdefault(key, []).append(val)
            else:
                out[key] = val
        i += 1
    return out


def config_path_of(argv):
    for i, a in enumerate(argv):
        a = str(a)
        if a in ("--config", "-c") and i + 1 < len(argv):
            return str(argv[i + 1])
        if a.startswith("--config="):
            return a.split("=", 1)[1]
    return None


def program_of(argv):
    if not argv:
        return None
    name = os.path.basename(str(argv[0]))
    return name if name in PROGRAMS else None


# ---- Kubernetes -----------------------------------------------------------------------------


def load_yaml_docs(path):
    docs = []
    try:
        text = path.read_text()
    except OSError as e:
        problem(rel(path), f"cannot read: {e}")
        return docs
    try:
        for i, d in enumerate(yaml.safe_load_all(text)):
            if d is not None:
                docs.append((f"{rel(path)}#{i + 1}", d))
    except yaml.YAMLError as e:
        problem(rel(path), f"not YAML: {e}")
    return docs


def readme_secrets():
    """Secret name -> keys, from the `kubectl create secret generic` commands of the README."""
    out = {}
    if not K8S_README.exists():
        problem(rel(K8S_README), "missing")
        return out
    text = re.sub(r"\\\n\s*", " ", K8S_README.read_text())
    for line in text.splitlines():
        m = re.search(r"create secret generic\s+([-a-z0-9.]+)(.*)", line)
        if m:
            keys = set(re.findall(r"--from-file=([^=\s]+)=", m.group(2)))
            keys |= {os.path.basename(p) for p in re.findall(r"--from-file=([^=\s]+)(?:\s|$)", m.group(2))}
            out.setdefault(m.group(1), set()).update(keys)
    return out


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


class K8s:
    def __init__(self, specs, image_uid):
        self.specs = specs
        self.image_uid = image_uid
        self.objs = {}  # (kind, name) -> (where, doc)
        self.configs = []  # Config objects to run
        self.used_cm_keys = set()
        self.secret_keys = readme_secrets()

    def load(self):
        files = sorted(K8S_DIR.glob("*.yaml")) + sorted(K8S_DIR.glob("*.yml"))
        if not files:
            problem(rel(K8S_DIR), "no manifests")
        for f in files:
            for where, doc in load_yaml_docs(f):
                self.add(where, doc)

    def add(self, where, doc):
        if not isinstance(doc, dict):
            problem(where, "not a mapping")
            return
        kind, api = doc.get("kind"), doc.get("apiVersion")
        meta = doc.get("metadata")
        if not isinstance(kind, str) or not isinstance(api, str):
            problem(where, "needs kind and apiVersion")
            return
        if kind not in KINDS:
            problem(where, f"kind {kind} is not one this check knows ({', '.join(KINDS)})")
            return
        if api != KINDS[kind]:
            problem(where, f"{kind} is apiVersion {KINDS[kind]}, not {api}")
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
            problem(where, "needs metadata.name")
            return
        name = meta["name"]
        pattern = DNS_LABEL if kind in ("Service", "Namespace") else DNS_SUBDOMAIN
        if not pattern.match(name) or len(name) > (63 if kind in ("Service", "Namespace") else 253):
            problem(where, f"'{name}' is not a valid {kind} name")
        if "namespace" in meta:
            problem(where, "sets metadata.namespace: the README applies everything with -n")
        for part in ("labels", "annotations"):
            for k, v in (meta.get(part) or {}).items():
                if not isinstance(v, str):
                    problem(where, f"metadata.{part}.{k} must be a string (quote it)")
        where = f"{where} ({kind} {name})"
        if (kind, name) in self.objs:
            problem(where, f"a second {kind} {name}")
        self.objs[(kind, name)] = (where, doc)

    def of_kind(self, kind):
        return [(n, w, d) for (k, n), (w, d) in self.objs.items() if k == kind]

    def check(self):
        for name, where, doc in self.of_kind("ConfigMap"):
            data = doc.get("data") or {}
            if not isinstance(data, dict):
                problem(where, "data must be a mapping")
                continue
            for k, v in data.items():
                if not isinstance(v, str):
                    problem(f"{where}: data.{k}", "must be a string")
                if not re.fullmatch(r"[-._a-zA-Z0-9]+", str(k)):
                    problem(f"{where}: data.{k}", "not a valid ConfigMap key")
        for name, where, doc in self.of_kind("Service"):
            self.check_service(name, where, doc)
        workloads = self.of_kind("StatefulSet") + self.of_kind("Deployment")
        if not workloads:
            problem(rel(K8S_DIR), "no StatefulSet or Deployment")
        for name, where, doc in workloads:
            self.check_workload(name, where, doc)
        for name, where, doc in self.of_kind("PodDisruptionBudget"):
            sel = ((doc.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            if not any(labels_match(sel, pod_labels(d)) for _, _, d in workloads):
                problem(where, "its selector matches no workload")
        # ConfigMap configs that no container loads are still checked, by their name.
        for name, where, doc in self.of_kind("ConfigMap"):
            for key, text in (doc.get("data") or {}).items():
                if (name, key) in self.used_cm_keys or key not in CONFIG_NAMES:
                    continue
                prog = CONFIG_NAMES[key]
                if prog in self.specs:
                    cfg = Config(f"{where}: data.{key}", prog, str(text))
                    check_keys(cfg, self.specs[prog])
                    self.configs.append(cfg)

    def check_service(self, name, where, doc):
        spec = doc.get("spec") or {}
        typ = spec.get("type", "ClusterIP")
        if typ not in ("ClusterIP", "NodePort", "LoadBalancer"):
            problem(where, f"type {typ} is not ClusterIP, NodePort or LoadBalancer")
        if spec.get("clusterIP") == "None" and typ != "ClusterIP":
            problem(where, "a headless Service must be of type ClusterIP")
        ports = spec.get("ports")
        if not isinstance(ports, list) or not ports:
            problem(where, "no ports")
            return
        for p in ports:
            if not isinstance(p, dict) or not is_int(p.get("port")):
                problem(where, f"port {p!r} has no numeric port")
            if len(ports) > 1 and not (isinstance(p, dict) and p.get("name")):
                problem(where, "with several ports, each needs a name")
            if p.get("protocol", "TCP") != "TCP":
                problem(where, f"port {p.get('port')}: the tunnel is TCP")
        if not isinstance(spec.get("selector"), dict) or not spec["selector"]:
            problem(where, "no selector")
            return
        pods = [(n, w, d) for n, w, d in self.of_kind("StatefulSet") + self.of_kind("Deployment")
                if labels_match(spec["selector"], pod_labels(d))]
        if not pods:
            problem(where, "its selector matches no workload's pods")
        for _, pw, pd in pods:
            for c in containers(pd):
                for p in ports:
                    tp = p.get("targetPort", p.get("port"))
                    if container_port(c, tp) is None:
                        problem(where, f"targetPort {tp} is not a port of container {c.get('name')} in {pw}")

    def check_workload(self, name, where, doc):
        spec = doc.get("spec") or {}
        tmpl = spec.get("template") or {}
        pod = tmpl.get("spec") or {}
        labels = pod_labels(doc)
        sel = (spec.get("selector") or {}).get("matchLabels")
        if not isinstance(sel, dict) or not sel:
            problem(where, "spec.selector.matchLabels is missing")
        elif not labels_match(sel, labels):
            problem(where, "spec.selector.matchLabels does not match the pod template's labels")
        if not is_int(spec.get("replicas", 1)) or spec.get("replicas", 1) < 1:
            problem(where, "replicas must be a positive number")
        kind = doc["kind"]
        if kind == "StatefulSet":
            svc = self.objs.get(("Service", spec.get("serviceName")))
            if svc is None:
                problem(where, f"serviceName '{spec.get('serviceName')}' is no Service here")
            else:
                sspec = svc[1].get("spec") or {}
                if sspec.get("clusterIP") != "None":
                    problem(svc[0], f"must be headless (clusterIP: None): it gives {name}'s pods their names")
                if not labels_match(sspec.get("selector") or {}, labels):
                    problem(svc[0], f"its selector does not match {name}'s pods")
        psc = pod.get("securityContext") or {}
        volumes = {}
        for v in pod.get("volumes") or []:
            if not isinstance(v, dict) or "name" not in v:
                problem(where, f"volume {v!r} has no name")
                continue
            if v["name"] in volumes:
                problem(where, f"two volumes named {v['name']}")
            volumes[v["name"]] = v
        cs = containers(doc)
        if not cs:
            problem(where, "no containers")
        grace = pod.get("terminationGracePeriodSeconds", 30)
        for c in cs:
            cw = f"{where}: container {c.get('name')}"
            if not c.get("name") or not c.get("image"):
                problem(cw, "needs a name and an image")
            csc = c.get("securityContext") or {}
            if not (csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True):
                problem(cw, "runAsNonRoot is not true")
            uid = csc.get("runAsUser", psc.get("runAsUser"))
            if uid == 0:
                problem(cw, "runs as root (runAsUser: 0)")
            if uid is not None and self.image_uid is not None and uid != self.image_uid:
                problem(cw, f"runAsUser {uid} is not the image's user {self.image_uid}")
            if csc.get("allowPrivilegeEscalation") is not False:
                problem(cw, "allowPrivilegeEscalation is not false")
            if csc.get("readOnlyRootFilesystem") is not True:
                problem(cw, "readOnlyRootFilesystem is not true")
            if csc.get("privileged"):
                problem(cw, "is privileged")
            res = c.get("resources") or {}
            for need in ("requests.cpu", "requests.memory", "limits.memory"):
                a, b = need.split(".")
                if not (res.get(a) or {}).get(b):
                    problem(cw, f"resources.{need} is not set")
            for p in c.get("ports") or []:
                if not is_int(p.get("containerPort")):
                    problem(cw, f"port {p!r} has no numeric containerPort")
            mounts = c.get("volumeMounts") or []
            for m in mounts:
                if m.get("name") not in volumes:
                    problem(cw, f"mounts volume '{m.get('name')}', which the pod does not have")
            argv = list(c.get("command") or []) + list(c.get("args") or [])
            prog = program_of(argv)
            if prog is None:
                problem(cw, f"command {argv!r} runs none of {', '.join(PROGRAMS)}")
                continue
            if prog == "client":
                problem(cw, "runs the client, which belongs on a user's machine, not in a pod")
            if prog not in self.specs:
                continue
            cpath = config_path_of(argv)
            if cpath is None:
                problem(cw, "has no --config FILE")
                continue
            files = FileMap(self, volumes, mounts, cw)
            src = files.source(cpath)
            if src is None:
                problem(cw, f"--config {cpath} is in no volume the container mounts")
                continue
            if src[0] != "configMap":
                problem(cw, f"--config {cpath} comes from a {src[0]}, not a ConfigMap")
                continue
            cm = self.objs.get(("ConfigMap", src[1]))
            if cm is None:
                problem(cw, f"--config {cpath} comes from ConfigMap {src[1]}, which is not in the manifests")
                continue
            text = (cm[1].get("data") or {}).get(src[2])
            if text is None:
                problem(cw, f"--config {cpath}: ConfigMap {src[1]} has no key {src[2]}")
                continue
            self.used_cm_keys.add((src[1], src[2]))
            spec_p = self.specs[prog]
            cfg = Config(f"{cm[0]}: data.{src[2]}", prog, str(text))
            if cfg.data is None:
                continue
            cfg.flags = flags_of(argv, spec_p)
            check_keys(cfg, spec_p)
            self.configs.append(cfg)
            for k in ("cert_file", "key_file", "ca_file"):
                path = cfg.get(f"tls.{k}")
                if not path:
                    continue
                s = files.source(str(path))
                if s is None:
                    problem(cw, f"tls.{k} {path} is in no volume the container mounts")
                elif s[0] != "secret":
                    problem(cw, f"tls.{k} {path} comes from a {s[0]}, not a Secret")
            drain = duration_s(cfg.get("drain_timeout", spec_p) or 0) or 0
            if not is_int(grace) or grace <= drain:
                problem(where, f"terminationGracePeriodSeconds {grace} is not longer than "
                        f"{prog}'s drain_timeout ({drain:g}s): flows would be cut")
            if prog == "server":
                self.check_relay_ports(cw, c, cfg, spec_p)
            if prog == "proxy":
                self.check_proxy_servers(cfg)

    def check_relay_ports(self, cw, c, cfg, spec):
        _, port = hostport(cfg.get("listen_addr", spec) or "")
        if port is None:
            return
        if not any(p.get("containerPort") == port for p in c.get("ports") or []):
            problem(cw, f"declares no containerPort {port}, the port of listen_addr")
        probe = c.get("readinessProbe")
        if not isinstance(probe, dict):
            problem(cw, "no readinessProbe: clients would be sent to a relay before it listens")
        elif "tcpSocket" in probe:
            ref = (probe["tcpSocket"] or {}).get("port")
            pp = container_port(c, ref)
            if pp is None:
                problem(cw, f"readinessProbe port {ref} is not a port of the container")
            elif pp != port:
                problem(cw, f"readinessProbe checks port {pp}, but the relay listens on {port}")
        # Every Service in front of this container must land on the listen port.
        for sname, sw, sd in self.of_kind("Service"):
            ss = sd.get("spec") or {}
            if not ss.get("selector"):
                continue
            for _, _, wd in self.of_kind("StatefulSet") + self.of_kind("Deployment"):
                if c in containers(wd) and labels_match(ss["selector"], pod_labels(wd)):
                    for p in ss.get("ports") or []:
                        tp = container_port(c, p.get("targetPort", p.get("port")))
                        if tp is not None and tp != port:
                            problem(sw, f"port {p.get('port')} goes to {tp}, but the relay listens on {port}")

    def check_proxy_servers(self, cfg):
        """Each relay address must be a pod of a StatefulSet, and all its pods be listed."""
        listed = {}
        for addr in cfg.servers():
            host, port = hostport(addr)
            if port is None:
                problem(cfg.where, f"relay address '{addr}' has no port")
                continue
            m = re.fullmatch(r"([a-z0-9-]+)-(\d+)\.([a-z0-9-]+)(\.[a-z0-9.-]+)?\.?", host or "")
            sts = self.objs.get(("StatefulSet", m.group(1))) if m else None
            if sts is None:
                problem(cfg.where, f"relay address '{addr}' is not POD-N.SERVICE of a StatefulSet here")
                continue
            sspec = sts[1].get("spec") or {}
            if m.group(3) != sspec.get("serviceName"):
                problem(cfg.where, f"'{addr}': {m.group(1)}'s pods are named in Service "
                        f"'{sspec.get('serviceName')}', not '{m.group(3)}'")
                continue
            svc = self.objs.get(("Service", m.group(3)))
            if svc is not None:
                sports = [p.get("port") for p in (svc[1].get("spec") or {}).get("ports") or []]
                # A headless Service resolves to the pod itself: the port is the container's.
                cports = [p.get("containerPort") for c in containers(sts[1]) for p in c.get("ports") or []]
                if port not in cports:
                    problem(cfg.where, f"'{addr}': port {port} is not a port of {m.group(1)}'s pods {cports}")
                elif port not in sports:
                    problem(cfg.where, f"'{addr}': port {port} is not a port of Service {m.group(3)} {sports}")
            listed.setdefault(m.group(1), set()).add(int(m.group(2)))
        for sts_name, ords in listed.items():
            n = (self.objs[("StatefulSet", sts_name)][1].get("spec") or {}).get("replicas", 1)
            want = set(range(n)) if is_int(n) else set()
            for o in sorted(want - ords):
                problem(cfg.where, f"does not list relay pod {sts_name}-{o}: flows that land on it "
                        "would find no proxy")
            for o in sorted(ords - want):
                problem(cfg.where, f"lists {sts_name}-{o}, but {sts_name} has {n} replicas")


def pod_labels(doc):
    return (((doc.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}


def containers(doc):
    pod = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
    return [c for c in pod.get("containers") or [] if isinstance(c, dict)]


def labels_match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def container_port(c, ref):
    """The number a Service targetPort or probe port (number or name) means in container c."""
    for p in c.get("ports") or []:
        if ref == p.get("name") or ref == p.get("containerPort"):
            return p.get("containerPort")
    return None


class FileMap:
    """Which file of which ConfigMap or Secret a path inside a container is."""

    def __init__(self, k8s, volumes, mounts, where):
        self.entries = []  # (mountPath, subPath, [(kind, name, files or None)], readOnly)
        for m in mounts:
            v = volumes.get(m.get("name"))
            if v is None or "mountPath" not in m:
                continue
            srcs = []
            if "configMap" in v:
                srcs.append(("configMap", v["configMap"]))
            if "secret" in v:
                srcs.append(("secret", dict(v["secret"], name=v["secret"].get("secretName"))))
            for s in (v.get("projected") or {}).get("sources") or []:
                for kind in ("configMap", "secret"):
                    if kind in s:
                        srcs.append((kind, s[kind]))
            resolved = []
            for kind, body in srcs:
                name = body.get("name")
                known = self.known_keys(k8s, kind, name, where)
                if body.get("items"):
                    files = {}
                    for it in body["items"]:
                        if known is not None and it.get("key") not in known:
                            problem(where, f"{kind} {name} has no key '{it.get('key')}'"
                                    + (" (README.md creates: " + ", ".join(sorted(known)) + ")"
                                       if kind == "secret" else ""))
                        files[it.get("path")] = it.get("key")
                else:
                    files = {k: k for k in known} if known is not None else None
                resolved.append((kind, name, files))
            if resolved and m.get("readOnly") is not True:
                problem(where, f"mount {m['mountPath']} of a ConfigMap or Secret is not readOnly")
            self.entries.append((m["mountPath"].rstrip("/") or "/", m.get("subPath"), resolved))

    @staticmethod
    def known_keys(k8s, kind, name, where):
        if kind == "configMap":
            cm = k8s.objs.get(("ConfigMap", name))
            if cm is None:
                problem(where, f"uses ConfigMap {name}, which is not in the manifests")
                return None
            return set((cm[1].get("data") or {}).keys())
        if ("Secret", name) in k8s.objs:
            return set((k8s.objs[("Secret", name)][1].get("data") or {}).keys())
        if name not in k8s.secret_keys:
            problem(where, f"uses Secret {name}, which README.md does not create "
                    "(kubectl create secret generic)")
            return None
        return k8s.secret_keys[name]

    def source(self, path):
        """(kind, name, key) of the file at path, or None."""
        best = None
        for mp, sub, resolved in self.entries:
            if sub:
                if path == mp:
                    rel_path = sub
                else:
                    continue
            elif path.startswith(mp + "/"):
                rel_path = path[len(mp) + 1:]
            else:
                continue
            if best is None or len(mp) > len(best[0]):
                best = (mp, rel_path, resolved)
        if best is None:
            return None
        _, rel_path, resolved = best
        for kind, name, files in resolved:
            if files is None:
                if "/" not in rel_path:
                    return (kind, name, rel_path)
            elif rel_path in files:
                return (kind, name, files[rel_path])
        return None


# ---- Docker ---------------------------------------------------------------------------------


def interpolate(s):
    """Compose's ${VAR:-default} with the defaults (no environment)."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}", lambda m: m.group(1) or "", str(s))


def check_dockerfile(build):
    """Returns the numeric uid of the image's USER, or None."""
    where = rel(DOCKERFILE)
    if not DOCKERFILE.exists():
        problem(where, "missing")
        return None
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    stages = []
    for ln in lines:
        word = ln.split(None, 1)[0].upper()
        if word == "FROM":
            stages.append([ln])
        elif stages:
            stages[-1].append(ln)
        else:
            problem(where, f"'{ln}' before the first FROM")
    if len(stages) < 2:
        problem(where, "should have a build stage and a runtime stage")
        return None
    for st in stages:
        base = st[0].split()[1]
        if base != "debian:12-slim":
            problem(where, f"stage from {base}, not debian:12-slim")
    build_text = " ".join(" ".join(st) for st in stages[:-1])
    if "-DTN_TESTS=OFF" not in build_text:
        problem(where, "the build does not pass -DTN_TESTS=OFF")
    for prog in ("server", "proxy", "client", "certs-tool"):
        if not re.search(rf"\b{re.escape(prog)}\b", build_text):
            problem(where, f"the build stage does not build {prog}")
    # The sources copied must exist and cover every directory the CMake project adds.
    copied = set()
    for st in stages:
        for ln in st:
            parts = ln.split()
            if parts[0].upper() in ("COPY", "ADD") and not any(p.startswith("--from") for p in parts):
                for srcp in [p for p in parts[1:-1] if not p.startswith("--")]:
                    if srcp in (".", "./"):
                        copied.add(".")
                        continue
                    if not (ROOT / srcp).exists():
                        problem(where, f"COPY {srcp}: no such file in the repository")
                    copied.add(srcp.rstrip("/"))
    top = (ROOT / "CMakeLists.txt").read_text()
    top = re.sub(r"if\s*\(\s*TN_TESTS\s*\).*?endif\s*\(\s*\)", "", top, flags=re.S)
    needed = {"CMakeLists.txt", "cmake"} | set(re.findall(r"add_subdirectory\(\s*([\w./-]+)", top))
    if "." not in copied:
        for d in sorted(needed - copied):
            problem(where, f"does not COPY {d}, which the CMake build needs")
    runtime = stages[-1]
    rt = " ".join(runtime)
    m = re.search(r"apt-get install ([^&;|]*)", rt)
    pkgs = {p for p in (m.group(1).split() if m else []) if not p.startswith("-")}
    if not m:
        problem(where, "the runtime stage installs no packages with apt-get")
    if re.search(r"-dev\b", " ".join(pkgs)):
        problem(where, "the runtime stage installs -dev packages")
    for need in ("iptables", "ca-certificates"):
        if need not in pkgs:
            problem(where, f"the runtime stage does not install {need} (the client runs it)")
    for ln in runtime:
        if ln.split()[0].upper() in ("ENTRYPOINT", "CMD"):
            problem(where, f"'{ln}': the program is chosen by compose.yaml and the manifests")
        if ln.split()[0].upper() == "COPY" and "--from" in ln:
            if not ln.rstrip().endswith("/usr/local/bin/"):
                problem(where, f"'{ln}' does not copy into /usr/local/bin/")
    progs_copied = " ".join(ln for ln in runtime if ln.upper().startswith("COPY"))
    for prog in ("server", "proxy", "client", "certs-tool"):
        if not re.search(rf"/{re.escape(prog)}/{re.escape(prog)}\b", progs_copied):
            problem(where, f"the runtime stage does not copy {prog}")
    uid = None
    users = [ln.split()[1] for ln in runtime if ln.split()[0].upper() == "USER"]
    if not users:
        problem(where, "the runtime stage sets no USER: the relay and proxy would run as root")
    else:
        u = users[-1].split(":")[0]
        if not u.isdigit():
            problem(where, f"USER {users[-1]} should be numeric, for Kubernetes' runAsNonRoot")
        elif int(u) == 0:
            problem(where, "USER is root")
        else:
            uid = int(u)
    check_runtime_libs(build, pkgs, where)
    return uid


def check_runtime_libs(build, pkgs, where):
    """Each shared library the built programs load comes from a runtime package (Debian)."""
    if not shutil.which("ldd") or not shutil.which("dpkg"):
        return
    libs = set()
    for prog in PROGRAMS + ("certs-tool",):
        exe = build / prog / prog
        if not exe.exists():
            continue
        r = subprocess.run(["ldd", str(exe)], capture_output=True, text=True)
        libs |= set(re.findall(r"=>\s+(/\S+)", r.stdout))
    if any(re.search(r"lib(asan|ubsan|tsan|lsan)\.so", lib) for lib in libs):
        return  # a sanitizer build loads what the image's plain build does not: nothing to say
    for lib in sorted(libs):
        real = os.path.realpath(lib)
        r = subprocess.run(["dpkg", "-S", real], capture_output=True, text=True)
        if r.returncode != 0:
            r = subprocess.run(["dpkg", "-S", lib], capture_output=True, text=True)
        if r.returncode != 0:
            continue  # not from a package (a sanitizer runtime, a local build): not ours to say
        pkg = r.stdout.split(":", 1)[0].strip()
        if pkg in ("libc6", "libgcc-s1"):
            continue
        if pkg not in pkgs:
            problem(where, f"the programs load {os.path.basename(lib)} (package {pkg}), "
                    "which the runtime stage does not install")


def compose_duration_s(text):
    """Seconds of a compose duration such as 40s or 1m30s; None if it is not one."""
    s = str(text).strip()
    parts = re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", s)
    if not parts or "".join(a + b for a, b in parts) != s:
        return None
    mult = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    return sum(float(a) * mult[b] for a, b in parts)


def check_compose(specs, image_uid):
    where0 = rel(COMPOSE)
    configs = []
    docs = load_yaml_docs(COMPOSE) if COMPOSE.exists() else []
    if not COMPOSE.exists():
        problem(where0, "missing")
    if len(docs) != 1:
        if COMPOSE.exists():
            problem(where0, "should hold one YAML document")
        return configs
    doc = docs[0][1]
    if not isinstance(doc, dict):
        problem(where0, "not a mapping")
        return configs
    for k in doc:
        if k not in ("name", "services", "networks", "volumes", "configs", "secrets", "include") \
                and not str(k).startswith("x-"):
            problem(where0, f"'{k}' is not a top-level key of a compose file")
    if "version" in doc:
        problem(where0, "'version' is obsolete")
    services = doc.get("services") or {}
    top_cfgs = doc.get("configs") or {}
    top_secrets = doc.get("secrets") or {}
    top_nets = doc.get("networks") or {}
    for name, s in top_secrets.items():
        f = (s or {}).get("file")
        if not f and not (s or {}).get("environment"):
            problem(f"{where0}: secrets.{name}", "needs file")
        elif f and os.path.isabs(f):
            problem(f"{where0}: secrets.{name}", f"{f}: an absolute host path ties the file to one machine")
    relay_ports = {}  # service -> (listen port, {published host port -> container port})
    progs = {}
    for sname, s in services.items():
        sw = f"{where0}: services.{sname}"
        if not isinstance(s, dict):
            problem(sw, "not a mapping")
            continue
        if not s.get("image") and not s.get("build"):
            problem(sw, "needs image or build")
        b = s.get("build")
        if isinstance(b, dict):
            ctx = (COMPOSE.parent / b.get("context", ".")).resolve()
            df = ctx / b.get("dockerfile", "Dockerfile")
            if not ctx.is_dir():
                problem(sw, f"build context {b.get('context')} is no directory")
            elif not df.exists():
                problem(sw, f"build: no {b.get('dockerfile')} in {b.get('context')}")
        for n in s.get("networks") or []:
            if n not in top_nets:
                problem(sw, f"network {n} is not defined")
        if s.get("network_mode") and s.get("networks"):
            problem(sw, "network_mode and networks exclude each other")
        argv = s.get("command") or []
        if isinstance(argv, str):
            argv = argv.split()
        prog = program_of(argv)
        if prog is None:
            continue
        progs[sname] = prog
        user = interpolate(s.get("user", "")) if "user" in s else None
        root = user is not None and user.split(":")[0] in ("0", "root")
        if prog in ("server", "proxy"):
            if root:
                problem(sw, f"the {prog} runs as root")
            if user is None and image_uid is None:
                problem(sw, f"the {prog} has no user, and the image none either")
            if s.get("privileged") or s.get("cap_add"):
                problem(sw, f"the {prog} needs no privilege or capability")
        if prog == "client":
            if "NET_ADMIN" not in (s.get("cap_add") or []):
                problem(sw, "the client needs cap_add: [NET_ADMIN] for its iptables rules")
            if not s.get("network_mode"):
                problem(sw, "the client should say in which network namespace it intercepts (network_mode)")
            if not root:
                problem(sw, "the client needs user root (the image's user is not)")
        if prog not in specs:
            continue
        spec = specs[prog]
        cpath = config_path_of(argv)
        if cpath is None:
            problem(sw, "has no --config FILE")
            continue
        targets = {}  # path in the container -> ("config"|"secret"|"volume", name)
        for c in s.get("configs") or []:
            c = c if isinstance(c, dict) else {"source": c}
            if c.get("source") not in top_cfgs:
                problem(sw, f"config {c.get('source')} is not defined")
            targets[c.get("target") or "/" + str(c.get("source"))] = ("config", c.get("source"))
        for c in s.get("secrets") or []:
            c = c if isinstance(c, dict) else {"source": c}
            if c.get("source") not in top_secrets:
                problem(sw, f"secret {c.get('source')} is not defined")
            t = c.get("target") or c.get("source")
            targets[t if str(t).startswith("/") else "/run/secrets/" + str(t)] = ("secret", c.get("source"))
        binds = []
        for v in s.get("volumes") or []:
            if isinstance(v, str) and ":" in v:
                parts = v.split(":")
                binds.append((parts[1].rstrip("/"), parts[0], "ro" in parts[2:]))
            elif isinstance(v, dict) and v.get("target"):
                binds.append((v["target"].rstrip("/"), v.get("source"), bool(v.get("read_only"))))

        def source(path):
            if path in targets:
                return targets[path]
            for dst, srcp, ro in binds:
                if path == dst or path.startswith(dst + "/"):
                    if not ro:
                        problem(sw, f"volume {srcp}:{dst} is not read-only")
                    return ("volume", srcp)
            return None

        src = source(cpath)
        text = None
        if src is None:
            problem(sw, f"--config {cpath} is mounted neither as a config nor a volume")
            continue
        if src[0] == "config":
            body = top_cfgs.get(src[1]) or {}
            if "content" in body:
                text = str(body["content"])
            elif body.get("file"):
                f = COMPOSE.parent / body["file"]
                text = f.read_text() if f.exists() else None
                if text is None:
                    problem(sw, f"config {src[1]}: {body['file']} does not exist")
        elif src[0] == "volume" and src[1] and not os.path.isabs(src[1]):
            f = COMPOSE.parent / src[1]
            if f.is_file():
                text = f.read_text()
        if text is None:
            continue
        cfg = Config(f"{where0}: config {src[1]}", prog, text)
        if cfg.data is None:
            continue
        cfg.flags = flags_of(argv, spec)
        check_keys(cfg, spec)
        configs.append(cfg)
        for k in ("cert_file", "key_file", "ca_file"):
            path = cfg.get(f"tls.{k}")
            if path and source(str(path)) is None:
                problem(sw, f"tls.{k} {path} is mounted neither as a secret nor a volume")
            elif path and source(str(path))[0] == "config":
                problem(sw, f"tls.{k} {path} is a config, not a secret")
        drain = duration_s(cfg.get("drain_timeout", spec) or 0) or 0
        grace = compose_duration_s(s.get("stop_grace_period", "10s"))
        if grace is None or grace <= drain:
            problem(sw, f"stop_grace_period {s.get('stop_grace_period', '10s (default)')} is not "
                    f"longer than drain_timeout ({drain:g}s): flows would be cut")
        if prog == "server":
            _, lport = hostport(cfg.get("listen_addr", spec) or "")
            published = {}
            for p in s.get("ports") or []:
                pm = re.fullmatch(r"(?:([\d.]+):)?(\d+):(\d+)(?:/tcp)?", str(p))
                if pm:
                    published[int(pm.group(2))] = int(pm.group(3))
                elif isinstance(p, dict):
                    published[int(p.get("published", 0))] = int(p.get("target", 0))
            if published and lport not in published.values():
                problem(sw, f"ports {s.get('ports')} do not reach the listen port {lport}")
            relay_ports[sname] = (lport, published)
        cfg.compose_service = sname
    # The relay addresses that proxies and clients dial.
    for cfg in configs:
        if cfg.prog == "server":
            continue
        s = services[cfg.compose_service]
        mine = set(s.get("networks") or ["default"])
        for addr in cfg.servers():
            host, port = hostport(addr)
            if host in ("127.0.0.1", "localhost", "::1"):
                if s.get("network_mode") != "host":
                    problem(cfg.where, f"'{addr}' is the container itself unless network_mode is host")
                elif not any(port in pub for _, pub in relay_ports.values()):
                    problem(cfg.where, f"'{addr}': no relay publishes port {port} on the host")
            elif host in relay_ports:
                if s.get("network_mode"):
                    problem(cfg.where, f"'{addr}': service names do not resolve with network_mode "
                            f"{s.get('network_mode')}")
                theirs = set(services[host].get("networks") or ["default"])
                if not mine & theirs:
                    problem(cfg.where, f"'{addr}': shares no network with {host}")
                if port != relay_ports[host][0]:
                    problem(cfg.where, f"'{addr}': {host} listens on {relay_ports[host][0]}")
            else:
                problem(cfg.where, f"'{addr}' is no relay service of this compose file")
    for need in ("server", "proxy", "client"):
        if need not in progs.values():
            problem(where0, f"no service runs the {need}")
    return configs


# ---- running the programs -------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_configs(build, configs):
    tmp = Path(tempfile.mkdtemp(prefix="deploy-check-"))
    procs = []
    try:
        certs = tmp / "certs"
        tool = build / "certs-tool" / "certs-tool"
        r = subprocess.run([str(tool), "--out", str(certs)], capture_output=True, text=True)
        if r.returncode != 0:
            problem("certs-tool", f"failed ({r.returncode}): {r.stderr.strip()}")
            return
        issued = {}

        def proxy_cert(pid):
            if not isinstance(pid, str) or not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", pid):
                return certs / "proxy"
            if pid not in issued:
                out = tmp / f"proxy-{pid}"
                r = subprocess.run([str(tool), "issue", "--role", "proxy", "--id", str(pid),
                                    "--ca", str(certs / "ca"), "--out", str(out)],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    problem("certs-tool", f"issue --id {pid}: {r.stderr.strip()}")
                issued[pid] = out
            return issued[pid]

        for i, cfg in enumerate(configs):
            if cfg.prog == "client" or cfg.data is None:
                continue
            f = tmp / f"{i}-{cfg.prog}.yaml"
            f.write_text(cfg.text)
            argv = [str(build / cfg.prog / cfg.prog), "--config", str(f)]
            # Flags override the file: the file is loaded as it is, with test certificates and
            # addresses on this machine.
            if cfg.prog == "server":
                cdir = certs / "server"
                port = free_port()
                argv += ["--listen", f"127.0.0.1:{port}"]
            else:
                cdir = proxy_cert(cfg.get("proxy_id"))
                port = None
                for _ in cfg.servers() or [None]:
                    argv += ["--server", f"127.0.0.1:{free_port()}"]
            argv += ["--tls-cert", str(cdir / "cert.pem"), "--tls-key", str(cdir / "key.pem"),
                     "--tls-ca", str(certs / "ca" / "cert.pem"), "--log-output", "stderr"]
            err = open(tmp / f"{i}.err", "w+")
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                 start_new_session=True)
            procs.append((cfg, p, err, port))
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and any(p.poll() is None for _, p, _, _ in procs):
            time.sleep(0.05)
        for cfg, p, err, port in procs:
            if p.poll() is None and port is not None:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                except OSError as e:
                    problem(cfg.where, f"{cfg.prog} runs, but does not accept on its listen port: {e}")
            rc = p.poll()
            if rc is not None:
                err.seek(0)
                tail = " | ".join(err.read().strip().splitlines()[-3:])
                what = "a configuration error" if rc == 2 else "an error"
                problem(cfg.where, f"{cfg.prog} --config stopped with status {rc} ({what}) "
                        f"within 2 s: {tail}")
    finally:
        for _, p, err, _ in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            err.close()
        shutil.rmtree(tmp, ignore_errors=True)


# ---- main -----------------------------------------------------------------------------------


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr if len(argv) != 2 else sys.stdout)
        return 0 if len(argv) == 2 else 2
    build = Path(argv[1]).resolve()
    if not build.is_dir():
        print(f"deploy_check.py: {argv[1]} is not a build directory", file=sys.stderr)
        return 2
    specs = load_specs(build)
    image_uid = check_dockerfile(build)
    k8s = K8s(specs, image_uid)
    k8s.load()
    k8s.check()
    configs = list(k8s.configs)
    configs += check_compose(specs, image_uid)
    examples = sorted(CONFIGS_DIR.glob("*.yaml"))
    for f in examples:
        prog = CONFIG_NAMES.get(f.name)
        if prog is None:
            problem(rel(f), f"which program reads it? (one of {', '.join(CONFIG_NAMES)})")
            continue
        if prog not in specs:
            continue
        cfg = Config(rel(f), prog, f.read_text())
        check_keys(cfg, specs[prog])
        configs.append(cfg)
    if specs.keys() >= {"server", "proxy"} and (build / "certs-tool" / "certs-tool").exists():
        run_configs(build, configs)
    else:
        problem(str(build), "cannot run the programs: build server, proxy and certs-tool")
    ran = sum(1 for c in configs if c.prog != "client")
    if problems:
        for p in problems:
            print(p)
        print(f"deploy_check: {len(problems)} problem(s)")
        return 1
    print(f"deploy_check: ok ({len(k8s.objs)} Kubernetes objects, {len(configs)} configs, "
          f"{ran} loaded by their program)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
