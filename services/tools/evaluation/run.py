"""The offline evaluation: split, replay through the services' code, tune on validation, score against baselines.

The data is the project's event format (dataset.py), from files, from MovieLens converted in memory
(movielens.py), or an EventDataset handed to evaluate(). The protocol is split.py's docstring.
Repeat consumption: the blend is scored without repeats (every item the user touched in training is
excluded, the service's behaviour with RECSYS_REPEATABLE_INTERACTION_TYPES empty); when repeatable
types are given (EvalConfig.repeatable, default the encoder's setting) and some user has more than
one positive with the same item, it is also scored with repeats allowed: items touched in training
only through those types stay rankable, as the service's seen list leaves them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
from scipy import sparse
from tqdm import tqdm

from recsys.encoder.interactions.behavior_refresh import RefreshPolicy
from recsys.encoder.interactions.blend_tuning import (
    FRESH_NDCG_TOLERANCE,
    FreshCase,
    FreshGate,
    TunedBlend,
    TuningPlan,
    candidate_weights,
    choose_fresh_gate,
    fresh_case,
    grid_scores,
    ndcg_rows,
)
from recsys.encoder.interactions.refresh_tuning import (
    ITEM_EVIDENCE_GRID,
    NO_MAP_NDCG_TOLERANCE,
    BlendTuning,
    ItemEvidenceChoice,
    RefreshTuning,
    tune_on_log,
)
from recsys.encoder.interactions.role import refresh_policy
from recsys.encoder.interactions.rules import EventWeights, InteractionRules
from recsys.encoder.interactions.type_weights import TYPE_CONTRASTS, weighted_types
from recsys.encoder.settings import EncoderSettings
from recsys.recommender.exposure import with_fresh_share
from recsys.recommender.ranking import feed_order
from recsys.recommender.settings import RecommenderSettings
from recsys.shared.blending import (
    Candidates,
    ForYouWeights,
    blend,
    decayed_popularity,
    for_you_signals,
    popularity_prior,
    worth_a_slot,
)
from recsys.shared.events import InteractionType
from recsys.shared.logs import log_event
from recsys.tools.evaluation import baselines
from recsys.tools.evaluation.baselines import MemoryBudgetExceeded
from recsys.tools.evaluation.content import content_vectors
from recsys.tools.evaluation.dataset import TYPE_CODE, EventDataset, Interactions, load_events
from recsys.tools.evaluation.metrics import Interval, intra_list_diversity, paired_bootstrap, ranking_scores
from recsys.tools.evaluation.movielens import evaluation_dataset
from recsys.tools.evaluation.replay import ReplayResult, catalog_candidates, model_fit, refit, replay, user_query
from recsys.tools.evaluation.split import (
    Split,
    has_repeated_positives,
    holdout_split,
    repeated_targets,
    sample_users,
    seen_items,
)

_log = logging.getLogger(__name__)

K = 10
COLD_ITEM_INTERACTIONS = 3
FRESH_SHARE = 0.1
# The targets: the blend against the best baseline (explicit ratings; implicit events only), the cold-item
# hit rate against the 0.44% measured before the content map, the self-tuned weights against the offline-tuned ones.
TARGET_RATIO_EXPLICIT = 1.3
TARGET_RATIO_IMPLICIT = 1.2
OLD_COLD_HIT_RATE = 0.0044
COLD_HIT_FACTOR = 3.0
SELF_TUNED_TOLERANCE = 0.03
# The content map's item evidence constants (ITEM_EVIDENCE_GRID) and what the map may cost against the map-less
# blend (NO_MAP_NDCG_TOLERANCE) are the refresh's tuner's own (refresh_tuning.py): both choose k by the same rule.
_SETTINGS_PER_BLOCK = 64

PRIMARY = "blended (tuned on validation)"
UNGATED = f"blended + {FRESH_SHARE:.0%} fresh slots, ungated"
NO_MAP = "blended, no content map"
NO_MAP_RETUNED = "blended, no content map (weights tuned without it)"
SELF_TUNED = "blended (self-tuned, as a fresh deployment)"
DEFAULTS = "blended (service defaults)"


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate: a MovieLens folder (converted in memory; implicit: every rating a value-less click), or
    an items file and an interactions file (`recsys publish` format). evaluate(dataset=...) overrides both.
    `repeatable`: interaction types that do not mark an item seen (None: the encoder's setting)."""

    movielens: Path | None = None
    implicit: bool = False
    items: Path | None = None
    interactions: Path | None = None
    repeatable: frozenset[InteractionType] | None = None
    users: int | None = None
    seed: int = 0
    cache_dir: Path = Path("recsys-data/eval-cache")
    progress: bool = True
    tune: bool = True
    bootstrap: int = 2000
    # Baseline parameters, each chosen on the validation split (training data only) and refit on all training.
    als_factors: tuple[int, ...] = (32, 64, 128)
    bpr_factors: tuple[int, ...] = (64, 128)
    ease_l2: tuple[float, ...] = baselines.EASE_L2_GRID
    rp3beta: tuple[tuple[float, float], ...] = baselines.RP3BETA_GRID


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
    repeated_targets: int = 0  # held-out targets the user already had in training (re-consumption)
    off_catalog_targets: int = 0  # held-out targets on items not in the catalog: no method can rank them
    implicit: bool = False  # no explicit ratings (--implicit, or no `rate` event): the ×1.20 target
    content_map: bool = False  # whether the replay applied the content map (the encoder's setting)
    self_tuned: TunedBlend | None = None  # what the refresh's tuner chose on the replayed log (None: kept defaults)
    self_tuning_ran: bool = False  # whether the self-tuned row was scored at all (tuning on)
    # The content map's item evidence k the self-tuned row's model was fit with (None: no map), and what the refresh's
    # tuner scored each k with (None: it did not choose, e.g. too few users).
    self_tuned_evidence_k: float | None = None
    self_tuned_evidence: ItemEvidenceChoice | None = None
    evidence: EvidenceChoice | None = None  # the content map's item evidence k chosen on validation (tuning on)
    contrast: ContrastChoice | None = None  # the event types' contrast chosen on validation (types of unlike weights)
    fresh_gate: FreshGate | None = None  # the fresh-slot gate chosen on validation (tuning on)
    fresh_gate_held_against: float | None = None  # the map-less blend's validation NDCG@10 the gate kept to
    fresh_share: float = 0.0  # the recommender's fresh share the blended rows rank with

    @property
    def target_ratio(self) -> float:
        return TARGET_RATIO_IMPLICIT if self.implicit else TARGET_RATIO_EXPLICIT

    def has(self, name: str) -> bool:
        return any(m.name == name for m in self.methods)

    def method(self, name: str) -> MethodResult:
        return next(m for m in self.methods if m.name == name)

    def best_baseline(self) -> MethodResult:
        return max((m for m in self.methods if m.is_baseline), key=lambda m: float(m.ndcg.mean()))

    def interval_against(self, other: MethodResult, resamples: int) -> Interval:
        return paired_bootstrap(self.method(self.primary).ndcg, other.ndcg, resamples)


@dataclass(frozen=True)
class _Prepared:
    data: EventDataset
    split: Split
    content: np.ndarray
    has_content: np.ndarray
    encoder: EncoderSettings
    recommender: RecommenderSettings

    @property
    def policy(self) -> RefreshPolicy:
        return refresh_policy(self.encoder)

    @property
    def rules(self) -> InteractionRules:
        return InteractionRules.from_settings(self.encoder)


@dataclass(frozen=True)
class EvidenceChoice:
    """The item evidence k chosen on validation, and each k's validation NDCG@10 and cold-item hit rate, with the
    map-less blend's for reference."""

    k: float
    figures: dict[float, tuple[float, float]]
    no_map: tuple[float, float]


@dataclass(frozen=True)
class ContrastChoice:
    """The interaction types' contrast chosen on validation (type_weights.py), each contrast's validation NDCG@10."""

    contrast: float
    figures: dict[float, float]


@dataclass(frozen=True)
class _Validation:
    """The inner split: each evaluated user's training prefix split again (its own last positives held out)."""

    interactions: Interactions
    split: Split
    seen: dict[int, np.ndarray]


def evaluate(
    config: EvalConfig,
    encoder: EncoderSettings | None = None,
    recommender: RecommenderSettings | None = None,
    dataset: EventDataset | None = None,
) -> EvalReport:
    """The whole evaluation; `dataset` (already loaded) takes the place of the config's files or folder."""
    timings: dict[str, float] = {}
    started = time.monotonic()
    encoder = encoder or EncoderSettings()
    recommender = recommender or RecommenderSettings()
    data = load_dataset(config, encoder) if dataset is None else _reweighted(dataset, encoder)
    interactions = data.interactions
    split = sample_users(holdout_split(interactions), config.users, config.seed)
    has_content = data.in_catalog
    content = _content(data, encoder, config)
    timings["load_and_embed_s"] = time.monotonic() - started
    prepared = _Prepared(data, split, content, has_content, encoder, recommender)
    validation = validation_split(prepared, config)

    defaults = recommender.for_you_weights()
    weights = defaults
    evidence: EvidenceChoice | None = None
    contrast: ContrastChoice | None = None
    gate: FreshGate | None = None
    unmapped_weights: ForYouWeights | None = None
    held_against: float | None = None  # the best map-less blend's validation NDCG@10
    if config.tune:
        tuning_started = time.monotonic()
        validation_replay = _replay(prepared, validation.interactions, validation.split, config.progress)
        chosen_contrast = choose_type_contrast(prepared, validation, validation_replay, defaults)
        if chosen_contrast is not None:
            contrast, validation_replay = chosen_contrast
            update = {"behavior_type_contrast": contrast.contrast}
            prepared = replace(prepared, encoder=prepared.encoder.model_copy(update=update))
        if prepared.policy.content_map:
            evidence, validation_replay, unmapped_replay = choose_item_evidence(
                prepared, validation, validation_replay, defaults
            )
            update = {"behavior_item_evidence_k": evidence.k}
            prepared = replace(prepared, encoder=prepared.encoder.model_copy(update=update))
            # The best map-less blend the validation split finds: what the map is held against.
            unmapped_weights, unmapped_gate = tune_weights(prepared, config, validation, unmapped_replay)
            held_against = unmapped_gate.no_slot_ndcg
        weights, gate = tune_weights(prepared, config, validation, validation_replay, held_against)
        timings["tuning_s"] = time.monotonic() - tuning_started

    replay_started = time.monotonic()
    replayed = _replay(prepared, interactions, split, config.progress)
    policy = prepared.policy
    unmapped = refit(replayed, replace(policy, content_map=False), prepared.rules) if policy.content_map else None
    timings["replay_and_fit_s"] = time.monotonic() - replay_started
    candidates = catalog_candidates(interactions.item_ids, content, replayed.factors, has_content)
    train_items = seen_items(interactions, split.train)
    cold = _cold(interactions, split)

    share = recommender.fresh_share

    def blend_row(
        name: str, blend_weights: ForYouWeights, result: ReplayResult = replayed, fresh_share: float = share
    ) -> MethodResult:
        rows = catalog_candidates(interactions.item_ids, content, result.factors, has_content)
        scorer = _blend_scorer(result, rows, blend_weights)
        return _score_method(
            name,
            scorer,
            split,
            train_items,
            rows,
            cold,
            config.progress,
            is_baseline=False,
            fresh_share=fresh_share,
            fresh_gate=blend_weights.fresh_gate,
        )

    # The primary first: the tuned blend, or without tuning the defaults, each with the recommender's fresh slots
    # as its gate lets them (cold items as "fresh"); then the same weights without the map and without fresh slots,
    # the best a map-less blend does.
    methods = [blend_row(PRIMARY, weights) if config.tune else blend_row(DEFAULTS, defaults)]
    if unmapped is not None:
        methods.append(blend_row(NO_MAP, weights, unmapped, fresh_share=0.0))
        if unmapped_weights is not None:
            methods.append(blend_row(NO_MAP_RETUNED, unmapped_weights, unmapped, fresh_share=0.0))
    self_tuned: TunedBlend | None = None
    self_evidence_k: float | None = None
    self_evidence: ItemEvidenceChoice | None = None
    if config.tune:
        self_started = time.monotonic()
        chosen = self_tune(prepared, replayed)
        self_tuned, self_types, self_evidence_k = chosen.blend, chosen.type_weighting, chosen.item_evidence_k
        self_evidence = chosen.evidence
        self_policy = replace(policy, type_weighting=self_types, item_evidence_k=self_evidence_k)
        # It chose another contrast or k: its model is another fit.
        self_replayed = replayed if self_policy == policy else refit(replayed, self_policy, prepared.rules)
        timings["self_tuning_s"] = time.monotonic() - self_started
        self_weights = self_tuned.weights if self_tuned is not None else defaults
        methods.append(blend_row(SELF_TUNED, self_weights, self_replayed))
        methods.append(blend_row(DEFAULTS, defaults))
    # The same blend with the recommender's fresh-item exposure: cold items (as "fresh") get their share of slots.
    repeatable = encoder.repeatable_types() if config.repeatable is None else config.repeatable
    if repeatable and has_repeated_positives(interactions):
        methods.append(
            _score_method(
                f"blended, repeats allowed (types: {', '.join(sorted(repeatable))})",
                _blend_scorer(replayed, candidates, weights),
                split,
                seen_items(interactions, split.train, repeatable),
                candidates,
                cold,
                config.progress,
                is_baseline=False,
            )
        )
    methods.append(
        _score_method(
            UNGATED,
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
    content_only = content_only_weights()
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
        interactions.user[split.train],
        interactions.item[split.train],
        len(interactions.user_ids),
        len(interactions.item_ids),
    )
    selection_started = time.monotonic()
    factories: list[tuple[str, Callable[[], baselines.Scorer]]] = [
        ("popularity", lambda: baselines.popularity(matrix)),
        ("item-kNN (cosine co-occurrence)", lambda: baselines.item_knn(matrix)),
        *select_baselines(prepared, config, validation, matrix),
    ]
    timings["baseline_selection_s"] = time.monotonic() - selection_started
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
    off_catalog = sum(int((~has_content[targets]).sum()) for targets in split.targets.values())
    implicit = config.implicit or not bool((interactions.type == TYPE_CODE[InteractionType.RATE]).any())
    return EvalReport(
        methods,
        primary,
        weights,
        len(split.targets),
        len(split.train),
        cold_targets,
        timings,
        repeated_targets(split, interactions),
        off_catalog,
        implicit=implicit,
        content_map=policy.content_map,
        self_tuned=self_tuned,
        self_tuned_evidence_k=self_evidence_k if policy.content_map else None,
        self_tuned_evidence=self_evidence,
        self_tuning_ran=config.tune,
        evidence=evidence,
        contrast=contrast,
        fresh_gate=gate,
        fresh_gate_held_against=held_against,
        fresh_share=share,
    )


def content_only_weights() -> ForYouWeights:
    """The content-only baseline: taste alone. Every field is spelled out, so a signal added later stays out."""
    return ForYouWeights(behavior=0.0, taste=1.0, session=0.0, popularity=0.0, evidence_k=1.0, sequence=0.0)


def self_tune(prepared: _Prepared, replayed: ReplayResult) -> RefreshTuning:
    """What a fresh deployment's refresh would choose on the replayed training log: the refresh's own tuner
    (tune_on_log) on the behavior log the replay wrote, fitting its validation model as the refresh fits (content
    map included), from the recommender's weights as defaults: its blend (None: too few users, the defaults stay),
    the interaction types' weighting and the content map's item evidence k its model is fit with."""
    recommender, encoder = prepared.recommender, prepared.encoder
    tuning = BlendTuning(
        enabled=True,
        defaults=recommender.for_you_weights(),
        plan=TuningPlan(
            min_users=encoder.blend_tuning_min_users,
            max_users=encoder.blend_tuning_max_users,
            popularity_midpoint=recommender.popularity_midpoint,
            fresh_max_interactions=recommender.fresh_max_interactions,
        ),
    )
    return tune_on_log(
        replayed.entries,
        replayed.catalog_ids,
        replayed.catalog_content,
        model_fit(prepared.policy),
        prepared.rules,
        tuning,
    )


def validation_split(prepared: _Prepared, config: EvalConfig) -> _Validation:
    """Each evaluated user's training prefix split again by the same protocol; the test targets never enter."""
    interactions = prepared.data.interactions.subset(prepared.split.train)
    split = sample_users(holdout_split(interactions), config.users, config.seed + 1)
    return _Validation(interactions, split, seen_items(interactions, split.train))


def select_baselines(
    prepared: _Prepared, config: EvalConfig, validation: _Validation, matrix: sparse.csr_matrix
) -> list[tuple[str, Callable[[], baselines.Scorer]]]:
    """ALS, BPR, EASE and RP3beta, each with the parameter that scores the best NDCG@10 on the validation split
    (fit on its training part), as factories refitting that parameter on the full training `matrix`."""
    inner = validation.interactions
    validation_matrix = baselines.interactions(
        inner.user[validation.split.train], inner.item[validation.split.train], *matrix.shape
    )
    seed = config.seed
    families: list[tuple[str, list[tuple[str, Callable[[sparse.csr_matrix], baselines.Scorer]]]]] = [
        ("ALS", [(f"{f} factors", partial(_als, factors=f, seed=seed)) for f in config.als_factors]),
        ("BPR", [(f"{f} factors", partial(_bpr, factors=f, seed=seed)) for f in config.bpr_factors]),
        ("EASE", [(f"λ={l2:g}", partial(_ease, l2=l2)) for l2 in config.ease_l2]),
        ("RP3beta", [(f"α={a:g}, β={b:g}", partial(_rp3beta, alpha=a, beta=b)) for a, b in config.rp3beta]),
    ]
    chosen: list[tuple[str, Callable[[], baselines.Scorer]]] = []
    for family, grid in families:
        if not grid:
            continue
        try:
            scores = [
                validation_ndcg(fit(validation_matrix), validation, prepared.has_content, prepared.content)
                for _, fit in tqdm(grid, desc=f"choosing {family}", disable=not config.progress, leave=False)
            ]
        except MemoryBudgetExceeded as exc:  # EASE on a catalog too large for dense item × item matrices
            log_event(_log, "baseline_skipped", logging.WARNING, baseline=family, reason=str(exc))
            continue
        label, fit = grid[int(np.argmax(scores))]
        name = f"{family} ({label}, chosen on validation)" if len(grid) > 1 else f"{family} ({label})"
        chosen.append((name, partial(fit, matrix)))
    return chosen


def _als(matrix: sparse.csr_matrix, factors: int, seed: int) -> baselines.Scorer:
    return baselines.als(matrix, factors, seed)


def _bpr(matrix: sparse.csr_matrix, factors: int, seed: int) -> baselines.Scorer:
    return baselines.bpr(matrix, factors, seed)


def _ease(matrix: sparse.csr_matrix, l2: float) -> baselines.Scorer:
    return baselines.ease(matrix, l2)


def _rp3beta(matrix: sparse.csr_matrix, alpha: float, beta: float) -> baselines.Scorer:
    return baselines.rp3beta(matrix, alpha, beta)


def validation_ndcg(
    scorer: baselines.Scorer, validation: _Validation, has_content: np.ndarray, content: np.ndarray
) -> float:
    """Mean NDCG@10 of a scorer on the validation users, ranked as every method is (top_k)."""
    total = 0.0
    for user in validation.split.users:
        seen = validation.seen.get(user, np.zeros(0, dtype=np.int64))
        ranked = _ranked(scorer(user), seen, has_content, content)
        total += ranking_scores(ranked, {int(t) for t in validation.split.targets[user]}, K).ndcg
    return total / max(len(validation.split.users), 1)


def load_dataset(config: EvalConfig, encoder: EncoderSettings) -> EventDataset:
    """The config's data as events: MovieLens converted in memory, or the items and interactions files.

    Raises FileNotFoundError, dataset.DatasetError for a line the services would refuse, ValueError for a
    config that names neither or both.
    """
    weights = EventWeights.from_settings(encoder)
    if config.movielens is not None and (config.items is not None or config.interactions is not None):
        raise ValueError("give either a MovieLens folder or items and interactions files, not both")
    if config.movielens is not None:
        return evaluation_dataset(config.movielens, weights, config.implicit)
    if config.items is None or config.interactions is None:
        raise ValueError("give a MovieLens folder, or both an items file and an interactions file")
    if config.implicit:
        raise ValueError("implicit applies to MovieLens only: event files say their own types")
    return load_events(config.items, config.interactions, weights)


def _reweighted(dataset: EventDataset, encoder: EncoderSettings) -> EventDataset:
    # A dataset loaded elsewhere may carry other weights; the split's positives must be these settings'.
    return replace(dataset, interactions=dataset.interactions.reweighted(EventWeights.from_settings(encoder)))


def _content(data: EventDataset, encoder: EncoderSettings, config: EvalConfig) -> np.ndarray:
    """Content vectors of every item row; zero rows for items not in the catalog."""
    rows = [row for row, text in enumerate(data.texts) if text is not None]
    texts = [text for text in data.texts if text is not None]
    if not texts:
        raise ValueError("the items file upserts no item: there is no catalog to rank")
    vectors = content_vectors(texts, encoder, config.cache_dir, config.progress)
    content = np.zeros((len(data.texts), vectors.shape[1]), dtype=np.float32)
    content[rows] = vectors
    return content


def _replay(prepared: _Prepared, interactions: Interactions, split: Split, progress: bool) -> ReplayResult:
    recommender = prepared.recommender

    def prior(popularity: np.ndarray, popularity_ts: np.ndarray, now: float) -> np.ndarray:
        decayed = decayed_popularity(popularity, popularity_ts, now, recommender.popularity_half_life_days)
        return popularity_prior(decayed, recommender.popularity_midpoint)

    return replay(
        interactions,
        split.train,
        split.cutoff,
        prepared.content,
        EventWeights.from_settings(prepared.encoder),
        prepared.rules,
        prepared.policy,
        prior,
        progress,
        prepared.has_content,
    )


def _blend_scorer(replayed: ReplayResult, candidates: Candidates, weights: ForYouWeights) -> baselines.Scorer:
    row_of = {item_id: row for row, item_id in enumerate(candidates.item_ids)}

    def score(user: int) -> np.ndarray:
        profile = replayed.profiles.get(user)
        items = candidates.with_popularity(replayed.popularity.get(user, np.zeros(len(candidates))))
        items = items.with_sequence(replayed.sequence_signal(user, candidates.item_ids, row_of))
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
    fresh_gate: float = 0.0,
) -> MethodResult:
    started = time.monotonic()
    ndcg, recall, hit = [], [], []
    recommended: set[int] = set()
    diversity = []
    cold_hits = cold_total = 0
    for user in tqdm(split.users, desc=name, unit="user", disable=not progress, leave=False):
        seen = train_items.get(user, np.zeros(0, dtype=np.int64))
        ranked = top_k(scorer(user), seen, candidates, cold, fresh_share, fresh_gate)
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
    fresh_gate: float = 0.0,
) -> list[int]:
    """Full ranking over the catalog (candidates.has_content) minus what the user saw in training, through the
    recommender's ordering and, with a fresh share, its exposure of fresh items as the gate lets them."""
    ranked = _ranked(scores, seen, candidates.has_content, candidates.content)
    if fresh_share <= 0 or fresh is None:
        return ranked
    allowed = candidates.has_content.copy()
    allowed[seen] = False
    last_score = float(scores[ranked[K - 1]]) if len(ranked) >= K else -np.inf
    allowed &= fresh & worth_a_slot(scores, last_score, fresh_gate)
    fresh_ranked = feed_order(scores, allowed, K, 1.0, candidates.content)
    return with_fresh_share(ranked, fresh_ranked, fresh_share, K)


def _ranked(scores: np.ndarray, seen: np.ndarray, has_content: np.ndarray, content: np.ndarray) -> list[int]:
    allowed = has_content.copy()
    allowed[seen] = False
    return feed_order(scores, allowed, K, 1.0, content)


def tune_weights(
    prepared: _Prepared,
    config: EvalConfig,
    validation: _Validation | None = None,
    replayed: ReplayResult | None = None,
    held_against: float | None = None,
) -> tuple[ForYouWeights, FreshGate]:
    """The weights with the best NDCG@10 on a validation split made inside the training data only, with the
    fresh-slot gate chosen on the same users under them (blend_tuning.choose_fresh_gate, cold items as fresh).

    `held_against`: the validation NDCG@10 of the best map-less blend. Given, the gate is chosen by the issue's
    own rule for what carries cold items, the rule that chose the map's evidence k: the most cold hits while
    NDCG@10 stays within NO_MAP_NDCG_TOLERANCE of that blend's (the refresh's tuner, which fits no map-less
    model, holds the slot to its no-slot NDCG instead).

    Each evaluated user's training prefix is split again by the same protocol (its own last
    positives held out), so the test targets never influence the defaults. The candidates are the
    refresh tuner's (blend_tuning.candidate_weights: the defaults, popularity alone, the same grid).
    `replayed`: that split already replayed (under prepared's policy).
    """
    validation = validation or validation_split(prepared, config)
    interactions = validation.interactions
    replayed = replayed or _replay(prepared, interactions, validation.split, config.progress)
    candidates = catalog_candidates(interactions.item_ids, prepared.content, replayed.factors, prepared.has_content)
    choices = candidate_weights(prepared.recommender.for_you_weights())
    totals = np.zeros(len(choices))
    row_of = {item_id: row for row, item_id in enumerate(candidates.item_ids)}

    def user_signals(user: int) -> tuple[int, dict[str, np.ndarray], np.ndarray, np.ndarray]:
        query = user_query(replayed.profiles.get(user))
        items = candidates.with_popularity(replayed.popularity.get(user, np.zeros(len(candidates))))
        items = items.with_sequence(replayed.sequence_signal(user, candidates.item_ids, row_of))
        excluded = ~prepared.has_content
        excluded[validation.seen.get(user, np.zeros(0, dtype=np.int64))] = True
        return query.events, for_you_signals(query, items), excluded, np.unique(validation.split.targets[user])

    for user in tqdm(validation.split.users, desc="tuning blend weights", unit="user", disable=not config.progress):
        events, signals, excluded, targets = user_signals(user)
        # Many settings at once (the recommender's blend as one product), ranked over the catalog minus seen; in
        # blocks, so memory is a block of settings × the catalog whatever the grid's size.
        for start in range(0, len(choices), _SETTINGS_PER_BLOCK):
            block = slice(start, start + _SETTINGS_PER_BLOCK)
            scores = grid_scores(signals, choices[block], events)
            scores[:, excluded] = -np.inf
            totals[block] += ndcg_rows(scores, targets, K)
    best = choices[int(np.argmax(totals))]
    cold = _cold(interactions, validation.split)
    cases: list[FreshCase] = []
    for user in validation.split.users:
        events, signals, excluded, targets = user_signals(user)
        cases.append(fresh_case(grid_scores(signals, [best], events)[0], ~excluded, cold, targets, K))
    if held_against is None:
        gate = choose_fresh_gate(cases, K)
    else:
        gate = choose_fresh_gate(cases, K, NO_MAP_NDCG_TOLERANCE, reference=held_against)
    return replace(best, fresh_gate=gate.gate), gate


def choose_type_contrast(
    prepared: _Prepared, validation: _Validation, replayed: ReplayResult, weights: ForYouWeights
) -> tuple[ContrastChoice, ReplayResult] | None:
    """How much the interaction types' weights differ in the model (type_weights.TYPE_CONTRASTS), chosen as the
    refresh's tuner chooses it: the best validation NDCG@10 (ties keep the configured contrast). None when the log
    holds no two types of different weights (every contrast then fits the same model). The validation replay
    refit under the chosen contrast comes back with it."""
    policy, rules = prepared.policy, prepared.rules
    configured = policy.type_weighting
    events = replayed.events
    if len({abs(configured.configured[name]) for name in weighted_types(events, configured)}) < 2:
        return None
    interactions = validation.interactions
    cold = _cold(interactions, validation.split)
    refits: dict[float, ReplayResult] = {}
    figures: dict[float, float] = {}
    for contrast in dict.fromkeys((configured.contrast, *TYPE_CONTRASTS)):
        weighting = configured.with_contrast(contrast)
        result = (
            replayed if weighting == configured else refit(replayed, replace(policy, type_weighting=weighting), rules)
        )
        rows = catalog_candidates(interactions.item_ids, prepared.content, result.factors, prepared.has_content)
        scored = _score_method(
            "", _blend_scorer(result, rows, weights), validation.split, validation.seen, rows, cold, progress=False
        )
        refits[contrast], figures[contrast] = result, float(scored.ndcg.mean())
    chosen = max(figures, key=lambda contrast: figures[contrast])  # the first of equals: the configured one
    return ContrastChoice(chosen, figures), refits[chosen]


def choose_item_evidence(
    prepared: _Prepared, validation: _Validation, replayed: ReplayResult, weights: ForYouWeights
) -> tuple[EvidenceChoice, ReplayResult, ReplayResult]:
    """The content map's item evidence k (ITEM_EVIDENCE_GRID) by the issue's own rule, on the validation split: the
    most cold-item hits at K among the k whose NDCG@10 is within NO_MAP_NDCG_TOLERANCE of the map-less blend's
    (ties: the better NDCG@10; none within: the best NDCG@10). `replayed` is the validation split replayed under
    prepared's policy; the validation replay refit under the chosen k and without the map come back with the
    choice."""
    policy, rules = prepared.policy, prepared.rules
    interactions = validation.interactions
    cold = _cold(interactions, validation.split)

    def figures(result: ReplayResult) -> tuple[float, float]:
        rows = catalog_candidates(interactions.item_ids, prepared.content, result.factors, prepared.has_content)
        scored = _score_method(
            "", _blend_scorer(result, rows, weights), validation.split, validation.seen, rows, cold, progress=False
        )
        return float(scored.ndcg.mean()), scored.cold_hit_rate

    unmapped = refit(replayed, replace(policy, content_map=False), rules)
    no_map = figures(unmapped)
    refits = {
        k: replayed if k == policy.item_evidence_k else refit(replayed, replace(policy, item_evidence_k=k), rules)
        for k in ITEM_EVIDENCE_GRID
    }
    scores = {k: figures(result) for k, result in refits.items()}
    within = [k for k, (ndcg, _) in scores.items() if ndcg >= (1.0 - NO_MAP_NDCG_TOLERANCE) * no_map[0]]
    if within:
        chosen = max(within, key=lambda k: (scores[k][1], scores[k][0]))
    else:
        chosen = max(scores, key=lambda k: scores[k][0])
    return EvidenceChoice(chosen, scores, no_map), refits[chosen], unmapped


def _cold(interactions: Interactions, split: Split) -> np.ndarray:
    """Items with fewer than COLD_ITEM_INTERACTIONS training interactions: cold, and "fresh" to the fresh slots."""
    return np.bincount(interactions.item[split.train], minlength=len(interactions.item_ids)) < COLD_ITEM_INTERACTIONS


def format_report(report: EvalReport, resamples: int) -> str:
    """The results table (markdown), the comparison against the best baseline, the cold-item check."""
    primary = report.method(report.primary)
    lines = [
        f"users evaluated: {report.users}; training interactions: {report.train_interactions}; "
        f"held-out targets on cold items (< {COLD_ITEM_INTERACTIONS} training interactions): {report.cold_targets}",
        *(
            [f"held-out targets the user already had in training (re-consumption): {report.repeated_targets}"]
            if report.repeated_targets
            else []
        ),
        *(
            [f"held-out targets on items not in the catalog (never rankable): {report.off_catalog_targets}"]
            if report.off_catalog_targets
            else []
        ),
        f"blend weights: {_weights_text(report.weights)}",
        *_tuning_lines(report),
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
    target = report.target_ratio
    kind = "implicit events only" if report.implicit else "explicit ratings"
    lines += [
        "",
        f"{report.primary} / best baseline ({best.name}): NDCG@10 ×{ratio:.2f} "
        f"(target ×{target:.2f}, {kind}), difference {interval.mean:+.4f} "
        f"[95% CI {interval.low:+.4f}, {interval.high:+.4f}]"
        f" — {'met' if ratio >= target and interval.low > 0 else 'NOT met'}",
        *_cold_item_lines(report, primary),
        *_self_tuning_lines(report, primary),
    ]
    lines += [
        "timings: " + ", ".join(f"{name} {value:.1f}" for name, value in report.timings.items()),
    ]
    return "\n".join(lines)


def _tuning_lines(report: EvalReport) -> list[str]:
    """What the validation split chose beyond the weights: the map's item evidence k and the fresh-slot gate."""
    lines = []
    if report.contrast is not None:
        tried = "; ".join(f"{contrast:g}: {ndcg:.4f}" for contrast, ndcg in report.contrast.figures.items())
        lines.append(
            f"event types' contrast: {report.contrast.contrast:g}, chosen on validation (NDCG@10 by contrast: {tried};"
            " 1 counts each type as configured, 0 every positive type alike)"
        )
    if report.evidence is not None:
        choice = report.evidence
        tried = "; ".join(f"{k:g}: {ndcg:.4f}, {hits:.2%}" for k, (ndcg, hits) in choice.figures.items())
        lines.append(
            f"content map item evidence k: {choice.k:g}, chosen on validation (most cold-item hits with NDCG@10 within "
            f"{NO_MAP_NDCG_TOLERANCE:.0%} of the map-less blend's {choice.no_map[0]:.4f}; NDCG@10, cold-item HR by k: "
            f"{tried})"
        )
    if report.fresh_gate is not None:
        gate = report.fresh_gate
        if report.fresh_gate_held_against is None:
            rule = f"NDCG@10 within {FRESH_NDCG_TOLERANCE:.1%} of no slot's"
        else:
            held = report.fresh_gate_held_against
            rule = f"NDCG@10 within {NO_MAP_NDCG_TOLERANCE:.0%} of the map-less blend's {held:.4f}"
        lines.append(
            f"fresh slots: {report.fresh_share:.0%} of a feed, gate {gate.gate:g} chosen on validation (most cold "
            f"hits with {rule}: {gate.fresh_hits} of {gate.slots} slots hit a held-out item; "
            f"NDCG@10 {gate.ndcg:.4f} vs {gate.no_slot_ndcg:.4f} without a slot)"
        )
    return lines


def _cold_item_lines(report: EvalReport, primary: MethodResult) -> list[str]:
    if not report.content_map or not report.has(NO_MAP):
        return ["content map: off (RECSYS_BEHAVIOR_CONTENT_MAP), no cold-item comparison"]
    # The best map-less blend: the same weights, or weights tuned without the map, whichever scores more.
    unmapped = max(
        (report.method(name) for name in (NO_MAP, NO_MAP_RETUNED) if report.has(name)),
        key=lambda method: float(method.ndcg.mean()),
    )
    target = OLD_COLD_HIT_RATE * COLD_HIT_FACTOR
    within = primary.ndcg.mean() >= (1.0 - NO_MAP_NDCG_TOLERANCE) * unmapped.ndcg.mean()
    change = primary.ndcg.mean() / unmapped.ndcg.mean() - 1.0 if unmapped.ndcg.mean() > 0 else 0.0
    return [
        f"cold-item HR@10 with the content map {primary.cold_hit_rate:.2%} vs without {unmapped.cold_hit_rate:.2%} "
        f"(target ≥ {target:.2%}, {COLD_HIT_FACTOR:g}× the old {OLD_COLD_HIT_RATE:.2%}) — "
        f"{'met' if primary.cold_hit_rate >= target else 'NOT met'}; NDCG@10 {primary.ndcg.mean():.4f} vs "
        f"{unmapped.ndcg.mean():.4f} of the best blend without the map or fresh slots ({unmapped.name}; "
        f"{change:+.1%}), "
        f"within {NO_MAP_NDCG_TOLERANCE:.0%}: "
        f"{'met' if within else 'NOT met'}"
    ]


def _self_tuning_lines(report: EvalReport, primary: MethodResult) -> list[str]:
    if not report.self_tuning_ran or not report.has(SELF_TUNED):
        return []
    self_tuned = report.method(SELF_TUNED)
    ratio = self_tuned.ndcg.mean() / primary.ndcg.mean() if primary.ndcg.mean() > 0 else float("inf")
    tuned = report.self_tuned
    chosen = (
        f"weights: {_weights_text(tuned.weights)} (validation NDCG@10 {tuned.ndcg:.4f} on {tuned.users} users, "
        f"defaults {tuned.defaults_ndcg:.4f}, popularity {tuned.popularity_ndcg:.4f})"
        if tuned is not None
        else "too few users to tune: the service defaults"
    )
    return [
        f"self-tuned (fresh deployment) NDCG@10 {self_tuned.ndcg.mean():.4f} vs offline-tuned "
        f"{primary.ndcg.mean():.4f}: ×{ratio:.3f}, no more than {SELF_TUNED_TOLERANCE:.0%} below: "
        f"{'met' if ratio >= 1.0 - SELF_TUNED_TOLERANCE else 'NOT met'}; {chosen}{_self_evidence_text(report)}"
    ]


def _self_evidence_text(report: EvalReport) -> str:
    """The content map's item evidence k the refresh's tuner chose, with its validation figures."""
    if report.self_tuned_evidence_k is None:
        return ""
    choice = report.self_tuned_evidence
    if choice is None:
        return f"; content map item evidence k {report.self_tuned_evidence_k:g} (configured)"
    tried = "; ".join(f"{k:g}: {ndcg:.4f}, {hits}" for k, (ndcg, hits) in choice.figures.items())
    return (
        f"; content map item evidence k {choice.k:g} (validation NDCG@10, fresh hits by k: {tried}; "
        f"without the map {choice.no_map[0]:.4f}, {choice.no_map[1]})"
    )


def _weights_text(weights: ForYouWeights) -> str:
    return (
        f"behavior {weights.behavior:g}, taste {weights.taste:g}, session {weights.session:g}, "
        f"popularity {weights.popularity:g}, sequence {weights.sequence:g}, user evidence k {weights.evidence_k:g}, "
        f"fresh gate {weights.fresh_gate:g}"
    )


def method_names(report: EvalReport) -> Iterable[str]:
    return (method.name for method in report.methods)
