"""Training losses by name: each stage of a model's schedule (`ModelSpec.schedule`) names one.

A loss takes (pred, tgt), both (N, C, H, W) float, and `reduction` ("mean" for training, "sum"
for the per-epoch test loss). A model with a new loss registers it here by name.
"""

from __future__ import annotations

from typing import Callable

import torch.nn.functional as F

LOSSES: dict[str, Callable] = {"mse": F.mse_loss, "mae": F.l1_loss}


def register_loss(name: str):
    def add(fn: Callable) -> Callable:
        if name in LOSSES:
            raise ValueError(f"loss {name!r} is already registered")
        LOSSES[name] = fn
        return fn
    return add
