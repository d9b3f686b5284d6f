"""`facesketch evaluate RUN [--data DIR]`: predictions as PNG, per-image metrics CSV and summary.json.

Everything comes from the run folder (config.yaml, split.csv, model.safetensors), and these must
agree: the weights' own metadata is checked against config.yaml first. Without --data the run is
scored on its own test split (all of the protocol's test views; identification on view 0) into
RUN/eval/; with --data DIR on another paired dataset (every pair, original view; or the test split
of --protocol P on DIR) into RUN/eval-<DIR name>/. Metrics are computed at the model's own size.
The output folder must be new or empty, or hold an evaluation of the same run on the same data and
protocol (which is replaced): nothing else is ever overwritten.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from facesketch import FacesketchError
from facesketch.checkpoint import file_sha256, MODEL_FILE, load_meta, load_weights
from facesketch.config import RunConfig, check_device
from facesketch.data.dataset import PairDataset, make_loader
from facesketch.data.images import open_image, to_uint8_image
from facesketch.data.pairs import Pair, find_pairs
from facesketch.data.protocols import Split, make_split, read_split_manifest, write_split_manifest
from facesketch.identify import PCADescriptor, identification
from facesketch.metrics import ALL_METRICS, SETTINGS, average, image_metrics
from facesketch.registry import create_model, model_spec
from facesketch.runtime import resolve_device
from facesketch.runs import (PRED_DIR, check_run_dir, check_split_unchanged, check_weights_agree, is_cufs_student,
                             is_pred_filename, item_name, overlap_note, pred_filename, unfinished, unfinished_note)

__all__ = ["check_run_dir", "load_run_model", "predict_dataset", "evaluate", "evaluate_shipped", "eval_dir_for",
           "check_out_dir"]
EVAL_FILES = ("summary.json", "metrics.csv", "test_pairs.csv")  # with PRED_DIR: all an evaluation writes


def load_run_model(run: Path) -> tuple[torch.nn.Module, RunConfig]:
    """The run's model with its weights, in eval mode, after checking config.yaml against them."""
    check_run_dir(run)
    cfg = RunConfig.load(run / "config.yaml")
    meta = load_meta(run / MODEL_FILE)
    check_weights_agree(run, cfg, meta)
    try:
        model = create_model(cfg.model, **cfg.model_kwargs)
    except KeyError as e:
        raise FacesketchError(f"{run}/config.yaml: {e.args[0]}") from None
    except TypeError as e:  # an unknown or mistyped constructor argument
        raise FacesketchError(f"{run}/config.yaml: model_kwargs {cfg.model_kwargs} do not fit model "
                              f"{cfg.model!r} ({e})") from None
    check_weights_agree(run, cfg, meta, keys=("model_kwargs",))
    load_weights(model, run / MODEL_FILE)
    return model.eval(), cfg


INFER_BATCH = 16


@torch.no_grad()
def predict_dataset(model, ds: PairDataset, *, name: str, batch_size: int = INFER_BATCH,
                    progress: bool = False, device: torch.device | None = None,
                    layout: str = "nchw", precision: str = "fp32"):
    """Yields (src, tgt, pred, pair stem, view) per item; pred clipped to [0, 1]; arrays CxHxW, view an int.
    name: the model's registered name; its spec says whether the model takes each input's view.
    layout/precision: as facesketch.autotune.choose_inference chose (the model already in that layout)."""
    from facesketch.autotune import infer_context, inference_input
    uses_view = model_spec(name).uses_view
    device = device or next(iter(model.parameters()), torch.empty(0)).device
    for src, tgt, index, views in tqdm(make_loader(ds, batch_size=batch_size, shuffle=False),
                                       disable=not progress, desc="predicting", leave=False):
        src_d = inference_input(src.to(device), layout)
        with infer_context(device, precision):
            pred = model(src_d, view=views.to(device)) if uses_view else model(src_d)
        pred = pred.float().clamp(0, 1).cpu()
        for k, (i, view) in enumerate(zip(index.tolist(), views.tolist())):
            yield src[k].numpy(), tgt[k].numpy(), pred[k].numpy(), ds.pairs[i].stem, view


def eval_dir_for(run: Path, data: Path | None = None, protocol: str | None = None) -> Path:
    """RUN/eval for the run's own split; RUN/eval-<data name>[-<protocol>] for another dataset."""
    if data is None:
        return Path(run) / "eval"
    data = Path(data).resolve()
    return Path(run) / f"eval-{data.stem if data.is_file() else data.name}{'-' + protocol if protocol else ''}"


def _measured_on(data: str | None, label: str) -> str:
    return f"its own test split (protocol {label})" if data is None else \
        f"{data} ({'every pair' if label == 'all' else 'protocol ' + label})"


def _facesketch_summary(out: Path) -> dict | None:
    """out/summary.json when it is an evaluation's summary (even a stale or incomplete one), else None."""
    try:
        s = json.loads((out / "summary.json").read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    ok = isinstance(s, dict) and all(isinstance(s.get(k), str) for k in ("model", "direction", "protocol"))
    return s if ok and "metrics" in s else None


def _written_by_evaluate(entry: Path) -> bool:
    """Whether a folder entry is one an evaluation writes; a summary.json only when damaged (a whole
    one is an evaluation's by what it says, see _facesketch_summary)."""
    def first_line() -> str:
        try:
            with entry.open(encoding="utf-8", errors="replace") as f:
                return f.readline().strip()
        except OSError:
            return ""
    if entry.name == PRED_DIR and entry.is_dir():
        return all(f.is_file() and is_pred_filename(f.name) for f in entry.iterdir())
    if not entry.is_file():
        return False
    if entry.name in {f"{name}.tmp" for name in EVAL_FILES}:
        return True
    if entry.name == "metrics.csv":
        return first_line() == ",".join(["name", *ALL_METRICS])
    if entry.name == "test_pairs.csv":
        return first_line().startswith("photo,sketch,split,views")
    if entry.name == "summary.json":
        try:
            json.loads(entry.read_text())
        except (OSError, UnicodeDecodeError, ValueError):
            return True  # cut short (a crash, a full disk)
    return False


def check_out_dir(out: Path, run: Path, data: Path | None, label: str) -> None:
    """`out` takes the evaluation of `run` on `data` (None: its own split) under protocol `label`
    only when it is new or empty, or holds an evaluation of the same run, data and protocol (or
    what an interrupted one left); anything else is a one-line error saying what it holds."""
    if not out.exists():
        return
    if not out.is_dir():
        raise FacesketchError(f"--out {out} is a file; expected a folder for the evaluation")
    if data is not None and out.resolve() == (run / "eval").resolve():
        raise FacesketchError(f"--out {out} is kept for the run's evaluation on its own test split; evaluate on "
                              f"--data {data} into another folder (the default is {eval_dir_for(run, data)})")
    entries = sorted(out.iterdir())
    if not entries:
        return
    mine = str(data.resolve()) if data is not None else None
    summary = _facesketch_summary(out)
    if summary is not None:
        # a folder inside the run is its own (the run folder may have been moved or copied)
        same_run = out.resolve().parent == run.resolve() or \
            isinstance(summary.get("run"), str) and Path(summary["run"]).resolve() == run.resolve()
        if same_run and summary.get("data") == mine and summary["protocol"] == label:
            return  # evaluated again: replaced
        raise FacesketchError(f"{out} holds an evaluation of {summary.get('run') or 'another run'} on "
                              f"{_measured_on(summary.get('data'), summary['protocol'])}, not of {run} on "
                              f"{_measured_on(mine, label)}; give --out a new or empty folder")
    foreign = [e.name + ("/" if e.is_dir() else "") for e in entries if not _written_by_evaluate(e)]
    if foreign or all(e.name == "summary.json" for e in entries):
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise FacesketchError(f"{out} is not empty and holds no facesketch evaluation (it holds "
                              f"{shown or 'a summary.json'}); give --out a new or empty folder")


def _load_pairs(pairs: list[Pair], source: str, **kwargs) -> PairDataset:
    """PairDataset of `pairs`; a gone, truncated or corrupt image is named in one line."""
    gone = [str(f) for p in pairs for f in (p.photo, p.sketch) if not f.is_file()]
    if gone:
        more = f" and {len(gone) - 3} more" if len(gone) > 3 else ""
        raise FacesketchError(f"{source} names images that are gone: {', '.join(gone[:3])}{more}")
    try:
        return PairDataset(pairs, **kwargs)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        for f in (f for p in pairs for f in (p.photo, p.sketch)):
            try:
                open_image(f)
            except (OSError, ValueError, Image.DecompressionBombError) as bad:
                raise FacesketchError(f"{f}: unreadable or truncated image, named by {source} ({bad})") from None
        raise FacesketchError(f"{source}: cannot load its images ({e})") from None


def _dataset_info(pairs: list[Pair]) -> dict:
    """{"path": the folder holding all the pairs' files, "pairs", "cufs_student"}."""
    root = os.path.commonpath([str(Path(f).resolve()) for p in pairs for f in (p.photo, p.sketch)]) if pairs else ""
    return {"path": root, "pairs": len(pairs), "cufs_student": is_cufs_student(pairs)}


def _test_set(run: Path, cfg: RunConfig, own: Split, data: Path | None, protocol: str | None):
    """(test pairs, views scored, protocol label, source for messages, dataset info, notes)."""
    if data is None:
        if not own.test:
            raise FacesketchError(f"{run}/split.csv lists no test pairs; nothing to evaluate")
        return own.test, own.test_views, cfg.protocol, f"{run}/split.csv", _dataset_info(own.train + own.test), []
    test, views, label, source, dataset, notes, _ = _data_test_set(data, protocol, seed=cfg.seed,
                                                                   test_fraction=cfg.test_fraction)
    return test, views, label, source, dataset, notes


def _data_test_set(data: Path, protocol: str | None, *, seed: int, test_fraction: float | None = None):
    """(test pairs, views, protocol label, source, dataset info, notes, training pairs) of --data DIR
    under --protocol P (None: every pair is a test pair, original view; no training pairs)."""
    found = find_pairs(data)
    if found.problems:
        more = len(found.problems) - 2
        shown = "; ".join(found.problems[:2]) + (f"; ... {more} more" if more > 0 else "")
        raise FacesketchError(f"--data {data} is not usable ({shown}); see `facesketch data check {data}`")
    if protocol is None:  # every pair is a test pair, as it is (original view)
        test, views, notes, train = found.pairs, (0,), [], []
    else:
        split = make_split(found.pairs, protocol, seed=seed,
                           test_fraction=test_fraction if protocol == "random" else None)
        test, views, notes, train = split.test, split.test_views, list(split.notes), split.train
    if not test:
        raise FacesketchError(f"--data {data}: protocol {protocol!r} leaves no test pairs")
    return test, views, protocol or "all", f"--data {data}", _dataset_info(found.pairs), notes, train


def evaluate(run: str | Path, *, data: str | Path | None = None, protocol: str | None = None,
             out: Path | None = None, device: str = "auto", save_images: bool = True, progress: bool = True,
             layout: str = "auto", precision: str = "fp32") -> dict:
    """Evaluate a run folder on its test split (or on the pairs of `data`); writes `out` (default
    eval_dir_for(run, data, protocol)): pred/*.png, metrics.csv, test_pairs.csv, summary.json."""
    run, data = Path(run), Path(data) if data is not None else None
    if protocol is not None and data is None:
        raise FacesketchError("--protocol chooses the test split of --data; give --data too "
                              "(a run's own split is fixed in its split.csv)")
    check_device(device)
    out = Path(out) if out else eval_dir_for(run, data, protocol)
    if out.exists() and not out.is_dir():
        raise FacesketchError(f"--out {out} is a file; expected a folder for the evaluation")
    sha = file_sha256(run / MODEL_FILE) if (run / MODEL_FILE).is_file() else None  # before loading: never newer
    model, cfg = load_run_model(run)
    check_out_dir(out, run, data, cfg.protocol if data is None else protocol or "all")
    meta = load_meta(run / MODEL_FILE)
    own = read_split_manifest(run / "split.csv", cfg.protocol)
    test_pairs, views, label, source, dataset, notes = _test_set(run, cfg, own, data, protocol)
    check_split_unchanged(run, meta)  # after reading it: a malformed split.csv is named for what is wrong
    left = unfinished(cfg, meta)
    trained_on = {str(p.photo.resolve()) for p in own.train}
    overlap = sum(str(p.photo.resolve()) in trained_on for p in test_pairs)
    if overlap:
        notes.append(overlap_note(overlap, len(test_pairs)))
    said = ([unfinished_note(run, left)] if left else []) + notes  # the summary keeps the first as "unfinished"
    for note in said if progress else ():
        print(f"note: {note}", flush=True)
    dev = resolve_device(device)
    kwargs = dict(size=model.image_size, direction=cfg.direction)
    test = _load_pairs(test_pairs, source, views=views, **kwargs)
    # identification's descriptor is always fit on the run's OWN training targets
    train = _load_pairs(own.train, f"{run}/split.csv", views=(0,), **kwargs)
    summary = {"model": cfg.model, "direction": cfg.direction, "protocol": label, "test_pairs": len(test_pairs),
               "views": list(views), "run": str(run.resolve()), "weights_sha256": sha, "dataset": dataset,
               "data": str(data.resolve()) if data is not None else None,
               "trained_on": _dataset_info(own.train + own.test)["path"],
               "train_overlap": overlap, "notes": notes, "unfinished": left}
    return _score(model, test, train, out, summary, device=dev, save_images=save_images, progress=progress,
                  layout=layout, precision=precision)


def tune_inference(model, name: str, device: torch.device, layout: str, precision: str,
                   batch: int = 4, quiet: bool = False) -> tuple[torch.nn.Module, str, str]:
    """(the model placed in the chosen layout, layout, precision) for --layout/--precision (auto:
    facesketch.autotune.choose_inference, timed at `batch`: small, so that the timing costs little)."""
    from facesketch.autotune import choose_inference, describe, placed
    uses_view = model_spec(name).uses_view

    def forward(m, x):
        return m(x, view=torch.zeros(len(x), dtype=torch.long, device=x.device)) if uses_view else m(x)
    model.to(device)
    (layout, precision), info = choose_inference(name, model, batch, device, layout=layout, precision=precision,
                                                 forward=forward)
    if not quiet and info["source"] != "asked":
        line = describe((layout, precision), {**info, "seconds_per_step": info.get("seconds_per_batch")})
        print(f"inference: {line}", flush=True)
    return placed(model, layout), layout, precision


def _score(model, test: PairDataset, train: PairDataset, out: Path, summary: dict, *, device: torch.device,
           save_images: bool, progress: bool, layout: str = "auto", precision: str = "fp32") -> dict:
    """Predict `test` (its pairs and views), score every image, identify view-0 predictions among the
    test targets with a descriptor fit on `train`'s targets; write out/ and return the summary
    (`summary` holds model, direction, protocol and where the numbers come from)."""
    model, layout, precision = tune_inference(model, summary["model"], device, layout, precision, quiet=not progress)
    sketch = summary["direction"] == "photo2sketch"
    out.mkdir(parents=True, exist_ok=True)
    for old in (out / PRED_DIR).glob("*.png"):  # an earlier evaluation's predictions must not linger
        if is_pred_filename(old.name):
            old.unlink()
    if save_images:
        (out / PRED_DIR).mkdir(exist_ok=True)
    elif (out / PRED_DIR).is_dir() and not any((out / PRED_DIR).iterdir()):
        (out / PRED_DIR).rmdir()
    rows, probes, gallery = [], {}, {}
    for src, tgt, pred, stem, view in predict_dataset(model, test, name=summary["model"], progress=progress,
                                                      device=device, layout=layout, precision=precision):
        m = image_metrics(pred.transpose(1, 2, 0), tgt.transpose(1, 2, 0), sketch=sketch)
        rows.append({"name": item_name(stem, view), **{k: round(v, 6) for k, v in m.items()}})
        if save_images:
            to_uint8_image(pred).save(out / PRED_DIR / pred_filename(stem, view))
        if view == 0:
            probes[stem], gallery[stem] = pred.transpose(1, 2, 0), tgt.transpose(1, 2, 0)
    train_targets = (train.sketches if sketch else train.photos).permute(0, 2, 3, 1).numpy() / 255.0
    stems = sorted(probes)
    ident = identification(PCADescriptor(train_targets), np.stack([probes[s] for s in stems]),
                           np.stack([gallery[s] for s in stems])) if len(stems) > 1 and len(train_targets) else {}
    summary = {**summary, "n": len(rows), "image_size": model.image_size, "metrics": average(rows),
               "identification": ident, "metric_settings": SETTINGS, "device": str(device),
               "inference": {"layout": layout, "precision": precision}}
    _write_csv(out / "metrics.csv", rows)
    write_split_manifest(Split(summary["protocol"], [], list(test.pairs), (0,), tuple(summary["views"])),
                         out / "test_pairs.csv")
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    tmp.replace(out / "summary.json")
    return summary


def shipped_eval_dir(name: str, direction: str, data: Path, protocol: str | None) -> Path:
    """runs/shipped-<model>-<direction>/eval-<data name>[-<protocol>]: the default --out."""
    return eval_dir_for(Path("runs") / f"shipped-{name}-{direction}", data, protocol)


def evaluate_shipped(name: str, direction: str, data: str | Path, *, protocol: str | None = None,
                     out: Path | None = None, device: str = "auto", save_images: bool = True,
                     progress: bool = True, layout: str = "auto", precision: str = "fp32") -> dict:
    """Score the weights that ship with the package for `name`/`direction` on the pairs of `data`
    (every pair, original view; or the test split of `protocol`), like `evaluate RUN --data`.
    Identification fits its descriptor on the split's training targets (on the test targets
    themselves when every pair is a test pair). Test pairs whose photo the weights were trained on
    (by content) are counted and said."""
    from facesketch.direction import DIRECTIONS
    from facesketch.shipped import load_shipped, seen_photos, shipped_path
    if direction not in DIRECTIONS:
        raise FacesketchError(f"--direction must be {' or '.join(DIRECTIONS)}, got {direction!r}")
    direction = DIRECTIONS[DIRECTIONS.index(direction)]  # a Direction member, too, becomes its plain name
    check_device(device)
    dev = resolve_device(device)  # an unavailable device is said before any work
    data = Path(data)
    weights = shipped_path(name, direction)
    model, meta = load_shipped(name, direction)
    out = Path(out) if out else shipped_eval_dir(name, direction, data, protocol)
    check_out_dir(out, weights, data, protocol or "all")
    test_pairs, views, label, source, dataset, notes, train_pairs = _data_test_set(data, protocol, seed=0)
    seen = seen_photos(meta)
    overlap = sum(file_sha256(p.photo) in seen for p in test_pairs)
    if overlap:
        notes.append(f"{overlap} of the {len(test_pairs)} test pairs are photos the shipped weights were trained "
                     "on, so these numbers are not a fair test")
    for note in notes if progress else ():
        print(f"note: {note}", flush=True)
    kwargs = dict(size=model.image_size, direction=direction)
    test = _load_pairs(test_pairs, source, views=views, **kwargs)
    train = _load_pairs(train_pairs or test_pairs, source, views=(0,), **kwargs)
    summary = {"model": name, "direction": direction, "protocol": label, "test_pairs": len(test_pairs),
               "views": list(views), "run": str(weights.resolve()), "weights_sha256": file_sha256(weights),
               "dataset": dataset, "data": str(data.resolve()), "trained_on": meta.get("trained_on", "CUFS"),
               "descriptor_fit_on": "the split's training targets" if train_pairs else "the test targets",
               "train_overlap": overlap, "notes": notes, "unfinished": None, "shipped": True}
    return _score(model, test, train, out, summary, device=dev, save_images=save_images, progress=progress,
                  layout=layout, precision=precision)


def _write_csv(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["name", *ALL_METRICS])
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)
