#!/usr/bin/env bash
# Validates every manifest under docker/kubernetes/ (CI runs this):
# * core kinds with kubernetes-validate (PyPI; bundles the Kubernetes OpenAPI schemas, offline)
#   in --strict mode (unknown fields are errors) against Kubernetes $K8S_VERSION;
# * the Prometheus Operator kinds (PodMonitor, ServiceMonitor, PrometheusRule), which
#   kubernetes-validate has no schema for, with the pydantic models generated from the operator's
#   CRDs (PyPI cloudcoil-models-prometheus-operator), unknown fields forbidden; cert-manager's
#   Certificate and Issuer (tls/) likewise (PyPI cloudcoil-models-cert-manager);
# * no document may go unvalidated: an unknown kind is an error, not a skip;
# * the PrometheusRule's groups equal docker/prometheus/rules.yml;
# * the ConfigMap's agent.toml passes `gluten-node-agent run --check-config` (needs $AGENT_BIN or
#   target/debug/gluten-node-agent).
# Usage: docker/kubernetes/validate.sh [--regenerate]   (--regenerate rewrites the PrometheusRule)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${K8S_VALIDATE_VENV:-$root/target/k8s-validate-venv}"
K8S_VERSION="${K8S_VERSION:-1.33.0}"

if [ ! -x "$venv/bin/kubernetes-validate" ] || ! "$venv/bin/python" -c 'import cloudcoil.models.prometheus_operator, cloudcoil.models.cert_manager' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q kubernetes-validate==1.37.0 cloudcoil-models-prometheus-operator cloudcoil-models-cert-manager
fi

"$venv/bin/python" - "$root" "$K8S_VERSION" "${1:-}" <<'PY'
import glob, os, subprocess, sys, tempfile, yaml
root, k8s_version, mode = sys.argv[1], sys.argv[2], sys.argv[3]
kdir = os.path.join(root, "docker/kubernetes")

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
crd_models = {"PodMonitor": pov1.PodMonitor, "ServiceMonitor": pov1.ServiceMonitor,
              "PrometheusRule": pov1.PrometheusRule}
# cert-manager's kinds (the TLS overlay, tls/), from the models generated from its CRDs.
from cloudcoil.models.cert_manager import v1 as cmv1
crd_models.update({"Certificate": cmv1.Certificate, "Issuer": cmv1.Issuer})
core_kinds = {"Namespace", "PriorityClass", "ServiceAccount", "Secret", "ConfigMap", "DaemonSet",
              "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "Pod"}

def strict(model, data, path):
    """Validates with unknown fields forbidden at every level."""
    from pydantic import BaseModel, ConfigDict
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

failed, counted = 0, 0
files = sorted(glob.glob(os.path.join(kdir, "**/*.yaml"), recursive=True))
for path in files:
    if os.path.basename(path) == "kustomization.yaml":
        kz = yaml.safe_load(open(path))
        for r in kz.get("resources", []):
            if not os.path.exists(os.path.join(os.path.dirname(path), r)):
                print(f"FAIL {path}: resource {r} does not exist"); failed += 1
        continue
    for i, doc in enumerate(yaml.safe_load_all(open(path))):
        if doc is None:
            continue
        kind, rel = doc.get("kind"), os.path.relpath(path, root)
        counted += 1
        if kind in crd_models:
            try:
                strict(crd_models[kind], doc, path)
                print(f"ok   {rel} #{i} {kind} (CRD model)")
            except Exception as e:
                print(f"FAIL {rel} #{i} {kind}: {e}"); failed += 1
        elif kind in core_kinds:
            with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
                yaml.safe_dump(doc, f); f.flush()
                r = subprocess.run([os.path.join(os.path.dirname(sys.executable), "kubernetes-validate"),
                                    "--strict", "-k", k8s_version, f.name], capture_output=True, text=True)
            out = (r.stdout + r.stderr).strip()
            if r.returncode != 0 or "passed for resource" not in out:
                print(f"FAIL {rel} #{i} {kind}: {out}"); failed += 1
            else:
                print(f"ok   {rel} #{i} {kind} (Kubernetes {k8s_version} schema, strict)")
        else:
            print(f"FAIL {rel} #{i}: kind {kind!r} has no schema here; add one"); failed += 1

# The ConfigMap's config file is a valid agent config.
agent = os.environ.get("AGENT_BIN", os.path.join(root, "target/debug/gluten-node-agent"))
for doc in yaml.safe_load_all(open(os.path.join(kdir, "configmap.yaml"))):
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
        f.write(doc["data"]["agent.toml"]); f.flush()
        r = subprocess.run([agent, "run", "--check-config", "--host-root", "/", "--config", f.name],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(f"FAIL configmap.yaml agent.toml: {r.stderr.strip()}"); failed += 1
        else:
            print("ok   docker/kubernetes/configmap.yaml agent.toml (--check-config)")

print(f"{counted} documents, {failed} failed")
sys.exit(1 if failed else 0)
PY
