"""Typed configs and config files: schemas in sync with the YAML defaults, bad values refused before
anything is built, and `_base_` inheritance through mmengine."""
from __future__ import annotations

import pytest
from pydantic import BaseModel
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark.cli import main
from benchmark.config import CONFIG_DIR, configure, defaults, load_file, load_overrides, schema, suites
from benchmark.errors import UserError
from benchmark.registry import METHODS, TASKS
from benchmark.runner import RunSpec, resolve
from benchmark.schemas import SCHEMAS


@pytest.mark.parametrize("kind,name", sorted(SCHEMAS))
def test_schema_and_yaml_defaults_agree_and_validation_keeps_the_values(kind, name):
    """Every YAML key has a typed field and every field a YAML value; validating the defaults changes
    nothing, so config hashes of existing results stay what they were."""
    model = SCHEMAS[(kind, name)]
    base = defaults(kind, name)
    assert set(model.model_fields) == set(base)
    assert all(field.is_required() for field in model.model_fields.values())  # values live in the YAML only
    assert configure(kind, name, None) == base


def _fields_match(model, values) -> None:
    """Every key has a required field and every field a key, down through nested blocks."""
    assert set(model.model_fields) == set(values)
    for key, field in model.model_fields.items():
        assert field.is_required(), key  # values live in the YAML only
        nested = field.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            _fields_match(nested, values[key])


@pytest.mark.parametrize("name", sorted(TASKS.names()))
def test_every_task_is_typed_on_its_class_in_sync_with_its_yaml(name):
    """Issue 11: a task's config is validated against a typed model it declares (`Config`), so adding a
    task stays one file; the YAML defaults validate unchanged (config hashes of existing results stay)."""
    cls = TASKS.get(name)
    model = schema("task", name, cls)
    assert model is cls.Config and model.model_config["extra"] == "forbid" and model.model_config["strict"]
    base = defaults("task", name, cls)
    _fields_match(model, base)
    assert configure("task", name, cls) == base
    assert configure("task", name, cls, suites()["toy"]["overrides"].get(name, {}))  # the toy suite validates


@pytest.mark.parametrize("name,key,value,needle", [
    ("tradeoff", "num_frames", 0, "num_frames=0 is refused: input should be greater than or equal to 1"),
    ("tradeoff", "num_frames", 7, "num_frames (7) must be at least 2 x edge_skip + 2 (8)"),
    ("tradeoff", "margin_percentile", 50, "margin_percentile 50 must be one of percentiles [90, 95, 100]"),
    ("tradeoff", "cycle_time_pairs", [[0.2, 1.5]], "cycle_time_pairs.0.1=1.5 is refused"),
    ("ucf101_retrieval", "ks", [], "ks=[] is refused"),
    ("hmdb51_cls", "split", 4, "split=4 is refused: input should be 1, 2 or 3"),
    ("ssv2_cls", "finetune", {"lr": 0.0}, "finetune.lr=0.0 is refused: input should be greater than 0"),
    ("ssv2_cls", "lr_selection", "val", "lr_selection='val' is refused: input should be 'test' or 'holdout'"),
    ("thumos_loc", "score_threshold", 1.5, "score_threshold=1.5 is refused: input should be less than or equal to 1"),
    ("davis", "resolution", "720p", "resolution='720p' is refused: input should be '480p' or 'Full-Resolution'"),
    ("vip", "propagation", {"upsample": "bicubic"}, "propagation.upsample='bicubic' is refused"),
    ("jhmdb", "propagation", {"pose_sigma": 0.0}, "propagation.pose_sigma=0.0 is refused"),
])
def test_bad_task_values_are_refused_before_anything_is_built(name, key, value, needle):
    with pytest.raises(UserError) as e:
        configure("task", name, TASKS.get(name), {key: value})
    assert str(e.value).startswith(f"task {name}: ") and needle in str(e.value) and "\n" not in str(e.value)


def test_every_method_yaml_with_keys_is_typed():
    files = [p.stem for p in (CONFIG_DIR / "methods").glob("*.yaml") if p.stem in METHODS.names()]
    assert sorted(files) == sorted(n for k, n in SCHEMAS if k == "method")


def spec(**overrides) -> RunSpec:
    return RunSpec(method="cosettle", backbone="efficientnet_lite0", tasks=["tradeoff"], overrides=overrides)


@pytest.mark.parametrize("section,key,value,needle", [
    ("cosettle", "temp", "hot", "temp must be a float"),
    ("cosettle", "temp", 0.0, "temp=0.0 is refused: input should be greater than 0"),
    ("cosettle", "lr", "hot", "lr='hot' is refused"),  # a null default no longer skips the type check
    ("cosettle", "epochs", 0, "epochs=0 is refused"),
    ("cosettle", "warmup_epochs", 5, "warmup_epochs (5) must be below epochs (5)"),
    ("cosettle", "crop_scale", [0.9, 0.5], "must be [low, high]"),
    ("cosettle", "fusion_net", "mlp9", "input should be 'linear', 'mlp2' or 'mlp3'"),
    ("cosettle", "amp", 1, "amp must be true or false"),
    ("efficientnet_lite0", "out_stride", 8, "out_stride=8 is refused: input should be 16 or 32"),
])
def test_bad_values_are_refused_before_anything_is_built(section, key, value, needle):
    with pytest.raises(UserError) as e:
        resolve(spec(**{section: {key: value}}))
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_advise_schema_refuses_an_unknown_temporal_module():
    with pytest.raises(UserError, match="tmm='lstm' is refused"):
        configure("method", "advise", None, {"tmm": "lstm"})


def test_backbone_options_are_typed_by_the_class_signature():
    from benchmark.registry import BACKBONES

    mae = BACKBONES.get("mae")
    # pos_interp: MAE's own code interpolates positions DINO's way (its variant's option_defaults)
    assert defaults("backbone", "mae", mae) == {"num_heads": None, "pos_interp": "dino", "precision": "fp32",
                                                "input_norm": "own"}
    assert defaults("backbone", "clip", BACKBONES.get("clip"))["pos_interp"] == "timm"
    assert configure("backbone", "mae", mae, {"num_heads": 12}) == {"num_heads": 12, "pos_interp": "dino", "precision": "fp32",
                                                                  "input_norm": "own"}
    assert schema("backbone", "mae", mae).model_config["extra"] == "forbid"
    with pytest.raises(UserError, match="num_heads='12' is refused"):
        configure("backbone", "mae", mae, {"num_heads": "12"})


def test_variant_file_inherits_the_default_and_changes_two_keys():
    """configs/methods/cosettle_short.yaml: `_base_: ./cosettle.yaml` plus two keys, read by mmengine."""
    path = CONFIG_DIR / "methods" / "cosettle_short.yaml"
    full = load_file(path)
    base = defaults("method", "cosettle")
    assert set(full) == set(base) and {k for k in base if full[k] != base[k]} == {"epochs", "warmup_epochs"}
    assert load_overrides(path) == {"cosettle": {"epochs": 1, "warmup_epochs": 0}}
    cfg = resolve(spec(**load_overrides(path)))["method_config"]
    assert cfg == {**base, "epochs": 1, "warmup_epochs": 0}


def test_section_files_inherit_and_merge_through_base(tmp_path):
    """A --config file may inherit another (YAML or Python), as mmaction2 configs do; nested keys merge."""
    (tmp_path / "base.yaml").write_text("tradeoff: {gamma: 2.0, crop: 96}\ncosettle: {temp: 0.05}\n")
    (tmp_path / "exp.py").write_text("_base_ = ['./base.yaml']\ntradeoff = dict(crop=64)\n")
    assert load_overrides(tmp_path / "exp.py") == {"tradeoff": {"gamma": 2.0, "crop": 64}, "cosettle": {"temp": 0.05}}


def test_a_user_variant_of_a_default_in_its_own_folder(tmp_path):
    variant = tmp_path / "my_advise.yaml"
    variant.write_text(f"_base_: {CONFIG_DIR / 'methods' / 'advise.yaml'}\nblocks: 2\n")
    assert load_overrides(variant) == {"advise": {"blocks": 2}}


@pytest.mark.parametrize("text,needle", [
    ("_base_: ./missing.yaml\ntemp: 0.1\n", "fix the file or its _base_"),
    ("tradeoff = dict(crop=\n", "fix its syntax"),
    ("temp: 0.1\n", "must map sections"),
], ids=["missing-base", "py-syntax", "flat-without-base"])
def test_bad_config_files_are_one_line_exit_2(tmp_path, capsys, text, needle):
    path = tmp_path / ("cfg.py" if "dict(" in text else "cfg.yaml")
    path.write_text(text)
    code = main(["run", "--method", "frozen", "--backbone", "efficientnet_lite0", "--tasks", "tradeoff",
                 "--config", str(path), "--results", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and str(path) in err and needle in err, err
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").rglob("*.json"))


def test_cli_refuses_a_typed_value_with_exit_2_and_writes_nothing(tmp_path, capsys):
    code = main(["run", "--method", "cosettle", "--backbone", "efficientnet_lite0", "--tasks", "tradeoff",
                 "--set", "cosettle.temp=0", "--results", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "method cosettle: temp=0.0 is refused" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").rglob("*.json"))


def test_flat_default_file_is_not_its_own_variant():
    """cosettle.yaml read as --config is flat and inherits nothing: refused, not silently applied."""
    with pytest.raises(UserError, match="must map sections"):
        load_overrides(CONFIG_DIR / "methods" / "cosettle.yaml")


def test_a_class_declared_config_model_is_used_first():
    """A task or method types its own config with `Config` (a pydantic model); defaults stay in one place."""
    from pydantic import Field

    from benchmark.schemas import Strict

    class Typed:
        class Config(Strict):
            topk: int = Field(ge=1)
            temperature: float = Field(gt=0)

        default_config = {"topk": 5, "temperature": 0.1}

    assert configure("task", "typed", Typed, {"topk": 7}) == {"topk": 7, "temperature": 0.1}
    with pytest.raises(UserError, match=r"task typed: topk=0 is refused: input should be greater than or equal to 1"):
        configure("task", "typed", Typed, {"topk": 0})
    with pytest.raises(UserError, match=r"temperature must be a float \(default 0.1\), got 'hot'"):
        configure("task", "typed", Typed, {"temperature": "hot"})


VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                   st.text(max_size=8), st.lists(st.one_of(st.integers(-5, 5), st.floats(-2, 2)), max_size=5))


TYPED = sorted(SCHEMAS) + [("task", name) for name in sorted(TASKS.names())]


@settings(max_examples=200, deadline=None)
@given(kind_name=st.sampled_from(TYPED), data=st.data())
def test_any_value_is_either_a_valid_config_or_one_line(kind_name, data):
    """Hostile values for every key of every method and task: a one-line UserError or a config the model
    accepts again, never NaN/inf."""
    import math

    kind, name = kind_name
    cls = TASKS.get(name) if kind == "task" else None
    key = data.draw(st.sampled_from(sorted(schema(kind, name, cls).model_fields)))
    value = data.draw(VALUES)
    try:
        cfg = configure(kind, name, cls, {key: value})
    except UserError as e:
        assert "\n" not in str(e) and f"{kind} {name}" in str(e)
        return
    assert configure(kind, name, cls, cfg) == cfg
    def floats(v):
        if isinstance(v, dict):
            v = list(v.values())
        return [x for item in v for x in floats(item)] if isinstance(v, list) else [v] if isinstance(v, float) else []

    assert all(math.isfinite(x) for x in floats(cfg))
