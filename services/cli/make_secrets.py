"""`recsys secrets`: the Kubernetes Secrets the manifests read, with fresh random credentials.

Nothing in deploy/ holds a credential; this prints them once, to pipe into `kubectl apply` (or into
the team's secret store). Rotation: see the README's Security section.
"""

from __future__ import annotations

import argparse
import secrets
from typing import Any

import yaml

from recsys.shared.access import Role, hashed_entry

HELP = "print the Kubernetes Secrets the manifests need, with new random passwords, tokens and keys"
QUIET = True

# The Redis users of deploy/base/redis/users.acl.template (the recommender needs none).
REDIS_USERS = ("publisher", "encoder", "monitor", "keda", "probe", "admin")


def _random() -> str:
    return secrets.token_urlsafe(32)  # 256 bits, characters safe in URLs, shell and sed


def cluster_secrets(namespace: str) -> list[dict[str, Any]]:
    """The three Secrets: Redis users' passwords, gRPC tokens, Qdrant keys."""
    redis_users = {user: _random() for user in REDIS_USERS}
    backend_token, admin_token, recommender_token = _random(), _random(), _random()
    # The servers' file lists digests only: a pod that mounts it holds no token it could call with.
    tokens = "".join(
        hashed_entry(role, token) + "\n"
        for role, token in ((Role.READ, backend_token), (Role.ADMIN, admin_token), (Role.READ, recommender_token))
    )

    def secret(name: str, data: dict[str, str], purpose: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/part-of": "recsys"},
                "annotations": {"recsys.io/purpose": purpose},
            },
            "type": "Opaque",
            "stringData": data,
        }

    return [
        secret(
            "recsys-redis-users",
            {**redis_users, "keda-username": "keda"},
            "password of each Redis ACL user (keys: user names); KEDA's TriggerAuthentication reads keda",
        ),
        secret(
            "recsys-grpc-tokens",
            {
                "tokens": tokens,
                "backend-read-token": backend_token,
                "admin-token": admin_token,
                "recommender-token": recommender_token,
            },
            "`tokens` is every server's tokens file (role:sha256:<digest> lines); the other keys are the tokens"
            " to hand out",
        ),
        secret(
            "recsys-qdrant-keys",
            {"api-key": _random(), "read-only-api-key": _random()},
            "Qdrant's keys: the encoder writes with api-key; the recommender and monitor read with the other",
        ),
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--namespace", default="recsys", help="namespace of the Secrets (default recsys)")


def run(args: argparse.Namespace) -> int:
    print(yaml.safe_dump_all(cluster_secrets(args.namespace), sort_keys=False), end="")
    return 0
