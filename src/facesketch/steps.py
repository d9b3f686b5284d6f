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


class SupervisedStep:
    """The model's output against the target with the stage's loss; one Adam."""

    def __init__(self, model: nn.Module, *, cfg: RunConfig, spec: ModelSpec, place: Placement,
                 autocast: AbstractContextManager):
        self.model, self.net = model, place.wrap(model)
        self.cfg, self.spec, self.place, self.autocast = cfg, spec, place, autocast
        self.extra_modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.loss_name = "mae"

    def stage_losses(self, schedule: list[tuple[str, int]]) -> list[tuple[str, int]]:
        """The stages this kind trains, from the config's schedule."""
        return schedule

    def start_stage(self, loss_name: str) -> None:
        """A fresh optimiser for every stage (the report's hybrid_ae: MSE, then MAE anew)."""
        self.loss_name = loss_name
        self.optimizers = {"g": make_optimizer(self.model.parameters(), self.cfg, self.spec, self.place.device)}

    def train(self) -> None:
        self.net.train()

    @property
    def test_loss(self):
        """The loss the per-epoch test loss is measured with."""
        return LOSSES[self.loss_name]

    def __call__(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """One update on a batch; returns the (detached) loss to log."""
        with self.autocast:
            loss = LOSSES[self.loss_name](self.net(src).float(), tgt)
        opt = self.optimizers["g"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
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

    def start_stage(self, loss_name: str) -> None:
        super().start_stage(loss_name)
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
