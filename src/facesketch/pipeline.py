"""Multi-run jobs: train-all, demo and reproduce, built from train/evaluate/report."""

from __future__ import annotations

from pathlib import Path

from facesketch.config import RunConfig


def train_all(cfgs: list[RunConfig], *, overwrite: bool = False, progress: bool = True) -> list[Path]:
    """Train each config in turn. Unless overwrite, a run folder that already holds a run must
    agree with its config (checked for every run before any trains, see checkpoint.resume_plan):
    a finished run is kept, an interrupted one resumed, one with a longer schedule extended."""
    from facesketch.checkpoint import MODEL_FILE, STATE_FILE, resume_plan
    from facesketch.train import train
    plans = {} if overwrite else {cfg.run_dir: resume_plan(cfg) for cfg in cfgs
                                  if (cfg.run_dir / STATE_FILE).exists() or (cfg.run_dir / MODEL_FILE).exists()}
    runs = []
    for i, cfg in enumerate(cfgs, 1):
        if progress:
            print(f"[{i}/{len(cfgs)}] {cfg.run_name}", flush=True)
        plan = plans.get(cfg.run_dir)
        if plan is not None and not plan[1]:  # finished, with this very config
            runs.append(cfg.run_dir)
            continue
        runs.append(train(cfg, resume=plan is not None, overwrite=overwrite, progress=progress).run_dir)
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


def demo(out: Path, *, data: Path | None = None, device: str = "auto", seed: int = 0, overwrite: bool = False,
         progress: bool = True) -> Path:
    """The main job: train every model both ways on a short schedule, evaluate, report."""
    cfgs = []
    for direction in DIRECTIONS:
        for model in LEARNED + BASELINES:
            cfgs.append(RunConfig(model=model, direction=direction, data=str(data) if data else None,
                                  synthetic_n=DEMO_SYNTHETIC_N, protocol=None if data else "random",
                                  test_fraction=None if data else 0.25, seed=seed, epochs=DEMO_EPOCHS.get(model),
                                  batch_size=6, device=device, runs_dir=str(out / "runs"), views="identity",
                                  recalibrate_bn=True))
    runs = train_all(cfgs, overwrite=overwrite, progress=progress)
    return evaluate_and_report(runs, out / "report", title="facesketch demo (short schedule)", progress=progress)


def reproduce(data: Path, out: Path, *, epochs_scale: float = 1.0, protocol: str = "paper", device: str = "auto",
              precision: str = "fp32", seed: int = 0, views: str = "all", models: tuple[str, ...] = LEARNED + BASELINES,
              recalibrate_bn: bool = False, overwrite: bool = False, progress: bool = True) -> Path:
    """The report's experiment: its protocol and schedules (scaled), both directions, its tables beside ours."""
    cfgs = [RunConfig(model=m, direction=d, data=str(data), protocol=protocol, seed=seed, epochs_scale=epochs_scale,
                      device=device, precision=precision, runs_dir=str(out / "runs"), views=views,
                      recalibrate_bn=recalibrate_bn)
            for d in DIRECTIONS for m in models]
    runs = train_all(cfgs, overwrite=overwrite, progress=progress)
    return evaluate_and_report(runs, out / "report", title=f"facesketch reproduction ({protocol} protocol, "
                               f"epochs x{epochs_scale})", progress=progress)
