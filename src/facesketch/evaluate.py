"""`facesketch evaluate RUN`: predictions as PNG, per-image metrics CSV and summary.json.

Everything comes from the run folder (config.yaml, split.csv, model.safetensors), so a run can
be evaluated anywhere its data paths resolve. Metrics are computed at the model's own size.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from facesketch import FacesketchError
from facesketch.checkpoint import MODEL_FILE, load_weights
from facesketch.config import RunConfig
from facesketch.data.dataset import PairDataset, make_loader
from facesketch.data.images import to_uint8_image
from facesketch.data.protocols import read_split_manifest
from facesketch.identify import PCADescriptor, identification
from facesketch.metrics import ALL_METRICS, SETTINGS, average, image_metrics
from facesketch.registry import create_model

REQUIRED = ("config.yaml", "split.csv", MODEL_FILE)


def check_run_dir(run: Path) -> None:
    if not run.is_dir():
        raise FacesketchError(f"{run}: run folder does not exist")
    missing = [name for name in REQUIRED if not (run / name).is_file()]
    if missing:
        hint = " (training did not finish an epoch; resume it with `facesketch train ... --resume`)" \
            if MODEL_FILE in missing and (run / "config.yaml").exists() else ""
        raise FacesketchError(f"{run}: not a complete run folder, missing {', '.join(missing)}{hint}")


def load_run_model(run: Path) -> tuple[torch.nn.Module, RunConfig]:
    check_run_dir(run)
    cfg = RunConfig.load(run / "config.yaml")
    try:
        model = create_model(cfg.model, **cfg.model_kwargs)
    except KeyError as e:
        raise FacesketchError(f"{run}/config.yaml: {e.args[0]}") from None
    load_weights(model, run / MODEL_FILE)
    return model.eval(), cfg


@torch.no_grad()
def predict_dataset(model, ds: PairDataset, *, batch_size: int = 16, progress: bool = False):
    """Yields (src, tgt, pred, name, view) per item; pred clipped to [0, 1]; arrays CxHxW."""
    device = next(iter(model.parameters()), torch.empty(0)).device
    for src, tgt, names in tqdm(make_loader(ds, batch_size=batch_size, shuffle=False), disable=not progress,
                                desc="predicting", leave=False):
        views = torch.tensor([int(n.rsplit("/v", 1)[1]) for n in names])
        pred = model(src.to(device), view=views) if getattr(model, "uses_view", False) else model(src.to(device))
        pred = pred.float().clamp(0, 1).cpu()
        for i, name in enumerate(names):
            yield src[i].numpy(), tgt[i].numpy(), pred[i].numpy(), name, int(views[i])


def evaluate(run: str | Path, *, out: Path | None = None, save_images: bool = True, progress: bool = True) -> dict:
    """Evaluate a run folder on its test split; writes RUN/eval/ and returns the summary."""
    run = Path(run)
    model, cfg = load_run_model(run)
    split = read_split_manifest(run / "split.csv", cfg.protocol)
    missing = [str(p.photo) for p in split.test + split.train if not p.photo.exists()][:3]
    if missing:
        raise FacesketchError(f"{run}/split.csv names images that are gone: {', '.join(missing)}")
    out = Path(out) if out else run / "eval"
    (out / "pred").mkdir(parents=True, exist_ok=True)
    sketch = cfg.direction == "photo2sketch"
    test = PairDataset(split.test, size=model.image_size, direction=cfg.direction, views=split.test_views)
    rows, probes, gallery = [], {}, {}
    for src, tgt, pred, name, view in predict_dataset(model, test, progress=progress):
        m = image_metrics(pred.transpose(1, 2, 0), tgt.transpose(1, 2, 0), sketch=sketch)
        rows.append({"name": name, **{k: round(v, 6) for k, v in m.items()}})
        if save_images:
            to_uint8_image(pred).save(out / "pred" / (name.replace("/", "_") + ".png"))
        if view == 0:
            stem = name.rsplit("/v", 1)[0]
            probes[stem], gallery[stem] = pred.transpose(1, 2, 0), tgt.transpose(1, 2, 0)
    train = PairDataset(split.train, size=model.image_size, direction=cfg.direction, views=(0,))
    train_targets = (train.sketches if sketch else train.photos).permute(0, 2, 3, 1).numpy() / 255.0
    stems = sorted(probes)
    ident = identification(PCADescriptor(train_targets), np.stack([probes[s] for s in stems]),
                           np.stack([gallery[s] for s in stems])) if len(stems) > 1 else {}
    summary = {"model": cfg.model, "direction": cfg.direction, "protocol": cfg.protocol, "n": len(rows),
               "image_size": model.image_size, "metrics": average(rows), "identification": ident,
               "metric_settings": SETTINGS, "run": str(run)}
    _write_csv(out / "metrics.csv", rows)
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    tmp.replace(out / "summary.json")
    return summary


def _write_csv(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["name", *ALL_METRICS])
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)
