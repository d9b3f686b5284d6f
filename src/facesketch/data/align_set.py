"""`facesketch data align RAW OUT`: an aligned copy of a raw paired set (scans of any size and framing).

Each photo and each sketch is aligned to the CUFS framing (200x250, eyes at CUFS_EYES) by its
OWN detected face, so a pair whose two pictures were scanned at different sizes and offsets comes
out registered. A pair where either picture has no face found is listed in OUT/not_aligned.csv
and left out: guessing a framing would make a training pair that does not match.

OUT gets photos/<name>.png and sketches/<name>.png with one shared name per pair (the photo's
stem), so OUT is a "generic" dataset that `data check`, `train --data OUT` and `evaluate --data
OUT` read. A manifest's split and identity columns carry over in OUT/pairs.csv (pass that file
as --data to keep them).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from facesketch import FacesketchError
from facesketch.data.align import align_face
from facesketch.data.images import read_image, shown
from facesketch.data.pairs import find_pairs


@dataclass
class AlignReport:
    total: int = 0
    written: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (pair name or file, why)
    failed_file: Path | None = None


def _aligned(path: Path):
    try:
        image, _ = read_image(path)
    except (OSError, ValueError, SyntaxError) as e:
        raise FacesketchError(f"{shown(path)}: cannot read it as an image ({type(e).__name__})") from None
    return align_face(image, name=shown(path), hint="")[0].image


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FacesketchError(f"OUT {shown(out)} is a file; expected a new or empty folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FacesketchError(f"OUT {shown(out)} is not empty; give a new folder (or --overwrite to replace an "
                              "earlier aligned copy in it)")


def _clear_earlier(out: Path) -> None:
    """--overwrite: remove what an earlier `data align` wrote, so no stale pair stays in the set."""
    for sub in ("photos", "sketches"):
        for f in (out / sub).glob("*.png") if (out / sub).is_dir() else ():
            f.unlink()
    for name in ("pairs.csv", "not_aligned.csv"):
        (out / name).unlink(missing_ok=True)


def align_dataset(raw: str | Path, out: str | Path, *, overwrite: bool = False, progress: bool = True) -> AlignReport:
    raw, out = Path(raw), Path(out)
    found = find_pairs(raw, check_images=False)
    if not found.pairs:
        raise FacesketchError(f"{shown(raw)}: no photo/sketch pairs found"
                              + (f" ({found.problems[0]})" if found.problems else ""))
    _check_out(out, overwrite)
    if out.resolve() == raw.resolve() or raw.resolve() in out.resolve().parents:
        raise FacesketchError(f"OUT {shown(out)} lies inside RAW {shown(raw)}; choose a folder outside it")
    if overwrite and out.is_dir():
        _clear_earlier(out)
    (out / "photos").mkdir(parents=True, exist_ok=True)
    (out / "sketches").mkdir(parents=True, exist_ok=True)
    # files that pair with nothing, or cannot be named, are listed like pairs that fail
    report = AlignReport(total=len(found.pairs), failed=[("-", problem) for problem in found.problems])
    rows = []
    keep_columns = any(p.split for p in found.pairs) or found.layout == "manifest"
    names: set[str] = set()
    for pair in tqdm(found.pairs, desc=f"aligning {shown(raw)}", unit="pair", disable=not progress):
        name = pair.photo.stem
        if name in names:  # two photos with one stem in different folders of a manifest
            report.failed.append((shown(pair.photo), f"a second photo named {name}; rename one"))
            continue
        try:
            photo, sketch = _aligned(pair.photo), _aligned(pair.sketch)
        except FacesketchError as e:
            report.failed.append((name, str(e)))
            continue
        names.add(name)
        photo.convert("RGB").save(out / "photos" / f"{name}.png")
        sketch.save(out / "sketches" / f"{name}.png")
        rows.append({"photo": f"photos/{name}.png", "sketch": f"sketches/{name}.png", "identity": pair.identity,
                     "split": pair.split or ""})
        report.written += 1
    if keep_columns and rows:
        with (out / "pairs.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["photo", "sketch", "identity"] + (["split"] if any(r["split"] for r in rows) else []),
                               extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
    if report.failed:
        report.failed_file = out / "not_aligned.csv"
        with report.failed_file.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["pair", "reason"])
            w.writerows(report.failed)
    return report
