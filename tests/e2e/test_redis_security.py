"""The whole system on a Redis that speaks only TLS, verifies client certificates and has the shipped ACL users.

The users and their rights come from deploy/base/redis/users.acl.template, rendered as the Redis
pod's init container renders it; every service logs in as its own user.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError

from recsys.cli.demo import demo_catalog
from recsys.cli.runner import start_system, wait_ready
from recsys.shared.events import Interaction, ItemUpserted, to_fields
from recsys.shared.ids import point_id
from recsys.shared.points import ITEMS, USERS
from recsys.shared.redis_connection import event_publisher, redis_options
from recsys.shared.settings import ConnectionSettings
from recsys_client.aio import RecommenderClient
from tests.pki import Pki
from tests.support import eventually, free_port, stopped_within

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

ACL_TEMPLATE = Path(__file__).parents[2] / "deploy" / "base" / "redis" / "users.acl.template"
USERS_IN_ACL = ("publisher", "encoder", "monitor", "keda", "probe", "admin")


def render_acl(template: str, passwords: dict[str, str]) -> str:
    """What the Redis pod's init container does: drop comment lines, put each password in its place."""
    lines = [line for line in template.splitlines() if line.strip() and not line.startswith("#")]
    rendered = "\n".join(lines) + "\n"
    for user, password in passwords.items():
        rendered = rendered.replace("{{" + user + "}}", password)
    assert "{{" not in rendered, "a user of the ACL template has no password"
    return rendered


class SecureRedis:
    """redis-server with TLS only (client certificates required), protected mode and an ACL file."""

    def __init__(self, folder: Path, pki: Pki, passwords: dict[str, str]) -> None:
        self.port = free_port()
        self.pki = pki
        self.client_cert, self.client_key = pki.client("recsys-services")
        acl = folder / "users.acl"
        acl.write_text(render_acl(ACL_TEMPLATE.read_text(), passwords))
        binary = shutil.which("redis-server")
        assert binary, "redis-server is required (CI installs it from Debian's packages)"
        # Protected mode is the manifests' setting too: with users that have passwords it changes nothing,
        # without them it would refuse every connection that is not local.
        self.process = subprocess.Popen(
            [
                *(
                    binary,
                    "--port",
                    "0",
                    "--tls-port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--protected-mode",
                    "yes",
                ),
                *("--tls-cert-file", str(pki.server_cert), "--tls-key-file", str(pki.server_key)),
                *("--tls-ca-cert-file", str(pki.ca_file), "--tls-auth-clients", "yes"),
                *("--aclfile", str(acl), "--save", "", "--appendonly", "no", "--dir", str(folder)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"rediss://127.0.0.1:{self.port}/0"
        admin = self.sync_client("admin", passwords["admin"])
        deadline = time.monotonic() + 20
        while True:
            try:
                admin.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server with TLS did not start"
                time.sleep(0.05)
        admin.close()

    def tls(self, with_certificate: bool = True) -> dict[str, Any]:
        files: dict[str, Any] = {"redis_tls_ca_file": self.pki.ca_file}
        if with_certificate:
            files |= {"redis_tls_cert_file": self.client_cert, "redis_tls_key_file": self.client_key}
        return files

    def settings(self, user: str, password: str, **more: Any) -> ConnectionSettings:
        return ConnectionSettings(
            redis_url=self.url,
            redis_username=user,
            redis_password=password,  # type: ignore[arg-type]
            **(self.tls() | more),
        )

    def client(self, user: str, password: str, with_certificate: bool = True) -> Redis:
        settings = ConnectionSettings(
            redis_url=self.url,
            redis_username=user,
            redis_password=password,  # type: ignore[arg-type]
            **self.tls(with_certificate),
        )
        return Redis.from_url(self.url, **redis_options(settings))

    def sync_client(self, user: str, password: str) -> redis.Redis:
        options = redis_options(self.settings(user, password))
        return redis.Redis.from_url(self.url, **options)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def passwords() -> dict[str, str]:
    return {user: secrets.token_urlsafe(24) for user in USERS_IN_ACL}


@pytest.fixture
def secure_redis(tmp_path: Path, passwords: dict[str, str]) -> Iterator[SecureRedis]:
    server = SecureRedis(tmp_path, Pki.create(tmp_path / "pki"), passwords)
    yield server
    server.stop()


async def _refused(call: Any) -> Exception:
    try:
        await call
    except (NoPermissionError, AuthenticationError, ResponseError, redis.ConnectionError) as exc:
        return exc
    raise AssertionError("Redis accepted a command the user may not run")


async def test_every_service_runs_on_tls_redis_as_its_own_least_privileged_user(
    secure_redis: SecureRedis, passwords: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    login = {name: {"redis_username": name, "redis_password": passwords[name]} for name in ("encoder", "monitor")}
    system = await start_system(
        overrides={
            "redis_url": secure_redis.url,
            **secure_redis.tls(),
            "stream_prefix": "recsys",
            "data_dir": tmp_path / "data",
            **{f"{name}_host": "127.0.0.1" for name in ("encoder", "recommender", "monitor")},
            **{f"{name}_port": 0 for name in ("encoder", "recommender", "monitor")},
            "metrics_port": 0,
            "encoder_metrics_port": 0,
            "recommender_metrics_port": 0,
            "consumer_claim_idle_ms": 1000,
            "stream_retention_interval_s": 1,
            "reference_size": 10,
            "current_size": 10,
            "min_window": 5,
            "evaluate_interval_s": 1,
        },
        service_overrides={"encoder": login["encoder"], "monitor": login["monitor"]},
    )
    admin = secure_redis.client("admin", passwords["admin"])
    try:
        await wait_ready(system)
        catalog = demo_catalog()[:12]
        publisher_settings = secure_redis.settings("publisher", passwords["publisher"])
        async with event_publisher(publisher_settings) as publisher:
            for item in catalog:
                await publisher.publish(publisher.items_stream, to_fields(ItemUpserted.model_validate(item)))

            async def catalog_stored() -> bool:
                return (await system.store.client.count(ITEMS)).count == len(catalog)

            await eventually(catalog_stored, timeout_s=120, what="catalog stored through TLS and ACLs")
            now = time.time()
            for step, item in enumerate(catalog[:3]):
                event = {"event_id": f"e{step}", "user_id": "ana", "item_id": item["item_id"], "type": "purchase"}
                interaction = Interaction.model_validate(event | {"ts": now - 60 + step})
                await publisher.publish(publisher.interactions_stream, to_fields(interaction))

        async def interactions_applied() -> bool:
            users = await system.store.client.retrieve(USERS, [point_id("ana")])
            return bool(users) and users[0].payload["event_count"] == 3

        await eventually(interactions_applied, timeout_s=60, what="interactions applied")

        async def monitor_caught_up() -> bool:
            for stream in ("recsys:embeddings", "recsys:interactions"):
                groups = {g["name"].decode(): g for g in await admin.xinfo_groups(stream)}
                monitor_groups = [g for name, g in groups.items() if name.startswith("monitor")]
                if not monitor_groups or any(g["lag"] or g["pending"] for g in monitor_groups):
                    return False
            return True

        await eventually(monitor_caught_up, timeout_s=60, what="the monitor's groups caught up")
        async with RecommenderClient(system.address("recommender")) as recommender:
            feed = await recommender.for_you("ana", 3)
        assert feed.strategy == "personalized"
        assert await admin.xlen("recsys:items:dead-letter") == 0
        assert await admin.xlen("recsys:interactions:dead-letter") == 0

        # Nothing any service ran was refused (Redis logs every ACL denial).
        denials = await admin.acl_log()
        assert denials == [], f"a service ran commands its user may not: {denials[:3]}"

        # What each user may not do.
        monitor = secure_redis.client("monitor", passwords["monitor"])
        encoder = secure_redis.client("encoder", passwords["encoder"])
        publisher_client = secure_redis.client("publisher", passwords["publisher"])
        keda = secure_redis.client("keda", passwords["keda"])
        for reader in (monitor, encoder):
            for stream in ("recsys:items", "recsys:interactions"):
                refusal = await _refused(reader.xadd(stream, {"event": "item.deleted", "data": "{}"}))
                assert isinstance(refusal, NoPermissionError), refusal
        assert isinstance(await _refused(publisher_client.xrange("recsys:items")), NoPermissionError)
        assert isinstance(await _refused(publisher_client.xadd("recsys:embeddings", {"a": "b"})), NoPermissionError)
        assert isinstance(await _refused(keda.xadd("recsys:items", {"a": "b"})), NoPermissionError)
        assert await keda.xinfo_groups("recsys:items")
        assert isinstance(await _refused(monitor.flushall()), NoPermissionError)
        wrong = secure_redis.client("encoder", "not-the-password")
        assert isinstance(await _refused(wrong.ping()), AuthenticationError)
        anonymous_settings = ConnectionSettings(redis_url=secure_redis.url, **secure_redis.tls())
        anonymous = Redis.from_url(secure_redis.url, **redis_options(anonymous_settings))
        anonymous_refusal = str(await _refused(anonymous.ping()))
        assert "NOAUTH" in anonymous_refusal or "authenticated" in anonymous_refusal, anonymous_refusal
        no_certificate = secure_redis.client("admin", passwords["admin"], with_certificate=False)
        assert isinstance(await _refused(no_certificate.ping()), redis.ConnectionError)
        plaintext = Redis.from_url(f"redis://admin:{passwords['admin']}@127.0.0.1:{secure_redis.port}/0")
        assert isinstance(await _refused(plaintext.ping()), redis.ConnectionError)
        for client in (monitor, encoder, publisher_client, keda, wrong, anonymous, no_certificate, plaintext):
            await client.aclose()
    finally:
        await stopped_within(system.stop(), 120, "the system")
        await admin.aclose()
    denied = [r.getMessage() for r in caplog.records if re.search("NOPERM|NOAUTH", r.getMessage() + str(r.__dict__))]
    assert not denied, f"a service ran a command its Redis user may not run: {denied[:3]}"
