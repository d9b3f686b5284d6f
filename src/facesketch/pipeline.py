"""Multi-run jobs: train-all, demo and reproduce, built from train/evaluate/report."""

from __future__ import annotations

from pathlib import Path

from facesketch.config import RunConfig
from facesketch.direction import DIRECTIONS
from facesketch.registry import list_models, model_spec


def train_all(cfgs: list[RunConfig], *, overwrite: bool = False, progress: bool = True) -> list[Path]:
    """Train each config in turn. Unless overwrite, a run folder that already holds a run must
    agree with its config (checked for every run before any trains, see runsetup.resume_plan):
    a finished run is kept, an interrupted one resumed, one with a longer schedule extended."""
    from facesketch.checkpoint import MODEL_FILE, STATE_FILE
    from facesketch.runsetup import resume_plan
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


# From the registry, in its order; module names (read at call time) so tests can cut them down.
LEARNED = tuple(list_models(learned=True))
BASELINES = tuple(list_models(learned=False))
# The demo's short schedule (each spec's demo_epochs, first stage), on original views: sized by
# measurement (README, "The demo") so that the whole demo, install included, stays within 10
# minutes on a 2-core CPU while the flagship learns enough to beat every baseline on all metrics.
DEMO_EPOCHS = {m: model_spec(m).demo_epochs for m in LEARNED if model_spec(m).demo_epochs}
DEMO_SYNTHETIC_N = 120       # identities drawn ...
DEMO_TEST_FRACTION = 0.2     # ... 24 of them for testing (6 would be noise)


def evaluate_and_report(runs: list[Path], out: Path, *, title: str, device: str = "auto",
                        progress: bool = True) -> Path:
    from facesketch.evaluate import evaluate
    from facesketch.report import write_report
    for i, run in enumerate(runs, 1):
        if progress:
            print(f"[evaluate {i}/{len(runs)}] {run.name}", flush=True)
        evaluate(run, device=device, progress=progress)
    return write_report(runs, out, title=title, progress=progress)


def demo(out: Path, *, data: Path | None = None, device: str = "auto", seed: int = 0, overwrite: bool = False,
         progress: bool = True) -> Path:
    """The main job: train every model with demo epochs and every baseline both ways on a short
    schedule, evaluate, report."""
    models = [m for m in LEARNED if m in DEMO_EPOCHS] + list(BASELINES)
    cfgs = [RunConfig(model=m, direction=d, data=str(data) if data else None, synthetic_n=DEMO_SYNTHETIC_N,
                      protocol=None if data else "random", test_fraction=None if data else DEMO_TEST_FRACTION,
                      seed=seed, epochs=DEMO_EPOCHS.get(m), lr=model_spec(m).demo_lr, batch_size=6, device=device,
                      runs_dir=str(out / "runs"), views="identity", recalibrate_bn=True,
                      # a few epochs: bf16's timing and quality check would cost more than bf16 could save
                      precision="fp32")
            for d in DIRECTIONS for m in models]
    runs = train_all(cfgs, overwrite=overwrite, progress=progress)
    return evaluate_and_report(runs, out / "report", title="facesketch demo (short schedule)", device=device,
                               progress=progress)


def reproduce(data: Path, out: Path, *, epochs_scale: float = 1.0, protocol: str | None = None, device: str = "auto",
              precision: str = "auto", seed: int = 0, batch_size: int = RunConfig.batch_size,
              lr: float | None = None, views: str = "all", models: tuple[str, ...] | None = None,
              recalibrate_bn: bool = False, overwrite: bool = False, progress: bool = True) -> Path:
    """The report's experiment: its protocol and schedules (scaled), both directions, its tables beside ours.
    protocol None: paper (on real data, as for `train`); models None: every registered model and
    baseline; lr None: each model's own."""
    cfgs = [RunConfig(model=m, direction=d, data=str(data), protocol=protocol, seed=seed, epochs_scale=epochs_scale,
                      batch_size=batch_size, lr=lr, device=device, precision=precision, runs_dir=str(out / "runs"),
                      views=views, recalibrate_bn=recalibrate_bn)
            for d in DIRECTIONS for m in (LEARNED + BASELINES if models is None else models)]
    runs = train_all(cfgs, overwrite=overwrite, progress=progress)
    return evaluate_and_report(runs, out / "report", title=f"facesketch reproduction ({cfgs[0].protocol} protocol, "
                               f"epochs x{epochs_scale})", device=device, progress=progress)
