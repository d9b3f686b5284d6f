"""CLI options are defined once: the same option has the same flag, default and help in every
command that takes it, the lists in the help come from the registry, and the options reach the
library call."""

import importlib
import inspect
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import facesketch.cli_options as O
import facesketch.pipeline as P
from facesketch import registry
from facesketch.cli import app
from facesketch.direction import DIRECTIONS
from facesketch.registry import ModelSpec, list_models, model_spec

runner = CliRunner()
COMMANDS = ("train", "train-all", "reproduce", "demo", "evaluate")


def _params(command: str) -> dict:
    """{'--flag': click parameter} of one command, as typer built it."""
    click_command = typer.main.get_command(app).commands[command]
    return {p.opts[0]: p for p in click_command.params if p.opts[0].startswith("--")}


def _facts(p) -> tuple:
    return tuple(p.opts), tuple(p.secondary_opts), p.default, p.help, p.required, p.is_flag, p.bare_type()


def test_each_option_has_one_flag_default_and_help_everywhere():
    params = {c: _params(c) for c in COMMANDS}
    # by design: reproduce needs its data, and --out's default names the command
    own = {("reproduce", "--data")}
    shared = {flag for c in ("train", "train-all", "reproduce", "demo") for flag in params[c]}
    compared = 0
    for flag in sorted(shared):
        having = {c: params[c][flag] for c in COMMANDS if flag in params[c] and (c, flag) not in own}
        if flag == "--out":
            having = {c: p for c, p in having.items() if c != "evaluate"}  # evaluate's is RUN/eval
            assert {c: str(p.default) for c, p in having.items()} == {"demo": "facesketch-demo",
                                                               "reproduce": "facesketch-reproduce"}
            assert len({p.help for p in having.values()}) == 1
            continue
        if flag in ("--data", "--protocol", "--model", "--direction"):
            # evaluate's score another dataset, or pick shipped weights: optional, on purpose
            having.pop("evaluate", None)
        if flag in ("--layout", "--precision"):
            # evaluate's choose how inference runs, not training; its --precision stays fp32 by
            # default, so that the numbers it reports do not depend on the machine
            assert flag not in params["evaluate"] or "inference" in params["evaluate"][flag].help
            having.pop("evaluate", None)
        facts = {c: _facts(p) for c, p in having.items()}
        assert len(set(facts.values())) == 1, f"{flag} differs between commands: {facts}"
        assert all(p.help for p in having.values()), f"{flag} has no help"
        compared += len(having) > 1
    assert compared >= 12  # the comparison really ran over the shared options


def test_training_commands_take_the_options_the_issue_names():
    run = {"--data", "--protocol", "--seed", "--epochs-scale", "--batch-size", "--lr", "--device", "--precision",
           "--layout", "--views", "--recalibrate-bn", "--overwrite"}
    assert run | {"--runs-dir", "--synthetic-n", "--test-fraction", "--models"} <= set(_params("train-all"))
    assert run | {"--runs-dir", "--synthetic-n", "--test-fraction", "--model", "--direction", "--epochs", "--gan",
                  "--name", "--resume"} <= set(_params("train"))
    assert run | {"--out", "--models"} <= set(_params("reproduce"))
    assert set(_params("demo")) == {"--out", "--data", "--device", "--overwrite"}


def test_model_lists_and_directions_in_the_help_come_from_the_registry():
    train, every = _params("train"), ",".join(list_models())
    assert all(m in train["--model"].help for m in list_models())
    assert all(d in train["--direction"].help for d in DIRECTIONS)
    assert "mse x100 + mae x50" in train["--epochs"].help  # hybrid_ae's two stages, from its spec
    assert _params("train-all")["--models"].default == every and _params("reproduce")["--models"].default == every
    import facesketch.cli as cli
    assert cli.DIRECTIONS is DIRECTIONS
    from facesketch.data.protocols import PROTOCOLS
    assert all(p in train["--protocol"].help for p in PROTOCOLS)


def test_a_newly_registered_model_appears_in_the_help_without_an_edit(monkeypatch):
    def factory():
        raise AssertionError("the help never builds a model")
    try:
        with monkeypatch.context() as m:
            registry._load_all()
            m.setitem(registry._MODELS, "tiny_ae", (factory, ModelSpec(image_size=64, schedule=(("mae", 7),),
                                                                       optimizer={"lr": 5e-4}, gan=True)))
            m.setitem(registry._MODELS, "blur", (factory, ModelSpec(image_size=64, learned=False)))
            options = importlib.reload(O).OPTIONS
            help_of = {n: p.annotation.__metadata__[0].help for n, p in options.items()}
            assert "tiny_ae" in help_of["model"] and "blur" in help_of["model"]
            assert "tiny_ae mae x7" in help_of["epochs"] and "tiny_ae 0.0005" in help_of["lr"]
            assert "tiny_ae" in help_of["gan"] and options["models"].default.endswith(",tiny_ae,blur")
    finally:
        importlib.reload(O)
    assert "tiny_ae" not in O.OPTIONS["model"].annotation.__metadata__[0].help


def test_train_all_passes_lr_and_recalibrate_bn_to_every_run(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(P, "train_all", lambda cfgs, overwrite, jobs: seen.extend(cfgs) or [])
    r = runner.invoke(app, ["train-all", "--models", "mean,conv_ae", "--lr", "0.01", "--recalibrate-bn", "--seed",
                            "3", "--batch-size", "4", "--views", "identity", "--runs-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert sorted((c.model, c.direction) for c in seen) == sorted(
        (m, d) for m in ("mean", "conv_ae") for d in ("photo2sketch", "sketch2photo"))
    assert {(c.lr, c.recalibrate_bn, c.seed, c.batch_size, c.views, c.runs_dir) for c in seen} == {
        (0.01, True, 3, 4, "identity", str(tmp_path))}
    r = runner.invoke(app, ["train-all", "--lr", "nan", "--runs-dir", str(tmp_path)])
    assert r.exit_code == 2 and r.output == "error: --lr must be a positive finite number, got nan\n"
    r = runner.invoke(app, ["train-all", "--jobs", "0", "--runs-dir", str(tmp_path)])
    assert r.exit_code == 2 and r.output == "error: --jobs must be at least 1, got 0\n"


def test_reproduce_passes_seed_batch_size_and_lr_to_the_library(tmp_path, monkeypatch):
    calls = []

    def reproduce(data, out, **kwargs):
        calls.append((data, out, kwargs))
        return tmp_path / "report.html"
    real = P.reproduce
    monkeypatch.setattr(P, "reproduce", reproduce)
    r = runner.invoke(app, ["reproduce", "--data", str(tmp_path), "--seed", "3", "--batch-size", "8", "--lr", "0.01",
                            "--layout", "nchw", "--models", "mean,unet", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    data, out, kwargs = calls[-1]
    assert (data, out) == (tmp_path, tmp_path / "o")
    assert (kwargs["seed"], kwargs["batch_size"], kwargs["lr"], kwargs["models"]) == (3, 8, 0.01, ("mean", "unet"))
    assert kwargs["layout"] == "nchw"
    inspect.signature(real).bind(data, out, **kwargs)  # the library takes every keyword the command gives
    assert runner.invoke(app, ["reproduce", "--data", str(tmp_path)]).exit_code == 0
    assert calls[-1][2]["models"] == tuple(list_models()) and calls[-1][1] == Path("facesketch-reproduce")
    assert (calls[-1][2]["seed"], calls[-1][2]["batch_size"], calls[-1][2]["lr"], calls[-1][2]["layout"]) == (
        0, 32, None, "auto")


def test_demo_passes_its_options_to_the_library(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(P, "demo", lambda out, **kw: calls.append((out, kw)) or tmp_path / "report.html")
    r = runner.invoke(app, ["demo", "--device", "cpu", "--overwrite", "--data", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert calls == [(Path("facesketch-demo"), {"data": tmp_path, "device": "cpu", "overwrite": True})]
    r = runner.invoke(app, ["demo", "--data", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "no such file or folder" in r.output and len(calls) == 1


@pytest.mark.parametrize("name", list_models(learned=True))
def test_the_epochs_help_shows_each_models_schedule(name):
    stages = " + ".join(f"{loss} x{e}" for loss, e in model_spec(name).schedule)
    assert f"{name} {stages}" in _params("train")["--epochs"].help
