"""The replay through the encoder's update code: what each evaluated user's request would have seen."""

from __future__ import annotations

import numpy as np

from recsys.encoder.interactions.role import refresh_policy
from recsys.encoder.interactions.rules import EventWeights, InteractionRules
from recsys.encoder.settings import EncoderSettings
from recsys.recommender.blending import popularity_prior
from recsys.tools.evaluation.dataset import Ratings
from recsys.tools.evaluation.replay import catalog_candidates, replay, user_query


def test_popularity_is_what_the_request_time_allowed_and_users_are_folded_into_the_fitted_model() -> None:
    # Users 0-3 like items 0-2 early; user 4 likes item 3 late, after user 0's request time.
    rows = [(u, i, 5.0, 10.0 * u + i) for u in range(4) for i in range(3)] + [(4, 3, 5.0, 1000.0)]
    user, item, rating, ts = (np.asarray(c) for c in zip(*rows, strict=True))
    data = Ratings(
        user, item, rating.astype(float), ts.astype(float), [f"u{n}" for n in range(5)], ["a", "b", "c", "d"]
    )
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
