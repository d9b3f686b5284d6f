"""Run folders as evaluation and reports read them: checked, hashed, their summaries kept current.

A run folder holds config.yaml, split.csv and model.safetensors (written by `facesketch train`);
RUN/eval/ holds its evaluation on its own test split, RUN/eval-<data>/ one on another dataset
(`facesketch evaluate RUN --data DIR`). A summary.json counts only while its "weights_sha256"
is the hash of the weights beside it: anything else is evaluated again, never reported stale.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

from facesketch import FacesketchError
from facesketch.checkpoint import MODEL_FILE, file_sha256, load_meta
from facesketch.config import RunConfig
from facesketch.data.pairs import Pair
from facesketch.data.protocols import read_split_manifest
from facesketch.metrics import ALL_METRICS

REQUIRED = ("config.yaml", "split.csv", MODEL_FILE)
SUMMARY_KEYS = ("model", "direction", "protocol", "n", "image_size", "metrics", "weights_sha256", "dataset")
IDENT_KEYS = ("n", "rank1", "rank5", "chance_rank1", "chance_rank5")
HISTORY_NUMBERS = ("epoch", "train_loss", "test_loss", "seconds")
CUFS_STUDENT_PAIRS, CUFS_STANDARD_TRAIN = 188, 88
_CUFS_PHOTO = re.compile(r"^[fm]1?-\d{3}-01$")
_CUFS_STANDARD_SKETCH = re.compile(r"^([FM])2-(\d{3}-01)-sz1$")
_STANDARD = {"F": range(5, 39), "M": range(8, 63)}  # the literature's 88 training identities (m-020 absent)
PRED_DIR = "pred"  # EVAL/pred/ holds one PNG per test image, named by pred_filename
_PRED_FILE = re.compile(r"_v[0-7]\.png$")


def item_name(stem: str, view: int) -> str:
    """A test image's name in metrics.csv: the pair's stem and its view, '<stem>/v<view>'."""
    return f"{stem}/v{view}"


def pred_filename(stem: str, view: int) -> str:
    """The PNG of the prediction for pair `stem` in `view`, inside EVAL/pred/: '<stem>_v<view>.png'."""
    return f"{stem}_v{view}.png"


def is_pred_filename(name: str) -> bool:
    """Whether a file name is one pred_filename writes (and a new evaluation may replace)."""
    return _PRED_FILE.search(name) is not None


def check_run_dir(run: Path) -> None:
    if not run.is_dir():
        raise FacesketchError(f"{run}: run folder does not exist")
    missing = [name for name in REQUIRED if not (run / name).is_file()]
    if missing:
        hint = " (training did not finish an epoch; resume it with `facesketch train ... --resume`)" \
            if MODEL_FILE in missing and (run / "config.yaml").exists() else ""
        raise FacesketchError(f"{run}: not a complete run folder, missing {', '.join(missing)}{hint}")




def check_split_unchanged(run: Path, meta: dict) -> None:
    """split.csv must be the one the weights were trained with: their metadata records its hash
    ("split_sha256"; runs trained before it was recorded are not checked). An edited split would
    score other pairs, or training pairs, as the test set."""
    saved = meta.get("split_sha256")
    if saved and file_sha256(run / "split.csv") != saved:
        raise FacesketchError(f"{run / 'split.csv'} changed since training (its sha256 is not the one recorded in "
                              f"{run / MODEL_FILE}); restore it, or train the run again on the new split")


def unfinished(cfg: RunConfig, meta: dict) -> dict | None:
    """{"epochs": trained, "of": planned} for a run stopped before the end of its schedule (Ctrl-C,
    a crash); None for a finished run, a baseline (no schedule) or weights that record no epoch."""
    planned, done = sum(e for _, e in cfg.stages()), meta.get("epoch")
    return {"epochs": done, "of": planned} if isinstance(done, int) and done < planned else None


def unfinished_note(run: Path, left: dict) -> str:
    return (f"{run} is unfinished: trained {left['epochs']} of {left['of']} epochs; its numbers are not the "
            f"finished model's (finish it with `facesketch train ... --resume`)")


def overlap_note(overlap: int, total: int) -> str:
    """The note of an evaluation on other data that holds pairs the run trained on."""
    return f"{overlap} of the {total} test pairs were training pairs of this run, so these numbers are not a fair test"


def check_weights_agree(run: Path, cfg: RunConfig, meta: dict, keys=("model", "direction", "protocol")) -> None:
    """The weights' own metadata against config.yaml: a disagreement (a hand-edited or swapped
    file) is an error naming both values, since either could be the wrong one."""
    for key in keys:
        mine = getattr(cfg, key)
        if key == "model_kwargs":  # the metadata went through JSON: compare like with like
            mine = json.loads(json.dumps(mine, default=str))
        if key in meta and meta[key] != mine:
            raise FacesketchError(f"{run / 'config.yaml'} says {key} {mine!r} but {run / MODEL_FILE} was trained "
                                  f"with {key} {meta[key]!r}; restore config.yaml or retrain")


def is_cufs_student(pairs: list[Pair]) -> bool:
    """True for the 188-pair CUFS student set (the data behind the report's published numbers):
    CUFS photo names, and exactly the 88 standard training sketches named F2-/M2-...-sz1 with
    every other sketch named <photo stem>-sz1. CUFS-like names alone (the synthetic faces) do not count."""
    if len(pairs) != CUFS_STUDENT_PAIRS or len({p.photo.stem for p in pairs}) != CUFS_STUDENT_PAIRS:
        return False
    standard = 0
    for p in pairs:
        if not _CUFS_PHOTO.match(p.photo.stem):
            return False
        m = _CUFS_STANDARD_SKETCH.match(p.sketch.stem)
        if m:
            own_photo = p.photo.stem == f"{m.group(1).lower()}-{m.group(2)}"
            if not own_photo or int(m.group(2)[:3]) not in _STANDARD[m.group(1)]:
                return False
            standard += 1
        elif p.sketch.stem != p.photo.stem + "-sz1":
            return False
    return standard == CUFS_STANDARD_TRAIN


def read_summary(path: Path) -> tuple[dict | None, str]:
    """(summary, '') when path holds a complete summary.json, else (None, why not)."""
    if not path.is_file():
        return None, "is missing"
    try:
        summary = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return None, f"is unreadable ({e})"
    if not isinstance(summary, dict):
        return None, "is not a JSON object"
    missing = [k for k in SUMMARY_KEYS if k not in summary]
    if missing:
        return None, f"lacks {', '.join(missing)} (written by an older facesketch?)"
    n, metrics, ident, dataset = summary["n"], summary["metrics"], summary.get("identification"), summary["dataset"]
    if not isinstance(n, int) or n < 1:
        return None, f"counts no test images (n={n!r})"
    if not isinstance(metrics, dict) or not all(isinstance(metrics.get(k), (int, float)) for k in ALL_METRICS):
        return None, f"lacks metrics (expected {', '.join(ALL_METRICS)})"
    if not all(isinstance(summary[k], str) for k in ("model", "direction", "protocol")) \
            or not isinstance(summary.get("data"), (str, type(None))) or not isinstance(dataset, dict) \
            or not isinstance(dataset.get("path"), str) or not isinstance(dataset.get("pairs"), int) \
            or not (ident in ({}, None) or isinstance(ident, dict) and set(IDENT_KEYS) <= set(ident)):
        return None, "does not have the fields facesketch writes"
    return summary, ""


def read_history(path: Path) -> list[dict]:
    """history.csv rows (strings, checked to parse); [] when the run has none (baselines)."""
    if not path.exists():
        return []
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in ("stage", "loss") + HISTORY_NUMBERS if c not in (reader.fieldnames or ())]
            if missing:
                raise FacesketchError(f"{path}: expected a training history with columns stage, loss, "
                                      f"{', '.join(HISTORY_NUMBERS)}; missing {', '.join(missing)}")
            rows = []
            for row in reader:
                try:
                    for k in HISTORY_NUMBERS:
                        float(row[k])
                    int(row["epoch"])
                except (TypeError, ValueError):
                    shown = ", ".join(f"{k}={row[k]!r}" for k in HISTORY_NUMBERS)
                    raise FacesketchError(f"{path}:{reader.line_num}: expected numbers (epoch an integer), "
                                          f"got {shown}") from None
                rows.append(row)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise FacesketchError(f"{path}: cannot read the training history ({e})") from None
    return rows


def evaluated_pairs(entry: dict) -> list[Pair]:
    """The test pairs an entry of load_run was scored on (eval's test_pairs.csv, else split.csv)."""
    listed = entry["eval"] / "test_pairs.csv"
    return read_split_manifest(listed if listed.is_file() else entry["path"] / "split.csv").test


def locate(path: Path) -> tuple[Path, Path]:
    """A run folder -> (run, run/eval); an evaluation folder RUN/eval-<data> -> (RUN, it)."""
    path = Path(path)
    if not (path / "config.yaml").exists() and path.name.startswith("eval") and (path.parent / "config.yaml").exists():
        return path.parent, path
    return path, path / "eval"


def current_summary(run: Path, eval_dir: Path, *, progress: bool = True) -> dict:
    """eval_dir's summary when it belongs to run's current weights; otherwise evaluate again,
    saying so (the data and protocol of a cross-dataset evaluation come from its old summary)."""
    from facesketch.evaluate import evaluate
    summary, why = read_summary(eval_dir / "summary.json")
    if summary is not None and summary["weights_sha256"] != file_sha256(run / MODEL_FILE):
        old, summary, why = summary, None, f"belongs to other weights than the current {run / MODEL_FILE}"
    else:
        old = summary
    if summary is not None:
        return summary
    if old is None and eval_dir != run / "eval":
        raise FacesketchError(f"{eval_dir / 'summary.json'} {why}, so what it measured is unknown; evaluate "
                              f"again with `facesketch evaluate {run} --data DIR --out {eval_dir}`")
    data = (old or {}).get("data")
    protocol = old["protocol"] if data and old["protocol"] != "all" else None
    print(f"note: {eval_dir / 'summary.json'} {why}; evaluating {run}{' on ' + data if data else ''}",
          file=sys.stderr, flush=True)
    return evaluate(run, data=data, protocol=protocol, out=eval_dir, progress=progress)


def load_run(path: Path, *, progress: bool = True) -> dict:
    """One entry of a report: {path (the run), eval (its evaluation folder), summary, cfg, meta, history,
    unfinished (see unfinished())}."""
    run, eval_dir = locate(path)
    check_run_dir(run)
    cfg = RunConfig.load(run / "config.yaml")
    meta = load_meta(run / MODEL_FILE)
    check_weights_agree(run, cfg, meta)
    check_split_unchanged(run, meta)
    summary = current_summary(run, eval_dir, progress=progress)
    return {"path": run, "eval": eval_dir, "summary": summary, "cfg": cfg, "meta": meta,
            "history": read_history(run / "history.csv"), "unfinished": unfinished(cfg, meta)}
