"""`recsys bench drift`: calibration and speed of the drift test (recsys.tools.drift_bench), one table.

recsys bench drift --dataset PATH --trials 20 --movies 1500 --speed-n 1000   # a short run
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "drift test calibration (false alarms, detections) on synthetic and MovieLens text, and its speed"
QUIET = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trials", type=int, default=100, help="window pairs per scenario (default 100)")
    parser.add_argument("--n", type=int, default=500, help="vectors per window in the calibration trials")
    parser.add_argument("--dims", type=int, default=384, help="dimensions of the synthetic vectors")
    parser.add_argument("--shift", type=float, default=0.1, help="mean shift of the synthetic drift")
    parser.add_argument("--permutations", type=int, default=200)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--dataset", type=Path, help="MovieLens folder with movies.csv: adds the real-text trials")
    parser.add_argument("--movies", type=int, default=4000, help="movies embedded for the real-text trials")
    parser.add_argument("--speed-n", type=int, default=5000, help="vectors per window in the speed test")
    parser.add_argument("--speed-repeats", type=int, default=3, help="timed runs of the fast test (median)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from recsys.tools.drift_bench.run import DriftBenchOptions, run_drift_bench

    options = DriftBenchOptions(
        trials=args.trials,
        n=args.n,
        dims=args.dims,
        shift=args.shift,
        permutations=args.permutations,
        alpha=args.alpha,
        dataset=args.dataset,
        movies=args.movies,
        speed_n=args.speed_n,
        speed_repeats=args.speed_repeats,
        seed=args.seed,
    )
    run_drift_bench(options)
    return 0
