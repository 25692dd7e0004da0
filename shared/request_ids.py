"""The id that ties a caller's failed call to the server's log line about it: the caller's `x-request-id`
metadata when it sends one (a gateway's trace id), else one made here and sent back in trailing metadata."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

REQUEST_ID_KEY = "x-request-id"
# Longer or unprintable ids are replaced: they would be copied into every log line about the call.
MAX_REQUEST_ID_CHARS = 128


def request_id(metadata: Iterable[Any] | None) -> str:
    """The caller's request id from the call's metadata, or a new one."""
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY and _usable(value):
            return str(value)
    return uuid.uuid4().hex


def _usable(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_REQUEST_ID_CHARS and value.isprintable()
