"""`hybrid_ae`: the report's conv+dense "self-implemented" autoencoder (Fig. 7).

1,470,779 trainable parameters + 2,000 BatchNorm statistics. Encoder: Conv2D (same, bias) ->
MaxPool 2 -> LeakyReLU(0.3) -> BatchNorm, six times down to 4x4x8; Dense 512 and Dense 128
(linear) in the middle; decoder: Conv2DTranspose (same, bias) -> UpSampling 2x -> ReLU ->
BatchNorm five times, then UpSampling and a 3-channel Conv2DTranspose with ReLU. Two exact
reorderings make it cheaper to compute (see `dec` and `UpConvT3`); parameters are unchanged.
Trained in two stages per direction: MSE, then MAE with a fresh optimiser.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from facesketch.models.keras import LEAKY_SLOPE, batch_norm, glorot_uniform_
from facesketch.registry import ModelSpec, register_model

ENC = ((256, 5), (128, 3), (64, 3), (32, 3), (16, 3), (8, 3))
DEC = ((16, 3), (32, 3), (64, 3), (128, 3), (256, 5))


def enc(cin: int, f: int, k: int) -> nn.Sequential:
    conv = nn.Conv2d(cin, f, k, padding=k // 2)
    glorot_uniform_(conv)
    return nn.Sequential(conv, nn.MaxPool2d(2), nn.LeakyReLU(LEAKY_SLOPE), batch_norm(f))


def dec(cin: int, f: int, k: int) -> nn.Sequential:
    conv = nn.ConvTranspose2d(cin, f, k, padding=k // 2)
    glorot_uniform_(conv)
    # Keras order is ConvT -> UpSampling -> ReLU -> BatchNorm. ReLU is elementwise and a 2x
    # nearest copy leaves batch statistics unchanged, so ReLU and BatchNorm run first, on 4x
    # fewer pixels, with the same result (bench/README.md).
    return nn.Sequential(conv, nn.ReLU(inplace=True), batch_norm(f), nn.Upsample(scale_factor=2, mode="nearest"))


# For output phase p (row parity), which taps k of a 3-tap kernel land on low-res offset d-1.
_PHASE_TAPS = torch.tensor([[[1, 0, 0], [0, 1, 1], [0, 0, 0]],
                            [[0, 0, 0], [1, 1, 0], [0, 0, 1]]], dtype=torch.float32)


class UpConvT3(nn.Module):
    """UpSampling2D(2, nearest) then Conv2DTranspose(cout, 3x3, stride 1, same, bias) in one step.

    Holds exactly the transposed conv's parameters (weight [cin, cout, 3, 3], bias [cout]), but
    computes the four output phases as 3x3 convs on the LOW-resolution input and interleaves
    them (pixel shuffle). Same function; no 4x upsampled activation, and a 4x wider GEMM.
    """

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cin, cout, 3, 3))
        self.bias = nn.Parameter(torch.zeros(cout))
        glorot_uniform_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # a stride-1 transposed conv is a conv with the kernel flipped and in/out swapped
        w = self.weight.flip(-1, -2).transpose(0, 1)                    # [cout, cin, ky, kx]
        taps = _PHASE_TAPS.to(w)
        phases = torch.einsum("pdk,qel,oikl->opqide", taps, taps, w)    # per phase: [cout, cin, 3, 3]
        cout = w.shape[0]
        y = F.conv2d(x, phases.reshape(cout * 4, *phases.shape[3:]), self.bias.repeat_interleave(4), padding=1)
        return F.pixel_shuffle(y, 2)


@register_model("hybrid_ae", spec=ModelSpec(
    image_size=256, schedule=(("mse", 100), ("mae", 50)), demo_epochs=None,
    published={"photo2sketch": {"mae_median": 0.150, "rmse": 0.269, "ssim_paper": 0.727},
               "sketch2photo": {"mae_median": 0.055, "rmse": 0.130, "ssim_paper": 0.801}}))
class HybridAE(nn.Module):
    """(N, 3, 256, 256) in [0, 1] -> (N, 3, 256, 256) >= 0 (ReLU output)."""

    image_size = 256

    def __init__(self, *, channels: int = 3):
        super().__init__()
        blocks, cin = [], channels
        for f, k in ENC:
            blocks.append(enc(cin, f, k))
            cin = f
        self.encoder = nn.Sequential(*blocks)
        self.fc1, self.fc2 = nn.Linear(4 * 4 * 8, 512), nn.Linear(512, 4 * 4 * 8)
        glorot_uniform_(self.fc1), glorot_uniform_(self.fc2)
        blocks = []
        for f, k in DEC:
            blocks.append(dec(cin, f, k))
            cin = f
        self.decoder = nn.Sequential(*blocks, UpConvT3(cin, channels), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encoder(x)
        n = z.shape[0]
        # Keras Flatten/Reshape are channels-last: keep that order for the Dense layers
        z = self.fc2(self.fc1(z.permute(0, 2, 3, 1).reshape(n, -1)))
        z = z.view(n, 4, 4, 8).permute(0, 3, 1, 2)
        return self.decoder(z)

