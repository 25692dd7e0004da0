"""The offline evaluation: split, replay through the services' code, tune on validation, score against baselines."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from recsys.encoder.interactions.role import refresh_policy
from recsys.encoder.interactions.rules import EventWeights, InteractionRules
from recsys.encoder.settings import EncoderSettings
from recsys.recommender.blending import (
    Candidates,
    ForYouWeights,
    blend,
    decayed_popularity,
    for_you_signals,
    popularity_prior,
)
from recsys.recommender.exposure import with_fresh_share
from recsys.recommender.ranking import feed_order
from recsys.recommender.settings import RecommenderSettings
from recsys.tools.evaluation import baselines
from recsys.tools.evaluation.content import content_vectors
from recsys.tools.evaluation.dataset import MovieLens, Ratings, catalog_events, load_movielens
from recsys.tools.evaluation.metrics import Interval, intra_list_diversity, paired_bootstrap, ranking_scores
from recsys.tools.evaluation.replay import ReplayResult, catalog_candidates, replay, user_query
from recsys.tools.evaluation.split import Split, holdout_split, sample_users, tags_without_held_out

K = 10
COLD_ITEM_INTERACTIONS = 3
FRESH_SHARE = 0.1
# The validation grid; behavior stays at 1, so the others are relative to it.
TASTE_GRID = (0.0, 0.02, 0.05, 0.1)
SESSION_GRID = (0.0, 0.02, 0.05)
POPULARITY_GRID = (0.0, 0.02, 0.05, 0.1)
EVIDENCE_GRID = (1.0, 5.0, 20.0)


@dataclass(frozen=True)
class EvalConfig:
    dataset: Path
    users: int | None = None
    seed: int = 0
    cache_dir: Path = Path("recsys-data/eval-cache")
    progress: bool = True
    tune: bool = True
    bootstrap: int = 2000
    als_factors: tuple[int, ...] = (32, 64, 128)
    bpr_factors: tuple[int, ...] = (64, 128)


@dataclass
class MethodResult:
    name: str
    ndcg: np.ndarray
    recall: np.ndarray
    hit: np.ndarray
    coverage: float
    diversity: float
    cold_hit_rate: float
    seconds: float
    is_baseline: bool = True


@dataclass
class EvalReport:
    methods: list[MethodResult]
    primary: str
    weights: ForYouWeights
    users: int
    train_interactions: int
    cold_targets: int
    timings: dict[str, float] = field(default_factory=dict)

    def method(self, name: str) -> MethodResult:
        return next(m for m in self.methods if m.name == name)

    def best_baseline(self) -> MethodResult:
        return max((m for m in self.methods if m.is_baseline), key=lambda m: float(m.ndcg.mean()))

    def interval_against(self, other: MethodResult, resamples: int) -> Interval:
        return paired_bootstrap(self.method(self.primary).ndcg, other.ndcg, resamples)


@dataclass(frozen=True)
class _Prepared:
    data: MovieLens
    split: Split
    content: np.ndarray
    encoder: EncoderSettings
    recommender: RecommenderSettings


def evaluate(
    config: EvalConfig, encoder: EncoderSettings | None = None, recommender: RecommenderSettings | None = None
) -> EvalReport:
    timings: dict[str, float] = {}
    started = time.monotonic()
    encoder = encoder or EncoderSettings()
    recommender = recommender or RecommenderSettings()
    data = load_movielens(config.dataset)
    full_split = holdout_split(data.ratings)
    split = sample_users(full_split, config.users, config.seed)
    # Tags are filtered against every user's held-out items, so the catalog text (and its cache) is one.
    tags = tags_without_held_out(data.tags, data.ratings, full_split)
    texts = [event.content_text() for event in catalog_events(data.movies, tags)]
    content = content_vectors(texts, encoder, config.cache_dir, config.progress)
    timings["load_and_embed_s"] = time.monotonic() - started
    prepared = _Prepared(data, split, content, encoder, recommender)

    defaults = recommender.for_you_weights()
    weights = defaults
    if config.tune:
        tuning_started = time.monotonic()
        weights = tune_weights(prepared, config)
        timings["tuning_s"] = time.monotonic() - tuning_started

    replay_started = time.monotonic()
    replayed = _replay(prepared, data.ratings, split, config.progress)
    timings["replay_and_fit_s"] = time.monotonic() - replay_started
    candidates = catalog_candidates(data.ratings.item_ids, content, replayed.factors)
    train_items = _items_by_user(data.ratings, split.train)
    counts = np.bincount(data.ratings.item[split.train], minlength=len(data.ratings.item_ids))
    cold = counts < COLD_ITEM_INTERACTIONS

    methods: list[MethodResult] = []
    blends = {"blended (tuned on validation)": weights} if config.tune else {}
    blends["blended (service defaults)"] = defaults
    for name, blend_weights in blends.items():
        methods.append(
            _score_method(
                name,
                _blend_scorer(replayed, candidates, blend_weights),
                split,
                train_items,
                candidates,
                cold,
                config.progress,
                is_baseline=False,
            )
        )
    # The same blend with the recommender's fresh-item exposure: cold items (as "fresh") get their share of slots.
    methods.append(
        _score_method(
            f"blended + {FRESH_SHARE:.0%} fresh slots",
            _blend_scorer(replayed, candidates, weights),
            split,
            train_items,
            candidates,
            cold,
            config.progress,
            is_baseline=False,
            fresh_share=FRESH_SHARE,
        )
    )
    content_only = replace(defaults, behavior=0.0, taste=1.0, session=0.0, popularity=0.0)
    methods.append(
        _score_method(
            "content only (taste)",
            _blend_scorer(replayed, candidates, content_only),
            split,
            train_items,
            candidates,
            cold,
            config.progress,
        )
    )
    matrix = baselines.interactions(
        data.ratings.user[split.train],
        data.ratings.item[split.train],
        len(data.ratings.user_ids),
        len(data.ratings.item_ids),
    )
    factories: list[tuple[str, Callable[[], baselines.Scorer]]] = [
        ("popularity", lambda: baselines.popularity(matrix)),
        ("item-kNN (cosine co-occurrence)", lambda: baselines.item_knn(matrix)),
    ]
    factories += [(f"ALS {f} factors", lambda f=f: baselines.als(matrix, f, config.seed)) for f in config.als_factors]  # type: ignore[misc]
    factories += [(f"BPR {f} factors", lambda f=f: baselines.bpr(matrix, f, config.seed)) for f in config.bpr_factors]  # type: ignore[misc]
    for name, factory in factories:
        fit_started = time.monotonic()
        scorer = factory()
        fit_s = time.monotonic() - fit_started
        result = _score_method(name, scorer, split, train_items, candidates, cold, config.progress)
        result.seconds += fit_s
        methods.append(result)
    primary = methods[0].name
    timings["total_s"] = time.monotonic() - started
    cold_targets = sum(int(cold[targets].sum()) for targets in split.targets.values())
    return EvalReport(methods, primary, weights, len(split.targets), len(split.train), cold_targets, timings)


def _replay(prepared: _Prepared, ratings: Ratings, split: Split, progress: bool) -> ReplayResult:
    recommender = prepared.recommender

    def prior(popularity: np.ndarray, popularity_ts: np.ndarray, now: float) -> np.ndarray:
        decayed = decayed_popularity(popularity, popularity_ts, now, recommender.popularity_half_life_days)
        return popularity_prior(decayed, recommender.popularity_midpoint)

    return replay(
        ratings,
        split.train,
        split.cutoff,
        prepared.content,
        EventWeights.from_settings(prepared.encoder),
        InteractionRules.from_settings(prepared.encoder),
        refresh_policy(prepared.encoder),
        prior,
        progress,
    )


def _items_by_user(ratings: Ratings, rows: np.ndarray) -> dict[int, np.ndarray]:
    order = rows[np.argsort(ratings.user[rows], kind="stable")]
    users, starts = np.unique(ratings.user[order], return_index=True)
    return {int(u): ratings.item[part] for u, part in zip(users, np.split(order, starts[1:]), strict=True)}


def _blend_scorer(replayed: ReplayResult, candidates: Candidates, weights: ForYouWeights) -> baselines.Scorer:
    def score(user: int) -> np.ndarray:
        profile = replayed.profiles.get(user)
        items = candidates.with_popularity(replayed.popularity.get(user, np.zeros(len(candidates))))
        query = user_query(profile)
        return blend(for_you_signals(query, items), weights.for_user(query.events)).scores

    return score


def _score_method(
    name: str,
    scorer: baselines.Scorer,
    split: Split,
    train_items: dict[int, np.ndarray],
    candidates: Candidates,
    cold: np.ndarray,
    progress: bool,
    is_baseline: bool = True,
    fresh_share: float = 0.0,
) -> MethodResult:
    started = time.monotonic()
    ndcg, recall, hit = [], [], []
    recommended: set[int] = set()
    diversity = []
    cold_hits = cold_total = 0
    for user in tqdm(split.users, desc=name, unit="user", disable=not progress, leave=False):
        ranked = top_k(scorer(user), train_items.get(user, np.zeros(0, dtype=np.int64)), candidates, cold, fresh_share)
        targets = {int(t) for t in split.targets[user]}
        scores = ranking_scores(ranked, targets, K)
        ndcg.append(scores.ndcg)
        recall.append(scores.recall)
        hit.append(scores.hit)
        recommended.update(ranked)
        diversity.append(intra_list_diversity(ranked, candidates.content))
        cold_targets = {t for t in targets if cold[t]}
        cold_total += len(cold_targets)
        cold_hits += len(cold_targets & set(ranked))
    return MethodResult(
        name,
        np.asarray(ndcg),
        np.asarray(recall),
        np.asarray(hit),
        len(recommended) / len(candidates),
        float(np.mean(diversity)) if diversity else 0.0,
        cold_hits / cold_total if cold_total else 0.0,
        time.monotonic() - started,
        is_baseline,
    )


def top_k(
    scores: np.ndarray,
    seen: np.ndarray,
    candidates: Candidates,
    fresh: np.ndarray | None = None,
    fresh_share: float = 0.0,
) -> list[int]:
    """Full ranking over the catalog minus what the user saw in training, through the recommender's ordering
    and, with a fresh share, its exposure of fresh items."""
    allowed = np.ones(len(candidates), dtype=bool)
    allowed[seen] = False
    ranked = feed_order(scores, allowed, K, 1.0, candidates.content)
    if fresh_share <= 0 or fresh is None:
        return ranked
    fresh_ranked = feed_order(scores, allowed & fresh, K, 1.0, candidates.content)
    return with_fresh_share(ranked, fresh_ranked, fresh_share, K)


def tune_weights(prepared: _Prepared, config: EvalConfig) -> ForYouWeights:
    """The weights with the best NDCG@10 on a validation split made inside the training data only.

    Each evaluated user's training prefix is split again by the same protocol (its own last
    positives held out), so the test targets never influence the defaults.
    """
    ratings = prepared.data.ratings.subset(prepared.split.train)
    validation = sample_users(holdout_split(ratings), config.users, config.seed + 1)
    replayed = _replay(prepared, ratings, validation, config.progress)
    candidates = catalog_candidates(ratings.item_ids, prepared.content, replayed.factors)
    train_items = _items_by_user(ratings, validation.train)
    grid = list(itertools.product(TASTE_GRID, SESSION_GRID, POPULARITY_GRID, EVIDENCE_GRID))
    totals = np.zeros(len(grid))
    for user in tqdm(validation.users, desc="tuning blend weights", unit="user", disable=not config.progress):
        profile = replayed.profiles.get(user)
        query = user_query(profile)
        items = candidates.with_popularity(replayed.popularity.get(user, np.zeros(len(candidates))))
        signals = for_you_signals(query, items)
        seen = train_items.get(user, np.zeros(0, dtype=np.int64))
        targets = {int(t) for t in validation.targets[user]}
        for index, (taste, session, popularity, evidence_k) in enumerate(grid):
            weights = ForYouWeights(1.0, taste, session, popularity, evidence_k)
            scores = blend(signals, weights.for_user(query.events)).scores
            totals[index] += ranking_scores(top_k(scores, seen, candidates), targets, K).ndcg
    taste, session, popularity, evidence_k = grid[int(np.argmax(totals))]
    return ForYouWeights(1.0, taste, session, popularity, evidence_k)


def format_report(report: EvalReport, resamples: int) -> str:
    """The results table (markdown), the comparison against the best baseline, the cold-item check."""
    primary = report.method(report.primary)
    lines = [
        f"users evaluated: {report.users}; training interactions: {report.train_interactions}; "
        f"held-out targets on cold items (< {COLD_ITEM_INTERACTIONS} training interactions): {report.cold_targets}",
        f"blend weights: behavior {report.weights.behavior:g}, taste {report.weights.taste:g}, "
        f"session {report.weights.session:g}, popularity {report.weights.popularity:g}, "
        f"user evidence k {report.weights.evidence_k:g}",
        "",
        "| method | NDCG@10 | Recall@10 | HR@10 | coverage | diversity | cold-item HR | "
        f"ΔNDCG@10 of {report.primary} [95% CI] | seconds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for method in report.methods:
        if method.name == report.primary:
            delta = "—"
        else:
            interval = report.interval_against(method, resamples)
            delta = f"{interval.mean:+.4f} [{interval.low:+.4f}, {interval.high:+.4f}]"
        lines.append(
            f"| {method.name} | {method.ndcg.mean():.4f} | {method.recall.mean():.4f} | {method.hit.mean():.4f} | "
            f"{method.coverage:.3f} | {method.diversity:.3f} | {method.cold_hit_rate:.4f} | {delta} | "
            f"{method.seconds:.1f} |"
        )
    best = report.best_baseline()
    interval = report.interval_against(best, resamples)
    ratio = primary.ndcg.mean() / best.ndcg.mean() if best.ndcg.mean() > 0 else float("inf")
    lines += [
        "",
        f"{report.primary} / best baseline ({best.name}): NDCG@10 ×{ratio:.2f} "
        f"(target ×1.30), difference {interval.mean:+.4f} [95% CI {interval.low:+.4f}, {interval.high:+.4f}]"
        f" — {'met' if ratio >= 1.3 and interval.low > 0 else 'NOT met'}",
        "timings: " + ", ".join(f"{name} {value:.1f}" for name, value in report.timings.items()),
    ]
    return "\n".join(lines)


def method_names(report: EvalReport) -> Iterable[str]:
    return (method.name for method in report.methods)
