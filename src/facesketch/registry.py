"""Model registry: every model registers with its facts (a `ModelSpec`) in one place.

`@register_model("conv_ae", spec=ModelSpec(...))` on the class; `create_model(name, **kwargs)`
builds one; `model_spec(name)` answers everything the rest of the package needs to know about a
model (input size, schedule, optimiser, layout, whether it learns) without building it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch.nn as nn


@dataclass(frozen=True)
class ModelSpec:
    """What the training, evaluation and reporting code needs to know about a model.

    schedule: the default stages, ((loss, epochs), ...); a loss name from `facesketch.losses`
        (each stage starts a fresh optimiser). Empty for baselines, which are fitted, not trained.
    direction_schedules: {direction: schedule} where one direction trains with other stages than
        `schedule` (see `schedule_for`).
    optimizer: Adam settings that differ from the report's (lr 1e-3, betas 0.9/0.999).
    channels_last: train in the channels_last memory layout on CPU (measured, bench/README.md).
    uses_view: forward() takes the dihedral view index of each input (the mean baseline does).
    gan: the model can be trained as a pix2pix generator against a PatchGAN (`--gan`).
    lr_schedule: "constant" (the report's), or "cosine": a 3% linear warm-up, then cosine decay to
        zero over each stage.
    ema: decay of an exponential moving average of the weights (None: none); when set, the
        average is what is evaluated and saved as model.safetensors.
    demo_epochs: first-stage epochs in `facesketch demo` (None: the model is not in the demo).
    demo_lr: the learning rate in `facesketch demo` (None: the model's own).
    published: the report's Tables I/II numbers for this model, {direction: {metric: value}}.
    """

    image_size: int
    learned: bool = True
    schedule: tuple[tuple[str, int], ...] = ()
    direction_schedules: dict = field(default_factory=dict)
    optimizer: dict = field(default_factory=dict)
    channels_last: bool = False
    uses_view: bool = False
    gan: bool = False
    lr_schedule: str = "constant"
    ema: float | None = None
    demo_epochs: int | None = None
    demo_lr: float | None = None
    published: dict = field(default_factory=dict)

    def schedule_for(self, direction: str) -> tuple[tuple[str, int], ...]:
        """The default stages when training `direction`."""
        return self.direction_schedules.get(direction, self.schedule)

    @property
    def lr(self) -> float | None:
        return self.optimizer.get("lr", 1e-3) if self.learned else None


_MODELS: dict[str, tuple[Callable[..., nn.Module], ModelSpec]] = {}


def register_model(name: str, *, spec: ModelSpec):
    def add(factory):
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = (factory, spec)
        return factory
    return add


def _load_all() -> None:
    import facesketch.models  # noqa: F401  (registers every model on import)


def _entry(name: str):
    _load_all()
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; choose from {', '.join(sorted(_MODELS))}")
    return _MODELS[name]


def create_model(name: str, **kwargs) -> nn.Module:
    return _entry(name)[0](**kwargs)


def model_spec(name: str) -> ModelSpec:
    return _entry(name)[1]


def list_models(*, learned: bool | None = None) -> list[str]:
    """Registered names in registration order (the report's models, then ours, then baselines);
    learned=True/False keeps only trainable models / baselines."""
    _load_all()
    return [n for n, (_, spec) in _MODELS.items() if learned is None or spec.learned == learned]

