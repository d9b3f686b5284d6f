"""Find photo/sketch pairs in a dataset folder or CSV manifest, and validate them.

Three layouts, detected in this order:
  cufs     photos/ + sketches/ with CUFS names (sketch = photo stem + '-sz1', and the 88
           standard training sketches spell the prefix 'F2'/'M2' where the photo has 'f'/'m');
  generic  photos/ + sketches/ (or A/ + B/) whose files share a stem;
  manifest a CSV file with columns photo,sketch[,split] (paths relative to the CSV), given
           directly or as the only *.csv in the folder.
Validation collects every problem before reporting, and never writes to the dataset.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from facesketch.data.images import IMAGE_SUFFIXES, open_image


@dataclass(frozen=True)
class Pair:
    photo: Path
    sketch: Path
    split: str | None = None  # only from a manifest's split column

    @property
    def stem(self) -> str:
        return self.photo.stem

    @property
    def identity(self) -> str:
        # CUFS photos carry one picture per person as '<id>-01'; elsewhere the stem is the id.
        return re.sub(r"-01$", "", self.stem)


@dataclass
class PairSet:
    root: Path
    layout: str
    pairs: list[Pair] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)  # "200x250" -> count
    modes: dict[str, int] = field(default_factory=dict)  # "photo RGB" -> count

    @property
    def usable(self) -> bool:
        return not self.problems and bool(self.pairs)


def natural_key(name: str) -> list:
    """Case-insensitive natural order: digit runs compare as integers ('f1-2' < 'f1-10')."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name.lower())]


def cufs_photo_stem(sketch_stem: str) -> str:
    """'F2-005-01-sz1' -> 'f-005-01'; 'f1-001-01-sz1' -> 'f1-001-01' (lower-casing alone is wrong)."""
    stem = re.sub(r"-sz1$", "", sketch_stem, flags=re.IGNORECASE)
    return re.sub(r"^([FM])2-", lambda m: m.group(1).lower() + "-", stem)


def find_pairs(root: str | Path, *, check_images: bool = True) -> PairSet:
    """Discover and validate the pairs under `root` (a folder or a CSV manifest)."""
    root = Path(root)
    if not root.exists():
        return PairSet(root, "missing", problems=[f"{root}: no such file or folder"])
    if root.is_file():
        if root.suffix.lower() != ".csv":
            return PairSet(root, "missing", problems=[f"{root}: expected a dataset folder or a .csv manifest"])
        result = _from_manifest(root)
    else:
        folders = _find_folders(root)
        if folders is None:
            csvs = sorted(root.glob("*.csv"))
            if len(csvs) == 1:
                result = _from_manifest(csvs[0])
            else:
                return PairSet(root, "missing", problems=[
                    f"{root}: expected photos/ + sketches/ (or A/ + B/) folders or one CSV manifest "
                    "with columns photo,sketch[,split]"])
        else:
            result = _from_folders(root, *folders)
    if check_images and result.pairs:
        _check_images(result)
    result.pairs.sort(key=lambda p: natural_key(p.photo.name))
    return result


def _find_folders(root: Path) -> tuple[Path, Path] | None:
    entries = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    for a, b in (("photos", "sketches"), ("a", "b")):
        if a in entries or b in entries:
            return entries.get(a, root / a), entries.get(b, root / b)
    return None


def _list_images(folder: Path, kind: str, out: PairSet) -> list[Path]:
    if not folder.is_dir():
        out.problems.append(f"{folder}: {kind} folder is missing")
        return []
    files = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            files.append(p)
        else:
            out.notes.append(f"skipped {p} (not an image file)")
    if not files:
        out.problems.append(f"{folder}: {kind} folder has no images "
                            f"(expected one of {', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def _from_folders(root: Path, photo_dir: Path, sketch_dir: Path) -> PairSet:
    out = PairSet(root, "generic")
    photos = _list_images(photo_dir, "photo", out)
    sketches = _list_images(sketch_dir, "sketch", out)
    cufs = any(re.search(r"-sz1$", s.stem, re.IGNORECASE) for s in sketches)
    out.layout = "cufs" if cufs else "generic"
    key = cufs_photo_stem if cufs else (lambda stem: stem)

    by_photo: dict[str, Path] = {}
    for p in photos:
        if p.stem in by_photo:
            out.problems.append(f"{p}: two photos share the stem {p.stem!r} ({by_photo[p.stem].name})")
        by_photo[p.stem] = p
    claimed: dict[str, Path] = {}
    for s in sketches:
        k = key(s.stem)
        if k in claimed:
            out.problems.append(f"{s}: a second sketch for photo {k!r} (already {claimed[k].name})")
            continue
        claimed[k] = s
    for k, s in claimed.items():
        if k not in by_photo:
            out.problems.append(f"{s}: sketch has no photo (expected {photo_dir.name}/{k}.*)")
    for k, p in by_photo.items():
        if k in claimed:
            out.pairs.append(Pair(p, claimed[k]))
        else:
            hint = f"{k}-sz1.jpg" if cufs else f"{k}.*"
            out.problems.append(f"{p}: photo has no sketch (expected {sketch_dir.name}/{hint})")
    return out


def _from_manifest(path: Path) -> PairSet:
    out = PairSet(path, "manifest")
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        out.problems.append(f"{path}: cannot read CSV ({e})")
        return out
    if not rows or not {"photo", "sketch"} <= set(rows[0]):
        out.problems.append(f"{path}: expected a header with columns photo,sketch[,split]")
        return out
    seen: dict[Path, int] = {}
    for i, row in enumerate(rows, start=2):
        photo = (path.parent / (row["photo"] or "").strip())
        sketch = (path.parent / (row["sketch"] or "").strip())
        split = (row.get("split") or "").strip().lower() or None
        if split not in (None, "train", "test"):
            out.problems.append(f"{path}:{i}: split must be 'train' or 'test', got {split!r}")
        bad = [str(p) for p in (photo, sketch) if not p.is_file()]
        if bad:
            out.problems.append(f"{path}:{i}: missing file {', '.join(bad)}")
            continue
        if photo in seen:
            out.problems.append(f"{path}:{i}: photo {photo.name} is already paired on line {seen[photo]}")
            continue
        seen[photo] = i
        out.pairs.append(Pair(photo, sketch, split))
    return out


def _check_images(out: PairSet) -> None:
    for pair in out.pairs:
        sizes = []
        for kind, path in (("photo", pair.photo), ("sketch", pair.sketch)):
            try:
                im = open_image(path)
            except (OSError, ValueError, Image.DecompressionBombError) as e:
                out.problems.append(f"{path}: unreadable or corrupt image ({type(e).__name__}: {e})")
                continue
            sizes.append(im.size)
            size = f"{im.size[0]}x{im.size[1]}"
            out.sizes[size] = out.sizes.get(size, 0) + 1
            out.modes[f"{kind} {im.mode}"] = out.modes.get(f"{kind} {im.mode}", 0) + 1
        if len(sizes) == 2 and sizes[0] != sizes[1]:
            out.problems.append(f"{pair.sketch}: size {sizes[1][0]}x{sizes[1][1]} does not match its photo "
                                f"{pair.photo.name} ({sizes[0][0]}x{sizes[0][1]})")
