"""The command line's options, each defined once (flag, type, default, help) for every command that takes it.

Defaults are RunConfig's, and the lists in the help (models, baselines, schedules, learning rates,
directions) come from the registry and `facesketch.direction`, so a newly registered model shows
up everywhere without an edit here.
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Annotated, Optional

import typer

from facesketch.autotune import BF16_WORTH_STEPS
from facesketch.config import RunConfig
from facesketch.direction import DIRECTIONS
from facesketch.registry import list_models, model_spec

PROTOCOL_HELP = "paper (report split), cufs-standard (88/100), random (seeded), manifest (CSV split column)"


def _schedules() -> str:
    """'dense_ae mse x100, ..., hybrid_ae mse x100 + mae x50, ...' for the trainable models."""
    from facesketch.models.info import schedule_text
    return ", ".join(f"{m} {schedule_text(m)}" for m in list_models(learned=True))


def _learning_rates() -> str:
    """'1e-3; unet 2e-4': the most common default learning rate, then the models that differ."""
    rates = {m: model_spec(m).lr for m in list_models(learned=True)}
    common = max(set(rates.values()), key=list(rates.values()).count)
    return "; ".join([f"{common:g}"] + [f"{m} {lr:g}" for m, lr in rates.items() if lr != common])


def _option(name: str, type_, default, help: str, *decls: str) -> inspect.Parameter:
    """One option as a keyword-only parameter (typer turns `epochs_scale` into --epochs-scale)."""
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[type_, typer.Option(*decls, help=help)])


_LEARNED, _BASELINES = list_models(learned=True), list_models(learned=False)

OPTIONS: dict[str, inspect.Parameter] = {p.name: p for p in (
    _option("model", str, ..., f"{', '.join(_LEARNED)}, or a baseline: {', '.join(_BASELINES)}", "--model", "-m"),
    _option("direction", str, ..., " or ".join(DIRECTIONS), "--direction", "-d"),
    _option("models", str, ",".join(list_models()),
            f"comma-separated models (default: every one; the baselines are {', '.join(_BASELINES)})"),
    _option("data", Optional[Path], RunConfig.data, "dataset folder or CSV manifest (default: built-in synthetic "
            "faces)"),
    _option("protocol", Optional[str], RunConfig.protocol, PROTOCOL_HELP + "; default paper on real data, random "
            "on synthetic"),
    _option("seed", int, RunConfig.seed, "seed for split, weights, shuffling and dropout"),
    _option("epochs", Optional[int], RunConfig.epochs, "epochs of the first stage; later stages keep their ratio "
            f"(default: the model's schedule: {_schedules()})"),
    _option("epochs_scale", float, RunConfig.epochs_scale, "multiply every stage's epochs, e.g. 0.05 for a quick "
            "run"),
    _option("batch_size", int, RunConfig.batch_size, "global batch size (split across DDP processes)"),
    _option("lr", Optional[float], RunConfig.lr, f"Adam learning rate (default: {_learning_rates()})"),
    _option("device", str, RunConfig.device, "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps"),
    _option("precision", str, RunConfig.precision, "auto (bf16 autocast where this CPU/GPU runs it natively, "
            "it measures faster, and a short fp32-vs-bf16 run shows no quality loss; runs under "
            f"{BF16_WORTH_STEPS} steps do not try it; else fp32; on CUDA also "
            "torch.compile, where the run is long enough to repay it and it measures faster), fp32 or bf16"),
    _option("gan", bool, RunConfig.gan, f"pix2pix training with a PatchGAN (L1 x 100); for "
            f"{', '.join(m for m in _LEARNED if model_spec(m).gan)}", "--gan"),
    _option("runs_dir", Path, Path(RunConfig.runs_dir), "parent folder of run folders"),
    _option("synthetic_n", int, RunConfig.synthetic_n, "pairs in the built-in synthetic set (when no --data)"),
    _option("test_fraction", Optional[float], RunConfig.test_fraction, "test share of identities for --protocol "
            "random (default 0.2)"),
    _option("name", Optional[str], RunConfig.name, "run folder name inside --runs-dir (default "
            "<model>-<direction>-s<seed>)"),
    _option("layout", str, RunConfig.layout, "memory layout: auto (times a few training steps of each on this "
            "machine, cached per CPU/GPU, torch, model and batch size), nchw or channels_last"),
    _option("views", str, RunConfig.views, "training views: all (the protocol's 8) or identity (8x quicker)"),
    _option("recalibrate_bn", bool, RunConfig.recalibrate_bn, "after training, re-estimate BatchNorm statistics on "
            "the train set (recommended for short runs: Keras' momentum 0.99 adapts slowly)", "--recalibrate-bn"),
    _option("resume", bool, False, "continue the run in its folder from its last checkpoint (written after every "
            "epoch unless that costs over 5% of the time; give the run's options "
            "again; a longer --epochs/--epochs-scale extends it)", "--resume"),
    _option("jobs", int, 1, "runs to train at once, each in its own process: on a GPU they share it (small models "
            "leave it idle between kernels), on a CPU each gets cores/jobs threads; each run's output goes to "
            "RUNS/logs/<run>.log"),
    _option("overwrite", bool, False, "retrain runs that already exist (their old results go)", "--overwrite"),
)}

# What every command that trains takes: the RunConfig options besides the model, direction and
# the single run's own (--epochs, --gan, --name).
RUN_OPTIONS = ("data", "protocol", "seed", "epochs_scale", "batch_size", "lr", "device", "precision", "layout",
               "runs_dir", "synthetic_n", "test_fraction", "views", "recalibrate_bn")

# Options whose default is the command's own: the help is shared, the default given where used.
Out = Annotated[Path, typer.Option("--out", help="folder for runs/ and report/")]


def options(*names: str):
    """Give a command the shared options `names`, after its own parameters. They reach it as one
    dict of keyword arguments, `opts` (a keyword-only parameter of the command)."""
    def add(command):
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "opts"]

        @functools.wraps(command)
        def run(**kwargs):
            return command(**{k: v for k, v in kwargs.items() if k not in names},
                           opts={n: kwargs[n] for n in names})
        run.__signature__ = inspect.Signature(own + [OPTIONS[n] for n in names])  # what typer reads
        return run
    return add
