"""The training loop: plain PyTorch, resumable, reproducible; DDP under torchrun.

A run goes config -> run setup (runsetup.py: the folder's rules, the data and its split) ->
model from its spec (registry.py) -> a step kind (steps.py: supervised or pix2pix), which owns
the optimisers and the update -> the schedule's stages, epoch by epoch, each epoch ending in
history.csv and (every epoch, unless that would cost over 5% of the time: _CheckpointClock)
checkpoint.safetensors and model.safetensors (checkpoint.py), all written atomically. On a GPU
the batches are cut there from a resident copy of the images (data.dataset.batches).
Baselines are fitted (the mean image), not trained, and saved alike.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from facesketch import FacesketchError
from facesketch import distributed as D
from facesketch.checkpoint import (MODEL_FILE, STATE_FILE, file_sha256, load_meta, load_state, load_weights,
                                   save_model, save_state)
from facesketch.config import RunConfig
from facesketch.data.dataset import PairDataset, batches
from facesketch.data.protocols import Split, write_split_manifest
from facesketch.losses import LOSSES  # noqa: F401  (re-exported: the registry of losses by name)
from facesketch.process import kept_heap, keeps_freed_memory
from facesketch.registry import create_model, model_spec
from facesketch.runsetup import claim_run_dir, load_split, resume_plan, run_dir_lock, validate_run_dir
from facesketch.runtime import Placement
from facesketch.steps import STEP_KINDS, make_optimizer, step_kind  # noqa: F401  (make_optimizer re-exported)

LOSS_READ_EVERY = 25      # on a GPU: steps between reads of the loss (each read waits for the GPU)
CHECKPOINT_SHARE = 0.05   # at most this share of a run's time goes to writing checkpoints
HISTORY_FIELDS = ("stage", "loss", "epoch", "train_loss", "test_loss", "seconds", "images_per_s")


class TrainingDiverged(FacesketchError):
    pass


@dataclass
class TrainResult:
    run_dir: Path
    model: nn.Module
    history: list[dict]
    notes: list[str] = field(default_factory=list)  # what a resume changed (an extended schedule)


class _CheckpointClock:
    """When to write the checkpoint: after every epoch, unless writing it takes more than
    CHECKPOINT_SHARE of the training time (dense_ae's 425M parameters and their Adam moments are
    5 GB, seconds to write, against epochs of a fraction of a second on a GPU); then only once that
    much training has passed since the last one, and always at the end of a stage. A crash or
    Ctrl-C loses at most that much training."""

    def __init__(self):
        self.cost, self.last = 0.0, time.perf_counter()

    def due(self, *, last_of_stage: bool) -> bool:
        return last_of_stage or (time.perf_counter() - self.last) * CHECKPOINT_SHARE >= self.cost

    @contextmanager
    def timed(self):
        t = time.perf_counter()
        yield
        self.last = time.perf_counter()
        self.cost = self.last - t


def _write_history(path: Path, history: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=HISTORY_FIELDS)
            w.writeheader()
            w.writerows(history)
        tmp.replace(path)
    except BaseException:  # Ctrl-C included: no stray .tmp
        tmp.unlink(missing_ok=True)
        raise


@dataclass
class _Run:
    """What one training run carries from setup through its epochs."""

    cfg: RunConfig
    dir: Path
    split: Split
    place: Placement
    notes: list[str]
    trains_more: bool
    progress: bool
    split_sha256: str | None = None

    @property
    def main(self) -> bool:
        return self.place.dist.main

    def meta(self, model: nn.Module, epoch: int, device: torch.device | None = None, **extra) -> dict:
        """model.safetensors metadata. "device": where the weights were computed ('cpu', 'cuda:0';
        rank 0's under DDP), not the --device asked for; "split_sha256": the split.csv they were
        trained on, so that evaluation notices a split edited afterwards."""
        cfg = self.cfg
        return {"model": cfg.model, "model_kwargs": cfg.model_kwargs, "direction": cfg.direction,
                "protocol": cfg.protocol, "epoch": epoch, "image_size": model.image_size,
                "device": str(device or self.place.device), "world_size": 1 if device else self.place.dist.world,
                "config": cfg.to_dict(), "train_pairs": len(self.split.train), "test_pairs": len(self.split.test),
                "split_sha256": self.split_sha256, **extra}


def train(cfg: RunConfig, *, resume: bool = False, overwrite: bool = False, progress: bool = True) -> TrainResult:
    """Train (or fit) cfg.model in cfg.direction; returns the run folder and the trained model."""
    if resume and overwrite:
        raise FacesketchError("--resume continues a run and --overwrite replaces it: give one of them")
    keeps_freed_memory()   # a bad FACESKETCH_KEEP_FREED_MEMORY stops here, before any file is written
    place = Placement.start(cfg.device)
    main = place.dist.main
    run_dir = validate_run_dir(cfg, resume=resume, overwrite=overwrite) if main else cfg.run_dir
    if resume and (run_dir / "config.yaml").is_file():   # keep what it chose
        before = RunConfig.load(run_dir / "config.yaml")
        cfg.layout_chosen, cfg.compile_chosen = before.layout_chosen, before.compile_chosen
        # runs from before --precision auto name their precision only in `precision`
        cfg.precision_chosen = before.precision_chosen or (before.precision if before.precision != "auto" else None)
    # a resume trains the run it finds, so cfg must agree with it (a longer schedule extends it)
    notes, trains_more = resume_plan(cfg) if resume else ([], True)
    torch.manual_seed(cfg.seed)
    split = load_split(cfg)
    if main:
        for note in notes + (list(split.notes) if progress else []):  # schedule changes are always shown
            print(f"note: {note}", flush=True)
    spec = model_spec(cfg.model)
    if main and not spec.learned and (cfg.epochs is not None or cfg.lr is not None):
        print(f"note: {cfg.model} is a baseline: it is fitted, not trained, so --epochs and --lr do not apply",
              flush=True)
    model = create_model(cfg.model, **cfg.model_kwargs)
    train_ds = PairDataset(split.train, size=model.image_size, direction=cfg.direction,
                           views=split.train_views if cfg.views == "all" else (0,), progress=progress and main)
    test_ds = PairDataset(split.test, size=model.image_size, direction=cfg.direction, views=split.test_views) \
        if spec.learned else None
    run = _Run(cfg, run_dir, split, place, notes, trains_more, progress)
    with run_dir_lock(run_dir) if main else nullcontext():
        if main:
            validate_run_dir(cfg, resume=resume, overwrite=overwrite)  # again, now that this process holds it
            claim_run_dir(run_dir, overwrite=overwrite, drop_eval=trains_more)
            cfg.save(run_dir / "config.yaml")
            write_split_manifest(split, run_dir / "split.csv")
            run.split_sha256 = file_sha256(run_dir / "split.csv")
        if not spec.learned:
            return _fit_baseline(run, model, train_ds)
        with kept_heap():     # steps reuse freed memory; handed back when the run ends (process.py)
            return _train_learned(run, spec, model, train_ds, test_ds, resume)


def _train_learned(run: _Run, spec, model: nn.Module, train_ds, test_ds, resume: bool) -> TrainResult:
    """The schedule's stages, epoch by epoch, through the model kind's step."""
    cfg, place, main = run.cfg, run.place, run.main
    layout, precision = _tune(run, spec, resume, train_ds, model)
    place = dataclasses.replace(place, channels_last=layout == "channels_last", compiled=bool(cfg.compile_chosen))
    model = place.module(model)
    step = STEP_KINDS[step_kind(cfg)](model, cfg=cfg, spec=spec, place=place, autocast=_autocast(precision, place))
    stages = step.stage_losses(cfg.stages())
    position, history = {"stage": 0, "stage_epochs_done": 0}, []
    batch = max(1, math.ceil(cfg.batch_size / place.dist.world))
    steps_per_epoch = math.ceil(math.ceil(len(train_ds) / place.dist.world) / batch)

    def start_stage(s: int, epochs_done: int = 0) -> None:
        step.start_stage(stages[s][0], total_steps=stages[s][1] * steps_per_epoch,
                         steps_done=epochs_done * steps_per_epoch)
    if resume:
        position = load_meta(run.dir / STATE_FILE)["position"]
        start_stage(position["stage"], position["stage_epochs_done"])
        position, history = load_state(run.dir / STATE_FILE, model=model, optimizers=step.optimizers,
                                       extra_modules=step.extra_modules)
        if position["stage_epochs_done"] >= stages[position["stage"]][1] and position["stage"] + 1 < len(stages):
            position = {"stage": position["stage"] + 1, "stage_epochs_done": 0}
            start_stage(position["stage"])
    else:
        start_stage(0)
    final = step.exported  # what is evaluated and saved (an EMA of the weights, where the spec has one)
    saver = _CheckpointClock()

    for s in range(position["stage"], len(stages)):
        loss_name, n_epochs = stages[s]
        if s != position["stage"]:
            start_stage(s)
        start = position["stage_epochs_done"] if s == position["stage"] else 0
        for e in range(start, n_epochs):
            epoch = len(history) + 1
            train_loss, seconds, seen = _epoch(step, train_ds, cfg, place, epoch, batch,
                                               f"{cfg.run_name} {loss_name} epoch {e + 1}/{n_epochs}", run.progress)
            test_loss = evaluate_loss(final, test_ds, step.test_loss, place, batch) if main else math.nan
            history.append({"stage": s + 1, "loss": loss_name, "epoch": epoch, "train_loss": round(train_loss, 6),
                            "test_loss": round(test_loss, 6), "seconds": round(seconds, 2),
                            "images_per_s": round(seen / seconds, 2)})
            if main:
                if saver.due(last_of_stage=e + 1 == n_epochs):
                    with saver.timed():
                        save_state(run.dir / STATE_FILE, model=model, optimizers=step.optimizers,
                                   extra_modules=step.extra_modules,
                                   position={"stage": s, "stage_epochs_done": e + 1}, history=history)
                        save_model(final, run.meta(final, epoch), run.dir / MODEL_FILE)
                _write_history(run.dir / "history.csv", history)
                if run.progress:
                    tqdm.write(f"{cfg.run_name} epoch {epoch}: {loss_name} train {train_loss:.4f} "
                               f"test {test_loss:.4f} ({seconds:.1f}s, {seen / seconds:.1f} img/s)")
            D.barrier(place.dist)
    if cfg.recalibrate_bn and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in final.modules()):
        if not run.trains_more and load_meta(run.dir / MODEL_FILE).get("bn_recalibrated"):
            # a finished run resumed: its weights file stays as it is (and so does its evaluation)
            load_weights(final, run.dir / MODEL_FILE)
        else:
            recalibrate_bn(final, train_ds, place.device, place.channels_last, batch)
            if main:
                save_model(final, run.meta(final, len(history), bn_recalibrated=True), run.dir / MODEL_FILE)
    return TrainResult(run.dir, final, history, run.notes)


def _fit_baseline(run: _Run, model: nn.Module, train_ds) -> TrainResult:
    """Baselines learn nothing; the mean baseline fits the mean training target."""
    model.fit(train_ds.sketches.float().div(255) if run.cfg.direction == "photo2sketch"
              else train_ds.photos.float().div(255))
    if run.main:
        # fitted on the CPU tensors above, whatever --device says
        save_model(model, run.meta(model, 0, torch.device("cpu")), run.dir / MODEL_FILE)
        _write_history(run.dir / "history.csv", [])
    return TrainResult(run.dir, model, [], run.notes)


def tuned_name(cfg: RunConfig) -> str:
    """What the autotune cache knows a run's timed work by: the model, and where they change what a
    step does, its step kind (pix2pix also trains a discriminator) and its model_kwargs. A plain
    supervised run is the model's name alone, as before."""
    kind = step_kind(cfg)
    return (cfg.model + ("" if kind == "supervised" else f" ({kind} step)")
            + (f" {dict(sorted(cfg.model_kwargs.items()))}" if cfg.model_kwargs else ""))


def _tune(run: _Run, spec, resume: bool, train_ds, model: nn.Module) -> tuple[str, str]:
    """(layout, precision): as asked, or for auto what this run chose before (a resume), else
    facesketch.autotune's choice for this machine. Printed, and saved in config.yaml."""
    from facesketch import autotune
    cfg, place = run.cfg, run.place
    convolutional = any(isinstance(m, nn.Conv2d) for m in model.modules())   # the run's model, not another
    saved = (cfg.layout_chosen, cfg.precision_chosen) if resume else (None, None)
    if resume and saved[0] in autotune.LAYOUTS and saved[1] in autotune.PRECISIONS:
        choice = (cfg.layout if cfg.layout != "auto" else saved[0], saved[1])
        how = "as this run chose before" if cfg.layout == "auto" else "layout as asked, precision as this run chose before"
    elif place.dist.enabled:   # one timing per rank could disagree: the spec's measured default, fp32
        choice = (cfg.layout if cfg.layout != "auto" else
                  "channels_last" if spec.channels_last and place.device.type == "cpu" else "nchw",
                  cfg.precision if cfg.precision != "auto" else "fp32")
        how = "the model's default under DDP"
    else:
        batch = max(1, math.ceil(cfg.batch_size / place.dist.world))
        size = model.image_size

        def make_step(layout: str, precision: str, compiled: bool = False):
            p = dataclasses.replace(place, channels_last=layout == "channels_last", compiled=compiled)
            m = p.module(create_model(cfg.model, **cfg.model_kwargs))
            step = STEP_KINDS[step_kind(cfg)](m, cfg=cfg, spec=spec, place=p, autocast=_autocast(precision, p, quiet=True))
            step.start_stage(step.stage_losses(cfg.stages())[0][0], total_steps=1000)
            return step, p

        def quality_pairs():   # the run's own first training pairs
            items = [train_ds[i] for i in range(min(len(train_ds), autotune.QUALITY_STEPS * autotune.QUALITY_BATCH))]
            return torch.stack([it[0] for it in items]).float(), torch.stack([it[1] for it in items]).float()
        choice, info = autotune.choose(tuned_name(cfg), batch, place.device, make_step, (batch, 3, size, size),
                                       layout=cfg.layout, precision=cfg.precision, convolutional=convolutional,
                                       quality_pairs=quality_pairs,
                                       run_steps=sum(e for _, e in cfg.stages()) * math.ceil(len(train_ds) / batch))
        how = autotune.reason(info)
        cfg.compile_chosen = info.get("compile")
        if not convolutional and cfg.layout == "auto":
            how += "; no convolutions: the layout does not matter"
    if run.main:
        print(f"layout: {choice[0]}, precision: {choice[1]} ({how})", flush=True)
        cfg.layout_chosen, cfg.precision_chosen = choice
        cfg.save(run.dir / "config.yaml")
    return choice


def _autocast(precision: str, place: Placement, quiet: bool = False):
    from facesketch.autotune import native_bf16
    if not quiet and precision == "bf16" and place.device.type == "cpu" and not native_bf16(place.device):
        print("warning: this CPU has no native bf16 (oneDNN reports no AVX-512-BF16/AMX); bf16 will run on a "
              "slow emulated path, see bench/README.md. Use --precision fp32 or auto here.", flush=True)
    return torch.autocast(place.device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def _epoch(step, ds, cfg: RunConfig, place: Placement, epoch: int, batch: int, desc: str,
           progress: bool) -> tuple[float, float, int]:
    """One pass over the training set; returns (mean loss over all ranks, seconds, images seen)."""
    dist = place.dist
    sampler = DistributedSampler(ds, dist.world, dist.rank, shuffle=True, seed=cfg.seed) if dist.enabled else None
    if sampler is not None:
        sampler.set_epoch(epoch)
    loader = batches(ds, place.device, batch_size=batch, shuffle=True, seed=cfg.seed, epoch=epoch,
                     num_workers=cfg.num_workers, sampler=sampler)
    step.train()
    # on a GPU, reading the loss waits for the step to finish: read it only every LOSS_READ_EVERY steps
    # (progress bar) and check the epoch's sum at its end, so the CPU queues the next step meanwhile
    on_gpu = _reads_loss_lazily(place.device)
    read_every = LOSS_READ_EVERY if on_gpu else 1
    t0, seen = time.perf_counter(), 0
    total = torch.zeros((), dtype=torch.float64, device=place.device) if on_gpu else 0.0
    bar = tqdm(loader, desc=desc, leave=False, disable=not (progress and dist.main), unit="batch",
               total=math.ceil((len(sampler) if sampler is not None else len(ds)) / batch))
    for i, (src, tgt) in enumerate(bar):
        loss = step(place.batch(src), place.batch(tgt))
        total += (loss.detach().double() if on_gpu else loss.item()) * src.shape[0]
        seen += src.shape[0]
        if i % read_every == 0:
            value = loss.item()
            if not math.isfinite(value):
                _diverged(cfg, f"loss became {value} at epoch {epoch} step {i}")
            bar.set_postfix(loss=f"{value:.4f}", img_s=f"{seen * dist.world / (time.perf_counter() - t0):.1f}",
                            refresh=False)
    total = float(total)
    if not math.isfinite(total):
        _diverged(cfg, f"loss became {total} during epoch {epoch}")
    seconds = time.perf_counter() - t0
    D.sync_buffers(step.model, dist)
    return D.mean_across(total / max(seen, 1), dist, place.device), seconds, seen * dist.world


def _reads_loss_lazily(device: torch.device) -> bool:
    return device.type == "cuda"


def _diverged(cfg: RunConfig, what: str):
    kept = (f"the last good checkpoint is in {cfg.run_dir}" if (cfg.run_dir / STATE_FILE).exists()
            else "no epoch had finished, so there is no checkpoint")
    hint = "a lower --lr" + (" or --precision fp32" if cfg.precision_chosen == "bf16" else "")
    raise TrainingDiverged(f"{cfg.run_name}: {what}; stopped; {kept} (try {hint})")


@torch.no_grad()
def recalibrate_bn(model: nn.Module, ds, device, channels_last: bool, batch_size: int) -> None:
    """Replace BatchNorm running statistics by their average over the training set's batches.

    Keras' momentum 0.99 makes running statistics move 1% per step: after a short run they are
    still near their initial mean 0 / variance 1 and eval-mode outputs are meaningless. Only for
    short schedules (--recalibrate-bn); the report's long schedules do not need it.
    """
    place = Placement(torch.device(device), D.DistInfo(), channels_last)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches
    model.eval()
    for m in bns:
        m.train()
    for src, _ in batches(ds, place.device, batch_size=batch_size, shuffle=False):
        model(place.batch(src))
    for m, momentum in zip(bns, saved):
        m.momentum = momentum
    model.eval()


@torch.no_grad()
def evaluate_loss(model, ds, loss_fn, place: Placement, batch_size: int) -> float:
    """The mean per-pixel test loss over ds (the test curve of history.csv)."""
    model.eval()
    total, n = 0.0, 0
    for src, tgt in batches(ds, place.device, batch_size=batch_size, shuffle=False):
        pred = model(place.batch(src)).float()
        # the batch's mean loss times its size: per-image sums for per-pixel and per-image losses alike
        total += loss_fn(pred, place.batch(tgt)).item() * src.shape[0]
        n += src.shape[0]
    return total / max(n, 1)
