"""Reading rendered Kubernetes manifests: kustomize rendering and lookups of workloads, pods and containers."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy"

Manifest = dict[str, Any]

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")


def render(kustomization: Path) -> list[Manifest]:
    """The documents `kubectl kustomize` renders from a kustomization folder."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RuntimeError("kubectl is needed to render the manifests (kubectl kustomize) and is not on PATH")
    result = subprocess.run([kubectl, "kustomize", str(kustomization)], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {kustomization} failed: {result.stderr.strip()}")
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def find(documents: list[Manifest], kind: str, name: str) -> Manifest:
    """The one document of this kind and name."""
    matches = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    if len(matches) != 1:
        raise LookupError(f"expected one {kind}/{name}, found {len(matches)}")
    return matches[0]


def of_kind(documents: list[Manifest], kind: str) -> list[Manifest]:
    return [d for d in documents if d["kind"] == kind]


def workloads(documents: list[Manifest]) -> list[Manifest]:
    return [d for d in documents if d["kind"] in WORKLOAD_KINDS]


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def pod_labels(workload: Manifest) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"].get("labels", {})
    return labels


def containers(workload: Manifest) -> Iterator[Manifest]:
    """Every container of a workload's pod, init containers included."""
    spec = pod_spec(workload)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def container(workload: Manifest, name: str) -> Manifest:
    for candidate in containers(workload):
        if candidate["name"] == name:
            return candidate
    raise LookupError(f"{workload['kind']}/{workload['metadata']['name']} has no container {name}")


def env_values(workload: Manifest, container_name: str, documents: list[Manifest]) -> dict[str, str]:
    """A container's plain environment: its ConfigMaps (envFrom) overlaid by its own literal env values."""
    values: dict[str, str] = {}
    target = container(workload, container_name)
    for source in target.get("envFrom", []):
        if "configMapRef" in source:
            values.update(find(documents, "ConfigMap", source["configMapRef"]["name"])["data"])
    for variable in target.get("env", []):
        if "value" in variable:
            values[variable["name"]] = variable["value"]
    return values


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Whether a plain label selector (matchLabels or a Service selector) selects these labels."""
    return all(labels.get(key) == value for key, value in selector.items())


def schema_problems(documents: list[Manifest], version: str) -> list[str]:
    """What kubernetes-validate (strict: unknown fields too) finds wrong in the documents, one line each."""
    problems = []
    for document in documents:
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            problems.append(f"{document['kind']}/{document['metadata']['name']}: {path}: {error.message}")
    return problems
