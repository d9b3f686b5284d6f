"""`facesketch identify` measured on CUFS 88/100: the README's rank-1 / rank-5.

The 100 test identities of cufs-standard: each test sketch is the query, the 100 test photos are
the gallery (a temporary folder of links to them), searched through facesketch.gallery.Gallery
exactly as `facesketch identify` does. RUN is a run trained on the 88 training identities only
(the shipped weights have seen most of these faces); its direction decides how the two compare:
photo2sketch turns the gallery into sketches, sketch2photo turns the query into a photo.

    python docs/measure_identify.py --data ../shared/data/cufs --run RUN [--run RUN2]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from facesketch.data.pairs import find_pairs
from facesketch.data.protocols import make_split
from facesketch.gallery import PLURAL, Gallery
from facesketch.predict import Translator, prepare


def measure(data: Path, run: Path, top: int = 5) -> dict:
    translator = Translator.from_run(run)
    pairs = make_split(find_pairs(data).pairs, "cufs-standard").test
    with tempfile.TemporaryDirectory() as tmp:
        for p in pairs:
            (Path(tmp) / p.photo.name).symlink_to(p.photo.resolve())
        gallery = Gallery(Path(tmp), translator=translator, progress=False)
        names = [e.path.name for e in gallery.entries]
        ranks = []
        for p in pairs:
            crop = prepare(Image.open(p.sketch).convert("RGB"), name=str(p.sketch))[0].image
            matches, _ = gallery.search(crop, top=len(names))
            ranks.append([m.entry.path.name for m in matches].index(p.photo.name))
    r = np.array(ranks)
    return {"via": gallery.via, "n": len(pairs), "gallery": len(names), "skipped": len(gallery.skipped),
            "rank1": float(np.mean(r < 1)), f"rank{top}": float(np.mean(r < top))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--run", type=Path, action="append", required=True)
    args = ap.parse_args()
    print("| compared as | run | queries | gallery | rank-1 | rank-5 | chance rank-1 / rank-5 |\n|---|---|---|---|---|---|---|")
    for run in args.run:
        r = measure(args.data, run)
        print(f"| {PLURAL[r['via']]} | {run.name} | {r['n']} | {r['gallery']} | {r['rank1']:.2f} | {r['rank5']:.2f} | "
              f"{1 / r['gallery']:.2f} / {5 / r['gallery']:.2f} |")


if __name__ == "__main__":
    main()
