"""The `facesketch` command line: thin wrappers over library functions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from facesketch import FacesketchError

app = typer.Typer(
    help="facesketch: train, compare and serve deep models that turn a face photo into a pencil "
         "sketch (photo2sketch) and a sketch back into a photo (sketch2photo). It implements the "
         "three autoencoders of the reproduced report (dense_ae, conv_ae, hybrid_ae), a pix2pix U-Net "
         "and classical baselines, on CUFS, your own paired folders, or built-in synthetic faces.\n\n"
         "Start with `facesketch demo` (no data needed), then `facesketch reproduce --data CUFS_DIR`.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Inspect datasets and generate the built-in synthetic faces.", no_args_is_help=True)
app.add_typer(data_app, name="data")

PROTOCOL_HELP = "paper (report split), cufs-standard (88/100), random (seeded), manifest (CSV split column)"


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@data_app.command("check")
def data_check(
    path: Path = typer.Argument(..., help="dataset folder (photos/ + sketches/, or A/ + B/) or CSV manifest"),
    protocol: str = typer.Option("paper", help=PROTOCOL_HELP),
    seed: int = typer.Option(0, help="seed for --protocol random"),
    test_fraction: float = typer.Option(0.2, help="test share of identities for --protocol random"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of a summary"),
):
    """Validate a dataset: pairing, readable images, sizes; show the split. Exit 1 if unusable."""
    from facesketch.data.check import check_dataset, format_check
    report = check_dataset(path, protocol=protocol, seed=seed, test_fraction=test_fraction)
    typer.echo(json.dumps(report) if as_json else format_check(report, path))
    raise typer.Exit(0 if not report["problems"] else 1)


@data_app.command("synth")
def data_synth(
    out: Path = typer.Argument(..., help="folder to write photos/ and sketches/ into"),
    n: int = typer.Option(100, "--n", min=1, help="number of pairs (identities)"),
    seed: int = typer.Option(0, help="same seed -> byte-identical files"),
):
    """Draw N synthetic face photo/sketch pairs (200x250, CUFS layout)."""
    from facesketch.data.synthetic import write_synthetic
    write_synthetic(out, n=n, seed=seed)
    typer.echo(f"wrote {n} pairs to {out}/photos and {out}/sketches")


DIRECTIONS = ("photo2sketch", "sketch2photo")


@app.command("models")
def models_cmd(as_json: bool = typer.Option(False, "--json", help="print a JSON list instead of a table")):
    """List every model: input size, trainable parameters, BatchNorm statistics, loss and schedule."""
    from facesketch.models.info import all_model_info
    infos = all_model_info()
    if as_json:
        typer.echo(json.dumps(infos))
        return
    typer.echo(f"{'model':<10} {'size':>5} {'trainable':>13} {'bn stats':>9}  schedule")
    for m in infos:
        sched = " + ".join(f"{s['loss']} x{s['epochs']}" for s in m["schedule"]) or "no training (baseline)"
        typer.echo(f"{m['name']:<10} {m['image_size']:>5} {m['trainable_params']:>13,} {m['non_trainable']:>9,}  {sched}")


def _run_config(model, direction, data, protocol, seed, epochs, epochs_scale, batch_size, lr, device,
                precision, runs_dir, synthetic_n, test_fraction, gan=False, name=None, views="all"):
    from facesketch.config import RunConfig
    if data is not None and not data.exists():
        _fail(f"--data {data}: no such file or folder")
    return RunConfig(model=model, direction=direction, data=str(data) if data else None, protocol=protocol,
                     seed=seed, epochs=epochs, epochs_scale=epochs_scale, batch_size=batch_size, lr=lr,
                     device=device, precision=precision, runs_dir=str(runs_dir), synthetic_n=synthetic_n,
                     test_fraction=test_fraction, gan=gan, name=name, views=views)


_DATA = typer.Option(None, "--data", help="dataset folder or CSV manifest (default: built-in synthetic faces)")
_PROTOCOL = typer.Option(None, help=PROTOCOL_HELP + "; default paper on real data, random on synthetic")
_EPOCHS = typer.Option(None, help="epochs of the first stage (default: the model's schedule)")
_SCALE = typer.Option(1.0, "--epochs-scale", help="multiply every stage's epochs, e.g. 0.05 for a quick run")
_BATCH = typer.Option(32, "--batch-size", help="global batch size (split across DDP processes)")
_LR = typer.Option(None, help="Adam learning rate (default: 1e-3; unet 2e-4)")
_DEVICE = typer.Option("auto", help="auto (cuda, then mps, then cpu), cpu, cuda, mps")
_PRECISION = typer.Option("fp32", help="fp32 or bf16 (autocast)")
_RUNS = typer.Option(Path("runs"), "--runs-dir", help="parent folder of run folders")
_SYN_N = typer.Option(40, "--synthetic-n", help="pairs in the built-in synthetic set (when no --data)")
_TEST_FRACTION = typer.Option(0.2, help="test share of identities for --protocol random")
_VIEWS = typer.Option("all", help="training views: all (the protocol's 8) or identity (8x quicker)")


@app.command("train")
def train_cmd(
    model: str = typer.Option(..., "--model", "-m", help="dense_ae, conv_ae, hybrid_ae, unet, or a baseline"),
    direction: str = typer.Option(..., "--direction", "-d", help="photo2sketch or sketch2photo"),
    data: Optional[Path] = _DATA, protocol: Optional[str] = _PROTOCOL,
    seed: int = typer.Option(0, help="seed for split, weights, shuffling and dropout"),
    epochs: Optional[int] = _EPOCHS, epochs_scale: float = _SCALE, batch_size: int = _BATCH,
    lr: Optional[float] = _LR, device: str = _DEVICE, precision: str = _PRECISION,
    gan: bool = typer.Option(False, "--gan", help="unet only: pix2pix training with a PatchGAN (L1 x 100)"),
    runs_dir: Path = _RUNS, synthetic_n: int = _SYN_N, test_fraction: float = _TEST_FRACTION,
    name: Optional[str] = typer.Option(None, help="run folder name (default <model>-<direction>-s<seed>)"),
    views: str = _VIEWS,
    recalibrate_bn: bool = typer.Option(False, "--recalibrate-bn", help="after training, re-estimate BatchNorm "
                                        "statistics on the train set (for short runs; Keras momentum 0.99 is slow)"),
    resume: bool = typer.Option(False, "--resume", help="continue the run in its folder from its last epoch"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing run folder's results"),
):
    """Train one model in one direction; writes runs/<model>-<direction>-s<seed>/.

    Under `torchrun --nproc-per-node N -m facesketch train ...` it trains with DDP."""
    from facesketch.train import train
    from facesketch.registry import list_models
    if model not in list_models():
        _fail(f"unknown model {model!r}; choose from {', '.join(list_models())}")
    if direction not in DIRECTIONS:
        _fail(f"--direction must be photo2sketch or sketch2photo, got {direction!r}")
    cfg = _run_config(model, direction, data, protocol, seed, epochs, epochs_scale, batch_size, lr, device,
                      precision, runs_dir, synthetic_n, test_fraction, gan, name, views)
    cfg.recalibrate_bn = recalibrate_bn
    result = train(cfg, resume=resume, overwrite=overwrite)
    typer.echo(f"run folder: {result.run_dir}")


@app.command("train-all")
def train_all_cmd(
    data: Optional[Path] = _DATA, protocol: Optional[str] = _PROTOCOL, seed: int = typer.Option(0),
    epochs_scale: float = _SCALE, batch_size: int = _BATCH, device: str = _DEVICE, precision: str = _PRECISION,
    runs_dir: Path = _RUNS, synthetic_n: int = _SYN_N, test_fraction: float = _TEST_FRACTION, views: str = _VIEWS,
    models: str = typer.Option("dense_ae,conv_ae,hybrid_ae,unet,pencil,grey,mean", help="comma-separated"),
    overwrite: bool = typer.Option(False, "--overwrite", help="retrain runs that already exist"),
):
    """Train every model (default: the three paper models, unet and the baselines) in both directions."""
    from facesketch.pipeline import train_all
    names = [m.strip() for m in models.split(",") if m.strip()]
    cfgs = [_run_config(m, d, data, protocol, seed, None, epochs_scale, batch_size, None, device, precision,
                        runs_dir, synthetic_n, test_fraction, views=views) for m in names for d in DIRECTIONS]
    for run in train_all(cfgs, overwrite=overwrite):
        typer.echo(f"done: {run}")


@app.command("evaluate")
def evaluate_cmd(
    run: Path = typer.Argument(..., help="a run folder written by `facesketch train`"),
    no_images: bool = typer.Option(False, "--no-images", help="skip writing prediction PNGs"),
):
    """Evaluate a run on its test split: RUN/eval/pred/*.png, metrics.csv, summary.json."""
    from facesketch.evaluate import evaluate
    summary = evaluate(run, save_images=not no_images)
    m = summary["metrics"]
    typer.echo(f"{summary['model']} {summary['direction']} ({summary['protocol']}, n={summary['n']}): "
               + ", ".join(f"{k} {v:.4f}" for k, v in m.items()))
    typer.echo(f"wrote {run / 'eval' / 'summary.json'}")


@app.command("report")
def report_cmd(
    runs: list[Path] = typer.Argument(..., help="run folders (evaluated first if needed)"),
    out: Path = typer.Option(Path("report"), "-o", "--out", help="output folder for report.html and report.md"),
):
    """Compare runs: tables like the report's I/II (with its numbers on the paper protocol), grids, loss curves."""
    from facesketch.report import write_report
    typer.echo(f"report: {write_report(runs, out)}")


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("facesketch-demo"), "--out", help="folder for runs/ and report/"),
    data: Optional[Path] = typer.Option(None, "--data", help="a real dataset instead of the synthetic faces"),
    device: str = _DEVICE,
):
    """The main job: synthetic faces -> train every model both ways (short schedule) -> evaluate -> report.

    Needs no data and no network; about 10 minutes on a 2-core CPU."""
    from facesketch.pipeline import demo
    if data is not None and not data.exists():
        _fail(f"--data {data}: no such file or folder")
    html_path = demo(out, data=data, device=device)
    typer.echo(f"\nreport: {html_path.resolve()}")


@app.command("reproduce")
def reproduce_cmd(
    data: Path = typer.Option(..., "--data", help="CUFS folder (photos/ + sketches/)"),
    out: Path = typer.Option(Path("facesketch-reproduce"), "--out", help="folder for runs/ and report/"),
    epochs_scale: float = _SCALE, protocol: str = typer.Option("paper", help=PROTOCOL_HELP),
    device: str = _DEVICE, precision: str = _PRECISION,
    views: str = _VIEWS,
    models: str = typer.Option(",".join(("dense_ae", "conv_ae", "hybrid_ae", "unet", "pencil", "grey", "mean")),
                               help="comma-separated models"),
    recalibrate_bn: bool = typer.Option(False, "--recalibrate-bn", help="re-estimate BatchNorm statistics after "
                                        "training (recommended with a small --epochs-scale)"),
):
    """The report's experiment: its protocol and schedules, both directions, its Tables I/II beside ours."""
    from facesketch.pipeline import reproduce
    if not data.exists():
        _fail(f"--data {data}: no such file or folder")
    names = tuple(m.strip() for m in models.split(",") if m.strip())
    html_path = reproduce(data, out, epochs_scale=epochs_scale, protocol=protocol, device=device,
                          precision=precision, views=views, models=names, recalibrate_bn=recalibrate_bn)
    typer.echo(f"\nreport: {html_path.resolve()}")


def main() -> None:
    try:
        app()
    except FacesketchError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
