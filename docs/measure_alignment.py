"""Does face alignment help or hurt? The README's alignment table, measured on CUFS.

For each test pair of a protocol's split, the shipped weights translate the input three ways:
  direct         the CUFS crop as it is (what `evaluate` scores; `sketch --no-align`)
  aligned        the CUFS crop through face detection and alignment (`sketch`, the default)
  moved+aligned  the crop moved into another framing first (scaled 0.7-1.4x, turned -15..15
                 degrees, shifted, on a larger canvas of its border colour), then aligned
  moved, direct  that moved picture without alignment (`--no-align` on a picture that is not a crop)
Each output is scored against the ground truth at CUFS size (200x250) with the report's metrics
and the standard ones. The moved pictures are drawn from a fixed seed.

    python docs/measure_alignment.py --data ../shared/data/cufs [--protocol paper] [--direction photo2sketch]
"""

from __future__ import annotations

import argparse
import math
import random
from pathlib import Path

import numpy as np
from PIL import Image

from facesketch.data.align import CUFS_SIZE
from facesketch.data.pairs import find_pairs
from facesketch.data.protocols import make_split
from facesketch.direction import DIRECTIONS, Direction
from facesketch.metrics import average, image_metrics
from facesketch.predict import Translator, prepare

SHOWN = ("mae_median", "rmse", "ssim_paper", "ssim", "psnr")


def moved(image: Image.Image, rng: random.Random) -> Image.Image:
    """The picture in another framing: scaled, turned and shifted on a larger canvas."""
    scale, angle = rng.uniform(0.7, 1.4), rng.uniform(-15, 15)
    w, h = image.size
    big = image.resize((round(w * scale), round(h * scale)), Image.BICUBIC)
    big = big.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=image.getpixel((0, 0)))
    cw, ch = big.width + round(rng.uniform(60, 200)), big.height + round(rng.uniform(60, 200))
    canvas = Image.new(image.mode, (cw, ch), image.getpixel((0, 0)))
    canvas.paste(big, (rng.randint(0, cw - big.width), rng.randint(0, ch - big.height)))
    return canvas


def _arr(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("RGB").resize(CUFS_SIZE, Image.BILINEAR), dtype=np.float64) / 255.0


def measure(data: Path, protocol: str, direction: str, seed: int = 0) -> dict[str, dict]:
    d = Direction(direction)
    translator = Translator.shipped("fsnet", d)
    pairs = make_split(find_pairs(data).pairs, protocol).test
    rng = random.Random(seed)
    rows: dict[str, list] = {k: [] for k in ("direct", "aligned", "moved+aligned", "moved, direct")}
    failed = {k: 0 for k in rows}
    for p in pairs:
        src_path, tgt_path = (p.photo, p.sketch) if d == Direction.photo2sketch else (p.sketch, p.photo)
        src, tgt = Image.open(src_path).convert("RGB"), _arr(Image.open(tgt_path))
        far = moved(src, rng)
        for kind, image, align in (("direct", src, False), ("aligned", src, True),
                                   ("moved+aligned", far, True), ("moved, direct", far, False)):
            try:
                crop = prepare(image, align=align)[0].image
            except Exception:  # noqa: BLE001 - a face not found is counted, not fatal
                failed[kind] += 1
                continue
            out = translator([crop])[0]
            rows[kind].append(image_metrics(_arr(out), tgt, sketch=d == Direction.photo2sketch))
    return {k: {**average(v), "n": len(v), "no_face": failed[k]} for k, v in rows.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--protocol", default="paper")
    ap.add_argument("--direction", choices=DIRECTIONS, action="append")
    args = ap.parse_args()
    for direction in args.direction or DIRECTIONS:
        res = measure(args.data, args.protocol, direction)
        print(f"\n{direction}, {args.protocol} test pairs, shipped fsnet, scored at 200x250 (mean per image)\n")
        print("| input | n | no face found | " + " | ".join(SHOWN) + " |")
        print("|---" * (len(SHOWN) + 3) + "|")
        for kind, r in res.items():
            vals = " | ".join("-" if math.isnan(r.get(k, float("nan"))) else f"{r[k]:.4f}" for k in SHOWN) \
                if r["n"] else " | ".join("-" for _ in SHOWN)
            print(f"| {kind} | {r['n']} | {r['no_face']} | {vals} |")


if __name__ == "__main__":
    main()
