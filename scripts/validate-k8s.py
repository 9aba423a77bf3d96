#!/usr/bin/env python3
"""Validates Kubernetes manifests offline; exits 1 listing every error, 0 when all is well.

  validate-k8s.py [-k VERSION]... FILE...     (FILE: multi-document YAML, e.g. kubectl kustomize output)

- Built-in kinds: the Kubernetes JSON schemas bundled with kubernetes-validate, strict (an unknown
  or misspelt field is an error), for each -k version.
- PodMonitor: no schema ships with the tool, and the Prometheus operator's CRD is not vendored
  here, so it is checked against the structural schema below (the fields netpipe uses and their
  types; unknown fields are errors).
- Any other kind without a schema is an error.
- Cross-object checks no schema can make: workload selectors match their pod labels, named probe
  and Service ports exist, Services and PodMonitors select some pod, referenced ConfigMaps,
  Secrets and PersistentVolumeClaims exist, no object is defined twice.
"""

import argparse
import sys

import jsonschema
import yaml
from kubernetes_validate import utils as kv

LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": {"type": "array", "items": {"type": "object"}},
    },
}
# Structural PodMonitor (monitoring.coreos.com/v1): the common fields, with their types.
PODMONITOR = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PodMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string", "minLength": 1}},
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "podMetricsEndpoints"],
            "properties": {
                "selector": LABEL_SELECTOR,
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "jobLabel": {"type": "string"},
                "podTargetLabels": {"type": "array", "items": {"type": "string"}},
                "sampleLimit": {"type": "integer", "minimum": 0},
                "podMetricsEndpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "portNumber": {"type": "integer", "minimum": 1, "maximum": 65535},
                            "path": {"type": "string", "pattern": "^/"},
                            "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
                            "interval": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h))+$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h))+$"},
                            "honorLabels": {"type": "boolean"},
                            "relabelings": {"type": "array", "items": {"type": "object"}},
                            "metricRelabelings": {"type": "array", "items": {"type": "object"}},
                        },
                    },
                },
            },
        },
    },
}
LOCAL_SCHEMAS = {("monitoring.coreos.com/v1", "PodMonitor"): PODMONITOR}
WORKLOADS = {"Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job"}


def name_of(obj):
    meta = obj.get("metadata") or {}
    return "%s/%s" % (obj.get("kind"), meta.get("name") or meta.get("generateName") or "?")


def schema_errors(obj, versions):
    key = (obj.get("apiVersion"), obj.get("kind"))
    if key in LOCAL_SCHEMAS:
        validator = jsonschema.Draft202012Validator(LOCAL_SCHEMAS[key])
        for e in sorted(validator.iter_errors(obj), key=lambda e: list(e.path)):
            path = ".".join(str(p) for p in e.path)
            yield "%s: %s: %s (structural PodMonitor schema)" % (name_of(obj), path, e.message)
        return
    for version in versions:
        try:
            kv.validate(obj, version, strict=True)
        except kv.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            yield "%s: %s: %s (Kubernetes %s)" % (name_of(obj), path, e.message, version)
        except kv.SchemaNotFoundError:
            yield "%s: no schema for apiVersion %s kind %s (Kubernetes %s)" % (
                name_of(obj), key[0], key[1], version)
            return
        except (kv.VersionNotSupportedError, kv.InvalidSchemaError) as e:
            yield "%s: %s" % (name_of(obj), e.message)
            return


def pod_template(obj):
    return ((obj.get("spec") or {}).get("template") or {}) if obj.get("kind") in WORKLOADS else None


def matches(selector, labels):
    """Whether a selector (a plain map, or matchLabels/matchExpressions) selects these labels."""
    if not selector:
        return False
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        selector = {"matchLabels": selector}
    exprs = selector.get("matchExpressions") or []
    ops = {
        "In": lambda e: labels.get(e["key"]) in (e.get("values") or []),
        "NotIn": lambda e: labels.get(e["key"]) not in (e.get("values") or []),
        "Exists": lambda e: e["key"] in labels,
        "DoesNotExist": lambda e: e["key"] not in labels,
    }
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()) \
        and all(ops.get(e.get("operator"), lambda e: False)(e) for e in exprs)


def cross_errors(objects):
    seen = set()
    names = {}
    for obj in objects:
        meta = obj.get("metadata") or {}
        key = (obj.get("kind"), meta.get("namespace"), meta.get("name"))
        if meta.get("name") and key in seen:
            yield "%s defined twice" % name_of(obj)
        seen.add(key)
        names.setdefault(obj.get("kind"), set()).add(meta.get("name"))
    pods = []  # (workload, labels, {port name})
    for obj in objects:
        template = pod_template(obj)
        if template is None:
            continue
        labels = (template.get("metadata") or {}).get("labels") or {}
        selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if obj.get("kind") != "Job" and not matches(selector, labels):
            yield "%s: selector %s does not match its pod labels %s" % (name_of(obj), selector, labels)
        pod_spec = template.get("spec") or {}
        ports = set()
        for container in pod_spec.get("containers") or []:
            own = {p.get("name") for p in container.get("ports") or [] if p.get("name")}
            ports |= own
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                port = ((container.get(probe) or {}).get("httpGet") or {}).get("port")
                if isinstance(port, str) and port not in own:
                    yield "%s: %s port %r is not a port of container %s" % (
                        name_of(obj), probe, port, container.get("name"))
            for source in container.get("envFrom") or []:
                for ref, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    wanted = (source.get(ref) or {}).get("name")
                    if wanted and not (source.get(ref) or {}).get("optional") \
                            and wanted not in names.get(kind, set()):
                        yield "%s: envFrom %s %r is defined nowhere" % (name_of(obj), kind, wanted)
        for volume in pod_spec.get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim and claim not in names.get("PersistentVolumeClaim", set()):
                yield "%s: PersistentVolumeClaim %r is defined nowhere" % (name_of(obj), claim)
        pods.append((obj, labels, ports))
    for obj in objects:
        spec = obj.get("spec") or {}
        if obj.get("kind") == "Service" and spec.get("type") != "ExternalName":
            selected = [p for p in pods if matches(spec.get("selector"), p[1])]
            if not selected:
                yield "%s: selector %s matches no pod" % (name_of(obj), spec.get("selector"))
            for port in spec.get("ports") or []:
                target = port.get("targetPort")
                if isinstance(target, str) and not any(target in p[2] for p in selected):
                    yield "%s: targetPort %r is no port of the pods it selects" % (name_of(obj), target)
        if obj.get("kind") == "PodMonitor":
            selected = [p for p in pods if matches(spec.get("selector"), p[1])]
            for endpoint in spec.get("podMetricsEndpoints") or []:
                port = endpoint.get("port")
                if port and not any(port in p[2] for p in selected):
                    yield "%s: port %r is no port of the pods it selects" % (name_of(obj), port)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", "--kubernetes-version", action="append", dest="versions")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    versions = args.versions or ["1.29.0"]
    objects, errors = [], []
    for path in args.files:
        try:
            with open(path) as f:
                docs = [d for d in yaml.safe_load_all(f) if d]
        except (OSError, yaml.YAMLError) as e:
            errors.append("%s: %s" % (path, e))
            continue
        for doc in docs:
            if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
                errors.append("%s: a document without apiVersion and kind" % path)
                continue
            objects.append(doc)
            errors.extend("%s: %s" % (path, e) for e in schema_errors(doc, versions))
    errors.extend(cross_errors(objects))
    for error in errors:
        print("ERROR " + error, file=sys.stderr)
    if errors:
        print("k8s: %d error(s) in %d object(s)" % (len(errors), len(objects)), file=sys.stderr)
        return 1
    print("k8s: %d objects valid (Kubernetes %s strict schemas, PodMonitor structure, references)"
          % (len(objects), ", ".join(versions)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
