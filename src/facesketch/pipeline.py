"""Multi-run jobs: train-all, demo and reproduce, built from train/evaluate/report."""

from __future__ import annotations

from pathlib import Path

from facesketch.config import RunConfig


def train_all(cfgs: list[RunConfig], *, overwrite: bool = False, progress: bool = True) -> list[Path]:
    """Train each config in turn; a finished run (model.safetensors present and its schedule done)
    is kept unless overwrite, an interrupted one is resumed."""
    from facesketch.train import run_is_complete, train
    runs = []
    for i, cfg in enumerate(cfgs, 1):
        if progress:
            print(f"[{i}/{len(cfgs)}] {cfg.run_name}", flush=True)
        if not overwrite and run_is_complete(cfg):
            runs.append(cfg.run_dir)
            continue
        resume = not overwrite and (cfg.run_dir / "checkpoint.safetensors").exists()
        runs.append(train(cfg, resume=resume, overwrite=overwrite, progress=progress).run_dir)
    return runs


LEARNED = ("dense_ae", "conv_ae", "hybrid_ae", "unet")
BASELINES = ("pencil", "grey", "mean")
DIRECTIONS = ("photo2sketch", "sketch2photo")
# The demo's short schedule (first-stage epochs; hybrid_ae adds its MAE stage): sized so the
# whole demo, 8 trainings plus baselines, evaluation and report, stays within ~10 minutes on a
# 2-core CPU. It shows the pipeline working, not converged models.
DEMO_EPOCHS = {"dense_ae": 2, "conv_ae": 12, "hybrid_ae": 1, "unet": 3}
DEMO_SYNTHETIC_N = 24


def evaluate_and_report(runs: list[Path], out: Path, *, title: str, progress: bool = True) -> Path:
    from facesketch.evaluate import evaluate
    from facesketch.report import write_report
    for i, run in enumerate(runs, 1):
        if progress:
            print(f"[evaluate {i}/{len(runs)}] {run.name}", flush=True)
        evaluate(run, progress=progress)
    return write_report(runs, out, title=title, progress=progress)


def demo(out: Path, *, data: Path | None = None, device: str = "auto", seed: int = 0, progress: bool = True) -> Path:
    """The main job: train every model both ways on a short schedule, evaluate, report."""
    cfgs = []
    for direction in DIRECTIONS:
        for model in LEARNED + BASELINES:
            cfgs.append(RunConfig(model=model, direction=direction, data=str(data) if data else None,
                                  synthetic_n=DEMO_SYNTHETIC_N, protocol=None if data else "random",
                                  test_fraction=0.25, seed=seed, epochs=DEMO_EPOCHS.get(model), batch_size=6,
                                  device=device, runs_dir=str(out / "runs"), views="identity",
                                  recalibrate_bn=True))
    runs = train_all(cfgs, progress=progress)
    return evaluate_and_report(runs, out / "report", title="facesketch demo (short schedule)", progress=progress)


def reproduce(data: Path, out: Path, *, epochs_scale: float = 1.0, protocol: str = "paper", device: str = "auto",
              precision: str = "fp32", seed: int = 0, views: str = "all", models: tuple[str, ...] = LEARNED + BASELINES,
              recalibrate_bn: bool = False, progress: bool = True) -> Path:
    """The report's experiment: its protocol and schedules (scaled), both directions, its tables beside ours."""
    cfgs = [RunConfig(model=m, direction=d, data=str(data), protocol=protocol, seed=seed, epochs_scale=epochs_scale,
                      device=device, precision=precision, runs_dir=str(out / "runs"), views=views,
                      recalibrate_bn=recalibrate_bn)
            for d in DIRECTIONS for m in models]
    runs = train_all(cfgs, progress=progress)
    return evaluate_and_report(runs, out / "report", title=f"facesketch reproduction ({protocol} protocol, "
                               f"epochs x{epochs_scale})", progress=progress)
