"""Replays training ratings through the encoder's update code and fits the collaborative model like a refresh does."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from recsys.encoder.interactions.behavior_model import ItemFactors, LoggedInteraction
from recsys.encoder.interactions.behavior_refresh import RefreshPolicy, fit
from recsys.encoder.interactions.item_activity import ItemActivity
from recsys.encoder.interactions.rules import EventWeights, InteractionRules
from recsys.encoder.interactions.user_profile import UserProfile
from recsys.recommender.blending import Candidates, UserQuery
from recsys.shared.events import Interaction, InteractionType
from recsys.tools.evaluation.dataset import Ratings

# A replay has one model version; the number only has to be the same on items and users.
REPLAY_VERSION = 1

PopularityPrior = Callable[[np.ndarray, np.ndarray, float], np.ndarray]


@dataclass(frozen=True)
class ReplayResult:
    """User states after the replay, popularity as each evaluated user's request would have seen it, the model."""

    profiles: dict[int, UserProfile]
    popularity: dict[int, np.ndarray]  # user row -> prior of every item at that user's request time
    interaction_counts: np.ndarray  # positive training interactions per item
    factors: ItemFactors
    log_size: int


def replay(
    ratings: Ratings,
    train: np.ndarray,
    request_times: dict[int, float],
    content: np.ndarray,
    weights: EventWeights,
    rules: InteractionRules,
    policy: RefreshPolicy,
    popularity_prior: PopularityPrior,
    progress: bool = True,
) -> ReplayResult:
    """Applies every training rating in time order as a `rate` interaction, exactly as ingestion does.

    Item popularity is snapshotted at each evaluated user's request time (only earlier events),
    as the recommender would read it then. The model is then fit on the behavior log the replay
    wrote, and every user re-folded against it: what a refresh at the end of training leaves.
    """
    order = train[np.lexsort((ratings.item[train], ratings.user[train], ratings.ts[train]))]
    activities: dict[int, ItemActivity] = {}
    profiles: dict[int, UserProfile] = {}
    log: list[LoggedInteraction] = []
    stored_popularity = np.zeros(len(ratings.item_ids))
    stored_popularity_ts = np.full(len(ratings.item_ids), np.nan)
    requests = sorted(request_times.items(), key=lambda pair: pair[1])
    snapshots: dict[int, np.ndarray] = {}
    next_request = 0
    for row in tqdm(order, desc="replaying interactions", unit="event", disable=not progress, mininterval=1):
        ts = float(ratings.ts[row])
        while next_request < len(requests) and requests[next_request][1] <= ts:
            user, at = requests[next_request]
            snapshots[user] = popularity_prior(stored_popularity, stored_popularity_ts, at).astype(np.float32)
            next_request += 1
        user, item = int(ratings.user[row]), int(ratings.item[row])
        user_id, item_id = ratings.user_ids[user], ratings.item_ids[item]
        event = Interaction.model_construct(
            event_id=f"{user_id}:{item_id}:{int(ts)}",
            user_id=user_id,
            item_id=item_id,
            type=InteractionType.RATE,
            value=float(ratings.rating[row]),
            session_id=None,
            ts=ts,
        )
        weight = weights.weight(event)
        activity = activities.setdefault(item, ItemActivity(popularity_ts=ts))
        activity.record(event, weight, ts, rules)
        stored_popularity[item], stored_popularity_ts[item] = activity.popularity, activity.popularity_ts
        profile = profiles.setdefault(user, UserProfile(user_id=user_id))
        profile.record(event, weight, ts, content[item], rules)
        if weight != 0:
            log.append(LoggedInteraction(event.event_id, user_id, item_id, weight, ts))
    for user, at in requests[next_request:]:
        snapshots[user] = popularity_prior(stored_popularity, stored_popularity_ts, at).astype(np.float32)

    factors = fit(log, policy)
    item_behaviors = factors.as_mapping()
    for user in request_times:
        if user in profiles:
            profiles[user].refresh_behavior(item_behaviors, REPLAY_VERSION, rules)
    counts = np.zeros(len(ratings.item_ids), dtype=np.int64)
    for item, activity in activities.items():
        counts[item] = activity.interaction_count
    return ReplayResult(profiles, snapshots, counts, factors, len(log))


def catalog_candidates(item_ids: list[str], content: np.ndarray, factors: ItemFactors) -> Candidates:
    """Every catalog item as ForYou candidates, with the behavior vectors of the fitted model."""
    row_of = {item_id: row for row, item_id in enumerate(item_ids)}
    behavior = np.zeros((len(item_ids), factors.vectors.shape[1]), dtype=np.float32)
    has_behavior = np.zeros(len(item_ids), dtype=bool)
    strength = np.zeros(len(item_ids))
    for source, item_id in enumerate(factors.item_ids):
        row = row_of[item_id]
        behavior[row], has_behavior[row], strength[row] = factors.vectors[source], True, factors.strengths[source]
    return Candidates.of(
        item_ids, content, np.ones(len(item_ids), dtype=bool), behavior, has_behavior, strength, np.zeros(len(item_ids))
    )


def user_query(profile: UserProfile | None) -> UserQuery:
    """What the recommender reads from a stored user: its unit vectors and event count."""
    if profile is None:
        return UserQuery()
    return UserQuery(
        taste=profile.taste.unit,
        session=profile.session.unit,
        behavior=profile.behavior.unit,
        events=profile.event_count,
    )
