"""DAVIS-2017 semi-supervised video object segmentation by label propagation.

The first frame's object masks are propagated through the method's frame features
(:mod:`tasks.propagation`, preset ``cosettle`` by default) and scored with the official
davis2017-evaluation semantics (:mod:`tasks.metrics.davis`): first and last frames excluded,
J&F-Mean = (mean J-Mean + mean F-Mean) / 2 over all objects of the val sequences. The
per-object table is written beside the result, and ``save_predictions`` writes indexed palette PNGs
in the DAVIS result layout (``<seq>/<frame>.png``), which ``bench score davis`` scores alone
(:meth:`Davis.score_folder`).

Per-sample scores are per sequence (``J``, ``F``: means over the sequence's objects; ``J&F`` their
mean; ``objects``). The official J&F-Mean averages over *objects*, so it is the ``objects``-weighted
mean of the per-sequence J&F (:meth:`Davis.aggregate`), not their plain mean.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from tqdm import tqdm

from benchmark.context import RunContext
from benchmark.errors import UserError
from benchmark.data.davis import DavisSequence, load_davis, read_mask, write_mask
from benchmark.data.frames import Video
from tasks.base import TaskMeta, TaskOutput
from tasks.dense import PropagationTask, SegmentationConfig, dense_output, video_features
from tasks.metrics.davis import BOUND_TH, ObjectScore, evaluate_sequence, global_metrics
from tasks.presets import PropagationConfig, resolve
from tasks.propagation import grid_to_labels, labels_to_grid, propagate
from benchmark.registry import TASKS

VOID = 255  # DAVIS void label: background for propagation and scoring (davis2017 _get_all_elements)


def propagate_masks(method: Any, frames: np.ndarray | Video, first: np.ndarray, cfg: PropagationConfig, rule: list) -> np.ndarray:
    """Object ids ``uint8 (T, H, W)`` of every frame, propagated from the first frame's mask.

    Frame 0 of the result is the given mask (as DINO's and CRW's scripts write it).
    """
    first = np.where(first == VOID, 0, first)
    feats, size = video_features(method, frames, rule, cfg.frame_resize)
    frame = size if cfg.upsample == "frame" else None
    device = feats.device
    ids = torch.as_tensor(np.unique(first).astype(np.int64), device=device)
    grid = tuple(feats.shape[1:3])
    start = labels_to_grid(torch.as_tensor(first.astype(np.int64), device=device), ids, grid, cfg.label_downsample,
                           cfg.index_resize)
    soft = propagate(feats, start, cfg)
    out = np.empty((len(frames), *first.shape), np.uint8)
    out[0] = first
    for t in range(1, len(frames)):
        out[t] = ids[grid_to_labels(soft[t], first.shape, cfg.norm_mask, frame, cfg.index_resize)].cpu().numpy()
    return out


def score_sequences(items: Iterable[tuple[str, np.ndarray, np.ndarray]], bound_th: float) -> tuple[dict[str, float], pd.DataFrame]:
    """Global metrics and the per-object table of ``(name, ground truth, prediction)`` sequences."""
    scores: list[ObjectScore] = []
    for name, gt, pred in items:
        try:
            scores.extend(evaluate_sequence(name, gt, pred, bound_th))
        except ValueError as e:
            raise UserError(f"{e}: fix the prediction of sequence {name}") from None
    table = pd.DataFrame(
        [{"Sequence": s.name, "J-Mean": s.j[0], "F-Mean": s.f[0], "J-Recall": s.j[1], "J-Decay": s.j[2],
          "F-Recall": s.f[1], "F-Decay": s.f[2]} for s in scores]
    )
    return global_metrics(scores), table


def per_sequence(table: pd.DataFrame) -> dict[str, list]:
    """Per-sample columns (one row per sequence, in evaluation order) of a per-object table, whose
    rows are named ``<sequence>_<object>`` as davis2017-evaluation names them."""
    g = table.groupby(table["Sequence"].str.rsplit("_", n=1).str[0], sort=False)
    j, f = g["J-Mean"].mean(), g["F-Mean"].mean()
    return {"id": list(j.index), "J&F": ((j + f) / 2).tolist(), "J": j.tolist(), "F": f.tolist(),
            "objects": g.size().astype(int).tolist()}


def scorable(sequences: list[DavisSequence], split: str) -> list[DavisSequence]:
    """The sequences, if every one is fully annotated (the official tool needs all frames) and has a frame
    to score (it leaves out the first and the last: a 1- or 2-frame sequence would score NaN)."""
    for seq in sequences:
        if len(seq.frames) < 3:
            raise UserError(f"sequence {seq.name} of the {split} split has {len(seq.frames)} frame(s): DAVIS scoring "
                            "leaves out the first and last frames, so it needs at least 3; remove it from the split list")
        if not seq.fully_annotated:
            raise UserError(
                f"sequence {seq.name} of the {split} split annotates only its first frame, so it cannot be "
                "scored: use a split with full annotations (val, train)"
            )
    return sequences


@TASKS.register("davis", "DAVIS-2017 semi-supervised VOS by label propagation, J&F-Mean")
class Davis(PropagationTask):
    """DAVIS-2017 semi-supervised VOS by label propagation, J&F-Mean."""

    meta = TaskMeta(
        name="davis",
        dataset="davis",
        main_metric="J&F-Mean",
        higher_is_better=True,
        protocol="DAVIS-2017 val, semi-supervised label propagation (T-CORE/CRW/DINO presets), "
        "davis2017-evaluation J&F",
        sample_unit="sequence",
        sample_metric="J&F",
    )
    version = 3  # 2: per-sequence samples; presets resolved into the stored config; 3: index_resize (dino: PIL nearest)
    score_split = "val"

    class Config(SegmentationConfig):
        """configs/tasks/davis.yaml."""

        split: Annotated[str, Field(min_length=1)]  # ImageSets/2017/<split>.txt
        resolution: Literal["480p", "Full-Resolution"]  # the release's two folders
        bound_th: Annotated[float, Field(gt=0, lt=1)]  # fraction of the diagonal
        sequences: list[Annotated[str, Field(min_length=1)]]

    @staticmethod
    def check_data(config: dict[str, Any], ctx: RunContext) -> list[DavisSequence]:
        """The scorable sequences of the configured split (also `bench run`'s check before any job starts)."""
        split = config.get("split", "val")
        return scorable(load_davis(ctx.dataset_path("davis"), split, config.get("resolution", "480p"),
                                   config.get("sequences") or None), split)

    def evaluate(self, method: Any, ctx: RunContext) -> TaskOutput:
        cfg, rule = resolve(self.config, "davis")
        split = self.config.get("split", "val")
        bound_th = float(self.config.get("bound_th", BOUND_TH))
        sequences = self.check_data(self.config, ctx)
        pred_dir = ctx.work_dir / "davis" if self.config.get("save_predictions") else None

        def items() -> Iterable[tuple[str, np.ndarray, np.ndarray]]:
            for seq in tqdm(sequences, desc="davis", disable=not ctx.progress, leave=False):
                gt = seq.read_masks()
                pred = propagate_masks(method, Video(seq.frames[0].parent, seq.frames), gt[0], cfg, rule)
                if pred_dir is not None:
                    for path, mask in zip(seq.frames, pred):
                        write_mask(pred_dir / seq.name / f"{path.stem}.png", mask)
                yield seq.name, gt, pred

        metrics, table = score_sequences(items(), bound_th)
        return dense_output(self.config, cfg, rule, ctx.work_dir, metrics,
                            {"per_sequence": (table, f"davis_per-sequence_results-{split}.csv")}, pred_dir,
                            per_sequence(table), split=split, bound_th=bound_th, sequences=len(sequences),
                            objects=len(table))

    @classmethod
    def aggregate(cls, samples: dict[str, list]) -> float:
        """J&F-Mean of the rows: per-sequence J&F weighted by their number of objects."""
        return float(np.average(samples["J&F"], weights=samples["objects"]))

    @classmethod
    def score_folder(cls, data_root: Path, predictions: Path) -> tuple[dict[str, float], pd.DataFrame]:
        """A DAVIS result folder ``<predictions>/<seq>/<frame>.png`` (indexed or grey id maps) on the val split."""
        def items() -> Iterable[tuple[str, np.ndarray, np.ndarray]]:
            for seq in scorable(load_davis(data_root, cls.score_split, "480p"), cls.score_split):
                gt = seq.read_masks()
                pred = np.zeros_like(gt)  # frames 0 and T-1 are not scored: their files are optional
                for t, path in enumerate(seq.frames[1:-1], start=1):
                    pred[t] = read_mask(prediction_file(predictions / seq.name / f"{path.stem}.png", "DAVIS"),
                                        require_palette=False)
                yield seq.name, gt, pred

        return score_sequences(items(), BOUND_TH)


def prediction_file(path: Path, what: str) -> Path:
    """``path`` if it exists, else a one-line error naming it (shared by the dense tasks' scorers)."""
    if not path.is_file():
        raise UserError(f"prediction {path} does not exist: the {what} result folder must hold one file per scored frame")
    return path
