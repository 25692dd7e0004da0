"""The one-node overlay: the whole system within what a single small node can grant."""

from __future__ import annotations

import re

import kubernetes_validate
import pytest

from tests.deploy.manifests import Manifest, container, containers, find, of_kind, schema_problems, workloads

KUBERNETES_VERSIONS = ["1.30.0", kubernetes_validate.utils.latest_version()]
MAX_CPU = 2.0
MAX_MEMORY_GI = 4.0
MAX_STORAGE_GI = 10.0
_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9, "": 1}


def _cpu(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def _bytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)([A-Za-z]*)", quantity).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def _replicas(documents: list[Manifest], workload: Manifest) -> int:
    """What runs at rest: the replica count, or the autoscaler's minimum when it owns the count."""
    if "replicas" in workload["spec"]:
        return int(workload["spec"]["replicas"])
    autoscalers = [
        a
        for a in of_kind(documents, "HorizontalPodAutoscaler")
        if a["spec"]["scaleTargetRef"]["name"] == workload["metadata"]["name"]
    ]
    return int(autoscalers[0]["spec"]["minReplicas"]) if autoscalers else 1


def test_everything_requested_fits_two_cpus_and_four_gibibytes(one_node: list[Manifest]) -> None:
    cpu = memory = 0.0
    for workload in workloads(one_node):
        replicas = _replicas(one_node, workload)
        assert replicas == 1, f"{workload['metadata']['name']}: one replica on one node"
        spec = workload["spec"]["template"]["spec"]
        running = spec["containers"]
        # A pod requests the larger of its init containers and the sum of its containers.
        pod_cpu = max(
            [sum(_cpu(c["resources"]["requests"]["cpu"]) for c in running)]
            + [_cpu(c["resources"]["requests"]["cpu"]) for c in spec.get("initContainers", [])]
        )
        pod_memory = max(
            [sum(_bytes(c["resources"]["requests"]["memory"]) for c in running)]
            + [_bytes(c["resources"]["requests"]["memory"]) for c in spec.get("initContainers", [])]
        )
        cpu += replicas * pod_cpu
        memory += replicas * pod_memory
    assert cpu <= MAX_CPU, f"{cpu:.2f} CPU requested"
    assert memory <= MAX_MEMORY_GI * 2**30, f"{memory / 2**30:.2f} Gi requested"


def test_volumes_are_small(one_node: list[Manifest]) -> None:
    claims = [c["spec"] for c in of_kind(one_node, "PersistentVolumeClaim")]
    claims += [t["spec"] for w in of_kind(one_node, "StatefulSet") for t in w["spec"].get("volumeClaimTemplates", [])]
    total = sum(_bytes(c["resources"]["requests"]["storage"]) for c in claims)
    assert total <= MAX_STORAGE_GI * 2**30


def test_qdrant_is_one_peer_without_a_cluster_to_replicate_to(one_node: list[Manifest]) -> None:
    qdrant = find(one_node, "StatefulSet", "qdrant")
    assert qdrant["spec"]["replicas"] == 1
    env = {e["name"]: e.get("value") for e in container(qdrant, "qdrant")["env"]}
    assert env["QDRANT__CLUSTER__ENABLED"] == "false"
    assert env["QDRANT__STORAGE__COLLECTION__REPLICATION_FACTOR"] == "1"


def test_redis_memory_ceiling_stays_below_its_container_limit(one_node: list[Manifest]) -> None:
    redis = container(find(one_node, "StatefulSet", "redis"), "redis")
    ceiling = _bytes(redis["args"][redis["args"].index("--maxmemory") + 1].replace("mb", "Mi"))
    assert ceiling < _bytes(redis["resources"]["limits"]["memory"])


def test_every_limit_covers_its_request(one_node: list[Manifest]) -> None:
    for workload in workloads(one_node):
        for each in containers(workload):
            requests, limits = each["resources"]["requests"], each["resources"]["limits"]
            assert _cpu(requests["cpu"]) <= _cpu(limits["cpu"]) and _bytes(requests["memory"]) <= _bytes(
                limits["memory"]
            )


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_one_node_documents_validate_against_the_kubernetes_schemas(one_node: list[Manifest], version: str) -> None:
    assert schema_problems(one_node, version) == []
