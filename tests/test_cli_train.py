import json

from typer.testing import CliRunner

from facesketch.cli import app

runner = CliRunner()


def test_models_json_lists_every_model_with_spec_counts():
    r = runner.invoke(app, ["models", "--json"])
    assert r.exit_code == 0, r.output
    by_name = {m["name"]: m for m in json.loads(r.stdout)}
    assert set(by_name) == {"dense_ae", "conv_ae", "hybrid_ae", "unet", "fsnet", "pencil", "grey", "mean"}
    assert {k: by_name["hybrid_ae"][k] for k in ("image_size", "trainable_params", "non_trainable")} == {
        "image_size": 256, "trainable_params": 1_470_779, "non_trainable": 2_000}
    assert by_name["dense_ae"]["image_size"] == 128
    assert [s["epochs"] for s in by_name["hybrid_ae"]["schedule"]] == [100, 50]
    table = runner.invoke(app, ["models"]).stdout
    assert "425,086,880" in table and "mse x100 + mae x50" in table


def test_train_rejects_bad_arguments_in_one_line(tmp_path):
    r = runner.invoke(app, ["train", "--model", "nope", "--direction", "photo2sketch"])
    assert r.exit_code == 2 and "unknown model 'nope'; choose from conv_ae" in r.output
    r = runner.invoke(app, ["train", "--model", "mean", "--direction", "up"])
    assert r.exit_code == 2 and "photo2sketch or sketch2photo, got 'up'" in r.output
    r = runner.invoke(app, ["train", "--model", "mean", "--direction", "photo2sketch", "--data", str(tmp_path / "x")])
    assert r.exit_code == 2 and "no such file or folder" in r.output


def test_train_baseline_on_builtin_synthetic(tmp_path):
    r = runner.invoke(app, ["train", "--model", "mean", "--direction", "sketch2photo", "--synthetic-n", "5",
                            "--runs-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    run = tmp_path / "mean-sketch2photo-s0"
    assert (run / "model.safetensors").exists() and (run / "split.csv").exists()
    assert (tmp_path / "data-synthetic-n5-s0" / "photos").is_dir()


def test_train_gives_every_option_to_the_run_config(tmp_path, monkeypatch):
    import facesketch.train as T
    seen = []

    def train(cfg, resume, overwrite):
        seen.append((cfg, resume, overwrite))
        return type("Result", (), {"run_dir": cfg.run_dir})()
    monkeypatch.setattr(T, "train", train)
    r = runner.invoke(app, ["train", "-m", "unet", "-d", "sketch2photo", "--data", str(tmp_path), "--protocol",
                            "random", "--seed", "7", "--epochs", "3", "--epochs-scale", "0.5", "--batch-size", "5",
                            "--lr", "0.02", "--device", "cpu", "--precision", "bf16", "--gan", "--runs-dir",
                            str(tmp_path / "r"), "--synthetic-n", "9", "--test-fraction", "0.3", "--name", "x",
                            "--views", "identity", "--recalibrate-bn", "--resume", "--overwrite"])
    assert r.exit_code == 0, r.output
    [(cfg, resume, overwrite)] = seen
    assert (resume, overwrite) == (True, True)
    given = dict(model="unet", direction="sketch2photo", data=str(tmp_path), protocol="random", seed=7, epochs=3,
                 epochs_scale=0.5, batch_size=5, lr=0.02, device="cpu", precision="bf16", gan=True,
                 runs_dir=str(tmp_path / "r"), synthetic_n=9, test_fraction=0.3, name="x", views="identity",
                 recalibrate_bn=True)
    assert {k: getattr(cfg, k) for k in given} == given
    assert r.stdout == f"run folder: {tmp_path / 'r' / 'x'}\n"
