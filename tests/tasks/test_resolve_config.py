"""Presets resolved before hashing: no ``null`` reaches a stored config, and bad values are refused at
resolve time (by the task's typed ``Config``, then by the engine's own check), before any model is built."""
from __future__ import annotations

import pytest

from benchmark.config import configure
from benchmark.errors import UserError
from benchmark.registry import TASKS
from tasks.presets import PRESETS, resolve


def _nulls(obj, path=""):
    if obj is None:
        return [path]
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _nulls(v, f"{path}.{k}")]
    return []


def resolved(name: str, **over):
    """What the runner does: defaults merged with ``over`` and validated, then the presets filled in."""
    cls = TASKS.get(name)
    return cls.resolve_config(configure("task", name, cls, over))


@pytest.mark.parametrize("name", ["davis", "vip", "jhmdb", "tradeoff", "ucf101_cls", "thumos_loc"])
def test_resolved_default_configs_hold_no_null_and_are_idempotent(name):
    cfg = resolved(name)
    assert _nulls(cfg) == []
    assert TASKS.get(name).resolve_config(cfg) == cfg


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("name", ["davis", "vip", "jhmdb"])
def test_nulls_become_the_presets_values(name, preset):
    engine, rule = PRESETS[preset][name]
    cfg = resolved(name, preset=preset)
    for key, value in cfg["propagation"].items():
        assert value == getattr(engine, key) and type(value) is type(getattr(engine, key)) or key == "radius"
    assert isinstance(cfg["propagation"]["radius"], float) and cfg["input_size"] == rule
    # the placeholder and the value it stands for are one configuration (one hash)
    assert resolved(name, preset=preset, propagation={"temperature": engine.temperature}) == cfg


def test_an_override_survives_resolution():
    cfg = resolved("davis", propagation={"topk": 5, "radius": 12.5}, input_size=["short", 480, 64])
    assert cfg["propagation"]["topk"] == 5 and cfg["propagation"]["radius"] == 12.5
    assert cfg["propagation"]["temperature"] == 0.7 and cfg["input_size"] == ["short", 480, 64]


@pytest.mark.parametrize("over,needle", [
    ({"propagation": {"temperature": "hot"}}, "task davis: propagation.temperature='hot' is refused: input should be a valid number"),
    ({"propagation": {"topk": 0}}, "propagation.topk=0 is refused: input should be greater than or equal to 1"),
    ({"propagation": {"topk": 2.5}}, "propagation.topk=2.5 is refused: input should be a valid integer"),
    ({"propagation": {"long_memory": 1}}, "long_memory=1 is refused: input should be a valid boolean"),  # a null default is typed too
    ({"propagation": {"radius_metric": "round"}}, "radius_metric='round' is refused: input should be 'euclidean' or 'square'"),
    ({"propagation": {"tile": -1}}, "propagation.tile=-1 is refused"),
    ({"input_size": ["fixed", 480]}, "input_size=['fixed', 480] is refused: use [fixed, H, W]"),
    ({"preset": "mine"}, "preset='mine' is refused: input should be 'cosettle', 'crw' or 'dino'"),
    ({"pck": "pck"}, "task jhmdb: pck='pck' is refused: input should be 'fixed' or 'crw'"),
])
def test_bad_values_are_one_line_errors_at_resolve_time(over, needle):
    with pytest.raises(UserError) as e:
        resolved("jhmdb" if "pck" in over else "davis", **over)
    assert needle in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("over,needle", [
    ({"propagation": {"temperature": "hot"}}, "davis.propagation.temperature must be a number, got 'hot'"),
    ({"propagation": {"topk": 0}}, "davis: propagation.topk=0 is refused: input should be greater than or equal to 1"),
    ({"propagation": {"long_memory": False, "n_context": 0}}, "n_context must be > 0 when long_memory is false"),
    ({"input_size": ["fixed", 480]}, "davis.input_size ['fixed', 480]"),
    ({"preset": "mine"}, "unknown preset 'mine'"),
])
def test_the_engine_checks_a_config_that_skipped_validation(over, needle):
    """``resolve`` (what ``evaluate`` calls) refuses a bad value itself, with the ranges of ``FIELDS``."""
    cfg = {"preset": "cosettle", "propagation": {}, "input_size": None, **over}
    with pytest.raises(UserError) as e:
        resolve(cfg, "davis")
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_every_engine_constant_has_one_typed_field():
    """`FIELDS` types every `PropagationConfig` constant (and only those), so no constant goes unchecked."""
    import dataclasses

    from tasks.presets import FIELDS, PropagationConfig

    assert list(FIELDS) == [f.name for f in dataclasses.fields(PropagationConfig)]
