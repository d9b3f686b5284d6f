"""The training loop: plain PyTorch, resumable, reproducible; DDP under torchrun.

A run goes config -> run setup (runsetup.py: the folder's rules, the data and its split) ->
model from its spec (registry.py) -> a step kind (steps.py: supervised or pix2pix), which owns
the optimisers and the update -> the schedule's stages, epoch by epoch, each epoch ending in
checkpoint.safetensors, model.safetensors and history.csv (checkpoint.py), written atomically.
Baselines are fitted (the mean image), not trained, and saved alike.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from facesketch import FacesketchError
from facesketch import distributed as D
from facesketch.checkpoint import MODEL_FILE, STATE_FILE, load_meta, load_state, load_weights, save_model, save_state
from facesketch.config import RunConfig
from facesketch.data.dataset import PairDataset, make_loader
from facesketch.data.protocols import Split, write_split_manifest
from facesketch.losses import LOSSES  # noqa: F401  (re-exported: the registry of losses by name)
from facesketch.registry import create_model, model_spec
from facesketch.runsetup import claim_run_dir, load_split, resume_plan, validate_run_dir
from facesketch.runtime import Placement
from facesketch.steps import STEP_KINDS, make_optimizer, step_kind  # noqa: F401  (make_optimizer re-exported)

HISTORY_FIELDS = ("stage", "loss", "epoch", "train_loss", "test_loss", "seconds", "images_per_s")


class TrainingDiverged(FacesketchError):
    pass


@dataclass
class TrainResult:
    run_dir: Path
    model: nn.Module
    history: list[dict]
    notes: list[str] = field(default_factory=list)  # what a resume changed (an extended schedule)


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


def _meta(cfg: RunConfig, model: nn.Module, epoch: int, split: Split, device: torch.device, world: int) -> dict:
    # "device": where the weights were computed ('cpu', 'cuda:0'; rank 0's under DDP), not the --device asked for
    return {"model": cfg.model, "model_kwargs": cfg.model_kwargs, "direction": cfg.direction,
            "protocol": cfg.protocol, "epoch": epoch, "image_size": model.image_size,
            "device": str(device), "world_size": world,
            "config": cfg.to_dict(), "train_pairs": len(split.train), "test_pairs": len(split.test)}


def train(cfg: RunConfig, *, resume: bool = False, overwrite: bool = False, progress: bool = True) -> TrainResult:
    """Train (or fit) cfg.model in cfg.direction; returns the run folder and the trained model."""
    if resume and overwrite:
        raise FacesketchError("--resume continues a run and --overwrite replaces it: give one of them")
    place = Placement.start(cfg.device)
    main = place.dist.main
    run = validate_run_dir(cfg, resume=resume, overwrite=overwrite) if main else cfg.run_dir
    # a resume trains the run it finds, so cfg must agree with it (a longer schedule extends it)
    notes, trains_more = resume_plan(cfg) if resume else ([], True)
    torch.manual_seed(cfg.seed)
    split = load_split(cfg)
    if main:
        for note in notes + (list(split.notes) if progress else []):  # schedule changes are always shown
            print(f"note: {note}", flush=True)
    spec = model_spec(cfg.model)
    model = create_model(cfg.model, **cfg.model_kwargs)
    train_ds = PairDataset(split.train, size=model.image_size, direction=cfg.direction,
                           views=split.train_views if cfg.views == "all" else (0,), progress=progress and main)
    test_ds = PairDataset(split.test, size=model.image_size, direction=cfg.direction, views=split.test_views) \
        if spec.learned else None
    if main:
        claim_run_dir(run, overwrite=overwrite, drop_eval=trains_more)
        cfg.save(run / "config.yaml")
        write_split_manifest(split, run / "split.csv")
    if not spec.learned:
        return _fit_baseline(cfg, model, train_ds, split, run, notes, main)

    # channels_last: measured per model on CPU (bench/README.md)
    place = dataclasses.replace(place, channels_last=spec.channels_last and place.device.type == "cpu")
    model = place.module(model)
    step = STEP_KINDS[step_kind(cfg)](model, cfg=cfg, spec=spec, place=place, autocast=_autocast(cfg, place))
    stages = step.stage_losses(cfg.stages())
    position, history = {"stage": 0, "stage_epochs_done": 0}, []
    if resume:
        position = load_meta(run / STATE_FILE)["position"]
        step.start_stage(stages[position["stage"]][0])
        position, history = load_state(run / STATE_FILE, model=model, optimizers=step.optimizers,
                                       extra_modules=step.extra_modules)
        if position["stage_epochs_done"] >= stages[position["stage"]][1] and position["stage"] + 1 < len(stages):
            position = {"stage": position["stage"] + 1, "stage_epochs_done": 0}
            step.start_stage(stages[position["stage"]][0])
    else:
        step.start_stage(stages[0][0])
    batch = max(1, math.ceil(cfg.batch_size / place.dist.world))

    for s in range(position["stage"], len(stages)):
        loss_name, n_epochs = stages[s]
        if s != position["stage"]:
            step.start_stage(loss_name)
        start = position["stage_epochs_done"] if s == position["stage"] else 0
        for e in range(start, n_epochs):
            epoch = len(history) + 1
            train_loss, seconds, seen = _epoch(step, train_ds, cfg, place, epoch, batch,
                                               f"{cfg.run_name} {loss_name} epoch {e + 1}/{n_epochs}", progress)
            test_loss = evaluate_loss(model, test_ds, step.test_loss, place, batch) if main else math.nan
            history.append({"stage": s + 1, "loss": loss_name, "epoch": epoch, "train_loss": round(train_loss, 6),
                            "test_loss": round(test_loss, 6), "seconds": round(seconds, 2),
                            "images_per_s": round(seen / seconds, 2)})
            if main:
                save_state(run / STATE_FILE, model=model, optimizers=step.optimizers, extra_modules=step.extra_modules,
                           position={"stage": s, "stage_epochs_done": e + 1}, history=history)
                save_model(model, _meta(cfg, model, epoch, split, place.device, place.dist.world), run / MODEL_FILE)
                _write_history(run / "history.csv", history)
                if progress:
                    tqdm.write(f"{cfg.run_name} epoch {epoch}: {loss_name} train {train_loss:.4f} "
                               f"test {test_loss:.4f} ({seconds:.1f}s, {seen / seconds:.1f} img/s)")
            D.barrier(place.dist)
    if cfg.recalibrate_bn and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        if not trains_more and load_meta(run / MODEL_FILE).get("bn_recalibrated"):
            # a finished run resumed: its weights file stays as it is (and so does its evaluation)
            load_weights(model, run / MODEL_FILE)
        else:
            recalibrate_bn(model, train_ds, place.device, place.channels_last, batch)
            if main:
                save_model(model, {**_meta(cfg, model, len(history), split, place.device, place.dist.world),
                                   "bn_recalibrated": True}, run / MODEL_FILE)
    return TrainResult(run, model, history, notes)


def _fit_baseline(cfg, model, train_ds, split, run, notes, main) -> TrainResult:
    """Baselines learn nothing; the mean baseline fits the mean training target."""
    model.fit(train_ds.sketches.float().div(255) if cfg.direction == "photo2sketch"
              else train_ds.photos.float().div(255))
    if main:
        # fitted on the CPU tensors above, whatever --device says
        save_model(model, _meta(cfg, model, 0, split, torch.device("cpu"), 1), run / MODEL_FILE)
        _write_history(run / "history.csv", [])
    return TrainResult(run, model, [], notes)


def _autocast(cfg: RunConfig, place: Placement):
    if cfg.precision == "bf16" and place.device.type == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        print("warning: this CPU has no native bf16 (oneDNN reports no AVX-512-BF16/AMX); bf16 will run on a "
              "slow emulated path, see bench/README.md. Use --precision fp32 here.", flush=True)
    return torch.autocast(place.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")


def _epoch(step, ds, cfg: RunConfig, place: Placement, epoch: int, batch: int, desc: str,
           progress: bool) -> tuple[float, float, int]:
    """One pass over the training set; returns (mean loss over all ranks, seconds, images seen)."""
    dist = place.dist
    sampler = DistributedSampler(ds, dist.world, dist.rank, shuffle=True, seed=cfg.seed) if dist.enabled else None
    if sampler is not None:
        sampler.set_epoch(epoch)
    loader = make_loader(ds, batch_size=batch, shuffle=True, seed=cfg.seed, epoch=epoch,
                         num_workers=cfg.num_workers, sampler=sampler)
    step.train()
    t0, seen, total = time.perf_counter(), 0, 0.0
    bar = tqdm(loader, desc=desc, leave=False, disable=not (progress and dist.main), unit="batch")
    for i, (src, tgt, *_) in enumerate(bar):
        loss = step(place.batch(src), place.batch(tgt))
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"{cfg.run_name}: loss became {loss.item()} at epoch {epoch} step {i}; stopped. "
                f"The last good checkpoint is in {cfg.run_dir} (try a lower --lr or --precision fp32)")
        seen += src.shape[0]
        total += loss.item() * src.shape[0]
        bar.set_postfix(loss=f"{loss.item():.4f}", img_s=f"{seen * dist.world / (time.perf_counter() - t0):.1f}")
    seconds = time.perf_counter() - t0
    D.sync_buffers(step.model, dist)
    return D.mean_across(total / max(seen, 1), dist, place.device), seconds, seen * dist.world


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
    for src, *_ in make_loader(ds, batch_size=batch_size, shuffle=False):
        model(place.batch(src))
    for m, momentum in zip(bns, saved):
        m.momentum = momentum
    model.eval()


@torch.no_grad()
def evaluate_loss(model, ds, loss_fn, place: Placement, batch_size: int) -> float:
    """The mean per-pixel test loss over ds (the test curve of history.csv)."""
    model.eval()
    total, n = 0.0, 0
    for src, tgt, *_ in make_loader(ds, batch_size=batch_size, shuffle=False):
        pred = model(place.batch(src)).float()
        total += loss_fn(pred, place.batch(tgt), reduction="sum").item() / pred[0].numel()
        n += src.shape[0]
    return total / max(n, 1)
