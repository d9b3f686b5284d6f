"""Training and inference speed per model, against this machine's matmul ceiling.

For each model: training images/s (batch 16 and 32, fp32, eager NCHW vs channels_last, with and
without transparent huge pages, and the default the trainer uses), inference images/s, peak RSS of the process, achieved GFLOP/s from
counted multiply-adds, and the ratio to the fp32 matmul ceiling measured in the same run. bf16
is measured where the CPU has native bf16 (oneDNN AVX-512-BF16/AMX); elsewhere it is emulated
hundreds of times slower, and only the bf16 matmul and one conv_ae inference batch are timed.
torch.compile is timed for conv_ae training. With --keras-python, the same three models built
in Keras (bench/keras_bench.py) are timed in the same run with that interpreter, which must have
TensorFlow installed (facesketch does not depend on it). Each configuration runs in a fresh
subprocess, one at a time. Writes the tables into bench/README.md.

    python bench/train_bench.py [--models conv_ae,hybrid_ae] [--seconds 20] [--keras-python tf-venv/bin/python]
"""

from __future__ import annotations

from facesketch.process import configure_process

configure_process()  # huge pages, as the facesketch command sets them, before torch allocates

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

from readme_block import write_block

KERAS_TARGET = {"dense_ae": 10.3, "conv_ae": 33.0, "hybrid_ae": 2.4}  # images/s, batch 16, fp32 (issue #3)


def _child(spec: dict) -> dict:
    import resource

    import torch
    import torch.nn.functional as F

    from facesketch.registry import create_model
    torch.manual_seed(0)
    if spec["kind"] == "matmul":
        dtype = torch.bfloat16 if spec["precision"] == "bf16" else torch.float32
        best = 0.0  # a ceiling: the best size and the best one-second window, so a busy moment does not lower it
        for size in (1024, 2048, 3072):
            a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
            t = time.perf_counter()
            a @ b
            if time.perf_counter() - t > 1.0:  # emulated (no native kernel): one product is measurement enough
                return {"gflops": 2 * size**3 / (time.perf_counter() - t) / 1e9}
            for _ in range(max(2, min(int(spec["seconds"]) // 3, 4))):
                n, t = 0, time.perf_counter()
                while time.perf_counter() - t < 1.0 or n < 1:
                    a @ b
                    n += 1
                best = max(best, 2 * size**3 * n / (time.perf_counter() - t) / 1e9)
        return {"gflops": best}
    model = create_model(spec["model"])
    s, bs = model.image_size, spec["batch"]
    macs = count_macs(model, s)
    cl = spec["layout"] == "channels_last"
    if cl:
        model = model.to(memory_format=torch.channels_last)
    x, y = torch.rand(bs, 3, s, s), torch.rand(bs, 3, s, s)
    if cl:
        x, y = x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=spec["precision"] == "bf16")
    opt = torch.optim.Adam(model.parameters(), eps=1e-7, fused=True)
    forward = torch.compile(model) if spec.get("compile") else model

    def step():
        if spec["kind"] == "train":
            model.train()
            with autocast:
                loss = F.l1_loss(forward(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        else:
            model.eval()
            with torch.no_grad(), autocast:
                forward(x)

    step()
    step()  # torch.compile traces on the first call and again when grad mode or train/eval first changes
    n, t = 0, time.perf_counter()
    while (time.perf_counter() - t < spec["seconds"] and n < 50) or n < 2:
        step()
        n += 1
    ips = n * bs / (time.perf_counter() - t)
    flops = 2 * macs * (3 if spec["kind"] == "train" else 1)
    return {"images_per_s": ips, "gflops": ips * flops / 1e9,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def count_macs(model, size: int) -> int:
    """Multiply-adds of one forward pass on one image (convs, transposed convs, linears)."""
    import torch
    import torch.nn as nn
    total = 0

    def hook(m, inp, out):
        nonlocal total
        if isinstance(m, nn.Conv2d):
            total += out[0].numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.ConvTranspose2d):
            total += inp[0][0].numel() * m.out_channels * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            total += m.in_features * m.out_features
        elif type(m).__name__ == "UpConvT":  # hybrid_ae's upsampling + transposed conv, counted as Keras runs it
            total += out[0].numel() * m.weight.shape[0] * m.weight.shape[-1] ** 2
    hooks = [m.register_forward_hook(hook) for m in model.modules()
             if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) or type(m).__name__ == "UpConvT"]
    def run_head(m, inp, out) -> None:
        model.head(out)
    if hasattr(model, "head_as_one"):  # conv_ae runs its two head convs as one: count them as Keras runs them
        hooks.append(model.blocks.register_forward_hook(run_head))
    model.eval()
    with torch.no_grad():
        model(torch.rand(1, 3, size, size))
    for h in hooks:
        h.remove()
    return total


def run(spec: dict) -> dict:
    env = {**os.environ, "THP_MEM_ALLOC_ENABLE": "0" if spec.get("thp") == "off" else "1"}
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                         timeout=spec.get("timeout", 900), env=env)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def cpu_flags() -> str:
    from facesketch.autotune import isa_caps
    try:
        flags = re.search(r"^flags\s*:(.*)$", Path("/proc/cpuinfo").read_text(), re.M).group(1).split()
    except (OSError, AttributeError):
        return platform.processor()
    # kernels capped below the CPU's flags (bench/as_avx2.sh): say so beside them
    xla = re.search(r"--xla_cpu_max_isa=\S+", os.environ.get("XLA_FLAGS", ""))
    caps = " ".join(filter(None, (isa_caps(), xla and f"XLA_FLAGS={xla.group(0)}")))
    return " ".join(f for f in flags if re.match(r"(avx|fma|amx)", f)) + (
        f"; kernels capped by {caps}" if caps else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="dense_ae,conv_ae,hybrid_ae,unet")
    ap.add_argument("--seconds", type=float, default=15.0, help="time per configuration")
    ap.add_argument("--keras-python", help="a Python interpreter with TensorFlow: time the Keras builds too")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        from facesketch.process import kept_heap
        with kept_heap():     # as facesketch.train runs its loop (src/facesketch/process.py)
            print(json.dumps(_child(json.loads(args.child))))
        return
    if args.keras_python:  # fail now, not after the PyTorch rows
        probe = subprocess.run([args.keras_python, "-c", "import keras, tensorflow"], capture_output=True, text=True) \
            if Path(args.keras_python).is_file() else None
        if probe is None or probe.returncode != 0:
            raise SystemExit(f"--keras-python {args.keras_python}: expected a Python interpreter with TensorFlow "
                             "installed (python3 -m venv /tmp/tf && /tmp/tf/bin/pip install tensorflow-cpu)")
    import torch
    native_bf16 = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    ceiling = {p: run({"kind": "matmul", "precision": p, "seconds": args.seconds}).get("gflops", float("nan"))
               for p in ("fp32", "bf16")}
    print(f"matmul ceiling: fp32 {ceiling['fp32']:.1f} GFLOP/s, bf16 {ceiling['bf16']:.1f} GFLOP/s", flush=True)
    rows = []
    from facesketch.registry import model_spec
    for name in args.models.split(","):
        default_layout = "channels_last" if model_spec(name).channels_last else "nchw"
        configs = [("train", 16, "nchw", "fp32"), ("train", 16, "channels_last", "fp32"),
                   ("train", 16, default_layout, "fp32", "off"),
                   ("train", 32, default_layout, "fp32"), ("infer", 16, default_layout, "fp32"),
                   ("infer", 32, default_layout, "fp32")]
        if name == "conv_ae":
            configs += [("train", 16, default_layout + "+compile", "fp32")]
        if native_bf16:
            configs += [("train", 16, default_layout, "bf16"), ("infer", 16, default_layout, "bf16")]
        elif name == "conv_ae":
            configs += [("infer", 16, default_layout, "bf16")]
        for kind, bs, layout, prec, *thp in configs:
            thp = thp[0] if thp else "on"
            r = run({"kind": kind, "model": name, "batch": bs, "layout": layout.removesuffix("+compile"),
                     "compile": layout.endswith("+compile"), "precision": prec, "seconds": args.seconds, "thp": thp})
            row = {"model": name, "kind": kind, "batch": bs, "layout": layout, "precision": prec, "thp": thp,
                   "default": layout == default_layout and thp == "on", **r}
            rows.append(row)
            print(json.dumps(row), flush=True)
    # measured again after the models: the higher of the two is the ceiling (conservative ratios)
    end = run({"kind": "matmul", "precision": "fp32", "seconds": args.seconds}).get("gflops", float("nan"))
    print(f"matmul ceiling at the end: fp32 {end:.1f} GFLOP/s", flush=True)
    ceiling["fp32_start"], ceiling["fp32_end"] = ceiling["fp32"], end
    ceiling["fp32"] = max(ceiling["fp32"], end)
    keras = run_keras(args.keras_python, args.models, args.seconds) if args.keras_python else []
    write_readme(rows, ceiling, native_bf16, keras)


def run_keras(python: str, models: str, seconds: float) -> list[dict]:
    """bench/keras_bench.py under an interpreter that has TensorFlow, one model per process."""
    rows = []
    for name in models.split(","):
        if name not in KERAS_TARGET:
            continue
        for jit in ("auto", "off"):
            out = subprocess.run([python, str(Path(__file__).with_name("keras_bench.py")), "--models", name,
                                  "--seconds", str(seconds), "--jit", jit], capture_output=True, text=True, timeout=1800)
            if out.returncode != 0:
                tail = out.stderr.strip().splitlines()
                rows.append({"model": name, "jit_compile": jit, "error": tail[-1] if tail else f"exit {out.returncode}"})
            else:
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def keras_lines(rows: list[dict], keras: list[dict], ceiling: float) -> list[str]:
    ours = {r["model"]: r for r in rows if r["kind"] == "train" and r["batch"] == 16 and r["default"]
            and r["precision"] == "fp32" and "error" not in r}
    versions = next((f"TensorFlow {k['tensorflow']}, Keras {k['keras']}" for k in keras if "error" not in k), "")
    lines = ["", f"Side by side with Keras on this machine, same run ({versions}; training, batch 16, fp32; "
             "parameter counts checked against the spec):", "",
             "| model | Keras jit_compile | Keras images/s | Keras % fp32 ceiling | facesketch default images/s | facesketch / Keras |",
             "|---|---|---|---|---|---|"]
    for k in keras:
        if "error" in k:
            lines.append(f"| {k['model']} | {k['jit_compile']} | error: {k['error']} | | | |")
            continue
        o = ours.get(k["model"])
        pct = f"{100 * k['images_per_s'] * o['gflops'] / o['images_per_s'] / ceiling:.0f}%" if o else ""
        lines.append(f"| {k['model']} | {k['jit_compile']} | {k['images_per_s']:.2f} | {pct} | "
                     f"{o['images_per_s']:.2f} | {o['images_per_s'] / k['images_per_s']:.2f}x |" if o else
                     f"| {k['model']} | {k['jit_compile']} | {k['images_per_s']:.2f} | | | |")
    return lines


def write_readme(rows, ceiling, native_bf16, keras=()) -> None:
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()} ({cpu_flags()}), "
             f"torch {__import__('torch').__version__}, {__import__('os').cpu_count()} cores. "
             f"Native bf16: {'yes' if native_bf16 else 'NO (oneDNN reports no AVX-512-BF16/AMX)'}.", "",
             f"Matmul ceiling (best of square sizes 1024-3072 and of one-second windows, measured before and "
             f"after the models in the same run: {ceiling['fp32_start']:.1f} and {ceiling['fp32_end']:.1f}): "
             f"fp32 **{ceiling['fp32']:.1f}** GFLOP/s, bf16 **{ceiling['bf16']:.1f}** GFLOP/s.", "",
             "| model | kind | batch | layout | precision | huge pages | images/s | GFLOP/s | % fp32 ceiling | vs Keras target | peak RSS MiB |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['kind']} | {r['batch']} | {r['layout']} | {r['precision']} | "
                         f"{r['thp']} | error: {r['error']} | | | | |")
            continue
        target = KERAS_TARGET.get(r["model"]) if r["kind"] == "train" and r["batch"] == 16 else None
        vs = f"{r['images_per_s'] / target:.2f}x of {target}" if target else ""
        mark = " (default)" if r["default"] else ""
        lines.append(f"| {r['model']} | {r['kind']} | {r['batch']} | {r['layout']}{mark} | {r['precision']} | {r['thp']} | "
                     f"{r['images_per_s']:.2f} | {r['gflops']:.1f} | {100 * r['gflops'] / ceiling['fp32']:.0f}% | "
                     f"{vs} | {r['peak_rss_mib']:.0f} |")
    if keras:
        lines += keras_lines(rows, keras, ceiling["fp32"])
    write_block("train_bench", lines, "Training and inference speed (`python bench/train_bench.py`)")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
