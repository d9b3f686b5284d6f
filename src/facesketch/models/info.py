"""Model facts for `facesketch models`: sizes, parameter counts (counted on the meta device,
so the 425M-parameter dense_ae costs no memory), schedule and learning rate from the spec, and
the directions whose weights ship with the package."""

from __future__ import annotations

import torch

from facesketch.registry import create_model, list_models, model_spec
from facesketch.shipped import shipped_directions


def model_info(name: str) -> dict:
    spec = model_spec(name)
    with torch.device("meta"):
        model = create_model(name)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    stats = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    return {"name": name, "image_size": spec.image_size, "trainable_params": trainable, "non_trainable": stats,
            "learned": spec.learned, "default_loss": spec.schedule[0][0] if spec.schedule else None,
            "schedule": _stages(spec.schedule), "lr": spec.lr,
            "direction_schedules": {d: _stages(s) for d, s in spec.direction_schedules.items()},
            "weights": shipped_directions(name)}


def _stages(schedule) -> list[dict]:
    return [{"loss": loss, "epochs": e} for loss, e in schedule]


def schedule_text(name: str) -> str:
    """'l1_ssim x40 (photo2sketch: l1_ssim_mse x40)' from the model's spec (nothing is built)."""
    spec = model_spec(name)

    def text(stages):
        return " + ".join(f"{loss} x{e}" for loss, e in stages)
    extra = "".join(f" ({d}: {text(s)})" for d, s in spec.direction_schedules.items())
    return (text(spec.schedule) + extra) or "no training (baseline)"


def all_model_info() -> list[dict]:
    return [model_info(n) for n in list_models()]
