"""Splitting a batch into forward passes, and the pass cost model learned from measured passes."""

from __future__ import annotations

import pytest

from recsys.encoder.text.batch_plan import PassCostModel, PassEstimate, measured_shape, plan_passes

# 5 ms per pass plus 0.1 ms per padded token.
COST = PassEstimate(fixed_s=0.005, per_token_s=0.0001)


def padded(tokens: list[int], passes: list[tuple[int, int]]) -> int:
    return sum((end - start) * tokens[end - 1] for start, end in passes)


def test_texts_of_similar_length_run_as_one_pass() -> None:
    assert plan_passes([10, 11, 12, 12, 14], COST, max_padded=10_000) == [(0, 5)]


def test_a_long_outlier_gets_a_pass_of_its_own_instead_of_padding_everyone_to_its_length() -> None:
    tokens = [9] * 40 + [250]

    passes = plan_passes(tokens, COST, max_padded=100_000)

    assert passes == [(0, 40), (40, 41)]
    assert padded(tokens, passes) == 40 * 9 + 250


def test_the_split_never_costs_more_than_one_pass() -> None:
    tokens = sorted([5, 7, 9, 12, 30, 31, 64, 80, 81, 120, 128, 256])
    passes = plan_passes(tokens, COST, max_padded=100_000)

    def seconds(plan: list[tuple[int, int]]) -> float:
        return sum(COST.seconds(end - start, tokens[end - 1]) for start, end in plan)

    assert seconds(passes) < seconds([(0, len(tokens))])
    assert [start for start, _ in passes[1:]] == [end for _, end in passes[:-1]]
    assert passes[0][0] == 0 and passes[-1][1] == len(tokens)


def test_no_pass_holds_more_padded_tokens_than_allowed_but_a_lone_text_always_runs() -> None:
    tokens = [50] * 10 + [900]

    passes = plan_passes(tokens, COST, max_padded=200)

    assert all((end - start) * tokens[end - 1] <= 200 or end - start == 1 for start, end in passes)
    assert (10, 11) in passes


def test_a_pass_time_limit_cuts_passes_that_would_run_longer() -> None:
    tokens = [20] * 12  # one pass: 5 + 0.1 * 240 = 29 ms

    uncut = plan_passes(tokens, COST, max_padded=10_000)
    cut = plan_passes(tokens, COST, max_padded=10_000, max_pass_s=0.011)

    assert uncut == [(0, 12)]
    assert all(COST.seconds(end - start, 20) <= 0.011 for start, end in cut)
    assert [end - start for start, end in cut] == [3, 3, 3, 3]


def test_unsorted_token_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="ascending"):
        plan_passes([5, 3], COST, max_padded=100)


def test_the_cost_model_scales_its_measured_shape_to_how_fast_passes_run_now() -> None:
    model = PassCostModel(fixed_s=0.010, per_token_s=100e-6, memory=50)
    for padded_tokens in [300, 600, 900] * 100:
        model.observe(padded_tokens, 2 * (0.010 + 100e-6 * padded_tokens))

    assert model.scale == pytest.approx(2.0)
    assert model.estimate.fixed_s == pytest.approx(0.020)
    assert model.estimate.per_token_s == pytest.approx(200e-6)


def test_the_cost_model_ignores_impossible_measurements() -> None:
    model = PassCostModel(fixed_s=0.004, per_token_s=1e-5)
    before = model.estimate
    model.observe(0, 1.0)
    model.observe(100, float("nan"))
    model.observe(100, 0.0)

    assert model.estimate == before


def test_the_shape_is_the_line_fitted_to_measured_passes() -> None:
    shape = measured_shape([(16, 0.010), (64, 0.016), (256, 0.040), (512, 0.072)])

    assert shape.per_token_s == pytest.approx(0.000125, rel=0.02)
    assert shape.fixed_s == pytest.approx(0.008, rel=0.1)


def test_a_shape_measured_on_a_busy_machine_stays_within_sensible_bounds() -> None:
    slow_small_pass = measured_shape([(16, 0.200), (512, 0.072)])  # the lone text waited for a core
    slow_large_pass = measured_shape([(16, 0.010), (512, 0.900)])

    assert slow_small_pass.per_token_s > 0 and slow_small_pass.fixed_s <= 512 * slow_small_pass.per_token_s
    assert slow_large_pass.fixed_s >= 8 * slow_large_pass.per_token_s


def test_no_pass_holds_more_texts_than_allowed() -> None:
    passes = plan_passes([10] * 10, COST, max_padded=10_000, max_texts=4)

    assert [end - start for start, end in passes] == [4, 4, 2]


def test_a_packed_model_runs_its_texts_in_as_few_passes_as_the_limits_allow() -> None:
    tokens = [9] * 40 + [250]  # padded, the outlier got a pass of its own; packed, padding costs nothing

    assert plan_passes(tokens, COST, max_padded=100_000, padding_free=True) == [(0, 41)]
    # The budget counts real tokens then: 40 x 9 + 250 = 610.
    assert plan_passes(tokens, COST, max_padded=610, padding_free=True) == [(0, 41)]
    split = plan_passes(tokens, COST, max_padded=609, padding_free=True)
    assert len(split) == 2 and all(sum(tokens[start:end]) <= 609 for start, end in split)
