"""Multi-run jobs: train-all, demo and reproduce, built from train/evaluate/report."""

from __future__ import annotations

from pathlib import Path

from facesketch.checkpoint import MODEL_FILE
from facesketch.config import RunConfig


def train_all(cfgs: list[RunConfig], *, overwrite: bool = False, progress: bool = True) -> list[Path]:
    """Train each config in turn; a finished run (model.safetensors present and its schedule done)
    is kept unless overwrite, an interrupted one is resumed."""
    from facesketch.train import run_is_complete, train
    runs = []
    for i, cfg in enumerate(cfgs, 1):
        if progress:
            print(f"[{i}/{len(cfgs)}] {cfg.run_name}", flush=True)
        if not overwrite and run_is_complete(cfg):
            runs.append(cfg.run_dir)
            continue
        resume = not overwrite and (cfg.run_dir / "checkpoint.safetensors").exists()
        runs.append(train(cfg, resume=resume, overwrite=overwrite, progress=progress).run_dir)
    return runs
