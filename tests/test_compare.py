"""``bench compare``: per-sample diff of two methods' records, sorted, with the paired test's line."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from benchmark.cli import main
from benchmark.compare import align, compare_table
from benchmark.errors import UserError
from benchmark.results import SCHEMA_VERSION, write_json_atomic

# frozen vs advise per DAVIS sequence: three improve (most: car), two degrade (most: dog), one is unchanged
FROZEN = {"bear": 0.50, "car": 0.40, "cows": 0.70, "dog": 0.60, "goat": 0.55, "kite": 0.30}
ADVISE = {"bear": 0.55, "car": 0.60, "cows": 0.71, "dog": 0.45, "goat": 0.50, "kite": 0.30}


def write(root: Path, method: str, scores: dict[str, float], seed: int = 0, backbone: str = "bb", task: str = "davis",
          higher: bool = True, samples: bool = True, variant: str = "default") -> Path:
    """A record as the store writes it, with column-oriented per-sample scores (ids deliberately unsorted)."""
    ids = sorted(scores, reverse=True)
    # the version-1 file layout, which the store lists whatever the record's schema; a variant goes beside
    prefix = "" if variant == "default" else f"{variant}-"
    path = root / method / backbone / f"{prefix}{task}__seed{seed}.json"
    write_json_atomic(path, {"variant": variant,
        "schema_version": SCHEMA_VERSION, "method": method, "backbone": backbone, "backbone_label": backbone, "task": task,
        "seed": seed, "status": "ok", "main_metric": "J&F-Mean", "higher_is_better": higher, "config_hash": "h",
        "metrics": {"J&F-Mean": sum(scores.values()) / len(scores)}, "sample_metric": "J&F", "sample_unit": "sequence",
        "samples": {"id": ids, "J&F": [scores[i] for i in ids]} if samples else {},
    })
    return path


def run(capsys, *argv: str) -> tuple[int, list[str], str]:
    code = main(["compare", *argv])
    out = capsys.readouterr()
    return code, out.out.splitlines(), out.err


def rows_of(lines: list[str]) -> list[str]:
    """The sample ids of the diff tables' rows, in printed order."""
    return [line.split("|")[1].strip() for line in lines if line.startswith("| ") and not line.startswith("| sequence")]


def test_compare_lists_better_then_worse_sorted_with_the_test(tmp_path, capsys):
    write(tmp_path, "frozen", FROZEN)
    write(tmp_path, "advise", ADVISE)
    code, lines, _ = run(capsys, "frozen", "advise", "--task", "davis", "--results", str(tmp_path))
    assert code == 0
    assert lines[0].startswith("advise vs frozen on davis (backbone bb): J&F per sequence, 6 sequences paired")
    assert rows_of(lines) == ["car", "bear", "cows", "dog", "goat"]
    assert "better with advise: 3 sequences" in lines and "worse with advise: 2 sequences" in lines
    assert "unchanged: 1 sequences" in lines
    delta = sum(ADVISE[k] - FROZEN[k] for k in FROZEN) / len(FROZEN)
    assert lines[-1].startswith(f"Δ = {delta:+.4f} [95% CI ")
    assert "paired bootstrap" in lines[-1] and "sign-flip permutation test (exact)" in lines[-1]
    assert lines[-1].endswith("not significant at α = 0.05")  # 3 up, 2 down: no evidence either way


def test_lower_is_better_flips_what_counts_as_better(tmp_path, capsys):
    write(tmp_path, "frozen", FROZEN, task="d_intra", higher=False)
    write(tmp_path, "advise", ADVISE, task="d_intra", higher=False)
    code, lines, _ = run(capsys, "frozen", "advise", "--task", "d_intra", "--results", str(tmp_path), "--top", "1")
    assert code == 0 and "lower is better" in lines[0]
    assert rows_of(lines) == ["dog", "car"]  # most improved (largest drop), then most degraded
    assert "… and 1 more (--top 0 shows all)" in lines and "… and 2 more (--top 0 shows all)" in lines


def test_seeds_are_averaged_and_resampled(tmp_path, capsys):
    write(tmp_path, "frozen", FROZEN)
    write(tmp_path, "advise", ADVISE, seed=0)
    write(tmp_path, "advise", {k: v + 0.02 for k, v in ADVISE.items()}, seed=1)
    code, lines, _ = run(capsys, "frozen", "advise", "--task", "davis", "--results", str(tmp_path))
    assert code == 0 and "seeds frozen: 1, advise: 2" in lines[0]
    assert "hierarchical bootstrap" in lines[-1] and "seeds 1 and 2" in lines[-1]
    assert rows_of(lines)[0] == "car" and "| kite " in "\n".join(lines)  # kite now improves by 0.01


def test_a_strong_effect_is_called_significant(tmp_path, capsys):
    ids = [f"seq{i:02d}" for i in range(40)]
    write(tmp_path, "frozen", {k: 0.5 + 0.01 * (i % 7) for i, k in enumerate(ids)})
    write(tmp_path, "advise", {k: 0.6 + 0.01 * (i % 7) + 0.005 * (i % 3) for i, k in enumerate(ids)})
    code, lines, _ = run(capsys, "frozen", "advise", "--task", "davis", "--results", str(tmp_path), "--test", "sign")
    assert code == 0 and "exact sign test" in lines[-1] and lines[-1].endswith(": significant at α = 0.05")


@pytest.mark.parametrize("setup, argv, message", [
    (lambda r: (write(r, "frozen", FROZEN), write(r, "advise", ADVISE, samples=False)), [],
     "advise/bb/davis__seed0.json has no per-sample scores"),
    (lambda r: write(r, "frozen", FROZEN), [], "no complete result of advise on davis"),
    (lambda r: [write(r, m, FROZEN, backbone=b) for m in ("frozen", "advise") for b in ("b1", "b2")], [],
     "share several (b1, b2) backbones: pass --backbone"),
    (lambda r: (write(r, "frozen", FROZEN), write(r, "advise", ADVISE), write(r, "advise", ADVISE, seed=1)), ["--ci", "bca"],
     "BCa interval is implemented for one seed per method"),
    (lambda r: (write(r, "frozen", FROZEN), write(r, "advise", {"x": 0.1})), [], "share no sample ids"),
    (lambda r: (write(r, "frozen", FROZEN), write(r, "advise", ADVISE)), ["--top", "-1"], "--top must be between 0 and 1000000, got -1"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, setup, argv, message):
    setup(tmp_path)
    code, lines, err = run(capsys, "frozen", "advise", "--task", "davis", "--results", str(tmp_path), *argv)
    assert code == 2 and lines == [] and message in err and err.count("\n") == 1


def test_method_at_variant_picks_a_variant(tmp_path, capsys):
    write(tmp_path, "frozen", FROZEN)
    write(tmp_path, "advise", FROZEN)
    write(tmp_path, "advise", ADVISE, variant="lr0.1")
    code, lines, _ = run(capsys, "frozen", "advise@lr0.1", "--task", "davis", "--results", str(tmp_path))
    assert code == 0 and lines[0].startswith("advise@lr0.1 vs frozen") and "better with advise@lr0.1: 3 sequences" in lines
    code, lines, err = run(capsys, "frozen", "advise@lr1", "--task", "davis", "--results", str(tmp_path))
    assert code == 2 and "no complete result of advise@lr1 on davis" in err and "(there: advise, advise@lr0.1, frozen)" in err


def test_plain_names_take_the_one_shared_variant_and_say_so(tmp_path, capsys):
    """Runs made with `--suite toy` are the variant `toy`: `bench compare frozen advise` means them."""
    write(tmp_path, "frozen", FROZEN, variant="toy")
    write(tmp_path, "advise", ADVISE, variant="toy")
    write(tmp_path, "advise", FROZEN, variant="lr0.1")  # advise alone: not shared, so no ambiguity
    code, lines, err = run(capsys, "frozen", "advise", "--task", "davis", "--results", str(tmp_path))
    assert code == 0 and err == ""
    assert lines[0] == "note: frozen and advise have no default result on davis: comparing their one shared variant 'toy'"
    assert lines[1].startswith("advise@toy vs frozen@toy on davis") and "better with advise@toy: 3 sequences" in lines
    write(tmp_path, "frozen", FROZEN, variant="lr0.1")  # now two shared variants: the user chooses
    code, lines, err = run(capsys, "frozen", "advise", "--task", "davis", "--results", str(tmp_path))
    assert code == 2 and lines == [] and err.count("\n") == 1
    assert "several shared variants (lr0.1, toy): name one, e.g. `bench compare frozen@lr0.1 advise@lr0.1" in err


def test_default_variants_are_compared_when_both_have_one(tmp_path, capsys):
    for variant in ("default", "toy"):
        write(tmp_path, "frozen", FROZEN, variant=variant)
        write(tmp_path, "advise", ADVISE if variant == "default" else FROZEN, variant=variant)
    code, lines, _ = run(capsys, "frozen", "advise", "--task", "davis", "--results", str(tmp_path))
    assert code == 0 and lines[0].startswith("advise vs frozen on davis") and "better with advise: 3 sequences" in lines


def test_backbone_option_picks_one(tmp_path, capsys):
    for b in ("b1", "b2"):
        write(tmp_path, "frozen", FROZEN, backbone=b)
        write(tmp_path, "advise", ADVISE if b == "b2" else FROZEN, backbone=b)
    code, lines, _ = run(capsys, "frozen", "advise", "--task", "davis", "--results", str(tmp_path), "--backbone", "b2")
    assert code == 0 and "(backbone b2)" in lines[0] and "better with advise: 3 sequences" in lines


def _record(path: str, method: str, ids: list[str], values: list, seed: int = 0, **extra) -> dict:
    return {"_path": path, "method": method, "backbone": "bb", "task": "davis", "seed": seed, "main_metric": "J&F-Mean",
            "higher_is_better": True, "sample_metric": "J&F", "sample_unit": "sequence",
            "samples": {"id": ids, "J&F": values}, **extra}


def test_align_pairs_by_id_whatever_the_order_and_stacks_seeds():
    a = _record("a.json", "frozen", ["x", "y", "z"], [0.1, 0.2, 0.3])
    b = [_record("b0.json", "advise", ["z", "x", "y"], [0.9, 0.4, 0.6]),
         _record("b1.json", "advise", ["y", "z", "x"], [0.6, 0.8, 0.5], seed=1)]
    pair = align(a, b)
    assert pair.ids == ["x", "y", "z"] and pair.unit == "sequence" and pair.metric == "J&F"
    assert pair.a.tolist() == [[0.1, 0.2, 0.3]] and pair.b.tolist() == [[0.4, 0.6, 0.9], [0.5, 0.6, 0.8]]
    assert pair.unpaired == (0, 0)


def test_align_keeps_the_intersection_or_refuses_when_strict():
    a = _record("res/frozen.json", "frozen", ["x", "y", "z"], [0.1, 0.2, 0.3])
    b = _record("res/advise.json", "advise", ["y", "z", "w"], [0.5, 0.6, 0.7])
    pair = align(a, b)
    assert pair.ids == ["y", "z"] and pair.unpaired == (1, 1) and pair.b.tolist() == [[0.5, 0.6]]
    with pytest.raises(UserError, match="res/frozen.json and res/advise.json do not hold the same samples"):
        align(a, b, strict=True)


@pytest.mark.parametrize("b, message", [
    (_record("res/b.json", "advise", ["p", "q"], [0.1, 0.2]), "res/a.json and res/b.json share no sample ids"),
    ({**_record("res/b.json", "advise", [], []), "samples": {}}, "result res/b.json has no per-sample scores"),
    (_record("res/b.json", "advise", ["x", "y"], [0.1]), r"res/b.json: samples\['J&F'\] does not hold one value per id"),
    (_record("res/b.json", "advise", ["x", "y"], [0.1, None]), "res/b.json: J&F of sample 'y' is None"),
    (_record("res/b.json", "advise", ["x", "x"], [0.1, 0.2]), "res/b.json repeats sample ids"),
    (_record("res/b.json", "advise", ["x", "y"], [0.1, 0.2], sample_metric="J"), "has no per-sample column 'J'"),
    (_record("res/b.json", "advise", ["x", "y"], [0.1, 0.2], task="vip"), "res/a.json and res/b.json are results of different"),
    (_record("res/b.json", "advise", ["x", "y"], [0.1, 0.2], data_fingerprint={"data": "other"}), "evaluated on different data"),
    ([_record("res/b.json", "advise", ["x", "y"], [0.1, 0.2]), _record("res/c.json", "advise", ["x", "y"], [0.1, 0.2])],
     r"several records for one seed \(res/b.json, res/c.json\)"),
])
def test_align_refuses_what_cannot_be_paired_naming_the_file(b, message):
    with pytest.raises(UserError, match=message):
        align(_record("res/a.json", "frozen", ["x", "y"], [0.3, 0.4], data_fingerprint={"data": "d1"}), b)


def test_compare_table_pairs_each_method_with_the_reference_and_applies_holm(capsys):
    rng = np.random.default_rng(9)
    ids = [f"s{i}" for i in range(60)]
    base = rng.normal(0.5, 0.1, 60)
    recs = [_record("f.json", "frozen", ids, base.tolist()),
            _record("c.json", "cosettle", ids, (base + 0.05 + rng.normal(0, 0.02, 60)).tolist()),
            _record("a.json", "advise", ids, (base + rng.normal(0, 0.02, 60)).tolist()),
            {**_record("o.json", "old", ids, []), "samples": {}}]
    table = compare_table(recs, resamples=2000)
    assert set(table) == {("bb", "cosettle", "default", "davis"), ("bb", "advise", "default", "davis")}
    cosettle = table["bb", "cosettle", "default", "davis"]
    assert cosettle.significant and cosettle.delta > 0.04
    assert all(r.correction == "Holm" for r in table.values())
    err = capsys.readouterr().err
    assert "no paired statistics for bb / old / default / davis: result o.json has no per-sample scores" in err
    # a reference run in two variants: which is the baseline is the table's call, so no comparison here
    assert compare_table([*recs[:3], {**recs[0], "variant": "v2", "_path": "f2.json"}], resamples=200) == {}


def test_records_as_objects_pair_like_dicts():
    """The reader may hand over record objects (attributes, ``path``) rather than dicts (``_path``)."""
    a = _record("res/a.json", "frozen", ["x", "y"], [0.3, 0.4])
    b = _record("res/b.json", "advise", ["y", "x"], [0.1, 0.2])
    as_object = SimpleNamespace(**{("path" if k == "_path" else k): v for k, v in b.items()})
    assert align(a, as_object).b.tolist() == align(a, b).b.tolist() == [[0.2, 0.1]]
    with pytest.raises(UserError, match="result res/b.json has no per-sample scores"):
        align(a, SimpleNamespace(**{**vars(as_object), "samples": {}}))
