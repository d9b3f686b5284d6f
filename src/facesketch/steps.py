"""Training steps: what one optimisation step does, per kind of training.

The epoch loop in train.py is the same for every model; a step kind owns the rest: its
optimisers (a fresh set at each stage of the schedule), the modules checkpointed beside the
model (a discriminator), and one update on a batch.

  supervised  the stage's loss (facesketch.losses, by name) between output and target
  pix2pix     a 70x70 PatchGAN against the generator, plus 100 x L1 (Isola et al. 2017)

A model with a new loss registers the loss in facesketch.losses; a new kind of update adds a
class here and an entry in STEP_KINDS.
"""

from __future__ import annotations

import copy
import math
from contextlib import AbstractContextManager

import torch
import torch.nn as nn
import torch.nn.functional as F

from facesketch.config import RunConfig
from facesketch.losses import LOSSES
from facesketch.registry import ModelSpec
from facesketch.runtime import Placement


def make_optimizer(params, cfg: RunConfig, spec: ModelSpec, device: torch.device) -> torch.optim.Optimizer:
    """Adam with the spec's settings (the report's lr 1e-3, betas 0.9/0.999 unless the spec says
    otherwise), --lr on top. Keras Adam's epsilon 1e-7. Fused Adam is one kernel per step: it
    matters most for dense_ae, whose 425M parameters make the update memory-bound (bench/)."""
    opt = {"lr": 1e-3, "betas": (0.9, 0.999), **spec.optimizer}
    if cfg.lr is not None:
        opt["lr"] = cfg.lr
    return torch.optim.Adam(params, eps=1e-7, fused=device.type in ("cpu", "cuda"), **opt)


def lr_factor(schedule: str, step: int, total: int) -> float:
    """The learning rate's multiplier at `step` (0-based) of a stage of `total` steps."""
    if schedule == "constant":
        return 1.0
    if schedule != "cosine":
        raise ValueError(f"unknown lr_schedule {schedule!r}; expected constant or cosine")
    warm = max(1, round(0.03 * total))
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))


class SupervisedStep:
    """The model's output against the target with the stage's loss; one Adam. The spec may ask
    for a cosine learning-rate schedule and an EMA of the weights (then `exported` is the EMA)."""

    def __init__(self, model: nn.Module, *, cfg: RunConfig, spec: ModelSpec, place: Placement,
                 autocast: AbstractContextManager):
        self.model, self.net = model, place.wrap(model)
        self.cfg, self.spec, self.place, self.autocast = cfg, spec, place, autocast
        self.extra_modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.loss_name = "mae"
        self.stage_steps, self.steps_done = 1, 0
        self.ema = None
        if spec.ema is not None:
            self.ema = copy.deepcopy(model).eval().requires_grad_(False)
            self.extra_modules["ema"] = self.ema

    @property
    def exported(self) -> nn.Module:
        """The weights to evaluate and save: the EMA when the spec has one, else the model."""
        return self.ema if self.ema is not None else self.model

    def stage_losses(self, schedule: list[tuple[str, int]]) -> list[tuple[str, int]]:
        """The stages this kind trains, from the config's schedule."""
        return schedule

    def start_stage(self, loss_name: str, *, total_steps: int = 1, steps_done: int = 0) -> None:
        """A fresh optimiser for every stage (the report's hybrid_ae: MSE, then MAE anew).
        total_steps/steps_done place the learning-rate schedule (a resume starts mid-stage)."""
        self.loss_name = loss_name
        self.stage_steps, self.steps_done = total_steps, steps_done
        self.optimizers = {"g": make_optimizer(self.model.parameters(), self.cfg, self.spec, self.place.device)}

    def _update(self, opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        if self.spec.lr_schedule != "constant":
            factor = lr_factor(self.spec.lr_schedule, self.steps_done, self.stage_steps)
            for group in opt.param_groups:
                group.setdefault("base_lr", group["lr"])
                group["lr"] = group["base_lr"] * factor
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        self.steps_done += 1
        if self.ema is not None:
            self._update_ema()

    @torch.no_grad()
    def _update_ema(self) -> None:
        # the usual warm-up: early on the average follows the weights closely
        decay = min(self.spec.ema, (1 + self.steps_done) / (10 + self.steps_done))
        for e, p in zip(self.ema.parameters(), self.model.parameters()):
            e.lerp_(p, 1 - decay)
        for e, b in zip(self.ema.buffers(), self.model.buffers()):
            e.copy_(b)

    def train(self) -> None:
        self.net.train()

    @property
    def test_loss(self):
        """The loss the per-epoch test loss is measured with."""
        return LOSSES[self.loss_name]

    def __call__(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """One update on a batch; returns the (detached) loss to log."""
        with self.autocast:
            out = self.net(src)
        # the loss in fp32, outside autocast: under bf16 autocast the SSIM loss's window convolutions
        # would run in bf16, where E[x^2] - E[x]^2 cancels and fsnet learned at half the pace
        loss = LOSSES[self.loss_name](out.float(), tgt)
        self._update(self.optimizers["g"], loss)
        return loss.detach()


class Pix2PixStep(SupervisedStep):
    """pix2pix: D on real vs fake (src, image) pairs, then G on GAN + 100 x L1; logs G's L1."""

    l1_weight = 100.0

    def __init__(self, model: nn.Module, **kw):
        super().__init__(model, **kw)
        from facesketch.models.unet import PatchGAN
        self.disc = self.place.module(PatchGAN(channels=3))
        self.dnet = self.place.wrap(self.disc)
        self.extra_modules = {"disc": self.disc}

    def stage_losses(self, schedule):
        return [("gan", epochs) for _, epochs in schedule]

    def start_stage(self, loss_name: str, **kw) -> None:
        super().start_stage(loss_name, **kw)
        self.optimizers["d"] = make_optimizer(self.disc.parameters(), self.cfg, self.spec, self.place.device)

    def train(self) -> None:
        self.net.train()
        self.dnet.train()

    @property
    def test_loss(self):
        return LOSSES["mae"]

    def __call__(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        bce = F.binary_cross_entropy_with_logits
        with self.autocast:
            fake = self.net(src)
            d_fake, d_real = self.dnet(src, fake.detach()).float(), self.dnet(src, tgt).float()
            loss_d = 0.5 * (bce(d_fake, torch.zeros_like(d_fake)) + bce(d_real, torch.ones_like(d_real)))
            self.optimizers["d"].zero_grad(set_to_none=True)
            loss_d.backward()
            self.optimizers["d"].step()
            d_fake = self.dnet(src, fake).float()
            l1 = F.l1_loss(fake.float(), tgt)
            loss_g = bce(d_fake, torch.ones_like(d_fake)) + self.l1_weight * l1
            self.optimizers["g"].zero_grad(set_to_none=True)
            loss_g.backward()
            self.optimizers["g"].step()
        return l1.detach()


STEP_KINDS = {"supervised": SupervisedStep, "pix2pix": Pix2PixStep}


def step_kind(cfg: RunConfig) -> str:
    return "pix2pix" if cfg.gan else "supervised"
