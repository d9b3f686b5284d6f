"""Checkpoints: safetensors only (no pickle anywhere), every write atomic.

A run folder holds
  model.safetensors   the weights (and buffers) of the latest finished epoch, with metadata
                      {"facesketch": JSON of model name, kwargs, direction, epoch, the device it
                      trained on, versions};
  checkpoint.safetensors  everything to resume exactly: weights, optimiser state, RNG state,
                      position (stage, epoch) and history, in one file so they never disagree.
Both are written to a temporary name and renamed into place, so a kill at any moment leaves
the previous good file intact; an interrupted write (an error, Ctrl-C) removes its temporary.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import platform
from pathlib import Path

import torch
import torch.nn as nn
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from facesketch import FacesketchError, __version__

MODEL_FILE = "model.safetensors"
STATE_FILE = "checkpoint.safetensors"


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of a file's bytes (weights, split.csv: what an evaluation measured)."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def versions() -> dict:
    return {"facesketch": __version__, "torch": torch.__version__, "python": platform.python_version()}


def atomic_save(tensors: dict[str, torch.Tensor], meta: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    try:
        try:
            save_file(tensors, str(tmp), metadata={"facesketch": json.dumps(meta)})
        except SafetensorError as e:   # safetensors reports a full disk as its own error, not an OSError
            raise OSError(errno.EIO, f"could not write it ({e}); the previous file, if any, is kept", str(path)) from e
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:  # Ctrl-C included: a full-size orphaned .tmp is lost disk, never a checkpoint
        tmp.unlink(missing_ok=True)
        raise


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    if not path.is_file():
        raise FacesketchError(f"{path}: weights file is missing")
    try:
        # one pass over the file: metadata and tensors from the same handle
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("facesketch", "{}"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as e:
        raise FacesketchError(f"{path}: corrupt or truncated weights file ({e})") from None
    return tensors, meta


def save_model(model: nn.Module, meta: dict, path: Path) -> None:
    atomic_save(dict(model.state_dict()), {**meta, "versions": versions()}, path)


def load_weights(model: nn.Module, path: Path) -> dict:
    """Load weights into `model`; returns the metadata. Clear error on any mismatch."""
    tensors, meta = _read(path)
    if any(k.startswith("model.") for k in tensors):  # a checkpoint: the model's own tensors only
        tensors = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise FacesketchError(f"{path}: weights do not fit model {meta.get('model', '?')!r} ({first})") from None
    return meta


def load_meta(path: Path) -> dict:
    """The metadata alone (no tensors are read)."""
    if not path.is_file():
        raise FacesketchError(f"{path}: weights file is missing")
    try:
        with safe_open(str(path), framework="pt") as f:
            return json.loads((f.metadata() or {}).get("facesketch", "{}"))
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as e:
        raise FacesketchError(f"{path}: corrupt or truncated weights file ({e})") from None


def _flatten_optimizer(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict, list]:
    sd = opt.state_dict()
    tensors = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            tensors[f"{prefix}.{idx}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return tensors, sd["param_groups"]


def _unflatten_optimizer(prefix: str, tensors: dict, groups: list) -> dict:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": groups}


def _match_param_layout(opt: torch.optim.Optimizer) -> None:
    """Give restored moment tensors their parameter's strides. Fused/foreach Adam walk a
    parameter and its moments in lockstep, so a channels_last parameter with NCHW moments
    (as they come back from the file) would be updated with scrambled moments."""
    for group in opt.param_groups:
        for p in group["params"]:
            for key, value in opt.state.get(p, {}).items():
                if torch.is_tensor(value) and value.shape == p.shape and value.stride() != p.stride():
                    opt.state[p][key] = torch.empty_like(p, dtype=value.dtype).copy_(value)


def save_state(path: Path, *, model: nn.Module, optimizers: dict[str, torch.optim.Optimizer],
               extra_modules: dict[str, nn.Module], position: dict, history: list[dict]) -> None:
    """Write the resumable state of a run to `path` atomically."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    for name, module in extra_modules.items():
        tensors.update({f"{name}.{k}": v for k, v in module.state_dict().items()})
    groups = {}
    for name, opt in optimizers.items():
        t, groups[name] = _flatten_optimizer(f"optim_{name}", opt)
        tensors.update(t)
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors.update({f"rng.cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    atomic_save(tensors, {"position": position, "history": history, "param_groups": groups}, path)


def load_state(path: Path, *, model: nn.Module, optimizers: dict[str, torch.optim.Optimizer],
               extra_modules: dict[str, nn.Module]) -> tuple[dict, list[dict]]:
    """Restore what save_state wrote; returns (position, history)."""
    tensors, meta = _read(path)
    load_weights(model, path)
    for name, module in extra_modules.items():
        module.load_state_dict({k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")})
    for name, opt in optimizers.items():
        if name in meta["param_groups"]:
            opt.load_state_dict(_unflatten_optimizer(f"optim_{name}", tensors, meta["param_groups"][name]))
            _match_param_layout(opt)
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    return meta["position"], meta["history"]
