"""Model facts for `facesketch models`: sizes, parameter counts (counted on the meta device,
so the 425M-parameter dense_ae costs no memory), default loss and schedule."""

from __future__ import annotations

import torch

from facesketch.registry import create_model, list_models, model_class


def model_info(name: str) -> dict:
    cls = model_class(name)
    with torch.device("meta"):
        model = create_model(name)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    stats = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    return {"name": name, "image_size": model.image_size, "trainable_params": trainable, "non_trainable": stats,
            "learned": cls.learned, "default_loss": cls.default_loss,
            "schedule": [{"loss": loss, "epochs": e} for loss, e in cls.default_schedule],
            "lr": getattr(cls, "default_optim", {}).get("lr", 1e-3) if cls.learned else None}


def all_model_info() -> list[dict]:
    return [model_info(n) for n in list_models()]
