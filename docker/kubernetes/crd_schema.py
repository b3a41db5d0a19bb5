"""The Kubernetes API server's validation of custom resources, offline: a CRD's openAPIV3Schema as
a strict JSON schema (unknown fields refused) and its x-kubernetes-validations CEL rules. Shared
by docker/kubernetes/validate.sh and docker/helm/chart_test.py."""

import copy

import celpy
from celpy import celtypes


def to_jsonschema(s):
    """An openAPIV3Schema as a JSON schema that rejects unknown fields (the API server's strict
    field validation), keeping x-kubernetes-validations for the CEL pass."""
    s = copy.deepcopy(s)
    def walk(n):
        if not isinstance(n, dict):
            return n
        for k in ("properties", "patternProperties"):
            if k in n:
                n[k] = {p: walk(v) for p, v in n[k].items()}
        for k in ("items", "additionalProperties", "not"):
            if isinstance(n.get(k), dict):
                n[k] = walk(n[k])
        for k in ("allOf", "anyOf", "oneOf"):
            if k in n:
                n[k] = [walk(v) for v in n[k]]
        if n.pop("x-kubernetes-int-or-string", False):
            n.pop("type", None)
            n["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        if n.pop("nullable", False) and "type" in n:
            n["type"] = [n["type"], "null"]
        if n.get("type") == "object" and "properties" in n and "additionalProperties" not in n \
                and not n.get("x-kubernetes-preserve-unknown-fields"):
            n["additionalProperties"] = False
        return n
    return walk(s)

def cel_functions():
    """The Kubernetes CEL string library functions our CRDs' rules use, beyond cel-python's."""
    def split(s, sep, n=None):
        parts = str(s).split(str(sep)) if n is None else str(s).split(str(sep), int(n) - 1)
        return celtypes.ListType([celtypes.StringType(p) for p in parts])
    def lower(s):
        return celtypes.StringType(str(s).lower())
    def upper(s):
        return celtypes.StringType(str(s).upper())
    return {"split": split, "lowerAscii": lower, "upperAscii": upper}

cel_env = celpy.Environment()

def cel_errors(schema, value, path):
    """Evaluates every x-kubernetes-validations rule of `schema` that applies to `value`."""
    errs = []
    if value is None:
        return errs
    for v in schema.get("x-kubernetes-validations", []):
        rule = v["rule"]
        if "oldSelf" in rule:
            continue  # a transition rule: applies to updates only
        try:
            prog = cel_env.program(cel_env.compile(rule), functions=cel_functions())
            ok = prog.evaluate({"self": celpy.json_to_cel(value)})
        except Exception as e:
            errs.append(f"{path}: cannot evaluate CEL rule {rule!r}: {e}"[:300]); continue
        if isinstance(ok, Exception) or not bool(ok):
            errs.append(f"{path}: {v.get('message', rule)} (CEL {rule!r})")
    if isinstance(value, dict):
        for k, sub in (schema.get("properties") or {}).items():
            errs += cel_errors(sub, value.get(k), f"{path}.{k}")
        ap = schema.get("additionalProperties")
        if isinstance(ap, dict):
            for k, sub in value.items():
                errs += cel_errors(ap, sub, f"{path}.{k}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, sub in enumerate(value):
            errs += cel_errors(schema["items"], sub, f"{path}[{i}]")
    return errs
