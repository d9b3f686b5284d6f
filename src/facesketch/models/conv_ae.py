"""`conv_ae`: the report's convolutional autoencoder (Fig. 6), 9,784,491 trainable parameters.

Encoder blocks: Conv2D 4x4 stride 2 valid, no bias, he_normal; BatchNorm on some; LeakyReLU(0.3).
Decoder blocks: Conv2DTranspose 4x4 stride 2 valid, no bias, he_normal; Dropout(0.1) on some;
LeakyReLU(0.3). Two 2x2 stride-1 transposed convs bring 254 -> 255 -> 256. Linear output.
Exact reformulations make it cheaper to compute (`MatmulConv2d`, `MatmulConvTranspose2d`,
`ConvAE.head_as_one`); parameters, state-dict keys, seeded weights and the function are unchanged.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from facesketch.models.keras import LEAKY_SLOPE, batch_norm, glorot_uniform_, he_normal_
from facesketch.registry import ModelSpec, register_model

DOWN = ((16, False), (32, True), (64, False), (128, True), (256, True), (512, True))  # (filters, batchnorm)
UP = ((512, True), (256, False), (128, True), (64, False), (32, False), (16, False))  # (filters, dropout)



def _layout(x: torch.Tensor) -> torch.memory_format:
    cl = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return torch.channels_last if cl else torch.contiguous_format


class MatmulConv2d(nn.Conv2d):
    """nn.Conv2d (no padding, no dilation, no groups) computed on the CPU as im2col and one matmul.

    For the encoder's last block (256 -> 512 channels, 6x6 -> 2x2): oneDNN ran that shape at
    31-39% of the fp32 matmul ceiling, and the same multiply-adds as one matmul are 1.25x (AVX2)
    to 1.7x (AVX-512) faster forward + backward (bench/layer_bench.py). Elsewhere (CUDA) it is
    the plain convolution."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            return super().forward(x)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        n, cin, h, w = x.shape
        cols = F.unfold(x, (kh, kw), stride=(sh, sw))                          # [n, cin*kh*kw, L]
        weight = self.weight
        if not weight.is_contiguous():  # channels_last: (cout, kh, kw, cin) in memory; reorder the
            # small columns to match instead of copying the weight (and its gradient back)
            cols = cols.view(n, cin, kh * kw, -1).transpose(1, 2).reshape(n, kh * kw * cin, -1)
            weight = weight.permute(0, 2, 3, 1)
        out = weight.reshape(self.out_channels, -1) @ cols                     # [n, cout, L]
        out = out.view(n, self.out_channels, (h - kh) // sh + 1, (w - kw) // sw + 1)
        return out.contiguous(memory_format=_layout(x))


class MatmulConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d (no padding) computed on the CPU as one matmul and col2im (F.fold).

    For the decoder's first block (512 -> 512 channels, 2x2 -> 6x6): oneDNN's deconvolution ran
    that shape at 17-18% of the fp32 matmul ceiling, and the same multiply-adds as one matmul are
    2.5x (AVX2) to 2.9x (AVX-512) faster forward + backward (bench/layer_bench.py). The fold sums
    up to four overlapping taps per pixel; under bf16 autocast it sums them in fp32 and rounds
    once, as oneDNN does. Elsewhere (CUDA) it is the plain transposed convolution."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            return super().forward(x)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        n, cin, h, w = x.shape
        pixels = x.permute(0, 2, 3, 1).reshape(n, h * w, cin)
        if self.weight.is_contiguous():                                        # [cin, cout, kh, kw]
            cols = (pixels @ self.weight.reshape(cin, -1)).transpose(1, 2)      # [n, cout*kh*kw, L]
        else:  # channels_last: (cin, kh, kw, cout) in memory; reorder the small columns, not the weight
            cols = pixels @ self.weight.permute(0, 2, 3, 1).reshape(cin, -1)   # [n, L, kh*kw*cout]
            cols = cols.view(n, h * w, kh * kw, -1).permute(0, 3, 2, 1).reshape(n, -1, h * w)
        out = F.fold(cols.float(), ((h - 1) * sh + kh, (w - 1) * sw + kw), (kh, kw), stride=(sh, sw))
        # the input's layout, as the convolution gives it: dropout draws its mask in memory order
        return out.to(cols.dtype).contiguous(memory_format=_layout(x))


def down(cin: int, f: int, bn: bool, *, matmul: bool = False) -> nn.Sequential:
    conv = (MatmulConv2d if matmul else nn.Conv2d)(cin, f, 4, stride=2, padding=0, bias=False)
    he_normal_(conv)
    # in place: neither BatchNorm's nor the convolution's backward reads the tensor it overwrites
    return nn.Sequential(conv, *([batch_norm(f)] if bn else []), nn.LeakyReLU(LEAKY_SLOPE, inplace=True))


def up(cin: int, f: int, dropout: bool, *, matmul: bool = False) -> nn.Sequential:
    conv = (MatmulConvTranspose2d if matmul else nn.ConvTranspose2d)(cin, f, 4, stride=2, padding=0, bias=False)
    he_normal_(conv)
    return nn.Sequential(conv, *([nn.Dropout(0.1)] if dropout else []), nn.LeakyReLU(LEAKY_SLOPE, inplace=True))


@register_model("conv_ae", spec=ModelSpec(
    image_size=256, schedule=(("mae", 100),), channels_last=True, demo_epochs=2,  # channels_last: ~1.5x on CPU
    published={"photo2sketch": {"mae_median": 0.171, "rmse": 0.274, "ssim_paper": 0.739},
               "sketch2photo": {"mae_median": 0.051, "rmse": 0.121, "ssim_paper": 0.824}}))
class ConvAE(nn.Module):
    """(N, 3, 256, 256) in [0, 1] -> (N, 3, 256, 256), linear (clip to [0, 1] for images)."""

    image_size = 256

    def __init__(self, *, channels: int = 3):
        super().__init__()
        # the 2x2 bottleneck's two layers (the last down, the first up) run as matmuls on the CPU
        blocks, cin = [], channels
        for i, (f, bn) in enumerate(DOWN):
            blocks.append(down(cin, f, bn, matmul=i == len(DOWN) - 1))
            cin = f
        for i, (f, dropout) in enumerate(UP):
            blocks.append(up(cin, f, dropout, matmul=i == 0))
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

