"""Stable pagination: a page token carries the items already served, so later pages never repeat them."""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Sequence

from recsys.shared.errors import InvalidRequest
from recsys.shared.events import MAX_ID_CHARS

_VERSION = 1


def encode_token(served: Sequence[str]) -> str:
    """The token for the page after one that brought the total served to `served`."""
    raw = json.dumps({"v": _VERSION, "served": list(served)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(zlib.compress(raw)).decode().rstrip("=")


def decode_token(token: str, max_served: int) -> list[str]:
    """The ids served on earlier pages; an empty token is the first page. A token not made here is refused.

    Memory is bounded before anything is allocated for it: the token's length is checked against the
    longest one `max_served` ids could make, and it is inflated at most to that size (a small token
    can inflate to gigabytes otherwise).
    """
    if not token:
        return []
    longest = _longest_body(max_served)
    # zlib may grow an incompressible body a little; base64 turns 3 bytes into 4 characters.
    if len(token) > (longest + longest // 100 + 64) * 4 // 3 + 4:
        raise InvalidRequest(f"page_token has {len(token)} characters: longer than any token this service makes")
    try:
        padded = token + "=" * (-len(token) % 4)
        inflater = zlib.decompressobj()
        raw = inflater.decompress(base64.urlsafe_b64decode(padded.encode()), longest)
        if inflater.unconsumed_tail:
            raise ValueError("inflates past the longest token")
        body = json.loads(raw)
        served = body["served"]
        if body.get("v") != _VERSION or not isinstance(served, list) or not all(isinstance(i, str) for i in served):
            raise ValueError("unexpected layout")
    except (ValueError, KeyError, TypeError, zlib.error) as exc:
        raise InvalidRequest("page_token is not a token returned by this service") from exc
    if len(served) > max_served:
        raise InvalidRequest(f"page_token goes past the deepest page allowed ({max_served} items)")
    return served


def _longest_body(max_served: int) -> int:
    """Bytes of the JSON body listing `max_served` ids of the longest kind (JSON escapes: 6 bytes a character)."""
    return 32 + max_served * (MAX_ID_CHARS * 6 + 3)
