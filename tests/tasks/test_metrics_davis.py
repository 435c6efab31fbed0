"""DAVIS J and F on constructed masks whose values follow by hand from the official definitions."""
from __future__ import annotations

import numpy as np
import pytest

from tasks.metrics.davis import (
    db_eval_iou,
    db_statistics,
    evaluate_sequence,
    f_measure,
    global_metrics,
    seg2bmap,
)


def square(top: int, left: int, side: int, shape=(100, 100)) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[top : top + side, left : left + side] = True
    return m


def sequence(masks: list[np.ndarray]) -> np.ndarray:
    """Id maps (T, H, W) from per-frame lists of object masks (object i+1 = masks[i])."""
    return np.stack(masks).astype(np.uint8)


def test_iou_perfect_empty_and_shifted_square():
    a = square(10, 10, 20)
    assert db_eval_iou(a, a) == 1.0
    assert db_eval_iou(a, np.zeros_like(a)) == 0.0
    # shifted by 5 columns: intersection 20x15 = 300, union 2*400 - 300 = 500
    assert db_eval_iou(a, square(10, 15, 20)) == pytest.approx(300 / 500)
    assert db_eval_iou(np.zeros_like(a), np.zeros_like(a)) == 1.0  # both empty: 1, as davis2017


def test_seg2bmap_square_outline():
    # a 20x20 square's boundary is the ring of side 21 offset half a pixel to the origin: 4 * 20 pixels
    b = seg2bmap(square(20, 20, 20))
    assert b.sum() == 80
    assert b[19, 19:40].all() and b[19:40, 39].all() and not b[25, 25]


def test_boundary_f_known_contour():
    gt = square(20, 20, 20)
    assert f_measure(gt, gt) == 1.0
    assert f_measure(np.zeros_like(gt), gt) == 0.0  # no predicted boundary: precision 1, recall 0
    # an extra 10x10 object far away: precision 80 / (80 + 40), recall 1 -> F = 2*(2/3)/(5/3) = 0.8
    pred = gt | square(70, 70, 10)
    assert f_measure(pred, gt) == pytest.approx(0.8)


def test_boundary_tolerance_is_ceil_of_0008_diagonal():
    # 100x100: ceil(0.008 * 141.4) = 2 pixels; a 2-pixel shift is tolerated, a 3-pixel one is not
    gt = square(20, 20, 20)
    assert f_measure(square(20, 22, 20), gt) == 1.0
    assert f_measure(square(20, 23, 20), gt) < 1.0


def test_statistics_mean_recall_decay():
    m, r, d = db_statistics(np.array([1, 1, 1, 1, 0, 0, 0, 0], float))
    # bins from round(linspace(1, 8, 5)) - 1 = [0, 2, 4, 5, 7]: first [1, 1, 1], last [0, 0, 0]
    assert (m, r, d) == (0.5, 0.5, 1.0)


def test_sequence_excludes_first_and_last_frame_and_averages_objects():
    T = 6
    gt = sequence([square(10, 10 + 5 * t, 20).astype(int) + 2 * square(60, 60, 15) for t in range(T)])
    pred = gt.copy()
    pred[0] = 0
    pred[-1] = 0  # wrong on the excluded frames only
    pred[1:-1][pred[1:-1] == 2] = 0  # object 2 never predicted on scored frames
    scores = evaluate_sequence("seq", gt, pred)
    assert [s.name for s in scores] == ["seq_1", "seq_2"]
    assert scores[0].j == (1.0, 1.0, 0.0) and scores[0].f == (1.0, 1.0, 0.0)
    assert scores[1].j[0] == 0.0 and scores[1].f[0] == 0.0
    g = global_metrics(scores)
    assert g["J-Mean"] == 0.5 and g["F-Mean"] == 0.5 and g["J&F-Mean"] == 0.5


def test_void_is_background_and_unknown_ids_fail():
    gt = sequence([square(10, 10, 20).astype(int) for _ in range(4)])
    gt_void = gt.copy()
    gt_void[:, 0, :] = 255
    assert evaluate_sequence("s", gt_void, gt)[0].j[0] == 1.0
    bad = gt.copy()
    bad[1, 50, 50] = 3
    with pytest.raises(ValueError, match="object id 3"):
        evaluate_sequence("s", gt, bad)
