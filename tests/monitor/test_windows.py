"""Reference and current windows: who gets in, who is replaced, who leaves."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.monitor.windows import VectorWindows, WindowError


def vec(value: float, dims: int = 3) -> np.ndarray:
    return np.full(dims, value, dtype=np.float32)


def test_reference_keeps_the_first_vectors_seen_and_then_freezes() -> None:
    windows = VectorWindows(reference_size=3, current_size=10)
    for i in range(5):
        windows.add(f"item-{i}", vec(i))

    assert windows.reference_count == 3
    assert windows.reference_matrix()[:, 0].tolist() == [0.0, 1.0, 2.0]


def test_an_update_keeps_the_first_vector_in_the_reference() -> None:
    windows = VectorWindows(reference_size=3, current_size=10)
    windows.add("a", vec(1))
    windows.add("a", vec(9))

    assert windows.reference_count == 1
    assert windows.reference_matrix()[0, 0] == 1.0
    assert windows.current_matrix()[0, 0] == 9.0


def test_an_updated_subject_replaces_its_vector_and_becomes_the_newest() -> None:
    windows = VectorWindows(reference_size=2, current_size=3)
    for subject in ("a", "b", "c"):
        windows.add(subject, vec(ord(subject)))
    windows.add("a", vec(100))

    assert windows.current_subjects() == ["b", "c", "a"]
    assert windows.current_matrix()[-1, 0] == 100.0
    assert windows.current_count == 3


def test_current_window_trails_the_latest_subjects() -> None:
    windows = VectorWindows(reference_size=2, current_size=3)
    for i in range(6):
        windows.add(f"s{i}", vec(i))

    assert windows.current_subjects() == ["s3", "s4", "s5"]


def test_removal_leaves_the_reference_untouched() -> None:
    windows = VectorWindows(reference_size=5, current_size=5)
    windows.add("a", vec(1))
    windows.add("b", vec(2))

    assert windows.remove("a")
    assert not windows.remove("a")
    assert windows.current_subjects() == ["b"]
    assert windows.reference_count == 2


def test_every_change_bumps_the_version_and_a_no_op_does_not() -> None:
    windows = VectorWindows(reference_size=5, current_size=5)
    start = windows.version
    windows.add("a", vec(1))
    after_add = windows.version
    windows.remove("missing")

    assert after_add > start
    assert windows.version == after_add


def test_snapshot_is_a_copy_that_later_changes_do_not_touch() -> None:
    windows = VectorWindows(reference_size=5, current_size=5)
    windows.add("a", vec(1))
    snapshot = windows.snapshot()
    windows.add("a", vec(7))

    assert snapshot.current[0, 0] == 1.0
    assert snapshot.version < windows.version


def test_a_vector_of_other_dimensions_is_refused_with_the_reason() -> None:
    windows = VectorWindows(reference_size=5, current_size=5)
    windows.add("a", vec(1, dims=3))

    with pytest.raises(WindowError, match="4 dimensions, the window holds 3"):
        windows.add("b", vec(1, dims=4))
    with pytest.raises(WindowError, match="one non-empty row"):
        windows.add("c", np.ones((2, 3)))
