"""Time of the paired statistics (goal: 10,000 resamples of 2,000 samples well under a second).

Times :func:`benchmark.stats.paired` end to end (bootstrap CI and test) on synthetic per-sample
scores: one seed per method (paired bootstrap, sign-flip permutation test with 10,000 random flips),
the BCa interval, and three seeds per method (hierarchical bootstrap and its test). Each figure is
the median of ``--repeat`` runs in this process, after one warm-up. ``--scipy`` also times
``scipy.stats.permutation_test`` on the same differences, the library route this module does not
take (it is an order of magnitude slower at this size).

Usage::

    python -m benchmark.perf.stats [--samples 2000] [--resamples 10000] [--repeat 5] [--scipy]

Other processes on the machine slow every wall-clock figure; the CPU seconds beside them are
what the work itself costs. Report the load (``uptime``) with them.
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

import numpy as np

from benchmark.stats import paired

GOAL_S = 1.0


def _median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``fn``: CPU time shows the work when other processes crowd the cores."""
    fn()
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--resamples", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--scipy", action="store_true", help="also time scipy.stats.permutation_test (slow)")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    a = rng.normal(0.6, 0.1, size=(3, args.samples))
    b = a + rng.normal(0.01, 0.1, size=(3, args.samples))
    cases = {
        "paired bootstrap + sign-flip test, 1 seed each": lambda: paired(a[0], b[0], resamples=args.resamples),
        "paired bootstrap (BCa) + sign-flip test, 1 seed each": lambda: paired(a[0], b[0], resamples=args.resamples, ci="bca"),
        "hierarchical bootstrap + its test, 3 seeds each": lambda: paired(a, b, resamples=args.resamples),
    }
    if args.scipy:
        from scipy import stats

        d = b[0] - a[0]
        cases["scipy.stats.permutation_test alone, 1 seed each"] = lambda: stats.permutation_test(
            (d,), lambda x, axis: np.mean(x, axis=axis), permutation_type="samples", vectorized=True,
            n_resamples=args.resamples, rng=0)
    print(f"{args.resamples} resamples of {args.samples} samples, median of {args.repeat} runs:")
    worst = 0.0
    for name, fn in cases.items():
        t, cpu = _median_time(fn, args.repeat)
        worst = max(worst, t) if not name.startswith("scipy") else worst
        print(f"  {name:<56} {t:7.3f} s wall {cpu:7.3f} s CPU")
    print(f"slowest of this module's cases: {worst:.3f} s wall (goal < {GOAL_S:.1f} s): {'met' if worst < GOAL_S else 'NOT met'}")
    return 0 if worst < GOAL_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
