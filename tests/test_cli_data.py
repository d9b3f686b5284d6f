import json

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
