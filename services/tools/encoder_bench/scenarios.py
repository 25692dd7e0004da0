"""The measurements of `recsys bench encoder`: in-process encode, gRPC callers, live latency, stream ingestion."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from redis.asyncio import Redis

from recsys.encoder.text.tokenization import TokenizedText
from recsys_client.api import encoder_pb2, encoder_pb2_grpc


@dataclass(frozen=True)
class Rate:
    """Texts (or items) done in a time."""

    count: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Latencies:
    """Seconds per call."""

    seconds: list[float]

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.seconds, q)) if self.seconds else float("nan")


def encode_in_process(encode: Callable[..., Any], texts: Sequence[str], batch_size: int) -> Rate:
    """SentenceTransformer.encode on all texts at one batch size (it sorts them by length itself)."""
    started = time.perf_counter()
    encode(list(texts), batch_size=batch_size, show_progress_bar=False)
    return Rate(len(texts), time.perf_counter() - started)


def encode_one_by_one(encode: Callable[..., Any], texts: Sequence[str]) -> Rate:
    """One encode call per text: no batching at all."""
    started = time.perf_counter()
    for text in texts:
        encode([text], show_progress_bar=False)
    return Rate(len(texts), time.perf_counter() - started)


def passes_in_process(
    forward: Callable[[list[TokenizedText]], Any], tokenized: Sequence[TokenizedText], pass_size: int
) -> Rate:
    """The service's own forward passes on pre-tokenized texts, sorted by length as its planner sorts them.

    No gRPC, queue or event loop: the most the service's passes can give on this machine.
    """
    ordered = sorted(tokenized, key=lambda text: text.tokens)
    started = time.perf_counter()
    for start in range(0, len(ordered), pass_size):
        forward(list(ordered[start : start + pass_size]))
    return Rate(len(ordered), time.perf_counter() - started)


async def embed_calls(
    stub: encoder_pb2_grpc.EncoderServiceStub, texts: Sequence[str], concurrency: int, per_request: int = 1
) -> Rate:
    """`concurrency` callers, each sending Embed calls of `per_request` texts back to back until all are done."""
    requests = iter([list(texts[i : i + per_request]) for i in range(0, len(texts), per_request)])

    async def caller() -> None:
        for chunk in requests:
            await stub.Embed(encoder_pb2.EmbedRequest(texts=chunk), timeout=300)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return Rate(len(texts), time.perf_counter() - started)


async def embed_stream(stub: encoder_pb2_grpc.EncoderServiceStub, texts: Sequence[str]) -> Rate:
    """One EmbedStream carrying one text per message, read as fast as the service answers."""

    async def messages() -> Any:
        for text in texts:
            yield encoder_pb2.EmbedStreamRequest(request=encoder_pb2.EmbedRequest(texts=[text]))

    started = time.perf_counter()
    answered = 0
    async for _ in stub.EmbedStream(messages(), timeout=600):
        answered += 1
    if answered != len(texts):
        raise RuntimeError(f"EmbedStream answered {answered} of {len(texts)} requests")
    return Rate(len(texts), time.perf_counter() - started)


async def live_calls(
    stub: encoder_pb2_grpc.EncoderServiceStub,
    texts: Sequence[str],
    *,
    count: int | None = None,
    until: asyncio.Event | None = None,
) -> Latencies:
    """A live caller: one text per Embed call, the next as soon as the last is answered; each call's latency.

    Stops after `count` calls, or once `until` is set.
    """
    samples: list[float] = []
    source: Iterator[str] = itertools.cycle(texts)
    while (count is None or len(samples) < count) and not (until is not None and until.is_set()):
        request = encoder_pb2.EmbedRequest(texts=[next(source)])
        started = time.perf_counter()
        await stub.Embed(request, timeout=60)
        samples.append(time.perf_counter() - started)
    return Latencies(samples)


async def publish_items(redis: Redis, stream: str, items: Sequence[dict[str, Any]]) -> None:
    """XADDs item.upserted entries in pipelined chunks, as a backend catching up would."""
    for start in range(0, len(items), 500):
        async with redis.pipeline(transaction=False) as pipe:
            for item in items[start : start + 500]:
                pipe.xadd(stream, {"event": "item.upserted", "data": json.dumps(item)})
            await pipe.execute()


async def wait_drained(redis: Redis, stream: str, group: str, timeout_s: float) -> None:
    """Waits until the group has read every entry of the stream and acked all it read (after Qdrant confirmed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        for info in await redis.xinfo_groups(stream):
            name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
            if name == group and info.get("lag") == 0 and int(info["pending"]) == 0:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{group} did not drain {stream} within {timeout_s:.0f} s")
        await asyncio.sleep(0.02)
