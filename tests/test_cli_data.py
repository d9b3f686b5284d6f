import json

import pytest
from typer.testing import CliRunner

from facesketch.cli import app

runner = CliRunner()


def test_data_check_json_on_synthetic(synth_dir):
    r = runner.invoke(app, ["data", "check", str(synth_dir), "--protocol", "random", "--seed", "2", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["pairs"] == 12 and out["problems"] == [] and out["protocol"] == "random"
    assert len(out["train"]) + len(out["test"]) == 12 and not set(out["train"]) & set(out["test"])


def test_data_check_cufs_paper_json(cufs_dir):
    r = runner.invoke(app, ["data", "check", str(cufs_dir), "--json"])
    out = json.loads(r.stdout)
    assert r.exit_code == 0 and out["pairs"] == 188 and out["test"][0] == "m-089-01" and len(out["test"]) == 13


def test_data_check_unusable_exits_1_with_named_problem(synth_copy):
    victim = sorted((synth_copy / "sketches").iterdir())[0]
    victim.unlink()
    r = runner.invoke(app, ["data", "check", str(synth_copy)])
    assert r.exit_code == 1 and "photo has no sketch" in r.stdout and "NOT usable" in r.stdout
    r = runner.invoke(app, ["data", "check", str(synth_copy), "--protocol", "cufs-standard", "--json"])
    assert r.exit_code == 1


def test_data_synth_cli(tmp_path):
    r = runner.invoke(app, ["data", "synth", str(tmp_path / "s"), "--n", "2", "--seed", "1"])
    assert r.exit_code == 0, r.output
    assert len(list((tmp_path / "s" / "photos").iterdir())) == 2


def test_data_check_json_counts_identities(synth_dir):
    out = json.loads(runner.invoke(app, ["data", "check", str(synth_dir), "--json"]).stdout)
    assert out["identities"] == 12 and not any("several pictures" in n for n in out["notes"])


def test_data_synth_twice_needs_overwrite(tmp_path):
    args = ["data", "synth", str(tmp_path / "s"), "--n", "1"]
    assert runner.invoke(app, args).exit_code == 0
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "already holds a synthetic set (n=1, seed=0); pass --overwrite" in r.output
    assert runner.invoke(app, [*args, "--seed", "2", "--overwrite"]).exit_code == 0


# --- protocols that leave a split empty (issue 8, item 1) ------------------------------------

def _pairs(root, stems):
    """photos/<stem>.png + sketches/<stem>.png, small grey images (a generic, not synthetic, dataset)."""
    from PIL import Image
    for sub in ("photos", "sketches"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for i, stem in enumerate(stems):
            Image.new("L", (40, 50), 60 + 20 * i).save(root / sub / f"{stem}.png")
    return root


def _one_pair(tmp_path):
    return _pairs(tmp_path / "one", ["anna"]), [], "paper", "test", 1


def _cufs_named_train_only(tmp_path):
    # f-005 .. f-038 are all in cufs-standard's 88 training identities: its test set is empty here
    return _pairs(tmp_path / "c", ["f-005-01", "f-006-01", "m-008-01"]), ["--protocol", "cufs-standard"], \
        "cufs-standard", "test", 3


def _manifest_all_train(tmp_path):
    root = _pairs(tmp_path / "m", ["anna", "bob", "carl"])
    (root / "pairs.csv").write_text("photo,sketch,split\n" + "".join(
        f"photos/{s}.png,sketches/{s}.png,train\n" for s in ("anna", "bob", "carl")))
    return root / "pairs.csv", ["--protocol", "manifest"], "manifest", "test", 3


@pytest.mark.parametrize("make", [_one_pair, _cufs_named_train_only, _manifest_all_train])
def test_an_empty_split_is_a_named_problem_not_a_traceback(tmp_path, make):
    root, args, protocol, side, n = make(tmp_path)
    r = runner.invoke(app, ["data", "check", str(root), *args])
    assert r.exit_code == 1 and (r.exception is None or isinstance(r.exception, SystemExit)), r.output
    assert "Traceback" not in r.output
    (problem,) = [ln for ln in r.stdout.splitlines() if ln.startswith("PROBLEM")]
    assert f"protocol {protocol!r} leaves an empty {side} split ({n} pair" in problem
    assert r.stdout.splitlines()[-1] == "NOT usable: 1 problem(s)"
    out = json.loads(runner.invoke(app, ["data", "check", str(root), *args, "--json"]).stdout)
    assert out["problems"] == [problem.removeprefix("PROBLEM   ")] and out["test"] == []
    assert len(out["train"]) == n  # every pair went to train, as the text line says
    assert f"train {n} pairs x 8 views = {8 * n}, test 0 pairs" in r.stdout


def test_an_empty_split_says_why(tmp_path):
    problem = lambda *a: json.loads(runner.invoke(app, ["data", "check", *map(str, a), "--json"]).stdout)["problems"]
    assert "a split needs at least 2 identities" in problem(_pairs(tmp_path / "one", ["anna"]))[0]
    manifest = _manifest_all_train(tmp_path)[0]
    assert "no row of the manifest has split 'test'" in problem(manifest, "--protocol", "manifest")[0]


# --- bad options are usage errors, worded as `train` words them (issue 8, item 13) ------------

@pytest.mark.parametrize("option,value", [("--test-fraction", "1.5"), ("--test-fraction", "0"),
                                          ("--test-fraction", "nan"), ("--seed", "-1"),
                                          ("--seed", str(2**32)), ("--protocol", "bogus")])
def test_data_check_refuses_a_bad_option_like_train(synth_dir, option, value):
    r = runner.invoke(app, ["data", "check", str(synth_dir), option, value])
    assert r.exit_code == 2 and isinstance(r.exception, SystemExit), r.output
    assert "PROBLEM" not in r.output and "Traceback" not in r.output
    (line,) = r.stderr.splitlines()
    t = runner.invoke(app, ["train", "--model", "pencil", "--direction", "photo2sketch", option, value])
    assert t.exit_code == 2 and line == t.stderr.splitlines()[-1]  # the same one line as `train`
    assert line.startswith(f"error: {option} must be") and value.lstrip("-") in line
    r = runner.invoke(app, ["data", "check", str(synth_dir), option, value, "--json"])
    assert r.exit_code == 2 and r.stdout == ""


def test_data_check_accepts_the_edges_of_the_ranges(synth_dir):
    for args in (["--seed", "0"], ["--seed", str(2**32 - 1)], ["--protocol", "random", "--test-fraction", "0.01"],
                 ["--protocol", "random", "--test-fraction", "0.99"]):
        r = runner.invoke(app, ["data", "check", str(synth_dir), *args])
        assert r.exit_code == 0, (args, r.output)
