"""evaluate and report refuse tampered or stale run files in one line, never report stale or wrong
numbers, score another dataset on request, and put the report's published numbers only where
they compare. Expected values are computed here from the image files and the weights directly."""

import csv
import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from facesketch import FacesketchError
from facesketch.cli import app
from facesketch.config import RunConfig
from facesketch.data.pairs import Pair
from facesketch.evaluate import evaluate
from facesketch.report import write_report
from facesketch.train import train

runner = CliRunner()


def _train(root, data, *, model="mean", direction="photo2sketch", protocol="random", seed=0, name=None):
    kw = {"test_fraction": 0.34} if protocol == "random" else {}
    cfg = RunConfig(model=model, direction=direction, data=str(data), protocol=protocol, seed=seed, batch_size=8,
                    runs_dir=str(root), views="identity", name=name, **kw)
    return train(cfg, progress=False).run_dir


@pytest.fixture(scope="module")
def base(tmp_path_factory, synth_dir):
    """Fitted baselines on the shared synthetic set (instant); tests that tamper work on copies."""
    root = tmp_path_factory.mktemp("trust-runs")
    return {"mean": _train(root, synth_dir), "mean_s1": _train(root, synth_dir, seed=1),
            "pencil": _train(root, synth_dir, model="pencil"), "grey": _train(root, synth_dir, model="grey")}


def _copy(run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / run.name
    shutil.copytree(run, dst)
    return dst


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _set_meta(path: Path, **changes) -> None:
    """Rewrite model.safetensors with its "facesketch" metadata changed (None deletes a key)."""
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["facesketch"])
    tensors = load_file(str(path))
    meta.update(changes)
    meta = {k: v for k, v in meta.items() if v is not None}
    save_file(tensors, str(path), metadata={"facesketch": json.dumps(meta)})


def _split_rows(run: Path) -> list[dict]:
    with (run / "split.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def _target(path, size=256) -> np.ndarray:
    """An image file as the models see it (RGB, bilinear to size x size, [0, 1]), read with PIL here."""
    return np.asarray(Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.float64) / 255


def _mean_target(run: Path) -> np.ndarray:
    """The mean baseline's prediction (view 0), straight from its weights file, HxWx3."""
    return load_file(str(run / "model.safetensors"))["mean_target"].numpy().astype(np.float64).transpose(1, 2, 0)


def _metric_tables(md: str, direction: str = "photo2sketch") -> dict[str, list[list[str]]]:
    """{caption: rows of cells} for each metric table of one direction's section of report.md."""
    section = md.split(f"## {direction}\n")[1].split("\n## ")[0]
    out = {}
    for block in section.split("Measured on ")[1:]:
        caption, table = block.split("\n\n")[:2]
        out[caption] = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table.splitlines()]
    return out


def _one_line(e) -> str:
    msg = str(e.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


# --- item 2: a summary counts only for the weights it was computed from ---------------------------

def test_report_reevaluates_a_run_whose_weights_changed(base, tmp_path, capsys):
    run = _copy(base["mean"], tmp_path)
    first = evaluate(run, progress=False, save_images=False)
    assert first["weights_sha256"] == _sha(run / "model.safetensors")
    # `train --overwrite` replaces the weights (and the split.csv they record) and leaves eval/ behind
    for name in ("model.safetensors", "split.csv"):
        shutil.copy(base["mean_s1"] / name, run / name)
    write_report([run], tmp_path / "rep", progress=False)
    now = json.loads((run / "eval" / "summary.json").read_text())
    assert now["weights_sha256"] == _sha(run / "model.safetensors") != first["weights_sha256"]
    test = [r for r in _split_rows(run) if r["split"] == "test"]
    pred = _mean_target(run)
    mae = np.mean([np.abs(pred - _target(r["sketch"])).mean() for r in test])
    assert now["metrics"]["mae"] == pytest.approx(mae, abs=1e-5) and abs(first["metrics"]["mae"] - mae) > 1e-3
    assert f"| mae | **{mae:.3f}** |" in (tmp_path / "rep" / "report.md").read_text()
    assert "evaluating" in capsys.readouterr().err  # said, not silent


@pytest.mark.parametrize("damage", ["truncated", "n=0", "older"])
def test_report_redoes_a_truncated_empty_or_old_summary(base, tmp_path, damage, capsys):
    run = _copy(base["mean"], tmp_path)
    evaluate(run, progress=False, save_images=False)
    path = run / "eval" / "summary.json"
    text = path.read_text()
    if damage == "truncated":
        path.write_text(text[: len(text) // 2])
    elif damage == "n=0":
        path.write_text(json.dumps({**json.loads(text), "n": 0, "metrics": {}}))
    else:
        path.write_text(json.dumps({k: v for k, v in json.loads(text).items() if k != "weights_sha256"}))
    write_report([run], tmp_path / "rep", progress=False)
    assert json.loads(path.read_text())["n"] == 4
    assert str(path) in capsys.readouterr().err


# --- item 6: config.yaml must agree with the weights' own metadata ----------------------------------

@pytest.mark.parametrize("key,value,saved", [("direction", "sketch2photo", "photo2sketch"),
                                              ("protocol", "paper", "random"), ("model", "grey", "mean"),
                                              ("model_kwargs", {"image_size": 128}, {})])
def test_config_disagreeing_with_the_weights_is_named(base, tmp_path, key, value, saved):
    run = _copy(base["mean"], tmp_path)
    cfg = RunConfig.load(run / "config.yaml")
    setattr(cfg, key, value)
    cfg.save(run / "config.yaml")
    with pytest.raises(FacesketchError) as e:
        evaluate(run, progress=False)
    msg = _one_line(e)
    assert f"{key} {value!r}" in msg and f"{key} {saved!r}" in msg
    assert str(run / "config.yaml") in msg and str(run / "model.safetensors") in msg


# --- item 8: tampered run files ---------------------------------------------------------------------

def _edit_config(run: Path, how: str, marker: Path) -> None:
    text = (run / "config.yaml").read_text()
    edits = {
        "python tag": f'model: !!python/object/apply:os.system ["touch {marker}"]\n' + text,
        "syntax": text + "views: [all\n",
        "list": "- mean\n- photo2sketch\n",
        "scalar": "mean\n",
        "no model": re.sub(r"(?m)^model: .*\n", "", text),
        "batch_size": re.sub(r"(?m)^batch_size: .*$", "batch_size: four", text),
        "model_kwargs": re.sub(r"(?m)^model_kwargs: .*$", "model_kwargs: {bogus: 1}", text),
    }
    (run / "config.yaml").write_text(edits[how])


@pytest.mark.parametrize("how,expected", [
    ("python tag", "not valid YAML"), ("syntax", "not valid YAML at line"),
    ("list", "expected a mapping of settings"), ("scalar", "expected a mapping of settings"),
    ("no model", "missing required key 'model'"), ("batch_size", "batch_size must be an integer, got 'four'"),
    ("model_kwargs", "model_kwargs {'bogus': 1} do not fit model 'mean'")])
def test_tampered_config_is_one_line_naming_the_file(base, tmp_path, how, expected):
    run = _copy(base["mean"], tmp_path)
    marker = tmp_path / "code-ran"
    _edit_config(run, how, marker)
    with pytest.raises(FacesketchError) as e:
        evaluate(run, progress=False)
    msg = _one_line(e)
    assert str(run / "config.yaml") in msg and expected in msg
    assert not marker.exists()  # a YAML tag never runs code


@pytest.mark.parametrize("how,expected", [("no views column", "missing views"),
                                          ("split val", "split must be 'train' or 'test', got 'val'"),
                                          ("header only", "lists no pairs"), ("no test rows", "no test pairs")])
def test_tampered_split_csv_is_one_line_naming_the_file(base, tmp_path, how, expected):
    run = _copy(base["mean"], tmp_path)
    rows = _split_rows(run)
    fields = list(rows[0])
    if how == "no views column":
        fields.remove("views")
        rows = [{k: r[k] for k in fields} for r in rows]
    elif how == "split val":
        rows[-1]["split"] = "val"
    elif how == "header only":
        rows = []
    else:
        rows = [r for r in rows if r["split"] == "train"]
    with (run / "split.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(FacesketchError) as e:
        evaluate(run, progress=False)
    msg = _one_line(e)
    assert str(run / "split.csv") in msg and expected in msg


@pytest.mark.parametrize("how", ["deleted", "truncated"])
def test_test_sketch_gone_or_truncated_after_training(synth_copy, tmp_path, how):
    run = _train(tmp_path / "runs", synth_copy)
    sketch = Path(next(r["sketch"] for r in _split_rows(run) if r["split"] == "test"))
    if how == "deleted":
        sketch.unlink()
    else:
        sketch.write_bytes(sketch.read_bytes()[:600])
    with pytest.raises(FacesketchError) as e:
        evaluate(run, progress=False)
    msg = _one_line(e)
    assert str(sketch) in msg and ("gone" if how == "deleted" else "truncated") in msg


# --- item 9: report inputs ---------------------------------------------------------------------------

def test_report_refuses_bad_history_and_an_output_file(base, tmp_path):
    run = _copy(base["mean"], tmp_path)
    (run / "history.csv").write_text("stage,loss,epoch,train_loss,test_loss,seconds\n1,mse,1,0.5,oops,2.0\n")
    with pytest.raises(FacesketchError) as e:
        write_report([run], tmp_path / "rep", progress=False)
    assert str(run / "history.csv") in _one_line(e) and "oops" in str(e.value)
    (run / "history.csv").write_text("just text\n")
    with pytest.raises(FacesketchError, match="history.csv: expected a training history"):
        write_report([run], tmp_path / "rep", progress=False)
    shutil.copy(base["mean"] / "history.csv", run / "history.csv")
    taken = tmp_path / "report.html"
    taken.write_text("mine")
    with pytest.raises(FacesketchError, match="is a file; expected a folder"):
        write_report([run], taken, progress=False)
    r = runner.invoke(app, ["report", str(run), "-o", str(taken)])
    assert r.exit_code == 2 and "is a file" in r.output and taken.read_text() == "mine"


# --- item 15: the published numbers only beside the CUFS student set on the paper protocol ---------

def _cufs_like_pairs(sketch_name=None) -> list[Pair]:
    """188 pairs named like the CUFS student set: the 88 standard training sketches F2-/M2-."""
    stems = [f"f-{i:03d}-01" for i in range(5, 44)] + [f"f1-{i:03d}-01" for i in range(1, 16)] + \
            [f"m-{i:03d}-01" for i in range(8, 101)] + [f"m1-{i:03d}-01" for i in range(1, 42)]
    standard = {f"f-{i:03d}-01" for i in range(5, 39)} | {f"m-{i:03d}-01" for i in range(8, 62)}
    assert len(stems) == 188 and len(standard) == 88
    name = sketch_name or (lambda s: (s[0].upper() + "2" + s[1:] if s in standard else s) + "-sz1")
    return [Pair(Path(f"photos/{s}.jpg"), Path(f"sketches/{name(s)}.jpg")) for s in stems]


def test_cufs_student_set_is_told_from_cufs_like_names():
    from facesketch.runs import is_cufs_student
    assert is_cufs_student(_cufs_like_pairs())
    synthetic = _cufs_like_pairs(lambda s: s + "-sz1")  # synthetic faces: CUFS-like names, no F2-/M2-
    assert not is_cufs_student(synthetic) and not is_cufs_student(_cufs_like_pairs()[:-1])
    moved = _cufs_like_pairs()  # 88 F2-/M2- sketches still, but one of them is not a standard training one
    assert moved[0].stem == "f-005-01" and moved[34].stem == "f-039-01"
    moved[0] = Pair(moved[0].photo, Path("sketches/f-005-01-sz1.jpg"))
    moved[34] = Pair(moved[34].photo, Path("sketches/F2-039-01-sz1.jpg"))
    assert not is_cufs_student(moved)


def test_real_cufs_is_the_student_set(cufs_dir):
    from facesketch.runs import is_cufs_student
    from facesketch.data.pairs import find_pairs
    assert is_cufs_student(find_pairs(cufs_dir, check_images=False).pairs)


def _rewrite_summary(run: Path, **changes) -> None:
    path = run / "eval" / "summary.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_published_numbers_only_for_runs_on_the_cufs_student_set(base, tmp_path, synth_dir):
    runs = [_copy(base[k], tmp_path) for k in ("pencil", "mean", "grey")]
    for run in runs:
        s = evaluate(run, progress=False)
        assert s["dataset"] == {"path": str(synth_dir.resolve()), "pairs": 12, "cufs_student": False}
    # the mean run (not the first of its direction) as if measured on CUFS, the grey one on the
    # paper protocol of other data: only the first gets the published columns
    _rewrite_summary(runs[1], protocol="paper", dataset={"path": "/data/cufs", "pairs": 188, "cufs_student": True})
    _rewrite_summary(runs[2], protocol="paper")
    md = (write_report(runs, tmp_path / "rep", progress=False).parent / "report.md").read_text()
    headers = {caption.split(":")[0]: rows[0] for caption, rows in _metric_tables(md).items()}
    published = ["dense_ae (report)", "conv_ae (report)", "hybrid_ae (report)"]
    assert headers == {"cufs (the 188-pair CUFS student set), protocol paper": ["metric", "mean", *published],
                       "data (12 pairs), protocol paper": ["metric", "grey"],
                       "data (12 pairs), protocol random (seed 0)": ["metric", "pencil"]}


def test_runs_on_different_test_splits_get_their_own_tables(base, tmp_path):
    runs = [_copy(base[k], tmp_path) for k in ("mean", "mean_s1")]  # random protocol, seeds 0 and 1
    md = (write_report(runs, tmp_path / "rep", progress=False).parent / "report.md").read_text()
    tables = _metric_tables(md)
    assert [c.split(":")[0] for c in tables] == ["data (12 pairs), protocol random (seed 0)",
                                                  "data (12 pairs), protocol random (seed 1)"]
    assert all(rows[0] == ["metric", "mean"] for rows in tables.values())


@pytest.mark.slow
def test_evaluate_on_cufs_records_the_student_set(cufs_dir, tmp_path):
    run = _train(tmp_path / "runs", cufs_dir, protocol="paper")
    s = evaluate(run, progress=False, save_images=False)
    assert s["dataset"]["cufs_student"] and s["dataset"]["pairs"] == 188 and s["n"] == 104
    md = (write_report([run], tmp_path / "rep", progress=False).parent / "report.md").read_text()
    assert "| metric | mean | dense_ae (report) |" in md


# --- item 17: cross-dataset evaluation ----------------------------------------------------------------

@pytest.fixture(scope="module")
def other_dir(tmp_path_factory):
    from facesketch.data.synthetic import write_synthetic
    return write_synthetic(tmp_path_factory.mktemp("other") / "other", n=5, seed=9, progress=False)


def test_evaluate_on_another_dataset(base, tmp_path, other_dir, monkeypatch):
    import facesketch.evaluate as E
    seen = []

    class Recording(E.PCADescriptor):
        def __init__(self, train_images):
            seen.append(train_images)
            super().__init__(train_images)

    monkeypatch.setattr(E, "PCADescriptor", Recording)
    run = _copy(base["mean"], tmp_path)
    s = evaluate(run, data=other_dir, device="cpu", progress=False)
    out = run / "eval-other"
    assert json.loads((out / "summary.json").read_text()) == s and not (run / "eval").exists()
    assert s["n"] == 5 and s["protocol"] == "all" and s["views"] == [0] and s["device"] == "cpu"
    assert s["data"] == str(other_dir.resolve()) and s["dataset"]["pairs"] == 5 and s["train_overlap"] == 0
    # every pair of the other set, scored against its own sketches
    with (out / "metrics.csv").open() as f:
        rows = {r["name"]: float(r["mae"]) for r in csv.DictReader(f)}
    pred = _mean_target(run)
    expected = {f"{p.stem}/v0": np.abs(pred - _target(other_dir / "sketches" / f"{p.stem}-sz1.jpg")).mean()
                for p in sorted((other_dir / "photos").iterdir())}
    assert rows.keys() == expected.keys()
    assert all(rows[k] == pytest.approx(v, abs=2e-6) for k, v in expected.items())
    # identification's descriptor is fit on the run's own training sketches
    train_rows = [r for r in _split_rows(run) if r["split"] == "train"]
    assert len(seen) == 1 and len(seen[0]) == len(train_rows)
    assert np.abs(seen[0][0] - _target(train_rows[0]["sketch"])).max() < 1e-6


def test_evaluate_on_another_dataset_with_a_protocol_and_report_it(base, tmp_path, other_dir):
    from facesketch.data.pairs import find_pairs
    from facesketch.data.protocols import make_split
    run = _copy(base["mean"], tmp_path)
    s = evaluate(run, data=other_dir, protocol="random", progress=False)
    split = make_split(find_pairs(other_dir).pairs, "random", seed=0, test_fraction=0.34)
    with (run / "eval-other-random" / "metrics.csv").open() as f:
        assert [r["name"] for r in csv.DictReader(f)] == [f"{p.stem}/v0" for p in split.test]
    assert s["protocol"] == "random" and s["n"] == len(split.test)
    md = (write_report([run / "eval-other-random", run], tmp_path / "rep", progress=False).parent
          / "report.md").read_text()
    assert "Measured on other (5 pairs), protocol random (seed 0)" in md and "| metric | mean [trained on data] |" in md
    trained_on = RunConfig.load(run / "config.yaml").data
    assert f"| {run.name}/eval-other-random | {trained_on} | other | random |" in md


def test_cli_evaluate_data_options(base, tmp_path, other_dir):
    run = _copy(base["mean"], tmp_path)
    r = runner.invoke(app, ["evaluate", str(run), "--data", str(other_dir), "--device", "cpu", "--out",
                            str(tmp_path / "x"), "--no-images"])
    assert r.exit_code == 0, r.output
    assert "on " + str(other_dir) in r.stdout and (tmp_path / "x" / "summary.json").exists()
    for args, message in ((["--protocol", "random"], "give --data too"), (["--device", "tpu"], "--device must be"),
                          (["--data", str(other_dir), "--protocol", "nope"], "--protocol must be one of"),
                          (["--data", str(tmp_path / "nope")], "no such file or folder")):
        r = runner.invoke(app, ["evaluate", str(run), *args])
        assert r.exit_code == 2 and message in r.output


# --- item 18: the device training really used -------------------------------------------------------

def test_runs_table_shows_the_device_used(base, tmp_path):
    run = _copy(base["mean"], tmp_path)
    _set_meta(run / "model.safetensors", device="cuda:0")
    md = (write_report([run], tmp_path / "rep", progress=False).parent / "report.md").read_text()
    facts = md.split("## Runs")[1]
    assert "| cuda:0 |" in facts and "| auto |" not in facts
    _set_meta(run / "model.safetensors", device=None)  # an older run: only the request is known
    md = (write_report([run], tmp_path / "rep2", progress=False).parent / "report.md").read_text()
    assert "| auto (not recorded) |" in md.split("## Runs")[1]


# --- item 22: the paper protocol's 8 views --------------------------------------------------------------

def test_paper_protocol_scores_8_views_and_identifies_on_view_0(tmp_path, monkeypatch):
    import facesketch.evaluate as E
    from facesketch.data.synthetic import write_synthetic
    data = write_synthetic(tmp_path / "data22", n=22, seed=5, progress=False)
    run = _train(tmp_path / "runs", data, protocol="paper")
    test = [r for r in _split_rows(run) if r["split"] == "test"]
    assert len(test) == 2  # 7% of 22 identities
    calls = []
    real = E.identification
    monkeypatch.setattr(E, "identification", lambda d, probes, gallery: calls.append((probes, gallery))
                        or real(d, probes, gallery))
    s = evaluate(run, progress=False, save_images=False)
    with (run / "eval" / "metrics.csv").open() as f:
        names = [r["name"] for r in csv.DictReader(f)]
    stems = sorted(Path(r["photo"]).stem for r in test)
    assert sorted(names) == sorted(f"{st}/v{v}" for st in stems for v in range(8)) and s["n"] == 16
    assert s["identification"]["n"] == 2 and s["views"] == list(range(8))
    (probes, gallery), = calls
    pred = _mean_target(run)  # the mean baseline's view-0 prediction, not a flipped view
    assert all(np.abs(p - pred).max() < 1e-6 for p in probes)
    sketches = {Path(r["photo"]).stem: r["sketch"] for r in test}
    assert all(np.abs(g - _target(sketches[st])).max() < 1e-6 for g, st in zip(gallery, stems))


# --- item 23: every table cell and bold mark from the summaries -----------------------------------------

def test_report_cells_and_bold_marks_match_the_summaries(base, tmp_path):
    from facesketch.metrics import ALL_METRICS, HIGHER_IS_BETTER
    runs = [_copy(base[k], tmp_path) for k in ("mean", "pencil", "grey")]
    summaries = {}
    for run in runs:
        s = evaluate(run, progress=False, save_images=False)
        summaries[s["model"]] = json.loads((run / "eval" / "summary.json").read_text())["metrics"]
    md = (write_report(runs, tmp_path / "rep", progress=False).parent / "report.md").read_text()
    (rows,) = _metric_tables(md).values()  # one test set
    header = rows[0]
    assert header == ["metric", "pencil", "grey", "mean"]  # the report's column order
    for cells in rows[2:]:
        metric = cells[0].removesuffix(" ^")
        values = {m: summaries[m][metric] for m in header[1:]}
        best = (max if metric in HIGHER_IS_BETTER else min)(values.values())
        for model, cell in zip(header[1:], cells[1:]):
            text = f"{values[model]:.2f}" if metric == "psnr" else f"{values[model]:.3f}"
            assert cell == (f"**{text}**" if values[model] == best else text), (metric, model)
    assert [cells[0].removesuffix(" ^") for cells in rows[2:]] == list(ALL_METRICS)


# --- issue 8: no silent data loss, no silently wrong numbers ----------------------------------------------

def _files(folder: Path) -> dict:
    """Every entry under folder with its bytes (None for a folder): what must not change."""
    return {p.relative_to(folder): (p.read_bytes() if p.is_file() else None) for p in folder.rglob("*")}


def _interrupted_run(root: Path, data: Path, monkeypatch) -> Path:
    """A 3-epoch run stopped by Ctrl-C in its second epoch (a small dense_ae: seconds)."""
    import facesketch.train as T
    real, calls = T._epoch, []

    def epoch(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(T, "_epoch", epoch)
    cfg = RunConfig(model="dense_ae", direction="photo2sketch", data=str(data), protocol="random", test_fraction=0.34,
                    epochs=3, batch_size=8, runs_dir=str(root), views="identity", model_kwargs={"image_size": 32})
    with pytest.raises(KeyboardInterrupt):
        train(cfg, progress=False)
    monkeypatch.setattr(T, "_epoch", real)
    return cfg.run_dir


def test_an_interrupted_run_is_evaluated_and_reported_as_unfinished(base, synth_dir, tmp_path, monkeypatch):
    run = _interrupted_run(tmp_path / "runs", synth_dir, monkeypatch)
    with (run / "history.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 1  # one epoch of the 3 planned (dense_ae: a single stage)
    r = runner.invoke(app, ["evaluate", str(run), "--no-images"])
    assert r.exit_code == 0, r.output
    note = next(line for line in r.output.splitlines() if line.startswith("note:"))
    assert "unfinished" in note and "1 of 3 epochs" in note and "--resume" in note
    assert json.loads((run / "eval" / "summary.json").read_text())["unfinished"] == {"epochs": 1, "of": 3}
    mean = _copy(base["mean"], tmp_path)  # a baseline has no schedule: never unfinished
    assert evaluate(mean, progress=False, save_images=False)["unfinished"] is None
    md = (write_report([run, mean], tmp_path / "rep", progress=False).parent / "report.md").read_text()
    (rows,) = _metric_tables(md).values()
    assert rows[0] == ["metric", "dense_ae (unfinished 1/3)", "mean"]
    facts = {cells[0]: cells for cells in ([c.strip() for c in line.strip().strip("|").split("|")]
                                            for line in md.split("## Runs")[1].splitlines() if line.startswith("| "))}
    epochs = facts["run"].index("epochs")
    assert facts[run.name][epochs] == "1 of 3 (unfinished)" and facts[mean.name][epochs] == "-"


def test_evaluate_never_writes_into_a_folder_it_did_not_write(base, tmp_path, synth_copy, other_dir):
    run = _copy(base["mean"], tmp_path)
    evaluate(run, progress=False, save_images=False)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "summary.json").write_text('{"my": "results"}')
    (mine / "metrics.csv").write_text("subject,score\n1,0.5\n")
    other_run = tmp_path / "other-run"
    shutil.copytree(base["mean_s1"], other_run)
    evaluate(other_run, out=tmp_path / "theirs", progress=False, save_images=False)
    twin = tmp_path / "elsewhere" / "other"  # another data set with the same folder name
    shutil.copytree(other_dir, twin)
    evaluate(run, data=other_dir, progress=False, save_images=False)  # into RUN/eval-other
    cases = [(["--out", str(mine)], mine, "summary.json"), (["--out", str(run)], run, "config.yaml"),
             (["--out", str(synth_copy)], synth_copy, "photos/"),
             (["--data", str(other_dir), "--out", str(run / "eval")], run / "eval", "own test split"),
             (["--out", str(tmp_path / "theirs")], tmp_path / "theirs", str(other_run.resolve())),
             (["--data", str(twin)], run / "eval-other", str(other_dir.resolve()))]
    for args, folder, held in cases:
        before = _files(folder)
        r = runner.invoke(app, ["evaluate", str(run), "--no-images", *args])
        assert r.exit_code == 2, (args, r.output)
        (line,) = [x for x in r.output.splitlines() if x.startswith("error:")]
        assert str(folder) in line and held in line, line
        assert _files(folder) == before, args


def test_evaluate_again_into_its_own_folder_is_fine(base, tmp_path, other_dir):
    run = _copy(base["mean"], tmp_path)
    first = evaluate(run, progress=False)
    again = evaluate(run, progress=False)
    assert again["metrics"] == first["metrics"]
    out = tmp_path / "cross"
    for _ in range(2):
        evaluate(run, data=other_dir, out=out, progress=False, save_images=False)
    moved = tmp_path / "moved" / run.name  # a copied run folder: its eval/ is still its own
    shutil.copytree(run, moved)
    assert evaluate(moved, progress=False)["run"] == str(moved.resolve())


def test_no_images_leaves_no_pred_folder_and_no_stale_predictions(base, tmp_path):
    run = _copy(base["mean"], tmp_path)
    evaluate(run, progress=False, save_images=False)
    assert not (run / "eval" / "pred").exists()
    evaluate(run, progress=False)
    assert len(list((run / "eval" / "pred").glob("*.png"))) == 4
    evaluate(run, progress=False, save_images=False)  # the older images would outlive their numbers
    assert not (run / "eval" / "pred").exists()


def test_split_csv_with_a_byte_order_mark_reads_like_without(base, tmp_path):
    from facesketch.data.protocols import read_split_manifest
    run = _copy(base["mean"], tmp_path)
    before, plain = evaluate(run, progress=False, save_images=False), read_split_manifest(run / "split.csv")
    (run / "split.csv").write_bytes(b"\xef\xbb\xbf" + (run / "split.csv").read_bytes())  # saved by a spreadsheet
    assert read_split_manifest(run / "split.csv") == plain
    _set_meta(run / "model.safetensors", split_sha256=None)  # a run from before the split's hash was recorded
    assert evaluate(run, progress=False, save_images=False)["metrics"] == before["metrics"]


@pytest.mark.parametrize("fields", [1, 6])
def test_a_split_csv_row_with_too_few_or_many_fields_says_so(base, tmp_path, fields):
    run = _copy(base["mean"], tmp_path)
    lines = (run / "split.csv").read_text().splitlines()
    header, cells = lines[0], lines[6].split(",")
    lines[6] = ",".join(cells[:1] if fields == 1 else cells + ["extra"])
    (run / "split.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(FacesketchError) as e:
        evaluate(run, progress=False)
    columns = header.split(",")
    assert _one_line(e) == f"{run / 'split.csv'}:7: {fields} field(s), expected {len(columns)} ({header})"


def test_evaluating_on_the_training_data_says_it_is_not_a_fair_test(base, tmp_path, synth_dir):
    run = _copy(base["mean"], tmp_path)
    r = runner.invoke(app, ["evaluate", str(run), "--data", str(synth_dir), "--no-images"])
    assert r.exit_code == 0, r.output
    train_rows = [row for row in _split_rows(run) if row["split"] == "train"]
    n_pairs = len(list((synth_dir / "photos").iterdir()))
    assert (len(train_rows), n_pairs) == (8, 12)
    notes = [line for line in r.output.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and f"{len(train_rows)} of the {n_pairs} test pairs were training pairs" in notes[0]
    summary = json.loads((run / "eval-data" / "summary.json").read_text())
    assert summary["train_overlap"] == 8 and notes[0].removeprefix("note: ") in summary["notes"]
    md = (write_report([run / "eval-data"], tmp_path / "rep", progress=False).parent / "report.md").read_text()
    ((caption, rows),) = _metric_tables(md).items()
    assert rows[0] == ["metric", "mean [trained on data]"] and caption.startswith("data (12 pairs)")
    assert "were trained on X and measured here on data" in caption and "mean [trained on data]: 8 of 12" in caption
    assert "other data" not in caption and "cross-dataset" not in caption


@pytest.mark.parametrize("edit", ["train row moved to test", "test row points at a training sketch"])
def test_split_csv_edited_after_training_is_refused(base, tmp_path, edit):
    run = _copy(base["mean"], tmp_path)
    # what `facesketch train` records: the hash of split.csv as it wrote it
    _set_meta(run / "model.safetensors", split_sha256=_sha(run / "split.csv"))
    evaluate(run, progress=False, save_images=False)  # untouched: evaluated as ever
    rows, fields = _split_rows(run), list(_split_rows(run)[0])
    train_row, test_row = (next(r for r in rows if r["split"] == part) for part in ("train", "test"))
    if edit == "train row moved to test":
        train_row.update(split="test", views=test_row["views"])
    else:
        test_row["sketch"] = train_row["sketch"]
    with (run / "split.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(FacesketchError) as e:
        evaluate(run, progress=False, save_images=False)
    assert str(run / "split.csv") in _one_line(e) and "changed since training" in str(e.value)
    with pytest.raises(FacesketchError, match="changed since training"):
        write_report([run], tmp_path / "rep", progress=False)
    _set_meta(run / "model.safetensors", split_sha256=None)  # an older run records no hash: not checked
    assert evaluate(run, progress=False, save_images=False)["n"] == 4 + (edit == "train row moved to test")
