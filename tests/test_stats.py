"""Paired statistics on constructed cases whose answers are known, checked against scipy where it can."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from benchmark.stats import adjust, bootstrap_deltas, holm, paired, sign_flip_p


def _dyadic(n: int, seed: int = 0) -> np.ndarray:
    """Scores that are multiples of 1/64, so sums and differences below are exact in floating point."""
    return np.random.default_rng(seed).integers(0, 64, n) / 64


@pytest.mark.parametrize("test", ["permutation", "sign", "bootstrap"])
@pytest.mark.parametrize("ci", ["percentile", "bca"])
def test_identical_columns_give_zero_delta_a_ci_holding_zero_and_p_one(test, ci):
    a = np.random.default_rng(1).normal(size=300)
    r = paired(a, a.copy(), test=test, ci=ci, resamples=2000)
    assert r.delta == 0 and r.ci_low <= 0 <= r.ci_high and r.p_value == 1
    assert not r.significant and r.method == "paired bootstrap"


def test_constant_shift_gives_the_exact_delta_a_ci_clear_of_zero_and_a_tiny_p():
    a = _dyadic(300)
    r = paired(a, a + 0.25, resamples=5000)
    assert r.delta == 0.25 and r.ci_low == r.ci_high == 0.25
    assert r.test == "sign-flip permutation test (5000 random flips)"
    assert r.p_value == 1 / 5001  # no random flip reaches |sum| = 300 * 0.25 (chance 2^-299)
    assert r.significant and r.ci_excludes_zero
    assert paired(a, a + 0.25, test="sign").p_value == pytest.approx(2 * 0.5 ** 300)


def test_a_noisy_shift_is_found_and_the_ci_covers_it():
    rng = np.random.default_rng(2)
    a = rng.normal(size=400)
    r = paired(a, a + 0.2 + rng.normal(scale=0.5, size=400))
    se = 0.5 / math.sqrt(400)
    assert 0 < r.ci_low < 0.2 < r.ci_high and r.ci_high - r.ci_low == pytest.approx(2 * 1.96 * se, rel=0.15)
    assert r.p_value < 1e-3


def test_bootstrap_and_test_are_reproducible_with_a_seed():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=500), rng.normal(0.05, 1, 500)
    assert paired(a, b, seed=7) == paired(a, b, seed=7)
    assert paired(a, b, seed=7).ci_low != paired(a, b, seed=8).ci_low


@pytest.mark.parametrize("ci", ["percentile", "bca"])
def test_interval_matches_scipy_bootstrap(ci):
    """Same estimator as scipy.stats.bootstrap on one seed: the bounds agree within Monte-Carlo error."""
    d = np.random.default_rng(4).exponential(size=200)  # skewed, so BCa differs from percentile
    ours = paired(np.zeros_like(d), d, ci=ci, seed=0)
    ref = stats.bootstrap((d,), np.mean, n_resamples=10_000, method="BCa" if ci == "bca" else "percentile", rng=1)
    se = d.std() / math.sqrt(d.size)
    assert ours.ci_low == pytest.approx(ref.confidence_interval.low, abs=0.15 * se)
    assert ours.ci_high == pytest.approx(ref.confidence_interval.high, abs=0.15 * se)


def test_exact_sign_flip_p_equals_scipy_permutation_test():
    d = np.random.default_rng(5).normal(0.3, 1, 10)
    ref = stats.permutation_test((d,), lambda x, axis: np.mean(x, axis=axis), permutation_type="samples", vectorized=True)
    p, how = sign_flip_p(d, 10_000, np.random.default_rng(0))
    assert how == "exact" and p == pytest.approx(ref.pvalue, rel=1e-12)


def test_random_sign_flips_estimate_the_exact_p():
    d = np.random.default_rng(6).normal(0.4, 1, 14)
    exact, how = sign_flip_p(d, 2 ** 14, np.random.default_rng(0))
    approx, how_random = sign_flip_p(d, 10_000, np.random.default_rng(0))
    assert how == "exact" and how_random == "10000 random flips"
    assert approx == pytest.approx(exact, abs=4 * math.sqrt(exact * (1 - exact) / 10_000) + 1e-4)


def test_sign_test_drops_ties_and_matches_the_binomial_formula():
    d = np.array([1.0] * 9 + [-1.0] + [0.0, 0.0])
    r = paired(np.zeros_like(d), d, test="sign")
    assert r.test == "exact sign test" and r.p_value == pytest.approx(2 * (math.comb(10, 0) + math.comb(10, 1)) / 2 ** 10)


def test_holm_matches_the_step_down_formula():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005, 0.01, 0.03, 0.04 -> 4*0.005, 3*0.01, max(that, 2*0.03), max(that, 1*0.04)
    step = [4 * 0.005, max(4 * 0.005, 3 * 0.01), max(4 * 0.005, 3 * 0.01, 2 * 0.03), max(4 * 0.005, 3 * 0.01, 2 * 0.03, 0.04)]
    assert holm(p) == pytest.approx([step[1], step[3], step[2], step[0]])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_adjust_keeps_order_and_can_withdraw_significance():
    a = np.random.default_rng(7).normal(size=50)
    one = paired(a, a + 0.3, resamples=500)
    raw = [replace(one, p_value=p, p_adjusted=p) for p in (0.04, 0.001, 0.5)]
    adjusted = adjust(raw)
    assert [r.p_value for r in adjusted] == [0.04, 0.001, 0.5]
    assert [r.p_adjusted for r in adjusted] == pytest.approx([2 * 0.04, 3 * 0.001, 0.5])
    assert raw[0].significant and not adjusted[0].significant  # 0.04 < 0.05, but not after Holm over three
    assert all(r.correction == "Holm" for r in adjusted) and "Holm-adjusted p = 0.08" in adjusted[0].describe()


def test_hierarchical_bootstrap_resamples_seeds_known_distribution():
    """b's two seeds differ by ±0.5 on every sample: Δ* is 0.25 − 0.5, 0.25 or 0.25 + 0.5 with
    probabilities 1/4, 1/2, 1/4 (two seed draws), so the 95 % interval is [−0.25, 0.75] up to rounding."""
    a = _dyadic(50)
    b = np.stack([a + 0.75, a - 0.25])
    r = paired(a, b, resamples=4000)
    assert r.method == "hierarchical bootstrap" and (r.n_seeds_a, r.n_seeds_b) == (1, 2)
    assert r.delta == 0.25 and (r.ci_low, r.ci_high) == pytest.approx((-0.25, 0.75), abs=1e-12)
    assert r.test == "hierarchical bootstrap test" and 0.35 < r.p_value < 0.65 and not r.significant
    boot = bootstrap_deltas(a[None], b, 4000, np.random.default_rng(0))
    assert np.mean(np.isclose(boot, -0.25)) == pytest.approx(0.25, abs=4 * math.sqrt(0.25 * 0.75 / 4000))
    # the seed-averaged differences are all 0.25: a per-sample test alone would call this certain
    assert paired(a, b, test="permutation").p_value < 1e-3
    with pytest.raises(ValueError, match="BCa"):
        paired(a, b, ci="bca")


def test_hierarchical_interval_is_wider_than_the_seed_blind_one():
    rng = np.random.default_rng(8)
    a = rng.normal(size=(3, 300))
    b = a.mean(0) + 0.1 + rng.normal(size=300) * 0.2 + rng.normal(scale=0.3, size=(3, 1))  # seed offsets
    seeds = paired(a, b)
    blind = paired(a.mean(0), b.mean(0))
    assert seeds.delta == pytest.approx(blind.delta)
    assert seeds.ci_high - seeds.ci_low > 1.5 * (blind.ci_high - blind.ci_low)


pairs = st.lists(st.tuples(st.floats(-1, 1), st.floats(-1, 1)), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)  # same cases on every machine, no files
@given(pairs, st.integers(0, 3), st.sampled_from(["percentile", "bca"]))
def test_ci_contains_delta_and_swapping_mirrors_everything(rows, seed, ci):
    a, b = np.array(rows).T
    r = paired(a, b, resamples=500, seed=seed, ci=ci)
    s = paired(b, a, resamples=500, seed=seed, ci=ci)
    assert r.ci_low - 1e-12 <= r.delta <= r.ci_high + 1e-12
    assert 0 < r.p_value <= 1
    assert s.delta == pytest.approx(-r.delta, abs=1e-12)
    assert (s.ci_low, s.ci_high) == pytest.approx((-r.ci_high, -r.ci_low), abs=1e-12)
    assert s.p_value == r.p_value


def test_interval_covers_the_true_delta_and_the_test_holds_its_level():
    """Calibration on 200 simulated tasks of 60 samples: the 95 % interval covers the true Δ about 95 %
    of the time and, with no effect, p < 0.05 about 5 % of the time (binomial sd of either rate ≈ 1.5 %)."""
    rng = np.random.default_rng(10)
    covered = rejected = 0
    for k in range(200):
        a = rng.normal(size=60)
        b = a + 0.1 + rng.standard_t(4, size=60) * 0.3  # heavy-tailed per-sample differences, true Δ = 0.1
        r = paired(a, b, resamples=1000, seed=k)
        covered += r.ci_low <= 0.1 <= r.ci_high
        rejected += paired(a, b - 0.1, resamples=1000, seed=k).p_value < 0.05
    assert 0.88 <= covered / 200 <= 0.99
    assert rejected / 200 <= 0.10
