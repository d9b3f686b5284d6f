"""`conv_ae`: the report's convolutional autoencoder (Fig. 6), 9,784,491 trainable parameters.

Encoder blocks: Conv2D 4x4 stride 2 valid, no bias, he_normal; BatchNorm on some; LeakyReLU(0.3).
Decoder blocks: Conv2DTranspose 4x4 stride 2 valid, no bias, he_normal; Dropout(0.1) on some;
LeakyReLU(0.3). Two 2x2 stride-1 transposed convs bring 254 -> 255 -> 256. Linear output.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from facesketch.models.keras import LEAKY_SLOPE, batch_norm, glorot_uniform_, he_normal_
from facesketch.registry import ModelSpec, register_model

DOWN = ((16, False), (32, True), (64, False), (128, True), (256, True), (512, True))  # (filters, batchnorm)
UP = ((512, True), (256, False), (128, True), (64, False), (32, False), (16, False))  # (filters, dropout)


def down(cin: int, f: int, bn: bool) -> nn.Sequential:
    conv = nn.Conv2d(cin, f, 4, stride=2, padding=0, bias=False)
    he_normal_(conv)
    return nn.Sequential(conv, *([batch_norm(f)] if bn else []), nn.LeakyReLU(LEAKY_SLOPE))


def up(cin: int, f: int, dropout: bool) -> nn.Sequential:
    conv = nn.ConvTranspose2d(cin, f, 4, stride=2, padding=0, bias=False)
    he_normal_(conv)
    return nn.Sequential(conv, *([nn.Dropout(0.1)] if dropout else []), nn.LeakyReLU(LEAKY_SLOPE))


@register_model("conv_ae", spec=ModelSpec(
    image_size=256, schedule=(("mae", 100),), channels_last=True, demo_epochs=2,  # channels_last: ~1.5x on CPU
    published={"photo2sketch": {"mae_median": 0.171, "rmse": 0.274, "ssim_paper": 0.739},
               "sketch2photo": {"mae_median": 0.051, "rmse": 0.121, "ssim_paper": 0.824}}))
class ConvAE(nn.Module):
    """(N, 3, 256, 256) in [0, 1] -> (N, 3, 256, 256), linear (clip to [0, 1] for images)."""

    image_size = 256

    def __init__(self, *, channels: int = 3):
        super().__init__()
        blocks, cin = [], channels
        for f, bn in DOWN:
            blocks.append(down(cin, f, bn))
            cin = f
        for f, dropout in UP:
            blocks.append(up(cin, f, dropout))
            cin = f
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.ConvTranspose2d(16, 8, 2, stride=1), nn.ConvTranspose2d(8, channels, 2, stride=1))
        for m in self.head:
            glorot_uniform_(m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head_as_one(self.blocks(x))

    def head_as_one(self, x: torch.Tensor) -> torch.Tensor:
        """`self.head(x)`, the two linear 2x2 transposed convs, as one 3x3 transposed conv.

        Two stride-1 transposed convs in a row are one, whose kernel is the first kernel
        transposed-convolved with the second (16 -> 3 channels, 3x3). The first conv's bias is a
        constant map that the second conv spreads; at the border fewer taps reach it, so it is
        added as that map (the second conv applied to it, batch 1). Same function and the same
        parameters; it skips the 8-channel 255x255 activation and two thin convs, the slowest
        layers per multiply-add in the model (bench/README.md)."""
        first, second = self.head
        kernel = F.conv_transpose2d(first.weight, second.weight)               # [16, 3, 3, 3]
        h, w = x.shape[-2:]
        bias = first.bias.view(1, -1, 1, 1).expand(1, -1, h + 1, w + 1)
        return F.conv_transpose2d(x, kernel) + F.conv_transpose2d(bias, second.weight, second.bias)

