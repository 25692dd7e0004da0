"""What a service tells the orchestrator through gRPC health, kept current by a periodic check.

Two questions, two answers (Kubernetes asks both with native gRPC probes):
- liveness, the server's overall status (service name ""): can this process make progress? False
  only when restarting it would help, such as a stream consumer that cannot run. A dependency that
  is down is no reason: every process would be restarted and none would do better.
- readiness, each API's own name: is it live and do its dependencies (Redis, Qdrant) answer? A pod
  that is not ready gets no traffic and holds back a rollout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from redis.asyncio import Redis

from recsys.shared.grpc_server import GrpcServer
from recsys.shared.lifecycle import cancel_and_wait
from recsys.shared.logs import log_event
from recsys.shared.store import VectorStore

_log = logging.getLogger(__name__)

LivenessCheck = Callable[[], bool]
ReadinessCheck = Callable[[], Awaitable[bool]]


def redis_answers(redis: Redis, timeout_s: float = 2.0) -> ReadinessCheck:
    async def check() -> bool:
        try:
            return bool(await asyncio.wait_for(redis.ping(), timeout_s))  # type: ignore[misc]
        except Exception:  # unreachable, refused, timed out: not ready, whatever the cause
            return False

    return check


def store_answers(store: VectorStore, timeout_s: float = 2.0) -> ReadinessCheck:
    async def check() -> bool:
        try:
            return await asyncio.wait_for(store.collections_exist(), timeout_s)
        except TimeoutError:
            return False

    return check


class HealthReporter:
    """Checks liveness and readiness every `interval_s` and sets the server's health statuses."""

    def __init__(
        self,
        server: GrpcServer,
        ready_names: Sequence[str],
        *,
        liveness: Mapping[str, LivenessCheck],
        readiness: Mapping[str, ReadinessCheck],
        interval_s: float = 2.0,
        ready_event: asyncio.Event | None = None,
    ) -> None:
        self._server = server
        self._ready_names = list(ready_names)
        self._liveness = dict(liveness)
        self._readiness = dict(readiness)
        self._interval_s = interval_s
        # Mirrors readiness, for code in the process that waits for it (set while ready).
        self.ready_event = ready_event or asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.live: bool | None = None
        self.ready: bool | None = None
        self.failing: list[str] = []

    async def start(self) -> None:
        """Reports once at once, then every interval."""
        await self.report()
        self._task = asyncio.create_task(self._run(), name="health-reporter")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.report()
            except Exception as exc:  # a check that raised counts as failing next time too; keep reporting
                log_event(_log, "health_report_failed", logging.WARNING, error=repr(exc))

    async def report(self) -> None:
        failing = [name for name, check in self._liveness.items() if not check()]
        live = not failing
        answers = await asyncio.gather(*(check() for check in self._readiness.values()))
        failing += [name for name, answer in zip(self._readiness, answers, strict=True) if not answer]
        ready = live and all(answers)
        if (live, ready) != (self.live, self.ready):
            level = logging.INFO if ready else logging.WARNING
            log_event(_log, "health_changed", level, live=live, ready=ready, failing=failing)
        self.live, self.ready, self.failing = live, ready, failing
        if ready:
            self.ready_event.set()
        else:
            self.ready_event.clear()
        await self._server.set_status("", live)
        for name in self._ready_names:
            await self._server.set_status(name, ready)
