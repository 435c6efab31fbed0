"""The tokens the tradeoff task's ``cal_metric`` protocol reads (``frame_tokens``): the CLS first where the
authors' model file returns it to cal_metric.py, projected by Co-Settle's adapter like the patch tokens."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from benchmark.backbones import build_backbone
from benchmark.cache import install
from methods.cosettle import CoSettle
from methods.frozen import Frozen
from tests.tasks.toy_setup import toy_ctx, toy_task


def _as(backbone, name: str):
    """``backbone`` under another registry name: the authors' token set is chosen by name."""
    backbone.meta = dataclasses.replace(backbone.meta, name=name)
    return backbone


def _cosettle(backbone, small_config) -> CoSettle:
    method = CoSettle(backbone, small_config())
    method._build_projection(0)  # untrained: the token set, not the values, is under test
    return method


@pytest.mark.parametrize("pos_interp", ["timm", "dino"])
def test_frozen_vit_tokens_are_cls_then_the_patch_grid(pos_interp):
    backbone = build_backbone("vit_tiny_random", pos_interp=pos_interp)
    method, frames = Frozen(backbone, {}), torch.rand(3, 3, 48, 64)
    tokens = method.frame_tokens(frames)
    assert tokens.shape == (3, 1 + 3 * 4, backbone.dim)
    torch.testing.assert_close(tokens[:, 1:], method.frame_features(frames).flatten(1, 2))
    native = torch.rand(1, 3, 224, 224)  # the embedding's own grid: both interpolations leave it unchanged
    cls = backbone.model.forward_features(backbone.normalise(native))[:, 0]  # timm's own CLS output
    torch.testing.assert_close(method.frame_tokens(native)[:, 0], cls, rtol=1e-4, atol=1e-4)


def test_cosettle_projects_the_cls_as_the_patch_tokens(small_config):
    backbone = build_backbone("vit_tiny_random")
    frames = torch.rand(2, 3, 48, 48)
    method = _cosettle(backbone, small_config)
    tokens, raw = method.frame_tokens(frames), Frozen(backbone, {}).frame_tokens(frames)
    assert tokens.shape == raw.shape == (2, 1 + 9, backbone.dim)
    torch.testing.assert_close(tokens[:, 1:], method.frame_features(frames).flatten(1, 2))
    with torch.no_grad():
        torch.testing.assert_close(tokens[:, 0], method.projection(raw[:, 0]))


@pytest.mark.parametrize(("method", "name", "cls"), [
    ("frozen", "dino", True), ("frozen", "mae", False), ("frozen", "clip", False),
    ("cosettle", "mae", True), ("cosettle", "dino", False), ("cosettle", "dinov2", False)])
def test_authors_token_set_per_backbone(method, name, cls, small_config):
    backbone = _as(build_backbone("vit_tiny_random"), name)
    m = _cosettle(backbone, small_config) if method == "cosettle" else Frozen(backbone, {})
    tokens = m.frame_tokens(torch.rand(2, 3, 32, 32))
    assert (tokens.shape[1] == 4 + 1) if cls else tokens is None  # None: the grid alone is the token set


def test_tradeoff_cal_metric_keeps_cls_on_vits_only(toy_root, tmp_path, small_config):
    vit = build_backbone("vit_tiny_random")
    frozen = Frozen(vit, {})
    cache = install(frozen, tmp_path / "features")
    shapes = []
    frame_tokens = frozen.frame_tokens
    frozen.frame_tokens = lambda x: (t := frame_tokens(x), shapes.append(t.shape[1]))[0]
    runs = [(frozen, "cal_metric", True), (frozen, "cal_metric", True), (frozen, "fair", False),
            (_cosettle(vit, small_config), "cal_metric", True), (Frozen(build_backbone("efficientnet_lite0"), {}), "cal_metric", False)]
    for method, protocol, cls in runs:
        out = toy_task("tradeoff", protocol=protocol, num_frames=12).evaluate(method, toy_ctx(toy_root, tmp_path))
        assert out.details["protocol"] == protocol and out.details["cls_token"] is cls, (method.name, protocol)
    side = 96 // vit.stride  # the toy suite's 96 px crop
    assert set(shapes) == {side * side + 1} and len(shapes) == 2 * out.details["videos"]
    # with the CLS, one encoder pass a video (the grid is the sequence's tail); only the fair run's grids were cached
    assert cache.stats.hits == 0 and cache.stats.misses == out.details["videos"]


def test_cal_metric_reads_frame_tokens_only_where_they_speak_for_the_features():
    """A subclass that changes ``frame_features`` but inherits ``frame_tokens`` would hand cal_metric its
    parent's token set: its grid is used alone. A class defining both, or the same class, is read."""
    from tasks.tradeoff import _tokens_match_features

    class Half(Frozen):
        def frame_features(self, frames):
            return super().frame_features(frames)[..., :8]

    class HalfWithTokens(Half):
        def frame_tokens(self, frames):
            return None

    backbone = build_backbone("vit_tiny_random")
    assert _tokens_match_features(Frozen(backbone, {})) and _tokens_match_features(HalfWithTokens(backbone, {}))
    assert not _tokens_match_features(Half(backbone, {}))
