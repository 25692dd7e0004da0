"""Replays training interactions through the encoder's update code and fits the behavior model as a refresh does."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from tqdm import tqdm

from recsys.encoder.interactions.behavior_model import (
    EventColumns,
    InteractionMatrixBuilder,
    ItemFactors,
    LoggedInteraction,
)
from recsys.encoder.interactions.behavior_refresh import RefreshPolicy
from recsys.encoder.interactions.factorizer import InProcessFactorizer
from recsys.encoder.interactions.item_activity import ItemActivity
from recsys.encoder.interactions.refresh_tuning import ModelFit
from recsys.encoder.interactions.rules import EventWeights, InteractionRules
from recsys.encoder.interactions.user_profile import UserProfile
from recsys.shared.blending import Candidates, UserQuery
from recsys.shared.successors import (
    recent_items,
    sequence_scores,
    successor_lists,
    transition_matrix,
)
from recsys.tools.evaluation.dataset import Interactions

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
    # The behavior log the replay wrote, as the refresh reads it (deduplicated, non-zero weights), and the catalog
    # (items with content, in item-row order) the refresh's content map and blend tuning see.
    entries: InteractionMatrixBuilder
    catalog_ids: list[str]
    catalog_content: np.ndarray
    # What followed each item in the log (successors.py), as the refresh writes it on the items.
    successors: dict[str, list[tuple[str, float]]] = field(default_factory=dict)

    def sequence_signal(self, user: int, item_ids: list[str], row_of: dict[str, int]) -> np.ndarray:
        """The user's sequence score of every item (rows of item_ids), as the recommender computes it."""
        profile = self.profiles.get(user)
        signal = np.zeros(len(item_ids))
        if profile is None:
            return signal
        for item_id, score in sequence_scores(recent_items(profile.history), self.successors).items():
            row = row_of.get(item_id)
            if row is not None:
                signal[row] = score
        return signal

    @property
    def events(self) -> EventColumns:
        """The log as columns (with each event's type); rows index the log's own id lists, not the dataset's."""
        return self.entries.events()


def model_fit(policy: RefreshPolicy) -> ModelFit:
    """How the refresh fits item vectors under `policy`: its factorizer, decay, dimensions and content map."""
    return ModelFit(
        InProcessFactorizer(policy.device),
        policy.model_half_life_s,
        policy.dims,
        policy.content_map,
        policy.item_evidence_k,
        policy.content_min_evidence,
        policy.type_weighting,
    )


def refit(replayed: ReplayResult, policy: RefreshPolicy, rules: InteractionRules) -> ReplayResult:
    """The same replay refit under another policy (e.g. without the content map), every user re-folded against it;
    `replayed` is left as it was."""
    factors = model_fit(policy).fit(replayed.events, replayed.catalog_ids, replayed.catalog_content)
    profiles = copy.deepcopy(replayed.profiles)
    item_behaviors = factors.as_mapping()
    for user in replayed.popularity:
        if user in profiles:
            profiles[user].refresh_behavior(item_behaviors, REPLAY_VERSION, rules)
    return replace(replayed, profiles=profiles, factors=factors)


def replay(
    interactions: Interactions,
    train: np.ndarray,
    request_times: dict[int, float],
    content: np.ndarray,
    weights: EventWeights,
    rules: InteractionRules,
    policy: RefreshPolicy,
    popularity_prior: PopularityPrior,
    progress: bool = True,
    has_content: np.ndarray | None = None,
) -> ReplayResult:
    """Applies every training interaction in time order, with its own type, value and session, exactly as
    ingestion does. An item without content (has_content False: not in the catalog) counts everywhere
    except in the taste and session vectors.

    Item popularity is snapshotted at each evaluated user's request time (only earlier events),
    as the recommender would read it then. The model is then fit on the behavior log the replay
    wrote, exactly as the refresh fits it (ModelFit: the factorization, then the content map when the policy
    has it on, with the catalog's content in item-row order and each item's distinct training users as its
    evidence), and every user re-folded against it: what a refresh at the end of training leaves.
    """
    n_items = len(interactions.item_ids)
    if has_content is None:
        has_content = np.ones(n_items, dtype=bool)
    # Ties in time keep the input's order, as a stream delivers them.
    order = train[np.lexsort((train, interactions.item[train], interactions.user[train], interactions.ts[train]))]
    activities: dict[int, ItemActivity] = {}
    profiles: dict[int, UserProfile] = {}
    log = InteractionMatrixBuilder()
    stored_popularity = np.zeros(n_items)
    stored_popularity_ts = np.full(n_items, np.nan)
    requests = sorted(request_times.items(), key=lambda pair: pair[1])
    snapshots: dict[int, np.ndarray] = {}
    next_request = 0
    for row in tqdm(order, desc="replaying interactions", unit="event", disable=not progress, mininterval=1):
        ts = float(interactions.ts[row])
        while next_request < len(requests) and requests[next_request][1] <= ts:
            user, at = requests[next_request]
            snapshots[user] = popularity_prior(stored_popularity, stored_popularity_ts, at).astype(np.float32)
            next_request += 1
        user, item = int(interactions.user[row]), int(interactions.item[row])
        event = interactions.interaction(int(row))
        weight = weights.weight(event)
        activity = activities.setdefault(item, ItemActivity(popularity_ts=ts))
        activity.record(event, weight, ts, rules)
        stored_popularity[item], stored_popularity_ts[item] = activity.popularity, activity.popularity_ts
        profile = profiles.setdefault(user, UserProfile(user_id=event.user_id))
        profile.record(event, weight, ts, content[item] if has_content[item] else None, rules)
        if weight != 0:
            log.add(LoggedInteraction(event.event_id, event.user_id, event.item_id, weight, ts, event.type.value))
    for user, at in requests[next_request:]:
        snapshots[user] = popularity_prior(stored_popularity, stored_popularity_ts, at).astype(np.float32)

    catalog_rows = np.flatnonzero(has_content)
    catalog_ids = [interactions.item_ids[row] for row in catalog_rows]
    catalog_content = np.asarray(content[catalog_rows], dtype=np.float32)
    events = log.events()
    factors = model_fit(policy).fit(events, catalog_ids, catalog_content)
    keep = policy.successors
    transitions = transition_matrix(events.user, events.item, events.weight, events.ts, len(events.item_ids), keep=keep)
    successors = successor_lists(transitions, events.item_ids)
    item_behaviors = factors.as_mapping()
    for user in request_times:
        if user in profiles:
            profiles[user].refresh_behavior(item_behaviors, REPLAY_VERSION, rules)
    counts = np.zeros(n_items, dtype=np.int64)
    for item, activity in activities.items():
        counts[item] = activity.interaction_count
    return ReplayResult(
        profiles, snapshots, counts, factors, len(events), log, catalog_ids, catalog_content, successors
    )


def catalog_candidates(
    item_ids: list[str], content: np.ndarray, factors: ItemFactors, has_content: np.ndarray | None = None
) -> Candidates:
    """Every item as ForYou candidates, with the behavior vectors of the fitted model; has_content marks the
    catalog's items (default: all), the only ones a ranking may return."""
    row_of = {item_id: row for row, item_id in enumerate(item_ids)}
    behavior = np.zeros((len(item_ids), factors.vectors.shape[1]), dtype=np.float32)
    has_behavior = np.zeros(len(item_ids), dtype=bool)
    strength = np.zeros(len(item_ids))
    for source, item_id in enumerate(factors.item_ids):
        row = row_of[item_id]
        behavior[row], has_behavior[row], strength[row] = factors.vectors[source], True, factors.strengths[source]
    in_catalog = np.ones(len(item_ids), dtype=bool) if has_content is None else has_content
    return Candidates.of(item_ids, content, in_catalog, behavior, has_behavior, strength, np.zeros(len(item_ids)))


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
