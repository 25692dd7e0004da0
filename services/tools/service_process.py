"""A service under test: `recsys run …` in a process of its own, on free ports, with its data folder."""

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


class ServiceProcess:
    """Starts `recsys run <service>` as a product would run it; RECSYS_* variables of the caller apply.

    `service` is what `recsys run` takes ("encoder", or "all" for the three in one process); `role`
    the encoder's roles. Every service of the process gets a free port (`port` is the encoder's,
    `ports` all of them). `data_dir` (embedded Qdrant) defaults to a new temporary folder that
    close() removes; a folder given here is left in place, so processes run one after the other can
    share it (embedded Qdrant admits one process at a time).
    """

    def __init__(
        self,
        redis_url: str,
        stream_prefix: str,
        extra_env: dict[str, str] | None = None,
        *,
        service: str = "encoder",
        role: str = "all",
        data_dir: Path | None = None,
    ) -> None:
        self.redis_url = redis_url
        self.stream_prefix = stream_prefix
        self.service = service
        self.role = role
        self.ports = {"encoder": free_port(), "recommender": free_port(), "monitor": free_port()}
        self.port = self.ports["encoder"]
        self.metrics_port = free_port()
        self._owns_data_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="recsys-bench-"))
        self._extra_env = extra_env or {}
        self._process: subprocess.Popen[bytes] | None = None
        self._log = self.data_dir / f"{service}-{role}.log"
        self.started_at = 0.0
        self.serving_after_s = 0.0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self, timeout_s: float = 300.0) -> None:
        env = {
            **os.environ,
            "RECSYS_REDIS_URL": self.redis_url,
            "RECSYS_STREAM_PREFIX": self.stream_prefix,
            "RECSYS_DATA_DIR": str(self.data_dir),
            **{f"RECSYS_{name.upper()}_HOST": "127.0.0.1" for name in self.ports},
            **{f"RECSYS_{name.upper()}_PORT": str(port) for name, port in self.ports.items()},
            "RECSYS_ENCODER_METRICS_PORT": str(self.metrics_port),
            "RECSYS_RECOMMENDER_METRICS_PORT": "-1",
            "RECSYS_METRICS_PORT": "-1",
            "RECSYS_LOG_LEVEL": os.environ.get("RECSYS_LOG_LEVEL", "WARNING"),
            "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
            **self._extra_env,
        }
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "recsys.cli.main", "run", self.service]
                + (["--role", self.role] if self.service == "encoder" else []),
                env=env,
                stdout=log,
                stderr=log,
            )
        self.started_at = time.monotonic()
        deadline = time.monotonic() + timeout_s
        async with grpc.aio.insecure_channel(self.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while True:
                if self._process.poll() is not None:
                    raise RuntimeError(f"the service exited with {self._process.returncode}:\n{self.log_tail()}")
                try:
                    answer = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                    if answer.status == health_pb2.HealthCheckResponse.SERVING:
                        self.serving_after_s = time.monotonic() - self.started_at
                        return
                except grpc.aio.AioRpcError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the service was not SERVING within {timeout_s:.0f} s:\n{self.log_tail()}")
                await asyncio.sleep(0.2)

    def metrics(self) -> str:
        """The service's Prometheus exposition now."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as response:
            return str(response.read().decode())

    def memory(self) -> tuple[int, int]:
        """Resident memory now and at its peak, in bytes (Linux /proc)."""
        assert self._process is not None, "not started"
        fields = {}
        for line in Path(f"/proc/{self._process.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            fields[name] = value.strip()
        return _kib(fields["VmRSS"]), _kib(fields["VmHWM"])

    def cpu_seconds(self) -> float:
        """CPU time the process has used so far, user and system (Linux /proc): its cost whatever runs beside it."""
        assert self._process is not None, "not started"
        fields = Path(f"/proc/{self._process.pid}/stat").read_text().rpartition(")")[2].split()
        # utime and stime: fields 14 and 15 of proc(5), the 12th and 13th after the command's closing parenthesis.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

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
        if self._owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    async def __aenter__(self) -> ServiceProcess:
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


def _kib(value: str) -> int:
    return int(value.split()[0]) * 1024
