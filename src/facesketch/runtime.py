"""Where a run's tensors live: the device, DDP ranks and memory layout (`Placement`).

The process-wide torch setting (huge pages) is made before torch is imported, in __main__.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from facesketch import FacesketchError
from facesketch import distributed as D


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def resolve_device(name: str) -> torch.device:
    """'auto'/'cpu'/'cuda'/'cuda:N'/'mps' -> the device to use, CUDA with its index ('cuda:0'),
    as recorded in the weights' metadata."""
    if name in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    if name == "auto":
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise FacesketchError(f"--device {name}: CUDA is not available on this machine (use auto or cpu)")
    if name == "mps" and not _mps_available():
        raise FacesketchError("--device mps: MPS is not available on this machine (use auto or cpu)")
    return torch.device(name)


@dataclass(frozen=True)
class Placement:
    """Where a run's modules and batches live: device, DDP ranks, memory layout."""

    device: torch.device
    dist: D.DistInfo
    channels_last: bool = False
    compiled: bool = False     # torch.compile the module a step calls (chosen by measurement, on CUDA)

    @classmethod
    def start(cls, device_name: str) -> "Placement":
        """Resolve the device and join the DDP group when launched by torchrun."""
        device = resolve_device(device_name)
        dist = D.init(device.type)
        if device.type == "cuda":
            # fixed input sizes: cuDNN times its convolution algorithms once and keeps the fastest
            torch.backends.cudnn.benchmark = True
        if dist.enabled and device.type == "cuda":
            device = torch.device("cuda", dist.local_rank)
            torch.cuda.set_device(device)
        return cls(device, dist)

    def module(self, m: nn.Module) -> nn.Module:
        """Move m here (channels_last if chosen; SyncBatchNorm under multi-GPU DDP)."""
        m.to(self.device)
        if self.channels_last:
            m.to(memory_format=torch.channels_last)
        if self.dist.enabled and self.device.type == "cuda":
            m = nn.SyncBatchNorm.convert_sync_batchnorm(m)
        return m

    def wrap(self, m: nn.Module) -> nn.Module:
        """The module to call in training: DDP-wrapped under torchrun, else m itself."""
        if self.dist.enabled:
            m = nn.parallel.DistributedDataParallel(m, device_ids=[self.device.index] if self.device.type == "cuda"
                                                    else None)
        return torch.compile(m) if self.compiled else m

    def batch(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x
