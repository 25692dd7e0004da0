"""A synthetic catalog with a known truth, to check the recommender's claims on data it has never seen.

The truth gives each signal something to find:

- content: an item belongs to one topic and its text is made of that topic's words; users' tastes are
  mixtures of topics, so text similarity predicts taste;
- collaboration: each topic splits into communities whose items share no distinctive words; every user
  has a favourite community per topic, so co-consumption carries what the text cannot;
- popularity: a power law over all items;
- recency: tastes drift from a start mixture to an end mixture, so recent events say more;
- repeats: consumable items are bought again after a while, other items are bought once;
- cold items: released near the end of the span, then pulled up by their novelty.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recsys.tools.synthetic_texts import TOPICS, item_text

# Enough events that a user keeps training events beside five held-out positives.
_MIN_EVENTS_PER_USER = 12
# Cold items are released within this part of the span (fractions of it).
_COLD_RELEASE = (0.90, 0.97)
# A consumable is bought again this long after the previous purchase (fractions of the span).
_REPEAT_INTERVAL = (0.04, 0.12)
_SECONDS_BETWEEN_SESSION_EVENTS = 120.0


@dataclass(frozen=True)
class SyntheticConfig:
    """Sizes and the strength of each signal; the defaults make a catalog small enough for a test."""

    users: int = 300
    items: int = 400
    topics: int = 8
    # Per topic: groups of items co-consumed by the same users whose texts share no distinctive words.
    communities: int = 3
    events_per_user: float = 40.0  # the mean of a Poisson draw per user (at least 12)
    popularity_exponent: float = 0.8  # item weight = rank^-exponent
    drift: float = 0.6  # 0: a user's taste never moves; 1: the end taste is unrelated to the start taste
    consumable_share: float = 0.1
    repeat_probability: float = 0.6  # after each purchase of a consumable, the chance of buying it again
    cold_share: float = 0.05
    type_mix: tuple[tuple[str, float], ...] = (("view", 0.5), ("click", 0.3), ("purchase", 0.2))
    start_ts: float = 1_700_000_000.0
    span_days: float = 90.0
    seed: int = 0
    # Dirichlet concentration of tastes over topics: small values give users one or two main topics.
    taste_concentration: float = 0.3
    community_loyalty: float = 0.8  # the chance an event of a topic goes to the user's favourite community
    session_focus: float = 0.8  # the chance an event stays on its session's topic
    session_length: float = 4.0  # mean events per session
    explore: float = 0.05  # the chance an event is drawn from global popularity, whatever the taste
    cold_pull: float = 0.3  # the chance an event goes to a released cold item of its topic
    text_noise: float = 0.15  # the chance an item's text borrows one word from another topic

    def __post_init__(self) -> None:
        if not 1 <= self.topics <= len(TOPICS):
            raise ValueError(f"topics must be 1..{len(TOPICS)}, got {self.topics}")
        if self.users < 1 or self.communities < 1 or self.events_per_user <= 0:
            raise ValueError("users, communities and events_per_user must be positive")
        if self.items < 2 * self.topics * self.communities:
            raise ValueError(f"items must be at least 2 × topics × communities = {2 * self.topics * self.communities}")
        if round(self.cold_share * self.items) > self.items - self.topics * self.communities:
            raise ValueError("cold_share leaves a community without an item that is there from the start")
        shares = (self.drift, self.consumable_share, self.repeat_probability, self.cold_share, self.community_loyalty,
                  self.session_focus, self.explore, self.cold_pull, self.text_noise)  # fmt: skip
        if not all(0.0 <= share <= 1.0 for share in shares) or self.repeat_probability >= 1.0:
            raise ValueError("shares and probabilities must lie in [0, 1] (repeat_probability below 1)")
        if not self.type_mix or any(w < 0 for _, w in self.type_mix) or sum(w for _, w in self.type_mix) <= 0:
            raise ValueError("type_mix needs at least one positive weight")

    @property
    def span_s(self) -> float:
        return self.span_days * 86_400.0

    @property
    def end_ts(self) -> float:
        return self.start_ts + self.span_s


@dataclass(frozen=True)
class UserTastes:
    """Each user's mixture over topics, moving linearly from `start` (at start_ts) to `end` (at end_ts)."""

    start: np.ndarray  # (users, topics), rows sum to 1
    end: np.ndarray
    start_ts: float
    end_ts: float

    def of(self, users: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """The tastes of `users[k]` at `ts[k]`: (len(users), topics)."""
        progress = np.clip((np.asarray(ts, dtype=float) - self.start_ts) / (self.end_ts - self.start_ts), 0.0, 1.0)
        return (1.0 - progress)[:, None] * self.start[users] + progress[:, None] * self.end[users]

    def at(self, ts: float) -> np.ndarray:
        """Every user's taste at `ts`: (users, topics)."""
        users = np.arange(len(self.start))
        return self.of(users, np.full(len(users), ts))


@dataclass(frozen=True)
class InteractionLog:
    """The interactions as parallel arrays, in the order of SyntheticCatalog.interactions."""

    user: np.ndarray  # user rows
    item: np.ndarray  # item rows
    type: np.ndarray  # object array of interaction type names
    ts: np.ndarray
    session: np.ndarray

    def __len__(self) -> int:
        return len(self.user)


@dataclass(frozen=True)
class SyntheticCatalog:
    """The payloads to publish and the truth that produced them; arrays are indexed by item and user rows."""

    config: SyntheticConfig
    items: list[dict[str, Any]]  # item.upserted payloads in publication order (cold items last)
    interactions: list[dict[str, Any]]  # interaction payloads in time order
    log: InteractionLog
    item_ids: list[str]  # item row -> item_id
    user_ids: list[str]  # user row -> user_id
    topic_names: list[str]
    item_topics: np.ndarray
    item_communities: np.ndarray
    item_popularity: np.ndarray  # the power-law weight (unnormalized)
    item_release_ts: np.ndarray
    user_tastes: UserTastes
    user_communities: np.ndarray  # (users, topics): each user's favourite community in each topic
    cold_items: frozenset[str] = field(default_factory=frozenset)
    consumable_items: frozenset[str] = field(default_factory=frozenset)


def generate(config: SyntheticConfig | None = None) -> SyntheticCatalog:
    """The catalog and the interactions of `config`; the same config always gives the same catalog."""
    config = config or SyntheticConfig()
    rng = np.random.default_rng(config.seed)
    items, topics, communities = config.items, config.topics, config.communities

    item_topics, item_communities = _assign_groups(rng, items, topics, communities)
    popularity = np.power(rng.permutation(items) + 1.0, -config.popularity_exponent)
    # The first item of each community is never cold, so every community has items from the start.
    always_there = np.flatnonzero(_rank_in_topic(item_topics) >= communities)
    cold = np.sort(rng.choice(always_there, size=round(config.cold_share * items), replace=False))
    release = np.full(items, config.start_ts)
    release[cold] = config.start_ts + config.span_s * rng.uniform(*_COLD_RELEASE, size=len(cold))
    warm = np.setdiff1d(np.arange(items), cold)
    consumable = np.sort(rng.choice(warm, size=min(round(config.consumable_share * items), len(warm)), replace=False))

    tastes = UserTastes(*_tastes(rng, config), start_ts=config.start_ts, end_ts=config.end_ts)
    favourite = rng.integers(communities, size=(config.users, topics))
    log = _interactions(rng, config, tastes, favourite, item_topics, item_communities, popularity, release, consumable)

    item_ids = _ids("i", items)
    user_ids = _ids("u", config.users)
    payloads = _item_payloads(rng, config, item_ids, item_topics, release, consumable)
    return SyntheticCatalog(
        config=config,
        items=[payloads[row] for row in np.argsort(release, kind="stable")],
        interactions=_interaction_payloads(log, item_ids, user_ids),
        log=log,
        item_ids=item_ids,
        user_ids=user_ids,
        topic_names=[topic.name for topic in TOPICS[:topics]],
        item_topics=item_topics,
        item_communities=item_communities,
        item_popularity=popularity,
        item_release_ts=release,
        user_tastes=tastes,
        user_communities=favourite,
        cold_items=frozenset(item_ids[row] for row in cold),
        consumable_items=frozenset(item_ids[row] for row in consumable),
    )


def write_jsonl(catalog: SyntheticCatalog, folder: Path) -> tuple[Path, Path]:
    """Writes items.jsonl and interactions.jsonl (the files `recsys publish` reads); returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = (folder / "items.jsonl", folder / "interactions.jsonl")
    for path, payloads in zip(paths, (catalog.items, catalog.interactions), strict=True):
        path.write_text("".join(json.dumps(payload) + "\n" for payload in payloads), encoding="utf-8")
    return paths


def _ids(prefix: str, count: int) -> list[str]:
    width = len(str(count - 1))
    return [f"{prefix}{row:0{width}d}" for row in range(count)]


def _rank_in_topic(item_topics: np.ndarray) -> np.ndarray:
    """Each item's position among the items of its topic (0, 1, 2, ...)."""
    order = np.argsort(item_topics, kind="stable")
    starts = np.searchsorted(item_topics[order], item_topics[order])
    rank = np.empty(len(item_topics), dtype=np.int64)
    rank[order] = np.arange(len(order)) - starts
    return rank


def _assign_groups(rng: np.random.Generator, items: int, topics: int, communities: int) -> tuple[np.ndarray, ...]:
    item_topics = rng.permutation(np.arange(items) % topics)
    return item_topics, _rank_in_topic(item_topics) % communities


def _tastes(rng: np.random.Generator, config: SyntheticConfig) -> tuple[np.ndarray, np.ndarray]:
    alpha = np.full(config.topics, config.taste_concentration)
    start = rng.dirichlet(alpha, size=config.users)
    end = (1.0 - config.drift) * start + config.drift * rng.dirichlet(alpha, size=config.users)
    return start, end


def _categorical(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One draw per row of `probabilities` (rows sum to 1)."""
    cumulative = np.cumsum(probabilities, axis=1)
    draws = (cumulative < rng.random(len(probabilities))[:, None] * cumulative[:, -1:]).sum(axis=1)
    return np.minimum(draws, probabilities.shape[1] - 1)


def _weighted_pick(rng: np.random.Generator, candidates: np.ndarray, weights: np.ndarray, count: int) -> np.ndarray:
    cumulative = np.cumsum(weights)
    picks = np.searchsorted(cumulative, rng.random(count) * cumulative[-1], side="right")
    return candidates[np.minimum(picks, len(candidates) - 1)]


def _interactions(
    rng: np.random.Generator,
    config: SyntheticConfig,
    tastes: UserTastes,
    favourite: np.ndarray,
    item_topics: np.ndarray,
    item_communities: np.ndarray,
    popularity: np.ndarray,
    release: np.ndarray,
    consumable: np.ndarray,
) -> InteractionLog:
    # Sessions: each user's events fall into sessions spread uniformly over the span.
    per_user = np.maximum(rng.poisson(config.events_per_user, config.users), _MIN_EVENTS_PER_USER)
    sessions_per_user = np.ceil(per_user / config.session_length).astype(np.int64)
    session_user = np.repeat(np.arange(config.users), sessions_per_user)
    usable_s = config.span_s - 86_400.0  # the last day stays free, so no session runs past the end
    session_ts = config.start_ts + usable_s * rng.random(len(session_user))
    user = np.repeat(np.arange(config.users), per_user)
    first_session = np.concatenate(([0], np.cumsum(sessions_per_user)[:-1]))
    session = first_session[user] + (rng.random(len(user)) * sessions_per_user[user]).astype(np.int64)
    order = np.lexsort((rng.random(len(user)), session))
    user, session = user[order], session[order]
    position = np.arange(len(session)) - np.searchsorted(session, session)
    ts = session_ts[session] + position * _SECONDS_BETWEEN_SESSION_EVENTS + 60.0 * rng.random(len(session))

    # Topic: mostly the session's, drawn from the taste of the moment; community: mostly the user's favourite.
    session_topic = _categorical(rng, tastes.of(session_user, session_ts))
    own_topic = _categorical(rng, tastes.of(user, ts))
    topic = np.where(rng.random(len(user)) < config.session_focus, session_topic[session], own_topic)
    loyal = rng.random(len(user)) < config.community_loyalty
    community = np.where(loyal, favourite[user, topic], rng.integers(config.communities, size=len(user)))

    item = np.empty(len(user), dtype=np.int64)
    is_warm = release <= config.start_ts
    groups = topic * config.communities + community
    item_groups = item_topics * config.communities + item_communities
    for group in range(config.topics * config.communities):
        rows = np.flatnonzero(groups == group)
        candidates = np.flatnonzero((item_groups == group) & is_warm)
        item[rows] = _weighted_pick(rng, candidates, popularity[candidates], len(rows))
    exploring = rng.random(len(user)) < config.explore
    warm_items = np.flatnonzero(is_warm)
    item[exploring] = _weighted_pick(rng, warm_items, popularity[warm_items], int(exploring.sum()))
    pulled = (rng.random(len(user)) < config.cold_pull) & ~exploring
    for topic_row in range(config.topics):
        cold_here = np.flatnonzero((item_topics == topic_row) & ~is_warm)
        cold_here = cold_here[np.argsort(release[cold_here], kind="stable")]
        rows = np.flatnonzero(pulled & (topic == topic_row))
        released = np.searchsorted(release[cold_here], ts[rows], side="right")
        rows, released = rows[released > 0], released[released > 0]
        item[rows] = cold_here[(rng.random(len(rows)) * released).astype(np.int64)]

    names = np.array([name for name, _ in config.type_mix], dtype=object)
    weights = np.array([w for _, w in config.type_mix], dtype=float)
    kind = names[_weighted_pick(rng, np.arange(len(names)), weights, len(user))]
    kind = _bought_once(user, item, ts, kind, consumable)
    return _with_repeats(rng, config, InteractionLog(user, item, kind, ts, session), consumable)


def _bought_once(
    user: np.ndarray, item: np.ndarray, ts: np.ndarray, kind: np.ndarray, consumable: np.ndarray
) -> np.ndarray:
    """A durable item is bought once: a later purchase of the same item by the same user becomes a view."""
    purchases = np.flatnonzero((kind == "purchase") & ~np.isin(item, consumable))
    order = purchases[np.lexsort((ts[purchases], item[purchases], user[purchases]))]
    again = (user[order][1:] == user[order][:-1]) & (item[order][1:] == item[order][:-1])
    kind = kind.copy()
    kind[order[1:][again]] = "view"
    return kind


def _with_repeats(
    rng: np.random.Generator, config: SyntheticConfig, log: InteractionLog, consumable: np.ndarray
) -> InteractionLog:
    """Every purchase of a consumable is followed by another after a while, with repeat_probability."""
    rows = np.flatnonzero((log.type == "purchase") & np.isin(log.item, consumable))
    users, items, ts = log.user[rows], log.item[rows], log.ts[rows]
    added: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    while len(users):
        again = rng.random(len(users)) < config.repeat_probability
        later = ts + config.span_s * rng.uniform(*_REPEAT_INTERVAL, size=len(ts))
        keep = again & (later < config.end_ts)
        users, items, ts = users[keep], items[keep], later[keep]
        added.append((users, items, ts))
    new_user = np.concatenate([log.user, *(a[0] for a in added)])
    new_item = np.concatenate([log.item, *(a[1] for a in added)])
    new_ts = np.concatenate([log.ts, *(a[2] for a in added)])
    repeats = len(new_user) - len(log)
    new_kind = np.concatenate([log.type, np.full(repeats, "purchase", dtype=object)])
    # A repeat purchase is a visit of its own: a session nobody else shares.
    new_session = np.concatenate([log.session, log.session.max() + 1 + np.arange(repeats)])
    order = np.lexsort((new_item, new_user, new_ts))
    return InteractionLog(new_user[order], new_item[order], new_kind[order], new_ts[order], new_session[order])


def _item_payloads(
    rng: np.random.Generator,
    config: SyntheticConfig,
    item_ids: list[str],
    item_topics: np.ndarray,
    release: np.ndarray,
    consumable: np.ndarray,
) -> list[dict[str, Any]]:
    is_consumable = np.isin(np.arange(len(item_ids)), consumable)
    payloads = []
    for row, item_id in enumerate(item_ids):
        topic = TOPICS[item_topics[row]]
        noise = None
        if rng.random() < config.text_noise:
            others = [other for index, other in enumerate(TOPICS[: config.topics]) if index != item_topics[row]]
            noise = others[rng.integers(len(others))] if others else None
        text = item_text(rng, topic, bool(is_consumable[row]), noise)
        payloads.append(
            {
                "item_id": item_id,
                "title": text.title,
                "text": text.text,
                "tags": text.tags,
                "category": text.category,
                "attributes": {"price": round(float(rng.lognormal(3.0, 0.8)), 2)},
                "version": 1,
                "ts": round(float(release[row]), 3),
            }
        )
    return payloads


def _interaction_payloads(log: InteractionLog, item_ids: list[str], user_ids: list[str]) -> list[dict[str, Any]]:
    width = len(str(max(len(log) - 1, 0)))
    return [
        {
            "event_id": f"e{number:0{width}d}",
            "user_id": user_ids[user],
            "item_id": item_ids[item],
            "type": kind,
            "ts": round(ts, 3),
            "session_id": f"s{session}",
        }
        for number, (user, item, kind, ts, session) in enumerate(
            zip(
                log.user.tolist(),
                log.item.tolist(),
                log.type.tolist(),
                log.ts.tolist(),
                log.session.tolist(),
                strict=True,
            )
        )
    ]
