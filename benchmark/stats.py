"""Paired statistics: is the Δ between two methods on the same samples of a task more than noise?

Published transfer gains are a few tenths of a point on a few dozen DAVIS sequences, so a table of
means cannot say whether a method helps. Every record carries per-sample scores (per sequence, video
or query); :mod:`benchmark.compare` pairs two records of one task by sample id and this module
compares the paired scores (arrays in, numbers out; it knows nothing of records):

- **Δ** = mean(b) − mean(a): the mean over the paired samples of the per-sample difference of the
  seed-averaged scores.
- **95 % CI of Δ** by a paired bootstrap over samples (both methods take the same resampled ids,
  which is the pairing), percentile interval by default; ``ci="bca"`` gives the bias-corrected and
  accelerated interval (Efron & Tibshirani 1993, ch. 14.3; jackknife of the mean in closed form) for
  one seed per method. With several seeds per method the seeds of each method are resampled too,
  crossed with the samples: the two-way ("pigeonhole") bootstrap of Owen (2007, Ann. Appl. Stat.
  1(2)), reported as ``"hierarchical bootstrap"``, so seed-to-seed variation widens the interval.
  The seeds of two methods are resampled independently: seed k of one method shares no randomness
  with seed k of another that a record can vouch for.
- **p-value** (two-sided) of a named test. ``test="auto"`` (default) takes the sign-flip permutation
  test on the per-sample differences with one seed per method (exact enumeration when 2^m ≤
  resamples for the m non-zero differences, else random flips with the (k+1)/(B+1) estimate of
  Phipson & Smyth 2010, never 0), and with several seeds the bootstrap test read off the same
  hierarchical bootstrap distribution as the CI (2·min(P*(Δ* ≤ 0), P*(Δ* ≥ 0)), (k+1)/(B+1)):
  a permutation test of seed-averaged differences ignores seed-to-seed variation, and would call
  a Δ significant whose interval spans 0. ``"permutation"``, ``"sign"`` (exact sign test,
  ``scipy.stats.binomtest``, ties dropped) and ``"bootstrap"`` can be named explicitly.
- **Holm** (1979) step-down adjustment across the comparisons of a table (:func:`adjust`).

The resampling is written out with numpy rather than ``scipy.stats.permutation_test`` (3-7 s for
10,000 sign flips of 2,000 samples on this project's 2-core machines, against a few tenths of a
second for bootstrap and test here: ``python -m benchmark.perf.stats --scipy``) and
``scipy.stats.bootstrap`` (no two-level resampling); the tests check
both against scipy. Everything is seeded: the same inputs and seed give the same numbers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Sequence

import numpy as np
from scipy import special, stats

RESAMPLES = 10_000
CONFIDENCE = 0.95
ALPHA = 0.05
TESTS = {"permutation": "sign-flip permutation test", "sign": "exact sign test",
         "bootstrap": "bootstrap test"}
CI_METHODS = ("percentile", "bca")
_CHUNK_VALUES = 1 << 20  # values drawn per chunk of resamples: ~8 MB of float64 whatever the data size


@dataclass(frozen=True)
class PairedResult:
    """Δ = mean(b) − mean(a) with its bootstrap CI and a test's p-value (two-sided).

    ``p_adjusted`` equals ``p_value`` until :func:`adjust` applies Holm's correction (``correction``
    then says so); ``significant`` is ``p_adjusted < alpha``.
    """

    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    test: str
    method: str  # "paired bootstrap" (one seed per method) or "hierarchical bootstrap" (seeds resampled too)
    ci_method: str
    n_samples: int
    n_seeds_a: int
    n_seeds_b: int
    resamples: int
    confidence: float = CONFIDENCE
    alpha: float = ALPHA
    correction: str = "none"

    @property
    def significant(self) -> bool:
        return self.p_adjusted < self.alpha

    @property
    def ci_excludes_zero(self) -> bool:
        return self.ci_low > 0 or self.ci_high < 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "significant": self.significant, "ci_excludes_zero": self.ci_excludes_zero}

    def describe(self, digits: int = 4) -> str:
        """One line: Δ, CI, p-value and how they were obtained."""
        p = f"p = {self.p_value:.{digits}g}"
        if self.correction != "none":
            p += f", {self.correction}-adjusted p = {self.p_adjusted:.{digits}g}"
        verdict = "significant" if self.significant else "not significant"
        seeds = f"; seeds {self.n_seeds_a} and {self.n_seeds_b}" if self.method == "hierarchical bootstrap" else ""
        return (f"Δ = {self.delta:+.{digits}f} [{self.confidence:.0%} CI {self.ci_low:+.{digits}f}, {self.ci_high:+.{digits}f}]"
                f" ({self.method}, {self.resamples} resamples, {self.ci_method} CI, {self.n_samples} samples{seeds}); "
                f"{p} ({self.test}): {verdict} at α = {self.alpha:g}")


def _seed_matrix(x: Any, name: str) -> np.ndarray:
    """``x`` as a finite (n_seeds, n_samples) float array; a 1-D array is one seed."""
    m = np.asarray(x, dtype=float)
    m = m[None] if m.ndim == 1 else m
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"{name} must be (n_samples,) or (n_seeds, n_samples) and non-empty, got shape {np.shape(x)}")
    if not np.isfinite(m).all():
        raise ValueError(f"{name} holds non-finite scores")
    return m


def _seed_means(x: np.ndarray, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mean over resampled seeds (rows of ``x``) of each seed's mean over the resampled samples ``idx``."""
    y = np.stack([row[idx].mean(axis=1) for row in x], axis=1)  # (resamples, seeds)
    s = x.shape[0]
    if s == 1:
        return y[:, 0]
    counts = (rng.integers(0, s, size=(idx.shape[0], s))[:, :, None] == np.arange(s)).sum(axis=1)
    return (counts * y).sum(axis=1) / s


def bootstrap_deltas(a: np.ndarray, b: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Δ of each of ``resamples`` resamples: sample indices shared by a and b, each method's seeds drawn apart.

    Drawn in chunks of a fixed size so memory stays bounded and the numbers depend only on the seed.
    With one seed per method the per-sample differences are resampled directly (one gather, not two).
    """
    n = a.shape[1]
    chunk = max(1, _CHUNK_VALUES // n)
    single = a.shape[0] == b.shape[0] == 1
    d = b[0] - a[0]
    out = np.empty(resamples)
    for start in range(0, resamples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, resamples - start), n))
        out[start:start + idx.shape[0]] = d[idx].mean(axis=1) if single else _seed_means(b, idx, rng) - _seed_means(a, idx, rng)
    return out


def _bca(boot: np.ndarray, d: np.ndarray, delta: float, confidence: float) -> tuple[float, float]:
    """BCa interval (Efron & Tibshirani 1993, eq. 14.9-14.15) for the mean of ``d``."""
    if np.ptp(boot) == 0:
        return delta, delta
    below = np.mean(boot < delta) + 0.5 * np.mean(boot == delta)
    z0 = special.ndtri(np.clip(below, 0.5 / boot.size, 1 - 0.5 / boot.size))
    n = d.size
    u = (d.sum() - d) / (n - 1) if n > 1 else np.zeros(1)  # leave-one-out means
    u = u.mean() - u
    scale = np.abs(u).max()
    u = u / scale if scale > 0 else u  # acceleration is scale-free; this keeps tiny scores from underflowing
    ss = float((u ** 2).sum())
    acc = float((u ** 3).sum()) / (6 * ss ** 1.5) if ss > 0 else 0.0
    z = special.ndtri(np.array([(1 - confidence) / 2, (1 + confidence) / 2]))
    q = special.ndtr(z0 + (z0 + z) / (1 - acc * (z0 + z)))
    lo, hi = np.quantile(boot, q)
    return float(lo), float(hi)


def sign_flip_p(d: np.ndarray, resamples: int, rng: np.random.Generator) -> tuple[float, str]:
    """Two-sided sign-flip permutation p-value of mean(d) = 0 and how it was computed.

    Zeros cannot change sign, so only the m non-zero differences are flipped: all 2^m sign vectors
    when that is at most ``resamples`` (exact), else ``resamples`` random ones with (k+1)/(B+1).
    """
    d = d[d != 0]
    m = d.size
    if m == 0:
        return 1.0, "exact"
    observed = abs(d.sum())
    tol = 1e-9 * np.abs(d).sum()  # the identity flip must count despite rounding in the matrix product
    if 2 ** m <= resamples:
        signs = 1 - 2 * ((np.arange(2 ** m)[:, None] >> np.arange(m)) & 1)
        return float(np.mean(np.abs(signs @ d) >= observed - tol)), "exact"
    # Random flips, one random byte per 8 differences: a table of the 256 partial sums of each group of
    # 8 turns a flip vector's sum into one lookup per group (8× less work than a ±1 matrix product).
    groups = -(-m // 8)
    padded = np.zeros(groups * 8)
    padded[:m] = d
    table = ((np.arange(256)[:, None] >> np.arange(8)) & 1) @ padded.reshape(groups, 8).T  # (256, groups)
    table = np.ascontiguousarray(table.T)  # (groups, 256)
    offsets = np.arange(groups) * 256
    chunk = max(1, _CHUNK_VALUES // groups)
    hits = 0
    for start in range(0, resamples, chunk):
        c = min(chunk, resamples - start)
        flips = rng.integers(0, 256, size=(c, groups), dtype=np.uint8)
        positive = table.ravel()[flips + offsets].sum(axis=1)  # sum of the differences that keep their sign
        hits += int(np.count_nonzero(np.abs(2 * positive - d.sum()) >= observed - tol))
    return (hits + 1) / (resamples + 1), f"{resamples} random flips"


def sign_test_p(d: np.ndarray) -> float:
    """Two-sided exact sign test (binomial, p = 1/2) on the non-zero differences."""
    nonzero = int(np.count_nonzero(d))
    return 1.0 if nonzero == 0 else float(stats.binomtest(int(np.count_nonzero(d > 0)), nonzero, 0.5).pvalue)


def paired(a: Any, b: Any, *, resamples: int = RESAMPLES, confidence: float = CONFIDENCE, seed: int = 0,
           test: str = "auto", ci: str = "percentile", alpha: float = ALPHA) -> PairedResult:
    """Compare per-sample scores ``b`` against ``a`` (same samples, same order).

    Args:
        a, b: (n_samples,) for one seed, or (n_seeds, n_samples); the seed counts may differ.
        resamples: bootstrap resamples and random sign flips.
        confidence: level of the interval.
        seed: seeds the bootstrap and the permutation test (separate streams).
        test: "auto" (sign-flip permutation with one seed per method, bootstrap test with several),
            "permutation", "sign" (exact sign test) or "bootstrap".
        ci: "percentile", or "bca" (one seed per method only).
        alpha: level at which ``significant`` is judged.
    """
    a, b = _seed_matrix(a, "a"), _seed_matrix(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must score the same samples: {a.shape[1]} vs {b.shape[1]} columns")
    if test not in (*TESTS, "auto"):
        raise ValueError(f"unknown test {test!r}: choose one of auto, {', '.join(TESTS)}")
    if ci not in CI_METHODS:
        raise ValueError(f"unknown CI method {ci!r}: choose one of {', '.join(CI_METHODS)}")
    if resamples < 1 or not 0 < confidence < 1:
        raise ValueError("resamples must be ≥ 1 and confidence in (0, 1)")
    hierarchical = a.shape[0] > 1 or b.shape[0] > 1
    test = ("bootstrap" if hierarchical else "permutation") if test == "auto" else test
    if hierarchical and ci == "bca":
        raise ValueError("the BCa interval is implemented for one seed per method; use ci='percentile' with seeds")
    boot_rng, test_rng = np.random.default_rng(seed).spawn(2)
    d = b.mean(axis=0) - a.mean(axis=0)
    delta = float(d.mean())
    boot = bootstrap_deltas(a, b, resamples, boot_rng)
    if ci == "bca":
        lo, hi = _bca(boot, d, delta, confidence)
    else:
        lo, hi = (float(v) for v in np.quantile(boot, [(1 - confidence) / 2, (1 + confidence) / 2]))
    if test == "permutation":
        p, how = sign_flip_p(d, resamples, test_rng)
        name = f"{TESTS[test]} ({how})"
    elif test == "bootstrap":
        tail = min(np.count_nonzero(boot <= 0), np.count_nonzero(boot >= 0))
        p, name = min(1.0, 2 * (int(tail) + 1) / (resamples + 1)), ("hierarchical " if hierarchical else "paired ") + TESTS[test]
    else:
        p, name = sign_test_p(d), TESTS[test]
    return PairedResult(delta=delta, ci_low=lo, ci_high=hi, p_value=p, p_adjusted=p, test=name,
                        method="hierarchical bootstrap" if hierarchical else "paired bootstrap",
                        ci_method="BCa" if ci == "bca" else "percentile", n_samples=int(d.size),
                        n_seeds_a=a.shape[0], n_seeds_b=b.shape[0], resamples=resamples, confidence=confidence, alpha=alpha)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's (1979) step-down adjusted p-values, in the input order."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((p.size - np.arange(p.size)) * p[order])
    out = np.empty_like(p)
    out[order] = np.minimum(1.0, stepped)
    return out


def adjust(results: Sequence[PairedResult]) -> list[PairedResult]:
    """``results`` with Holm-adjusted ``p_adjusted`` across all of them (the comparisons of one table)."""
    adjusted = holm([r.p_value for r in results])
    return [replace(r, p_adjusted=float(q), correction="Holm") for r, q in zip(results, adjusted)]
