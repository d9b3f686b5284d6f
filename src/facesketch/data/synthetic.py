"""Built-in synthetic faces: procedurally drawn photo/sketch pairs (faces.py) written in the CUFS
layout, never over files of another origin. Nothing is shipped: the images are generated,
deterministic per (seed, index).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from tqdm import tqdm

from facesketch import FacesketchError
from facesketch.data.faces import synth_pair, synth_stem  # noqa: F401  (synth_pair re-exported)

MARKER = ".facesketch-synthetic.json"  # written last into a set; lists its files for --overwrite


def write_synthetic(out: str | Path, *, n: int = 100, seed: int = 0, progress: bool = True,
                    overwrite: bool = False) -> Path:
    """Write n pairs as out/photos/<stem>.jpg and out/sketches/<stem>-sz1.jpg; returns out.

    `out` must be new or empty. With overwrite=True it may also hold a set this function wrote
    (marked by MARKER, which lists those files with their SHA-256): they are replaced, or removed
    when the new set lacks them; every other file stays untouched, and a marked file changed since,
    or a file of another origin where a new one goes, makes it refuse. Refusals raise
    FacesketchError before anything is written; the set is drawn in a hidden sibling folder and
    moved in only when complete.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    out = Path(out)
    names = [f"photos/{synth_stem(seed, i)}.jpg" for i in range(n)]
    names += [f"sketches/{Path(p).stem}-sz1.jpg" for p in names]
    previous = _claim(out, names, overwrite=overwrite)
    home = out.resolve()  # 'data synth .' has no name; its folder's parent does
    home.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{home.name}.", suffix=".partial", dir=home.parent))
    try:
        (staging / "photos").mkdir()
        (staging / "sketches").mkdir()
        for i in tqdm(range(n), desc="drawing synthetic faces", disable=not progress, leave=False):
            stem, photo, sketch = synth_pair(seed, i)
            photo.save(staging / "photos" / f"{stem}.jpg", quality=95)
            sketch.save(staging / "sketches" / f"{stem}-sz1.jpg", quality=95)
        files = {name: _sha256(staging / name) for name in names}
        (staging / MARKER).write_text(json.dumps({"written_by": "facesketch data synth", "n": n, "seed": seed,
                                                  "files": files}, indent=1))
        if not out.exists():
            staging.rename(out)
        else:
            for name in [*names, MARKER]:  # the marker last: it vouches for the files before it
                (out / name).parent.mkdir(exist_ok=True)
                os.replace(staging / name, out / name)
            for name in previous.keys() - files.keys():
                (out / name).unlink(missing_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _claim(out: Path, names: list[str], *, overwrite: bool) -> dict[str, str]:
    """Refuse unless `out` may receive `names`; returns the files of the set it holds (name -> SHA-256)."""
    if out.exists() and not out.is_dir():
        raise FacesketchError(f"{out} is a file; expected a new or empty folder")
    present = [p for p in out.rglob("*") if p.is_symlink() or not p.is_dir()] if out.is_dir() else []
    if not present:
        return {}
    marked = _read_marker(out)
    if marked is None:
        raise FacesketchError(f"{out} already holds {len(present)} file(s) that `data synth` did not write "
                              f"(no {MARKER}); choose a new or empty folder (--overwrite only replaces a "
                              "synthetic set written there before)")
    if not overwrite:
        raise FacesketchError(f"{out} already holds a synthetic set (n={marked['n']}, seed={marked['seed']}); "
                              "pass --overwrite to replace it, or choose a new or empty folder")
    for name, digest in marked["files"].items():
        if (out / name).exists() and _sha256(out / name) != digest:
            raise FacesketchError(f"{out / name} changed since `data synth` wrote it; not overwriting "
                                  "(move it away, or choose a new or empty folder)")
    for name in names:
        if (out / name).exists() and name not in marked["files"]:
            raise FacesketchError(f"{out / name} was not written by `data synth`; not overwriting it "
                                  "(move it away, or choose a new or empty folder)")
    return marked["files"]


def _read_marker(out: Path) -> dict | None:
    """The marker's content, or None when it is absent or not one `write_synthetic` wrote."""
    try:
        marked = json.loads((out / MARKER).read_text())
        files = marked["files"]
        int(marked["n"]), int(marked["seed"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    # only names write_synthetic uses: a crafted marker cannot point --overwrite elsewhere
    ok = isinstance(files, dict) and all(
        isinstance(k, str) and re.fullmatch(r"(photos/[fm]-\d{3,}-01|sketches/[fm]-\d{3,}-01-sz1)\.jpg", k)
        for k in files)
    return marked if ok else None
