"""`--layout auto` and `--precision auto`: choose per machine, by timing real steps.

The faster memory layout differs between CPUs and between models (on one AVX-512 CPU conv_ae
trained faster in NCHW and hybrid_ae in channels_last, on an AVX2 CPU the other way round), and
bf16 autocast is 1.5x faster on one CPU and 40x slower on another (emulated). A stand-alone
micro-bench once ranked the layouts opposite to the training loop. So nothing is decided in
advance: at the start of a run, `auto` builds the model once per candidate (layout x precision)
and times a few real optimisation steps (the run's own step kind, loss, optimiser and batch
size) on random images of the model's size: one warm-up step each, then two rounds in
alternating order, keeping each candidate's quicker round.

bf16 is a candidate only where the hardware has it natively (a CPU whose oneDNN reports
AVX-512-BF16/AMX, a CUDA GPU with bf16), and it is taken only if it also keeps quality: the same
model from the same initial weights trains QUALITY_STEPS steps on the run's own first training
pairs in fp32 and in bf16, and bf16 must end within QUALITY_TOLERANCE of the progress fp32 made
(the last four losses' mean). Otherwise the fastest fp32 candidate wins. That check (timing the
bf16 candidates, then the two QUALITY_STEPS runs) costs about 19-27 of the run's fp32 steps
(bench/demo_precision.py); bf16 saves a share of each step (37-41% on an AVX-512 CPU for conv_ae
and fsnet), so a run shorter than BF16_WORTH_STEPS steps skips it and trains in fp32, unless an
earlier run on this machine has already made the whole choice, bf16 included, for this model
and batch size (the cache).

Inference (`evaluate`, `sketch`/`photo`, `serve`) chooses the same way with forward passes; there
bf16 must give the same picture as fp32 to within one grey level on average (INFER_TOLERANCE).

On CUDA, the chosen candidate is then timed once more under torch.compile (the compilation is
the warm-up step) and compiled if that is faster; only for runs projected to train at least
COMPILE_WORTH_S seconds uncompiled, since compiling costs about a minute. On the CPU torch.compile measured slower for
conv_ae (bench/README.md) and costs a minute of compilation per candidate, so it is not tried.

A choice is cached per (CPU or GPU model with its AVX-512/AMX flags and any instruction-set cap,
torch version, model with its step kind and model_kwargs, batch size, what was asked) in
the user's cache folder, printed, and saved in the run's config.yaml (`layout_chosen`,
`precision_chosen`); a resumed run keeps its choice.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import re
import time
from contextlib import contextmanager
from pathlib import Path

import torch

LAYOUTS = ("nchw", "channels_last")
PRECISIONS = ("fp32", "bf16")
WARMUP_STEPS, TIMED_ROUNDS = 1, 2
QUALITY_STEPS, QUALITY_BATCH, QUALITY_TOLERANCE = 12, 4, 0.05
INFER_TOLERANCE = 1 / 255
COMPILE_WORTH_S = 600
BF16_WORTH_STEPS = 100

Candidate = tuple[str, str]   # (layout, precision)


def pick(seconds_per_step: dict) -> object:
    """The candidate with the fewest seconds per step (the first one listed on a tie)."""
    if not seconds_per_step:
        raise ValueError("no candidate was timed")
    return min(seconds_per_step, key=lambda k: seconds_per_step[k])


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 runs natively here (not on a slow emulated path)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def candidates(layout: str, precision: str, device: torch.device, *, convolutional: bool = True) -> list[Candidate]:
    """What `auto` chooses among: every layout (one, for a model without convolutions) and, where
    native, both precisions. An explicit --layout or --precision leaves one value."""
    layouts = (LAYOUTS if convolutional else ("nchw",)) if layout == "auto" else (layout,)
    precisions = (PRECISIONS if native_bf16(device) else ("fp32",)) if precision == "auto" else (precision,)
    return [(lay, prec) for prec in precisions for lay in layouts]


def label(c: Candidate) -> str:
    return f"{c[0]} {c[1]}"


# the variables that cap the instruction set the CPU kernels use below what the CPU has: ATen's
# vectorised ops, oneDNN (convolutions; TensorFlow's too) and MKL (PyTorch's matmuls). Setting all
# three to AVX2 on an AVX-512 CPU runs the kernels an AVX2-only CPU would (bench/as_avx2.sh).
ISA_CAPS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


def isa_caps() -> str:
    """The instruction-set caps set in this process's environment ('' when none)."""
    return " ".join(f"{v}={os.environ[v]}" for v in ISA_CAPS if os.environ.get(v))


def processor(device: torch.device) -> str:
    """The CPU's (or GPU's) model name: what a cached choice is valid for."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        text = Path("/proc/cpuinfo").read_text()
        name = re.search(r"^model name\s*:\s*(.+)$", text, re.M).group(1).strip()
        flags = re.search(r"^flags\s*:(.*)$", text, re.M).group(1).split()
    except (OSError, AttributeError):
        name, flags = platform.processor() or platform.machine(), None
    # one model name covers machines with and without AVX-512 / native bf16 ("AMD EPYC" both)
    isa = "" if flags is None else f" [{' '.join(f for f in flags if re.match(r'(avx512|amx)', f)) or 'no avx512'}]"
    # a run whose kernels are capped to fewer instructions times other kernels: its choice is its own
    caps = isa_caps()
    return f"{name}{isa}{f' [capped: {caps}]' if caps else ''}"


def cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "facesketch" / "autotune.json"


def cache_key(model: str, batch: int, device: torch.device, *, layout: str = "auto", precision: str = "auto",
              kind: str = "train") -> str:
    return (f"{processor(device)} | torch {torch.__version__} | {kind} | {model} | batch {batch} | "
            f"layout {layout} | precision {precision}")


def _read_cache() -> dict:
    try:
        return json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}


def _cached(key: str, cands: list[Candidate]) -> tuple[Candidate, dict] | None:
    """(the cached choice, its info) if the cache holds one of `cands` under `key`."""
    entry = _read_cache().get(key)
    if isinstance(entry, dict) and (entry.get("layout"), entry.get("precision")) in cands:
        return (entry["layout"], entry["precision"]), {"source": "cache", "key": key, **entry}
    return None


def check_request(layout: str, precision: str) -> None:
    """--layout and --precision, refused in one line when they name no candidate."""
    from facesketch import FacesketchError
    if layout not in ("auto", *LAYOUTS):
        raise FacesketchError(f"--layout must be auto, nchw or channels_last, got {layout!r}")
    if precision not in ("auto", *PRECISIONS):
        raise FacesketchError(f"--precision must be auto, fp32 or bf16, got {precision!r}")


def inference_input(x: torch.Tensor, layout: str) -> torch.Tensor:
    """A batch in the memory layout inference chose."""
    return x.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else x


def _write_cache(key: str, entry: dict) -> None:
    path = cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _read_cache()
        data[key] = entry
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)
    except OSError:
        pass  # a read-only home only costs a new measurement next time


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_candidates(make_step, batch_shape: tuple[int, ...], device: torch.device,
                    cands: list[Candidate]) -> dict[Candidate, float]:
    """Seconds per training step for each candidate. make_step(layout, precision) -> (step, place), fresh."""
    steps = {}
    for c in cands:
        step, place = make_step(*c)
        step.train()
        src, tgt = place.batch(torch.rand(batch_shape)), place.batch(torch.rand(batch_shape))
        for _ in range(WARMUP_STEPS):
            step(src, tgt)
        steps[c] = (step, src, tgt)
    seconds = {c: [] for c in cands}
    for _ in range(TIMED_ROUNDS):   # alternate, so that drift in the machine's speed hits every candidate
        for c, (step, src, tgt) in steps.items():
            _sync(device)
            t = time.perf_counter()
            step(src, tgt)
            _sync(device)
            seconds[c].append(time.perf_counter() - t)
    return {c: min(s) for c, s in seconds.items()}   # the least disturbed round


def quality_verdict(fp32_losses: list[float], bf16_losses: list[float]) -> dict:
    """bf16 keeps quality if its last losses are within QUALITY_TOLERANCE of fp32's progress."""
    last = min(4, len(fp32_losses))
    end32 = sum(fp32_losses[-last:]) / last
    end16 = sum(bf16_losses[-last:]) / last
    progress = fp32_losses[0] - end32
    ok = progress > 0 and end16 - end32 <= QUALITY_TOLERANCE * progress
    return {"ok": bool(ok), "fp32_loss": round(end32, 5), "bf16_loss": round(end16, 5),
            "fp32_progress": round(progress, 5), "steps": len(fp32_losses)}


def bf16_keeps_quality(make_step, pairs: tuple[torch.Tensor, torch.Tensor], layout: str) -> dict:
    """Train the same model from the same weights on the same batches in fp32 and in bf16."""
    src, tgt = pairs
    losses = {}
    for precision in PRECISIONS:
        torch.manual_seed(0)           # the same initial weights for both
        step, place = make_step(layout, precision)
        step.train()
        losses[precision] = []
        for i in range(QUALITY_STEPS):
            idx = [(i * QUALITY_BATCH + j) % len(src) for j in range(QUALITY_BATCH)]
            losses[precision].append(float(step(place.batch(src[idx]), place.batch(tgt[idx]))))
    return quality_verdict(losses["fp32"], losses["bf16"])


def choose(model: str, batch: int, device: torch.device, make_step, batch_shape: tuple[int, ...], *,
           layout: str = "auto", precision: str = "auto", convolutional: bool = True,
           quality_pairs=None, run_steps: int | None = None) -> tuple[Candidate, dict]:
    """((layout, precision), how it was chosen: {"source": "asked"|"cache"|"measured", "compile": True|False|None,
    ...}) for training. make_step(layout, precision, compiled=False) -> (step, place), fresh;
    quality_pairs() -> (src, tgt) training images for bf16's quality check; run_steps: the run's
    optimisation steps (whether bf16's check and torch.compile could repay their cost; None: unknown, try)."""
    cands = candidates(layout, precision, device, convolutional=convolutional)
    key = cache_key(model, batch, device, layout=layout, precision=precision)
    skipped = {}
    if (precision == "auto" and any(c[1] == "bf16" for c in cands) and not bf16_worth_trying(run_steps)
            and _cached(key, cands) is None):
        # too short to repay bf16's check: choose as --precision fp32 does (and share its cache)
        precision, cands = "fp32", [c for c in cands if c[1] == "fp32"]
        key = cache_key(model, batch, device, layout=layout, precision=precision)
        skipped = {"bf16_skipped": run_steps}
    if len(cands) == 1 and device.type != "cuda":
        return cands[0], {"source": "only" if skipped else "asked", **skipped}
    with _timing_lock():
        choice, info = _choose(key, cands, precision, make_step, batch_shape, device, quality_pairs, run_steps)
    return choice, {**info, **skipped}


def bf16_worth_trying(run_steps: int | None) -> bool:
    """Whether a run is long enough to repay bf16's check (None: length unknown, try)."""
    return run_steps is None or run_steps >= BF16_WORTH_STEPS


@contextmanager
def _timing_lock():
    """One process at a time times candidates for one cache (a lock beside the cache file). Runs
    started together (`--jobs`) would otherwise time each other's load, and the second run of a
    model waits for the first one's choice, then finds it in the cache. Where the cache folder
    cannot be written, or the system or file system has no flock, there is no lock: runs then
    time independently, as they would have anyway."""
    held = None
    try:
        import fcntl
        path = cache_file().with_suffix(".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        f = path.open("a")
    except (ImportError, OSError):
        f = None
    if f is not None:
        try:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print("autotune: waiting for another facesketch process to finish timing "
                      f"({path})", flush=True)
                fcntl.flock(f, fcntl.LOCK_EX)
            held = f
        except OSError:   # no locks on this file system
            f.close()
    try:
        yield
    finally:
        if held is not None:
            fcntl.flock(held, fcntl.LOCK_UN)
            held.close()


def _choose(key: str, cands: list[Candidate], precision: str, make_step, batch_shape: tuple[int, ...],
            device: torch.device, quality_pairs, run_steps: int | None) -> tuple[Candidate, dict]:
    if hit := _cached(key, cands):
        choice, info = hit
        entry = {k: v for k, v in info.items() if k not in ("source", "key")}
        seconds = entry.get("seconds_per_step", {}).get(label(choice))
        # a choice cached by a shorter run did not try torch.compile: a run long enough to repay it does
        if seconds is not None and _maybe_compile(entry, choice, seconds, make_step, batch_shape, device, run_steps):
            _write_cache(key, entry)
            return choice, {"source": "cache", "key": key, **entry}
        return hit
    # the timing draws random images and weights: it must not move the run's own random stream
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        timings = time_candidates(make_step, batch_shape, device, cands)
        choice, quality = pick(timings), None
        if choice[1] == "bf16" and precision == "auto":
            quality = bf16_keeps_quality(make_step, quality_pairs(), choice[0])
            if not quality["ok"]:
                choice = pick({c: s for c, s in timings.items() if c[1] == "fp32"})
    entry = {"layout": choice[0], "precision": choice[1], "compile": None,
             "seconds_per_step": {label(c): round(s, 4) for c, s in timings.items()},
             "bf16_quality": quality, "measured": time.strftime("%Y-%m-%d")}
    _maybe_compile(entry, choice, timings[choice], make_step, batch_shape, device, run_steps)
    _write_cache(key, entry)
    return choice, {"source": "measured", "key": key, **entry}


def compile_worth_trying(seconds_per_step: float, run_steps: int | None) -> bool:
    """torch.compile costs about a minute of compilation (once per run): worth timing only for a
    run projected to train at least COMPILE_WORTH_S uncompiled (None: length unknown, try)."""
    return run_steps is None or seconds_per_step * run_steps >= COMPILE_WORTH_S


def _maybe_compile(entry: dict, choice: Candidate, seconds: float, make_step, batch_shape, device: torch.device,
                   run_steps: int | None) -> bool:
    """On CUDA, time `choice` under torch.compile unless the run is too short to repay it; records
    entry["compile"] (True/False; None: not tried) and entry["compile_skipped"]. True if it timed."""
    if device.type != "cuda" or entry.get("compile") is not None:
        return False
    if not compile_worth_trying(seconds, run_steps):
        entry["compile_skipped"] = round(seconds * run_steps)
        return False
    entry.pop("compile_skipped", None)
    with torch.random.fork_rng(devices=[device]):
        with_compile = time_candidates(lambda lay, prec: make_step(lay, prec, compiled=True), batch_shape, device,
                                       [choice])[choice]
    entry["compile"] = with_compile < seconds
    entry["seconds_per_step"][label((choice[0], choice[1] + "+compile"))] = round(with_compile, 4)
    return True


def describe(choice: Candidate, info: dict) -> str:
    """One line for the log: what was chosen and why."""
    return f"layout {choice[0]}, precision {choice[1]} ({reason(info)})"


def reason(info: dict) -> str:
    """Why a choice was made: asked, cached or measured, with the measurements."""
    how = {"asked": "as asked", "cache": "cached", "measured": "measured",
           "only": "the one candidate"}.get(info["source"], info["source"])
    if info.get("seconds_per_step"):
        how += ": s/step " + ", ".join(f"{k} {v:.3f}" for k, v in info["seconds_per_step"].items())
    q = info.get("bf16_quality")
    if q:
        how += (f"; bf16 {'keeps' if q['ok'] else 'loses'} quality (loss after {q['steps']} steps "
                f"{q['bf16_loss']:.4f} vs fp32 {q['fp32_loss']:.4f})")
    if info.get("compile") is not None:
        how += f"; torch.compile {'faster: on' if info['compile'] else 'not faster: off'}"
    elif info.get("compile_skipped") is not None:
        how += (f"; torch.compile not tried: about {info['compile_skipped']} s of training would not repay "
                f"its compilation")
    if info.get("bf16_skipped") is not None:
        how += (f"; bf16 not tried: a run of {info['bf16_skipped']} steps would not repay its check "
                f"(under {BF16_WORTH_STEPS})")
    d = info.get("bf16_mean_abs_difference")
    if d is not None:
        how += f"; bf16 pictures differ from fp32's by {d * 255:.2f} grey levels on average"
    return how


# ---- inference ---------------------------------------------------------------------------------

def placed(model: torch.nn.Module, layout: str) -> torch.nn.Module:
    return model.to(memory_format=torch.channels_last) if layout == "channels_last" else model


def infer_context(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


@torch.no_grad()
def time_inference(model: torch.nn.Module, batch: int, device: torch.device, cands: list[Candidate],
                   forward) -> tuple[dict[Candidate, float], float | None]:
    """(seconds per batch for each candidate, the largest mean absolute difference between a bf16
    candidate's pictures and fp32's in the same layout, or None without a bf16 candidate)."""
    size = model.image_size
    x = torch.rand(batch, 3, size, size, device=device)
    outputs, seconds = {}, {c: [] for c in cands}
    copies = {lay: placed(copy.deepcopy(model), lay) for lay in dict.fromkeys(c[0] for c in cands)}
    for _ in range(1 + TIMED_ROUNDS):     # the first round warms up
        for c in cands:
            xi = inference_input(x, c[0])
            _sync(device)
            t = time.perf_counter()
            with infer_context(device, c[1]):
                out = forward(copies[c[0]], xi)
            _sync(device)
            seconds[c].append(time.perf_counter() - t)
            outputs[c] = out.float().clamp(0, 1)
    differs = [(outputs[c] - outputs[(c[0], "fp32")]).abs().mean().item()
               for c in cands if c[1] == "bf16" and (c[0], "fp32") in outputs]
    return {c: min(s[1:]) for c, s in seconds.items()}, max(differs, default=None)


def choose_inference(name: str, model: torch.nn.Module, batch: int, device: torch.device, *,
                     layout: str = "auto", precision: str = "auto", forward=None) -> tuple[Candidate, dict]:
    """The (layout, precision) that runs `model` forward fastest here; with precision auto, bf16 only
    where native and where its pictures match fp32's to within INFER_TOLERANCE (mean absolute
    difference). forward(model, x) -> output (default: model(x)). `model` itself is not moved."""
    convolutional = any(isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d) for m in model.modules())
    cands = candidates(layout, precision, device, convolutional=convolutional)
    if len(cands) == 1:
        return cands[0], {"source": "asked"}
    key = cache_key(name, batch, device, layout=layout, precision=precision, kind="infer")
    if hit := _cached(key, cands):
        return hit
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        timings, differs = time_inference(model, batch, device, cands, forward or (lambda m, x: m(x)))
    keeps = precision != "auto" or (differs is not None and differs <= INFER_TOLERANCE)
    choice = pick({c: s for c, s in timings.items() if c[1] == "fp32" or keeps})
    entry = {"layout": choice[0], "precision": choice[1],
             "seconds_per_batch": {label(c): round(s, 4) for c, s in timings.items()},
             "bf16_mean_abs_difference": None if differs is None else round(differs, 5),
             "measured": time.strftime("%Y-%m-%d")}
    _write_cache(key, entry)
    return choice, {"source": "measured", "key": key, **entry}
