"""The state files: what is saved reads back, a torn or foreign file is ignored, writes replace atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys.monitor.state_store import StateStore


def test_a_space_snapshot_reads_back_arrays_and_metadata(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "monitor")
    arrays = {"reference": np.arange(6, dtype=np.float32).reshape(2, 3), "times": np.array([1.5, 2.5])}

    store.save_space("items.content", arrays, {"subjects": ["a", "b"], "version": "7"})
    loaded = store.load_space("items.content")

    assert loaded is not None
    read_arrays, meta = loaded
    np.testing.assert_array_equal(read_arrays["reference"], arrays["reference"])
    np.testing.assert_array_equal(read_arrays["times"], arrays["times"])
    assert meta == {"subjects": ["a", "b"], "version": "7"}


def test_the_document_reads_back_and_a_missing_one_is_none(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    assert store.load_document() is None
    assert store.load_space("users.taste") is None

    store.save_document({"history": {"items.content": [{"p_value": 0.5}]}})

    assert store.load_document() == {"history": {"items.content": [{"p_value": 0.5}]}}


def test_an_unreadable_file_is_ignored_rather_than_fatal(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.space_path("items.content").write_bytes(b"not a zip file")
    (tmp_path / "monitor.json").write_text("{torn")

    assert store.load_space("items.content") is None
    assert store.load_document() is None


def test_a_failed_write_leaves_the_previous_snapshot_and_no_temporary_file(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.save_space("items.content", {"reference": np.ones((2, 2))}, {"n": 1})
    # The first array is written, then the second cannot be: the write fails midway.
    unwritable = {"reference": np.zeros((2, 2)), "z": np.array([lambda: 0], dtype=object)}

    with pytest.raises(Exception, match="pickle"):
        store.save_space("items.content", unwritable, {"n": 2})

    loaded = store.load_space("items.content")
    assert loaded is not None and loaded[1] == {"n": 1}
    np.testing.assert_array_equal(loaded[0]["reference"], np.ones((2, 2)))
    assert [p.name for p in tmp_path.iterdir()] == ["windows-items.content.npz"]
