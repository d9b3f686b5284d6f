"""`--layout auto`: choose the memory layout per machine, by timing real training steps.

The faster layout differs between CPUs and between models: on one AVX-512 CPU conv_ae trained
faster in NCHW and hybrid_ae in channels_last, on an AVX2 CPU the other way round, and a
stand-alone micro-bench once ranked them opposite to the training loop. So nothing is decided
in advance: at the start of a run, `auto` builds the model once per candidate layout and times a
few real optimisation steps (the run's own step kind, loss, optimiser, batch size and precision)
on random images of the model's size: one warm-up step each, then two rounds in alternating
order, and keeps the faster (each layout's quicker round). A model without convolutions
(dense_ae) has no layout to choose. The choice is
cached per (CPU or GPU model, torch version, model, batch size, precision) in the user's cache
folder, printed, and saved as `layout_chosen` in the run's config.yaml; a resumed run keeps it.
"""

from __future__ import annotations

import json
import os
import platform
import re
import time
from pathlib import Path

import torch

LAYOUTS = ("nchw", "channels_last")
WARMUP_STEPS, TIMED_ROUNDS = 1, 2


def pick(seconds_per_step: dict[str, float]) -> str:
    """The candidate with the fewest seconds per step (the first one listed on a tie)."""
    if not seconds_per_step:
        raise ValueError("no candidate was timed")
    return min(seconds_per_step, key=lambda k: seconds_per_step[k])


def processor(device: torch.device) -> str:
    """The CPU's (or GPU's) model name: what a cached choice is valid for."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        text = Path("/proc/cpuinfo").read_text()
        name = re.search(r"^model name\s*:\s*(.+)$", text, re.M).group(1).strip()
        flags = re.search(r"^flags\s*:(.*)$", text, re.M).group(1).split()
        # one model name covers machines with and without AVX-512 / native bf16 ("AMD EPYC" both)
        return f"{name} [{' '.join(f for f in flags if re.match(r'(avx512|amx)', f)) or 'no avx512'}]"
    except (OSError, AttributeError):
        return platform.processor() or platform.machine()


def cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "facesketch" / "autotune.json"


def cache_key(model: str, batch: int, precision: str, device: torch.device) -> str:
    return f"{processor(device)} | torch {torch.__version__} | {model} | batch {batch} | {precision}"


def _read_cache() -> dict:
    try:
        return json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}


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


def time_layouts(make_step, batch_shape: tuple[int, ...], device: torch.device,
                 layouts=LAYOUTS) -> dict[str, float]:
    """Seconds per training step for each layout. make_step(channels_last) -> (step, place), fresh."""
    steps = {}
    for layout in layouts:
        step, place = make_step(layout == "channels_last")
        step.train()
        src = place.batch(torch.rand(batch_shape))
        tgt = place.batch(torch.rand(batch_shape))
        for _ in range(WARMUP_STEPS):
            step(src, tgt)
        steps[layout] = (step, src, tgt)
    seconds = {layout: [] for layout in layouts}
    for _ in range(TIMED_ROUNDS):   # alternate, so that drift in the machine's speed hits both
        for layout, (step, src, tgt) in steps.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t = time.perf_counter()
            step(src, tgt)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds[layout].append(time.perf_counter() - t)
    return {layout: min(s) for layout, s in seconds.items()}   # the least disturbed round


def choose_layout(model: str, batch: int, precision: str, device: torch.device, make_step,
                  batch_shape: tuple[int, ...]) -> tuple[str, dict]:
    """(the layout, how it was chosen: {"source": "cache"|"measured", "seconds_per_step": {...}})."""
    key = cache_key(model, batch, precision, device)
    cached = _read_cache().get(key)
    if isinstance(cached, dict) and cached.get("layout") in LAYOUTS:
        return cached["layout"], {"source": "cache", "key": key, **cached}
    # the timing draws random images and weights: it must not move the run's own random stream
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        timings = time_layouts(make_step, batch_shape, device)
    choice = pick(timings)
    entry = {"layout": choice, "seconds_per_step": {k: round(v, 4) for k, v in timings.items()},
             "measured": time.strftime("%Y-%m-%d")}
    _write_cache(key, entry)
    return choice, {"source": "measured", "key": key, **entry}
