"""Registries and plugins: names are never silently reused, a bad plugin file is one line, and a
backbone variant defined in one file outside the package runs end to end."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.errors import UserError
from benchmark.registry import BACKBONES, METHODS, Registry, load_plugin, scan

REPO = Path(__file__).resolve().parent.parent
FAMILIES = REPO / "benchmark" / "backbones"


def fresh_methods() -> Registry:
    """A registry holding one built-in, so tests never change the process-wide ones."""
    return Registry("method", "i2v_bench.test_none", {"frozen": ("methods.frozen:Frozen", "baseline")})


def test_reusing_a_builtin_name_is_refused_unless_override():
    reg = fresh_methods()

    class Mine:
        """my baseline"""

    with pytest.raises(UserError, match=r"method 'frozen' is already registered \(methods.frozen:Frozen\).*override=True"):
        reg.register("frozen")(Mine)
    assert reg.get("frozen").__name__ == "Frozen"  # the refusal changed nothing
    reg.register("frozen", override=True)(Mine)
    assert reg.get("frozen") is Mine and Mine.name == "frozen" and reg.summary("frozen") == "my baseline"


def test_register_sets_the_name_and_refuses_a_second_class_under_it():
    reg = fresh_methods()

    @reg.register()
    class halfdim:  # noqa: N801 - the name is the class's own when none is given
        pass

    class Other:
        pass

    assert halfdim.name == "halfdim" and reg.get("halfdim") is halfdim
    assert reg.register("halfdim")(halfdim) is halfdim  # the same class again is not a clash
    with pytest.raises(UserError, match="'halfdim' is already registered"):
        reg.register("halfdim")(Other)


def test_an_overridden_builtin_defining_itself_later_keeps_the_override():
    """A plugin may replace `mae` before vit.py is imported; vit.py's own decorator must not undo it or fail."""
    reg = Registry("backbone", "i2v_bench.test_none", {}, scan=("benchmark.backbones", FAMILIES, "BACKBONES"))

    class MyMAE:
        pass

    reg.register("mae", override=True)(MyMAE)
    from benchmark.backbones.vit import MAE

    reg.register("mae")(MAE)
    assert reg.get("mae") is MyMAE


def test_scanned_backbone_index_matches_the_registered_classes():
    """The torch-free listing (parsed decorators) names exactly the classes the family files register."""
    import importlib

    from benchmark.backbones.base import Backbone

    index = scan("benchmark.backbones", FAMILIES, "BACKBONES")
    registered = {}
    for path in FAMILIES.glob("*.py"):
        module = importlib.import_module(f"benchmark.backbones.{path.stem}")
        for obj in vars(module).values():
            own = isinstance(obj, type) and obj.__module__ == module.__name__
            if own and issubclass(obj, Backbone) and vars(obj).get("name"):
                registered[obj.name] = f"{obj.__module__}:{obj.__qualname__}"
    assert registered == {name: target for name, (target, _) in index.items()}
    assert {"mae", "dinov2", "clip_l14_dcr", "efficientnet_lite0", "vit_tiny_random"} <= set(registered)
    for name in index:
        cls = BACKBONES.get(name)
        assert cls.name == name and BACKBONES.summary(name)
        assert getattr(cls, "meta", None) is None or cls.meta.name == name


def test_list_backbones_does_not_import_torch():
    code = ("import sys; from benchmark.cli import main; main(['list', 'backbones']); "
            "assert 'torch' not in sys.modules and 'timm' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "mae " in out.stdout and "efficientnet_lite0_random" in out.stdout and "RANDOM INIT" in out.stdout


@pytest.mark.parametrize("body,needles", [
    ("x = 1\ndef f(:\n", ["line 2", "fix its syntax"]),
    ("import os\nraise RuntimeError('boom')\n", ["line 2", "raised RuntimeError: boom", "fix the file"]),
    ("import not_a_module_anywhere\n", ["line 1", "ModuleNotFoundError", "not_a_module_anywhere"]),
    ("from benchmark.registry import METHODS\n\n@METHODS.register('frozen')\nclass F:\n    pass\n",
     ["line 3", "'frozen' is already registered", "override=True"]),
], ids=["syntax", "exception", "missing-import", "builtin-name"])
def test_a_broken_plugin_is_one_line_naming_the_file(tmp_path, capsys, body, needles):
    plugin = tmp_path / "mine.py"
    plugin.write_text(body)
    assert main(["list", "methods", "--plugin", str(plugin)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(plugin) in err, err
    for needle in needles:
        assert needle in err, err
    assert METHODS.get("frozen").__module__ == "methods.frozen"
    plugin.write_text("X = 1\n")  # the half-imported module was forgotten: the fixed file loads
    load_plugin(plugin)


BACKBONE_PLUGIN = '''
from benchmark.backbones import converters
from benchmark.backbones.base import BackboneMeta
from benchmark.backbones.vit import ViTVariant
from benchmark.registry import BACKBONES


@BACKBONES.register("my_vit")
class MyViT(ViTVariant):
    """A small ViT released in MAE's layout (a variant defined outside the package)."""

    meta = BackboneMeta("my_vit", "vit_small_patch16_224", "vit", "test plugin", "my_vit.pth", "https://example.org/my_vit.pth")
    convert = staticmethod(converters.convert_mae)
'''


def test_plugin_backbone_variant_runs_end_to_end(toy_root, tmp_path, monkeypatch, capsys):
    """One file outside the package adds a backbone: listed, options typed, weights found, result written."""
    import timm
    import torch

    weights = tmp_path / "weights"
    weights.mkdir()
    torch.manual_seed(0)
    ref = timm.create_model("vit_small_patch16_224", pretrained=False, embed_dim=64, depth=2, num_heads=1, num_classes=0)
    torch.save({"model": ref.state_dict()}, weights / "my_vit.pth")
    monkeypatch.setenv("I2V_BENCH_WEIGHTS", str(weights))
    plugin = tmp_path / "my_backbone.py"
    plugin.write_text(BACKBONE_PLUGIN)

    assert main(["list", "backbones", "--plugin", str(plugin)]) == 0
    assert "my_vit" in capsys.readouterr().out
    res = tmp_path / "res"
    args = ["run", "--plugin", str(plugin), "--method", "frozen", "--backbone", "my_vit", "--suite", "toy",
            "--tasks", "tradeoff", "--data-root", str(toy_root), "--results", str(res), "--no-progress"]
    assert main([*args, "--set", "my_vit.num_heads=0"]) == 2  # its typed options are checked before a build
    assert "backbone my_vit: num_heads=0 is refused" in capsys.readouterr().err
    assert not list(res.rglob("*.json"))
    assert main(args) == 0
    records = [json.loads(p.read_text()) for p in res.rglob("*.json")]
    (record,) = [r for r in records if isinstance(r, dict) and r.get("task") == "tradeoff"]
    assert record["status"] == "ok" and record["backbone"] == "my_vit"
    assert "my_vit.pth@sha256:" in json.dumps(record)


EP_MODULE = '''
import i2v_test_registry_holder as holder


class Plain:
    """a baseline listed by an entry point, registered by nothing"""


@holder.REG.register("frozen", override=True)
class Mine:
    """my baseline, said so"""
'''


@pytest.fixture
def fake_entry_points(tmp_path, monkeypatch):
    """A package's entry points for a fresh registry (holder.REG): ``set_points([(name, value), ...])``."""
    import types
    from importlib.metadata import EntryPoint

    from benchmark import registry

    (tmp_path / "i2v_test_ep_pkg.py").write_text(EP_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "i2v_test_ep_pkg", raising=False)
    holder = types.ModuleType("i2v_test_registry_holder")
    holder.REG = Registry("method", "i2v_bench.test_eps", {"frozen": ("methods.frozen:Frozen", "baseline")})
    monkeypatch.setitem(sys.modules, holder.__name__, holder)
    points: list = []
    monkeypatch.setattr(registry, "entry_points",
                        lambda group: [EntryPoint(n, v, group) for n, v in points] if group == "i2v_bench.test_eps" else [])
    return holder.REG, points


def test_an_entry_point_reusing_a_builtin_name_is_refused(fake_entry_points, monkeypatch, capsys):
    reg, points = fake_entry_points
    points += [("frozen", "i2v_test_ep_pkg:Plain"), ("extra", "i2v_test_ep_pkg:Plain")]
    with pytest.raises(UserError, match=r"^entry point frozen = i2v_test_ep_pkg:Plain \(group i2v_bench.test_eps, "
                                        r"package \?\) reuses the method name 'frozen' of methods.frozen:Frozen: rename "
                                        r"it, or register it with METHODS.register\('frozen', override=True\)"):
        reg.names()
    with pytest.raises(UserError, match="entry point frozen"):  # refused on every use, never dropped silently
        reg.get("frozen")
    from benchmark import registry

    monkeypatch.setattr(registry, "METHODS", reg)
    assert main(["list", "methods"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "entry point frozen" in err and "override=True" in err


def test_an_entry_point_registering_with_override_replaces_the_builtin(fake_entry_points):
    reg, points = fake_entry_points
    points += [("frozen", "i2v_test_ep_pkg:Mine"), ("extra", "i2v_test_ep_pkg:Plain")]
    mine = reg.get("frozen")
    assert mine.__name__ == "Mine" and mine.name == "frozen" and reg.summary("frozen") == "my baseline, said so"
    assert reg.names() == ["extra", "frozen"] and reg.summary("extra") == "(plugin i2v_test_ep_pkg:Plain)"
