"""Credentials a client reads from files: the error they raise, and re-reading a file when it changes.

A rotated Kubernetes Secret appears in a running pod as new files; checking the files' signatures on
use (a `stat`, microseconds) picks it up without a restart. The services' own credential files
(recsys.shared.credential_files) are watched the same way.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

_log = logging.getLogger(__name__)

Signature = tuple[tuple[int, int, int], ...]


class CredentialsError(ValueError):
    """A credentials file or option that cannot be used; the message never contains a secret."""


def file_signature(paths: tuple[Path, ...]) -> Signature:
    """What changes when any of the files is replaced or rewritten (a missing file counts as a change)."""
    result = []
    for path in paths:
        try:
            stat = path.stat()
            result.append((stat.st_ino, stat.st_size, stat.st_mtime_ns))
        except OSError:
            result.append((0, -1, 0))
    return tuple(result)


class WatchedFiles:
    """Tells whether a set of files changed since they were last read (or a reload was asked for)."""

    def __init__(self, paths: tuple[Path, ...]) -> None:
        self.paths = paths
        self._seen: Signature | None = None
        self._forced = False
        # gRPC's TLS layer asks from its own threads; the interceptors from the event loop.
        self._lock = threading.Lock()

    def reload(self) -> None:
        self._forced = True

    def changed(self) -> Signature | None:
        """The files' new signature when they must be read again, else None."""
        with self._lock:
            now = file_signature(self.paths)
            if now == self._seen and not self._forced:
                return None
            self._forced = False
            return now

    def read(self, signature: Signature) -> None:
        with self._lock:
            self._seen = signature


class TokenFile:
    """The current token of a file, re-read when the file changes (a rotated Secret).

    A replacement that cannot be read, or reads as empty, is logged and the previous token stays in
    force; a file unreadable from the start raises CredentialsError.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._watch = WatchedFiles((path,))
        self._token = ""
        self()

    def __call__(self) -> str:
        signature = self._watch.changed()
        if signature is not None:
            try:
                token = self._path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                if not self._token:
                    raise CredentialsError(f"cannot read the client token file {self._path}: {exc}") from None
                # The same shape as the services' structured log lines (an event name plus fields).
                _log.error("client_token_reload_failed", extra={"fields": {"file": str(self._path)}})
            else:
                if token:
                    self._token = token
            self._watch.read(signature)
        return self._token
