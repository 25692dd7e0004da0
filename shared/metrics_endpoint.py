"""Serves one Prometheus registry on /metrics from a background thread, for as long as a service runs."""

from __future__ import annotations

from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server


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
