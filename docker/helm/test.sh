#!/usr/bin/env bash
# Tests the Helm chart docker/helm/gluten-node-agent offline (CI runs this): lint, package, render
# of a matrix of values validated against the Kubernetes and CRD schemas, the default DaemonSet
# against the kustomize base, the values schema, the chart README (see chart_test.py).
# The virtualenv (the Helm 4 SDK from PyPI, helm-python-sdk, with Helm's Go code inside: no helm
# binary) is made once per machine under $GLUTEN_TEST_CACHE. The agent's --check-config needs
# $AGENT_BIN, else the debug build in $CARGO_TARGET_DIR or target/ (cargo build -p gluten-node-agent).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${GLUTEN_TEST_CACHE:-/var/tmp/gluten-node-agent-test-cache}"
venv="$cache/helm-venv"
# Bump when the list changes, so a machine's old venv is remade.
want="helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 cloudcoil-models-prometheus-operator==0.80.1.0 jsonschema==4.26.0 cel-python==0.5.0 PyYAML==6.0.4"
if [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$want" ]; then
    rm -rf "$venv"
    mkdir -p "$cache"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install -q $want
    echo "$want" > "$venv/.requirements"
fi
exec "$venv/bin/python" "$here/chart_test.py" "$@"
