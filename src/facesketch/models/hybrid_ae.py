"""`hybrid_ae`: the report's conv+dense "self-implemented" autoencoder (Fig. 7).

1,470,779 trainable parameters + 2,000 BatchNorm statistics. Encoder: Conv2D (same, bias) ->
MaxPool 2 -> LeakyReLU(0.3) -> BatchNorm, six times down to 4x4x8; Dense 512 and Dense 128
(linear) in the middle; decoder: Conv2DTranspose (same, bias) -> UpSampling 2x -> ReLU ->
BatchNorm five times, then UpSampling and a 3-channel Conv2DTranspose with ReLU. Exact
reorderings make it cheaper to compute (see `HybridAE.__init__` and `UpConvT`); parameters and
the function are unchanged.
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
    # in place: max-pool's backward reads its input and indices, never the pooled tensor
    return nn.Sequential(conv, nn.MaxPool2d(2), nn.LeakyReLU(LEAKY_SLOPE, inplace=True), batch_norm(f))


class UpConvT(nn.Module):
    """UpSampling2D(scale, nearest) then Conv2DTranspose(cout, k x k, stride 1, same, bias) in one step.

    Holds exactly the transposed conv's parameters (weight [cin, cout, k, k], bias [cout]), but
    never builds the upsampled input: each of the scale x scale output phases (pixel (i, j) mod
    scale) sees the low-resolution input through a 3x3 window, with the kernel taps that land on
    the same low-resolution pixel summed. So it runs one 3x3 conv with scale^2 x cout outputs on
    the low-resolution input, then interleaves the phases (pixel shuffle). Same function, and
    fewer multiply-adds: for 2x and a 5x5 kernel 4 x 9 per input pixel instead of 4 x 25.
    """

    def __init__(self, cin: int, cout: int, k: int, scale: int = 2, *, like: nn.ConvTranspose2d | None = None):
        super().__init__()
        if k % 2 == 0:
            raise ValueError(f"UpConvT: 'same' padding needs an odd kernel, got {k}")
        if like is not None:   # take over a built layer's parameters (and so its place in the random stream)
            self.weight, self.bias = like.weight, like.bias
        else:
            self.weight = nn.Parameter(torch.empty(cin, cout, k, k))
            self.bias = nn.Parameter(torch.zeros(cout))
            glorot_uniform_(self)
        self.scale = scale
        # taps[p, d, t] = 1 when tap t of the kernel, at output phase p, reads low-res offset d - 1
        offsets = [[(p + t - k // 2) // scale + 1 for t in range(k)] for p in range(scale)]
        if min(map(min, offsets)) < 0 or max(map(max, offsets)) > 2:
            raise ValueError(f"UpConvT: a {k}x{k} kernel at scale {scale} reaches past a 3x3 low-res window")
        taps = torch.zeros(scale, 3, k)
        for p, row in enumerate(offsets):
            for t, d in enumerate(row):
                taps[p, d, t] = 1
        self.register_buffer("taps", taps, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # a stride-1 transposed conv is a conv with the kernel flipped and in/out swapped
        w = self.weight.flip(-1, -2).transpose(0, 1)                    # [cout, cin, ky, kx]
        taps = self.taps.to(w.dtype)
        phases = torch.einsum("pdk,qel,oikl->opqide", taps, taps, w)    # per phase: [cout, cin, 3, 3]
        cout, s = w.shape[0], self.scale
        y = F.conv2d(x, phases.reshape(cout * s * s, *phases.shape[3:]), self.bias.repeat_interleave(s * s),
                     padding=1)
        return F.pixel_shuffle(y, s)


def dec(cin: int, f: int, k: int, *, upsampled_input: bool) -> nn.Sequential:
    """One decoder block, ConvT -> ReLU -> BatchNorm, with the upsampling that Keras puts after
    the block moved to the start of the next one (see HybridAE)."""
    conv = nn.ConvTranspose2d(cin, f, k, padding=k // 2)   # built, so a seed gives the weights it always gave
    glorot_uniform_(conv)
    if upsampled_input:
        conv = UpConvT(cin, f, k, like=conv)
    return nn.Sequential(conv, nn.ReLU(inplace=True), batch_norm(f))


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
        # Keras: (ConvT -> UpSampling -> ReLU -> BatchNorm) x 5, UpSampling, ConvT(3), ReLU. ReLU is
        # elementwise and a nearest copy leaves batch statistics unchanged, so each block runs ReLU
        # and BatchNorm before its upsampling, on 4x fewer pixels; every upsampling then sits right
        # before a transposed conv, and UpConvT computes the pair on the low-resolution input (the
        # last conv after both of the last two upsamplings, 4x). Same function, same parameters.
        # One number moves: BatchNorm's running variance is the unbiased n/(n-1) estimate over
        # the pixels it sees, here 4x fewer (at batch 16 at most 0.3% apart, in the 4x4 block).
        # Keras keeps the biased variance, so neither order matches it exactly there.
        blocks = []
        for i, (f, k) in enumerate(DEC):
            blocks.append(dec(cin, f, k, upsampled_input=i > 0))
            cin = f
        self.decoder = nn.Sequential(*blocks, UpConvT(cin, channels, 3, scale=4), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encoder(x)
        n = z.shape[0]
        # Keras Flatten/Reshape are channels-last: keep that order for the Dense layers
        z = self.fc2(self.fc1(z.permute(0, 2, 3, 1).reshape(n, -1)))
        z = z.view(n, 4, 4, 8).permute(0, 3, 1, 2)
        return self.decoder(z)

