"""One stream entry as read from Redis: its fields decoded, or the reason it can never be processed.

Any producer can XADD anything, so an entry is checked here before a handler sees it: field names and
values must be UTF-8, and an entry's size is bounded before its JSON is parsed. An entry failing
these checks is poison: it goes to the dead-letter stream with its original bytes and the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# An input entry has two fields (event, data); a few more are tolerated (a producer's own tracing
# fields), a thousand are not.
MAX_ENTRY_FIELDS = 16
# Keys and values together. The largest valid entry is an item.upserted with a 32,768-character
# text: up to 128 KiB in UTF-8, up to 192 KiB when the producer escapes it as \uXXXX.
MAX_ENTRY_BYTES = 512 * 1024


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """An entry as read: `fields` decoded for the handler, `raw` as stored (what a dead letter keeps)."""

    entry_id: str
    fields: dict[str, str]
    raw: dict[bytes, bytes]
    # Why the entry can never be processed, when that shows before any handler runs.
    poison: str | None = None


def read_entry(entry_id: bytes | str, raw: Mapping[bytes | str, bytes | str] | None) -> StreamEntry:
    """Decodes one entry; a bad one comes back with `poison` set instead of raising."""
    identifier = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    stored = {_bytes(key): _bytes(value) for key, value in (raw or {}).items()}
    size = sum(len(key) + len(value) for key, value in stored.items())
    if len(stored) > MAX_ENTRY_FIELDS:
        return StreamEntry(identifier, {}, stored, f"entry has {len(stored)} fields; at most {MAX_ENTRY_FIELDS}")
    if size > MAX_ENTRY_BYTES:
        return StreamEntry(identifier, {}, stored, f"entry has {size} bytes; at most {MAX_ENTRY_BYTES}")
    fields: dict[str, str] = {}
    for key, value in stored.items():
        try:
            name = key.decode()
        except UnicodeDecodeError:
            return StreamEntry(identifier, {}, stored, f"a field name is not UTF-8: {key[:40]!r}")
        try:
            fields[name] = value.decode()
        except UnicodeDecodeError as exc:
            return StreamEntry(
                identifier,
                {},
                stored,
                f"field {name!r} is not UTF-8 (byte {exc.start}: {value[exc.start : exc.start + 4]!r})",
            )
    return StreamEntry(identifier, fields, stored)


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()
