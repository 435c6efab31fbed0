"""VIP mIoU from a confusion matrix built on constructed labels."""
from __future__ import annotations

import numpy as np
import pytest

from tasks.metrics.vip import confusion, per_class_iou, scores


def test_confusion_and_miou_by_hand():
    gt = np.array([0, 0, 1, 1, 2, 255, 0])
    pred = np.array([0, 1, 1, 1, 0, 3, 5])
    hist = confusion(gt, pred, 20)
    assert hist.sum() == 6  # the 255 pixel is ignored
    assert hist[0, 0] == 1 and hist[0, 1] == 1 and hist[1, 1] == 2 and hist[2, 0] == 1 and hist[0, 5] == 1
    iou = per_class_iou(hist)
    # class 0: 1 / (3 + 2 - 1); class 1: 2 / (2 + 3 - 2); class 2: 0 / 1; class 5: 0 / 1; others undefined
    assert iou[0] == pytest.approx(1 / 4) and iou[1] == pytest.approx(2 / 3) and iou[2] == 0 and iou[5] == 0
    assert np.isnan(iou[3]) and np.isnan(iou[19])
    s = scores(hist)
    assert s["mIoU"] == pytest.approx((1 / 4 + 2 / 3) / 4)
    assert s["pixel_accuracy"] == pytest.approx(3 / 6)


def test_perfect_and_accumulated():
    gt = np.random.default_rng(0).integers(0, 20, (30, 40))
    assert scores(confusion(gt, gt, 20))["mIoU"] == 1.0
    total = confusion(gt[:15], gt[:15], 20) + confusion(gt[15:], np.zeros_like(gt[15:]), 20)
    assert total.sum() == gt.size and scores(total)["mIoU"] < 1.0


def test_out_of_range_prediction_rejected():
    with pytest.raises(ValueError, match="class ids"):
        confusion(np.array([0, 1]), np.array([0, 20]), 20)
