"""The Kubernetes manifests: schema-valid, locked down, probed on the right ports, wired together and to the code."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from recsys.encoder.interactions.role import InteractionsRole
from recsys.encoder.settings import EncoderSettings
from recsys.monitor.settings import MonitorSettings
from recsys.recommender.settings import RecommenderSettings
from recsys.shared.settings import ConnectionSettings
from recsys_client.api import encoder_pb2, monitor_pb2, recommender_pb2
from tests.deploy.manifests import (
    DEPLOY_DIR,
    Manifest,
    container,
    containers,
    env_values,
    find,
    of_kind,
    pod_labels,
    pod_spec,
    schema_problems,
    selects,
    workloads,
)

# The oldest release the manifests claim (preStop `sleep` is on by default from 1.30) and the newest one
# kubernetes-validate knows, so that both a field too new and an API since removed are caught.
KUBERNETES_VERSIONS = ["1.30.0", kubernetes_validate.utils.latest_version()]


@dataclass(frozen=True)
class Workload:
    """One Deployment of a recsys service: how it is run and what it serves."""

    service: str  # the recsys service it runs (its settings class, its RECSYS_<SERVICE>_PORT)
    args: tuple[str, ...]
    settings: type[ConnectionSettings]
    # The health name readiness asks for: the gRPC API the pods serve, or a role's own name when it has none.
    readiness_service: str
    # The Service clients reach it by (None: nothing calls it).
    client_service: str | None
    container: str = ""

    @property
    def container_name(self) -> str:
        return self.container or self.service


ENCODER_API = encoder_pb2.DESCRIPTOR.services_by_name["EncoderService"].full_name
WORKLOADS = {
    "encoder-text": Workload("encoder", ("run", "encoder", "--role", "text"), EncoderSettings, ENCODER_API, "encoder"),
    "encoder-interactions": Workload(
        "encoder", ("run", "encoder", "--role", "interactions"), EncoderSettings, InteractionsRole.health_name, None
    ),
    "recommender": Workload(
        "recommender",
        ("run", "recommender"),
        RecommenderSettings,
        recommender_pb2.DESCRIPTOR.services_by_name["RecommenderService"].full_name,
        "recommender",
    ),
    "monitor": Workload(
        "monitor",
        ("run", "monitor"),
        MonitorSettings,
        monitor_pb2.DESCRIPTOR.services_by_name["MonitorService"].full_name,
        "monitor",
    ),
}
ENCODER_ROLES = ("encoder-text", "encoder-interactions")

CUSTOM_RESOURCE_GROUPS = {"keda.sh", "cert-manager.io", "monitoring.coreos.com"}


def _group(document: Manifest) -> str:
    api_version: str = document["apiVersion"]
    return api_version.split("/")[0] if "/" in api_version else ""


def _recsys_fields(values: dict[str, str]) -> dict[str, str]:
    return {name.removeprefix("RECSYS_").lower(): value for name, value in values.items() if name.startswith("RECSYS_")}


def _port_env(service: str) -> str:
    return f"RECSYS_{service.upper()}_PORT"


def _env(documents: list[Manifest], name: str) -> dict[str, str]:
    """The plain environment of a recsys Deployment's container."""
    return env_values(find(documents, "Deployment", name), WORKLOADS[name].container_name, documents)


def _served_port(documents: list[Manifest], name: str) -> int:
    variable = _port_env(WORKLOADS[name].service)
    values = _env(documents, name)
    assert variable in values, f"{name} does not set {variable}: its port would be implicit"
    return int(values[variable])


def _service_port(documents: list[Manifest], name: str, port: int) -> int:
    """The container port that Service `name` sends its port `port` to, checked to be a port its pods open."""
    service = find(documents, "Service", name)
    entries = [entry for entry in service["spec"]["ports"] if entry["port"] == port]
    assert entries, f"Service {name} has no port {port}"
    target = entries[0].get("targetPort", port)
    pods = [w for w in workloads(documents) if selects(service["spec"]["selector"], pod_labels(w))]
    assert pods, f"Service {name} selects no pods"
    opened = {p["containerPort"] for w in pods for c in containers(w) for p in c.get("ports", [])}
    assert target in opened, f"Service {name} sends port {port} to {target}, which its pods do not open"
    return int(target)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_base_documents_validate_against_the_kubernetes_schemas(base: list[Manifest], version: str) -> None:
    assert schema_problems(base, version) == []


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_production_documents_validate_except_the_custom_resources(production: list[Manifest], version: str) -> None:
    custom = [d for d in production if _group(d) in CUSTOM_RESOURCE_GROUPS]
    keda = {("ScaledObject", name) for name in ENCODER_ROLES} | {("TriggerAuthentication", "recsys-redis-keda")}
    certificates = {("Certificate", name) for name in ("recsys-ca", "recsys-grpc", "recsys-redis")}
    issuers = {("Issuer", "recsys-selfsigned"), ("Issuer", "recsys-ca")}
    monitoring = {("PodMonitor", "recsys"), ("PrometheusRule", "recsys")}
    assert {(d["kind"], d["metadata"]["name"]) for d in custom} == keda | certificates | issuers | monitoring
    assert schema_problems([d for d in production if d not in custom], version) == []


def test_base_needs_no_custom_resource_definitions(base: list[Manifest]) -> None:
    assert [d["kind"] for d in base if _group(d) in CUSTOM_RESOURCE_GROUPS] == []


@pytest.mark.parametrize("name", ENCODER_ROLES)
def test_keda_scales_each_encoder_role_on_the_stream_of_its_own_consumer_group(
    production: list[Manifest], name: str
) -> None:
    scaled = find(production, "ScaledObject", name)
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    target = spec["scaleTargetRef"]
    assert target.get("kind", "Deployment") == "Deployment"
    assert target["name"] == name
    find(production, "Deployment", name)
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]

    # The stream and group as the role's pods compute them from their own environment.
    given = _recsys_fields(_env(production, name))
    settings = EncoderSettings.model_validate({f: v for f, v in given.items() if f in EncoderSettings.model_fields})
    stream, group = {
        "encoder-text": (settings.streams.items, settings.item_ingest_group),
        "encoder-interactions": (settings.streams.interactions, settings.interaction_ingest_group),
    }[name]
    triggers = spec["triggers"]
    assert triggers and all(t["type"] == "redis-streams" for t in triggers)
    for trigger in triggers:
        metadata = trigger["metadata"]
        assert all(isinstance(value, str) for value in metadata.values()), "KEDA trigger metadata must be strings"
        assert (metadata["stream"], metadata["consumerGroup"]) == (stream, group)
    pending = [t["metadata"]["pendingEntriesCount"] for t in triggers if "pendingEntriesCount" in t["metadata"]]
    assert len(pending) == 1 and int(pending[0]) > 0
    lag = [t["metadata"]["lagCount"] for t in triggers if "lagCount" in t["metadata"]]
    assert len(lag) == 1 and int(lag[0]) > 0


def test_keda_reaches_redis_by_its_full_name_in_the_overlay_namespace(production: list[Manifest]) -> None:
    # KEDA's operator polls from its own namespace: a short Service name would not resolve there.
    redis_url = urlsplit(find(production, "ConfigMap", "recsys-config")["data"]["RECSYS_REDIS_URL"])
    scaled_objects = of_kind(production, "ScaledObject")
    assert {d["metadata"]["name"] for d in scaled_objects} == set(ENCODER_ROLES)
    for scaled in scaled_objects:
        namespace = find(production, "Deployment", scaled["spec"]["scaleTargetRef"]["name"])["metadata"]["namespace"]
        for trigger in scaled["spec"]["triggers"]:
            host, _, port = trigger["metadata"]["address"].rpartition(":")
            assert host in {
                f"{redis_url.hostname}.{namespace}.svc",
                f"{redis_url.hostname}.{namespace}.svc.cluster.local",
            }
            assert int(port) == redis_url.port
            assert int(trigger["metadata"].get("databaseIndex", "0")) == int(redis_url.path.strip("/") or 0)


def test_every_container_sets_cpu_and_memory_requests_and_limits(rendered: list[Manifest]) -> None:
    missing = [
        f"{w['metadata']['name']}/{c['name']} {part}.{resource}"
        for w in workloads(rendered)
        for c in containers(w)
        for part in ("requests", "limits")
        for resource in ("cpu", "memory")
        if resource not in c.get("resources", {}).get(part, {})
    ]
    assert missing == []


def test_every_container_runs_non_root_on_a_read_only_root_without_capabilities(rendered: list[Manifest]) -> None:
    for workload in workloads(rendered):
        pod = pod_spec(workload).get("securityContext", {})
        for c in containers(workload):
            where = f"{workload['metadata']['name']}/{c['name']}"
            own = c.get("securityContext", {})
            assert own.get("runAsNonRoot", pod.get("runAsNonRoot")) is True, where
            assert own.get("runAsUser", pod.get("runAsUser", 1)) != 0, where
            assert own.get("readOnlyRootFilesystem") is True, where
            assert own.get("allowPrivilegeEscalation") is False, where
            assert own.get("privileged", False) is False, where
            assert "ALL" in own.get("capabilities", {}).get("drop", []), where
            assert own.get("capabilities", {}).get("add", []) == [], where
            seccomp = own.get("seccompProfile", pod.get("seccompProfile", {}))
            assert seccomp.get("type") == "RuntimeDefault", where


def test_pods_mount_no_service_account_token(rendered: list[Manifest]) -> None:
    for workload in workloads(rendered):
        spec = pod_spec(workload)
        assert spec.get("automountServiceAccountToken") is False, workload["metadata"]["name"]
        find(rendered, "ServiceAccount", spec["serviceAccountName"])


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_grpc_services_probe_health_on_the_port_they_serve(rendered: list[Manifest], name: str) -> None:
    workload = WORKLOADS[name]
    port = _served_port(rendered, name)
    served = container(find(rendered, "Deployment", name), workload.container_name)
    assert port in [p["containerPort"] for p in served["ports"]]
    # With TLS on the gRPC port (components/cert-manager) the probes use the plaintext health port.
    health_variable = f"RECSYS_{WORKLOADS[name].service.upper()}_HEALTH_PORT"
    probed = int(_env(rendered, name).get(health_variable, port))
    assert probed in [p["containerPort"] for p in served["ports"]]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert served[probe]["grpc"]["port"] == probed, f"{name} {probe}"
    # Readiness asks for the API itself; "" (the whole server) is what liveness and start-up ask for.
    assert served["readinessProbe"]["grpc"].get("service", "") == workload.readiness_service
    assert served["livenessProbe"]["grpc"].get("service", "") == ""
    if workload.client_service is not None:
        assert _service_port(rendered, workload.client_service, port) == port


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_each_deployment_runs_its_own_service_through_the_cli(base: list[Manifest], name: str) -> None:
    workload = WORKLOADS[name]
    served = container(find(base, "Deployment", name), workload.container_name)
    assert "command" not in served, "the image's ENTRYPOINT (recsys) must stay in place"
    assert tuple(served["args"]) == workload.args
    cli = Path(sys.executable).with_name("recsys")
    accepted = subprocess.run([str(cli), *served["args"], "--help"], capture_output=True, text=True, timeout=60)
    assert accepted.returncode == 0, accepted.stderr


def test_every_shared_setting_is_read_by_some_service(base: list[Manifest]) -> None:
    # Settings ignore unknown variables, so a misspelt name would silently leave the default in place.
    known = {field for workload in WORKLOADS.values() for field in workload.settings.model_fields}
    shared = _recsys_fields(find(base, "ConfigMap", "recsys-config")["data"])
    assert sorted(set(shared) - known) == []


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_each_service_accepts_the_settings_its_pod_gets(base: list[Manifest], name: str) -> None:
    workload = WORKLOADS[name]
    settings_class = workload.settings
    deployment = find(base, "Deployment", name)
    own = _recsys_fields(
        {v["name"]: v.get("value", "") for v in container(deployment, workload.container_name).get("env", [])}
    )
    assert sorted(set(own) - set(settings_class.model_fields)) == [], f"{name} gets variables it does not read"
    given = _recsys_fields(_env(base, name))
    # model_validate reads only these values, not the environment of the test run.
    settings = settings_class.model_validate({f: v for f, v in given.items() if f in settings_class.model_fields})
    assert getattr(settings, f"{workload.service}_port") == _served_port(base, name)
    assert str(settings.data_dir) == given["data_dir"]


def test_config_map_points_at_the_cluster_services(base: list[Manifest]) -> None:
    config = find(base, "ConfigMap", "recsys-config")["data"]
    redis = urlsplit(config["RECSYS_REDIS_URL"])
    assert redis.scheme == "redis" and redis.hostname and redis.port
    _service_port(base, redis.hostname, redis.port)
    qdrant = urlsplit(config["RECSYS_QDRANT_URL"])
    assert qdrant.scheme in {"http", "https"} and qdrant.hostname and qdrant.port
    assert _service_port(base, qdrant.hostname, qdrant.port) == qdrant.port
    assert find(base, "StatefulSet", qdrant.hostname)["spec"]["replicas"] >= 1
    encoder_host, _, encoder_port = config["RECSYS_ENCODER_ADDRESS"].rpartition(":")
    assert _service_port(base, encoder_host, int(encoder_port)) == _served_port(base, "encoder-text")
    # The address reaches the text role only: the interactions role serves no Embed.
    encoder = find(base, "Service", encoder_host)
    assert [w["metadata"]["name"] for w in workloads(base) if selects(encoder["spec"]["selector"], pod_labels(w))] == [
        "encoder-text"
    ]


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_termination_grace_covers_pre_stop_and_the_grpc_drain(base: list[Manifest], name: str) -> None:
    deployment = find(base, "Deployment", name)
    drain = float(_env(base, name)["RECSYS_GRPC_GRACE_S"])
    served = container(deployment, WORKLOADS[name].container_name)
    pre_stop = served.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    # Stream handlers and gRPC calls may each take the whole grace, one after the other, before SIGKILL.
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] >= pre_stop + 2 * drain + 5


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_writable_paths_of_the_read_only_image_are_volumes(base: list[Manifest], name: str) -> None:
    deployment = find(base, "Deployment", name)
    data_dir = _env(base, name)["RECSYS_DATA_DIR"]
    mounts = {m["mountPath"]: m["name"] for m in container(deployment, WORKLOADS[name].container_name)["volumeMounts"]}
    volumes = {v["name"] for v in pod_spec(deployment)["volumes"]}
    for path in ("/tmp", data_dir):
        assert path in mounts and mounts[path] in volumes, f"{name} cannot write {path}"


def test_service_selectors_match_their_pods_and_ports(rendered: list[Manifest]) -> None:
    for service in of_kind(rendered, "Service"):
        for entry in service["spec"]["ports"]:
            _service_port(rendered, service["metadata"]["name"], entry["port"])


def test_qdrant_runs_a_cluster_of_at_least_three_peers(base: list[Manifest]) -> None:
    qdrant = find(base, "StatefulSet", "qdrant")
    assert qdrant["spec"]["replicas"] >= 3
    peer = container(qdrant, "qdrant")
    env = {v["name"]: v["value"] for v in peer["env"] if "value" in v}
    assert env["QDRANT__CLUSTER__ENABLED"] == "true"
    assert 2 <= int(env["QDRANT__STORAGE__COLLECTION__REPLICATION_FACTOR"]) <= qdrant["spec"]["replicas"]

    headless = find(base, "Service", qdrant["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    p2p_port = int(env["QDRANT__CLUSTER__P2P__PORT"])
    assert p2p_port in [p["port"] for p in headless["spec"]["ports"]]
    assert p2p_port in [p["containerPort"] for p in peer["ports"]]
    start = " ".join(peer["args"])
    name, service = qdrant["metadata"]["name"], headless["metadata"]["name"]
    assert f'--bootstrap "http://{name}-0.{service}:{p2p_port}"' in start
    assert '--uri "${peer_uri}"' in start and f"${{HOSTNAME}}.{service}:{p2p_port}" in start

    assert peer["readinessProbe"]["httpGet"]["path"] == "/readyz"
    claims = {t["metadata"]["name"] for t in qdrant["spec"]["volumeClaimTemplates"]}
    storage = [m for m in peer["volumeMounts"] if m["mountPath"] == "/qdrant/storage"]
    assert storage and storage[0]["name"] in claims


def test_redis_appends_every_write_to_a_persistent_volume(base: list[Manifest]) -> None:
    redis = find(base, "StatefulSet", "redis")
    server = container(redis, "redis")
    args = server["args"]
    assert args[0] == "redis-server"
    options = dict(zip(args[1::2], args[2::2], strict=True))
    assert options["--appendonly"] == "yes"
    assert options["--maxmemory-policy"] == "noeviction", "evicting would drop stream entries"
    claims = {t["metadata"]["name"] for t in redis["spec"]["volumeClaimTemplates"]}
    data = [m for m in server["volumeMounts"] if m["mountPath"] == options["--dir"]]
    assert data and data[0]["name"] in claims


def test_replicated_workloads_have_a_disruption_budget_that_lets_nodes_drain(rendered: list[Manifest]) -> None:
    autoscalers = of_kind(rendered, "HorizontalPodAutoscaler")
    scaled = {a["spec"]["scaleTargetRef"]["name"]: a["spec"]["minReplicas"] for a in autoscalers}
    for keda in of_kind(rendered, "ScaledObject"):
        scaled[keda["spec"]["scaleTargetRef"]["name"]] = keda["spec"]["minReplicaCount"]
    budgets = of_kind(rendered, "PodDisruptionBudget")
    for workload in workloads(rendered):
        name = workload["metadata"]["name"]
        replicas = scaled.get(name, workload["spec"].get("replicas", 1))
        covering = [b for b in budgets if selects(b["spec"]["selector"]["matchLabels"], pod_labels(workload))]
        if replicas > 1:
            assert covering, f"{name} runs {replicas} replicas without a PodDisruptionBudget"
        for budget in covering:
            # A budget that allows no eviction at all blocks every node drain.
            allowed = budget["spec"].get("maxUnavailable", replicas - budget["spec"].get("minAvailable", 0))
            assert allowed >= 1, f"{budget['metadata']['name']} never lets a {name} pod go"
    for budget in budgets:
        assert any(selects(budget["spec"]["selector"]["matchLabels"], pod_labels(w)) for w in workloads(rendered))


def test_recommender_scales_on_cpu_and_leaves_the_replica_count_to_the_autoscaler(rendered: list[Manifest]) -> None:
    autoscaler = find(rendered, "HorizontalPodAutoscaler", "recommender")
    target = autoscaler["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "recommender")
    # Two for availability; the one-node overlay has one node to lose anyway.
    one_node = find(rendered, "StatefulSet", "qdrant")["spec"]["replicas"] == 1
    assert autoscaler["spec"]["minReplicas"] >= (1 if one_node else 2)
    assert [m["resource"]["name"] for m in autoscaler["spec"]["metrics"] if m["type"] == "Resource"] == ["cpu"]
    recommender = find(rendered, "Deployment", "recommender")
    assert "replicas" not in recommender["spec"]
    assert "cpu" in container(recommender, "recommender")["resources"]["requests"], "utilization needs a cpu request"


@pytest.mark.parametrize("name", ENCODER_ROLES)
def test_encoder_replica_count_is_fixed_in_base_and_left_to_keda_in_production(
    base: list[Manifest], production: list[Manifest], name: str
) -> None:
    assert find(base, "Deployment", name)["spec"]["replicas"] >= 2
    assert "replicas" not in find(production, "Deployment", name)["spec"]


def _gpus(workload: Manifest) -> int:
    return sum(
        int(c["resources"].get(part, {}).get("nvidia.com/gpu", 0))
        for c in containers(workload)
        for part in ("requests", "limits")
    )


def test_only_the_encoder_text_role_runs_on_gpu_nodes_in_production(
    base: list[Manifest], production: list[Manifest]
) -> None:
    encoder = find(production, "Deployment", "encoder-text")
    assert _gpus(encoder) >= 1
    spec = pod_spec(encoder)
    assert spec["nodeSelector"]
    assert any(t["key"] == "nvidia.com/gpu" and t["effect"] == "NoSchedule" for t in spec["tolerations"])
    encoding = container(encoder, "encoder")
    assert "cuda" in encoding["image"], "a CPU build of torch would leave the GPU idle"
    assert _env(production, "encoder-text")["RECSYS_DEVICE"].startswith("cuda")
    others = [w["metadata"]["name"] for w in workloads(production) if w is not encoder and _gpus(w)]
    assert others == []
    assert [w["metadata"]["name"] for w in workloads(base) if _gpus(w)] == []


def test_interactions_role_gets_no_gpu_and_a_small_memory_request(rendered: list[Manifest]) -> None:
    interactions = find(rendered, "Deployment", "encoder-interactions")
    assert _gpus(interactions) == 0
    spec = pod_spec(interactions)
    assert "nodeSelector" not in spec and "tolerations" not in spec, "it must schedule on any CPU node"
    served = container(interactions, "encoder")
    assert "cuda" not in served["image"]
    requested = _memory_bytes(served["resources"]["requests"]["memory"])
    text_requested = _memory_bytes(
        container(find(rendered, "Deployment", "encoder-text"), "encoder")["resources"]["requests"]["memory"]
    )
    assert requested <= 512 * 2**20 and requested * 4 <= text_requested
    assert _recsys_fields(_env(rendered, "encoder-interactions")).get("behavior_device", "cpu") == "cpu"


def _memory_bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}
    for unit, factor in units.items():
        if quantity.endswith(unit):
            return int(float(quantity.removesuffix(unit)) * factor)
    return int(quantity)


# Each workload: its container and the setting that names its metrics port.
METRICS_PORTS = {
    "encoder-text": ("encoder", "RECSYS_ENCODER_METRICS_PORT"),
    "encoder-interactions": ("encoder", "RECSYS_ENCODER_METRICS_PORT"),
    "recommender": ("recommender", "RECSYS_RECOMMENDER_METRICS_PORT"),
    "monitor": ("monitor", "RECSYS_METRICS_PORT"),
}


@pytest.mark.parametrize("name", METRICS_PORTS)
def test_every_service_serves_prometheus_metrics_on_a_declared_port_where_the_annotations_point(
    rendered: list[Manifest], name: str
) -> None:
    container_name, setting = METRICS_PORTS[name]
    deployment = find(rendered, "Deployment", name)
    port = int(_env(rendered, name)[setting])
    # Named `metrics`: the PodMonitor of components/prometheus-operator scrapes the port of that name.
    assert {"name": "metrics", "containerPort": port} in container(deployment, container_name)["ports"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == port


def test_monitor_metrics_port_is_in_its_service(rendered: list[Manifest]) -> None:
    port = int(_env(rendered, "monitor")["RECSYS_METRICS_PORT"])
    assert _service_port(rendered, "monitor", port) == port


def test_monitor_keeps_its_windows_on_a_claim_and_never_runs_twice(base: list[Manifest]) -> None:
    monitor = find(base, "Deployment", "monitor")
    assert monitor["spec"]["replicas"] == 1
    assert monitor["spec"]["strategy"]["type"] == "Recreate"
    claims = [v for v in pod_spec(monitor)["volumes"] if "persistentVolumeClaim" in v]
    assert claims
    find(base, "PersistentVolumeClaim", claims[0]["persistentVolumeClaim"]["claimName"])


def test_qdrant_admits_every_service_that_reads_it(base: list[Manifest]) -> None:
    policy = find(base, "NetworkPolicy", "qdrant")
    qdrant_port = urlsplit(find(base, "ConfigMap", "recsys-config")["data"]["RECSYS_QDRANT_URL"]).port
    readers = [w for w in workloads(base) if w["metadata"]["name"] in WORKLOADS]
    assert all("RECSYS_QDRANT_URL" in _env(base, w["metadata"]["name"]) for w in readers)
    assert {w["metadata"]["name"] for w in readers} == set(WORKLOADS)
    for reader in readers:
        labels = pod_labels(reader)
        admitted = False
        for rule in policy["spec"]["ingress"]:
            for peer in rule["from"]:
                selector = peer["podSelector"]
                matched = selects(selector.get("matchLabels", {}), labels) and all(
                    labels.get(e["key"]) in e["values"] for e in selector.get("matchExpressions", [])
                )
                admitted |= matched and qdrant_port in [p["port"] for p in rule["ports"]]
        assert admitted, f"{reader['metadata']['name']} cannot reach Qdrant on {qdrant_port}"


def test_production_namespace_enforces_restricted_pod_security(production: list[Manifest]) -> None:
    namespace = of_kind(production, "Namespace")
    assert len(namespace) == 1
    assert namespace[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    name = namespace[0]["metadata"]["name"]
    assert all(d["metadata"]["namespace"] == name for d in production if d["kind"] != "Namespace")


def test_every_manifest_file_passes_yamllint() -> None:
    config = YamlLintConfig(file=str(DEPLOY_DIR / ".yamllint"))
    files = sorted(DEPLOY_DIR.rglob("*.yaml"))
    assert len(files) >= 10
    problems = [f"{path}:{p.line}: {p.desc}" for path in files for p in linter.run(path.read_text(), config, str(path))]
    assert problems == []


def test_every_manifest_file_is_part_of_a_kustomization() -> None:
    listed: set[Path] = set()
    for kustomization in DEPLOY_DIR.rglob("kustomization.yaml"):
        spec = yaml.safe_load(kustomization.read_text())
        for entry in spec.get("resources", []) + [p["path"] for p in spec.get("patches", []) if "path" in p]:
            listed.add((kustomization.parent / entry).resolve())
    manifests = {p.resolve() for p in DEPLOY_DIR.rglob("*.yaml") if p.name != "kustomization.yaml"}
    assert sorted(str(p) for p in manifests - listed) == []
