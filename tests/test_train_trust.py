"""Training never loses work or reports numbers for other weights: validation, resume rules,
interruption, the recorded device, and exact resumes of the two-stage and the GAN schedules."""

import csv
import math
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from typer.testing import CliRunner

import facesketch.steps as S
import facesketch.train as T
from facesketch import FacesketchError
from facesketch.checkpoint import MODEL_FILE, STATE_FILE, load_meta
from facesketch.cli import app, main
from facesketch.config import RunConfig
from facesketch.pipeline import train_all
from facesketch.train import train

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    """5 pairs: the random protocol (test fraction 0.2) trains on 4 and tests on 1."""
    from facesketch.data.synthetic import write_synthetic
    return write_synthetic(tmp_path_factory.mktemp("tiny") / "data", n=5, seed=3, progress=False)


def _cfg(runs: Path, data: Path, **kw) -> RunConfig:
    base = dict(model="conv_ae", direction="photo2sketch", data=str(data), protocol="random", epochs=1,
                batch_size=4, views="identity", device="cpu", runs_dir=str(runs),
                layout="nchw", precision="fp32")   # these tests count steps and optimisers; auto's timing would add some
    return RunConfig(**{**base, **kw})


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def _assert_same_tensors(a: Path, b: Path, skip: tuple[str, ...] = ()) -> None:
    ta, tb = _tensors(a), _tensors(b)
    assert set(ta) == set(tb)
    differ = [k for k in ta if not k.startswith(skip) and not torch.equal(ta[k], tb[k])]
    assert not differ, f"{len(differ)} tensors differ, e.g. {differ[:3]}"


def _epochs(run: Path) -> list[str]:
    with (run / "history.csv").open() as f:
        return [r["epoch"] for r in csv.DictReader(f)]


# --- item 7: every bad value is one line naming the option and the value -------------------------

@pytest.mark.parametrize("kw, message", [
    (dict(batch_size=0), "--batch-size must be a positive integer, got 0"),
    (dict(epochs=0), "--epochs must be a positive integer, got 0"),
    (dict(epochs_scale=0.0), "--epochs-scale must be a positive finite number, got 0.0"),
    (dict(epochs_scale=float("nan")), "--epochs-scale must be a positive finite number, got nan"),
    (dict(lr=float("inf")), "--lr must be a positive finite number, got inf"),
    (dict(seed=-1), "--seed must be an integer from 0 to 4294967295, got -1"),
    (dict(synthetic_n=1), "--synthetic-n must be an integer of at least 2"),
    (dict(test_fraction=1.0), "--test-fraction must be between 0 and 1 (exclusive), got 1.0"),
    (dict(name="../escape"), "--name must be a plain folder name"),
    (dict(model="conv_a"), "--model: unknown model 'conv_a'; choose from conv_ae, dense_ae"),
    (dict(gan=True), "--gan trains the unet"),
])
def test_run_config_refuses_bad_values_naming_the_option(kw, message):
    with pytest.raises(FacesketchError) as e:
        RunConfig(**{"model": "conv_ae", "direction": "photo2sketch", **kw})
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("args, message", [
    (["--lr", "nan"], "--lr must be a positive finite number, got nan"),
    (["--lr", "-1"], "--lr must be a positive finite number, got -1.0"),
    (["--epochs-scale", "nan"], "--epochs-scale must be a positive finite number, got nan"),
    (["--epochs-scale", "inf"], "--epochs-scale must be a positive finite number, got inf"),
    (["--synthetic-n", "0"], "--synthetic-n must be an integer of at least 2 (a train and a test pair), got 0"),
    (["--seed", "-1"], "--seed must be an integer from 0 to 4294967295, got -1"),
    (["--batch-size", "0"], "--batch-size must be a positive integer, got 0"),
    (["--test-fraction", "0"], "--test-fraction must be between 0 and 1 (exclusive), got 0.0"),
    (["--name", "../../x"], "--name must be a plain folder name, so the run stays inside --runs-dir "
                            "(no '/', '..' or absolute path), got '../../x'"),
    (["--name", "/tmp/elsewhere"], "got '/tmp/elsewhere'"),
])
def test_train_cli_refuses_bad_values_in_one_line(tmp_path, args, message):
    runs = tmp_path / "a" / "runs"
    r = runner.invoke(app, ["train", "--model", "mean", "--direction", "photo2sketch", "--synthetic-n", "3",
                            "--runs-dir", str(runs), *args])
    assert r.exit_code == 2, r.output
    assert r.output.startswith("error: --") and message in r.output and r.output.count("\n") == 1, r.output
    assert not (tmp_path / "x").exists() and not runs.exists()


@pytest.mark.parametrize("command", ["train-all", "reproduce"])
def test_a_typo_in_models_stops_before_anything_trains(tmp_path, synth_dir, command):
    out = ["--runs-dir", str(tmp_path / "runs")] if command == "train-all" else ["--out", str(tmp_path)]
    r = runner.invoke(app, [command, "--data", str(synth_dir), "--models", "mean,conv_a", *out])
    assert r.exit_code == 2, r.output
    assert r.output == ("error: --models: unknown model 'conv_a'; choose from conv_ae, dense_ae, fsnet, grey, hybrid_ae, "
                        "mean, pencil, unet\n")
    assert not (tmp_path / "runs").exists()


# --- item 10: Ctrl-C prints "interrupted" and leaves no half-written files -----------------------

def _main(monkeypatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["facesketch", *args])
    with pytest.raises(SystemExit) as e:
        main()
    return e.value.code


def test_ctrl_c_prints_interrupted_and_exits_130(tmp_path, monkeypatch, capsys):
    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(T, "train", interrupted)
    code = _main(monkeypatch, "train", "--model", "mean", "--direction", "photo2sketch", "--runs-dir", str(tmp_path))
    assert (code, capsys.readouterr().err) == (130, "interrupted\n")
    # help and usage errors are click's as before; library errors are one line with exit 2
    assert _main(monkeypatch, "train", "--help") == 0
    assert _main(monkeypatch, "train", "--model", "mean") == 2
    capsys.readouterr()
    assert _main(monkeypatch, "train", "--model", "mean", "--direction", "photo2sketch", "--lr", "nan") == 2
    assert capsys.readouterr().err == "error: --lr must be a positive finite number, got nan\n"


def test_ctrl_c_while_the_first_checkpoint_is_written_leaves_no_tmp(tmp_path, tiny_dir, monkeypatch):
    import facesketch.checkpoint as C
    real = C.save_file

    def write_then_interrupt(tensors, filename, metadata=None):
        real(tensors, filename, metadata=metadata)  # the full-size temporary exists now
        raise KeyboardInterrupt
    monkeypatch.setattr(C, "save_file", write_then_interrupt)
    cfg = _cfg(tmp_path, tiny_dir)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, progress=False)
    assert not list(cfg.run_dir.glob("*.tmp")) and not (cfg.run_dir / STATE_FILE).exists()


def test_a_full_disk_while_writing_weights_is_one_line_naming_the_file(tmp_path, tiny_dir, monkeypatch, capsys):
    """safetensors reports a full disk as a SafetensorError, not an OSError: the CLI still says it
    in one line (exit 1), names the file, and leaves no .tmp behind."""
    import facesketch.checkpoint as C
    from safetensors import SafetensorError

    def disk_full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
    monkeypatch.setattr(C, "save_file", disk_full)
    runs = tmp_path / "runs"
    code = _main(monkeypatch, "train", "--model", "conv_ae", "--direction", "photo2sketch", "--data", str(tiny_dir),
                 "--protocol", "random", "--epochs", "1", "--batch-size", "4", "--layout", "nchw",
                 "--precision", "fp32", "--runs-dir", str(runs))
    err = capsys.readouterr().err
    last = err.rsplit("\r", 1)[-1]          # after the progress bars
    assert code == 1 and "Traceback" not in err and last.count("\n") == 1
    assert sum(line.startswith("error:") for line in err.replace("\r", "\n").splitlines()) == 1
    assert last.startswith(f"error: {runs / 'conv_ae-photo2sketch-s0' / STATE_FILE}: could not write it")
    assert "No space left on device" in last
    assert not list(runs.rglob("*.tmp"))


def test_interrupted_config_and_history_writes_leave_no_tmp(tmp_path, monkeypatch):
    def interrupt(*a, **k):
        raise KeyboardInterrupt
    with monkeypatch.context() as m:
        m.setattr(Path, "replace", interrupt)
        with pytest.raises(KeyboardInterrupt):
            RunConfig(model="mean", direction="photo2sketch").save(tmp_path / "config.yaml")
    with monkeypatch.context() as m:
        m.setattr(csv.DictWriter, "writerows", interrupt)
        with pytest.raises(KeyboardInterrupt):
            T._write_history(tmp_path / "history.csv", [{"epoch": 1}])
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# --- item 18: the weights record the device they were computed on --------------------------------

def test_weights_record_the_device_actually_used(tmp_path, tiny_dir):
    learned = train(_cfg(tmp_path, tiny_dir), progress=False).run_dir
    baseline = train(_cfg(tmp_path, tiny_dir, model="mean", device="auto"), progress=False).run_dir
    assert load_meta(learned / MODEL_FILE)["device"] == "cpu"
    assert load_meta(baseline / MODEL_FILE)["device"] == "cpu"  # baselines are fitted on the CPU tensors


# --- item 2: new weights never keep the old run's evaluation --------------------------------------

def _fake_evals(run: Path) -> None:
    for name in ("eval", "eval-other"):
        (run / name).mkdir()
        (run / name / "summary.json").write_text("{}")


def test_overwrite_and_a_resume_that_trains_drop_the_old_evaluation(tmp_path, tiny_dir):
    run = train(_cfg(tmp_path, tiny_dir, model="mean"), progress=False).run_dir
    _fake_evals(run)
    train(_cfg(tmp_path, tiny_dir, model="mean"), overwrite=True, progress=False)
    assert not (run / "eval").exists() and not (run / "eval-other").exists()

    run = train(_cfg(tmp_path, tiny_dir, recalibrate_bn=True), progress=False).run_dir
    weights = (run / MODEL_FILE).read_bytes()
    _fake_evals(run)
    train(_cfg(tmp_path, tiny_dir, recalibrate_bn=True), resume=True, progress=False)  # nothing left to train
    assert (run / "eval" / "summary.json").exists() and (run / MODEL_FILE).read_bytes() == weights
    with pytest.raises(FacesketchError, match="--recalibrate-bn: saved yes, given no"):
        train(_cfg(tmp_path, tiny_dir), resume=True, progress=False)  # refused: nothing changes
    assert (run / "eval" / "summary.json").exists()
    train(_cfg(tmp_path, tiny_dir, epochs=2, recalibrate_bn=True), resume=True, progress=False)
    assert not (run / "eval").exists() and not (run / "eval-other").exists()
    assert _epochs(run) == ["1", "2"] and load_meta(run / MODEL_FILE)["bn_recalibrated"]


# --- item 3: a resume trains the run it finds, or says why not ------------------------------------

def test_resume_with_other_options_fails_naming_them(tmp_path, tiny_dir):
    train(_cfg(tmp_path, tiny_dir, name="r"), progress=False)
    before = (tmp_path / "r" / STATE_FILE).read_bytes()
    with pytest.raises(FacesketchError) as e:
        train(_cfg(tmp_path, tiny_dir, name="r", model="hybrid_ae"), resume=True, progress=False)
    assert "--model: saved conv_ae, given hybrid_ae" in str(e.value)
    with pytest.raises(FacesketchError) as e:
        train(_cfg(tmp_path, tiny_dir, name="r", batch_size=2, seed=5, lr=0.01), resume=True, progress=False)
    assert ("--seed: saved 0, given 5; --batch-size: saved 4, given 2; --lr: saved default, given 0.01"
            in str(e.value)) and "--overwrite" in str(e.value)
    assert (tmp_path / "r" / STATE_FILE).read_bytes() == before  # the refusals touched nothing
    # machine options may differ, and an lr equal to the default is no difference
    train(_cfg(tmp_path, tiny_dir, name="r", device="auto", lr=1e-3), resume=True, progress=False)


def test_resume_cli_reports_the_difference_in_one_line(tmp_path, tiny_dir, monkeypatch, capsys):
    base = ["train", "--direction", "photo2sketch", "--data", str(tiny_dir), "--protocol", "random", "--epochs",
            "1", "--batch-size", "4", "--views", "identity", "--runs-dir", str(tmp_path), "--name", "r"]
    train(_cfg(tmp_path, tiny_dir, name="r"), progress=False)
    assert _main(monkeypatch, *base, "--model", "hybrid_ae", "--resume") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "--model: saved conv_ae, given hybrid_ae" in err


def test_a_longer_schedule_extends_exactly_and_a_shorter_one_fails(tmp_path, tiny_dir):
    short = train(_cfg(tmp_path, tiny_dir, name="x"), progress=False)
    ext = train(_cfg(tmp_path, tiny_dir, name="x", epochs=3), resume=True, progress=False)
    assert ext.notes and "extending the schedule" in ext.notes[0] and "mae x1 -> mae x3" in ext.notes[0]
    assert "--epochs: saved 1, given 3" in ext.notes[0] and short.history == ext.history[:1]
    assert _epochs(ext.run_dir) == ["1", "2", "3"]
    assert RunConfig.load(ext.run_dir / "config.yaml").epochs == 3
    straight = train(_cfg(tmp_path, tiny_dir, name="y", epochs=3), progress=False).run_dir
    _assert_same_tensors(ext.run_dir / STATE_FILE, straight / STATE_FILE)
    _assert_same_tensors(ext.run_dir / MODEL_FILE, straight / MODEL_FILE)
    with pytest.raises(FacesketchError, match=r"--epochs: saved 3, given 2: .* has already trained 3 epochs of "
                                              r"stage 1 \(mae\), more than the 2 given \(use --overwrite"):
        train(_cfg(tmp_path, tiny_dir, name="x", epochs=2), resume=True, progress=False)


def test_train_all_checks_every_kept_run_before_training_anything(tmp_path, tiny_dir):
    done = _cfg(tmp_path, tiny_dir)
    train(done, progress=False)
    fresh = _cfg(tmp_path, tiny_dir, model="mean")
    with pytest.raises(FacesketchError, match="--batch-size: saved 4, given 2"):
        train_all([fresh, _cfg(tmp_path, tiny_dir, batch_size=2)], progress=False)
    assert not fresh.run_dir.exists()
    # a longer schedule (reproduce --epochs-scale 0.05 over a 0.01 run) extends the finished run
    assert train_all([fresh, _cfg(tmp_path, tiny_dir, epochs=2)], progress=False) == [fresh.run_dir, done.run_dir]
    assert _epochs(done.run_dir) == ["1", "2"] and load_meta(done.run_dir / MODEL_FILE)["epoch"] == 2
    train_all([fresh, _cfg(tmp_path, tiny_dir, batch_size=2)], overwrite=True, progress=False)
    assert RunConfig.load(done.run_dir / "config.yaml").batch_size == 2 and _epochs(done.run_dir) == ["1"]


# --- item 21: the two-stage schedule and the GAN resume exactly -----------------------------------

@pytest.fixture(scope="module")
def hybrid_straight(tmp_path_factory, tiny_dir):
    """An uninterrupted hybrid_ae run (mse x1 then mae x1), with the losses of its training steps
    and the optimisers it made recorded."""
    runs, losses, optimizers = tmp_path_factory.mktemp("hybrid"), [], []
    real_opt = S.make_optimizer

    def recording(name):
        real = T.LOSSES[name]

        def loss(pred, tgt, **kw):
            if pred.requires_grad:
                losses.append(name)
            return real(pred, tgt, **kw)
        return loss

    def making(*a, **k):
        optimizers.append(real_opt(*a, **k))
        return optimizers[-1]
    with pytest.MonkeyPatch.context() as m:
        m.setattr(S, "LOSSES", {"mse": recording("mse"), "mae": recording("mae")})
        m.setattr(S, "make_optimizer", making)
        result = train(_cfg(runs, tiny_dir, model="hybrid_ae"), progress=False)
    return result, losses, optimizers


def test_hybrid_stage_two_uses_mae_with_a_fresh_optimiser(hybrid_straight):
    result, losses, optimizers = hybrid_straight
    assert [h["loss"] for h in result.history] == ["mse", "mae"]
    assert losses == ["mse", "mae"]  # one step per epoch: 4 training pairs, batch 4
    assert len(optimizers) == 2 and optimizers[0] is not optimizers[1]
    steps = {k: v.item() for k, v in _tensors(result.run_dir / STATE_FILE).items() if k.endswith(".step")}
    assert steps and set(steps.values()) == {1.0}  # stage 2's Adam counts only its own step


def test_hybrid_resume_across_the_stage_boundary_is_exact(tmp_path, tiny_dir, hybrid_straight, monkeypatch):
    cfg = _cfg(tmp_path, tiny_dir, model="hybrid_ae")
    real = T.LOSSES["mae"]

    def killed(pred, tgt, **kw):
        if pred.requires_grad:
            raise KeyboardInterrupt  # at the first step of stage 2
        return real(pred, tgt, **kw)
    with monkeypatch.context() as m:
        m.setitem(T.LOSSES, "mae", killed)
        with pytest.raises(KeyboardInterrupt):
            train(cfg, progress=False)
    assert load_meta(cfg.run_dir / STATE_FILE)["position"] == {"stage": 0, "stage_epochs_done": 1}
    resumed = train(cfg, resume=True, progress=False)
    assert [h["loss"] for h in resumed.history] == ["mse", "mae"]
    _assert_same_tensors(cfg.run_dir / STATE_FILE, hybrid_straight[0].run_dir / STATE_FILE)
    _assert_same_tensors(cfg.run_dir / MODEL_FILE, hybrid_straight[0].run_dir / MODEL_FILE)


def test_hybrid_finished_stage_cannot_change_its_epochs(hybrid_straight):
    run = hybrid_straight[0].run_dir
    before = (run / STATE_FILE).read_bytes()
    cfg = _cfg(run.parent, Path(RunConfig.load(run / "config.yaml").data), model="hybrid_ae", epochs=2)
    with pytest.raises(FacesketchError, match=r"--epochs: saved 1, given 2: .* has finished stage 1 \(mse x1\) "
                                              r"and moved on, so it cannot become mse x2 \(use --overwrite"):
        train(cfg, resume=True, progress=False)
    assert (run / STATE_FILE).read_bytes() == before


@pytest.mark.slow  # ~35 s on 2 cores: four unet epochs
def test_gan_resume_is_exact_with_the_discriminator(tmp_path, tiny_dir):
    cut = train(_cfg(tmp_path, tiny_dir, model="unet", gan=True, name="cut"), progress=False).run_dir
    assert any(k.startswith("disc.") for k in _tensors(cut / STATE_FILE))
    train(_cfg(tmp_path, tiny_dir, model="unet", gan=True, name="cut", epochs=2), resume=True, progress=False)
    straight = train(_cfg(tmp_path, tiny_dir, model="unet", gan=True, name="straight", epochs=2),
                     progress=False).run_dir
    # every tensor: generator, discriminator, both Adams, RNG
    _assert_same_tensors(cut / STATE_FILE, straight / STATE_FILE)
    _assert_same_tensors(cut / MODEL_FILE, straight / MODEL_FILE)


@pytest.mark.parametrize("model", ["conv_ae", "fsnet"])
def test_the_per_epoch_test_loss_leaves_training_as_it_was(tmp_path, synth_dir, model, monkeypatch):
    """The test curve is read, never learned from: without it (history's test_loss nan), the same
    weights, optimiser and EMA to the bit. conv_ae evaluates the training model itself (its
    batch norm must go back to training mode), fsnet its EMA. Lets the demo's slow test skip it."""
    cfg = lambda name: _cfg(tmp_path, synth_dir, model=model, epochs=2, name=name)
    with_curve = train(cfg("with"), progress=False)
    monkeypatch.setattr(T, "evaluate_loss", lambda *a, **kw: float("nan"))
    without = train(cfg("without"), progress=False)
    assert all(r["test_loss"] > 0 for r in with_curve.history)
    assert all(math.isnan(r["test_loss"]) for r in without.history)  # the patch took effect
    for name in (STATE_FILE, MODEL_FILE):
        _assert_same_tensors(with_curve.run_dir / name, without.run_dir / name)
