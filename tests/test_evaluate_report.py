import json
import re

import pytest
from typer.testing import CliRunner

from facesketch import FacesketchError
from facesketch.cli import app
from facesketch.config import RunConfig
from facesketch.evaluate import evaluate
from facesketch.report import write_report
from facesketch.train import train

runner = CliRunner()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synth_dir):
    root = tmp_path_factory.mktemp("runs")
    out = []
    for model, direction, epochs in (("conv_ae", "photo2sketch", 2), ("mean", "photo2sketch", None),
                                     ("pencil", "photo2sketch", None), ("grey", "sketch2photo", None),
                                     ("mean", "sketch2photo", None)):
        cfg = RunConfig(model=model, direction=direction, data=str(synth_dir), protocol="random", epochs=epochs,
                        batch_size=8, runs_dir=str(root), views="identity", test_fraction=0.34,
                        layout="channels_last", precision="fp32")   # auto's timing is tested in test_autotune
        out.append(train(cfg, progress=False).run_dir)
    return out


def test_evaluate_writes_predictions_csv_and_summary(runs):
    summary = evaluate(runs[0], progress=False)
    ev = runs[0] / "eval"
    assert set(summary) >= {"model", "direction", "protocol", "n", "metrics", "identification"}
    assert summary["model"] == "conv_ae" and summary["n"] == 4 and summary["protocol"] == "random"
    assert set(summary["metrics"]) == {"mae_median", "rmse", "ssim_paper", "mae", "psnr", "ssim"}
    assert summary["identification"]["n"] == 4 and summary["identification"]["chance_rank1"] == 0.25
    assert json.loads((ev / "summary.json").read_text()) == summary
    assert len(list((ev / "pred").glob("*_v0.png"))) == 4
    assert len((ev / "metrics.csv").read_text().splitlines()) == 5


def test_report_tables_grids_and_curves(runs, tmp_path):
    html_path = write_report(runs, tmp_path / "rep", progress=False)
    html, md = html_path.read_text(), (tmp_path / "rep" / "report.md").read_text()
    for direction in ("photo2sketch", "sketch2photo"):
        assert f"## {direction}" in md and (tmp_path / "rep" / f"grid_{direction}.png").exists()
    assert (tmp_path / "rep" / "loss_photo2sketch.png").exists()
    table = md.split("## photo2sketch")[1].split("![")[0]
    assert "| metric | conv_ae | pencil | mean |" in table and "(report)" not in table  # random protocol
    assert re.search(r"\| ssim_paper \^ \|", table) and "Identification" in md
    # self-contained: every image embedded, nothing fetched
    assert html.count("data:image/png;base64,") == 3 and not re.search(r"(src|href)=['\"]https?:", html)


def test_report_puts_published_numbers_beside_paper_protocol(runs, tmp_path):
    from facesketch.report import load_runs, metric_table
    loaded = load_runs(runs[:3], progress=False)
    for r in loaded:  # published numbers belong to the paper protocol on the CUFS student set only
        r["summary"]["protocol"] = "paper"
        r["summary"]["dataset"]["cufs_student"] = True
    header, rows = metric_table(loaded, "photo2sketch")
    assert header[-3:] == ["dense_ae (report)", "conv_ae (report)", "hybrid_ae (report)"]
    assert rows[0][0] == "mae_median" and rows[0][-3:] == ["0.162", "0.171", "0.150"]


def test_missing_or_half_written_run_folders_are_named(tmp_path, runs):
    with pytest.raises(FacesketchError, match="run folder does not exist"):
        evaluate(tmp_path / "nope")
    half = tmp_path / "half"
    half.mkdir()
    (half / "config.yaml").write_text((runs[0] / "config.yaml").read_text())
    with pytest.raises(FacesketchError, match=r"missing split.csv, model.safetensors \(training did not finish"):
        evaluate(half)
    r = runner.invoke(app, ["report", str(half), "-o", str(tmp_path / "r")])
    assert r.exit_code != 0 and isinstance(r.exception, FacesketchError)


def test_cli_evaluate_and_report(runs, tmp_path):
    r = runner.invoke(app, ["evaluate", str(runs[1]), "--no-images"])
    assert r.exit_code == 0 and "mean photo2sketch" in r.stdout and "mae_median" in r.stdout
    r = runner.invoke(app, ["report", *map(str, runs[1:3]), "-o", str(tmp_path / "cli")])
    assert r.exit_code == 0 and (tmp_path / "cli" / "report.html").exists()


@pytest.mark.slow
def test_demo_wiring_end_to_end(tmp_path, monkeypatch):
    """The demo's whole path (synthetic data -> train-all -> evaluate -> report) on a cut-down model list."""
    import facesketch.pipeline as P
    monkeypatch.setattr(P, "LEARNED", ("conv_ae",))
    monkeypatch.setattr(P, "DEMO_SYNTHETIC_N", 8)
    monkeypatch.setattr(P, "DEMO_EPOCHS", {"conv_ae": 2})
    html_path = P.demo(tmp_path / "demo", progress=False)
    md = (tmp_path / "demo" / "report" / "report.md").read_text()
    assert html_path.exists() and "| metric | conv_ae | pencil | grey | mean |" in md
    assert len(list((tmp_path / "demo" / "runs").glob("*-s0/model.safetensors"))) == 8
