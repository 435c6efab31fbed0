"""What a method or task is handed when it runs: where data is, where to write, which device."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from benchmark.errors import UserError


@dataclass
class RunContext:
    """Everything about the run that is not the method's or task's own config.

    Attributes:
        data_root: folder holding the data sets, each under its standard folder name
            (``configs/datasets.yaml``), or a single data set's own folder.
        train_data: folder with unlabelled training videos for methods that train.
        work_dir: per-(method, backbone, seed) folder for checkpoints and artifacts.
        device: torch device the run uses.
        seed: the run's seed.
        datasets: explicit ``dataset name -> folder`` overrides.
        progress: whether to show progress bars.
        checkpoint_root: folder of content-addressed training checkpoints, shared by all runs that
            write to the same results folder (a method picks ``checkpoint_root/<method>/<backbone>/<key>``).
    """

    data_root: Path | None
    train_data: Path | None
    work_dir: Path
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int = 0
    datasets: dict[str, Path] = field(default_factory=dict)
    progress: bool = True
    checkpoint_root: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def dataset_path(self, dataset: str) -> Path:
        """Folder of ``dataset``: an explicit override, ``data_root/<standard name>``, or ``data_root``.

        The reader that consumes the folder checks its layout and names what is missing.
        """
        if dataset in self.datasets:
            return Path(self.datasets[dataset])
        if self.data_root is None:
            raise UserError(
                f"no data for data set {dataset!r}: pass --data-root DIR (or --suite toy for generated data)"
            )
        from benchmark.config import dataset_folder_name

        sub = self.data_root / dataset_folder_name(dataset)
        return sub if sub.is_dir() else self.data_root
