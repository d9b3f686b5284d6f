"""`facesketch report RUN... -o DIR`: the comparison, laid out like the report's Tables I/II.

Writes DIR/report.md (with PNGs beside it) and DIR/report.html (self-contained: images are
embedded, no network needed). Per direction and per test set (data + protocol): a metric table
(rows = metrics, columns = models and baselines; the report's published numbers beside ours only
for runs on the paper protocol of the 188-pair CUFS student set) and a sample grid (input, ground
truth, each model); then training loss curves and identification accuracy; finally run facts.
Each RUN is a run folder (its eval/) or an evaluation folder RUN/eval-<data> from `evaluate --data`;
a summary that is missing, unreadable or from other weights is evaluated again first (runs.py).
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from PIL import Image

from facesketch import FacesketchError
from facesketch.data.protocols import read_split_manifest
from facesketch.direction import DIRECTIONS
from facesketch.metrics import ALL_METRICS, HIGHER_IS_BETTER, SETTINGS
from facesketch.registry import list_models, model_spec
from facesketch.report_figures import column_labels, loss_figure, run_label, sample_grid
from facesketch.runs import evaluated_pairs, load_run, overlap_note

MODEL_ORDER = tuple(list_models())  # registration order: the report's models, then ours, then baselines


def published_numbers(direction: str) -> dict[str, dict[str, float]]:
    """The report's Tables I/II for one direction, {model: {metric: value}} (paper protocol on the
    CUFS student set, paper metrics), from each model's spec, in MODEL_ORDER."""
    return {m: model_spec(m).published[direction] for m in MODEL_ORDER if direction in model_spec(m).published}


def _data_name(s: dict) -> str:
    return Path(s["dataset"]["path"]).name or s["dataset"]["path"]


def comparable_with_report(run: dict) -> bool:
    """Only the report's own setting (paper protocol, CUFS student set, trained on it) compares
    with its published numbers."""
    s = run["summary"]
    return s["protocol"] == "paper" and bool(s["dataset"].get("cufs_student")) and not s.get("data")


def load_runs(paths: list[Path], *, progress: bool = True) -> list[dict]:
    """load_run for each path, in MODEL_ORDER (a model the registry no longer knows last)."""
    if not paths:
        raise FacesketchError("no run folders given")
    runs = [load_run(Path(p), progress=progress) for p in paths]
    order = {m: i for i, m in enumerate(MODEL_ORDER)}
    runs.sort(key=lambda r: (order.get(r["summary"]["model"], 99), r["cfg"].gan))
    return runs


def by_test_set(runs: list[dict], direction: str) -> list[list[dict]]:
    """The runs of one direction grouped by what they were measured on (data, protocol, test pairs)."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        s = r["summary"]
        if s["direction"] == direction:
            pairs = tuple(sorted(str(p.photo) for p in evaluated_pairs(r)))
            groups.setdefault((s["dataset"]["path"], s["protocol"], pairs), []).append(r)
    return list(groups.values())


def test_set_caption(rs: list[dict]) -> str:
    s, d = rs[0]["summary"], rs[0]["summary"]["dataset"]
    what = "the 188-pair CUFS student set" if d.get("cufs_student") else f"{d['pairs']} pairs"
    split = "every pair, original view" if s["protocol"] == "all" else f"protocol {s['protocol']}" + (
        f" (seed {rs[0]['cfg'].seed})" if s["protocol"] == "random" else "")
    n = "/".join(dict.fromkeys(str(r["summary"]["n"]) for r in rs))
    text = f"Measured on {_data_name(s)} ({what}), {split}: {n} test images per model."
    if any(r["summary"].get("data") for r in rs):  # evaluate --data: the data may or may not be new to the run
        text += f" Columns marked [trained on X] were trained on X and measured here on {_data_name(s)}."
    overlap = [f"{run_label(r)}: {r['summary']['train_overlap']} of {r['summary'].get('test_pairs', '?')}"
               for r in rs if r["summary"].get("train_overlap")]
    if overlap:
        text += f" Test pairs that were training pairs of the run (not a fair test): {', '.join(overlap)}."
    # each run's overlap note is said per run just above
    notes = dict.fromkeys(note for r in rs for note in r["summary"].get("notes") or ()
                          if note != overlap_note(r["summary"].get("train_overlap"), r["summary"].get("test_pairs")))
    return text + "".join(f" Note: {note}." for note in notes)


def _fmt(metric: str, v: float | None) -> str:
    return "" if v is None else f"{v:.2f}" if metric == "psnr" else f"{v:.3f}"


def metric_table(runs: list[dict], direction: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows (rows = metrics) for the runs of one direction; best of ours marked with **.
    The published columns come only when a run is comparable with them; other runs are marked."""
    rs = [r for r in runs if r["summary"]["direction"] == direction]
    comparable = [comparable_with_report(r) for r in rs]
    published = published_numbers(direction) if any(comparable) else {}
    labels = [lab if ok or not published else f"{lab} (not comparable)"
              for lab, ok in zip(column_labels(rs), comparable)]
    header = ["metric"] + labels + [f"{m} (report)" for m in published]
    rows = []
    for metric in ALL_METRICS:
        values = [r["summary"]["metrics"].get(metric) for r in rs]
        present = [v for v in values if v is not None]
        best = (max if metric in HIGHER_IS_BETTER else min)(present) if present else None
        cells = [f"**{_fmt(metric, v)}**" if v is not None and v == best else _fmt(metric, v) for v in values]
        cells += [_fmt(metric, published[m].get(metric)) for m in published]
        rows.append([metric + (" ^" if metric in HIGHER_IS_BETTER else "")] + cells)
    return header, rows


def ident_table(runs: list[dict], direction: str) -> tuple[list[str], list[list[str]]]:
    header = ["model", "measured on", "rank-1", "rank-5", "chance rank-1", "chance rank-5", "gallery"]
    rows = []
    for r in runs:
        i = r["summary"].get("identification") or {}
        if r["summary"]["direction"] == direction and i:
            rows.append([run_label(r), _data_name(r["summary"]), f"{i['rank1']:.2f}", f"{i['rank5']:.2f}",
                         f"{i['chance_rank1']:.2f}", f"{i['chance_rank5']:.2f}", str(i["n"])])
    return header, rows


def facts_table(runs: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = ["run", "trained on", "measured on", "protocol", "train/test pairs", "test images", "size", "epochs",
              "device", "train time"]
    rows = []
    for r in runs:
        c, s = r["cfg"], r["summary"]
        split = read_split_manifest(r["path"] / "split.csv")
        seconds = sum(float(h["seconds"]) for h in r["history"])
        name = r["path"].name + ("" if r["eval"].name == "eval" else f"/{r['eval'].name}")
        # the device training really used (in the weights' metadata); older runs only have the request
        device = r["meta"].get("device") or f"{c.device} (not recorded)"
        device += f" x{r['meta']['world_size']}" if r["meta"].get("world_size", 1) > 1 else ""
        epochs = str(len(r["history"])) if r["history"] else "-"
        if r.get("unfinished"):
            epochs = f"{r['unfinished']['epochs']} of {r['unfinished']['of']} (unfinished)"
        rows.append([name, c.data or f"synthetic (n={c.synthetic_n}, seed {c.seed})", _data_name(s), s["protocol"],
                     f"{len(split.train)}/{s.get('test_pairs', len(split.test))}", str(s["n"]), str(s["image_size"]),
                     epochs, device, f"{seconds:.0f} s"])
    return header, rows


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


def _add_image(md: list, htm: list, out: Path, name: str, image: Image.Image, caption: str) -> None:
    image.save(out / name)
    md += [f"![{caption}]({name})", ""]
    htm.append(f"<p><img alt='{caption}' src='data:image/png;base64,{_b64(image)}'></p>")


def write_report(run_paths: list[Path], out: Path, *, title: str = "facesketch comparison", progress: bool = True) -> Path:
    """Write out/report.md and out/report.html for the given runs; returns the HTML path."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FacesketchError(f"-o {out} is a file; expected a folder for report.html, report.md and its images")
    runs = load_runs(run_paths, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    intro = ("Metrics per test image, averaged; '^' = higher is better, bold = best of our runs in that table. "
             "Each table holds the runs measured on one test set. The report's published numbers (Tables I/II) "
             "stand beside ours only for runs on its own setting: the paper protocol on the 188-pair CUFS student "
             "set. Baselines (pencil, grey, mean) learned nothing: a model that does not beat them has not learned "
             "the task.")
    md, htm = [f"# {title}", "", intro, ""], [f"<h1>{html.escape(title)}</h1><p>{html.escape(intro)}</p>"]
    for direction in DIRECTIONS:
        groups = by_test_set(runs, direction)
        if not groups:
            continue
        md += [f"## {direction}", ""]
        htm.append(f"<h2>{direction}</h2>")
        for k, group in enumerate(groups):
            caption = test_set_caption(group)
            header, rows = metric_table(group, direction)
            md += [caption, "", _md_table(header, rows), ""]
            htm.append(f"<p>{html.escape(caption)}</p>" + _html_table(header, rows))
            grid = sample_grid(group, direction)
            if grid is not None:
                _add_image(md, htm, out, f"grid_{direction}{f'_{k + 1}' if k else ''}.png", grid,
                           "input, ground truth, then each model")
        loss = loss_figure(runs, direction)
        if loss is not None:
            _add_image(md, htm, out, f"loss_{direction}.png", loss, "training loss per epoch")
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
