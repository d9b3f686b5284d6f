"""The training loop: plain PyTorch, resumable, reproducible; DDP under torchrun.

train(cfg) resolves the data and split, builds the model, runs the schedule's stages (a fresh
Adam per stage), and after every epoch writes checkpoint.safetensors, model.safetensors and
history.csv atomically. Baselines are "trained" by fitting (the mean image) and saved alike.
The run folder itself (may it be started, resumed, extended?) is checkpoint.py's business.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from facesketch import FacesketchError
from facesketch import distributed as D
from facesketch.checkpoint import (MODEL_FILE, STATE_FILE, claim_run_dir, load_meta, load_state, load_weights,
                                   resume_plan, save_model, save_state, validate_run_dir)
from facesketch.config import RunConfig
from facesketch.data.dataset import PairDataset, make_loader
from facesketch.data.pairs import find_pairs
from facesketch.data.protocols import Split, make_split, write_split_manifest
from facesketch.registry import create_model, model_class

LOSSES = {"mse": F.mse_loss, "mae": F.l1_loss}
HISTORY_FIELDS = ("stage", "loss", "epoch", "train_loss", "test_loss", "seconds", "images_per_s")


class TrainingDiverged(FacesketchError):
    pass


@dataclass
class TrainResult:
    run_dir: Path
    model: nn.Module
    history: list[dict]
    notes: list[str] = field(default_factory=list)  # what a resume changed (an extended schedule)


def resolve_device(name: str) -> torch.device:
    """'auto'/'cpu'/'cuda'/'cuda:N'/'mps' -> the device to use, CUDA with its index ('cuda:0'),
    as recorded in the weights' metadata."""
    if name in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    if name == "auto":
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise FacesketchError(f"--device {name}: CUDA is not available on this machine (use auto or cpu)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise FacesketchError("--device mps: MPS is not available on this machine (use auto or cpu)")
    return torch.device(name)


def synthetic_data_dir(cfg: RunConfig) -> Path:
    """The built-in synthetic set for cfg, generated on first use under the runs folder."""
    from facesketch.data.synthetic import write_synthetic
    root = Path(cfg.runs_dir) / f"data-synthetic-n{cfg.synthetic_n}-s{cfg.seed}"
    done = root / ".complete"
    if not done.exists():
        write_synthetic(root, n=cfg.synthetic_n, seed=cfg.seed)
        done.touch()
    return root


def load_split(cfg: RunConfig) -> Split:
    data = Path(cfg.data) if cfg.data else synthetic_data_dir(cfg)
    found = find_pairs(data)
    if found.problems:
        shown = "; ".join(found.problems[:3]) + (f"; ... {len(found.problems) - 3} more" if len(found.problems) > 3 else "")
        raise FacesketchError(f"dataset {data} is not usable ({shown}); see `facesketch data check {data}`")
    split = make_split(found.pairs, cfg.protocol, seed=cfg.seed, test_fraction=cfg.test_fraction)
    if not split.train or not split.test:
        raise FacesketchError(f"protocol {cfg.protocol!r} leaves an empty split on {data}")
    return split


def make_optimizer(params, cfg: RunConfig, model_cls, device: torch.device) -> torch.optim.Optimizer:
    # Keras Adam: epsilon 1e-7. Fused Adam is one kernel per step: it matters most for dense_ae,
    # whose 425M parameters make the update memory-bound (bench/README.md).
    opt = dict(lr=1e-3, betas=(0.9, 0.999))
    opt.update(getattr(model_cls, "default_optim", {}))
    if cfg.lr is not None:
        opt["lr"] = cfg.lr
    fused = device.type in ("cpu", "cuda")
    return torch.optim.Adam(params, eps=1e-7, fused=fused, **opt)


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
    device = resolve_device(cfg.device)
    info = D.init(device.type)
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    cls = model_class(cfg.model)
    if resume and overwrite:
        raise FacesketchError("--resume continues a run and --overwrite replaces it: give one of them")
    run = validate_run_dir(cfg, resume=resume, overwrite=overwrite) if info.main else cfg.run_dir
    # a resume trains the run it finds, so cfg must agree with it (a longer schedule extends it)
    notes, trains_more = resume_plan(cfg) if resume else ([], True)
    if info.main:
        for note in notes:  # always shown: the run's schedule changes
            print(f"note: {note}", flush=True)
    torch.manual_seed(cfg.seed)
    split = load_split(cfg)
    if progress and info.main:
        for note in split.notes:
            print(f"note: {note}", flush=True)
    model = create_model(cfg.model, **cfg.model_kwargs)
    size = model.image_size
    train_views = split.train_views if cfg.views == "all" else (0,)
    train_ds = PairDataset(split.train, size=size, direction=cfg.direction, views=train_views,
                           progress=progress and info.main)
    test_ds = PairDataset(split.test, size=size, direction=cfg.direction, views=split.test_views) \
        if cls.learned else None
    if info.main:
        claim_run_dir(run, overwrite=overwrite, drop_eval=trains_more)
        cfg.save(run / "config.yaml")
        write_split_manifest(split, run / "split.csv")

    if not cls.learned:
        model.fit(train_ds.sketches.float().div(255) if cfg.direction == "photo2sketch"
                  else train_ds.photos.float().div(255))
        if info.main:
            # fitted on the CPU tensors above, whatever --device says
            save_model(model, _meta(cfg, model, 0, split, torch.device("cpu"), 1), run / MODEL_FILE)
            _write_history(run / "history.csv", [])
        return TrainResult(run, model, [], notes)

    model.to(device)
    # measured per model (bench/): channels_last speeds conv_ae up ~1.5x on CPU, slows the others
    channels_last = getattr(cls, "channels_last", False) and device.type == "cpu"
    if channels_last:
        model.to(memory_format=torch.channels_last)
    disc = None
    if cfg.gan:
        from facesketch.models.unet import PatchGAN
        disc = PatchGAN(channels=3).to(device)
    if info.enabled and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        disc = nn.SyncBatchNorm.convert_sync_batchnorm(disc) if disc is not None else None
    net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if info.enabled else model
    dnet = nn.parallel.DistributedDataParallel(disc, device_ids=[device.index] if device.type == "cuda" else None) \
        if info.enabled and disc is not None else disc

    stages = cfg.stages(cls.default_schedule)
    if cfg.gan:
        stages = [("gan", e) for _, e in stages]
    position, history = {"stage": 0, "stage_epochs_done": 0}, []
    optimizers = _stage_optimizers(model, disc, cfg, cls, device)
    if resume:
        position, history = load_state(run / STATE_FILE, model=model, optimizers=optimizers,
                                       extra_modules={"disc": disc} if disc is not None else {})
        if position["stage_epochs_done"] >= stages[position["stage"]][1] and position["stage"] + 1 < len(stages):
            position = {"stage": position["stage"] + 1, "stage_epochs_done": 0}
            optimizers = _stage_optimizers(model, disc, cfg, cls, device)
    per_rank_batch = max(1, math.ceil(cfg.batch_size / info.world))
    if cfg.precision == "bf16" and device.type == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        print("warning: this CPU has no native bf16 (oneDNN reports no AVX-512-BF16/AMX); bf16 will run on a "
              "slow emulated path, see bench/README.md. Use --precision fp32 here.", flush=True)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")

    for s in range(position["stage"], len(stages)):
        loss_name, n_epochs = stages[s]
        if s != position["stage"]:
            position = {"stage": s, "stage_epochs_done": 0}
            optimizers = _stage_optimizers(model, disc, cfg, cls, device)
        loss_fn = LOSSES["mae" if loss_name == "gan" else loss_name]
        for e in range(position["stage_epochs_done"], n_epochs):
            epoch = len(history) + 1
            sampler = DistributedSampler(train_ds, info.world, info.rank, shuffle=True, seed=cfg.seed) \
                if info.enabled else None
            if sampler is not None:
                sampler.set_epoch(epoch)
            loader = make_loader(train_ds, batch_size=per_rank_batch, shuffle=True, seed=cfg.seed, epoch=epoch,
                                 num_workers=cfg.num_workers, sampler=sampler)
            net.train()
            if dnet is not None:
                dnet.train()
            t0, seen, total = time.perf_counter(), 0, 0.0
            bar = tqdm(loader, desc=f"{cfg.run_name} {loss_name} epoch {e + 1}/{n_epochs}", leave=False,
                       disable=not (progress and info.main), unit="batch")
            for step, (src, tgt, _) in enumerate(bar):
                src, tgt = _to(src, device, channels_last), _to(tgt, device, channels_last)
                with autocast:
                    if loss_name == "gan":
                        loss = _gan_step(net, dnet, optimizers, src, tgt)
                    else:
                        pred = net(src)
                        loss = loss_fn(pred.float(), tgt)
                if not torch.isfinite(loss):
                    raise TrainingDiverged(
                        f"{cfg.run_name}: loss became {loss.item()} at epoch {epoch} step {step}; stopped. "
                        f"The last good checkpoint is in {run} (try a lower --lr or --precision fp32)")
                if loss_name != "gan":
                    optimizers["g"].zero_grad(set_to_none=True)
                    loss.backward()
                    optimizers["g"].step()
                seen += src.shape[0]
                total += loss.item() * src.shape[0]
                bar.set_postfix(loss=f"{loss.item():.4f}", img_s=f"{seen * info.world / (time.perf_counter() - t0):.1f}")
            seconds = time.perf_counter() - t0
            D.sync_buffers(model, info)
            train_loss = D.mean_across(total / max(seen, 1), info, device)
            test_loss = evaluate_loss(model, test_ds, loss_fn, device, channels_last, per_rank_batch) if info.main else math.nan
            history.append({"stage": s + 1, "loss": loss_name, "epoch": epoch, "train_loss": round(train_loss, 6),
                            "test_loss": round(test_loss, 6), "seconds": round(seconds, 2),
                            "images_per_s": round(seen * info.world / seconds, 2)})
            position = {"stage": s, "stage_epochs_done": e + 1}
            if info.main:
                save_state(run / STATE_FILE, model=model, optimizers=optimizers,
                           extra_modules={"disc": disc} if disc is not None else {}, position=position, history=history)
                save_model(model, _meta(cfg, model, epoch, split, device, info.world), run / MODEL_FILE)
                _write_history(run / "history.csv", history)
                if progress:
                    tqdm.write(f"{cfg.run_name} epoch {epoch}: {loss_name} train {train_loss:.4f} "
                               f"test {test_loss:.4f} ({seconds:.1f}s, {seen * info.world / seconds:.1f} img/s)")
            D.barrier(info)
    if cfg.recalibrate_bn and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        if not trains_more and load_meta(run / MODEL_FILE).get("bn_recalibrated"):
            # a finished run resumed: its weights file stays as it is (and so does its evaluation)
            load_weights(model, run / MODEL_FILE)
        else:
            recalibrate_bn(model, train_ds, device, channels_last, per_rank_batch)
            if info.main:
                save_model(model, {**_meta(cfg, model, len(history), split, device, info.world),
                                   "bn_recalibrated": True}, run / MODEL_FILE)
    return TrainResult(run, model, history, notes)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, ds, device, channels_last: bool, batch_size: int) -> None:
    """Replace BatchNorm running statistics by their average over the training set's batches.

    Keras' momentum 0.99 makes running statistics move 1% per step: after a short run they are
    still near their initial mean 0 / variance 1 and eval-mode outputs are meaningless. Only for
    short schedules (--recalibrate-bn); the report's long schedules do not need it.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches
    model.eval()
    for m in bns:
        m.train()
    for src, _, _ in make_loader(ds, batch_size=batch_size, shuffle=False):
        model(_to(src, device, channels_last))
    for m, momentum in zip(bns, saved):
        m.momentum = momentum
    model.eval()


def _to(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _stage_optimizers(model, disc, cfg, cls, device) -> dict:
    opts = {"g": make_optimizer(model.parameters(), cfg, cls, device)}
    if disc is not None:
        opts["d"] = make_optimizer(disc.parameters(), cfg, cls, device)
    return opts


def _gan_step(net, dnet, optimizers, src, tgt, l1_weight: float = 100.0) -> torch.Tensor:
    """One pix2pix update: D on real vs fake pairs, then G on GAN + 100 x L1. Returns G's L1 loss."""
    fake = net(src)
    d_fake, d_real = dnet(src, fake.detach()).float(), dnet(src, tgt).float()
    loss_d = 0.5 * (F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
                    + F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)))
    optimizers["d"].zero_grad(set_to_none=True)
    loss_d.backward()
    optimizers["d"].step()
    d_fake = dnet(src, fake).float()
    l1 = F.l1_loss(fake.float(), tgt)
    loss_g = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake)) + l1_weight * l1
    optimizers["g"].zero_grad(set_to_none=True)
    loss_g.backward()
    optimizers["g"].step()
    return l1.detach()


@torch.no_grad()
def evaluate_loss(model, ds, loss_fn, device, channels_last: bool, batch_size: int) -> float:
    model.eval()
    total, n = 0.0, 0
    for src, tgt, _ in make_loader(ds, batch_size=batch_size, shuffle=False):
        pred = model(_to(src, device, channels_last)).float()
        total += loss_fn(pred, _to(tgt, device, channels_last), reduction="sum").item() / pred[0].numel()
        n += src.shape[0]
    return total / max(n, 1)
