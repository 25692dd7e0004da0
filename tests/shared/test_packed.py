"""Packed payload lists (recsys.shared.packed) read back exactly, and the lists written before packing read the same."""

from __future__ import annotations

import json
import math

import pytest

from recsys.shared.packed import pack_floats, pack_history, pack_ids, unpack_floats, unpack_history, unpack_ids
from recsys.shared.points import ItemField, UserField


def through_json(value: object) -> object:
    """What a payload value is after Qdrant stored and returned it."""
    return json.loads(json.dumps(value))


@pytest.mark.parametrize("ids", [[], ["e1"], ["e 1", "\te2\r", "ünï", "x" * 300], ["a", "a"]])
def test_ids_read_back_as_packed(ids: list[str]) -> None:
    packed = through_json(pack_ids(ids))
    assert isinstance(packed, str)
    assert unpack_ids(packed) == ids


@pytest.mark.parametrize("bad", [["a\nb"], [""], ["a", "b\n"]])
def test_an_id_that_would_not_read_back_is_refused(bad: list[str]) -> None:
    with pytest.raises(ValueError, match="newline"):
        pack_ids(bad)


def test_floats_read_back_to_the_bit_infinities_included() -> None:
    values = [0.0, -0.0, 1 / 3, 1.7e9 + 0.123456789, -math.inf, math.inf, 5e-324]
    read = unpack_floats(through_json(pack_floats(values)))
    assert [math.copysign(1, v) for v in read] == [math.copysign(1, v) for v in values]
    assert read == values


def test_a_history_reads_back_row_by_row() -> None:
    history = [("i1", 1.0, 1_700_000_000.25), ("i 2", -0.5, 1_700_000_001.5), ("i1", 3.0, 1_700_000_002.0)]
    assert unpack_history(through_json(pack_history(history))) == history
    assert unpack_history(through_json(pack_history([]))) == []


def test_lists_written_before_packing_read_as_they_always_did() -> None:
    legacy = {
        "recent_event_ids": ["e1", "e2"],
        "recent_event_ts": [1.5, None],
        "history": [["i1", 1.0, 10.0], ["i2", 2.0, 11.0]],
        "seen": ["i1", "i2"],
    }
    assert UserField.RECENT_EVENT_IDS.read(legacy) == ItemField.RECENT_EVENT_IDS.read(legacy) == ["e1", "e2"]
    assert UserField.RECENT_EVENT_TIMES.read(legacy) == [1.5, -math.inf]  # null: a time not known
    assert UserField.HISTORY.read(legacy) == [("i1", 1.0, 10.0), ("i2", 2.0, 11.0)]
    assert UserField.SEEN.read(legacy) == ["i1", "i2"]


def test_damaged_packed_values_read_as_nothing_rather_than_as_wrong_values() -> None:
    assert unpack_floats("not base64!") == []
    assert unpack_floats(pack_floats([1.0])[:-4]) == []  # not a whole number of floats
    misaligned = {**pack_history([("i1", 1.0, 2.0)]), "ts": pack_floats([])}
    assert unpack_history(misaligned) == []
    assert unpack_ids(None) == [] and unpack_floats(7) == [] and unpack_history("x") == []
