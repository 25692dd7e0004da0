"""The drift report: insufficient windows say why, sufficient ones give every figure and explain the verdict."""

from __future__ import annotations

import numpy as np

from recsys.monitor.drift import DriftReport, DriftTest, compare_windows

TEST = DriftTest(min_window=10, permutations=99, alpha=0.05)


def test_windows_too_small_give_a_reason_and_no_figures() -> None:
    rng = np.random.default_rng(2)

    report = compare_windows(
        "items.content", rng.standard_normal((40, 8)), rng.standard_normal((12, 8)), DriftTest(30, 50, 0.05)
    )

    assert not report.sufficient
    assert not report.drifted
    assert report.reason == "current window has 12 vectors, at least 30 needed"
    assert report.explanation == ("No test: current window has 12 vectors, at least 30 needed.",)
    assert report.mmd2 is None and report.p_value is None and report.classifier_auc is None
    assert (report.reference_size, report.current_size) == (40, 12)


def test_both_short_windows_are_named_in_the_reason() -> None:
    report = compare_windows("users.taste", np.ones((3, 4)), np.ones((0, 4)), DriftTest(30, 50, 0.05))

    assert "reference window has 3 vectors" in report.reason
    assert "current window has 0 vectors" in report.reason


def test_a_shift_is_reported_drifted_with_every_figure_and_explained() -> None:
    rng = np.random.default_rng(1)
    reference = rng.standard_normal((200, 64))
    current = rng.standard_normal((200, 64))
    current[:, :4] += 1.0

    report = compare_windows("items.content", reference, current, TEST, reference_mode="first")

    assert report.sufficient and report.drifted
    assert report.p_value is not None and report.p_value < 0.05
    assert report.mmd2 is not None and report.mmd2_threshold is not None and report.mmd2 > report.mmd2_threshold
    assert report.classifier_auc is not None and report.classifier_auc > 0.8
    assert report.drifted_dimensions is not None and report.drifted_dimensions >= 4
    assert {shift.dimension for shift in report.top_dimensions[:4]} == {0, 1, 2, 3}
    assert report.explanation[0].startswith("Drift: MMD²")
    assert any("dimensions drifted" in line and ("#0" in line or "#1" in line) for line in report.explanation)
    assert report.reference_mode == "first"


def test_samples_of_one_distribution_are_explained_as_no_drift() -> None:
    rng = np.random.default_rng(3)

    report = compare_windows("items.content", rng.standard_normal((100, 32)), rng.standard_normal((100, 32)), TEST)

    assert report.sufficient and not report.drifted
    assert report.explanation[0].startswith("No drift")
    assert not any(line.startswith("Collapse") for line in report.explanation)


def test_a_collapse_into_a_few_directions_is_named() -> None:
    rng = np.random.default_rng(4)
    reference = rng.standard_normal((150, 32))
    current = rng.standard_normal((150, 2)) @ rng.standard_normal((2, 32))

    report = compare_windows("items.content", reference, current, TEST)

    assert report.current_profile is not None and report.reference_profile is not None
    assert report.current_profile.effective_rank < 0.5 * report.reference_profile.effective_rank
    assert any(line.startswith("Collapse") for line in report.explanation)


def test_a_report_survives_its_dictionary_form() -> None:
    rng = np.random.default_rng(5)
    report = compare_windows(
        "items.behavior", rng.standard_normal((30, 8)), rng.standard_normal((30, 8)), TEST, version="7"
    )

    assert DriftReport.from_dict(report.to_dict()) == report
    assert report.version == "7"
