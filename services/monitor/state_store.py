"""The monitor's state on disk: one .npz per space (its windows), one for the traffic watch, and one JSON document.

Every file is replaced atomically (written next to its target, flushed to disk, renamed over it),
so a crash mid-write leaves the previous snapshot, never a torn one. The monitor writes
periodically and on stop; a restart loses at most what changed since the last snapshot.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from recsys.shared.logs import log_event

_log = logging.getLogger(__name__)

DOCUMENT = "monitor.json"
TRAFFIC = "traffic.npz"
# Inside a space's .npz: its metadata as one JSON string next to the arrays.
META_KEY = "__meta__"


class StateStore:
    """Reads and writes the monitor's snapshot files in one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def space_path(self, space: str) -> Path:
        return self.folder / f"windows-{space}.npz"

    def save_space(self, space: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self._save_arrays(self.space_path(space), arrays, meta)

    def load_space(self, space: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """The space's arrays and metadata, or None when there is no (readable) snapshot."""
        return self._load_arrays(self.space_path(space))

    def save_traffic(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self._save_arrays(self.folder / TRAFFIC, arrays, meta)

    def load_traffic(self) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        return self._load_arrays(self.folder / TRAFFIC)

    def _save_arrays(self, path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        payload = dict(arrays)
        payload[META_KEY] = np.array(json.dumps(meta))
        self._replace(path, lambda file: np.savez(file, **payload))  # type: ignore[arg-type]

    def _load_arrays(self, path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files if name != META_KEY}
                meta = json.loads(str(stored[META_KEY]))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            log_event(_log, "state_unreadable", logging.WARNING, path=str(path), error=repr(exc))
            return None
        return arrays, meta

    def save_document(self, document: dict[str, Any]) -> None:
        text = json.dumps(document, allow_nan=False, separators=(",", ":"))
        self._replace(self.folder / DOCUMENT, lambda file: file.write(text.encode()))

    def load_document(self) -> dict[str, Any] | None:
        path = self.folder / DOCUMENT
        if not path.exists():
            return None
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            log_event(_log, "state_unreadable", logging.WARNING, path=str(path), error=repr(exc))
            return None
        return document if isinstance(document, dict) else None

    def _replace(self, target: Path, write: Callable[[IO[bytes]], object]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                write(file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
