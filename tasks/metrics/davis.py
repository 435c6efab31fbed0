"""DAVIS-2017 semi-supervised J and F with the semantics of the official davis2017-evaluation.

Reproduces ``davis2017/metrics.py`` (``db_eval_iou``, ``f_measure``, ``_seg2bmap``),
``davis2017/utils.py`` (``db_statistics``) and ``davis2017/evaluation.py`` +
``evaluation_method.py`` (github.com/davisvideochallenge/davis2017-evaluation):

- the first and the last frame of every sequence are excluded (semi-supervised);
- objects are the ids ``1..N`` with ``N`` the largest id of the first annotation; the GT's void
  label 255 is set to background before scoring (``_get_all_elements``), so void pixels count as
  background exactly as in the official tool;
- J is the IoU per object and frame (1 when both masks are empty); F is the boundary F-measure
  with a tolerance of ``ceil(0.008 × image diagonal)`` pixels, boundaries from ``seg2bmap`` and
  dilated by a disk with OpenCV, as the official code does;
- per object: Mean, Recall (fraction of frames > 0.5) and Decay (mean of the first quarter minus the
  last quarter of frames, four bins as in the Matlab original);
- globally: each statistic averaged over all objects of all sequences, and
  ``J&F-Mean = (mean J-Mean + mean F-Mean) / 2``.

Two deliberate differences, both about failure modes rather than numbers: a prediction that never
shows some object is scored with an empty mask for it (older official versions exit instead), and
the Decay bin indices are plain integers (the official ``astype(np.uint8)`` wraps around past 255
frames, which no DAVIS-2017 val sequence reaches).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from skimage.morphology import disk

BOUND_TH = 0.008  # davis2017 metrics.f_measure(bound_th=0.008): fraction of the image diagonal
GLOBAL_COLUMNS = ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]


def db_eval_iou(annotation: np.ndarray, segmentation: np.ndarray) -> np.ndarray:
    """Jaccard index of binary masks over the last two axes; 1 where both are empty."""
    annotation, segmentation = annotation.astype(bool), segmentation.astype(bool)
    inters = np.sum(segmentation & annotation, axis=(-2, -1))
    union = np.sum(segmentation | annotation, axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        j = inters / union
    return np.where(np.isclose(union, 0), 1.0, j)


def seg2bmap(seg: np.ndarray) -> np.ndarray:
    """One-pixel-wide boundary map of a binary mask (D. Martin's ``seg2bmap``, as davis2017 ports it).

    A pixel is on the boundary when it differs from its east, south or south-east neighbour; the
    boundary is offset by half a pixel towards the origin.
    """
    seg = seg.astype(bool)
    e, s, se = np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = seg ^ e | seg ^ s | seg ^ se
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = 0
    return b


def f_measure(foreground_mask: np.ndarray, gt_mask: np.ndarray, bound_th: float = BOUND_TH) -> float:
    """Boundary F-measure between a predicted and a ground-truth binary mask (davis2017 ``f_measure``)."""
    bound_pix = bound_th if bound_th >= 1 else np.ceil(bound_th * np.linalg.norm(foreground_mask.shape))
    fg_boundary = seg2bmap(foreground_mask)
    gt_boundary = seg2bmap(gt_mask)
    kernel = disk(bound_pix).astype(np.uint8)
    fg_dil = cv2.dilate(fg_boundary.astype(np.uint8), kernel)
    gt_dil = cv2.dilate(gt_boundary.astype(np.uint8), kernel)
    gt_match = gt_boundary * fg_dil
    fg_match = fg_boundary * gt_dil
    n_fg, n_gt = np.sum(fg_boundary), np.sum(gt_boundary)
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1.0, 0.0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0.0, 1.0
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    else:
        precision, recall = np.sum(fg_match) / float(n_fg), np.sum(gt_match) / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


def db_statistics(per_frame_values: np.ndarray) -> tuple[float, float, float]:
    """Mean, Recall (> 0.5) and Decay (first quarter minus last quarter) of per-frame values."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean = float(np.nanmean(per_frame_values))
        recall = float(np.nanmean(per_frame_values > 0.5))
        n_bins = 4
        ids = (np.round(np.linspace(1, len(per_frame_values), n_bins + 1) + 1e-10) - 1).astype(int)
        bins = [per_frame_values[ids[i] : ids[i + 1] + 1] for i in range(n_bins)]
        decay = float(np.nanmean(bins[0]) - np.nanmean(bins[3]))
    return mean, recall, decay


@dataclass
class ObjectScore:
    """Per-object statistics of one sequence (the rows of the per-sequence table)."""

    sequence: str
    object_id: int
    j: tuple[float, float, float]
    f: tuple[float, float, float]

    @property
    def name(self) -> str:  # davis2017 evaluation.py names objects f"{seq}_{ii+1}"
        return f"{self.sequence}_{self.object_id}"


def evaluate_sequence(name: str, gt: np.ndarray, pred: np.ndarray, bound_th: float = BOUND_TH) -> list[ObjectScore]:
    """Score one sequence.

    Args:
        name: sequence name.
        gt: ``(T, H, W)`` integer ground truth of *all* frames (255 = void, treated as background).
        pred: ``(T, H, W)`` integer prediction of all frames (frame 0 and the last are ignored).
        bound_th: boundary tolerance (fraction of the diagonal, or pixels if >= 1).

    Returns:
        One :class:`ObjectScore` per object id ``1..max(gt[0])``.

    Raises:
        ValueError: shapes differ, or the prediction uses an id above the number of objects.
    """
    if gt.shape != pred.shape:
        raise ValueError(f"sequence {name}: prediction shape {pred.shape} != annotation shape {gt.shape}")
    gt = np.where(gt == 255, 0, gt)
    n_obj = int(gt[0].max())
    gt, pred = gt[1:-1], pred[1:-1]
    if pred.size and int(pred.max()) > n_obj:
        raise ValueError(f"sequence {name}: predicted object id {int(pred.max())} but the first annotation has {n_obj} objects")
    out = []
    for obj in range(1, n_obj + 1):
        g, p = gt == obj, pred == obj
        j = db_eval_iou(g, p)
        f = np.array([f_measure(p[i], g[i], bound_th) for i in range(len(g))])
        out.append(ObjectScore(name, obj, db_statistics(j), db_statistics(f)))
    return out


def global_metrics(scores: list[ObjectScore]) -> dict[str, float]:
    """The official global table: each statistic averaged over all objects; J&F-Mean as the mean of the two means."""
    if not scores:
        raise ValueError("no objects to average: the evaluated sequences have no annotated object")
    j = np.array([s.j for s in scores])
    f = np.array([s.f for s in scores])
    jm, fm = j.mean(0), f.mean(0)
    values = [(jm[0] + fm[0]) / 2.0, *jm, *fm]
    return {k: float(v) for k, v in zip(GLOBAL_COLUMNS, values)}
