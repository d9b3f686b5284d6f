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
    # `train --overwrite` (or --resume) replaces the weights and leaves eval/ behind
    shutil.copy(base["mean_s1"] / "model.safetensors", run / "model.safetensors")
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
