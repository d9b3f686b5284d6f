"""Guards around a training run found by a hostile-user probe: output paths the system refuses,
two processes in one run folder, names that cannot be stored, a loss that diverges at once, a
split edited after training."""

import hashlib
import sys
from pathlib import Path

import pytest

import facesketch.steps as S
from facesketch import FacesketchError
from facesketch.checkpoint import MODEL_FILE, load_meta
from facesketch.cli import main
from facesketch.config import RunConfig
from facesketch.runsetup import run_dir_lock
from facesketch.train import TrainingDiverged, train


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    from facesketch.data.synthetic import write_synthetic
    return write_synthetic(tmp_path_factory.mktemp("tiny") / "data", n=5, seed=3, progress=False)


def _cfg(runs: Path, data: Path, **kw) -> RunConfig:
    base = dict(model="mean", direction="photo2sketch", data=str(data), protocol="random", batch_size=4,
                views="identity", device="cpu", runs_dir=str(runs))
    return RunConfig(**{**base, **kw})


def _main(monkeypatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["facesketch", *args])
    with pytest.raises(SystemExit) as e:
        main()
    return e.value.code


@pytest.mark.parametrize("runs_dir", ["afile", "afile/sub"])
def test_a_runs_dir_the_system_refuses_is_one_line(tmp_path, tiny_dir, monkeypatch, capsys, runs_dir):
    (tmp_path / "afile").write_text("not a folder")
    code = _main(monkeypatch, "train", "--model", "mean", "--direction", "photo2sketch", "--data", str(tiny_dir),
                 "--runs-dir", str(tmp_path / runs_dir))
    err = capsys.readouterr().err.split("\r")[-1]  # after the progress bar's last redraw
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1 and "afile" in err
    assert "Traceback" not in err and (tmp_path / "afile").read_text() == "not a folder"


def test_a_second_process_cannot_train_into_a_held_run_folder(tmp_path, tiny_dir):
    cfg = _cfg(tmp_path, tiny_dir)
    with run_dir_lock(cfg.run_dir):  # what a running `facesketch train` holds
        with pytest.raises(FacesketchError, match="being written by another facesketch process"):
            train(cfg, progress=False)
        assert not (cfg.run_dir / MODEL_FILE).exists()
    train(cfg, progress=False)  # free again once the other process is done
    assert (cfg.run_dir / MODEL_FILE).exists()


@pytest.mark.parametrize("kw, message", [
    (dict(name="bad\udcff"), "--name must be valid UTF-8"),
    (dict(runs_dir="runs\udcff"), "--runs-dir must be valid UTF-8"),
    (dict(name="data-synthetic-n6-s0"), "--name must not start with 'data-synthetic-'"),
])
def test_run_names_that_cannot_be_stored_or_collide_are_refused(tmp_path, kw, message):
    with pytest.raises(FacesketchError, match=message):
        RunConfig(model="mean", direction="photo2sketch", **kw)


def test_a_loss_that_diverges_at_once_does_not_promise_a_checkpoint(tmp_path, tiny_dir, monkeypatch):
    real = S.LOSSES["mae"]
    monkeypatch.setitem(S.LOSSES, "mae", lambda pred, tgt, **kw: real(pred, tgt, **kw) * float("nan"))
    cfg = _cfg(tmp_path, tiny_dir, model="conv_ae", epochs=1, layout="channels_last", precision="fp32")
    with pytest.raises(TrainingDiverged) as e:
        train(cfg, progress=False)
    message = str(e.value)
    assert "at epoch 1 step 0" in message and "no epoch had finished, so there is no checkpoint" in message
    assert "--precision fp32" not in message  # it already ran in fp32


def test_weights_name_the_split_they_were_trained_on(tmp_path, tiny_dir):
    run = train(_cfg(tmp_path, tiny_dir), progress=False).run_dir
    digest = hashlib.sha256((run / "split.csv").read_bytes()).hexdigest()
    assert load_meta(run / MODEL_FILE)["split_sha256"] == digest


def test_a_baseline_says_that_epochs_do_not_apply(tmp_path, tiny_dir, capsys):
    train(_cfg(tmp_path, tiny_dir, epochs=5), progress=False)
    assert "mean is a baseline: it is fitted, not trained" in capsys.readouterr().out
