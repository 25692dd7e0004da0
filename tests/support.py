"""Helpers the tests share: a real redis-server process, redis-cli, waiting for a condition."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A redis-server process owned by the tests, with AOF so a restart keeps the streams."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is required (CI installs it from Debian's packages)"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def flush(self) -> None:
        redis.Redis(port=self.port).flushall()


def redis_cli(server: RedisServer, *args: str, stdin: bytes | None = None) -> str:
    """Runs redis-cli against the test server, as a backend in any language would publish."""
    result = subprocess.run(
        ["redis-cli", "-p", str(server.port), *args], input=stdin, capture_output=True, check=True, timeout=30
    )
    return result.stdout.decode().strip()


def wait_for(condition: Callable[[], object], timeout_s: float, what: str) -> None:
    """Polls a check until it holds, in a test that drives processes of its own; fails naming what never happened."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout_s:.0f} s"
        time.sleep(0.05)


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 60.0, what: str = "condition") -> None:
    """Polls an async check until it holds; fails naming what never happened."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout_s:.0f} s")
        await asyncio.sleep(0.1)


Entry = tuple[str, dict[str, str]]


def _decoded(raw: Any) -> list[Entry]:
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], raw)
    return [(i.decode(), {k.decode(): v.decode() for k, v in fields.items()}) for i, fields in entries]


def stream_entries(client: redis.Redis, stream: str) -> list[Entry]:
    """Every entry of a stream, decoded: (entry id, fields)."""
    return _decoded(client.xrange(stream))


async def stream_entries_async(client: Any, stream: str) -> list[Entry]:
    """stream_entries for a redis.asyncio client."""
    return _decoded(await client.xrange(stream))


def _awaited_frames(coro: Any) -> list[Any]:
    """The frames of a suspended coroutine down its await chain (Task.get_stack shows only the outermost;
    print_stack also fails on compiled frames without line numbers)."""
    frames = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            frames.append(frame)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None) or getattr(coro, "gi_yieldfrom", None)
    return frames


async def stopped_within(stop: Awaitable[object], timeout_s: float, what: str) -> None:
    """Awaits a service's stop; if it hangs, prints every task's stack and fails instead of hanging the suite."""
    task = asyncio.ensure_future(stop)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if done:
        task.result()
        return
    for other in asyncio.all_tasks():
        print(f"--- {other!r}", file=sys.stderr)
        for frame in _awaited_frames(other.get_coro()):
            print(f"  {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}", file=sys.stderr)
    raise AssertionError(f"{what} did not stop within {timeout_s:.0f} s (task stacks above)")
