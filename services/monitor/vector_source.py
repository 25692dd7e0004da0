"""Reads stored vectors from Qdrant for the monitor, merging concurrent reads into one retrieve per space."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import numpy as np
from qdrant_client import AsyncQdrantClient

from recsys.monitor.spaces import Space
from recsys.shared.errors import Unavailable
from recsys.shared.ids import point_id
from recsys.shared.lifecycle import cancel_and_wait
from recsys.shared.logs import log_event

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredVector:
    """A stored vector and, for a versioned space, the basis version it was computed in ("" when none)."""

    values: np.ndarray
    version: str = ""


@dataclass
class _Read:
    space: Space
    subject: str
    result: asyncio.Future[StoredVector | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class VectorSource:
    """One task owns the reads: it waits up to max_wait_s for a batch to fill, then retrieves it."""

    def __init__(self, client: AsyncQdrantClient, *, max_batch: int = 64, max_wait_s: float = 0.005) -> None:
        self._client = client
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._queue: asyncio.Queue[_Read] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._run(), name="monitor-vector-source")

    async def stop(self) -> None:
        worker, self._worker = self._worker, None
        await cancel_and_wait(worker)
        while not self._queue.empty():
            read = self._queue.get_nowait()
            if not read.result.done():
                read.result.set_exception(Unavailable("the monitor is stopping"))

    async def fetch(self, space: Space, subject: str) -> StoredVector | None:
        """The subject's stored vector in the space, or None when the point or that vector does not exist."""
        if self._worker is None:
            raise Unavailable("the vector source is not started")
        read = _Read(space, subject)
        await self._queue.put(read)
        return await read.result

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self._max_wait_s
            while len(batch) < self._max_batch:
                remaining = deadline - loop.time()
                try:
                    if remaining <= 0:
                        batch.append(self._queue.get_nowait())
                    else:
                        batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except (TimeoutError, asyncio.QueueEmpty):
                    break
            await self._retrieve(batch)

    async def _retrieve(self, batch: list[_Read]) -> None:
        by_space: dict[Space, list[_Read]] = {}
        for read in batch:
            by_space.setdefault(read.space, []).append(read)
        for space, reads in by_space.items():
            ids = list(dict.fromkeys(point_id(read.subject) for read in reads))
            try:
                points = await self._client.retrieve(
                    space.collection,
                    ids,
                    with_vectors=[space.vector],
                    with_payload=[space.version_field.key] if space.version_field else False,
                )
            except Exception as exc:  # every reader gets the failure; their entries are retried
                log_event(
                    _log, "vector_read_failed", logging.WARNING, space=space.name, count=len(ids), error=repr(exc)
                )
                for read in reads:
                    if not read.result.done():
                        read.result.set_exception(exc)
                continue
            vectors = {str(point.id): _stored(point.vector, point.payload, space) for point in points}
            for read in reads:
                if not read.result.done():
                    read.result.set_result(vectors.get(point_id(read.subject)))


def _stored(stored: object, payload: dict[str, object] | None, space: Space) -> StoredVector | None:
    if not isinstance(stored, dict):
        return None
    values = stored.get(space.vector)
    if values is None:
        return None
    version = space.version_field.read(payload) if space.version_field else None
    return StoredVector(np.asarray(values, dtype=np.float32), "" if version is None else str(version))
