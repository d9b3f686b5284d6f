"""`fsnet`: facesketch's own model, built for quality per CPU-minute at the report's 256x256.

A U-Net that works at half resolution: the 256x256 input is folded into 128x128x12
(pixel unshuffle), four levels of two 3x3 conv + BatchNorm + ReLU blocks go down to 16x16 and
back with skip connections, and the output is unfolded to 256x256x3 (pixel shuffle). The fold
keeps every input pixel (it is a reshuffle, not a downscale) while the costliest convolutions
run on 4x fewer positions. The 1x1 head sees the last features and the folded input itself: in
flat regions (a sketch's paper) every ReLU feature can be zero, and a head that saw only them
would paint every background one learned constant (a first photo2sketch run did: 0.93 where
the paper is 0.97-1.0). A sigmoid gives the output image in (0, 1). In evaluation mode the
output is the mean of the prediction and the mirror of the mirrored input's prediction.

Trained with `l1_ssim`: 0.16 x L1 + 0.84 x (1 - SSIM), the mix of Zhao et al., "Loss Functions
for Image Restoration with Neural Networks" (2017), with SSIM on a Gaussian window (sigma 1.5).
photo2sketch adds 2 x MSE (`l1_ssim_mse`): a sketch's hatching cannot be predicted stroke by
stroke, SSIM rewards drawing confident strokes anyway, and the squared error pulls each unsure
stroke towards its expected tone. In one device run each (40 epochs, paper split) it took the
photo2sketch RMSE from 0.165 to 0.158 and kept SSIM (range 2) over 0.78.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from facesketch.losses import register_loss
from facesketch.registry import ModelSpec, register_model

WIDTHS = (32, 64, 128, 192)   # channels at 128, 64, 32, 16 px


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


# channels_last: 22 vs 13 img/s training on the AVX-512 development CPU. The demo's 320 steps on
# synthetic faces need lr 1e-2 to get past the mean image (2e-3 leaves photo2sketch grey).
@register_model("fsnet", spec=ModelSpec(
    image_size=256, schedule=(("l1_ssim", 40),), direction_schedules={"photo2sketch": (("l1_ssim_mse", 40),)},
    optimizer={"lr": 2e-3}, lr_schedule="cosine", ema=0.999,
    channels_last=True, demo_epochs=20, demo_lr=1e-2))
class FSNet(nn.Module):
    """(N, 3, 256, 256) in [0, 1] -> (N, 3, 256, 256) in (0, 1)."""

    image_size = 256

    def __init__(self, *, channels: int = 3, widths: tuple[int, ...] = WIDTHS):
        super().__init__()
        self.channels = channels
        widths = tuple(widths)
        self.down = nn.ModuleList()
        cin = channels * 4
        for w in widths:
            self.down.append(_block(cin, w))
            cin = w
        self.up = nn.ModuleList()
        for w_skip in reversed(widths[:-1]):
            self.up.append(nn.ModuleDict({"lift": nn.Conv2d(cin, w_skip, 1), "fuse": _block(2 * w_skip, w_skip)}))
            cin = w_skip
        self.head = nn.Conv2d(cin + channels * 4, channels * 4, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self._translate(x)
        # in evaluation: the mean of the prediction and the mirrored prediction of the mirrored
        # input (a mirror is one of the 8 training views); cuts photo2sketch RMSE 0.160 -> 0.157
        both = self._translate(torch.cat([x, x.flip(-1)]))
        return (both[: len(x)] + both[len(x):].flip(-1)) / 2

    def _translate(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pixel_unshuffle(x * 2 - 1, 2)
        h, skips = x, []
        for i, block in enumerate(self.down):
            h = block(h if i == 0 else F.max_pool2d(h, 2))
            skips.append(h)
        skips.pop()
        for up in self.up:
            h = up["lift"](F.interpolate(h, scale_factor=2, mode="nearest"))
            h = up["fuse"](torch.cat([h, skips.pop()], dim=1))
        return torch.sigmoid(F.pixel_shuffle(self.head(torch.cat([h, x], dim=1)), 2))


def _gaussian_window(sigma: float = 1.5, size: int = 11, *, device=None, dtype=None) -> torch.Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(pred: torch.Tensor, tgt: torch.Tensor, *, data_range: float = 1.0) -> torch.Tensor:
    """Per-image SSIM (N,), Gaussian window sigma 1.5 (11 taps), population statistics, valid
    region only, mean over channels: the settings of the project's standard `ssim` metric."""
    c = pred.shape[1]
    g = _gaussian_window(device=pred.device, dtype=pred.dtype)
    wx, wy = g.view(1, 1, 1, -1).expand(c, 1, 1, -1), g.view(1, 1, -1, 1).expand(c, 1, -1, 1)

    def blur(t):
        return F.conv2d(F.conv2d(t, wx, groups=c), wy, groups=c)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_p, mu_t = blur(pred), blur(tgt)
    var_p = blur(pred * pred) - mu_p**2
    var_t = blur(tgt * tgt) - mu_t**2
    cov = blur(pred * tgt) - mu_p * mu_t
    s = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    return s.mean((1, 2, 3))


@register_loss("l1_ssim")
def l1_ssim(pred: torch.Tensor, tgt: torch.Tensor, *, reduction: str = "mean", alpha: float = 0.84) -> torch.Tensor:
    """alpha x (1 - SSIM) + (1 - alpha) x L1 per image; mean (or sum) over the batch."""
    per_image = alpha * (1 - ssim(pred, tgt)) + (1 - alpha) * (pred - tgt).abs().mean((1, 2, 3))
    return per_image.sum() if reduction == "sum" else per_image.mean()


@register_loss("l1_ssim_mse")
def l1_ssim_mse(pred: torch.Tensor, tgt: torch.Tensor, *, reduction: str = "mean",
                mse_weight: float = 2.0) -> torch.Tensor:
    """l1_ssim + mse_weight x mean squared error, per image; mean (or sum) over the batch."""
    per_image = mse_weight * ((pred - tgt) ** 2).mean((1, 2, 3))
    return l1_ssim(pred, tgt, reduction=reduction) + (per_image.sum() if reduction == "sum" else per_image.mean())
