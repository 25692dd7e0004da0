"""The worst requests the API admits, sent at once to each service run as deployed: memory stays within its limit."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from recsys.recommender.pagination import encode_token
from recsys.shared.events import MAX_ID_CHARS
from recsys.shared.grpc_limits import ServerLimits
from recsys.shared.settings import ConnectionSettings
from recsys.shared.store import VectorStore
from recsys_client.api import encoder_pb2, encoder_pb2_grpc, recommender_pb2, recommender_pb2_grpc
from tests.deploy.manifests import DEPLOY_DIR, container, find, render
from tests.support import RedisServer, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

LIMITS = ServerLimits.from_settings(ConnectionSettings())


def _memory_limit(deployment: str, container_name: str) -> int:
    quantity = container(find(render(DEPLOY_DIR / "base"), "Deployment", deployment), container_name)["resources"][
        "limits"
    ]["memory"]
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    return int(float(quantity[:-2]) * units[quantity[-2:]])


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.fixture
def run_service(redis_server: RedisServer, tmp_path: Path) -> Iterator[object]:
    started: list[subprocess.Popen[bytes]] = []

    def run(*args: str, **env: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "recsys.cli.main", "run", *args],
            env={
                **os.environ,
                "RECSYS_REDIS_URL": redis_server.url,
                "RECSYS_DATA_DIR": str(tmp_path),
                "RECSYS_STREAM_PREFIX": f"worst-{free_port()}",
                "RECSYS_METRICS_PORT": "-1",
                "RECSYS_ENCODER_METRICS_PORT": "-1",
                "RECSYS_RECOMMENDER_METRICS_PORT": "-1",
                **env,
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(process)
        return process

    yield run
    for process in started:
        process.terminate()
        process.wait(60)


async def _serving(port: int, process: subprocess.Popen[bytes], timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        while True:
            assert process.poll() is None, "the service exited"
            try:
                answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            assert time.monotonic() < deadline, "the service never became SERVING"
            await asyncio.sleep(0.2)


async def _all_at_once(calls: list[object]) -> list[grpc.StatusCode]:
    """Each call's status: OK, or the code it was refused with (RESOURCE_EXHAUSTED past the in-flight budget)."""
    codes = []
    for outcome in await asyncio.gather(*calls, return_exceptions=True):  # type: ignore[call-overload]
        if isinstance(outcome, grpc.aio.AioRpcError):
            codes.append(outcome.code())
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            codes.append(grpc.StatusCode.OK)
    return codes


async def test_the_text_role_holds_the_largest_embed_requests_at_once_within_its_memory_limit(
    run_service: object,
) -> None:
    port = free_port()
    process = run_service("encoder", "--role", "text", RECSYS_ENCODER_HOST="127.0.0.1", RECSYS_ENCODER_PORT=str(port))  # type: ignore[operator]
    await _serving(port, process)
    # As many of the longest texts as one request may carry, and as many such requests as the budget holds.
    text = ("many words of a long review " * 3000)[:65_536]
    per_request = (LIMITS.max_request_bytes - 1024) // (len(text) + 8)
    request = encoder_pb2.EmbedRequest(texts=[text] * per_request)
    assert request.ByteSize() <= LIMITS.max_request_bytes
    at_once = LIMITS.max_inflight_bytes // request.ByteSize() + 2
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 2 * LIMITS.max_request_bytes)]
    ) as channel:
        stub = encoder_pb2_grpc.EncoderServiceStub(channel)
        # Memory peaks once all are admitted and tokenized; the model's passes over 256-token texts then
        # take minutes on two cores and add nothing, so the calls give up after a while.
        codes = await _all_at_once([stub.Embed(request, timeout=30) for _ in range(at_once)])
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes, "the in-flight budget was full: the worst case was reached"
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
    peak, limit = _peak_rss(process.pid), _memory_limit("encoder-text", "encoder")
    assert peak < limit, f"peak RSS {peak >> 20} MiB, limit {limit >> 20} MiB"


async def test_the_recommender_holds_the_largest_feed_requests_at_once_within_its_memory_limit(
    run_service: object, tmp_path: Path
) -> None:
    store = VectorStore.connect("", tmp_path)
    await store.ensure_collections(384, 64)
    await store.close()
    port = free_port()
    process = run_service(  # type: ignore[operator]
        "recommender",
        RECSYS_RECOMMENDER_HOST="127.0.0.1",
        RECSYS_RECOMMENDER_PORT=str(port),
        RECSYS_RECOMMENDER_METRICS_PORT="-1",
    )
    await _serving(port, process)
    # The most ids one request may exclude, each as long as ids go, and the deepest page token.
    excluded = [f"{n:08d}".ljust(MAX_ID_CHARS, "x") for n in range(10_000)]
    token = encode_token([f"{n:08d}".ljust(MAX_ID_CHARS, "y") for n in range(500)])
    request = recommender_pb2.ForYouRequest(
        user_id="someone",
        limit=500,
        exclude_item_ids=excluded,
        controls=recommender_pb2.FeedControls(page_token=token),
    )
    assert request.ByteSize() <= LIMITS.max_request_bytes
    at_once = LIMITS.max_inflight_bytes // request.ByteSize() + 2
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 2 * LIMITS.max_request_bytes)]
    ) as channel:
        stub = recommender_pb2_grpc.RecommenderServiceStub(channel)
        codes = await _all_at_once([stub.ForYou(request, timeout=600) for _ in range(at_once)])
    assert grpc.StatusCode.INTERNAL not in codes and grpc.StatusCode.UNKNOWN not in codes
    peak, limit = _peak_rss(process.pid), _memory_limit("recommender", "recommender")
    assert peak < limit, f"peak RSS {peak >> 20} MiB, limit {limit >> 20} MiB"
