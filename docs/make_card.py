"""Write src/facesketch/weights/card.json: for each shipped weights file, how it was trained (from
its metadata) and what it scores, measured now: the shipped weights on the CUFS paper split, and
the separate cufs-standard runs (trained on that split's 88 identities only) from their eval/.

    python docs/make_card.py --data ../shared/data/cufs \\
        --cufs-standard photo2sketch=RUN sketch2photo=RUN
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import yaml

from facesketch.checkpoint import load_meta
from facesketch.evaluate import evaluate_shipped
from facesketch.shipped import CARD_FILE, shipped_models, shipped_path

KEYS = ("mae_median", "rmse", "ssim_paper", "mae", "psnr", "ssim")


def _numbers(summary: dict) -> dict:
    ident = summary.get("identification") or {}
    return {**{k: round(summary["metrics"][k], 4) for k in KEYS},
            **{k: round(ident[k], 4) for k in ("rank1", "rank5", "chance_rank1", "chance_rank5") if k in ident},
            "n": summary["n"], "identities": ident.get("n")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="the CUFS student set")
    ap.add_argument("--cufs-standard", nargs="*", default=[], metavar="DIRECTION=RUN",
                    help="evaluated cufs-standard run folders, one per direction")
    ap.add_argument("--note", nargs="*", default=[], metavar="DIRECTION=TEXT",
                    help="a note on a direction's cufs-standard run (how it differs from today's command)")
    args = ap.parse_args()
    std = dict(a.split("=", 1) for a in args.cufs_standard)
    notes = dict(a.split("=", 1) for a in args.note)
    card = {}
    for model, directions in shipped_models().items():
        for d in directions:
            meta = load_meta(shipped_path(model, d))
            with tempfile.TemporaryDirectory() as tmp:
                paper = evaluate_shipped(model, d, args.data, protocol="paper", out=Path(tmp) / "ev",
                                         save_images=False, progress=False)
            entry = {"trained": {k: meta.get(k) for k in ("command", "machine", "train_seconds", "trained_on",
                                                           "epoch", "versions", "storage")},
                     "metrics": {"paper": _numbers(paper)}}
            if d in std:
                run = Path(std[d])
                s = json.loads((run / "eval" / "summary.json").read_text())
                cfg = yaml.safe_load((run / "config.yaml").read_text())
                entry["cufs_standard_run"] = {**_numbers(s), **({"note": notes[d]} if d in notes else {}),
                                              "config": {k: cfg[k] for k in ("protocol", "batch_size", "epochs_scale",
                                                                             "seed", "device")}}
            card.setdefault(model, {})[d] = entry
    CARD_FILE.write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    main()
