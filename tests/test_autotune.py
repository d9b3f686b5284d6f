"""--layout auto and --precision auto (facesketch.autotune): the faster candidate by injected
timings, bf16 only where native and where it keeps quality, the cache, and what a run records.
No test here judges a speed: timings are given; the real timing functions are only run."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from facesketch import autotune
from facesketch.config import RunConfig
from facesketch.train import train

CPU = torch.device("cpu")
ROOT = Path(__file__).resolve().parents[1]
FP32 = [("nchw", "fp32"), ("channels_last", "fp32")]
ALL = FP32 + [("nchw", "bf16"), ("channels_last", "bf16")]


def test_pick_takes_the_fewest_seconds_per_step():
    assert autotune.pick({"nchw": 0.31, "channels_last": 0.52}) == "nchw"
    assert autotune.pick({"nchw": 0.61, "channels_last": 0.52}) == "channels_last"
    assert autotune.pick({"nchw": 0.5, "channels_last": 0.5}) == "nchw"   # a tie keeps the first
    with pytest.raises(ValueError):
        autotune.pick({})


@pytest.mark.parametrize("native", [False, True])
def test_bf16_is_a_candidate_only_where_native(monkeypatch, native):
    monkeypatch.setattr(autotune, "native_bf16", lambda device: native)
    assert autotune.candidates("auto", "auto", CPU) == (ALL if native else FP32)
    assert autotune.candidates("auto", "fp32", CPU) == FP32
    assert autotune.candidates("nchw", "bf16", CPU) == [("nchw", "bf16")]   # asked for: taken as asked
    assert autotune.candidates("auto", "auto", CPU, convolutional=False) == \
        ([("nchw", "fp32"), ("nchw", "bf16")] if native else [("nchw", "fp32")])


def test_quality_verdict_compares_bf16_with_the_progress_fp32_made():
    # fsnet before its loss left autocast: bf16 kept only half of fp32's progress
    assert not autotune.quality_verdict([1.33, 1.2, 1.10, 1.06, 1.04, 1.04, 1.05, 1.03],
                                        [1.31, 1.25, 1.21, 1.17, 1.15, 1.16, 1.17, 1.16])["ok"]
    # conv_ae: the same curve to within 0.5% of the progress
    verdict = autotune.quality_verdict([0.888, 0.6, 0.4, 0.32, 0.309, 0.288, 0.305],
                                       [0.888, 0.6, 0.4, 0.32, 0.312, 0.287, 0.311])
    assert verdict["ok"] and verdict["fp32_progress"] == pytest.approx(0.888 - (0.32 + 0.309 + 0.288 + 0.305) / 4,
                                                                       abs=1e-4)
    # fp32 learned nothing in the short run: nothing to judge bf16 by, so it is not taken
    assert not autotune.quality_verdict([0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5])["ok"]


def _choose(monkeypatch, timings, quality_ok=True, precision="auto", model="conv_ae", batch=16, run_steps=None):
    calls = {"time": 0, "quality": 0}

    def fake_time(make_step, shape, device, cands):
        calls["time"] += 1
        return {c: timings[c] for c in cands}

    def fake_quality(make_step, pairs, layout):
        calls["quality"] += 1
        return {"ok": quality_ok, "fp32_loss": 0.3, "bf16_loss": 0.3 if quality_ok else 0.5,
                "fp32_progress": 0.5, "steps": 12}
    monkeypatch.setattr(autotune, "native_bf16", lambda device: True)
    monkeypatch.setattr(autotune, "time_candidates", fake_time)
    monkeypatch.setattr(autotune, "bf16_keeps_quality", fake_quality)
    choice, info = autotune.choose(model, batch, CPU, None, (batch, 3, 256, 256), precision=precision,
                                   quality_pairs=lambda: None, run_steps=run_steps)
    return choice, info, calls


def test_auto_takes_the_fastest_candidate_and_caches_it(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    t = {("nchw", "fp32"): 0.5, ("channels_last", "fp32"): 0.3, ("nchw", "bf16"): 0.6, ("channels_last", "bf16"): 0.4}
    choice, info, calls = _choose(monkeypatch, t)
    assert choice == ("channels_last", "fp32") and info["source"] == "measured"
    assert calls == {"time": 1, "quality": 0}       # fp32 won: no quality check needed
    again, info, calls = _choose(monkeypatch, {c: 1.0 for c in t})
    assert again == choice and info["source"] == "cache" and calls["time"] == 0
    other, info, _ = _choose(monkeypatch, {**t, ("nchw", "fp32"): 0.1}, batch=32)   # another key
    assert other == ("nchw", "fp32") and info["source"] == "measured"
    key = autotune.cache_key("conv_ae", 16, CPU)
    assert torch.__version__ in key and autotune.processor(CPU) in key
    assert (tmp_path / "facesketch" / "autotune.json").is_file()


def test_a_run_with_capped_kernels_keeps_its_choice_apart(monkeypatch, tmp_path):
    """Under bench/as_avx2.sh the kernels are an AVX2 CPU's: what is fastest there is not the
    uncapped CPU's choice, so neither may be read back from the other's cache entry."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for var in autotune.ISA_CAPS:
        monkeypatch.delenv(var, raising=False)
    uncapped = {("nchw", "fp32"): 0.5, ("channels_last", "fp32"): 0.3, ("nchw", "bf16"): 0.6,
                ("channels_last", "bf16"): 0.4}
    choice, info, _ = _choose(monkeypatch, uncapped)
    assert choice == ("channels_last", "fp32") and info["source"] == "measured"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in autotune.processor(CPU) and autotune.isa_caps() == "ONEDNN_MAX_CPU_ISA=AVX2"
    capped, info, calls = _choose(monkeypatch, {**uncapped, ("nchw", "fp32"): 0.2})
    assert capped == ("nchw", "fp32") and info["source"] == "measured" and calls["time"] == 1
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    again, info, calls = _choose(monkeypatch, {c: 1.0 for c in uncapped})
    assert again == choice and info["source"] == "cache" and calls["time"] == 0


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="AVX2 is an x86 instruction set")
def test_as_avx2_runs_a_command_on_avx2_kernels_without_native_bf16():
    """bench/as_avx2.sh, the stand-in for an AVX2-only CPU: ATen's kernels are the AVX2 ones, bf16
    is not native (so auto stays in fp32, as on such a CPU), and a bench names the caps."""
    probe = ("import sys, torch; sys.path.insert(0, 'bench'); from train_bench import cpu_flags; "
             "from facesketch import autotune; print(torch.backends.cpu.get_cpu_capability()); "
             "print(autotune.native_bf16(torch.device('cpu'))); print(cpu_flags())")
    r = subprocess.run(["bash", "bench/as_avx2.sh", sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    capability, native, flags = r.stdout.strip().splitlines()[-3:]
    assert capability == "AVX2" and native == "False"
    for cap in ("ATEN_CPU_CAPABILITY=avx2", "ONEDNN_MAX_CPU_ISA=AVX2", "MKL_ENABLE_INSTRUCTIONS=AVX2",
                "XLA_FLAGS=--xla_cpu_max_isa=AVX2"):
        assert cap in flags
    usage = subprocess.run(["bash", "bench/as_avx2.sh"], cwd=ROOT, capture_output=True, text=True)
    assert usage.returncode == 2 and "usage" in usage.stderr
    missing = subprocess.run(["bash", "bench/as_avx2.sh", "no-such-command-here"], cwd=ROOT, capture_output=True,
                             text=True)
    assert missing.returncode == 2 and "no-such-command-here: no such command" in missing.stderr
    helped = subprocess.run(["bash", "bench/as_avx2.sh", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert helped.returncode == 0 and "AVX2-only CPU" in helped.stdout


def test_a_gan_run_or_other_model_kwargs_time_other_work_and_keep_their_own_choice(monkeypatch, tmp_path, synth_dir):
    """pix2pix steps a discriminator too, and model_kwargs change the model: a supervised run of the
    same model must not reuse their cached choice (nor they its). Plain runs keep their keys."""
    from facesketch.train import tuned_name

    class Chosen(Exception):
        pass

    def stop(name, *args, **kwargs):
        raise Chosen(name)
    monkeypatch.setattr(autotune, "choose", stop)   # a --gan run asks the cache under its own name
    with pytest.raises(Chosen, match=r"^unet \(pix2pix step\)$"):
        _run(tmp_path, synth_dir, model="unet", gan=True)
    plain = RunConfig(model="unet", direction="photo2sketch")
    names = {tuned_name(plain), tuned_name(RunConfig(model="unet", direction="photo2sketch", gan=True)),
             tuned_name(RunConfig(model="unet", direction="photo2sketch", model_kwargs={"width": 32}))}
    assert len(names) == 3 and tuned_name(plain) == "unet"
    assert len({autotune.cache_key(n, 16, CPU) for n in names}) == 3


@pytest.mark.parametrize("quality_ok, expected", [(True, ("nchw", "bf16")), (False, ("channels_last", "fp32"))])
def test_bf16_wins_only_if_it_keeps_quality(monkeypatch, tmp_path, quality_ok, expected):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    t = {("nchw", "fp32"): 0.5, ("channels_last", "fp32"): 0.4, ("nchw", "bf16"): 0.2, ("channels_last", "bf16"): 0.3}
    choice, info, calls = _choose(monkeypatch, t, quality_ok=quality_ok)
    assert choice == expected and calls["quality"] == 1
    assert info["bf16_quality"]["ok"] is quality_ok
    assert ("keeps" if quality_ok else "loses") in autotune.describe(choice, info)


def test_asked_bf16_needs_no_quality_check(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    t = {("nchw", "bf16"): 0.4, ("channels_last", "bf16"): 0.3}
    choice, _, calls = _choose(monkeypatch, t, quality_ok=False, precision="bf16")
    assert choice == ("channels_last", "bf16") and calls["quality"] == 0


def test_a_run_too_short_to_repay_the_bf16_check_trains_in_fp32(monkeypatch, tmp_path):
    """bf16 is faster here, but 32 steps cannot repay its timing and quality check: auto times
    only the fp32 layouts, says why, and caches that under --precision fp32's key, so a longer run
    (or one of unknown length) still tries bf16, and a short run then takes the choice it cached."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    t = {("nchw", "fp32"): 0.5, ("channels_last", "fp32"): 0.4, ("nchw", "bf16"): 0.2, ("channels_last", "bf16"): 0.3}
    short = autotune.BF16_WORTH_STEPS - 1
    choice, info, calls = _choose(monkeypatch, t, run_steps=short)
    assert choice == ("channels_last", "fp32") and calls == {"time": 1, "quality": 0}
    assert set(info["seconds_per_step"]) == {"nchw fp32", "channels_last fp32"}
    assert info["key"] == autotune.cache_key("conv_ae", 16, CPU, precision="fp32")
    assert f"bf16 not tried: a run of {short} steps would not repay" in autotune.describe(choice, info)
    for steps in (autotune.BF16_WORTH_STEPS, None):   # long enough, or unknown: bf16 is tried
        tmp = tmp_path / str(steps)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp))
        choice, info, calls = _choose(monkeypatch, t, run_steps=steps)
        assert choice == ("nchw", "bf16") and calls == {"time": 1, "quality": 1} and "bf16_skipped" not in info
    # this machine has chosen with bf16 already: the short run takes that choice from the cache
    choice, info, calls = _choose(monkeypatch, t, run_steps=short)
    assert choice == ("nchw", "bf16") and info["source"] == "cache" and calls["time"] == 0


def test_a_short_run_of_a_model_without_convolutions_has_one_candidate_left(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(autotune, "native_bf16", lambda device: True)
    choice, info = autotune.choose("dense_ae", 16, CPU, None, (16, 3, 128, 128), convolutional=False, run_steps=16)
    assert choice == ("nchw", "fp32") and info["source"] == "only"
    assert autotune.reason(info).startswith("the one candidate; bf16 not tried: a run of 16 steps")


def _run(tmp_path, synth_dir, **kw):
    cfg = RunConfig(**{"model": "fsnet", **kw}, direction="photo2sketch", data=str(synth_dir), epochs=1,
                    views="identity", batch_size=4, runs_dir=str(tmp_path / "runs"))
    return train(cfg, progress=False)


def _saved(result):
    c = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    return c["layout_chosen"], c["precision_chosen"]


@pytest.mark.parametrize("fastest", [("nchw", "fp32"), ("channels_last", "bf16")])
def test_a_run_trains_with_the_choice_and_records_it(monkeypatch, tmp_path, synth_dir, capsys, fastest):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(autotune, "native_bf16", lambda device: True)
    monkeypatch.setattr(autotune, "BF16_WORTH_STEPS", 1)   # a one-epoch run, long enough here
    monkeypatch.setattr(autotune, "time_candidates", lambda m, s, d, cands: {c: 0.1 if c == fastest else 0.9
                                                                             for c in cands})
    seen = []
    monkeypatch.setattr(autotune, "bf16_keeps_quality",
                        lambda make_step, pairs, layout: seen.append(pairs) or {"ok": True, "fp32_loss": 0.2,
                                                                                "bf16_loss": 0.2, "fp32_progress": 0.3,
                                                                                "steps": 12})
    autocasts = []
    import facesketch.train as T
    real = T._autocast
    monkeypatch.setattr(T, "_autocast", lambda precision, place, quiet=False: autocasts.append(precision)
                        or real(precision, place, quiet=True))
    result = _run(tmp_path, synth_dir)
    assert _saved(result) == fastest
    assert autocasts[-1] == fastest[1]        # the run's own step, built last, trains in that precision
    assert f"layout: {fastest[0]}, precision: {fastest[1]} (measured" in capsys.readouterr().out
    if fastest[1] == "bf16":   # the quality check trained on the run's own pairs: photos in, sketches out
        src, tgt = seen[0]
        assert src.shape[1:] == (3, 256, 256) and len(src) == len(tgt) >= 4


def test_asked_values_are_kept_and_a_resume_keeps_its_choice(monkeypatch, tmp_path, synth_dir, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(autotune, "native_bf16", lambda device: False)
    monkeypatch.setattr(autotune, "time_candidates", lambda m, s, d, cands: {c: 0.1 if c[0] == "channels_last"
                                                                             else 0.9 for c in cands})
    asked = _run(tmp_path, synth_dir, layout="nchw", precision="fp32", name="asked")
    assert _saved(asked) == ("nchw", "fp32")
    first = _run(tmp_path, synth_dir, name="auto")
    assert _saved(first) == ("channels_last", "fp32")
    # the machine now times the other way, and the cache is gone: the resumed run keeps its choice
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache2"))
    monkeypatch.setattr(autotune, "time_candidates", lambda m, s, d, cands: {c: 0.1 if c[0] == "nchw"
                                                                             else 0.9 for c in cands})
    capsys.readouterr()
    cfg = RunConfig(model="fsnet", direction="photo2sketch", data=str(synth_dir), epochs=2, views="identity",
                    batch_size=4, runs_dir=str(tmp_path / "runs"), name="auto")
    train(cfg, resume=True, progress=False)
    assert "layout: channels_last, precision: fp32 (as this run chose before)" in capsys.readouterr().out


def test_a_run_from_before_precision_auto_resumes_in_its_precision(tmp_path, synth_dir, capsys):
    old = _run(tmp_path, synth_dir, layout="nchw", precision="fp32", name="old")
    text = (old.run_dir / "config.yaml").read_text().replace("precision_chosen: fp32\n", "")
    (old.run_dir / "config.yaml").write_text(text)   # as such a run's config.yaml reads
    cfg = RunConfig(model="fsnet", direction="photo2sketch", data=str(synth_dir), epochs=2, views="identity",
                    batch_size=4, runs_dir=str(tmp_path / "runs"), name="old")   # precision: auto
    train(cfg, resume=True, progress=False)
    assert "layout: nchw, precision: fp32 (as this run chose before)" in capsys.readouterr().out


def test_a_model_without_convolutions_times_no_layouts(monkeypatch, tmp_path, synth_dir, capsys):
    monkeypatch.setattr(autotune, "native_bf16", lambda device: False)

    def boom(*a, **k):
        raise AssertionError("dense_ae in fp32 has nothing to time")
    monkeypatch.setattr(autotune, "time_candidates", boom)
    # 16 px: the same layers, 29 million parameters instead of 425 million (a 5 GB checkpoint)
    cfg = RunConfig(model="dense_ae", direction="photo2sketch", data=str(synth_dir), epochs=1, views="identity",
                    batch_size=4, runs_dir=str(tmp_path / "runs"), model_kwargs={"image_size": 16})
    train(cfg, progress=False)
    assert "layout: nchw, precision: fp32 (as asked; no convolutions" in capsys.readouterr().out


def _make_step(model_name="conv_ae"):
    from facesketch.distributed import DistInfo
    from facesketch.registry import create_model, model_spec
    from facesketch.runtime import Placement
    from facesketch.steps import SupervisedStep
    cfg = RunConfig(model=model_name, direction="photo2sketch")
    built = []

    def make_step(layout, precision):
        place = Placement(CPU, DistInfo(), layout == "channels_last")
        model = place.module(create_model(model_name))
        built.append((layout, precision, next(p for p in model.parameters() if p.dim() == 4)
                      .is_contiguous(memory_format=torch.channels_last),
                      {k: v.clone() for k, v in model.state_dict().items()}))
        step = SupervisedStep(model, cfg=cfg, spec=model_spec(model_name), place=place,
                              autocast=torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"))
        step.start_stage("mae", total_steps=10)
        return step, place
    return make_step, built


def test_time_candidates_runs_real_steps_of_each_candidate():
    make_step, built = _make_step()
    out = autotune.time_candidates(make_step, (2, 3, 256, 256), CPU, FP32)
    assert set(out) == set(FP32) and all(v > 0 for v in out.values())
    assert [(lay, cl) for lay, _, cl, _ in built] == [("nchw", False), ("channels_last", True)]


def test_the_quality_check_trains_both_precisions_from_the_same_weights(monkeypatch):
    monkeypatch.setattr(autotune, "QUALITY_STEPS", 3)
    make_step, built = _make_step()
    pairs = (torch.rand(6, 3, 256, 256), torch.rand(6, 3, 256, 256))
    verdict = autotune.bf16_keeps_quality(make_step, pairs, "nchw")
    assert verdict["steps"] == 3 and set(verdict) >= {"ok", "fp32_loss", "bf16_loss", "fp32_progress"}
    assert [b[1] for b in built] == ["fp32", "bf16"]
    first, second = built[0][3], built[1][3]
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_the_loss_is_computed_outside_autocast(monkeypatch):
    """Under bf16 autocast the SSIM loss's window convolutions ran in bf16 and fsnet learned at half the pace."""
    from facesketch import steps
    seen = []

    def loss(out, tgt):
        seen.append((torch.is_autocast_enabled("cpu"), out.dtype))
        return (out - tgt).abs().mean()
    monkeypatch.setitem(steps.LOSSES, "mae", loss)
    make_step, _ = _make_step()
    step, _ = make_step("nchw", "bf16")
    step(torch.rand(2, 3, 256, 256), torch.rand(2, 3, 256, 256))
    assert seen == [(False, torch.float32)]


@pytest.mark.parametrize("differs, expected", [(0.5 / 255, ("nchw", "bf16")), (3 / 255, ("channels_last", "fp32"))])
def test_inference_takes_bf16_only_if_its_pictures_match(monkeypatch, tmp_path, differs, expected):
    from facesketch.registry import create_model
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(autotune, "native_bf16", lambda device: True)
    t = {("nchw", "fp32"): 0.5, ("channels_last", "fp32"): 0.4, ("nchw", "bf16"): 0.2, ("channels_last", "bf16"): 0.3}
    monkeypatch.setattr(autotune, "time_inference", lambda model, batch, device, cands, forward: (
        {c: t[c] for c in cands}, differs))
    choice, info = autotune.choose_inference("conv_ae", create_model("conv_ae"), 4, CPU)
    assert choice == expected and info["bf16_mean_abs_difference"] == pytest.approx(differs, abs=1e-5)


def test_time_inference_runs_each_candidate_and_measures_bf16_against_fp32():
    from facesketch.registry import create_model
    model = create_model("conv_ae").eval()
    timings, differs = autotune.time_inference(model, 2, CPU, ALL, lambda m, x: m(x))
    assert set(timings) == set(ALL) and all(v > 0 for v in timings.values())
    assert differs is not None and 0 < differs < 0.05     # bf16 rounds: close, not equal
    assert next(model.parameters()).is_contiguous()      # the caller's model is left as it was


@pytest.mark.parametrize("compiled_seconds, expected", [(0.05, True), (0.5, False)])
def test_on_cuda_torch_compile_is_kept_only_if_faster(monkeypatch, tmp_path, compiled_seconds, expected):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(autotune, "processor", lambda device: "a GPU")
    import contextlib
    monkeypatch.setattr(torch.random, "fork_rng", lambda **k: contextlib.nullcontext())   # no CUDA here
    monkeypatch.setattr(autotune, "native_bf16", lambda device: False)
    built = []
    calls = []

    def fake_time(make_step, shape, device, cands):
        calls.append(cands)
        if len(calls) == 1:
            return {("nchw", "fp32"): 0.2, ("channels_last", "fp32"): 0.1}
        make_step(*cands[0])     # the second timing builds the chosen candidate compiled
        return {cands[0]: compiled_seconds}
    monkeypatch.setattr(autotune, "time_candidates", fake_time)
    choice, info = autotune.choose("conv_ae", 16, torch.device("cuda"),
                                   lambda lay, prec, compiled=False: built.append((lay, prec, compiled)),
                                   (16, 3, 256, 256))
    assert choice == ("channels_last", "fp32") and calls[1] == [choice]
    assert built == [("channels_last", "fp32", True)] and info["compile"] is expected
    assert ("faster: on" if expected else "not faster: off") in autotune.describe(choice, info)


def test_no_compile_is_tried_on_the_cpu(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    t = {("nchw", "fp32"): 0.5, ("channels_last", "fp32"): 0.3, ("nchw", "bf16"): 0.6, ("channels_last", "bf16"): 0.4}
    _, info, calls = _choose(monkeypatch, t)
    assert info["compile"] is None and calls["time"] == 1


def test_a_compiled_placement_compiles_the_module_a_step_calls(monkeypatch):
    from facesketch.distributed import DistInfo
    from facesketch.runtime import Placement
    monkeypatch.setattr(torch, "compile", lambda m: ("compiled", m))
    m = torch.nn.Conv2d(3, 3, 3)
    assert Placement(CPU, DistInfo(), compiled=True).wrap(m) == ("compiled", m)
    assert Placement(CPU, DistInfo()).wrap(m) is m


def _cuda_choose(monkeypatch, tmp_path, run_steps, calls):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(autotune, "processor", lambda device: "a GPU")
    import contextlib
    monkeypatch.setattr(torch.random, "fork_rng", lambda **k: contextlib.nullcontext())   # no CUDA here
    monkeypatch.setattr(autotune, "native_bf16", lambda device: False)

    def fake_time(make_step, shape, device, cands):
        calls.append(cands)
        return {("nchw", "fp32"): 0.02, ("channels_last", "fp32"): 0.01} if len(cands) > 1 else {cands[0]: 0.005}
    monkeypatch.setattr(autotune, "time_candidates", fake_time)
    return autotune.choose("conv_ae", 16, torch.device("cuda"), lambda lay, prec, compiled=False: None,
                           (16, 3, 256, 256), run_steps=run_steps)


def test_torch_compile_is_not_tried_for_a_run_too_short_to_repay_it(monkeypatch, tmp_path):
    calls = []
    short = int(autotune.COMPILE_WORTH_S / 0.01) // 2          # half the training time compiling needs
    choice, info = _cuda_choose(monkeypatch, tmp_path, short, calls)
    assert len(calls) == 1 and info["compile"] is None and info["compile_skipped"] == round(0.01 * short)
    assert "torch.compile not tried" in autotune.describe(choice, info)
    # a longer run with the same request finds the cached choice and now tries compiling it
    choice, info = _cuda_choose(monkeypatch, tmp_path, short * 4, calls)
    assert info["source"] == "cache" and calls[1:] == [[choice]] and info["compile"] is True
    assert "compile_skipped" not in info
    # ... and the cache remembers that, so a third run times nothing
    _, info = _cuda_choose(monkeypatch, tmp_path, short * 4, calls)
    assert len(calls) == 2 and info["compile"] is True
