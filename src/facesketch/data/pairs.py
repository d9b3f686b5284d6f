"""Find photo/sketch pairs in a dataset folder or CSV manifest, and validate them.

Three layouts, detected in this order:
  cufs     photos/ + sketches/ with CUFS names (sketch = photo stem + '-sz1', and the 88
           standard training sketches spell the prefix 'F2'/'M2' where the photo has 'f'/'m');
  generic  photos/ + sketches/ (or A/ + B/) whose files share a stem;
  manifest a CSV file with columns photo,sketch[,split][,identity] (paths relative to the CSV),
           given directly or as the only *.csv in the folder.
A pair's identity (the person; splits never divide one) is the photo's stem without a trailing
picture number of 1-2 digits after '-' or '_' ('anna_1', 'anna_02' -> 'anna'; CUFS 'f-005-01'
-> 'f-005'), or a manifest's identity column.
Validation collects every problem before reporting, and never writes to the dataset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from facesketch import FacesketchError
from facesketch.data.images import IMAGE_SUFFIXES, MIN_SIDE, read_image, shown

# Photo and sketch of one pair may differ in size (both are stretched to the model's square), but
# aspect ratios further apart than this mean the two are probably not the same picture.
MAX_ASPECT_MISMATCH = 0.05


def identity_of(stem: str) -> str:
    """The person a picture shows, from its stem: 'anna_1', 'anna-02' -> 'anna'; 'img_001' stays."""
    return re.sub(r"[-_]\d{1,2}$", "", stem) or stem


@dataclass(frozen=True)
class Pair:
    photo: Path
    sketch: Path
    split: str | None = None  # only from a manifest's split column
    identity: str | None = None  # None -> identity_of(photo stem); set by a manifest's identity column

    def __post_init__(self):
        if not self.identity:
            object.__setattr__(self, "identity", identity_of(self.photo.stem))

    @property
    def stem(self) -> str:
        return self.photo.stem


@dataclass
class PairSet:
    root: Path
    layout: str
    pairs: list[Pair] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)  # "200x250" -> count
    modes: dict[str, int] = field(default_factory=dict)  # "photo RGB" -> count, the files' own modes
    unread: str = ""  # layout "missing": why nothing under root was read, in a few words

    @property
    def usable(self) -> bool:
        return not self.problems and bool(self.pairs)

    @property
    def identities(self) -> int:
        return len({p.identity for p in self.pairs})


def natural_key(name: str) -> list:
    """Case-insensitive natural order: digit runs compare as integers ('f1-2' < 'f1-10')."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name.lower())]


def cufs_photo_stem(sketch_stem: str) -> str:
    """'F2-005-01-sz1' -> 'f-005-01'; 'f1-001-01-sz1' -> 'f1-001-01' (lower-casing alone is wrong)."""
    stem = re.sub(r"-sz1$", "", sketch_stem, flags=re.IGNORECASE)
    return re.sub(r"^([FM])2-", lambda m: m.group(1).lower() + "-", stem)


def _is_utf8(name: str) -> bool:
    # undecodable bytes in a file name arrive as lone surrogates, which UTF-8 cannot encode
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def find_pairs(root: str | Path, *, check_images: bool = True) -> PairSet:
    """Discover and validate the pairs under `root` (a folder or a CSV manifest)."""
    root = Path(root)
    if not root.exists():
        return _unread(root, "no such file or folder", f"{shown(root)}: no such file or folder")
    if not _is_utf8(str(root.resolve())):
        return _unread(root, "its path is not valid UTF-8", f"{shown(root.resolve())}: the path is not valid "
                       "UTF-8; rename it (split.csv and reports store paths as UTF-8)")
    try:
        result = _discover(root)
    except OSError as e:  # an unreadable folder, say
        return _unread(root, "cannot read it", f"{shown(e.filename or root)}: cannot read ({e.strerror or e})")
    if check_images and result.pairs:
        _check_images(result)
    result.pairs.sort(key=lambda p: natural_key(p.photo.name))
    _note_identities(result)
    return result


def _unread(root: Path, reason: str, problem: str) -> PairSet:
    """The result for a `root` that holds no dataset: `reason` in a few words, `problem` in full."""
    return PairSet(root, "missing", problems=[problem], unread=reason)


def _discover(root: Path) -> PairSet:
    from facesketch.data.manifest import read_manifest  # it builds Pairs: imported here, not at the top
    if root.is_file():
        if root.suffix.lower() != ".csv":
            return _unread(root, "not a folder or a .csv manifest",
                           f"{shown(root)}: expected a dataset folder or a .csv manifest")
        return read_manifest(root)
    folders = _find_folders(root)
    if folders is not None:
        return _from_folders(root, *folders)
    csvs = sorted((p for p in root.iterdir() if p.suffix.lower() == ".csv" and p.is_file()),
                  key=lambda p: natural_key(p.name))
    if len(csvs) == 1:
        return read_manifest(csvs[0])
    if csvs:  # guessing which one is meant could train on the wrong pairs
        names = ", ".join(shown(p.name) for p in csvs[:5]) + (", ..." if len(csvs) > 5 else "")
        return _unread(root, f"{len(csvs)} CSV manifests and no photos/ + sketches/",
                       f"{shown(root)}: found {len(csvs)} CSV manifests ({names}) and no photos/ + sketches/ "
                       f"(or A/ + B/) folders; give the one to use as the dataset path, e.g. {shown(csvs[0])}")
    return _unread(root, "no photos/ + sketches/ folders or CSV manifest", f"{shown(root)}: expected photos/ + "
                   "sketches/ (or A/ + B/) folders or one CSV manifest with columns photo,sketch[,split][,identity]")


def _find_folders(root: Path) -> tuple[Path, Path] | None:
    entries = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    for a, b in (("photos", "sketches"), ("a", "b")):
        if a in entries or b in entries:
            return entries.get(a, root / a), entries.get(b, root / b)
    return None


def _list_images(folder: Path, kind: str, out: PairSet) -> list[Path]:
    if not folder.is_dir():
        out.problems.append(f"{shown(folder)}: {kind} folder is missing")
        return []
    files, misnamed = [], 0
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir():
            out.notes.append(f"skipped folder {shown(p)} (folders inside the {kind} folder are not read)")
        elif not (p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
            out.notes.append(f"skipped {shown(p)} (not an image file)")
        elif not _is_utf8(p.name):
            misnamed += 1
            out.problems.append(f"{shown(p)}: file name is not valid UTF-8; rename it "
                                "(split.csv and reports store names as UTF-8)")
        else:
            files.append(p)
    if not files and not misnamed:
        out.problems.append(f"{shown(folder)}: {kind} folder has no images "
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
            out.problems.append(f"{shown(p)}: two photos share the stem '{shown(p.stem)}' "
                                f"({shown(by_photo[p.stem].name)})")
        by_photo[p.stem] = p
    claimed: dict[str, Path] = {}
    for s in sketches:
        k = key(s.stem)
        if k in claimed:
            out.problems.append(f"{shown(s)}: a second sketch for photo '{shown(k)}' "
                                f"(already {shown(claimed[k].name)})")
            continue
        claimed[k] = s
    for k, s in claimed.items():
        if k not in by_photo:
            out.problems.append(f"{shown(s)}: sketch has no photo (expected {shown(photo_dir.name)}/{shown(k)}.*)")
    for k, p in by_photo.items():
        if k in claimed:
            out.pairs.append(Pair(p, claimed[k]))
        else:
            hint = f"{k}-sz1.jpg" if cufs else f"{k}.*"
            out.problems.append(f"{shown(p)}: photo has no sketch (expected {shown(sketch_dir.name)}/{shown(hint)})")
    return out


def _check_images(out: PairSet) -> None:
    resized = []
    for pair in out.pairs:
        sizes = []
        for kind, path in (("photo", pair.photo), ("sketch", pair.sketch)):
            try:
                im, mode = read_image(path)
            except FacesketchError as e:
                out.problems.append(str(e))
                continue
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
                out.problems.append(f"{shown(path)}: unreadable or corrupt image ({type(e).__name__}: {e})")
                continue
            w, h = im.size
            if min(w, h) < MIN_SIDE:
                out.problems.append(f"{shown(path)}: {w}x{h} pixels, below the minimum of {MIN_SIDE} px per side")
            sizes.append(im.size)
            out.sizes[f"{w}x{h}"] = out.sizes.get(f"{w}x{h}", 0) + 1
            out.modes[f"{kind} {mode}"] = out.modes.get(f"{kind} {mode}", 0) + 1
        if len(sizes) == 2 and sizes[0] != sizes[1]:
            (pw, ph), (sw, sh) = sizes
            aspects = sorted((pw / ph, sw / sh))
            differ = aspects[1] / aspects[0] - 1
            if differ > MAX_ASPECT_MISMATCH:
                out.problems.append(
                    f"{shown(pair.sketch)}: size {sw}x{sh} does not match its photo {shown(pair.photo.name)} "
                    f"({pw}x{ph}): aspect ratios differ by {differ:.0%}, more than {MAX_ASPECT_MISMATCH:.0%}, so "
                    "they are probably not the same picture")
            else:
                resized.append(f"{shown(pair.photo.name)} {pw}x{ph} / {shown(pair.sketch.name)} {sw}x{sh}")
    if resized:
        out.notes.append(f"{len(resized)} pair(s) differ in size, with aspect ratios within {MAX_ASPECT_MISMATCH:.0%} "
                         f"(e.g. {resized[0]}); both images are resized to the model's square, so they still align")


def _note_identities(out: PairSet) -> None:
    by_id: dict[str, list[str]] = {}
    for p in out.pairs:
        by_id.setdefault(p.identity, []).append(p.stem)
    shared = [(k, v) for k, v in by_id.items() if len(v) > 1]
    if shared:
        k, stems = shared[0]
        out.notes.append(f"{len(by_id)} identities for {len(out.pairs)} pairs: {len(shared)} have several pictures "
                         f"(e.g. {shown(k)}: {', '.join(map(shown, stems[:3]))}); a split keeps each identity on "
                         "one side")
