"""One photo end to end, as `facesketch sketch` and the web app do it: decode, find and align the face,
run the flagship, encode the PNG. Timed per stage, alone and while a folder job runs in another
process (`facesketch sketch DIR`, the "app answers while a folder job runs elsewhere" case), at
the folder job's default `--nice 10` and at `--nice 0`.

The photos are real faces that ship inside installed packages (scikit-image's astronaut, 512x512
PNG; matplotlib's Grace Hopper, 512x600 JPEG) and a 12-megapixel version of one (a phone photo).

    python bench/predict_bench.py [--repeats 30] [--no-readme]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from readme_block import write_block  # noqa: E402
from train_bench import cpu_flags  # noqa: E402

from facesketch.data.images import read_image  # noqa: E402
from facesketch.predict import READ_SIDE, Translator, prepare  # noqa: E402

BUDGET_MS = 150.0
STAGES = ("decode", "detect+align", "model", "encode")


def photos(root: Path) -> dict[str, Path]:
    import matplotlib.cbook
    from skimage import data
    a = Image.fromarray(data.astronaut())
    a.save(root / "astronaut.png")
    Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB").save(root / "hopper.jpg", quality=92)
    a.resize((4000, 3000)).save(root / "phone.jpg", quality=90)
    return {"astronaut 512x512 PNG": root / "astronaut.png", "Hopper 512x600 JPEG": root / "hopper.jpg",
            "astronaut 4000x3000 JPEG": root / "phone.jpg"}


def one(translator: Translator, path: Path) -> dict[str, float]:
    t = [time.perf_counter()]
    image, _ = read_image(path, max_side=READ_SIDE)
    t.append(time.perf_counter())
    crop = prepare(image, name=path.name)[0].image
    t.append(time.perf_counter())
    out = translator([crop])[0]
    t.append(time.perf_counter())
    out.save(io.BytesIO(), format="PNG")
    t.append(time.perf_counter())
    times = {s: (t[i + 1] - t[i]) * 1000 for i, s in enumerate(STAGES)}
    times["total"] = (t[-1] - t[0]) * 1000
    return times


def measure(translator: Translator, path: Path, repeats: int) -> dict[str, float]:
    for _ in range(3):
        one(translator, path)
    runs = [one(translator, path) for _ in range(repeats)]
    return {k: statistics.median(r[k] for r in runs) for k in (*STAGES, "total")} | {
        "p90": sorted(r["total"] for r in runs)[int(0.9 * (len(runs) - 1))]}


def folder_job(root: Path, nice: int, n: int = 200) -> subprocess.Popen:
    """`facesketch sketch --nice NICE` on a folder of n photos, in another process."""
    src = root / "folder"
    src.mkdir(exist_ok=True)
    a = Image.open(root / "astronaut.png")
    for i in range(n):
        a.rotate(i % 20 - 10, fillcolor=(200, 200, 200)).save(src / f"p{i:03d}.jpg", quality=90)
    return subprocess.Popen([sys.executable, "-m", "facesketch", "sketch", str(src), "--out", str(root / f"out{nice}"),
                             "--overwrite", "--nice", str(nice)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--no-readme", action="store_true", help="print only; leave bench/README.md alone")
    args = ap.parse_args()
    translator = Translator.shipped("fsnet", "photo2sketch")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        inputs = photos(root)
        for name, path in inputs.items():
            rows.append(("alone", name, measure(translator, path, args.repeats)))
        busy = True
        for nice in (10, 0):   # the default, then --nice 0
            job = folder_job(root, nice)
            time.sleep(3.0)  # let it load its model and start
            try:
                busy = busy and job.poll() is None
                rows.append((f"beside `sketch DIR --nice {nice}`", "astronaut 512x512 PNG",
                             measure(translator, inputs["astronaut 512x512 PNG"], args.repeats)))
                busy = busy and job.poll() is None
            finally:
                job.kill()
                job.wait()
    ok = lambda ms: "met" if ms <= BUDGET_MS else "NOT met"  # noqa: E731
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()} ({cpu_flags()}), {os.cpu_count()} cores, "
             f"{torch.get_num_threads()} torch threads, torch {torch.__version__}; shipped fsnet photo2sketch, "
             f"median of {args.repeats} (ms).", "",
             "| when | photo | decode | detect+align | model | encode | total | 90th pct | budget "
             f"{BUDGET_MS:.0f} ms |", "|---|---|---|---|---|---|---|---|---|"]
    for when, name, r in rows:
        lines.append(f"| {when} | {name} | {r['decode']:.1f} | {r['detect+align']:.1f} | {r['model']:.1f} | "
                     f"{r['encode']:.1f} | {r['total']:.1f} | {r['p90']:.1f} | {ok(r['total'])} |")
    if not busy:
        lines += ["", "(a folder job ended before its measurement did: its row is not a fair test)"]
    print("\n".join(lines))
    if not args.no_readme:
        write_block("predict-latency", lines, "One photo end to end (`python bench/predict_bench.py`)")


if __name__ == "__main__":
    main()
