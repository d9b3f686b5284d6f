"""The `facesketch` command line: thin wrappers over library functions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from facesketch import FacesketchError
from facesketch.cli_options import PROTOCOL_HELP, RUN_OPTIONS, Out, options
from facesketch.direction import DIRECTIONS


class _Interrupted(Exception):
    """Ctrl-C inside a command, carried past typer/click (which would end it silently) to main()."""


class _Group(TyperGroup):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise _Interrupted() from None


app = typer.Typer(cls=_Group,
    help="facesketch: train, compare and serve deep models that turn a face photo into a pencil "
         "sketch (photo2sketch) and a sketch back into a photo (sketch2photo). It implements the "
         "three autoencoders of the reproduced report (dense_ae, conv_ae, hybrid_ae), a pix2pix U-Net "
         "(unet), facesketch's own fsnet, and classical baselines, on CUFS, your own paired folders, or built-in synthetic faces.\n\n"
         "Start with `facesketch demo` (no data needed), then `facesketch reproduce --data CUFS_DIR`.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Inspect datasets and generate the built-in synthetic faces.", no_args_is_help=True)
app.add_typer(data_app, name="data")

def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _jobs(jobs: int) -> int:
    if jobs < 1:
        _fail(f"--jobs must be at least 1, got {jobs}")
    return jobs


@data_app.command("check")
def data_check(
    path: Path = typer.Argument(..., help="dataset folder (photos/ + sketches/, or A/ + B/) or CSV manifest"),
    protocol: str = typer.Option("paper", help=PROTOCOL_HELP),
    seed: int = typer.Option(0, help="seed for --protocol random"),
    test_fraction: Optional[float] = typer.Option(None, help="test share of identities for --protocol random "
                                                  "(default 0.2; other protocols ignore it, with a note)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of a summary"),
):
    """Validate a dataset: pairing, readable images, sizes; show the split. Exit 1 if unusable, 2 for a bad option."""
    from facesketch.data.check import check_dataset, check_split_options, format_check
    try:  # a bad option is the command line's mistake, not the dataset's: exit 2, as `train` does
        check_split_options(protocol, seed, test_fraction)
    except FacesketchError as e:
        _fail(str(e))
    report = check_dataset(path, protocol=protocol, seed=seed, test_fraction=test_fraction)
    typer.echo(json.dumps(report) if as_json else format_check(report, path))
    raise typer.Exit(0 if not report["problems"] else 1)


@data_app.command("synth")
def data_synth(
    out: Path = typer.Argument(..., help="folder to write photos/ and sketches/ into"),
    n: int = typer.Option(100, "--n", min=1, help="number of pairs (identities)"),
    seed: int = typer.Option(0, help="same seed -> byte-identical files"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace a synthetic set written into OUT before "
                                   "(never any other file)"),
):
    """Draw N synthetic face photo/sketch pairs (200x250, CUFS layout) into a new or empty folder."""
    from facesketch.data.images import shown
    from facesketch.data.synthetic import write_synthetic
    try:
        write_synthetic(out, n=n, seed=seed, overwrite=overwrite)
    except FacesketchError as e:
        _fail(str(e))
    typer.echo(f"wrote {n} pairs to {shown(out)}/photos and {shown(out)}/sketches")


@app.command("models")
def models_cmd(as_json: bool = typer.Option(False, "--json", help="print a JSON list instead of a table")):
    """List every model: input size, trainable parameters, BatchNorm statistics, loss and schedule."""
    from facesketch.models.info import all_model_info, schedule_text
    infos = all_model_info()
    if as_json:
        typer.echo(json.dumps(infos))
        return
    typer.echo(f"{'model':<10} {'size':>5} {'trainable':>13} {'bn stats':>9}  {'shipped weights':<26}  schedule")
    for m in infos:
        shipped = ", ".join(m["weights"]) or "-"
        typer.echo(f"{m['name']:<10} {m['image_size']:>5} {m['trainable_params']:>13,} {m['non_trainable']:>9,}  "
                   f"{shipped:<26}  {schedule_text(m['name'])}")


def _existing(data: Path | None) -> None:
    if data is not None and not data.exists():
        _fail(f"--data {data}: no such file or folder")


def _run_config(**options):
    """RunConfig from the options of the command line, which validates every value (one line naming the option)."""
    from facesketch.config import RunConfig
    _existing(options["data"])
    try:
        return RunConfig(**{**options, "data": str(options["data"]) if options["data"] else None,
                            "runs_dir": str(options["runs_dir"])})
    except FacesketchError as e:
        _fail(str(e))


def _model_names(models: str) -> list[str]:
    """--models 'a,b' -> ['a', 'b'], every name checked against the registry before anything trains."""
    from facesketch.registry import list_models
    known = sorted(list_models())
    names = [m.strip() for m in models.split(",") if m.strip()]
    if not names:
        _fail(f"--models is empty; give comma-separated names from {', '.join(known)}")
    for m in names:
        if m not in known:
            _fail(f"--models: unknown model {m!r}; choose from {', '.join(known)}")
    return list(dict.fromkeys(names))


@app.command("train")
@options("model", "direction", *RUN_OPTIONS, "epochs", "gan", "name", "resume", "overwrite")
def train_cmd(*, opts: dict):
    """Train one model in one direction; writes runs/<model>-<direction>-s<seed>/.

    Under `torchrun --nproc-per-node N -m facesketch train ...` it trains with DDP. While it trains,
    freed memory is kept for the next step (faster; FACESKETCH_KEEP_FREED_MEMORY=0 turns that off)."""
    from facesketch.train import train
    resume, overwrite = opts.pop("resume"), opts.pop("overwrite")
    result = train(_run_config(**opts), resume=resume, overwrite=overwrite)
    typer.echo(f"run folder: {result.run_dir}")


@app.command("train-all")
@options(*RUN_OPTIONS, "models", "jobs", "overwrite")
def train_all_cmd(*, opts: dict):
    """Train every registered model (or --models) in both directions.

    Runs already in --runs-dir must match these options (checked before anything trains): finished
    ones are kept, interrupted ones resumed, a longer --epochs-scale extends them."""
    from facesketch.pipeline import train_all
    names, overwrite, jobs = _model_names(opts.pop("models")), opts.pop("overwrite"), _jobs(opts.pop("jobs"))
    cfgs = [_run_config(model=m, direction=d, **opts) for m in names for d in DIRECTIONS]
    for run in train_all(cfgs, overwrite=overwrite, jobs=jobs):
        typer.echo(f"done: {run}")


@app.command("evaluate")
@options("device")
def evaluate_cmd(
    run: Optional[Path] = typer.Argument(None, help="a run folder written by `facesketch train` (or give --model "
                                         "and --direction for the weights that ship with facesketch)"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="score this model's shipped weights (see "
                                        "`facesketch models`) instead of a run; needs --direction and --data"),
    direction: Optional[str] = typer.Option(None, "--direction", "-d", help="with --model: photo2sketch or "
                                            "sketch2photo"),
    data: Optional[Path] = typer.Option(None, "--data", help="score the run on another paired dataset (folder or "
                                        "CSV manifest) instead of its own test split: cross-dataset generalisation"),
    protocol: Optional[str] = typer.Option(None, help="with --data: score only this protocol's test split of it "
                                           "(default: every pair, original view)"),
    out: Optional[Path] = typer.Option(None, "--out", help="output folder (default RUN/eval, with --data "
                                       "RUN/eval-<data name>[-<protocol>]; for --model "
                                       "runs/shipped-<model>-<direction>/eval-<data name>[-<protocol>]): new or "
                                       "empty, or an earlier evaluation of the same weights, data and protocol"),
    no_images: bool = typer.Option(False, "--no-images", help="skip writing prediction PNGs"),
    layout: str = typer.Option("auto", "--layout", help="memory layout for inference: auto (the faster on this "
                               "machine, timed once and cached), nchw or channels_last"),
    precision: str = typer.Option("fp32", "--precision", help="precision for inference: fp32 (default: the "
                                  "reported numbers do not depend on the machine), auto (bf16 where native, faster "
                                  "and within one grey level of fp32) or bf16"),
    *, opts: dict,
):
    """Evaluate a run on its test split (or on --data), or the shipped weights (--model, --direction, --data):
    pred/*.png, metrics.csv, summary.json."""
    from facesketch.data.protocols import PROTOCOLS
    from facesketch.evaluate import eval_dir_for, evaluate, evaluate_shipped, shipped_eval_dir
    from facesketch.registry import list_models
    if (run is None) == (model is None):
        _fail("give a run folder, or --model NAME --direction D --data DIR for shipped weights (not both)")
    if model is not None and (direction is None or data is None):
        _fail(f"--model {model}: give --direction (photo2sketch or sketch2photo) and --data (the pairs to score)")
    if run is not None and direction is not None:
        _fail("--direction goes with --model; a run folder's direction is in its config.yaml")
    if protocol is not None and data is None:
        _fail("--protocol chooses the test split of --data; give --data too (a run's own split is in its split.csv)")
    if protocol is not None and protocol not in PROTOCOLS:
        _fail(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    if model is not None and model not in list_models():
        _fail(f"--model: unknown model {model!r}; choose from {', '.join(sorted(list_models()))}")
    from facesketch.autotune import check_request
    try:
        check_request(layout, precision)
    except FacesketchError as e:
        _fail(str(e))
    _existing(data)
    device = opts["device"]
    try:
        if model is not None:
            summary = evaluate_shipped(model, direction, data, protocol=protocol, out=out, device=device,
                                       save_images=not no_images, layout=layout, precision=precision)
            where = out or shipped_eval_dir(model, direction, data, protocol)
        else:
            summary = evaluate(run, data=data, protocol=protocol, out=out, device=device, save_images=not no_images,
                               layout=layout, precision=precision)
            where = out or eval_dir_for(run, data, protocol)
    except FacesketchError as e:
        _fail(str(e))
    m = summary["metrics"]
    on = f" on {data}" if data is not None else ""
    shipped = " (shipped weights)" if model is not None else ""
    typer.echo(f"{summary['model']}{shipped} {summary['direction']}{on} ({summary['protocol']}, n={summary['n']}): "
               + ", ".join(f"{k} {v:.4f}" for k, v in m.items()))
    ident = summary.get("identification") or {}
    if ident:
        typer.echo(f"identification among {ident['n']}: rank-1 {ident['rank1']:.2f} "
                   f"(chance {ident['chance_rank1']:.2f}), "
                   f"rank-5 {ident['rank5']:.2f} (chance {ident['chance_rank5']:.2f})")
    typer.echo(f"wrote {where / 'summary.json'}")


@app.command("report")
def report_cmd(
    runs: list[Path] = typer.Argument(..., help="run folders (their eval/), or evaluation folders RUN/eval-<data> "
                                      "written by `evaluate --data`; a missing or stale evaluation is redone first"),
    out: Path = typer.Option(Path("report"), "-o", "--out", help="output folder for report.html and report.md"),
):
    """Compare runs: tables like the report's I/II (its numbers beside runs on the paper protocol of the CUFS
    student set), grids, loss curves."""
    from facesketch.report import write_report
    if out.exists() and not out.is_dir():
        _fail(f"-o {out} is a file; expected a folder for report.html, report.md and its images")
    typer.echo(f"report: {write_report(runs, out)}")


@app.command("demo")
@options("data", "device", "overwrite")
def demo_cmd(out: Out = Path("facesketch-demo"), *, opts: dict):
    """The main job: synthetic faces -> train every model both ways (short schedule) -> evaluate -> report.

    Needs no data and no network; about 10 minutes on a 2-core CPU."""
    from facesketch.pipeline import demo
    _existing(opts["data"])
    typer.echo(f"\nreport: {demo(out, **opts).resolve()}")


@app.command("reproduce")
@options("protocol", "seed", "epochs_scale", "batch_size", "lr", "device", "precision", "layout", "views",
         "recalibrate_bn", "models", "jobs", "overwrite")
def reproduce_cmd(data: Annotated[Path, typer.Option("--data", help="CUFS folder (photos/ + sketches/)")],
                  out: Out = Path("facesketch-reproduce"), *, opts: dict):
    """The report's experiment: its protocol and schedules, both directions, its Tables I/II beside ours.

    Runs already in OUT/runs must match these options (a longer --epochs-scale extends them)."""
    from facesketch.pipeline import reproduce
    _existing(data)
    opts["models"] = tuple(_model_names(opts["models"]))
    _jobs(opts["jobs"])
    typer.echo(f"\nreport: {reproduce(data, out, **opts).resolve()}")


from facesketch import cli_use  # noqa: E402  (its commands go on the app defined above)

cli_use.register(app, data_app)


def main() -> None:
    try:
        app()
    except FacesketchError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except (KeyboardInterrupt, _Interrupted):
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except OSError as e:
        # a path the operating system refuses (a file where a folder must go, no permission, a
        # full disk): the path and the system's reason, not a traceback
        where = f"{e.filename}: " if e.filename else ""
        typer.echo(f"error: {where}{e.strerror or e}", err=True)
        sys.exit(1)
