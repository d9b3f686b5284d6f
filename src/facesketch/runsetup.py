"""Run setup: the run folder's rules (start, resume, extend, claim) and the run's data.

A run may start in an empty folder, or replace one with --overwrite; --resume continues it only
with the options it was started with (a changed schedule may extend it). The folder is claimed
only once the data has loaded, so bad data neither deletes an old run nor leaves an empty folder,
and a run's evaluation (eval/, eval-*/) goes whenever its weights are about to change.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from facesketch import FacesketchError
from facesketch.checkpoint import MODEL_FILE, STATE_FILE, load_meta
from facesketch.config import SYNTHETIC_PREFIX, RunConfig
from facesketch.data.pairs import find_pairs
from facesketch.data.protocols import Split, make_split


def synthetic_data_dir(cfg: RunConfig) -> Path:
    """The built-in synthetic set for cfg, generated on first use under the runs folder."""
    from facesketch.data.synthetic import write_synthetic
    root = Path(cfg.runs_dir) / f"{SYNTHETIC_PREFIX}n{cfg.synthetic_n}-s{cfg.seed}"
    done = root / ".complete"
    if not done.exists():
        write_synthetic(root, n=cfg.synthetic_n, seed=cfg.seed)
        done.touch()
    return root


def load_split(cfg: RunConfig) -> Split:
    """cfg's dataset (or the built-in synthetic faces), validated and split by its protocol."""
    data = Path(cfg.data) if cfg.data else synthetic_data_dir(cfg)
    found = find_pairs(data)
    if found.problems:
        shown = "; ".join(found.problems[:3]) + (f"; ... {len(found.problems) - 3} more" if len(found.problems) > 3 else "")
        raise FacesketchError(f"dataset {data} is not usable ({shown}); see `facesketch data check {data}`")
    split = make_split(found.pairs, cfg.protocol, seed=cfg.seed, test_fraction=cfg.test_fraction)
    if not split.train or not split.test:
        raise FacesketchError(f"protocol {cfg.protocol!r} leaves an empty split on {data}")
    return split


START_OVER = "(use --overwrite, or remove the folder, to start over)"

def validate_run_dir(cfg: RunConfig, *, resume: bool, overwrite: bool) -> Path:
    """Refuse early when the run folder does not fit --resume/--overwrite; touches nothing."""
    run = cfg.run_dir
    has_work = (run / STATE_FILE).exists() or (run / MODEL_FILE).exists()
    if resume and not (run / STATE_FILE).exists():
        raise FacesketchError(f"--resume: {run / STATE_FILE} does not exist (nothing to resume)")
    if not resume and has_work and not overwrite:
        raise FacesketchError(f"{run} already holds a run; use --resume to continue it or --overwrite to replace it")
    return run


LOCK_FILE = ".lock"


@contextmanager
def run_dir_lock(run: Path):
    """Hold an exclusive lock on the run folder (RUN/.lock) while a process trains into it: a second
    `facesketch train` into the same folder stops in one line instead of interleaving writes.
    The lock is the operating system's (flock): it goes with the process, even after a kill."""
    run.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # no flock (Windows): no lock
        yield
        return
    with open(run / LOCK_FILE, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            other = f.read().strip() or "?"
            raise FacesketchError(f"{run} is being written by another facesketch process (pid {other}); "
                                  f"wait for it to finish, or stop it first") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def claim_run_dir(run: Path, *, overwrite: bool, drop_eval: bool) -> None:
    """Create the run folder; under --overwrite drop the old run's weights and history, and when
    the weights are about to change (drop_eval) its evaluations (eval/, eval-*/), which would
    otherwise describe other weights. Called once the data has loaded, so bad data leaves
    neither an empty folder nor a deleted run behind."""
    if overwrite:
        for name in (STATE_FILE, MODEL_FILE, "history.csv"):
            (run / name).unlink(missing_ok=True)
    if drop_eval and run.is_dir():
        for old in [run / "eval", *run.glob("eval-*")]:
            if old.is_dir():
                shutil.rmtree(old)
    run.mkdir(parents=True, exist_ok=True)


def run_is_complete(cfg: RunConfig) -> bool:
    """True when cfg's run folder holds weights for the whole schedule."""
    path = cfg.run_dir / MODEL_FILE
    if not path.exists():
        return False
    try:
        meta = load_meta(path)
    except FacesketchError:
        return False
    return meta.get("epoch", -1) >= sum(e for _, e in cfg.stages())


def resume_plan(cfg: RunConfig) -> tuple[list[str], bool]:
    """Check cfg (a RunConfig) against the config and position saved in its run folder.

    Every option but the machine's (--device, --runs-dir, workers) must match. The schedule
    (--epochs, --epochs-scale) may change as long as what is trained stays: stages already left
    behind keep their epochs, and the current one keeps at least those it has done. Raises a
    one-line FacesketchError naming the options otherwise. Returns (notes for the user, whether
    any epoch is left to train).
    """
    run = cfg.run_dir
    saved = RunConfig.load(run / "config.yaml")
    diffs = saved.differences(cfg)
    if diffs:
        raise FacesketchError(f"{run} was trained with other options: {'; '.join(diffs)} (give the run's own "
                              f"options to continue it, or --overwrite to start over)")
    old, new = saved.stages(), cfg.stages()
    flags = saved.schedule_flags(cfg)
    if not (run / STATE_FILE).exists():  # weights only (a baseline): nothing to continue from
        if new != old:
            raise FacesketchError(f"{flags}: {run} has no {STATE_FILE} to continue from {START_OVER}")
        if old and not run_is_complete(cfg):
            raise FacesketchError(f"{run} holds unfinished weights but no {STATE_FILE} to resume from {START_OVER}")
        return [], False
    position = load_meta(run / STATE_FILE)["position"]
    stage, done = position["stage"], position["stage_epochs_done"]
    for i in range(stage):
        if new[i] != old[i]:
            raise FacesketchError(f"{flags}: {run} has finished stage {i + 1} ({old[i][0]} x{old[i][1]}) and moved "
                                  f"on, so it cannot become {new[i][0]} x{new[i][1]} {START_OVER}")
    if new[stage][1] < done:
        raise FacesketchError(f"{flags}: {run} has already trained {done} epochs of stage {stage + 1} "
                              f"({old[stage][0]}), more than the {new[stage][1]} given {START_OVER}")
    notes = [] if new == old else [
        f"{'extending' if sum(e for _, e in new) > sum(e for _, e in old) else 'changing'} the schedule of {run}: "
        f"{saved.schedule_text()} -> {cfg.schedule_text()} ({flags})"]
    return notes, done < new[stage][1] or stage + 1 < len(new)
