"""The README's figure of faces that are not from CUFS: each input as given (other framings and
sizes), the aligned crop the model sees, and the shipped fsnet's sketch of it.

The photos ship inside installed packages (scikit-image's astronaut, matplotlib's Grace Hopper);
two of the rows put them into other framings first (turned on a wide canvas; small in a big
picture). Writes docs/own_faces.jpg.

    python docs/make_own_faces.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.cbook
from PIL import Image, ImageDraw
from skimage import data

from facesketch.predict import Translator, prepare

TILE_H, LABEL_H = 200, 18
OUT = Path(__file__).with_name("own_faces.jpg")


def inputs() -> list[tuple[str, Image.Image]]:
    astronaut = Image.fromarray(data.astronaut())
    hopper = Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB")
    turned = Image.new("RGB", (1100, 700), (60, 70, 90))
    turned.paste(astronaut.rotate(-18, resample=Image.BICUBIC, fillcolor=(60, 70, 90)), (420, 120))
    small = Image.new("RGB", (1600, 1000), (225, 220, 210))
    small.paste(hopper.resize((256, 300)), (1150, 120))
    return [("astronaut 512x512", astronaut), ("turned 18 deg, 1100x700", turned),
            ("Hopper 512x600", hopper), ("small in 1600x1000", small)]


def fit(im: Image.Image, h: int) -> Image.Image:
    return im.convert("RGB").resize((max(1, round(im.width * h / im.height)), h), Image.BICUBIC)


def main() -> None:
    sketcher = Translator.shipped("fsnet", "photo2sketch")
    rows = []
    for label, im in inputs():
        crop = prepare(im, name=label)[0].image
        rows.append((label, [fit(im, TILE_H), fit(crop, TILE_H), fit(sketcher([crop])[0], TILE_H)]))
    width = max(sum(t.width for t in tiles) + 8 * len(tiles) for _, tiles in rows)
    sheet = Image.new("RGB", (width, len(rows) * (TILE_H + LABEL_H) + LABEL_H), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 2), "input as given  |  aligned to the CUFS framing  |  fsnet sketch (shipped weights)", fill="black")
    for r, (label, tiles) in enumerate(rows):
        y, x = LABEL_H + r * (TILE_H + LABEL_H), 0
        draw.text((4, y + 2), label, fill="#333")
        for t in tiles:
            sheet.paste(t, (x, y + LABEL_H))
            x += t.width + 8
    sheet.save(OUT, quality=85)
    print(f"wrote {OUT} ({sheet.width}x{sheet.height}, {OUT.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
