"""Why the report's photo2sketch cells are so far from a correct run: its notebooks scored the
predicted sketches against the input photos.

The author's notebooks (GitHub dpriovolos/example, "Code for each model/*.ipynb") compute every
metric in one cell, `ssim(test_image[i], pred[i])` and `mae(test_image[i], pred[i])`, after either
the face2sketch or the sketch2face prediction cell; `test_image` holds the test photos in both
cases. So sketch2photo was scored against its true targets, photo2sketch against its inputs.

This script scores a photo2sketch run folder both ways on its own test split with the `paper`
metrics: against the true sketches (what `facesketch evaluate` reports) and against the input
photos (what the notebook's cell computes). Only the second lands near the report's cells.

    python docs/notebook_scoring.py RUN [RUN ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from facesketch.data.protocols import read_split_manifest
from facesketch.evaluate import _load_pairs, load_run_model, predict_dataset
from facesketch.metrics import average, image_metrics
from facesketch.registry import model_spec

PAPER = ("mae_median", "rmse", "ssim_paper")


def score_both_ways(run: Path) -> tuple[dict, dict, dict]:
    """(config, metrics against the true sketches, metrics against the input photos)."""
    model, cfg = load_run_model(run)
    if cfg.direction != "photo2sketch":
        raise SystemExit(f"{run}: a {cfg.direction} run; only photo2sketch was scored against the wrong images")
    split = read_split_manifest(run / "split.csv", cfg.protocol)
    test = _load_pairs(split.test, f"{run}/split.csv", views=split.test_views, size=model.image_size,
                       direction=cfg.direction)
    right, notebook = [], []
    for src, tgt, pred, _, _ in predict_dataset(model, test, name=cfg.model, device=torch.device("cpu")):
        right.append(image_metrics(pred.transpose(1, 2, 0), tgt.transpose(1, 2, 0), sketch=True))
        notebook.append(image_metrics(pred.transpose(1, 2, 0), src.transpose(1, 2, 0), sketch=False))
    return {"model": cfg.model, "protocol": cfg.protocol, "n": len(right)}, average(right), average(notebook)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="photo2sketch run folders (paper protocol)")
    args = ap.parse_args()
    print("| model | scored against | median AE | RMSE | SSIM (range 2) |\n|---|---|---|---|---|")
    for run in args.runs:
        cfg, right, notebook = score_both_ways(run)
        published = model_spec(cfg["model"]).published.get("photo2sketch")
        for what, m in (("the true sketches (facesketch)", right), ("the input photos (the notebook's cell)", notebook)):
            print(f"| {cfg['model']} | {what} | " + " | ".join(f"{m[k]:.4f}" for k in PAPER) + " |")
        if published:
            print(f"| {cfg['model']} | the report's table | " + " | ".join(f"{published[k]:.3f}" for k in PAPER) + " |")


if __name__ == "__main__":
    main()
