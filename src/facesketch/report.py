"""`facesketch report RUN... -o DIR`: the comparison, laid out like the report's Tables I/II.

Writes DIR/report.md (with PNGs beside it) and DIR/report.html (self-contained: images are
embedded, no network needed). Per direction: a metric table (rows = metrics, columns = models
and baselines, the report's published numbers beside ours on the paper protocol), a sample grid
(input, ground truth, each model), training loss curves, identification accuracy, run facts.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from facesketch import FacesketchError  # noqa: E402
from facesketch.config import RunConfig  # noqa: E402
from facesketch.data.protocols import read_split_manifest  # noqa: E402
from facesketch.evaluate import check_run_dir, evaluate  # noqa: E402
from facesketch.metrics import ALL_METRICS, HIGHER_IS_BETTER, SETTINGS  # noqa: E402

MODEL_ORDER = ("dense_ae", "conv_ae", "hybrid_ae", "unet", "pencil", "grey", "mean")
DIRECTIONS = ("photo2sketch", "sketch2photo")
# The report's Tables I and II (spec section 4): paper protocol, paper metrics
PUBLISHED = {
    "photo2sketch": {"dense_ae": {"mae_median": 0.162, "rmse": 0.266, "ssim_paper": 0.642},
                     "conv_ae": {"mae_median": 0.171, "rmse": 0.274, "ssim_paper": 0.739},
                     "hybrid_ae": {"mae_median": 0.150, "rmse": 0.269, "ssim_paper": 0.727}},
    "sketch2photo": {"dense_ae": {"mae_median": 0.064, "rmse": 0.136, "ssim_paper": 0.735},
                     "conv_ae": {"mae_median": 0.051, "rmse": 0.121, "ssim_paper": 0.824},
                     "hybrid_ae": {"mae_median": 0.055, "rmse": 0.130, "ssim_paper": 0.801}},
}
GRID_FACES = 4
TILE = 128


def _label(run: dict) -> str:
    return run["summary"]["model"] + ("+gan" if run["cfg"].gan else "")


def load_runs(paths: list[Path], *, progress: bool = True) -> list[dict]:
    runs = []
    for path in paths:
        path = Path(path)
        check_run_dir(path)
        summary_file = path / "eval" / "summary.json"
        summary = json.loads(summary_file.read_text()) if summary_file.exists() else evaluate(path, progress=progress)
        history = []
        if (path / "history.csv").exists():
            with (path / "history.csv").open() as f:
                history = list(csv.DictReader(f))
        runs.append({"path": path, "summary": summary, "cfg": RunConfig.load(path / "config.yaml"), "history": history})
    if not runs:
        raise FacesketchError("no run folders given")
    order = {m: i for i, m in enumerate(MODEL_ORDER)}
    runs.sort(key=lambda r: (order.get(r["summary"]["model"], 99), r["cfg"].gan))
    return runs


def _fmt(metric: str, v: float | None) -> str:
    if v is None:
        return ""
    return f"{v:.2f}" if metric == "psnr" else f"{v:.3f}"


def metric_table(runs: list[dict], direction: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows (rows = metrics) for one direction; best of ours marked with **."""
    rs = [r for r in runs if r["summary"]["direction"] == direction]
    protocol = rs[0]["summary"]["protocol"] if rs else ""
    published = PUBLISHED[direction] if protocol == "paper" else {}
    header = ["metric"] + [_label(r) for r in rs] + [f"{m} (report)" for m in published]
    rows = []
    for metric in ALL_METRICS:
        values = [r["summary"]["metrics"].get(metric) for r in rs]
        best = (max if metric in HIGHER_IS_BETTER else min)(v for v in values if v is not None) if values else None
        cells = [f"**{_fmt(metric, v)}**" if v == best else _fmt(metric, v) for v in values]
        cells += [_fmt(metric, published[m].get(metric)) for m in published]
        rows.append([metric + (" ^" if metric in HIGHER_IS_BETTER else "")] + cells)
    return header, rows


def ident_table(runs: list[dict], direction: str) -> tuple[list[str], list[list[str]]]:
    header = ["model", "rank-1", "rank-5", "chance rank-1", "chance rank-5", "gallery"]
    rows = []
    for r in runs:
        i = r["summary"].get("identification") or {}
        if r["summary"]["direction"] == direction and i:
            rows.append([_label(r), f"{i['rank1']:.2f}", f"{i['rank5']:.2f}", f"{i['chance_rank1']:.2f}",
                         f"{i['chance_rank5']:.2f}", str(i["n"])])
    return header, rows


def facts_table(runs: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = ["run", "data", "protocol", "train/test pairs", "test images", "size", "epochs", "device", "train time"]
    rows = []
    for r in runs:
        c, s = r["cfg"], r["summary"]
        split = read_split_manifest(r["path"] / "split.csv")
        seconds = sum(float(h["seconds"]) for h in r["history"])
        rows.append([r["path"].name, c.data or f"synthetic (n={c.synthetic_n}, seed {c.seed})", c.protocol,
                     f"{len(split.train)}/{len(split.test)}", str(s["n"]), str(s["image_size"]),
                     str(len(r["history"])) if r["history"] else "-", c.device, f"{seconds:.0f} s"])
    return header, rows


def sample_grid(runs: list[dict], direction: str) -> Image.Image | None:
    """Rows: test faces (identity view); columns: input, ground truth, each model's prediction."""
    from facesketch.data.images import load_array
    rs = [r for r in runs if r["summary"]["direction"] == direction]
    if not rs:
        return None
    split = read_split_manifest(rs[0]["path"] / "split.csv")
    faces = split.test[:GRID_FACES]
    cols = ["input", "ground truth"] + [_label(r) for r in rs]
    grid = Image.new("RGB", (TILE * len(cols), 18 + TILE * len(faces)), "white")
    draw = ImageDraw.Draw(grid)
    for j, name in enumerate(cols):
        draw.text((j * TILE + 4, 3), name, fill=(0, 0, 0))
    for i, pair in enumerate(faces):
        src, tgt = (pair.photo, pair.sketch) if direction == "photo2sketch" else (pair.sketch, pair.photo)
        tiles = [Image.fromarray(load_array(p, TILE)) for p in (src, tgt)]
        for r in rs:
            pred = r["path"] / "eval" / "pred" / f"{pair.stem}_v0.png"
            tiles.append(Image.open(pred).convert("RGB").resize((TILE, TILE), Image.BILINEAR) if pred.exists()
                         else Image.new("RGB", (TILE, TILE), (200, 200, 200)))
        for j, t in enumerate(tiles):
            grid.paste(t, (j * TILE, 18 + i * TILE))
    return grid


def loss_figure(runs: list[dict], direction: str) -> Image.Image | None:
    rs = [r for r in runs if r["summary"]["direction"] == direction and r["history"]]
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
        ax.set_title(f"{_label(r)} ({losses})", fontsize=9)
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


def _md_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _html_table(header, rows) -> str:
    cell = lambda c: html.escape(c).replace("**", "") if not c.startswith("**") else f"<b>{html.escape(c[2:-2])}</b>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _b64(im: Image.Image) -> str:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


CSS = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}"
       "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;"
       "text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}img{max-width:100%}")


def write_report(run_paths: list[Path], out: Path, *, title: str = "facesketch comparison", progress: bool = True) -> Path:
    """Write out/report.md and out/report.html for the given runs; returns the HTML path."""
    runs = load_runs(run_paths, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    protocols = sorted({r["summary"]["protocol"] for r in runs})
    intro = (f"Protocol: {', '.join(protocols)}. Metrics per test image, averaged; '^' = higher is better, "
             "bold = best of our runs. Baselines (pencil, grey, mean) learned nothing: a model that does not beat "
             "them has not learned the task.")
    md, htm = [f"# {title}", "", intro, ""], [f"<h1>{html.escape(title)}</h1><p>{html.escape(intro)}</p>"]
    for direction in DIRECTIONS:
        if not any(r["summary"]["direction"] == direction for r in runs):
            continue
        md += [f"## {direction}", ""]
        htm.append(f"<h2>{direction}</h2>")
        header, rows = metric_table(runs, direction)
        md += [_md_table(header, rows), ""]
        htm.append(_html_table(header, rows))
        for kind, image in (("grid", sample_grid(runs, direction)), ("loss", loss_figure(runs, direction))):
            if image is None:
                continue
            name = f"{kind}_{direction}.png"
            image.save(out / name)
            caption = "input, ground truth, then each model" if kind == "grid" else "training loss per epoch"
            md += [f"![{caption}]({name})", ""]
            htm.append(f"<p><img alt='{caption}' src='data:image/png;base64,{_b64(image)}'></p>")
        header, rows = ident_table(runs, direction)
        if rows:
            md += ["Identification (probe = generated image, gallery = real test targets):", "", _md_table(header, rows), ""]
            htm.append("<h3>Identification</h3>" + _html_table(header, rows))
    md += ["## Metric settings", ""] + [f"- `{k}`: {v}" for k, v in SETTINGS.items()] + [
        "- FSIM: not reported; no well-kept implementation installs without torchvision.", ""]
    htm.append("<h2>Metric settings</h2><ul>" + "".join(f"<li><code>{k}</code>: {html.escape(v)}</li>"
                                                        for k, v in SETTINGS.items()) + "</ul>")
    header, rows = facts_table(runs)
    md += ["## Runs", "", _md_table(header, rows), ""]
    htm.append("<h2>Runs</h2>" + _html_table(header, rows))
    (out / "report.md").write_text("\n".join(md))
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(htm)}</body></html>")
    (out / "report.html").write_text(page)
    return out / "report.html"
