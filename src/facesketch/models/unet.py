"""`unet`: the pix2pix U-Net generator at 256x256 (8 down/up levels with skip connections),
and the 70x70 PatchGAN discriminator used when training with `--gan`.

Follows Isola et al. 2017: 4x4 stride-2 convs, BatchNorm, LeakyReLU(0.2) down, ReLU up,
dropout 0.5 on the three innermost-but-one decoder levels, N(0, 0.02) weights. Images are
[0, 1] at the boundary; internally [-1, 1] with a tanh output, as pix2pix.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from facesketch.registry import ModelSpec, register_model


def _init_pix2pix(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


@register_model("unet", spec=ModelSpec(
    image_size=256, schedule=(("mae", 100),), gan=True, demo_epochs=1,
    optimizer={"lr": 2e-4, "betas": (0.5, 0.999)}))  # pix2pix's Adam settings
class UNet(nn.Module):
    """(N, C, 256, 256) in [0, 1] -> (N, C, 256, 256) in [0, 1]."""

    image_size = 256

    def __init__(self, *, channels: int = 3, ngf: int = 64, levels: int = 8):
        super().__init__()
        widths = [min(ngf * 2**i, ngf * 8) for i in range(levels)]
        self.down = nn.ModuleList()
        cin = channels
        for i, w in enumerate(widths):
            layers = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(cin, w, 4, stride=2, padding=1, bias=False))
            if 0 < i < levels - 1:
                layers.append(nn.BatchNorm2d(w))
            self.down.append(nn.Sequential(*layers))
            cin = w
        self.up = nn.ModuleList()
        for i in reversed(range(levels)):
            out = widths[i - 1] if i > 0 else channels
            cin = widths[i] if i == levels - 1 else 2 * widths[i]
            layers = [nn.ReLU(), nn.ConvTranspose2d(cin, out, 4, stride=2, padding=1, bias=i == 0)]
            if i > 0:
                layers.append(nn.BatchNorm2d(out))
            if levels - 4 <= i < levels - 1:
                layers.append(nn.Dropout(0.5))
            self.up.append(nn.Sequential(*layers))
        _init_pix2pix(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips, h = [], x * 2 - 1
        for block in self.down:
            h = block(h)
            skips.append(h)
        skips.pop()  # the innermost output feeds the decoder directly
        for block in self.up:
            h = block(h)
            if skips:
                h = torch.cat([h, skips.pop()], dim=1)
        return (torch.tanh(h) + 1) / 2


class PatchGAN(nn.Module):
    """70x70 PatchGAN: (src, img) pairs -> (N, 1, 30, 30) real/fake logits at 256x256."""

    def __init__(self, *, channels: int = 3, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(2 * channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
        w = ndf
        for i in range(1, n_layers + 1):
            w_next = ndf * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(w, w_next, 4, stride, 1, bias=False), nn.BatchNorm2d(w_next), nn.LeakyReLU(0.2)]
            w = w_next
        layers.append(nn.Conv2d(w, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        _init_pix2pix(self)

    def forward(self, src: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([src * 2 - 1, img * 2 - 1], dim=1))
