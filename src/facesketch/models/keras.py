"""Keras defaults reproduced in PyTorch: initialisers, BatchNorm settings, LeakyReLU slope.

The report's models were Keras models; their tables (parameter counts, behaviour) depend on
these defaults, which differ from PyTorch's.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

LEAKY_SLOPE = 0.3        # keras.layers.LeakyReLU() default alpha
BN_MOMENTUM = 0.01       # Keras momentum 0.99 is PyTorch momentum 0.01
BN_EPS = 1e-3            # Keras epsilon
# Keras' truncated normal cuts at 2 std and rescales by this so the kept std is the asked one
_TRUNC_STD_CORRECTION = 0.87962566103423978


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def glorot_uniform_(module: nn.Module) -> None:
    """Keras default for Dense/Conv2D/Conv2DTranspose: glorot-uniform weights, zero biases."""
    nn.init.xavier_uniform_(module.weight)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)


def he_normal_(module: nn.Module) -> None:
    """keras 'he_normal': truncated normal (+-2 std), std sqrt(2 / fan_in), zero bias.

    PyTorch's fan_in for Conv2d is in*k*k and for ConvTranspose2d out*k*k, the same as Keras'
    for Conv2D and Conv2DTranspose kernels.
    """
    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(module.weight)
    std = math.sqrt(2.0 / fan_in) / _TRUNC_STD_CORRECTION
    with torch.no_grad():
        nn.init.trunc_normal_(module.weight, mean=0.0, std=std, a=-2 * std, b=2 * std)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)
