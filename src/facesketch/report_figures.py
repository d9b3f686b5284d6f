"""The report's figures: labels for its columns, sample grids of predictions, training loss curves."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from facesketch.data.images import load_array  # noqa: E402
from facesketch.runs import PRED_DIR, evaluated_pairs, pred_filename  # noqa: E402

GRID_FACES = 4
TILE = 128


def run_label(run: dict, *, data: bool = True) -> str:
    """The model (+gan), '(unfinished N/M)' for a run stopped before the end of its schedule; with
    data, where the model of an evaluation on other data (`evaluate --data`) was trained."""
    s, left = run["summary"], run.get("unfinished")
    label = s["model"] + ("+gan" if run["cfg"].gan else "") + (f" (unfinished {left['epochs']}/{left['of']})"
                                                             if left else "")
    return label + (f" [trained on {Path(s.get('trained_on') or '?').name}]" if data and s.get("data") else "")


def column_labels(rs: list[dict]) -> list[str]:
    """Column labels, the run folder added where two would read alike."""
    labels = [run_label(r) for r in rs]
    return [f"{lab} ({r['path'].name})" if labels.count(lab) > 1 else lab for lab, r in zip(labels, rs)]


def _tile(path: Path) -> Image.Image:
    try:
        return Image.fromarray(load_array(path, TILE)).convert("RGB")
    except (OSError, ValueError):  # gone since evaluation: a grey tile, the numbers still stand
        return Image.new("RGB", (TILE, TILE), (200, 200, 200))


def sample_grid(runs: list[dict], direction: str) -> Image.Image | None:
    """Rows: the first run's first test faces (original view); columns: input, ground truth, each
    model's prediction of that same face (grey where a run was not tested on it)."""
    rs = [r for r in runs if r["summary"]["direction"] == direction]
    if not rs:
        return None
    faces = evaluated_pairs(rs[0])[:GRID_FACES]
    tested = [{str(p.photo.resolve()): p.stem for p in evaluated_pairs(r)} for r in rs]
    cols = ["input", "ground truth"] + column_labels(rs)
    grid = Image.new("RGB", (TILE * len(cols), 18 + TILE * len(faces)), "white")
    draw = ImageDraw.Draw(grid)
    for j, name in enumerate(cols):
        draw.text((j * TILE + 4, 3), name, fill=(0, 0, 0))
    for i, pair in enumerate(faces):
        src, tgt = (pair.photo, pair.sketch) if direction == "photo2sketch" else (pair.sketch, pair.photo)
        tiles = [_tile(src), _tile(tgt)]
        for r, stems in zip(rs, tested):
            stem = stems.get(str(pair.photo.resolve()))
            tiles.append(_tile(r["eval"] / PRED_DIR / pred_filename(stem, 0)) if stem else _tile(Path("")))
        for j, t in enumerate(tiles):
            grid.paste(t, (j * TILE, 18 + i * TILE))
    return grid


def loss_figure(runs: list[dict], direction: str) -> Image.Image | None:
    """One panel per trained run: train and test loss per epoch, a grey line where a stage starts."""
    seen, rs = set(), []
    for r in runs:  # a run evaluated on several data sets has one history
        if r["summary"]["direction"] == direction and r["history"] and r["path"] not in seen:
            seen.add(r["path"])
            rs.append(r)
    if not rs:
        return None
    fig, axes = plt.subplots(1, len(rs), figsize=(3.2 * len(rs), 2.8), squeeze=False)
    for ax, r in zip(axes[0], rs):
        h = r["history"]
        epochs = [int(x["epoch"]) for x in h]
        ax.plot(epochs, [float(x["train_loss"]) for x in h], marker="o", ms=3, label="train")
        ax.plot(epochs, [float(x["test_loss"]) for x in h], marker="o", ms=3, ls="--", label="test")
        for x_prev, x in zip(h, h[1:]):
            if x["stage"] != x_prev["stage"]:
                ax.axvline(int(x["epoch"]) - 0.5, color="grey", lw=0.8)
        losses = "/".join(dict.fromkeys(x["loss"] for x in h))
        ax.set_title(f"{run_label(r, data=False)} ({losses})", fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    fig.suptitle(f"training loss, {direction}", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return Image.open(io.BytesIO(buf.getvalue()))
