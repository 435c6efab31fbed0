"""Shared training machinery: MAE schedule, content keys, resume after a kill, NaN stop, records."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from benchmark.context import RunContext
from benchmark.errors import UserError
from methods.cosettle import CoSettle
from methods.training import (
    STATE_FILE,
    WEIGHTS_FILE,
    StepOutput,
    Trainer,
    build_scheduler,
    checkpoint_folder,
    epoch_batches,
)

CFG = {"epochs": 3, "warmup_epochs": 1, "blr": 1e-3, "lr": None, "min_lr": 1e-5, "betas": [0.9, 0.95],
       "weight_decay": 0.05, "train_batch_size": 4, "amp": True, "checkpoint_every_iters": 2}


def mae_adjust_learning_rate(epoch: float, lr: float, min_lr: float, warmup: int, epochs: int) -> float:
    """MAE util/lr_sched.py adjust_learning_rate, transcribed as the reference."""
    if epoch < warmup:
        return lr * epoch / warmup
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * (epoch - warmup) / (epochs - warmup)))


def test_schedule_is_mae_per_iteration_warmup_then_half_cosine():
    ipe = 7
    opt = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_scheduler(opt, CFG, ipe)
    lr = 1e-3 * 4 / 256
    for it in range(3 * ipe):
        sched.step_update(it)
        expected = mae_adjust_learning_rate(it / ipe, lr, 1e-5, 1, 3)
        assert opt.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_warmup_must_be_shorter_than_training():
    opt = torch.optim.AdamW([nn.Parameter(torch.zeros(1))])
    with pytest.raises(UserError, match="warmup_epochs"):
        build_scheduler(opt, {**CFG, "warmup_epochs": 3}, 5)


def test_epoch_batches_drop_last_and_depend_on_seed_and_epoch():
    a = epoch_batches(10, 4, seed=0, epoch=0)
    assert len(a) == 2 and all(len(b) == 4 for b in a)
    assert a == epoch_batches(10, 4, seed=0, epoch=0)
    assert a != epoch_batches(10, 4, seed=0, epoch=1) and a != epoch_batches(10, 4, seed=1, epoch=0)


def test_checkpoint_key_covers_what_changes_the_weights(tmp_path, pan_videos):
    bb = SimpleNamespace(meta=SimpleNamespace(name="bb"), weights_id="w1", input_norm="own", amp_dtype=None)
    ctx = RunContext(data_root=None, train_data=pan_videos, work_dir=tmp_path, checkpoint_root=tmp_path)
    videos = sorted(pan_videos.iterdir())
    cfg = {"lr": 1.0, "batch_size": 16, "num_workers": 4}
    base = checkpoint_folder(ctx, "m", bb, cfg, videos)
    assert base.parent == tmp_path / "m" / "bb" and (base / "key.json").is_file()
    assert checkpoint_folder(ctx, "m", bb, {**cfg, "batch_size": 2, "num_workers": 0}, videos) == base
    assert checkpoint_folder(ctx, "m", bb, {**cfg, "lr": 2.0}, videos) != base
    assert checkpoint_folder(ctx, "m", bb, cfg, videos[:-1]) != base
    assert checkpoint_folder(ctx, "m", SimpleNamespace(**{**vars(bb), "weights_id": "w2"}), cfg, videos) != base
    # the backbone options that change its tokens: the input statistics, positional interpolation, precision
    for option, value in (("input_norm", "imagenet"), ("pos_interp", "dino"), ("amp_dtype", torch.bfloat16)):
        assert checkpoint_folder(ctx, "m", SimpleNamespace(**{**vars(bb), option: value}), cfg, videos) != base
    ctx.seed = 1
    assert checkpoint_folder(ctx, "m", bb, cfg, videos) != base


class Killed(Exception):
    pass


def regression_trainer(folder, nan_at: int | None = None, kill_at: int | None = None, ipe: int = 3) -> Trainer:
    """A Trainer fitting a linear map on batches that depend only on (epoch, iteration)."""
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    target = torch.tensor([[1.0, -2.0, 3.0, 0.5]])

    def loader(epoch, start):
        for it in range(start, ipe):
            yield torch.randn(8, 4, generator=torch.Generator().manual_seed(100 * epoch + it))

    def step(x, rng):
        noise = 0.01 * torch.randn(8, 1, generator=rng)
        loss = ((model(x) - x @ target.T - noise) ** 2).mean()
        if nan_at is not None and step.calls == nan_at:
            loss = loss * float("nan")
        step.calls += 1
        return StepOutput(loss, {"cycle_acc": 0.0})

    step.calls = 0

    def after(g):
        if g == kill_at:
            raise Killed

    cfg = {**CFG, "lr": 0.05}
    return Trainer(folder, model, [{"params": model.parameters()}], step, loader, ipe, cfg, torch.device("cpu"),
                   seed=0, after_step=after)


def test_killed_run_resumes_and_matches_an_uninterrupted_one(tmp_path):
    full = regression_trainer(tmp_path / "full")
    rec_full = full.fit()
    assert rec_full["resumed_from_iteration"] is None and len(rec_full["curve"]) == 9

    with pytest.raises(Killed):
        regression_trainer(tmp_path / "killed", kill_at=5).fit()  # saved after 2, 3 (epoch end) and 4; killed after 5
    assert not (tmp_path / "killed" / WEIGHTS_FILE).exists()
    resumed = regression_trainer(tmp_path / "killed")
    rec = resumed.fit()
    assert rec["resumed_from_iteration"] == 4  # the last checkpoint before the kill (every 2 iterations)
    for a, b in zip(full.module.state_dict().values(), resumed.module.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-7)
    assert [r["loss"] for r in rec["curve"]] == pytest.approx([r["loss"] for r in rec_full["curve"]], rel=1e-6)


def test_nan_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer = regression_trainer(tmp_path, nan_at=3)
    with pytest.raises(UserError) as err:
        trainer.fit()
    assert "nan" in str(err.value) and "\n" not in str(err.value)
    state = torch.load(tmp_path / STATE_FILE, weights_only=True)
    assert (state["epoch"], state["iteration"]) == (1, 0)  # saved after iteration 3, the last finite one
    assert not (tmp_path / WEIGHTS_FILE).exists()


def test_corrupt_state_file_is_a_user_error(tmp_path):
    (tmp_path / STATE_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="delete it"):
        regression_trainer(tmp_path).fit()


def test_batch_larger_than_the_data_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="train_batch_size"):
        regression_trainer(tmp_path, ipe=0)


def test_cosettle_killed_mid_epoch_resumes_to_the_same_projection(tiny_mae, pan_videos, small_config, make_ctx, tmp_path):
    cfg = small_config(checkpoint_every_iters=2)  # 2 epochs x 2 iterations
    full = CoSettle(tiny_mae, cfg)
    full.fit(make_ctx(pan_videos, work=tmp_path / "a"))

    def kill(g):
        if g == 3:
            raise Killed

    with pytest.raises(Killed):
        CoSettle(tiny_mae, cfg).fit(make_ctx(pan_videos, work=tmp_path / "b", after_train_step=kill))
    resumed = CoSettle(tiny_mae, cfg)
    rec = resumed.fit(make_ctx(pan_videos, work=tmp_path / "b"))
    assert rec["resumed_from_iteration"] == 2 and rec["reused"] is False
    for a, b in zip(full.projection.state_dict().values(), resumed.projection.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
