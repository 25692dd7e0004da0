"""The blend tuning itself: ForYou weights chosen on a time-ordered validation split of the service's own events.

At each behavior refresh the encoder holds out, for a sample of users, their last positives by time,
refits the collaborative model on everything before, replays each of those users' earlier events
through the same `UserProfile` code ingestion runs, and scores every candidate weight setting with
the recommender's own blending (shared/blending.py) on the held-out items. The best setting wins,
unless popularity alone does better: a deployment never ranks worse than its most popular items on
its own recent data. Too few users with enough events leave the configured defaults in place.

The same users then choose the fresh-slot gate (ForYouWeights.fresh_gate) under the chosen weights: a
reserved slot at the end of the top k goes to the best fresh item (few positive events) only where it
scores within the gate of the item it displaces, and the gate kept is the one whose slots win the most
held-out fresh items for at most FRESH_NDCG_TOLERANCE of NDCG@k; a slot that wins nothing is not given.
Under the chosen weights and gate it also counts the held-out fresh items the top k wins (slot or not): what
the refresh's tuner weighs the content map's item evidence constants by (refresh_tuning.py).

Pure logic (numpy and the update/blend code): the refresh and the offline evaluation both call it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from recsys.encoder.interactions.behavior_model import EventColumns, ItemFactors
from recsys.encoder.interactions.rules import InteractionRules
from recsys.encoder.interactions.user_profile import UserProfile
from recsys.shared.blending import (
    BEHAVIOR,
    POPULARITY,
    SEQUENCE,
    SESSION,
    TASTE,
    Candidates,
    ForYouWeights,
    UserQuery,
    for_you_signals,
    popularity_prior,
    worth_a_slot,
)
from recsys.shared.events import Interaction, InteractionType
from recsys.shared.successors import recent_items, sequence_array, transition_matrix

# The candidate weights, relative to behavior at 1 (only their ratios rank). The ranges span "this
# signal is off" to "it moves a handful of places in a top 10"; they were set from the scale of each
# signal (cosines and a 0..1 prior), not from any evaluation result.
TASTE_GRID = (0.0, 0.02, 0.05, 0.1, 0.2)
SESSION_GRID = (0.0, 0.02, 0.05, 0.1)
POPULARITY_GRID = (0.0, 0.02, 0.05, 0.1, 0.2)
EVIDENCE_GRID = (1.0, 5.0, 20.0)
SEQUENCE_GRID = (0.0, 0.1, 0.3, 1.0)
POPULARITY_ONLY = ForYouWeights(behavior=0.0, taste=0.0, session=0.0, popularity=1.0, evidence_k=1.0)
# The fresh-slot gates tried (blending.worth_a_slot), from "every fresh item" to "only one that earned its place";
# spaced where a blended score's top 10 lies, set before any evaluation.
FRESH_GATE_GRID = (0.0, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0)
# What a fresh slot may cost: at most this share of the validation NDCG@k of the feed without one. A product
# budget, not fitted: half the 1% issue 17 accepts for carrying cold items at all, the other half left to the map.
FRESH_NDCG_TOLERANCE = 0.005

_SIGNALS = (BEHAVIOR, TASTE, SESSION, POPULARITY, SEQUENCE)


@dataclass(frozen=True)
class TuningPlan:
    """How the validation split is drawn and scored."""

    held_out: int = 5  # positives held out per validation user: their last, by time
    min_users: int = 50  # fewer users with held_out + 1 positives: keep the defaults
    max_users: int = 1000  # users scored at most (a seeded sample): bounds the time a refresh spends
    k: int = 10  # NDCG@k
    # Candidates per signal each user's settings are scored on: like the recommender, which only ranks
    # what some signal fetched (RECSYS_CANDIDATE_POOL and its factor), it bounds the work per user.
    shortlist: int = 100
    popularity_midpoint: float = 20.0  # the recommender's prior (RECSYS_POPULARITY_MIDPOINT)
    # Fresh items, for the fresh-slot gate: fewer positive events than this (RECSYS_FRESH_MAX_INTERACTIONS).
    fresh_max_interactions: int = 3
    seed: int = 0


@dataclass(frozen=True)
class TunedBlend:
    """The chosen weights and what they scored on the validation users, next to the defaults and popularity."""

    weights: ForYouWeights
    users: int
    ndcg: float
    defaults_ndcg: float
    popularity_ndcg: float
    # The fresh-slot gate's choice (weights.fresh_gate) on the same users; None when it was not tuned.
    fresh: FreshGate | None = None
    # Held-out fresh items in the validation users' top k under these weights and gate, the fresh slot included.
    fresh_target_hits: int = 0

    def as_record(self) -> dict[str, float]:
        """Flat figures for the model record and the metrics."""
        return {
            "validation_users": float(self.users),
            "ndcg": self.ndcg,
            "defaults_ndcg": self.defaults_ndcg,
            "popularity_ndcg": self.popularity_ndcg,
            "fresh_target_hits": float(self.fresh_target_hits),
            **(self.fresh.as_record() if self.fresh is not None else {}),
        }


@dataclass(frozen=True)
class FreshCase:
    """One validation user's feed as the fresh-slot gate sees it: which of the top k are targets, the score of the
    k-th, and the best fresh candidate outside the top k (score NaN: none, or a fresh item already in the top k)."""

    top_hits: np.ndarray  # bool per rank of the top k
    relevant: int  # the user's targets (the NDCG ideal)
    last_score: float
    fresh_score: float
    fresh_hit: bool
    # bool per rank of the top k: a fresh item (None: not known; counted as none).
    top_fresh: np.ndarray | None = None


@dataclass(frozen=True)
class FreshGate:
    """The chosen gate, its validation NDCG@k and fresh hits, and the NDCG@k with no fresh slot."""

    gate: float
    ndcg: float
    no_slot_ndcg: float
    fresh_hits: int
    slots: int

    def as_record(self) -> dict[str, float]:
        return {
            "fresh_gate_ndcg": self.ndcg,
            "fresh_gate_no_slot_ndcg": self.no_slot_ndcg,
            "fresh_gate_hits": float(self.fresh_hits),
            "fresh_gate_slots": float(self.slots),
        }


def fresh_case(
    scores: np.ndarray, allowed: np.ndarray, fresh: np.ndarray, targets: np.ndarray, k: int, relevant: int | None = None
) -> FreshCase:
    """The FreshCase of one user: `scores` over candidates (columns), `allowed` what may be ranked, `fresh` the
    fresh candidates, `targets` the held-out columns; the top k by score, ties by column, as feed_order ranks."""
    rows = np.flatnonzero(allowed)
    values = np.asarray(scores, dtype=np.float64)[rows]
    order = rows[np.lexsort((rows, -values))]
    top = order[:k]
    is_target = np.isin(top, targets)
    is_fresh = np.asarray(fresh[top], dtype=bool)
    relevant = len(targets) if relevant is None else relevant
    outside = order[k:][fresh[order[k:]]]
    if len(top) < k or is_fresh.any() or not len(outside):
        return FreshCase(is_target, relevant, -math.inf, math.nan, False, is_fresh)
    best = int(outside[0])
    fresh_score, fresh_hit = float(scores[best]), bool(np.isin(best, targets))
    return FreshCase(is_target, relevant, float(scores[top[-1]]), fresh_score, fresh_hit, is_fresh)


def fresh_target_hits(cases: Sequence[FreshCase], gate: float) -> int:
    """Held-out fresh items the users' top k win under `gate`: the fresh slot's hit where the gate gives it one
    (a case offers a slot only with no fresh item in its top k), else the fresh targets ranked there already."""
    hits = 0
    for case in cases:
        if not math.isnan(case.fresh_score) and worth_a_slot(np.array([case.fresh_score]), case.last_score, gate)[0]:
            hits += int(case.fresh_hit)
        elif case.top_fresh is not None:
            hits += int((case.top_hits & case.top_fresh).sum())
    return hits


def choose_fresh_gate(
    cases: Sequence[FreshCase],
    k: int,
    tolerance: float = FRESH_NDCG_TOLERANCE,
    grid: Sequence[float] = FRESH_GATE_GRID,
    reference: float | None = None,
) -> FreshGate:
    """The gate whose one fresh slot (the last of the top k, as exposure.with_fresh_share places it) wins the most
    fresh hits while its mean NDCG@k stays within `tolerance` of `reference` (default: the NDCG@k with no fresh slot
    at all); ties go to the stricter gate (less exposure for nothing). With no validation user, or no gain, the
    strictest: 1, reported with its own slots (a fresh item that scores as well as the one it displaces)."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))

    def ideal(relevant: int) -> float:
        return float(discounts[: min(relevant, k)].sum()) or 1.0

    base = np.array([float(case.top_hits @ discounts[: len(case.top_hits)]) / ideal(case.relevant) for case in cases])
    no_slot = float(base.mean()) if len(base) else 0.0

    def outcome(gate: float) -> FreshGate:
        ndcg = base.copy()
        hits = slots = 0
        for user, case in enumerate(cases):
            if math.isnan(case.fresh_score) or not worth_a_slot(np.array([case.fresh_score]), case.last_score, gate)[0]:
                continue
            slots += 1
            hits += int(case.fresh_hit)
            gain = float(case.top_hits[: k - 1] @ discounts[: k - 1]) + (discounts[k - 1] if case.fresh_hit else 0.0)
            ndcg[user] = gain / ideal(case.relevant)
        return FreshGate(float(gate), float(ndcg.mean()) if len(ndcg) else 0.0, no_slot, hits, slots)

    floor = (1.0 - tolerance) * (no_slot if reference is None else reference)
    best = outcome(1.0)
    for gate in sorted(grid, reverse=True):
        tried = outcome(gate)
        if tried.ndcg >= floor and tried.fresh_hits > best.fresh_hits:
            best = tried
    return best


@dataclass(frozen=True)
class ValidationSplit:
    """Rows of the log to train on, and per validation user the held-out item rows and the request time."""

    train: np.ndarray
    targets: dict[int, np.ndarray]
    cutoff: dict[int, float]


def candidate_weights(defaults: ForYouWeights) -> list[ForYouWeights]:
    """The defaults first (ties keep them), popularity alone, then the grid."""
    grid = [
        ForYouWeights(1.0, taste, session, popularity, evidence_k, sequence)
        for taste, session, popularity, evidence_k, sequence in itertools.product(
            TASTE_GRID, SESSION_GRID, POPULARITY_GRID, EVIDENCE_GRID, SEQUENCE_GRID
        )
    ]
    return [defaults, POPULARITY_ONLY, *grid]


def validation_split(events: EventColumns, plan: TuningPlan) -> ValidationSplit:
    """Per sampled user with more than `held_out` positives (weight > 0), the last ones by time are targets;
    that user's events at or after the first target are not trained on. Other users are training only."""
    order = np.lexsort((events.item, events.ts, events.user))
    keep = np.ones(len(events), dtype=bool)
    eligible: list[tuple[int, np.ndarray, float]] = []
    boundaries = np.flatnonzero(np.diff(events.user[order])) + 1
    for rows in np.split(order, boundaries):
        if len(rows) == 0:
            continue
        positives = rows[events.weight[rows] > 0]
        if len(positives) < plan.held_out + 1:
            continue
        held = positives[-plan.held_out :]
        eligible.append((int(events.user[rows[0]]), rows, float(events.ts[held[0]])))
    if len(eligible) > plan.max_users:
        picks = np.random.default_rng(plan.seed).choice(len(eligible), size=plan.max_users, replace=False)
        eligible = [eligible[i] for i in sorted(picks)]
    targets: dict[int, np.ndarray] = {}
    cutoff: dict[int, float] = {}
    for user, rows, first in eligible:
        later = rows[events.ts[rows] >= first]
        keep[later] = False
        positives = later[events.weight[later] > 0]
        targets[user] = np.unique(events.item[positives])
        cutoff[user] = first
    return ValidationSplit(np.flatnonzero(keep), targets, cutoff)


def tune_blend(
    events: EventColumns,
    content: np.ndarray,
    has_content: np.ndarray,
    defaults: ForYouWeights,
    rules: InteractionRules,
    fit_factors: Callable[[EventColumns], ItemFactors],
    plan: TuningPlan = TuningPlan(),
    replayed: dict[int, UserProfile] | None = None,
) -> TunedBlend | None:
    """The best weights on a validation split of `events`; None when there are too few users to tell.

    `content` holds a content vector per row of `events.item_ids` (rows without one: has_content
    False); those items are the candidates. `fit_factors` fits the collaborative model the refresh
    would fit (content map included), here on the training part only. `replayed`: where the validation
    users' replayed profiles are kept between calls on the same events, content, rules and plan (the
    caller's promise), which split and replay them the same way whatever model is fit: empty, this call
    fills it; filled, it skips the replay. Each call gives the profiles its own model's behavior vectors.
    """
    split = validation_split(events, plan)
    if len(split.targets) < plan.min_users:
        return None
    train = events.subset(split.train)
    factors = fit_factors(train)
    successors = transition_matrix(train.user, train.item, train.weight, train.ts, len(events.item_ids))
    row_of = {item_id: row for row, item_id in enumerate(events.item_ids)}
    candidates = _candidates(events.item_ids, content, has_content, factors)
    choices = candidate_weights(defaults)
    totals = np.zeros(len(choices))
    by_user = _rows_by_user(train)
    popularity = _PopularityClock(train, rules.popularity_half_life_s)
    item_behaviors = factors.as_mapping()
    positives = np.bincount(train.item[train.weight > 0], minlength=len(events.item_ids))
    fresh = has_content & (positives < plan.fresh_max_interactions)
    shortlisted: list[tuple[dict[str, np.ndarray], int, np.ndarray, np.ndarray, int]] = []
    for user in sorted(split.targets, key=lambda u: split.cutoff[u]):
        rows = by_user.get(user, np.zeros(0, dtype=np.int64))
        profile = replayed.get(user) if replayed is not None else None
        if profile is None:
            profile = _replayed_profile(train, rows, content, has_content, rules)
            if replayed is not None:
                replayed[user] = profile
        # Replaces whatever behavior vector an earlier call's model gave it.
        profile.refresh_behavior(item_behaviors, 1, rules)
        query = UserQuery(profile.taste.unit, profile.session.unit, profile.behavior.unit, profile.event_count)
        prior = popularity_prior(popularity.at(split.cutoff[user]), plan.popularity_midpoint)
        sequence = sequence_array(recent_items(profile.history), row_of, successors)
        signals = for_you_signals(query, candidates.with_popularity(prior).with_sequence(sequence))
        seen = train.item[rows]
        shortlist = _shortlist(signals, seen, plan.shortlist, fresh)
        listed = {name: values[shortlist] for name, values in signals.items()}
        scores = grid_scores(listed, choices, query.events)
        hits = np.flatnonzero(np.isin(shortlist, split.targets[user]))
        totals += ndcg_rows(scores, hits, plan.k, relevant=len(split.targets[user]))
        shortlisted.append((listed, query.events, fresh[shortlist], hits, len(split.targets[user])))
    users = len(split.targets)
    means = totals / users
    best = int(np.argmax(means))
    cases = [
        fresh_case(
            grid_scores(listed, [choices[best]], events_count)[0],
            np.ones(len(is_fresh), dtype=bool),
            is_fresh,
            hits,
            plan.k,
            relevant,
        )
        for listed, events_count, is_fresh, hits, relevant in shortlisted
    ]
    gate = choose_fresh_gate(cases, plan.k)
    weights = replace(choices[best], fresh_gate=gate.gate)
    won = fresh_target_hits(cases, gate.gate)
    return TunedBlend(weights, users, float(means[best]), float(means[0]), float(means[1]), gate, won)


def _candidates(item_ids: list[str], content: np.ndarray, has_content: np.ndarray, factors: ItemFactors) -> Candidates:
    row_of = {item_id: row for row, item_id in enumerate(item_ids)}
    dims = factors.vectors.shape[1] if factors.vectors.ndim == 2 else 0
    behavior = np.zeros((len(item_ids), max(dims, 1)), dtype=np.float32)
    has_behavior = np.zeros(len(item_ids), dtype=bool)
    strength = np.zeros(len(item_ids))
    for source, item_id in enumerate(factors.item_ids):
        row = row_of.get(item_id)
        if row is not None:
            behavior[row], has_behavior[row], strength[row] = factors.vectors[source], True, factors.strengths[source]
    return Candidates.of(item_ids, content, has_content, behavior, has_behavior, strength, np.zeros(len(item_ids)))


def _shortlist(
    signals: dict[str, np.ndarray], seen: np.ndarray, per_signal: int, fresh: np.ndarray | None = None
) -> np.ndarray:
    """The candidates some signal ranks in its top `per_signal` (what the user has seen left out), as rows; and,
    as the recommender fetches its fresh candidates, the `per_signal` fresh items nearest the user's taste (else
    session)."""
    allowed = np.ones(len(next(iter(signals.values()))), dtype=bool)
    allowed[seen] = False
    rows = np.flatnonzero(allowed)
    picked: set[int] = set()
    for values in signals.values():
        picked.update(_top_rows(values, rows, per_signal))
    if fresh is not None:
        anchor = signals.get(TASTE, signals.get(SESSION))
        if anchor is not None:
            picked.update(_top_rows(anchor, rows[fresh[rows]], per_signal))
    return np.asarray(sorted(picked), dtype=np.int64)


def _top_rows(values: np.ndarray, rows: np.ndarray, count: int) -> list[int]:
    finite = np.nan_to_num(np.asarray(values, dtype=np.float64)[rows], nan=-np.inf)
    count = min(count, len(rows))
    return rows[np.argpartition(-finite, count - 1)[:count]].tolist() if count else []


def _rows_by_user(events: EventColumns) -> dict[int, np.ndarray]:
    if len(events) == 0:
        return {}
    order = np.lexsort((events.item, events.ts, events.user))
    users, starts = np.unique(events.user[order], return_index=True)
    return {int(u): part for u, part in zip(users, np.split(order, starts[1:]), strict=True)}


def _replayed_profile(
    events: EventColumns, rows: np.ndarray, content: np.ndarray, has_content: np.ndarray, rules: InteractionRules
) -> UserProfile:
    """The user as ingestion would have left them after these events (rows in time order)."""
    profile = UserProfile(user_id=events.user_ids[int(events.user[rows[0]])] if len(rows) else "")
    for row in rows:
        item, ts, weight = int(events.item[row]), float(events.ts[row]), float(events.weight[row])
        # The log keeps the weight, not the type: the type only names the event here.
        event = Interaction.model_construct(
            event_id=str(row),
            user_id=profile.user_id,
            item_id=events.item_ids[item],
            type=InteractionType.CLICK,
            value=None,
            session_id=None,
            ts=ts,
        )
        profile.record(event, weight, ts, content[item] if has_content[item] else None, rules)
    return profile


def grid_scores(signals: dict[str, np.ndarray], choices: list[ForYouWeights], events: int) -> np.ndarray:
    """Scores of every candidate under every weight setting (rows): `blend` for all settings in one product."""
    names = [name for name in _SIGNALS if name in signals]
    values = np.vstack([np.nan_to_num(np.asarray(signals[name], dtype=np.float64), nan=0.0) for name in names])
    return _weights_for_user(choices, events)[:, [_SIGNALS.index(name) for name in names]] @ values


def _weights_for_user(choices: Sequence[ForYouWeights], events: int) -> np.ndarray:
    """ForYouWeights.for_user of every setting (rows; columns in _SIGNALS order): the same arithmetic in one array
    operation, since a dict per setting (over a thousand) and user cost more than scoring them."""
    table = np.array([(c.behavior, c.taste, c.session, c.popularity, c.sequence, c.evidence_k) for c in choices])
    behavior, taste, session, popularity, sequence, evidence_k = table.reshape(-1, 6).T
    if (evidence_k <= 0).any():
        raise ValueError(f"evidence_k must be positive, got {evidence_k.min()}")
    count = float(max(0, events))
    share = count / (count + evidence_k)
    return np.column_stack([behavior * share, taste + behavior * (1.0 - share), session, popularity, sequence])


def ndcg_rows(scores: np.ndarray, targets: np.ndarray, k: int, relevant: int | None = None) -> np.ndarray:
    """NDCG@k of each row's top k against the targets (columns); the ideal puts all `relevant` targets first
    (default: len(targets); more when some targets are not among the scored columns)."""
    relevant = len(targets) if relevant is None else relevant
    k = min(k, scores.shape[1])
    if k == 0 or relevant == 0:
        return np.zeros(len(scores))
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    ordered = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable"), 1)
    finite = np.isfinite(np.take_along_axis(scores, ordered, axis=1))
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    gains = (np.isin(ordered, targets) & finite) @ discounts
    ideal = (1.0 / np.log2(np.arange(2, min(relevant, k) + 2))).sum()
    return gains / ideal


class _PopularityClock:
    """Every item's decayed popularity at increasing request times: what each item point would have held then.

    The same rule as ItemActivity (each positive weight added, decayed with the popularity half-life),
    advanced in time order so one vector serves all requests.
    """

    def __init__(self, events: EventColumns, half_life_s: float) -> None:
        positive = np.flatnonzero(events.weight > 0)
        order = positive[np.argsort(events.ts[positive], kind="stable")]
        self._ts = events.ts[order]
        self._item = events.item[order]
        self._weight = events.weight[order]
        self._half_life_s = half_life_s
        self._values = np.zeros(len(events.item_ids))
        self._now = -math.inf
        self._next = 0

    def at(self, now: float) -> np.ndarray:
        """The popularity of every item counting events strictly before `now` (calls must not go back in time)."""
        if now < self._now:
            raise ValueError("popularity is read in time order")
        end = int(np.searchsorted(self._ts, now, side="left"))
        if math.isfinite(self._now):
            self._values *= math.pow(0.5, (now - self._now) / self._half_life_s)
        if end > self._next:
            ages = now - self._ts[self._next : end]
            np.add.at(
                self._values,
                self._item[self._next : end],
                self._weight[self._next : end] * 0.5 ** (ages / self._half_life_s),
            )
            self._next = end
        self._now = now
        return self._values.copy()
