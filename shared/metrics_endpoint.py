"""Serves one Prometheus registry on /metrics from a background thread, for as long as a service runs."""

from __future__ import annotations

from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    start_http_server,
)


def service_registry() -> CollectorRegistry:
    """A registry for one service with the process's own metrics in it: CPU seconds, resident memory, open
    file descriptors (process_*), garbage collections (python_gc_*) and the interpreter (python_info).

    Services in one process (`recsys run all`) each report the same process figures under their own job.
    """
    # No `<counter>_created` series: they double what every scrape stores, and nothing here reads them.
    disable_created_metrics()
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    GCCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


class MetricsEndpoint:
    """An HTTP /metrics endpoint; each service instance has its own registry, so several in a process never collide."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._server: WSGIServer | None = None

    @property
    def port(self) -> int:
        """The bound port (0 when not serving)."""
        return int(self._server.server_port) if self._server is not None else 0

    def serve(self, host: str, port: int) -> int:
        """Starts serving; returns the bound port (port 0 picks a free one)."""
        self._server, _ = start_http_server(port, addr=host, registry=self.registry)
        return self.port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
