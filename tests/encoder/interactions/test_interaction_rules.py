"""Event weights: per type, ratings around a neutral point, strengths, and bad values."""

from __future__ import annotations

from typing import Any

import pytest

from recsys.encoder.interactions.rules import EventWeights, InteractionRules
from recsys.encoder.settings import EncoderSettings
from recsys.shared.events import Interaction, InteractionType, MalformedEvent

SETTINGS = EncoderSettings(rating_neutral=3.0)
WEIGHTS = EventWeights.from_settings(SETTINGS)


def interaction(kind: InteractionType, **fields: Any) -> Interaction:
    return Interaction(event_id="e1", user_id="u1", item_id="i1", type=kind, **fields)


@pytest.mark.parametrize("kind", [t for t in InteractionType if t != InteractionType.RATE])
def test_each_type_weighs_its_configured_weight(kind: InteractionType) -> None:
    assert WEIGHTS.weight(interaction(kind)) == SETTINGS.event_weights()[kind]


def test_a_dislike_weighs_negative() -> None:
    assert WEIGHTS.weight(interaction(InteractionType.DISLIKE)) < 0


@pytest.mark.parametrize("rating", [0.5, 3.0, 4.5, 5.0])
def test_a_rating_weighs_its_distance_from_the_neutral_point(rating: float) -> None:
    assert WEIGHTS.weight(interaction(InteractionType.RATE, value=rating)) == rating - SETTINGS.rating_neutral


def test_a_value_on_another_type_scales_its_weight() -> None:
    assert WEIGHTS.weight(interaction(InteractionType.PURCHASE, value=2.0)) == 2 * SETTINGS.weight_purchase


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        (interaction(InteractionType.RATE), "no value"),
        (interaction(InteractionType.RATE, value=7.0), "outside 0.5..5.0"),
        (interaction(InteractionType.CLICK, value=-1.0), "strength -1.0"),
        (interaction(InteractionType.CLICK, value=1000.0), "strength 1000.0"),
    ],
)
def test_a_bad_rating_or_strength_is_a_malformed_event_naming_it(event: Interaction, problem: str) -> None:
    with pytest.raises(MalformedEvent, match=problem):
        WEIGHTS.weight(event)


def test_a_neutral_rating_outside_the_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="rating_neutral"):
        EncoderSettings(rating_neutral=9.0)


def test_half_lives_are_converted_to_seconds() -> None:
    rules = InteractionRules.from_settings(EncoderSettings(taste_half_life_days=2, session_half_life_minutes=3))

    assert rules.taste_half_life_s == 2 * 86_400
    assert rules.session_half_life_s == 3 * 60


def test_repeatable_types_are_read_from_a_comma_separated_setting() -> None:
    rules = InteractionRules.from_settings(EncoderSettings(repeatable_interaction_types=" purchase, view,"))

    assert rules.repeatable_types == {InteractionType.PURCHASE, InteractionType.VIEW}
    assert InteractionRules.from_settings(EncoderSettings()).repeatable_types == frozenset()


def test_an_unknown_repeatable_type_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="unknown interaction type 'rebuy'"):
        EncoderSettings(repeatable_interaction_types="purchase,rebuy")
