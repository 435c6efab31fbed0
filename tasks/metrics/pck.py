"""JHMDB keypoint propagation: PCK normalised by the ground-truth person box.

Follows CRW's ``code/eval/eval_pck.py`` (github.com/ajabri/videowalk; the same file is used by
CropMAE and T-CORE): frame 0 (the given pose) is not scored; the reference length of a frame is
``0.6 ×`` the diagonal of the box around that frame's ground-truth joints; a joint is correct when
its distance to the ground truth is at most ``α ×`` that length; PCK@α is the mean over the 15
joints of each joint's fraction of correct predictions, pooled over all frames of all videos.

Known bugs of ``eval_pck.py`` fixed here (each changes numbers only in the cases named):

1. *Visibility from the prediction.* ``jnt_visible`` is set from the **predicted** x < 0 (the
   "lost" marker), and those joints are then skipped both in the box and in the score, so losing a
   joint removes it from the evaluation instead of counting it wrong. Here (variant ``fixed``, the
   JHMDB task's default ``pck: fixed``) every ground-truth joint is scored and builds the box; a lost
   joint (NaN) counts as a miss. Variant ``crw`` keeps CRW's convention, named in the result.
2. *Hard-coded feature resolution.* Predictions are rescaled with a constant ``feat_res`` (40 in
   CRW, 20×20 in T-CORE) whatever the encoder's grid; here the caller passes predictions in image
   pixels, converted with the grid the features really had (:func:`grid_to_pixels`).
3. *Not a bug (an earlier version of this file listed it as one):* CRW maps pixel x to grid
   ``x / stride`` and back with ``u × stride``. The label of a cell then sits at its top-left corner
   while its feature describes its centre, but encode and decode use the same mapping, so the round
   trip is exact and no score is biased. It is the ``crw`` convention of :func:`pixels_to_grid`
   (the default of every preset, ``pose_coords: crw``); ``centre`` aligns pixel and cell centres.
4. *Degenerate boxes.* A frame whose joints all coincide has a zero reference length and divides by
   zero; such frames are left out and counted.
"""
from __future__ import annotations

import warnings

import numpy as np

THRESHOLDS = (0.1, 0.2)  # CRW / T-CORE report PCK@0.1 and PCK@0.2
BOX_SCALE = 0.6  # eval_pck.py: now_boxes[k] = 0.6 * norm([maxx, maxy] - [minx, miny])


def pixels_to_grid(points: np.ndarray, image_size: tuple[int, int], grid: tuple[int, int],
                   convention: str = "centre") -> np.ndarray:
    """Pixel coordinates ``(..., 2)`` (x, y; 0-based) → grid coordinates.

    ``centre``: pixel centres onto cell centres (cell ``u`` covers pixels around ``(u + 0.5) × stride``).
    ``crw``: ``x × grid / image`` as CRW's ``JhmdbSet`` (``lbls_coord × neww / wd / mapScale``).
    """
    (H, W), (h, w) = image_size, grid
    scale = np.array([w / W, h / H])
    offset = 0.5 if convention == "centre" else 0.0
    return (np.asarray(points, dtype=np.float64) + offset) * scale - offset


def grid_to_pixels(points: np.ndarray, image_size: tuple[int, int], grid: tuple[int, int],
                   convention: str = "centre") -> np.ndarray:
    """Inverse of :func:`pixels_to_grid` under the same ``convention``."""
    (H, W), (h, w) = image_size, grid
    return pixels_to_grid(points, (h, w), (H, W), convention)


def normalised_distances(pred: np.ndarray, gt: np.ndarray, variant: str = "fixed") -> tuple[np.ndarray, int]:
    """Distances of frames 1.. divided by each frame's reference length.

    Args:
        pred: ``(T, J, 2)`` predicted pixels (NaN = lost).
        gt: ``(T, J, 2)`` ground-truth pixels.
        variant: ``fixed`` (a lost joint is a miss: distance inf, every GT joint builds the box) or
            ``crw`` (``eval_pck.py``'s conventions, bug 1 kept: a lost joint is left out of the box and
            of the score, distance NaN).

    Returns:
        ``(T', J)`` normalised distances of the scored frames, and the number of frames left out for a
        zero-size box.
    """
    pred, gt = np.asarray(pred, np.float64)[1:], np.asarray(gt, np.float64)[1:]
    if pred.shape != gt.shape:
        raise ValueError(f"predicted keypoints {pred.shape} and ground truth {gt.shape} differ in shape")
    lost = np.isnan(pred).any(axis=-1)
    boxed = np.where((lost & (variant == "crw"))[..., None], np.nan, gt)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)  # a frame whose joints are all lost
        diag = np.linalg.norm(np.nanmax(boxed, axis=1) - np.nanmin(boxed, axis=1), axis=-1)
    ref = BOX_SCALE * diag
    keep = ref > 0
    d = np.linalg.norm(pred - gt, axis=-1)
    d = np.where(lost, np.nan if variant == "crw" else np.inf, d)
    return d[keep] / ref[keep, None], int((~keep).sum())


def pck(distances: np.ndarray, thresholds: tuple[float, ...] = THRESHOLDS) -> dict[str, float]:
    """``{"PCK@0.1": ..., "PCK@0.2": ...}`` in [0, 1]: mean over joints of per-joint accuracy (over the
    frames where the joint is scored; a joint never scored is left out of the mean).

    Args:
        distances: ``(N, J)`` normalised distances pooled over all scored frames of all videos.
    """
    distances = np.asarray(distances, np.float64)
    if distances.ndim != 2 or distances.shape[0] == 0:
        raise ValueError("no scored frames: every video needs at least two frames with a non-degenerate pose")
    scored = ~np.isnan(distances)  # NaN: a joint the ``crw`` variant leaves out
    with np.errstate(invalid="ignore", divide="ignore"):
        per_joint = {a: (distances <= a).sum(axis=0) / scored.sum(axis=0) for a in thresholds}
    return {f"PCK@{a:g}": float(np.nanmean(v)) for a, v in per_joint.items()}
