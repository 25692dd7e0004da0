"""Reference and current windows: who gets in, who is replaced, who leaves, in every mode, and their saved form."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.monitor.windows import ReferenceMode, VectorWindows, WindowError, WindowPolicy


def vec(value: float, dims: int = 3) -> np.ndarray:
    return np.full(dims, value, dtype=np.float32)


def windows(reference: int = 3, current: int = 10, **policy: object) -> VectorWindows:
    return VectorWindows(WindowPolicy(reference_size=reference, current_size=current, **policy))  # type: ignore[arg-type]


def test_reference_keeps_the_first_vectors_seen_and_then_freezes() -> None:
    w = windows(reference=3)
    for i in range(5):
        w.add(f"item-{i}", vec(i), now=float(i))

    assert w.reference_count == 3
    assert w.reference_matrix()[:, 0].tolist() == [0.0, 1.0, 2.0]


def test_an_update_keeps_the_first_vector_in_the_reference() -> None:
    w = windows()
    w.add("a", vec(1), now=0.0)
    w.add("a", vec(9), now=1.0)

    assert w.reference_count == 1
    assert w.reference_matrix()[0, 0] == 1.0
    assert w.current_matrix()[0, 0] == 9.0


def test_an_updated_subject_replaces_its_vector_and_becomes_the_newest() -> None:
    w = windows(reference=2, current=3)
    for subject in ("a", "b", "c"):
        w.add(subject, vec(ord(subject)), now=0.0)
    w.add("a", vec(100), now=1.0)

    assert w.current_subjects() == ["b", "c", "a"]
    assert w.current_matrix()[-1, 0] == 100.0


def test_current_window_by_count_trails_the_latest_subjects() -> None:
    w = windows(reference=2, current=3)
    for i in range(6):
        w.add(f"s{i}", vec(i), now=float(i))

    assert w.current_subjects() == ["s3", "s4", "s5"]


def test_removal_leaves_the_reference_untouched() -> None:
    w = windows(reference=5, current=5)
    w.add("a", vec(1), now=0.0)
    w.add("b", vec(2), now=0.0)

    assert w.remove("a")
    assert not w.remove("a")
    assert w.current_subjects() == ["b"]
    assert w.reference_count == 2


def test_every_change_bumps_the_version_and_a_no_op_does_not() -> None:
    w = windows()
    start = w.version
    w.add("a", vec(1), now=0.0)
    after_add = w.version
    w.remove("missing")

    assert after_add > start
    assert w.version == after_add


def test_snapshot_is_a_copy_that_later_changes_do_not_touch() -> None:
    w = windows()
    w.add("a", vec(1), now=0.0)
    snapshot = w.snapshot()
    w.add("a", vec(7), now=1.0)

    assert snapshot.current[0, 0] == 1.0
    assert snapshot.version < w.version


def test_a_vector_of_other_dimensions_or_shape_is_refused_with_the_reason() -> None:
    w = windows()
    w.add("a", vec(1, dims=3), now=0.0)

    with pytest.raises(WindowError, match="4 dimensions, the window holds 3"):
        w.add("b", vec(1, dims=4), now=0.0)
    with pytest.raises(WindowError, match="one non-empty row"):
        w.add("c", np.ones((2, 3)), now=0.0)


def test_a_trailing_reference_takes_what_ages_out_of_the_current_window() -> None:
    w = windows(reference=2, current=3, reference_mode=ReferenceMode.TRAILING)
    for i in range(7):
        w.add(f"s{i}", vec(i), now=float(i))

    assert w.current_subjects() == ["s4", "s5", "s6"]
    assert w.reference_subjects() == ["s2", "s3"]  # the two that left last


def test_a_pinned_reference_is_a_uniform_sample_of_what_came_before_the_pin() -> None:
    hits = np.zeros(100)
    for seed in range(300):
        w = VectorWindows(
            WindowPolicy(reference_size=10, current_size=5, reference_mode=ReferenceMode.PINNED, pinned_at=100.0),
            seed=seed,
        )
        for i in range(100):
            w.add(f"s{i}", vec(i), now=float(i))
        assert w.reference_pending(now=99.0)  # not pinned yet
        for i in range(100, 120):
            w.add(f"late{i}", vec(i), now=float(i))  # after the pin: never sampled
        assert w.reference_count == 10 and not w.reference_pending(now=120.0)
        hits[[int(s[1:]) for s in w.reference_subjects()]] += 1

    # Each of the 100 subjects is sampled with probability 10/100, early ones as often as late ones.
    assert hits.sum() == 3000
    assert abs(hits[:50].sum() - hits[50:].sum()) < 300
    assert hits.min() > 5 and hits.max() < 60


def test_a_pinned_reference_falls_back_to_the_first_vectors_when_none_came_before_the_pin() -> None:
    w = windows(reference=2, current=5, reference_mode=ReferenceMode.PINNED, pinned_at=10.0)
    for i in range(4):
        w.add(f"s{i}", vec(i), now=20.0 + i)

    assert w.reference_subjects() == ["s0", "s1"]


def test_a_time_window_expires_old_vectors_and_samples_when_too_many_changed() -> None:
    w = windows(reference=50, current=20, current_window_s=60.0, reference_mode=ReferenceMode.TRAILING)
    for i in range(200):
        w.add(f"s{i}", vec(i), now=float(i) * 0.1)  # 200 changes within 20 s

    assert w.current_count == 20
    kept = sorted(int(s[1:]) for s in w.current_subjects())
    assert kept[0] < 100 < kept[-1]  # a sample of the whole period, not the newest 20

    assert w.expire(now=200.0)
    assert w.current_count == 0
    assert w.reference_count == 20  # trailing: the expired vectors


def test_reset_reference_makes_the_current_window_the_reference() -> None:
    w = windows(reference=3, current=3)
    for i in range(6):
        w.add(f"s{i}", vec(i), now=float(i))

    w.reset_reference()
    w.add("s9", vec(9), now=9.0)

    assert w.reference_subjects() == ["s3", "s4", "s5"]


def test_restart_empties_both_windows_and_fills_afresh() -> None:
    w = windows(reference=2, current=3)
    for i in range(4):
        w.add(f"old{i}", vec(i), now=float(i))

    w.restart()
    w.add("new", vec(1, dims=5), now=9.0)

    assert w.reference_subjects() == ["new"] and w.current_subjects() == ["new"]
    assert w.dims == 5


@pytest.mark.parametrize("mode", list(ReferenceMode))
def test_exported_windows_restore_to_the_same_windows(mode: ReferenceMode) -> None:
    policy = WindowPolicy(reference_size=4, current_size=5, reference_mode=mode, pinned_at=3.0, current_window_s=100.0)
    w = VectorWindows(policy, seed=1)
    for i in range(12):
        w.add(f"s{i}", vec(i), now=float(i))

    arrays, meta = w.export()
    restored = VectorWindows.restore(policy, arrays, meta)

    assert restored.reference_subjects() == w.reference_subjects()
    assert restored.current_subjects() == w.current_subjects()
    np.testing.assert_array_equal(restored.current_matrix(), w.current_matrix())
    assert restored.reference_phase == w.reference_phase
    # The same next step: sampling state (random generator, counts) came back too.
    for later in (w, restored):
        later.add("next", vec(50), now=50.0)
    assert restored.current_subjects() == w.current_subjects()


def test_restored_windows_are_cut_to_smaller_sizes_keeping_the_newest() -> None:
    w = windows(reference=4, current=6)
    for i in range(8):
        w.add(f"s{i}", vec(i), now=float(i))
    arrays, meta = w.export()

    smaller = VectorWindows.restore(WindowPolicy(reference_size=2, current_size=3), arrays, meta)

    assert smaller.current_subjects() == ["s5", "s6", "s7"]
    assert smaller.reference_subjects() == ["s0", "s1"]
