"""Stable pagination: a page token carries the items already served, so later pages never repeat them."""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Sequence

from recsys.shared.errors import InvalidRequest

_VERSION = 1


def encode_token(served: Sequence[str]) -> str:
    """The token for the page after one that brought the total served to `served`."""
    raw = json.dumps({"v": _VERSION, "served": list(served)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(zlib.compress(raw)).decode().rstrip("=")


def decode_token(token: str, max_served: int) -> list[str]:
    """The ids served on earlier pages; an empty token is the first page. A token not made here is refused."""
    if not token:
        return []
    try:
        padded = token + "=" * (-len(token) % 4)
        body = json.loads(zlib.decompress(base64.urlsafe_b64decode(padded.encode()), bufsize=1 << 16))
        served = body["served"]
        if body.get("v") != _VERSION or not isinstance(served, list) or not all(isinstance(i, str) for i in served):
            raise ValueError("unexpected layout")
    except (ValueError, KeyError, TypeError, zlib.error) as exc:
        raise InvalidRequest("page_token is not a token returned by this service") from exc
    if len(served) > max_served:
        raise InvalidRequest(f"page_token goes past the deepest page allowed ({max_served} items)")
    return served
