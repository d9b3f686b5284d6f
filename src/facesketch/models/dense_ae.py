"""`dense_ae`: the report's fully connected deep autoencoder (Fig. 5), 425,086,880 parameters."""

from __future__ import annotations

import torch
import torch.nn as nn

from facesketch.models.keras import glorot_uniform_
from facesketch.registry import ModelSpec, register_model

ENCODER = (4096, 2048, 1024, 512, 256, 128, 64, 32)
DECODER = (64, 128, 256, 512, 1024, 2048, 4096)


@register_model("dense_ae", spec=ModelSpec(
    image_size=128, schedule=(("mse", 100),), demo_epochs=1,
    published={"photo2sketch": {"mae_median": 0.162, "rmse": 0.266, "ssim_paper": 0.642},
               "sketch2photo": {"mae_median": 0.064, "rmse": 0.136, "ssim_paper": 0.735}}))
class DenseAE(nn.Module):
    """(N, 3, S, S) in [0, 1] -> (N, 3, S, S) in (0, 1); S = 128 in the report."""

    image_size = 128

    def __init__(self, *, image_size: int = 128, channels: int = 3):
        super().__init__()
        self.image_size, self.channels = image_size, channels
        flat = image_size * image_size * channels
        widths = (flat, *ENCODER, *DECODER)
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU(inplace=True)]
        layers += [nn.Linear(widths[-1], flat), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)
        for m in self.net:
            if isinstance(m, nn.Linear):
                glorot_uniform_(m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        # Keras flattens channels-last (NHWC); keep that order so weights match Keras'
        y = self.net(x.permute(0, 2, 3, 1).reshape(n, -1))
        return y.view(n, h, w, c).permute(0, 3, 1, 2)

