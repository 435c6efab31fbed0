"""VIP part-parsing mIoU from an accumulated confusion matrix.

Follows the evaluation every propagation paper uses for VIP (CRW/UVC's ``eval_vip.py``, kept
verbatim in CropMAE and T-CORE ``downstreams/propagation/src/eval/eval_vip.py``): one 20×20
confusion matrix (``fast_hist``) accumulated over all scored frames of all videos, ground-truth
values outside ``[0, 20)`` ignored, IoU per class ``TP / (GT + Pred - TP)``, and the mean over the
classes whose IoU is defined (``np.nanmean``: a class absent from both GT and predictions does not
count).
"""
from __future__ import annotations

import warnings

import numpy as np


def confusion(gt: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    """``(n, n)`` counts, rows = ground truth, columns = prediction (``fast_hist``)."""
    gt, pred = np.asarray(gt).astype(np.int64).ravel(), np.asarray(pred).astype(np.int64).ravel()
    keep = (gt >= 0) & (gt < n)
    if pred[keep].size and (pred[keep].min() < 0 or pred[keep].max() >= n):
        raise ValueError(f"predicted class ids must be in [0, {n}), got {pred[keep].min()}..{pred[keep].max()}")
    return np.bincount(n * gt[keep] + pred[keep], minlength=n * n).reshape(n, n)


def scores(hist: np.ndarray) -> dict[str, float]:
    """mIoU, overall pixel accuracy and mean class accuracy of a confusion matrix (``show_result``)."""
    hist = np.asarray(hist, dtype=np.float64)
    tp, gt_pix = np.diag(hist), hist.sum(1)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return {
            "mIoU": float(np.nanmean(per_class_iou(hist))),
            "pixel_accuracy": float(tp.sum() / hist.sum()),
            "mean_class_accuracy": float(np.nanmean(tp / gt_pix)),
        }


def per_class_iou(hist: np.ndarray) -> np.ndarray:
    """IoU of every class (NaN where undefined)."""
    hist = np.asarray(hist, dtype=np.float64)
    tp = np.diag(hist)
    with np.errstate(divide="ignore", invalid="ignore"):
        return tp / (hist.sum(1) + hist.sum(0) - tp)
