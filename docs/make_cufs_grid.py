"""The README's figure of real CUFS test faces (paper split, test identities only), both directions:
input, ground truth, fsnet from the shipped weights, pencil, and conv_ae when its runs are given.

    python docs/make_cufs_grid.py --data ../shared/data/cufs [--conv-ae RUN_P2S RUN_S2P]

Kept small on purpose (a derived research figure, not the dataset): a few faces at 112 px.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from facesketch.data.images import load_array
from facesketch.data.pairs import find_pairs
from facesketch.data.protocols import make_split
from facesketch.direction import DIRECTIONS
from facesketch.evaluate import load_run_model
from facesketch.registry import create_model
from facesketch.shipped import load_shipped

TILE, LABEL_H = 112, 18
OUT = Path(__file__).with_name("cufs_test_grid.jpg")


def _predict(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        y = model(torch.from_numpy(x).permute(2, 0, 1)[None].float())
    return y[0].clamp(0, 1).permute(1, 2, 0).numpy()


def _tile(a: np.ndarray) -> Image.Image:
    return Image.fromarray((a * 255 + 0.5).clip(0, 255).astype(np.uint8)).resize((TILE, TILE), Image.BICUBIC)


def direction_block(data: Path, direction: str, stems: list[str], conv_ae: Path | None) -> Image.Image:
    split = make_split(find_pairs(data).pairs, "paper")
    pairs = [p for p in split.test if p.stem in stems] if stems else split.test[:4]
    columns = {"fsnet (shipped)": load_shipped("fsnet", direction)[0], "pencil": create_model("pencil").eval()}
    if conv_ae is not None:
        columns["conv_ae"] = load_run_model(conv_ae)[0]
    labels = ["input", "ground truth", *columns]
    img = Image.new("RGB", (TILE * len(labels), LABEL_H * 2 + TILE * len(pairs)), "white")
    draw = ImageDraw.Draw(img)
    draw.text((4, 2), direction, fill="black")
    for j, label in enumerate(labels):
        draw.text((j * TILE + 4, LABEL_H + 2), label, fill="black")
    for i, p in enumerate(pairs):
        src, tgt = (p.photo, p.sketch) if direction == "photo2sketch" else (p.sketch, p.photo)
        x, y = load_array(src, 256) / 255.0, load_array(tgt, 256) / 255.0
        tiles = [x, y] + [_predict(m, x) for m in columns.values()]
        for j, t in enumerate(tiles):
            img.paste(_tile(t), (j * TILE, LABEL_H * 2 + i * TILE))
    return img


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="the CUFS student set")
    ap.add_argument("--faces", default="", help="comma-separated test stems (default: the first four)")
    ap.add_argument("--conv-ae", type=Path, nargs=2, metavar=("RUN_P2S", "RUN_S2P"),
                    help="conv_ae run folders (paper protocol) for a conv_ae column")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    stems = [s for s in args.faces.split(",") if s]
    runs = dict(zip(DIRECTIONS, args.conv_ae)) if args.conv_ae else {}
    blocks = [direction_block(args.data, d, stems, runs.get(d)) for d in DIRECTIONS]
    fig = Image.new("RGB", (max(b.width for b in blocks), sum(b.height for b in blocks) + 8), "white")
    y = 0
    for b in blocks:
        fig.paste(b, (0, y))
        y += b.height + 8
    fig.save(args.out, quality=85)
    print(f"wrote {args.out} ({fig.width}x{fig.height})")


if __name__ == "__main__":
    main()
