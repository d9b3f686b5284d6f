"""Weights that ship inside the package: `weights/<model>-<direction>.safetensors`, trained by
`facesketch train`, stored in fp16 and loaded with safetensors, never from the network.

`weights/card.json` states, for each shipped file, how it was trained and what it scores (the
README's model card is written from it, and a test re-measures it). `export_weights` makes such a
file from a finished run folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch.nn as nn

from facesketch import FacesketchError
from facesketch.checkpoint import MODEL_FILE, atomic_save, file_sha256, load_meta, load_weights
from facesketch.data.protocols import read_split_manifest
from facesketch.direction import DIRECTIONS
from facesketch.registry import create_model, list_models

WEIGHTS_DIR = Path(__file__).parent / "weights"
CARD_FILE = WEIGHTS_DIR / "card.json"


def shipped_path(name: str, direction: str) -> Path:
    return WEIGHTS_DIR / f"{name}-{direction}.safetensors"


def shipped_directions(name: str) -> list[str]:
    """The directions for which `name` ships weights (in DIRECTIONS order)."""
    return [d for d in DIRECTIONS if shipped_path(name, d).is_file()]


def shipped_models() -> dict[str, list[str]]:
    """{model: [directions]} for every model that ships weights."""
    return {m: ds for m in list_models() if (ds := shipped_directions(m))}


def card() -> dict:
    """weights/card.json: {model: {direction: {"trained": ..., "metrics": {protocol: summary}}}}."""
    return json.loads(CARD_FILE.read_text()) if CARD_FILE.is_file() else {}


def _what_ships() -> str:
    ships = shipped_models()
    return ", ".join(f"{m} ({', '.join(ds)})" for m, ds in ships.items()) or "none"


def load_shipped(name: str, direction: str) -> tuple[nn.Module, dict]:
    """The shipped model for `direction`, in eval mode on the CPU, and its metadata."""
    path = shipped_path(name, direction)
    if not path.is_file():
        raise FacesketchError(f"--model {name}: no shipped weights for {direction}; these ship: {_what_ships()}")
    meta = load_meta(path)
    model = create_model(name, **meta.get("model_kwargs", {}))
    load_weights(model, path)
    return model.float().eval(), meta


def _photo_hashes(run: Path) -> list[str]:
    """sha256 of each training photo named by RUN/split.csv: how an evaluation of the shipped
    weights finds the faces they have seen, whatever the files are called or wherever they lie."""
    return sorted(file_sha256(p.photo) for p in read_split_manifest(run / "split.csv").train)


def export_weights(run: Path, dest: Path, **extra) -> dict:
    """RUN/model.safetensors -> dest in fp16 with its metadata, the training photos' sha256 and
    `extra` (e.g. where it was trained). Returns the metadata written."""
    run = Path(run)
    run_meta = load_meta(run / MODEL_FILE)
    model = create_model(run_meta["model"], **run_meta.get("model_kwargs", {}))
    load_weights(model, run / MODEL_FILE)
    tensors = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}
    meta = {**run_meta, "storage": "fp16", "train_photos_sha256": _photo_hashes(run), **extra}
    atomic_save(tensors, meta, Path(dest))
    Path(dest).chmod(0o644)  # package data: readable by every user of an installed copy
    return meta


def seen_photos(meta: dict) -> set[str]:
    return set(meta.get("train_photos_sha256", ()))
