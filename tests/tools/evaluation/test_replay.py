"""The replay through the encoder's update code: what each evaluated user's request would have seen."""

from __future__ import annotations

import numpy as np

from recsys.encoder.interactions.role import refresh_policy
from recsys.encoder.interactions.rules import EventWeights, InteractionRules
from recsys.encoder.settings import EncoderSettings
from recsys.shared.blending import popularity_prior
from recsys.shared.events import InteractionType
from recsys.tools.evaluation.replay import catalog_candidates, replay, user_query
from tests.tools.evaluation.columns import ratings, typed


def test_popularity_is_what_the_request_time_allowed_and_users_are_folded_into_the_fitted_model() -> None:
    # Users 0-3 like items 0-2 early; user 4 likes item 3 late, after user 0's request time.
    rows = [(u, i, 5.0, 10.0 * u + i) for u in range(4) for i in range(3)] + [(4, 3, 5.0, 1000.0)]
    data = ratings(rows)
    settings = EncoderSettings(behavior_dims=8)
    content = np.random.default_rng(0).normal(size=(4, 16))

    result = replay(
        data,
        np.arange(len(rows)),
        {0: 500.0},
        content,
        EventWeights.from_settings(settings),
        InteractionRules.from_settings(settings),
        refresh_policy(settings),
        lambda popularity, stamps, now: popularity_prior(np.where(stamps <= now, popularity, 0.0), 1.0),
        progress=False,
    )

    assert result.popularity[0][3] == 0.0 and (result.popularity[0][:3] > 0).all()
    assert result.interaction_counts.tolist() == [4, 4, 4, 1]
    assert result.log_size == len(rows)
    query = user_query(result.profiles[0])
    assert query.events == 3 and query.behavior is not None and query.taste is not None
    candidates = catalog_candidates(data.item_ids, content, result.factors)
    assert candidates.has_behavior.all()
    scores = candidates.behavior @ query.behavior
    assert scores[:3].min() > scores[3]  # user 0's fold-in points at their own items, not the late one


def test_purchases_views_and_clicks_replay_with_their_own_types_and_no_ratings() -> None:
    kinds = [InteractionType.PURCHASE, InteractionType.VIEW, InteractionType.CLICK, InteractionType.DISLIKE]
    rows = [(u, i, kinds[i], None, 10.0 * u + i) for u in range(3) for i in range(4)]
    rows.append((0, 4, InteractionType.PURCHASE, None, 100.0))  # an item with no content (not in the catalog)
    data = typed(rows)
    settings = EncoderSettings(behavior_dims=8, repeatable_interaction_types="purchase")
    content = np.random.default_rng(1).normal(size=(5, 8))
    has_content = np.array([True, True, True, True, False])

    result = replay(
        data,
        np.arange(len(rows)),
        {0: 1000.0},
        content,
        EventWeights.from_settings(settings),
        InteractionRules.from_settings(settings),
        refresh_policy(settings),
        lambda popularity, stamps, now: popularity_prior(popularity, 1.0),
        progress=False,
        has_content=has_content,
    )

    profile = result.profiles[0]
    assert [entry.weight for entry in profile.history] == [
        settings.weight_purchase,
        settings.weight_view,
        settings.weight_click,
        settings.weight_dislike,
        settings.weight_purchase,
    ]
    assert profile.seen == ["i1", "i2", "i3"]  # purchases are repeatable here: not seen
    assert result.interaction_counts.tolist() == [3, 3, 3, 0, 1]  # a dislike is not a positive
    assert result.log_size == len(rows)
    assert profile.taste.unit is not None
