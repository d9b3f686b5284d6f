"""--layout auto (facesketch.autotune): the faster layout by injected timings, the cache, and what a
run records. No test here times anything: the timings are given."""

from __future__ import annotations

import pytest
import torch
import yaml

from facesketch import autotune
from facesketch.config import RunConfig
from facesketch.train import train


def test_pick_takes_the_fewest_seconds_per_step():
    assert autotune.pick({"nchw": 0.31, "channels_last": 0.52}) == "nchw"
    assert autotune.pick({"nchw": 0.61, "channels_last": 0.52}) == "channels_last"
    assert autotune.pick({"nchw": 0.5, "channels_last": 0.5}) == "nchw"   # a tie keeps the first
    with pytest.raises(ValueError):
        autotune.pick({})


def test_a_choice_is_measured_once_then_cached_per_model_batch_and_precision(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls = []

    def fake(make_step, shape, device, layouts=autotune.LAYOUTS):
        calls.append(shape)
        return {"nchw": 2.0, "channels_last": 1.0} if len(calls) == 1 else {"nchw": 1.0, "channels_last": 2.0}
    monkeypatch.setattr(autotune, "time_layouts", fake)
    cpu = torch.device("cpu")
    first, info = autotune.choose_layout("conv_ae", 16, "fp32", cpu, None, (16, 3, 256, 256))
    assert (first, info["source"]) == ("channels_last", "measured")
    again, info = autotune.choose_layout("conv_ae", 16, "fp32", cpu, None, (16, 3, 256, 256))
    assert (again, info["source"]) == ("channels_last", "cache") and len(calls) == 1
    other, info = autotune.choose_layout("conv_ae", 32, "fp32", cpu, None, (32, 3, 256, 256))
    assert (other, info["source"]) == ("nchw", "measured")   # another batch size is another key
    key = autotune.cache_key("conv_ae", 16, "fp32", cpu)
    assert torch.__version__ in key and autotune.processor(cpu) in key
    assert (tmp_path / "facesketch" / "autotune.json").is_file()


def _run(tmp_path, synth_dir, **kw):
    cfg = RunConfig(model="fsnet", direction="photo2sketch", data=str(synth_dir), epochs=1, views="identity",
                    batch_size=4, runs_dir=str(tmp_path / "runs"), **kw)
    return train(cfg, progress=False)


@pytest.mark.parametrize("timings, expected", [({"nchw": 0.2, "channels_last": 0.9}, "nchw"),
                                               ({"nchw": 0.9, "channels_last": 0.2}, "channels_last")])
def test_a_run_trains_in_the_faster_layout_and_records_it(monkeypatch, tmp_path, synth_dir, capsys, timings, expected):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(autotune, "time_layouts", lambda *a, **k: dict(timings))
    result = _run(tmp_path, synth_dir)
    assert yaml.safe_load((result.run_dir / "config.yaml").read_text())["layout_chosen"] == expected
    assert f"layout: {expected} (measured" in capsys.readouterr().out


def test_asked_layouts_are_kept_and_a_resume_keeps_its_choice(monkeypatch, tmp_path, synth_dir, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(autotune, "time_layouts", lambda *a, **k: {"nchw": 0.9, "channels_last": 0.2})
    asked = _run(tmp_path, synth_dir, layout="nchw", name="asked")
    assert yaml.safe_load((asked.run_dir / "config.yaml").read_text())["layout_chosen"] == "nchw"
    first = _run(tmp_path, synth_dir, name="auto")
    assert yaml.safe_load((first.run_dir / "config.yaml").read_text())["layout_chosen"] == "channels_last"
    # the machine now times the other way, and the cache is gone: the resumed run keeps its layout
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache2"))
    monkeypatch.setattr(autotune, "time_layouts", lambda *a, **k: {"nchw": 0.2, "channels_last": 0.9})
    capsys.readouterr()
    cfg = RunConfig(model="fsnet", direction="photo2sketch", data=str(synth_dir), epochs=2, views="identity",
                    batch_size=4, runs_dir=str(tmp_path / "runs"), name="auto")
    train(cfg, resume=True, progress=False)
    assert "layout: channels_last (as this run chose before)" in capsys.readouterr().out


def test_a_model_without_convolutions_needs_no_timing(monkeypatch, tmp_path, synth_dir, capsys):
    def boom(*a, **k):
        raise AssertionError("dense_ae has nothing to time")
    monkeypatch.setattr(autotune, "time_layouts", boom)
    cfg = RunConfig(model="dense_ae", direction="photo2sketch", data=str(synth_dir), epochs=1, views="identity",
                    batch_size=4, runs_dir=str(tmp_path / "runs"))
    train(cfg, progress=False)
    assert "layout: nchw (no convolutions" in capsys.readouterr().out


def test_time_layouts_runs_real_steps_of_each_layout():
    from facesketch.registry import model_spec
    from facesketch.runtime import Placement
    from facesketch.distributed import DistInfo
    from facesketch.steps import SupervisedStep
    from facesketch.registry import create_model
    cfg = RunConfig(model="conv_ae", direction="photo2sketch")
    seen = []

    def make_step(channels_last):
        place = Placement(torch.device("cpu"), DistInfo(), channels_last)
        model = place.module(create_model("conv_ae"))
        seen.append(next(p for p in model.parameters() if p.dim() == 4).is_contiguous(memory_format=torch.channels_last))
        step = SupervisedStep(model, cfg=cfg, spec=model_spec("conv_ae"), place=place, autocast=torch.autocast("cpu", enabled=False))
        step.start_stage("mae", total_steps=10)
        return step, place
    out = autotune.time_layouts(make_step, (2, 3, 256, 256), torch.device("cpu"))
    assert set(out) == {"nchw", "channels_last"} and all(v > 0 for v in out.values())
    assert seen == [False, True]
