"""JHMDB PCK on constructed poses: thresholds relative to 0.6 x the GT box diagonal, frame 0 skipped."""
from __future__ import annotations

import numpy as np
import pytest

from tasks.metrics.pck import grid_to_pixels, normalised_distances, pck, pixels_to_grid


def pose() -> np.ndarray:
    """15 joints spanning a 30 x 40 box (diagonal 50, reference length 0.6 * 50 = 30)."""
    rng = np.random.default_rng(0)
    p = np.stack([rng.uniform(10, 40, 15), rng.uniform(20, 60, 15)], -1)
    p[0], p[1] = (10, 20), (40, 60)
    return p


def test_pck_thresholds_by_hand():
    gt = np.stack([pose(), pose()])
    pred = gt.copy()
    pred[0] += 100  # frame 0 is the given pose: never scored
    pred[1, 2, 0] += 2.9  # within 0.1 * 30 = 3
    pred[1, 3, 1] += 4.0  # within 0.2 * 30 = 6 only
    pred[1, 4] += (7.0, 0.0)  # beyond both
    pred[1, 5] = np.nan  # lost joint: a miss (eval_pck.py would drop it)
    d, degenerate = normalised_distances(pred, gt)
    assert d.shape == (1, 15) and degenerate == 0
    assert d[0, 2] == pytest.approx(2.9 / 30) and np.isinf(d[0, 5])
    assert pck(d) == pytest.approx({"PCK@0.1": 12 / 15, "PCK@0.2": 13 / 15})


def test_perfect_and_degenerate_frames():
    gt = np.stack([pose()] * 3)
    gt[2] = 5.0  # all joints at one point: zero reference length, left out
    d, degenerate = normalised_distances(gt, gt)
    assert degenerate == 1 and d.shape == (1, 15)
    assert pck(d) == {"PCK@0.1": 1.0, "PCK@0.2": 1.0}


def test_grid_mapping_uses_cell_centres():
    # 320 px wide image, 20 cells: the centre of cell 0 is pixel 7.5, of cell 19 pixel 311.5
    px = np.array([[7.5, 7.5], [311.5, 151.5]])
    g = pixels_to_grid(px, (320, 320), (20, 20))
    assert g == pytest.approx(np.array([[0.0, 0.0], [19.0, 9.0]]))
    assert grid_to_pixels(g, (320, 320), (20, 20)) == pytest.approx(px)


def test_crw_grid_mapping_is_consistent_over_the_round_trip():
    # CRW: grid = x * 20 / 320 (pixel 16 -> cell 1.0), decoded with the inverse: no net shift
    px = np.array([[16.0, 0.0], [311.5, 151.5]])
    g = pixels_to_grid(px, (320, 320), (20, 20), "crw")
    assert g == pytest.approx(px / 16)
    assert grid_to_pixels(g, (320, 320), (20, 20), "crw") == pytest.approx(px)


def test_crw_variant_leaves_lost_joints_out_fixed_counts_them_wrong():
    gt = np.stack([pose(), pose()])
    pred = gt.copy()
    pred[1, 5] = np.nan  # lost
    pred[1, 1] = np.nan  # the joint at (40, 60) that spans the box: CRW's box shrinks without it
    fixed, _ = normalised_distances(pred, gt, "fixed")
    crw, _ = normalised_distances(pred, gt, "crw")
    assert np.isinf(fixed[0, 5]) and np.isnan(crw[0, 5])
    assert pck(fixed)["PCK@0.1"] == pytest.approx(13 / 15)
    assert pck(crw)["PCK@0.1"] == 1.0  # 13 scored joints, all exact; the 2 lost ones do not count
    pred[1, 2, 0] += 2.9  # 2.9 px: within 0.1 x 30 for the full box, not for CRW's smaller one
    small = 0.6 * np.linalg.norm(np.delete(gt[1], [1, 5], 0).max(0) - np.delete(gt[1], [1, 5], 0).min(0))
    assert normalised_distances(pred, gt, "crw")[0][0, 2] == pytest.approx(2.9 / small)
