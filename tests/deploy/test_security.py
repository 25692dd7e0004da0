"""Security of the manifests: network policies, where credentials live, Redis ACLs, checkov."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from recsys.cli.make_secrets import REDIS_USERS, cluster_secrets
from recsys.shared.access import Role, TokenBook
from tests.deploy.manifests import (
    DEPLOY_DIR,
    Manifest,
    container,
    containers,
    env_values,
    find,
    of_kind,
    pod_labels,
    workloads,
)
from tests.deploy.network import Pod, may_connect, selected_by_own_policy
from tests.support import free_port, wait_for

README = Path(__file__).resolve().parents[2] / "README.md"
ACL_TEMPLATE = DEPLOY_DIR / "base" / "redis" / "users.acl.template"

ENCODER_TEXT = Pod({"app": "encoder", "role": "text"})
ENCODER_INTERACTIONS = Pod({"app": "encoder", "role": "interactions"})
RECOMMENDER = Pod({"app": "recommender"})
MONITOR = Pod({"app": "monitor"})
REDIS = Pod({"app": "redis"})
QDRANT = Pod({"app": "qdrant"})
SHOP = {"kubernetes.io/metadata.name": "shop"}
BACKEND = Pod({"recsys.io/client": "true"}, "shop", SHOP)
PUBLISHER = Pod({"recsys.io/publisher": "true"}, "shop", SHOP)
PROMETHEUS = Pod({"app.kubernetes.io/name": "prometheus"}, "monitoring", {"kubernetes.io/metadata.name": "monitoring"})
KEDA = Pod({"app": "keda-operator"}, "keda", {"kubernetes.io/metadata.name": "keda"})
STRANGER = Pod({"app": "something-else"})  # any other pod of the namespace
OUTSIDER = Pod({"app": "web"}, "shop", SHOP)  # a pod of another namespace without the labels

NEEDED = [
    (ENCODER_TEXT, REDIS, 6379),
    (ENCODER_INTERACTIONS, REDIS, 6379),
    (MONITOR, REDIS, 6379),
    (ENCODER_TEXT, QDRANT, 6333),
    (ENCODER_INTERACTIONS, QDRANT, 6333),
    (RECOMMENDER, QDRANT, 6333),
    (MONITOR, QDRANT, 6333),
    (RECOMMENDER, ENCODER_TEXT, 50051),
    (QDRANT, QDRANT, 6335),
    (BACKEND, ENCODER_TEXT, 50051),
    (BACKEND, RECOMMENDER, 50052),
    (BACKEND, MONITOR, 50053),
    (PUBLISHER, REDIS, 6379),
    (KEDA, REDIS, 6379),
    (PROMETHEUS, ENCODER_TEXT, 9091),
    (PROMETHEUS, ENCODER_INTERACTIONS, 9091),
    (PROMETHEUS, MONITOR, 9090),
    (PROMETHEUS, RECOMMENDER, 9092),
]
REFUSED = [
    (RECOMMENDER, REDIS, 6379),  # it never needs Redis
    (BACKEND, REDIS, 6379),  # calling the APIs does not make a publisher
    (BACKEND, QDRANT, 6333),
    (PUBLISHER, RECOMMENDER, 50052),
    (OUTSIDER, RECOMMENDER, 50052),
    (OUTSIDER, REDIS, 6379),
    (STRANGER, REDIS, 6379),
    (STRANGER, QDRANT, 6333),
    (STRANGER, ENCODER_TEXT, 50051),
    (MONITOR, ENCODER_TEXT, 50051),
    (ENCODER_TEXT, MONITOR, 50053),
    (REDIS, QDRANT, 6333),
    (PROMETHEUS, RECOMMENDER, 50052),
]


def _name(pod: Pod) -> str:
    return ",".join(f"{k}={v}" for k, v in pod.labels.items()) + (f"@{pod.namespace}" if pod.namespace else "")


def test_the_namespace_denies_everything_by_default_and_every_pod_has_its_own_policy(
    rendered: list[Manifest],
) -> None:
    deny = find(rendered, "NetworkPolicy", "default-deny")["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    for workload in workloads(rendered):
        assert selected_by_own_policy(rendered, pod_labels(workload)), f"{workload['metadata']['name']} has no policy"


@pytest.mark.parametrize(("source", "target", "port"), NEEDED, ids=lambda v: _name(v) if isinstance(v, Pod) else v)
def test_the_network_lets_through_what_the_system_needs(
    rendered: list[Manifest], source: Pod, target: Pod, port: int
) -> None:
    assert may_connect(rendered, source, target, port)


@pytest.mark.parametrize(("source", "target", "port"), REFUSED, ids=lambda v: _name(v) if isinstance(v, Pod) else v)
def test_the_network_refuses_everything_else(rendered: list[Manifest], source: Pod, target: Pod, port: int) -> None:
    assert not may_connect(rendered, source, target, port)


_CREDENTIAL_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|API_KEY|PRIVATE|_KEY$", re.IGNORECASE)


def test_no_config_map_holds_a_password_token_or_key(rendered: list[Manifest]) -> None:
    for config_map in of_kind(rendered, "ConfigMap"):
        for key, value in (config_map.get("data") or {}).items():
            if _CREDENTIAL_NAME.search(key) and value not in ("true", "false"):
                assert key.endswith("_FILE"), f"{config_map['metadata']['name']}: {key} holds a credential, not a path"
            assert not re.search(r"//[^/@\s]+:[^/@\s]+@", value), f"{key}: a URL with a password"
            # The ACL rules: every password is a placeholder the init container fills from the Secret.
            for line in value.splitlines():
                if line.startswith("user "):
                    assert re.search(r" >\{\{[a-z]+\}\}", line) or " off" in line, line
                    assert "nopass" not in line, line


def test_workloads_read_recsys_credentials_from_mounted_files_not_the_environment(rendered: list[Manifest]) -> None:
    for workload in workloads(rendered):
        if workload["metadata"]["name"] == "qdrant":
            continue  # Qdrant's own image reads its keys from the environment (README: checkov exceptions)
        for each in containers(workload):
            for variable in each.get("env", []):
                assert "secretKeyRef" not in variable.get("valueFrom", {}), (workload["metadata"]["name"], variable)


def _secret_references(documents: list[Manifest]) -> set[tuple[str, str]]:
    """Every (Secret, key) a workload, a volume or a KEDA TriggerAuthentication reads."""
    found: set[tuple[str, str]] = set()
    for workload in workloads(documents):
        spec = workload["spec"]["template"]["spec"]
        for each in containers(workload):
            for variable in each.get("env", []):
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    found.add((ref["name"], ref["key"]))
        for volume in spec.get("volumes", []):
            sources = [volume] if "secret" in volume else volume.get("projected", {}).get("sources", [])
            for source in sources:
                secret = source.get("secret")
                if secret is None:
                    continue
                name = secret.get("secretName", secret.get("name"))
                for item in secret.get("items", []):
                    found.add((name, item["key"]))
                if not secret.get("items"):
                    found.add((name, "*"))
    for auth in of_kind(documents, "TriggerAuthentication"):
        found |= {(ref["name"], ref["key"]) for ref in auth["spec"]["secretTargetRef"]}
    return found


# What cert-manager's Certificates fill (components/cert-manager).
CERTIFICATE_KEYS = {"tls.crt", "tls.key", "ca.crt"}


def test_every_secret_the_manifests_read_is_made_by_recsys_secrets_or_cert_manager(rendered: list[Manifest]) -> None:
    made = {secret["metadata"]["name"]: set(secret["stringData"]) for secret in cluster_secrets("recsys")}
    made |= {c["spec"]["secretName"]: CERTIFICATE_KEYS for c in of_kind(rendered, "Certificate")}
    references = _secret_references(rendered)
    assert references, "the workloads read no Secret at all"
    for name, key in references:
        assert name in made, f"no Secret {name}"
        assert key == "*" or key in made[name], f"Secret {name} has no key {key}"
    assert not of_kind(rendered, "Secret"), "credentials never ship with the manifests"


def test_recsys_secrets_makes_fresh_strong_credentials_every_time() -> None:
    first, second = cluster_secrets("recsys"), cluster_secrets("recsys")
    passwords = first[0]["stringData"]
    assert set(REDIS_USERS) <= set(passwords)
    assert all(len(passwords[user]) >= 32 for user in REDIS_USERS)
    assert passwords["admin"] != second[0]["stringData"]["admin"]
    tokens = first[1]["stringData"]["tokens"]
    recommender_token = first[1]["stringData"]["recommender-token"]
    assert TokenBook.parse(tokens, "tokens").role_of(recommender_token) is Role.READ
    assert TokenBook.parse(tokens, "tokens").role_of(first[1]["stringData"]["admin-token"]) is Role.ADMIN
    assert recommender_token not in tokens, "the servers' file holds digests, not tokens"


def test_redis_runs_protected_with_the_shipped_acl_file_and_the_default_user_off(rendered: list[Manifest]) -> None:
    statefulset = find(rendered, "StatefulSet", "redis")
    args = container(statefulset, "redis")["args"]
    assert args[args.index("--protected-mode") + 1] == "yes"
    acl_path = args[args.index("--aclfile") + 1]
    mounts = {m["mountPath"]: m["name"] for m in container(statefulset, "redis")["volumeMounts"]}
    assert str(Path(acl_path).parent) in mounts
    template = ACL_TEMPLATE.read_text()
    users = {line.split()[1]: line for line in template.splitlines() if line.startswith("user ")}
    assert users["default"].split()[2] == "off"
    assert set(users) - {"default"} == set(REDIS_USERS)
    for user, rule in users.items():
        if user != "default":
            assert f">{{{{{user}}}}}" in rule, f"{user} has no password placeholder"


def test_the_redis_init_container_renders_a_password_for_every_user_and_no_comments(
    rendered: list[Manifest], tmp_path: Path
) -> None:
    statefulset = find(rendered, "StatefulSet", "redis")
    script = container(statefulset, "render-acl")["args"][0]
    passwords = cluster_secrets("recsys")[0]["stringData"]
    (tmp_path / "template").mkdir()
    (tmp_path / "template" / "users.acl.template").write_text(ACL_TEMPLATE.read_text())
    (tmp_path / "passwords").mkdir()
    for user, password in passwords.items():
        (tmp_path / "passwords" / user).write_text(password)
    (tmp_path / "out").mkdir()
    local = (
        script.replace("/etc/redis-acl", str(tmp_path / "template"))
        .replace("/etc/redis-passwords", str(tmp_path / "passwords"))
        .replace("/run/redis-acl", str(tmp_path / "out"))
    )
    subprocess.run(["sh", "-c", local], check=True, timeout=30)
    rendered_acl = (tmp_path / "out" / "users.acl").read_text()
    assert "#" not in rendered_acl and "{{" not in rendered_acl
    for user in REDIS_USERS:
        assert f"user {user} on >{passwords[user]} " in rendered_acl
    # Redis itself loads the file, and the probe user's password is the one the readiness probe reads.
    port = free_port()
    server = subprocess.Popen(
        [
            *("redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
            *("--aclfile", str(tmp_path / "out" / "users.acl"), "--dir", str(tmp_path)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        probe = redis.Redis(port=port, username="probe", password=passwords["probe"])
        wait_for(lambda: _answers(probe), 20, "redis-server with the rendered ACL file")
        with pytest.raises(redis.exceptions.NoPermissionError):
            probe.xlen("recsys:items")
    finally:
        server.terminate()
        server.wait(timeout=10)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_keda_logs_in_to_redis_as_its_own_user(production: list[Manifest]) -> None:
    auth = find(production, "TriggerAuthentication", "recsys-redis-keda")
    parameters = {ref["parameter"]: (ref["name"], ref["key"]) for ref in auth["spec"]["secretTargetRef"]}
    assert parameters["password"] == ("recsys-redis-users", "keda")
    assert cluster_secrets("recsys")[0]["stringData"][parameters["username"][1]] == "keda"
    for scaled in of_kind(production, "ScaledObject"):
        assert all(t["authenticationRef"]["name"] == "recsys-redis-keda" for t in scaled["spec"]["triggers"])


def _accepted_checkov_findings() -> set[tuple[str, str]]:
    """(check, resource) pairs the README's Security section accepts, each with its reason."""
    section = README.read_text().split("### Accepted checkov findings", 1)[1].split("\n#", 1)[0]
    accepted: set[tuple[str, str]] = set()
    for row in section.splitlines():
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        check = re.match(r"`(CKV_[A-Z0-9_]+)`", cells[0]) if len(cells) == 3 else None
        if check:
            assert len(cells[2]) > 40, f"{check[1]}: a reason, please"
            accepted |= {(check[1], resource.strip(" `")) for resource in cells[1].split(",")}
    return accepted


def test_checkov_finds_nothing_in_the_production_overlay_beyond_the_accepted_findings(tmp_path: Path) -> None:
    checkov = shutil.which("checkov")
    assert checkov, "checkov is needed (make setup installs it in .venv/checkov)"
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(DEPLOY_DIR / "overlays" / "production")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    manifest = tmp_path / "production.yaml"
    manifest.write_text(rendered)
    result = subprocess.run(
        [checkov, "-f", str(manifest), "--framework", "kubernetes", "--output", "json", "--quiet", "--compact"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report: Any = json.loads(result.stdout)
    failed = report["results"]["failed_checks"] if isinstance(report, dict) else []
    found = {(f["check_id"], f["resource"].split(".")[0] + "/" + f["resource"].split(".")[-1]) for f in failed}
    accepted = _accepted_checkov_findings()
    assert found - accepted == set(), "checkov failures not accepted in the README"
    assert accepted - found == set(), "the README accepts checkov findings that no longer occur"
    assert report["summary"]["passed"] > 100


def test_yaml_of_the_secrets_command_is_valid_kubernetes() -> None:
    documents = list(yaml.safe_load_all(yaml.safe_dump_all(cluster_secrets("shop"), sort_keys=False)))
    assert [d["kind"] for d in documents] == ["Secret"] * 3
    assert all(d["metadata"]["namespace"] == "shop" for d in documents)


def _files_mounted(workload: Manifest, container_name: str) -> set[str]:
    """Paths of the files a container sees from its Secret, ConfigMap and projected volumes."""
    volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"].get("volumes", [])}
    files: set[str] = set()
    for mount in container(workload, container_name).get("volumeMounts", []):
        volume = volumes[mount["name"]]
        sources = volume.get("projected", {}).get("sources", [volume])
        for source in sources:
            for kind in ("secret", "configMap"):
                items = (source.get(kind) or {}).get("items", [])
                files |= {f"{mount['mountPath']}/{item['path']}" for item in items}
    return files


@pytest.mark.parametrize("name", ["encoder-text", "encoder-interactions", "recommender", "monitor"])
def test_every_credential_file_a_service_is_told_about_is_mounted(rendered: list[Manifest], name: str) -> None:
    workload = find(rendered, "Deployment", name)
    service_container = workload["spec"]["template"]["spec"]["containers"][0]["name"]
    environment = env_values(workload, service_container, rendered)
    named = {k: v for k, v in environment.items() if k.startswith("RECSYS_") and k.endswith("_FILE")}
    assert "RECSYS_AUTH_TOKENS_FILE" in named and "RECSYS_QDRANT_API_KEY_FILE" in named
    if name != "recommender":
        assert "RECSYS_REDIS_PASSWORD_FILE" in named
    missing = {k: v for k, v in named.items() if v not in _files_mounted(workload, service_container)}
    if name == "recommender":
        # It never connects to Redis: the shared ConfigMap's Redis TLS paths are not its concern.
        missing = {k: v for k, v in missing.items() if not k.startswith("RECSYS_REDIS_")}
    assert missing == {}


def test_production_speaks_tls_on_every_grpc_port_and_to_redis(production: list[Manifest]) -> None:
    settings = find(production, "ConfigMap", "recsys-config")["data"]
    assert settings["RECSYS_REDIS_URL"].startswith("rediss://")
    assert settings["RECSYS_GRPC_TLS_CERT_FILE"] and settings["RECSYS_GRPC_TLS_KEY_FILE"]
    args = container(find(production, "StatefulSet", "redis"), "redis")["args"]
    assert args[args.index("--port") + 1] == "0", "no plaintext port"
    assert args[args.index("--tls-port") + 1] == "6379"
    for scaled in of_kind(production, "ScaledObject"):
        assert all(t["metadata"]["enableTLS"] == "true" for t in scaled["spec"]["triggers"])
