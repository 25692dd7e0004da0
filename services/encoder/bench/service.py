"""The encoder under test: `recsys run encoder` in a process of its own, on free ports, with a throwaway data folder."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EncoderProcess:
    """Starts the encoder as a product would run it; RECSYS_* variables of the caller apply (device, batching)."""

    def __init__(self, redis_url: str, stream_prefix: str, extra_env: dict[str, str] | None = None) -> None:
        self.redis_url = redis_url
        self.stream_prefix = stream_prefix
        self.port = free_port()
        self.metrics_port = free_port()
        self.data_dir = Path(tempfile.mkdtemp(prefix="recsys-bench-"))
        self._extra_env = extra_env or {}
        self._process: subprocess.Popen[bytes] | None = None
        self._log = self.data_dir / "encoder.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self, timeout_s: float = 300.0) -> None:
        env = {
            **os.environ,
            "RECSYS_REDIS_URL": self.redis_url,
            "RECSYS_STREAM_PREFIX": self.stream_prefix,
            "RECSYS_DATA_DIR": str(self.data_dir),
            "RECSYS_ENCODER_HOST": "127.0.0.1",
            "RECSYS_ENCODER_PORT": str(self.port),
            "RECSYS_ENCODER_METRICS_PORT": str(self.metrics_port),
            "RECSYS_LOG_LEVEL": os.environ.get("RECSYS_LOG_LEVEL", "WARNING"),
            "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
            **self._extra_env,
        }
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "recsys.cli.main", "run", "encoder"], env=env, stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout_s
        async with grpc.aio.insecure_channel(self.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while True:
                if self._process.poll() is not None:
                    raise RuntimeError(f"the encoder exited with {self._process.returncode}:\n{self.log_tail()}")
                try:
                    answer = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                    if answer.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.aio.AioRpcError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the encoder was not SERVING within {timeout_s:.0f} s:\n{self.log_tail()}")
                await asyncio.sleep(0.2)

    def metrics(self) -> str:
        """The service's Prometheus exposition now."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as response:
            return str(response.read().decode())

    def stop(self) -> None:
        """SIGTERM, as an orchestrator would; the data folder stays until close()."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(60)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    async def __aenter__(self) -> EncoderProcess:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    prefix = f"{name}{{{wanted}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
