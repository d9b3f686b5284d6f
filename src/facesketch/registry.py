"""Model registry: `@register_model(name)` and `create_model(name, **kwargs)`."""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
    def add(factory):
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = factory
        return factory
    return add


def _load_all() -> None:
    import facesketch.models  # noqa: F401  (registers every model on import)


def create_model(name: str, **kwargs) -> nn.Module:
    _load_all()
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; choose from {', '.join(sorted(_MODELS))}")
    return _MODELS[name](**kwargs)


def list_models(*, learned: bool | None = None) -> list[str]:
    """Registered names; learned=True/False keeps only trainable models / baselines."""
    _load_all()
    names = sorted(_MODELS)
    if learned is None:
        return names
    return [n for n in names if getattr(_MODELS[n], "learned", True) == learned]


def model_class(name: str):
    _load_all()
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; choose from {', '.join(sorted(_MODELS))}")
    return _MODELS[name]
