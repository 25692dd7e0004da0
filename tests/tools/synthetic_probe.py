"""Is the synthetic catalog's truth learnable? NDCG@10 of simple scorers on each user's last positives, no model.

Run: .venv/bin/python -m tests.tools.synthetic_probe [--users N --items N --seed S]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from recsys.tools.synthetic_catalog import SyntheticCatalog, SyntheticConfig, generate

POSITIVE_TYPES = ("click", "add_to_cart", "purchase", "like")
HELD_OUT = 5
K = 10


@dataclass(frozen=True)
class Request:
    """One evaluated user: the items to find after `cutoff`, and what the user did before it."""

    user: int
    cutoff: float
    targets: np.ndarray  # distinct item rows
    seen: np.ndarray  # item rows of the user's events before the cutoff
    seen_ts: np.ndarray


def holdout(catalog: SyntheticCatalog, held_out: int = HELD_OUT) -> list[Request]:
    """Per user with more than `held_out` positives: the last `held_out` positives are the targets."""
    log = catalog.log
    positive = np.isin(log.type, POSITIVE_TYPES)
    requests = []
    for user in range(len(catalog.user_ids)):
        rows = np.flatnonzero(log.user == user)  # the log is in time order
        positives = rows[positive[rows]]
        if len(positives) <= held_out:
            continue
        cutoff = float(log.ts[positives[-held_out]])
        before = rows[log.ts[rows] < cutoff]
        requests.append(Request(user, cutoff, np.unique(log.item[positives[-held_out:]]), log.item[before],
                                log.ts[before]))  # fmt: skip
    return requests


def ndcg_at_k(scores: np.ndarray, request: Request) -> float:
    scores = scores.astype(float).copy()
    scores[request.seen] = -np.inf  # seen items are never recommended, as in ForYou
    top = np.argsort(-scores, kind="stable")[:K]
    gains = np.isin(top, request.targets) / np.log2(np.arange(2, K + 2))
    ideal = (1.0 / np.log2(np.arange(2, min(len(request.targets), K) + 2))).sum()
    return float(gains.sum() / ideal)


def true_affinity(catalog: SyntheticCatalog, request: Request, communities: bool, popularity: bool) -> np.ndarray:
    """The generating model's chance of each item for this user at the cutoff (cold items as released by the end)."""
    config = catalog.config
    taste = catalog.user_tastes.of(np.array([request.user]), np.array([request.cutoff]))[0]
    score = taste[catalog.item_topics].copy()
    if communities:
        favourite = catalog.user_communities[request.user, catalog.item_topics] == catalog.item_communities
        loyalty = config.community_loyalty
        score *= np.where(favourite, loyalty + (1 - loyalty) / config.communities, (1 - loyalty) / config.communities)
    if popularity:
        groups = catalog.item_topics * config.communities + catalog.item_communities
        cold = catalog.item_release_ts > config.start_ts
        weight = np.where(cold, 0.0, catalog.item_popularity)
        group_weight = np.bincount(groups, weights=weight)[groups]
        score *= (1 - config.explore) * (1 - config.cold_pull) * weight / np.maximum(group_weight, 1e-12)
        score += config.explore * weight / weight.sum()
        cold_per_topic = np.bincount(catalog.item_topics[cold], minlength=config.topics)[catalog.item_topics]
        score += np.where(cold, config.cold_pull * taste[catalog.item_topics] / np.maximum(cold_per_topic, 1), 0.0)
    return score


def scorers(catalog: SyntheticCatalog, seed: int) -> dict[str, Callable[[Request], np.ndarray]]:
    log, items = catalog.log, len(catalog.item_ids)
    rng = np.random.default_rng(seed)
    topics = catalog.config.topics
    tie_break = rng.random(items) * 1e-9

    def popularity(request: Request) -> np.ndarray:
        return np.bincount(log.item[log.ts < request.cutoff], minlength=items) + tie_break

    def recent_topics(request: Request) -> np.ndarray:
        # What a content model can learn: the user's own topic mix, recent events weighing more.
        weights = np.exp((request.seen_ts - request.cutoff) / (catalog.config.span_s / 6))
        mix = np.bincount(catalog.item_topics[request.seen], weights=weights, minlength=topics)
        return mix[catalog.item_topics] * (1 + np.log1p(popularity(request)))

    return {
        "random": lambda request: rng.random(items),
        "popularity": popularity,
        "user's recent topics × popularity (learnable)": recent_topics,
        "true topic affinity": lambda r: true_affinity(catalog, r, communities=False, popularity=False) + tie_break,
        "true topic × popularity": lambda r: true_affinity(catalog, r, communities=False, popularity=True),
        "true topic × community × popularity": lambda r: true_affinity(catalog, r, communities=True, popularity=True),
    }


def probe(catalog: SyntheticCatalog, seed: int = 0) -> dict[str, float]:
    """Mean NDCG@10 of each scorer over the held-out users."""
    requests = holdout(catalog)
    return {
        name: float(np.mean([ndcg_at_k(score(request), request) for request in requests]))
        for name, score in scorers(catalog, seed).items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=SyntheticConfig.users)
    parser.add_argument("--items", type=int, default=SyntheticConfig.items)
    parser.add_argument("--seed", type=int, default=SyntheticConfig.seed)
    args = parser.parse_args()
    catalog = generate(SyntheticConfig(users=args.users, items=args.items, seed=args.seed))
    requests = holdout(catalog)
    cold = np.array([row for row, item_id in enumerate(catalog.item_ids) if item_id in catalog.cold_items])
    targets = np.concatenate([request.targets for request in requests])
    print(f"{len(catalog.items)} items, {len(catalog.interactions)} interactions, {len(requests)} evaluated users,"
          f" {np.isin(targets, cold).sum()} of {len(targets)} targets cold")  # fmt: skip
    for name, value in probe(catalog, args.seed).items():
        print(f"NDCG@{K} {value:.4f}  {name}")


if __name__ == "__main__":
    main()
