#!/usr/bin/env python3
# Tests of the Helm chart docker/helm/gluten-node-agent, offline, with the Helm 4 SDK (PyPI
# helm-python-sdk: Helm's own Go code through libhelm_c; no helm binary, no cluster). Run by
# docker/helm/test.sh, which makes the virtualenv. What it checks:
# * lint (strict, warnings are failures) with the defaults and every matrix case; package, and the
#   package renders what the directory renders;
# * every matrix case renders, and every document is validated as docker/kubernetes/validate.sh
#   validates the kustomize output: core kinds with kubernetes-validate --strict at validate.sh's
#   K8S_VERSION, Prometheus Operator kinds with the CRD-generated pydantic models (unknown fields
#   forbidden), cert-manager and node-readiness-controller kinds against the CRDs in
#   docker/kubernetes/crds (jsonschema, unknown fields forbidden, CEL rules); an unknown kind fails;
# * each case's agent and aggregator args, with the rendered agent.toml, pass the real binary's
#   --check-config (needs $AGENT_BIN, else the debug build; openssl for TLS files);
#   selectors match the pods they mean; Secrets and ConfigMaps referenced by pods are rendered or
#   named by values; the aggregator pod meets the `restricted` Pod Security profile;
# * the default DaemonSet equals docker/kubernetes/base/daemonset.yaml except where listed in
#   ALLOWED_DIFFERENCES, and the default agent.toml equals base/configmap.yaml's;
# * wrong values are refused by values.schema.json with a message naming the value; open maps
#   (global, annotations, resources, affinity, ...) take anything;
# * files/ holds exact copies of docker/prometheus/rules.yml and docker/grafana/fleet-dashboard.json;
# * README.md documents every value of values.yaml, and documents nothing else.
import copy, glob, json, os, re, subprocess, sys, tarfile, tempfile, tomllib

import helm_python as helm, jsonschema, kubernetes_validate, yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "../.."))
CHART = os.path.join(HERE, "gluten-node-agent")
KDIR = os.path.join(ROOT, "docker/kubernetes")
RELEASE, NAMESPACE = "gluten-node-agent", "gluten-node-agent"

# The Kubernetes schema version of validate.sh, so both validate against the same API.
_m = re.search(r'K8S_VERSION="\$\{K8S_VERSION:-([0-9.]+)\}"', open(os.path.join(KDIR, "validate.sh")).read())
K8S_VERSION = os.environ.get("K8S_VERSION") or _m.group(1)

passed, failed = 0, 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}: {detail}"[:2000])


def checked(name, fn):
    """Runs fn(); an exception or a returned non-empty error list is a failure."""
    try:
        errs = fn()
    except Exception as e:  # noqa: BLE001 - a failing check reports whatever went wrong
        errs = [f"{type(e).__name__}: {e}"]
    check(name, not errs, "; ".join(map(str, errs or [])))


# --- Document validation, as docker/kubernetes/validate.sh does it -----------------------------
CORE_KINDS = {"Namespace", "PriorityClass", "ServiceAccount", "Secret", "ConfigMap", "DaemonSet",
              "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "ClusterRole",
              "ClusterRoleBinding", "PersistentVolumeClaim"}


def _strict_models():
    from cloudcoil.models.prometheus_operator import v1 as pov1
    from pydantic import BaseModel

    def types_in(t):
        yield t
        for a in getattr(t, "__args__", ()) or ():
            yield from types_in(a)

    seen = set()

    def forbid(cls):
        if cls in seen or not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            return
        seen.add(cls)
        for f in cls.model_fields.values():
            for t in types_in(f.annotation):
                forbid(t)
        cls.model_config["extra"] = "forbid"
        cls.model_rebuild(force=True)

    models = {"PodMonitor": pov1.PodMonitor, "ServiceMonitor": pov1.ServiceMonitor,
              "PrometheusRule": pov1.PrometheusRule}
    for m in models.values():
        forbid(m)
        m.model_rebuild(force=True)
    return models


PO_MODELS = _strict_models()


sys.path.insert(0, os.path.join(ROOT, "docker/kubernetes"))
from crd_schema import cel_errors, to_jsonschema  # noqa: E402 (shared with validate.sh)


CRDS = {}
for _path in sorted(glob.glob(os.path.join(KDIR, "crds/**/*.yaml"), recursive=True)):
    for _doc in yaml.safe_load_all(open(_path)):
        if _doc and _doc.get("kind") == "CustomResourceDefinition":
            _spec = _doc["spec"]
            for _ver in _spec["versions"]:
                CRDS[(f"{_spec['group']}/{_ver['name']}", _spec["names"]["kind"])] = (
                    _ver["schema"]["openAPIV3Schema"], _spec["scope"])


def validate_doc(doc):
    """The errors of one rendered document (empty: valid)."""
    kind = doc.get("kind")
    if kind in PO_MODELS:
        PO_MODELS[kind].model_validate(doc)
        return []
    if (doc.get("apiVersion"), kind) in CRDS:
        schema, scope = CRDS[(doc["apiVersion"], kind)]
        meta = doc.get("metadata") or {}
        errs = [] if meta.get("name") else ["metadata.name is required"]
        if scope == "Cluster" and "namespace" in meta:
            errs.append(f"{kind} is cluster-scoped: metadata.namespace must not be set")
        body = {k: v for k, v in doc.items() if k != "metadata"}
        js = to_jsonschema(schema)
        js.get("properties", {}).pop("metadata", None)
        for e in jsonschema.Draft7Validator(js).iter_errors(body):
            errs.append(f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"[:300])
        return errs + cel_errors(schema, body, "")
    if kind in CORE_KINDS:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        return []
    return [f"kind {kind!r} ({doc.get('apiVersion')}) has no schema here; add one"]


# --- Rendering ---------------------------------------------------------------------------------
def deep_merge(a, b):
    out = copy.deepcopy(a)
    for k, v in b.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def render(values=None, chart=CHART):
    with helm.Chart.load(chart) as c:
        out = c.render(values or {}, name=RELEASE, namespace=NAMESPACE)
    docs = []
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def find(docs, kind, name=None):
    hits = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    if not hits:
        raise AssertionError(f"no {kind} {name or ''} rendered")
    return hits[0]


def container(pod_spec, name):
    return next(c for c in pod_spec["containers"] + pod_spec.get("initContainers", []) if c["name"] == name)


def pods(docs):
    return [d for d in docs if d["kind"] in ("DaemonSet", "Deployment")]


AGENT_BIN = os.environ.get("AGENT_BIN") or os.path.join(
    os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "debug/gluten-node-agent")

EVERYTHING = {
    "namespace": {"create": True},
    "agent": {"executorImage": {"enabled": True, "reference": "spark-gluten@sha256:" + "a" * 64},
              "podSecurityContext": {"supplementalGroups": [185]},
              "config": {"scratch": {"dirs": ["/mnt/spark-local", "/data1/spark"]},
                         "push": {"timeout_seconds": 5, "max_backoff_seconds": 30}},
              "extraArgs": ["--interval-seconds=20"]},
    "nfd": {"enabled": True},
    "nodeReadiness": {"enabled": True},
    "aggregator": {"tokens": {"read": {"enabled": True}},
                   "store": {"embedded": {"persistence": {"enabled": True}}}},
    "tls": {"enabled": True},
    "monitoring": {"podMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
                   "serviceMonitor": {"enabled": True},
                   "prometheusRule": {"enabled": True},
                   "grafanaDashboard": {"enabled": True, "folder": "Gluten"}},
}
POSTGRESQL = {"aggregator": {"replicas": 2, "store": {"type": "postgresql", "postgresql": {
    "existingSecret": "fleet-db", "caSecret": "fleet-db-ca"}}}}
# A JWKS of one RSA key (any modulus parses), for the aggregator's --check-config.
JWKS = '{"keys": [{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"}]}'

MATRIX = {
    "default": {},
    "everything on": EVERYTHING,
    "aggregator on PostgreSQL": POSTGRESQL,
    "PostgreSQL URL from values, TLS from an existing ClusterIssuer": {
        "aggregator": {"store": {"type": "postgresql", "postgresql": {
            "url": "postgresql://fleet@db:5432/fleet?sslmode=verify-full"}}},
        "tls": {"enabled": True, "issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer"}},
        "monitoring": {"serviceMonitor": {"enabled": True}}},
    "executor image": {"agent": {"executorImage": {"enabled": True}}},
    "NFD + readiness": {"nfd": {"enabled": True}, "nodeReadiness": {"enabled": True}},
    "per-node identity with service-account tokens": {
        "aggregator": {"serviceAccountTokens": {"enabled": True}}},
    "no monitoring, no aggregator (pushing elsewhere), no policies": {
        "aggregator": {"enabled": False, "tokens": {"push": {"existingSecret": "fleet-token"}}},
        "agent": {"pushUrl": "https://fleet.example:9900", "hostPort": 0},
        "networkPolicy": {"enabled": False}, "priorityClass": {"create": False, "name": ""}},
}


def case_errors(name, values, docs):
    """Structural checks of one rendered case, beyond the schemas."""
    errs = []
    merged = deep_merge(yaml.safe_load(open(os.path.join(CHART, "values.yaml"))), values)
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    # Unique names per kind.
    if len(names) != len(docs):
        errs.append("two documents share a kind and name")
    # Namespaced documents are in the release namespace (the dashboard may go elsewhere).
    for d in docs:
        if d["kind"] not in ("Namespace", "PriorityClass", "ClusterRole", "ClusterRoleBinding",
                             "NodeReadinessRule") and d["metadata"].get("namespace") != NAMESPACE:
            errs.append(f"{d['kind']}/{d['metadata']['name']}: namespace {d['metadata'].get('namespace')!r}")
    # Selectors select their own pods, and every pod's Secret and ConfigMap is here or named by values.
    external = {merged["aggregator"]["tokens"]["push"]["existingSecret"],
                merged["aggregator"]["tokens"]["read"]["existingSecret"],
                merged["aggregator"]["store"]["postgresql"]["existingSecret"],
                merged["aggregator"]["store"]["postgresql"]["caSecret"],
                merged["aggregator"]["serviceAccountTokens"]["jwksConfigMap"], "kube-root-ca.crt"}
    issued = {d["spec"]["secretName"] for d in by_kind.get("Certificate", [])}
    for w in pods(docs):
        sel = w["spec"]["selector"]["matchLabels"]
        tmpl = w["spec"]["template"]
        if not sel.items() <= tmpl["metadata"]["labels"].items():
            errs.append(f"{w['kind']} {w['metadata']['name']}: selector does not match its pods")
        for v in tmpl["spec"]["volumes"]:
            ref = (v.get("secret") or {}).get("secretName")
            if ref and ref not in external and ref not in issued and ("Secret", ref) not in names:
                errs.append(f"{w['metadata']['name']}: volume {v['name']}: Secret {ref} is neither rendered nor given")
            ref = (v.get("configMap") or {}).get("name")
            if ref and ("ConfigMap", ref) not in names and ref not in external:
                errs.append(f"{w['metadata']['name']}: volume {v['name']}: ConfigMap {ref} not rendered")
            ref = (v.get("persistentVolumeClaim") or {}).get("claimName")
            if ref and ("PersistentVolumeClaim", ref) not in names:
                errs.append(f"{w['metadata']['name']}: volume {v['name']}: claim {ref} not rendered")
        for c in tmpl["spec"]["containers"]:
            for e in c.get("env", []):
                ref = ((e.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name")
                if ref and ref not in external and ("Secret", ref) not in names:
                    errs.append(f"{c['name']}: env {e['name']}: Secret {ref} is neither rendered nor given")
        mounts = {m["name"] for c in tmpl["spec"]["containers"] + tmpl["spec"].get("initContainers", [])
                  for m in c.get("volumeMounts", [])}
        vols = {v["name"] for v in tmpl["spec"]["volumes"]}
        if mounts - vols or vols - mounts:
            errs.append(f"{w['metadata']['name']}: mounts without volume {sorted(mounts - vols)}, "
                        f"volumes never mounted {sorted(vols - mounts)}")
    pod_labels = [w["spec"]["template"]["metadata"]["labels"] for w in pods(docs)]
    for np in by_kind.get("NetworkPolicy", []):
        sel = np["spec"]["podSelector"]["matchLabels"]
        if not any(sel.items() <= pl.items() for pl in pod_labels):
            errs.append(f"NetworkPolicy {np['metadata']['name']} selects no pod of the chart")
    for svc in by_kind.get("Service", []):
        if not any(svc["spec"]["selector"].items() <= pl.items() for pl in pod_labels):
            errs.append(f"Service {svc['metadata']['name']} selects no pod")
    for pm in by_kind.get("PodMonitor", []):
        if not any(pm["spec"]["selector"]["matchLabels"].items() <= pl.items() for pl in pod_labels):
            errs.append("PodMonitor selects no pod")
    for sm in by_kind.get("ServiceMonitor", []):
        if not any(sm["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
                   for s in by_kind.get("Service", [])):
            errs.append("ServiceMonitor selects no Service")
    # The aggregator pod meets the `restricted` Pod Security profile.
    for dep in by_kind.get("Deployment", []):
        errs += restricted_errors(dep["spec"]["template"]["spec"], dep["metadata"]["name"])
    # The agent: no capability, no escalation, read-only root, in every container.
    for ds in by_kind.get("DaemonSet", []):
        spec = ds["spec"]["template"]["spec"]
        for c in spec["containers"]:
            sc = c.get("securityContext", {})
            if sc.get("allowPrivilegeEscalation") is not False or sc.get("capabilities", {}).get("drop") != ["ALL"] \
                    or sc.get("readOnlyRootFilesystem") is not True or sc.get("capabilities", {}).get("add"):
                errs.append(f"DaemonSet container {c['name']}: securityContext {sc}")
    # Agent and aggregator share the push token (unless agents push with service-account tokens).
    if "Deployment" in by_kind and "DaemonSet" in by_kind \
            and not merged["aggregator"]["serviceAccountTokens"]["enabled"]:
        agent_tok = {v["secret"]["secretName"] for v in find(docs, "DaemonSet")["spec"]["template"]["spec"]["volumes"] if v["name"] == "token"}
        agg_tok = {v["secret"]["secretName"] for v in by_kind["Deployment"][0]["spec"]["template"]["spec"]["volumes"] if v["name"] == "token"}
        if agent_tok != agg_tok:
            errs.append(f"push token: agent {agent_tok}, aggregator {agg_tok}")
    # The agent and the aggregator take their rendered flags and config (--check-config).
    toml = find(docs, "ConfigMap", RELEASE)["data"]["agent.toml"]
    errs += check_args(container(find(docs, "DaemonSet")["spec"]["template"]["spec"], "agent"), toml)
    for dep in by_kind.get("Deployment", []):
        errs += check_args(container(dep["spec"]["template"]["spec"], "aggregator"), toml)
    return errs


def restricted_errors(spec, who):
    """The `restricted` Pod Security Standard, as far as a pod spec shows it."""
    errs = []
    psc = spec.get("securityContext", {})
    if spec.get("hostPID") or spec.get("hostNetwork") or spec.get("hostIPC"):
        errs.append(f"{who}: host namespaces")
    for v in spec.get("volumes", []):
        if not set(v) - {"name"} <= {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                                     "persistentVolumeClaim", "projected", "secret"}:
            errs.append(f"{who}: volume {v['name']} of a kind restricted forbids")
    for c in spec["containers"] + spec.get("initContainers", []):
        sc = c.get("securityContext", {})
        nonroot = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if nonroot is not True or sc.get("runAsUser", psc.get("runAsUser")) == 0:
            errs.append(f"{who}/{c['name']}: may run as root")
        if sc.get("allowPrivilegeEscalation") is not False:
            errs.append(f"{who}/{c['name']}: allowPrivilegeEscalation not false")
        if sc.get("capabilities", {}).get("drop") != ["ALL"] or set(sc.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
            errs.append(f"{who}/{c['name']}: capabilities")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            errs.append(f"{who}/{c['name']}: seccomp {seccomp}")
        if any("hostPort" in p for p in c.get("ports", [])):
            errs.append(f"{who}/{c['name']}: hostPort")
    return errs


_PEM = {}


def pem():
    """A throwaway self-signed certificate and key (openssl), for the TLS flags' files."""
    if not _PEM:
        d = tempfile.mkdtemp()
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", f"{d}/key", "-out", f"{d}/crt", "-subj", "/CN=gluten-test",
                        "-days", "1"], check=True, capture_output=True)
        _PEM.update(crt=open(f"{d}/crt").read(), key=open(f"{d}/key").read())
    return _PEM


def check_args(c, toml):
    """Runs the container's own args with --check-config, every absolute path of a flag moved
    under a temporary root holding what the pod would mount there (the config, tokens, PEM files)."""
    files = {"--config": toml, "--push-token-file": "token\n", "--auth-token-file": "token\n",
             "--read-token-file": "token\n", "--service-account-jwks-file": JWKS, "--push-ca-file": pem()["crt"],
             "--tls-cert-file": pem()["crt"], "--tls-key-file": pem()["key"]}
    env = {**os.environ}
    for e in c.get("env", []):
        if e["name"] == "GLUTEN_AGGREGATOR_DATABASE_URL":
            env[e["name"]] = "postgresql://fleet@db:5432/fleet?sslmode=verify-full"
    with tempfile.TemporaryDirectory() as root:
        args = []
        for a in c["args"]:
            flag, eq, val = a.partition("=")
            if eq and val.startswith("/") and not flag == "--listen":
                path = root + val
                if flag in files:
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    open(path, "w").write(files[flag])
                elif flag in ("--host-root", "--executor-root", "--data-dir"):
                    os.makedirs(path, exist_ok=True)
                else:
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                a = f"{flag}={path}"
            args.append(a)
        r = subprocess.run([AGENT_BIN, *args, "--check-config"], capture_output=True, text=True, env=env)
    return [] if r.returncode == 0 else [f"{c['name']}: {' '.join(c['args'])} --check-config: {r.stderr.strip()}"]


# Where the default DaemonSet may differ from docker/kubernetes/base/daemonset.yaml, and why.
# Label maps must be supersets of the base's; everything else not listed must be equal.
ALLOWED_DIFFERENCES = {
    "metadata.labels": "Helm's labels (chart, instance, version, managed-by, part-of) added",
    "spec.selector.matchLabels": "app.kubernetes.io/instance added: two releases do not share pods",
    "spec.template.metadata.labels": "Helm's labels added",
    "spec.template.metadata.annotations": "checksum/config added: a config change rolls the pods",
    "agent.image": "the tag is the chart's appVersion, not `latest`",
    "agent.args.--push-url": "the aggregator Service is <release>-aggregator, on aggregator.port",
    "volumes.token.secret.secretName": "the push token Secret is <release>-push-token",
}


def daemonset_vs_base(helm_ds):
    base = yaml.safe_load(open(os.path.join(KDIR, "base/daemonset.yaml")))
    errs = []
    h, b = copy.deepcopy(helm_ds), copy.deepcopy(base)
    for path in ("metadata.labels", "spec.selector.matchLabels", "spec.template.metadata.labels",
                 "spec.template.metadata.annotations"):
        hv, bv = h, b
        keys = path.split(".")
        for k in keys[:-1]:
            hv, bv = hv[k], bv[k]
        hm, bm = hv.pop(keys[-1], {}), bv.pop(keys[-1], {})
        if not bm.items() <= hm.items():
            errs.append(f"{path}: the base's {bm} not all in {hm}")
    hs, bs = h["spec"]["template"]["spec"], b["spec"]["template"]["spec"]
    hc, bc = container(hs, "agent"), container(bs, "agent")
    hi, bi = hc.pop("image"), bc.pop("image")
    if hi.rsplit(":", 1)[0] != bi.rsplit(":", 1)[0]:
        errs.append(f"image repository {hi} vs {bi}")
    # The push URL: same scheme and path, the host is the chart's Service, the port aggregator.port.
    hu = [a for a in hc["args"] if a.startswith("--push-url=")]
    bu = [a for a in bc["args"] if a.startswith("--push-url=")]
    want = f"--push-url=http://{RELEASE}-aggregator.{NAMESPACE}.svc:9900"
    if hu != [want] or len(bu) != 1:
        errs.append(f"push url {hu} (want {want}) vs base {bu}")
    hc["args"] = [a for a in hc["args"] if not a.startswith("--push-url=")]
    bc["args"] = [a for a in bc["args"] if not a.startswith("--push-url=")]
    for spec in (hs, bs):
        for v in spec["volumes"]:
            if v["name"] == "token":
                v["secret"].pop("secretName")
    errs += [f"{p}: chart {x!r} vs base {y!r}" for p, x, y in diff(h, b)]
    return errs


def diff(a, b, path=""):
    """(path, a, b) for every place two YAML trees differ; lists of named items by name."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += diff(a.get(k), b.get(k), f"{path}.{k}" if path else k)
        return out
    if isinstance(a, list) and isinstance(b, list):
        if all(isinstance(x, dict) and "name" in x for x in a + b):
            return diff({x["name"]: x for x in a}, {x["name"]: x for x in b}, path) + (
                [] if [x["name"] for x in a] == [x["name"] for x in b] else [(path + " (order)", [x["name"] for x in a], [x["name"] for x in b])])
        if len(a) == len(b):
            return [d for i, (x, y) in enumerate(zip(a, b)) for d in diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [(path, a, b)]


# --- Values that must be refused, and open maps that must not -----------------------------------
REFUSED = [
    ({"agnet": {}}, "agnet"),
    ({"agent": {"port": "9899"}}, "/agent/port"),
    ({"agent": {"hostport": 9899}}, "hostport"),
    ({"agent": {"config": {"host_root": "/"}}}, "host_root"),
    ({"agent": {"config": {"interval_seconds": "15s"}}}, "/agent/config/interval_seconds"),
    ({"agent": {"config": {"scratch": {"dirs": ["spark-local"]}}}}, "/agent/config/scratch/dirs/0"),
    ({"agent": {"config": {"log_format": "xml"}}}, "/agent/config/log_format"),
    ({"agent": {"podAnnotations": {"a": 1}}}, "/agent/podAnnotations/a"),
    ({"agent": {"startupProbe": {"periodSecond": 2}}}, "periodSecond"),
    ({"agent": {"tolerations": {"operator": "Exists"}}}, "/agent/tolerations"),
    ({"agent": {"executorImage": {"enabled": "yes"}}}, "/agent/executorImage/enabled"),
    ({"image": {"digest": "latest"}}, "/image/digest"),
    ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ({"aggregator": {"image": {"digest": "sha256:abc"}}}, "/aggregator/image/digest"),
    ({"aggregator": {"store": {"type": "mysql"}}}, "/aggregator/store/type"),
    ({"aggregator": {"replicas": 3}}, "/aggregator/replicas"),
    ({"aggregator": {"port": 70000}}, "/aggregator/port"),
    ({"aggregator": {"tokens": {"push": {"secret": "x"}}}}, "secret"),
    ({"aggregator": {"store": {"embedded": {"persistence": {"size": "1 GB"}}}}},
     "/aggregator/store/embedded/persistence/size"),
    ({"tls": {"duration": "90 days"}}, "/tls/duration"),
    ({"tls": {"issuerRef": {"kind": "Vault"}}}, "/tls/issuerRef/kind"),
    ({"nfd": {"groupId": 0}}, "/nfd/groupId"),
    ({"nodeReadiness": {"rule": {"taintEffect": "Evict"}}}, "/nodeReadiness/rule/taintEffect"),
    ({"networkPolicy": {"metricsNamespaceSelector": {"matchLabel": {}}}}, "matchLabel"),
    ({"monitoring": {"podMonitor": {"enabled": "true"}}}, "/monitoring/podMonitor/enabled"),
    ({"monitoring": {"grafanaDashboard": {"labels": {}}}}, "labels"),
    ({"priorityClass": {"value": 2000000000}}, "/priorityClass/value"),
]
ACCEPTED = [
    {"global": {"imageRegistry": "r.example", "anything": {"nested": [1, 2]}}},
    {"commonLabels": {"team": "data"}},
    {"agent": {"resources": {"limits": {"memory": "64Mi", "cpu": "1"}, "requests": {"cpu": "5m"}}}},
    {"agent": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "pool", "operator": "In", "values": ["spark"]}]}]}}}}},
    {"agent": {"nodeSelector": {"node.example.com/pool": "spark-gluten"},
               "tolerations": [{"key": "spark", "operator": "Exists", "effect": "NoSchedule"}],
               "podAnnotations": {"a": "b"}}},
    {"aggregator": {"enabled": False}},
    {"aggregator": {"podSecurityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
                                           "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}}},
]


def schema_errors(values, expect):
    try:
        render(values)
    except helm.errors.HelmError as e:
        msg = str(e)
        return [] if expect in msg else [f"refused, but the message does not name {expect!r}: {msg}"]
    return ["accepted"]


# --- README documents every value ------------------------------------------------------------
# Documented as one value: the agent's own config (README.md "Configuration" of the repository)
# and Kubernetes shapes (a probe's timing, a label selector).
ONE_VALUE_PATHS, ONE_VALUE_DEFS = {"agent.config"}, {"probe", "labelSelector"}


def value_paths(values, schema, prefix=""):
    """Dotted paths of values.yaml: descending into objects the schema closes, stopping at open maps."""
    out = []
    for k, v in values.items():
        p = f"{prefix}.{k}" if prefix else k
        raw = (schema.get("properties") or {}).get(k, {})
        node = resolve(schema, raw)
        one = p in ONE_VALUE_PATHS or raw.get("$ref", "").split("/")[-1] in ONE_VALUE_DEFS
        if isinstance(v, dict) and node.get("additionalProperties") is False and v and not one:
            out += value_paths(v, node, p)
        else:
            out.append(p)
    return out


def resolve(root, node):
    while "$ref" in node:
        node = root["definitions"][node["$ref"].split("/")[-1]]
    return {**node, "definitions": root.get("definitions", {})}


def readme_errors():
    values = yaml.safe_load(open(os.path.join(CHART, "values.yaml")))
    schema = json.load(open(os.path.join(CHART, "values.schema.json")))
    paths = set(value_paths(values, schema))
    readme = open(os.path.join(CHART, "README.md")).read()
    documented = set(re.findall(r"^\| `([A-Za-z0-9_.\-]+)` \|", readme, re.M))
    errs = [f"README.md does not document `{p}`" for p in sorted(paths - documented)]
    errs += [f"README.md documents `{p}`, which values.yaml does not have" for p in sorted(documented - paths)]
    return errs


def schema_complete_errors():
    """Every key the schema defines (closed objects) is in values.yaml, so it has a default and a doc."""
    values = yaml.safe_load(open(os.path.join(CHART, "values.yaml")))
    schema = json.load(open(os.path.join(CHART, "values.schema.json")))
    errs = []

    def walk(node, v, p):
        if "$ref" in node and p:
            return  # a shape of definitions (probe, selector, ...): its keys are optional
        node = resolve(schema, node)
        if node.get("additionalProperties") is not False or not isinstance(v, dict):
            return
        for k, sub in (node.get("properties") or {}).items():
            if p.startswith("agent.config"):
                continue  # the agent's own keys: values.yaml sets only some
            if k not in v:
                errs.append(f"{p + '.' if p else ''}{k}: in values.schema.json, not in values.yaml")
            else:
                walk(sub, v[k], f"{p + '.' if p else ''}{k}")
    walk(schema, values, "")
    return errs


# --- The run -----------------------------------------------------------------------------------
def main():
    for src, copy_ in (("docker/prometheus/rules.yml", "files/rules.yml"),
                       ("docker/grafana/fleet-dashboard.json", "files/fleet-dashboard.json")):
        check(f"{copy_} is an exact copy of {src}",
              open(os.path.join(ROOT, src), "rb").read() == open(os.path.join(CHART, copy_), "rb").read(),
              f"copy it again: cp {src} docker/helm/gluten-node-agent/{copy_}")
    chart_meta = yaml.safe_load(open(os.path.join(CHART, "Chart.yaml")))
    ws = tomllib.load(open(os.path.join(ROOT, "Cargo.toml"), "rb"))["workspace"]["package"]["version"]
    check("Chart.yaml appVersion is the agent's version (Cargo workspace)", chart_meta["appVersion"] == ws,
          f"{chart_meta['appVersion']} vs {ws}")
    check("values.yaml validates against values.schema.json and README.md documents every value",
          not readme_errors(), "; ".join(readme_errors()))
    checked("every key of values.schema.json has a default in values.yaml", schema_complete_errors)
    if not os.access(AGENT_BIN, os.X_OK):
        check("agent binary for --check-config", False,
              f"{AGENT_BIN} missing: cargo build -p gluten-node-agent, or set AGENT_BIN")

    for name, values in MATRIX.items():
        def lint(values=values):
            r = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version=f"v{K8S_VERSION}")
            return [f"{m['path']}: {m['error'].strip()}" for m in r["messages"] if m["severity"] >= 2] + r["errors"]
        checked(f"[{name}] helm lint --strict", lint)
        try:
            docs = render(values)
        except Exception as e:  # noqa: BLE001
            check(f"[{name}] renders", False, str(e))
            continue
        check(f"[{name}] renders {len(docs)} documents", bool(docs), "nothing rendered")
        bad = []
        for d in docs:
            try:
                bad += [f"{d['kind']}/{d['metadata']['name']}: {e}" for e in validate_doc(d)]
            except Exception as e:  # noqa: BLE001
                bad.append(f"{d['kind']}/{d['metadata'].get('name')}: {str(e).strip().splitlines()[0][:600]}")
        kinds = sorted({d["kind"] for d in docs})
        check(f"[{name}] every document valid ({', '.join(kinds)})", not bad, "; ".join(bad))
        checked(f"[{name}] selectors, references, security contexts, agent and aggregator --check-config",
                lambda: case_errors(name, values, docs))
        checked(f"[{name}] what the values ask for is rendered", lambda: case_specifics(name, docs))

    default = render()
    checked("default DaemonSet equals docker/kubernetes/base/daemonset.yaml but for "
            + ", ".join(ALLOWED_DIFFERENCES), lambda: daemonset_vs_base(find(default, "DaemonSet")))
    base_cm = yaml.safe_load(open(os.path.join(KDIR, "base/configmap.yaml")))
    check("default agent.toml equals docker/kubernetes/base/configmap.yaml's (as TOML)",
          tomllib.loads(find(default, "ConfigMap", RELEASE)["data"]["agent.toml"])
          == tomllib.loads(base_cm["data"]["agent.toml"]), "they differ")
    checked("the kustomize base's aggregator pod and this chart's agree on security and probes",
            lambda: aggregator_vs_base(find(default, "Deployment")))

    def tokens():
        a = [find(render(), "Secret", f"{RELEASE}-push-token")["data"]["token"] for _ in range(2)]
        import base64
        t = [base64.b64decode(x).decode() for x in a]
        given = base64.b64decode(find(render({"aggregator": {"tokens": {"push": {"value": "s3cret"}}}}),
                                      "Secret", f"{RELEASE}-push-token")["data"]["token"]).decode()
        return ([] if len(t[0]) == 48 and t[0] != t[1] and t[0].isalnum() else [f"random tokens {t}"]) + \
            ([] if given == "s3cret" else [f"given token became {given!r}"])
    checked("the push token: random (48 alphanumerics) unless given", tokens)

    for values, expect in REFUSED:
        checked(f"refused: {json.dumps(values)} (message names {expect})", lambda: schema_errors(values, expect))
    for values in ACCEPTED:
        checked(f"accepted (open map): {json.dumps(values)[:100]}", lambda: [] if render(values) else ["nothing"])
    checked("refused: PostgreSQL with neither url nor existingSecret (message names the value)",
            lambda: schema_errors({"aggregator": {"store": {"type": "postgresql"}}}, "aggregator.store.postgresql"))

    def package():
        with tempfile.TemporaryDirectory() as d:
            tgz = helm.package(CHART, destination=d)
            with tarfile.open(tgz) as t:
                members = set(t.getnames())
            need = {f"gluten-node-agent/{f}" for f in ("Chart.yaml", "values.yaml", "values.schema.json",
                                                        "README.md", "files/rules.yml", "files/fleet-dashboard.json")}
            errs = [f"{tgz} lacks {m}" for m in sorted(need - members)]
            with helm.Chart.load(tgz) as c:
                out = c.render(EVERYTHING, name=RELEASE, namespace=NAMESPACE)
            packed = [x for p, t in sorted(out.items()) if not p.endswith("NOTES.txt") for x in yaml.safe_load_all(t) if x]
            strip = lambda docs: [d for d in docs if d["kind"] != "Secret"]
            if strip(packed) != strip(render(EVERYTHING)):
                errs.append("the package renders differently from the chart directory")
            return errs
    checked("helm package: the archive has the schema, README and files/, and renders like the directory", package)

    print(f"{len(MATRIX)} value sets rendered and validated against Kubernetes {K8S_VERSION}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def aggregator_vs_base(dep):
    base = next(d for d in yaml.safe_load_all(open(os.path.join(KDIR, "base/aggregator.yaml"))) if d["kind"] == "Deployment")
    hs, bs = dep["spec"]["template"]["spec"], base["spec"]["template"]["spec"]
    errs = []
    for k in ("securityContext", "automountServiceAccountToken", "enableServiceLinks", "nodeSelector",
              "terminationGracePeriodSeconds"):
        if hs.get(k) != bs.get(k):
            errs.append(f"pod {k}: {hs.get(k)} vs {bs.get(k)}")
    hc, bc = hs["containers"][0], bs["containers"][0]
    # The aggregator image (the default build), not the lean agent image the DaemonSet runs.
    if hc["image"].rsplit(":", 1)[0] != bc["image"].rsplit(":", 1)[0]:
        errs.append(f"image repository {hc['image']} vs {bc['image']}")
    for k in ("securityContext", "resources"):
        if hc.get(k) != bc.get(k):
            errs.append(f"container {k}: {hc.get(k)} vs {bc.get(k)}")
    for k in ("startupProbe", "livenessProbe", "readinessProbe"):
        if {**hc[k], "httpGet": None} != {**bc[k], "httpGet": None} or hc[k]["httpGet"]["path"] != bc[k]["httpGet"]["path"]:
            errs.append(f"{k}: {hc[k]} vs {bc[k]}")
    if dep["spec"]["strategy"] != base["spec"]["strategy"]:
        errs.append("strategy")
    return errs


def case_specifics(name, docs):
    """What each matrix case turns on is in the output."""
    errs = []
    ds = find(docs, "DaemonSet")
    spec = ds["spec"]["template"]["spec"]
    agent = container(spec, "agent")
    args = agent["args"]
    vols = {v["name"]: v for v in spec["volumes"]}

    def need(cond, what):
        if not cond:
            errs.append(what)
    if name in ("everything on", "executor image"):
        need("--executor-root=/executor" in args, "--executor-root")
        need("image" in vols.get("executor-image", {}), "the executor image volume")
    if name in ("everything on", "NFD + readiness"):
        need(any(a.startswith("--nfd-features-file=/etc/kubernetes/node-feature-discovery/features.d/") for a in args),
             "--nfd-features-file")
        need(10999 in spec["securityContext"].get("supplementalGroups", []), "the NFD group")
        need(container(spec, "grant-features-dir")["securityContext"]["capabilities"]["add"] == ["CHOWN"], "the init container")
        rep = container(spec, "readiness-reporter")
        need({"name": "CHECK_ENDPOINT", "value": "http://127.0.0.1:9899/health/verdict"} in rep["env"], "the reporter's endpoint")
        need(find(docs, "NodeReadinessRule")["spec"]["taint"]["key"] == "readiness.k8s.io/gluten-not-ready", "the rule")
        need(find(docs, "ClusterRoleBinding")["subjects"][0]["name"] == spec["serviceAccountName"], "the reporter's binding")
        need("token" not in str(agent.get("volumeMounts")) or all(
            m["mountPath"] != "/var/run/secrets/kubernetes.io/serviceaccount" for m in agent["volumeMounts"]),
            "the agent container must not get the API token")
    if name == "per-node identity with service-account tokens":
        sat = vols["token"]["projected"]["sources"][0]["serviceAccountToken"]
        need(sat["audience"] == "gluten-node-aggregator", "the projected token's audience")
        need("--push-token-file=/var/run/secrets/gluten-node-agent/token" in args, "the agent sends it")
        agg_spec = find(docs, "Deployment")["spec"]["template"]["spec"]
        agg = container(agg_spec, "aggregator")
        need("--service-account-jwks-file=/etc/gluten-node-aggregator/jwks/jwks.json" in agg["args"], "the JWKS file")
        need(f"--service-account-subject=system:serviceaccount:{NAMESPACE}:{spec['serviceAccountName']}" in agg["args"],
             "the agents' service account as subject")
        need({v["name"]: v for v in agg_spec["volumes"]}["jwks"]["configMap"]["name"] == "gluten-node-aggregator-jwks",
             "the JWKS ConfigMap")
    if name == "everything on":
        need(185 in spec["securityContext"]["supplementalGroups"], "the scratch group kept next to NFD's")
        need([v["hostPath"]["path"] for n, v in sorted(vols.items()) if n.startswith("scratch-")] == ["/mnt/spark-local", "/data1/spark"],
             "one volume per scratch dir")
        need(any(a.startswith("--push-url=https://") for a in args) and "--push-ca-file=/var/run/secrets/gluten-ca/ca.crt" in args,
             "https push with the CA")
        need(vols["gluten-ca"]["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}], "only ca.crt of the CA")
        agg = container(find(docs, "Deployment")["spec"]["template"]["spec"], "aggregator")
        need("--tls-cert-file=/var/run/secrets/gluten-node-aggregator-tls/tls.crt" in agg["args"], "aggregator TLS")
        need(agg["readinessProbe"]["httpGet"].get("scheme") == "HTTPS", "HTTPS probes")
        need("--read-token-file=/var/run/secrets/gluten-node-aggregator-read/token" in agg["args"], "read token")
        sm = find(docs, "ServiceMonitor")["spec"]["endpoints"][0]
        need(sm.get("scheme") == "https" and sm["authorization"]["credentials"]["name"] == f"{RELEASE}-read-token",
             "ServiceMonitor over https with the read token")
        pr = find(docs, "PrometheusRule")
        need(pr["spec"] == yaml.safe_load(open(os.path.join(ROOT, "docker/prometheus/rules.yml"))), "PrometheusRule = rules.yml")
        dash = find(docs, "ConfigMap", f"{RELEASE}-dashboard")
        need(json.loads(dash["data"]["gluten-node-fleet.json"]) == json.load(open(os.path.join(ROOT, "docker/grafana/fleet-dashboard.json"))),
             "dashboard = fleet-dashboard.json")
        need(dash["metadata"]["labels"].get("grafana_dashboard") == "1" and dash["metadata"]["annotations"] == {"grafana_folder": "Gluten"},
             "dashboard sidecar label and folder")
        need(find(docs, "PodMonitor")["metadata"]["labels"].get("release") == "prometheus", "PodMonitor labels")
        # The job the alerts and the dashboard select, whatever the release and names.
        job_re = re.search(r'up\{job=~"([^"]+)"\}', open(os.path.join(ROOT, "docker/prometheus/rules.yml")).read()).group(1)
        with helm.Chart.load(CHART) as c:
            other = c.render({**EVERYTHING, "fullnameOverride": "fleet"}, name="x", namespace=NAMESPACE)
        pm = next(d for d in yaml.safe_load_all(other["gluten-node-agent/templates/monitoring.yaml"]) if d and d["kind"] == "PodMonitor")
        jobs = [r.get("replacement") for r in pm["spec"]["podMetricsEndpoints"][0]["relabelings"] if r["targetLabel"] == "job"]
        need(len(jobs) == 1 and re.fullmatch(job_re, jobs[0]), f"PodMonitor job {jobs} matches {job_re} under another name")
        need(find(docs, "PersistentVolumeClaim")["spec"]["resources"]["requests"]["storage"] == "1Gi", "the data PVC")
        need(find(docs, "Namespace")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged", "the namespace's PSS label")
        need({d["kind"] for d in docs} >= {"Issuer", "Certificate"}, "cert-manager resources")
    if name.startswith("aggregator on PostgreSQL") or name.startswith("PostgreSQL"):
        dep = find(docs, "Deployment")
        agg = container(dep["spec"]["template"]["spec"], "aggregator")
        env = {e["name"]: e for e in agg.get("env", [])}
        need("GLUTEN_AGGREGATOR_DATABASE_URL" in env, "the database URL from a Secret")
        need(not any(a.startswith("--data-dir") for a in agg["args"]), "no data dir with PostgreSQL")
        need(dep["spec"]["strategy"]["type"] == "RollingUpdate", "RollingUpdate with a shared store")
        np = find(docs, "NetworkPolicy", f"{RELEASE}-aggregator")
        need(any(p.get("port") == 5432 for r in np["spec"]["egress"] for p in r.get("ports", [])), "egress to PostgreSQL")
    if name == "aggregator on PostgreSQL":
        need(find(docs, "PodDisruptionBudget")["spec"] == {"minAvailable": 1, "selector": find(docs, "PodDisruptionBudget")["spec"]["selector"]},
             "minAvailable 1 with 2 replicas")
        need(find(docs, "Deployment")["spec"]["replicas"] == 2, "2 replicas")
    if name.startswith("PostgreSQL URL"):
        need(find(docs, "Secret", f"{RELEASE}-aggregator-database")["data"]["database-url"], "the URL Secret")
        need(find(docs, "Certificate")["spec"]["issuerRef"] == {"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"},
             "the given issuer")
        need(not [d for d in docs if d["kind"] == "Issuer"], "no Issuer of ours with an existing one")
        need(vols["gluten-ca"]["secret"]["secretName"] == f"{RELEASE}-aggregator-tls", "CA from the serving Secret")
    if name.startswith("no monitoring"):
        kinds = {d["kind"] for d in docs}
        need(not kinds & {"Deployment", "Service", "NetworkPolicy", "PriorityClass", "PodMonitor", "ServiceMonitor",
                          "PrometheusRule"}, f"nothing of what is off: {kinds}")
        need("--push-url=https://fleet.example:9900" in args and vols["token"]["secret"]["secretName"] == "fleet-token",
             "push to the given URL with the given token")
        need("priorityClassName" not in spec and "hostPort" not in agent["ports"][0], "no priority class, no hostPort")
    if name == "default":
        need({d["kind"] for d in docs} == {"ConfigMap", "DaemonSet", "Deployment", "NetworkPolicy", "PodDisruptionBudget",
                                          "PriorityClass", "Secret", "Service", "ServiceAccount"}, "the default kinds")
    return errs


if __name__ == "__main__":
    sys.exit(main())
