"""Model facts for `facesketch models`: sizes, parameter counts (counted on the meta device,
so the 425M-parameter dense_ae costs no memory), schedule and learning rate from the spec."""

from __future__ import annotations

import torch

from facesketch.registry import create_model, list_models, model_spec


def model_info(name: str) -> dict:
    spec = model_spec(name)
    with torch.device("meta"):
        model = create_model(name)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    stats = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    return {"name": name, "image_size": spec.image_size, "trainable_params": trainable, "non_trainable": stats,
            "learned": spec.learned, "default_loss": spec.schedule[0][0] if spec.schedule else None,
            "schedule": [{"loss": loss, "epochs": e} for loss, e in spec.schedule], "lr": spec.lr}


def all_model_info() -> list[dict]:
    return [model_info(n) for n in list_models()]
