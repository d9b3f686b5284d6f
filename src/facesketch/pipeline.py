"""Multi-run jobs: train-all, demo and reproduce, built from train/evaluate/report."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from facesketch import FacesketchError
from facesketch.config import RunConfig
from facesketch.direction import DIRECTIONS
from facesketch.registry import list_models, model_spec


def train_all(cfgs: list[RunConfig], *, overwrite: bool = False, progress: bool = True, jobs: int = 1) -> list[Path]:
    """Train each config; with jobs > 1, up to `jobs` at once, each in its own process. Unless
    overwrite, a run folder that already holds a run must agree with its config (checked for
    every run before any trains, see runsetup.resume_plan): a finished run is kept, an
    interrupted one resumed, one with a longer schedule extended."""
    from facesketch.checkpoint import MODEL_FILE, STATE_FILE
    from facesketch.runsetup import resume_plan
    from facesketch.train import train
    if jobs < 1:
        raise FacesketchError(f"--jobs must be at least 1, got {jobs}")
    plans = {} if overwrite else {cfg.run_dir: resume_plan(cfg) for cfg in cfgs
                                  if (cfg.run_dir / STATE_FILE).exists() or (cfg.run_dir / MODEL_FILE).exists()}
    todo = []
    for i, cfg in enumerate(cfgs, 1):
        plan = plans.get(cfg.run_dir)
        if plan is not None and not plan[1]:  # finished, with this very config
            if progress:
                print(f"[{i}/{len(cfgs)}] {cfg.run_name}: finished before, kept", flush=True)
            continue
        todo.append((i, cfg, plan is not None))
    if jobs > 1 and len(todo) > 1:
        _train_at_once(todo, len(cfgs), jobs=jobs, overwrite=overwrite, progress=progress)
    else:
        for i, cfg, resume in todo:
            if progress:
                print(f"[{i}/{len(cfgs)}] {cfg.run_name}", flush=True)
            train(cfg, resume=resume, overwrite=overwrite, progress=progress)
    return [cfg.run_dir for cfg in cfgs]


STATUS_EVERY_S = 60
STOP_WAIT_S = 60      # how long Ctrl-C waits for a run to stop cleanly before killing its process


def _train_at_once(todo: list[tuple[int, RunConfig, bool]], total: int, *, jobs: int, overwrite: bool,
                   progress: bool) -> None:
    """Up to `jobs` trainings at once, each in a fresh spawned process (safe with CUDA; nothing of
    one run carries into the next). On a GPU they share it: small models leave it idle between
    kernels, which the other runs fill. Each process gets 1/jobs of this process's torch threads.
    A run's output goes to RUNS/logs/<run>.log; its epochs, as always, to its history.csv. A run
    that fails with an error does not stop the others: the failures are reported together once
    every run has ended. Ctrl-C stops every run (each keeps its last checkpoint)."""
    import concurrent.futures as cf
    import multiprocessing
    if os.environ.get("WORLD_SIZE", "1") != "1":
        raise FacesketchError("--jobs runs trainings side by side in one process tree; under torchrun (DDP) "
                              "give --jobs 1")
    if len({cfg.run_dir for _, cfg, _ in todo}) < len(todo):
        raise FacesketchError("two of the runs to train share a run folder; give each its own --name")
    logs = {cfg.run_dir: Path(cfg.runs_dir) / "logs" / f"{cfg.run_name}.log" for _, cfg, _ in todo}
    for folder in {log.parent for log in logs.values()}:
        folder.mkdir(parents=True, exist_ok=True)   # here: a runs folder that cannot hold them stops in one line
    import torch
    threads = max(1, torch.get_num_threads() // jobs)
    failures = []
    from facesketch import jobworker
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    pool = cf.ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=ctx, initializer=jobworker.init,
                                  initargs=(threads, stop), max_tasks_per_child=1)
    try:
        futures = {}
        for i, cfg, resume in todo:
            log = logs[cfg.run_dir]
            futures[pool.submit(jobworker.train_job, cfg, resume, overwrite, log)] = (i, cfg, log)
        if progress:
            folders = ", ".join(sorted({str(log.parent) for log in logs.values()}))
            print(f"training {len(todo)} runs, {min(jobs, len(todo))} at once "
                  f"({threads} CPU thread{'s' if threads > 1 else ''} each); logs in {folders}", flush=True)
        pending = set(futures)
        while pending:
            done, pending = cf.wait(pending, timeout=STATUS_EVERY_S, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                i, cfg, log = futures[fut]
                try:
                    seconds = fut.result()
                except cf.process.BrokenProcessPool:
                    why = ("a worker process ended abruptly (killed, out of memory or crashed), and the runs in "
                           "progress stopped with it; the same command resumes them from their checkpoints")
                except Exception as e:  # noqa: BLE001  (any failure of one run is reported, the others go on)
                    why = str(e) if isinstance(e, FacesketchError) else f"{type(e).__name__}: {e}"
                else:
                    if progress:
                        print(f"[{i}/{total}] {cfg.run_name}: done in {seconds:.0f} s", flush=True)
                    continue
                failures.append(f"{cfg.run_name}: {why} (log: {log})")
                if progress:
                    print(f"[{i}/{total}] {cfg.run_name}: failed: {why}", flush=True)
            running = [futures[f][1] for f in pending if f.running()]
            if progress and running and not done:
                print("running: " + ", ".join(_epochs_so_far(cfg) for cfg in running), flush=True)
    except KeyboardInterrupt:
        _stop_workers(pool, stop)
        pool.shutdown(wait=True)
        raise
    pool.shutdown(wait=True)
    if failures:
        raise FacesketchError(f"{len(failures)} of {len(todo)} runs failed: " + "; ".join(failures))


def _stop_workers(pool, stop) -> None:
    """Ctrl-C: end every worker of `pool`, each run keeping its last checkpoint.

    The workers ignore Ctrl-C (a stray one would kill an idle worker mid-queue). `stop` is set
    first: a queued run that still reaches a worker (the pool hands a few to its call queue ahead,
    and starts a new worker when one ends) ends that worker before it starts. Then each worker is
    told once, by SIGTERM, which stops its training as an interrupt does and ends its process at
    once (facesketch.jobworker). A pool whose workers end so is broken: it drops what is queued.
    Workers started meanwhile are told too; any still alive after STOP_WAIT_S (one deadline for
    all), or at a second Ctrl-C, are killed: better lose their last epoch than hang here.
    Not pool.shutdown(wait=False): with max_tasks_per_child, Python 3.11's pool thread then meets
    the next worker's exit with a TypeError traceback on the user's terminal. Nor fut.cancel():
    the broken pool fails every future it holds, and 3.11's raises on a cancelled one."""
    import signal
    import time
    stop.set()
    deadline, told = time.monotonic() + STOP_WAIT_S, set()
    while True:
        try:
            procs = list((getattr(pool, "_processes", None) or {}).values())
            for proc in procs:
                if proc.pid not in told:
                    told.add(proc.pid)
                    with contextlib.suppress(OSError):
                        os.kill(proc.pid, signal.SIGTERM)
            alive = [proc for proc in procs if proc.is_alive()]
            if not alive:
                return
            if time.monotonic() >= deadline:
                for proc in alive:
                    proc.kill()
            time.sleep(0.05)
        except KeyboardInterrupt:   # a second Ctrl-C: no more waiting for clean stops
            deadline = 0


def _epochs_so_far(cfg: RunConfig) -> str:
    """'conv_ae-photo2sketch-s0 epoch 12', from the run's history.csv (written every epoch)."""
    try:
        rows = (cfg.run_dir / "history.csv").read_text().strip().splitlines()
    except OSError:
        rows = []
    return f"{cfg.run_name} epoch {max(0, len(rows) - 1)}"


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


def demo_configs(out: Path, *, data: Path | None = None, device: str = "auto", seed: int = 0,
                 precision: str = "fp32") -> list[RunConfig]:
    """The demo's runs: every model with demo epochs and every baseline, both ways, into out/runs.
    fp32, measured (bench/demo_precision.py): with auto, fsnet trains 30% faster in bf16 where it is
    native, but its sketch2photo run then lost to the mean face on mae_median, which fp32 keeps."""
    models = [m for m in LEARNED if m in DEMO_EPOCHS] + list(BASELINES)
    return [RunConfig(model=m, direction=d, data=str(data) if data else None, synthetic_n=DEMO_SYNTHETIC_N,
                      protocol=None if data else "random", test_fraction=None if data else DEMO_TEST_FRACTION,
                      seed=seed, epochs=DEMO_EPOCHS.get(m), lr=model_spec(m).demo_lr, batch_size=6, device=device,
                      runs_dir=str(out / "runs"), views="identity", recalibrate_bn=True, precision=precision)
            for d in DIRECTIONS for m in models]


def demo(out: Path, *, data: Path | None = None, device: str = "auto", seed: int = 0, overwrite: bool = False,
         progress: bool = True) -> Path:
    """The main job: train every model with demo epochs and every baseline both ways on a short
    schedule, evaluate, report."""
    cfgs = demo_configs(out, data=data, device=device, seed=seed)
    runs = train_all(cfgs, overwrite=overwrite, progress=progress)
    return evaluate_and_report(runs, out / "report", title="facesketch demo (short schedule)", device=device,
                               progress=progress)


def reproduce(data: Path, out: Path, *, epochs_scale: float = 1.0, protocol: str | None = None, device: str = "auto",
              precision: str = "auto", layout: str = "auto", seed: int = 0, batch_size: int = RunConfig.batch_size,
              lr: float | None = None, views: str = "all", models: tuple[str, ...] | None = None,
              recalibrate_bn: bool = False, overwrite: bool = False, progress: bool = True, jobs: int = 1) -> Path:
    """The report's experiment: its protocol and schedules (scaled), both directions, its tables beside ours.
    protocol None: paper (on real data, as for `train`); models None: every registered model and
    baseline; lr None: each model's own."""
    cfgs = [RunConfig(model=m, direction=d, data=str(data), protocol=protocol, seed=seed, epochs_scale=epochs_scale,
                      batch_size=batch_size, lr=lr, device=device, precision=precision, layout=layout,
                      runs_dir=str(out / "runs"), views=views, recalibrate_bn=recalibrate_bn)
            for d in DIRECTIONS for m in (LEARNED + BASELINES if models is None else models)]
    runs = train_all(cfgs, overwrite=overwrite, progress=progress, jobs=jobs)
    return evaluate_and_report(runs, out / "report", title=f"facesketch reproduction ({cfgs[0].protocol} protocol, "
                               f"epochs x{epochs_scale})", device=device, progress=progress)
