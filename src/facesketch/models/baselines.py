"""Baselines that learn nothing, with the same predict interface as the learned models.

pencil  photo -> sketch: greyscale, inverted, Gaussian-blurred (sigma 21 px at 256x256), colour
        dodge (the classical pencil sketch of the report's reference [6]); sketch -> photo: the
        same operation, as a "what does a filter give" reference.
grey    the greyscale input, replicated to 3 channels (for sketch -> photo: the sketch itself).
mean    the mean training target in the same view: a constant image per view.
Each also lives in a run folder (`facesketch train --model mean ...` fits it instantly).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
from scipy.ndimage import gaussian_filter

from facesketch.data.augment import apply_view
from facesketch.registry import ModelSpec, register_model

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL's convert("L")


def to_grey(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 1, H, W) luma; 1-channel input is returned as is."""
    if x.shape[1] == 1:
        return x
    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


class _Baseline(nn.Module):
    image_size = 256

    def __init__(self, *, channels: int = 3):
        super().__init__()
        self.channels = channels

    def fit(self, targets: torch.Tensor) -> None:
        """targets: (N, C, S, S) training targets in view 0. Most baselines ignore them."""


@register_model("pencil", spec=ModelSpec(image_size=256, learned=False))
class PencilBaseline(_Baseline):
    def __init__(self, *, channels: int = 3, sigma: float = 21.0):
        super().__init__(channels=channels)
        self.sigma = sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grey = to_grey(x.float()).cpu().numpy()[:, 0]
        blur = np.stack([gaussian_filter(1.0 - g, self.sigma, mode="reflect") for g in grey])
        dodge = np.clip(grey / np.maximum(1.0 - blur, 1e-6), 0.0, 1.0)
        out = torch.from_numpy(dodge.astype(np.float32)).to(x.device)[:, None]
        return out.expand(-1, self.channels, -1, -1).clone()


@register_model("grey", spec=ModelSpec(image_size=256, learned=False))
class GreyBaseline(_Baseline):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return to_grey(x).expand(-1, self.channels, -1, -1).clone()


@register_model("mean", spec=ModelSpec(image_size=256, learned=False, uses_view=True))
class MeanBaseline(_Baseline):

    def __init__(self, *, channels: int = 3, image_size: int = 256):
        super().__init__(channels=channels)
        self.image_size = image_size
        self.register_buffer("mean_target", torch.full((channels, image_size, image_size), 0.5))

    def fit(self, targets: torch.Tensor) -> None:
        # the views are pixel permutations, so the mean of view v is view v of the view-0 mean
        self.mean_target.copy_(targets.float().mean(0))

    def forward(self, x: torch.Tensor, view: torch.Tensor | None = None) -> torch.Tensor:
        views = view.tolist() if view is not None else [0] * x.shape[0]
        return torch.stack([apply_view(self.mean_target, int(v)) for v in views]).to(x.device)
