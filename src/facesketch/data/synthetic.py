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
from facesketch.config import MAX_SEED
from facesketch.data.faces import synth_pair, synth_stem  # noqa: F401  (synth_pair re-exported)
from facesketch.data.images import shown
from facesketch.data.pairs import find_pairs

MARKER = ".facesketch-synthetic.json"  # written last into a set; lists its files for --overwrite


def write_synthetic(out: str | Path, *, n: int = 100, seed: int = 0, progress: bool = True,
                    overwrite: bool = False) -> Path:
    """Write n pairs as out/photos/<stem>.jpg and out/sketches/<stem>-sz1.jpg; returns out.

    `out` must be new or empty. With overwrite=True it may also hold a set this function wrote
    (marked by MARKER, which lists those files with their SHA-256): they are replaced, or removed
    when the new set lacks them; every other file stays untouched. It refuses when a marked file
    changed since, a file of another origin is where a new one goes, photo/sketch pairs of another
    origin are there (synthetic faces would join their dataset), or the marker is unreadable.
    Refusals raise FacesketchError before anything is written; the set is drawn in a hidden sibling
    folder and moved in only when complete.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise FacesketchError(f"--seed must be an integer from 0 to {MAX_SEED}, got {seed}")
    out = Path(out)
    names = _names(n, seed)
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


def _names(n: int, seed: int) -> list[str]:
    """The files of a set: photos/<stem>.jpg for each pair, then sketches/<stem>-sz1.jpg."""
    stems = [synth_stem(seed, i) for i in range(n)]
    return [f"photos/{s}.jpg" for s in stems] + [f"sketches/{s}-sz1.jpg" for s in stems]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _claim(out: Path, names: list[str], *, overwrite: bool) -> dict[str, str]:
    """Refuse unless `out` may receive `names`; returns the files of the set it holds (name -> SHA-256)."""
    if out.exists() and not out.is_dir():
        raise FacesketchError(f"{shown(out)} is a file; expected a new or empty folder")
    present = [p for p in out.rglob("*") if p.is_symlink() or not p.is_dir()] if out.is_dir() else []
    if not present:
        return {}
    marked = _read_marker(out, len(present))
    if marked is None:
        raise FacesketchError(f"{shown(out)} already holds {len(present)} file(s) that `data synth` did not write "
                              f"(no {MARKER}); choose a new or empty folder (--overwrite only replaces a "
                              "synthetic set written there before)")
    # a marker vouches only for the files it lists: pairs beside them are someone's dataset, which
    # new synthetic faces would silently join (a stray unpaired file is left alone, and `data check` names it)
    foreign = _foreign_pairs(out, marked["files"])
    if foreign:
        raise FacesketchError(f"{shown(out)} holds {len(foreign)} image file(s) that `data synth` did not write and "
                              f"that pair up as a dataset (e.g. {shown(foreign[0])}); not adding synthetic faces "
                              "to it (move them away, or choose a new or empty folder)")
    if not overwrite:
        raise FacesketchError(f"{shown(out)} already holds a synthetic set (n={marked['n']}, seed={marked['seed']}); "
                              "pass --overwrite to replace it, or choose a new or empty folder")
    for name, digest in marked["files"].items():
        if (out / name).exists() and _sha256(out / name) != digest:
            raise FacesketchError(f"{shown(out / name)} changed since `data synth` wrote it; not overwriting "
                                  "(move it away, or choose a new or empty folder)")
    for name in names:
        if (out / name).exists() and name not in marked["files"]:
            raise FacesketchError(f"{shown(out / name)} was not written by `data synth`; not overwriting it "
                                  "(move it away, or choose a new or empty folder)")
    return marked["files"]


def _foreign_pairs(out: Path, listed: dict[str, str]) -> list[str]:
    """The image files (relative to out) of the pairs under `out` that have a member `listed` lacks."""
    def rel(path: Path) -> str:
        try:
            return path.relative_to(out).as_posix()
        except ValueError:  # a manifest's pair outside out
            return str(path)
    found = find_pairs(out, check_images=False)
    return [r for p in found.pairs for r in (rel(p.photo), rel(p.sketch)) if r not in listed]


def _read_marker(out: Path, n_present: int) -> dict | None:
    """The marker's content, or None when there is none; FacesketchError when it is not one that
    `write_synthetic` wrote (a hand-written or damaged marker vouches for nothing)."""
    path = out / MARKER
    if not os.path.lexists(path):
        return None
    try:
        marked = json.loads(path.read_text(encoding="utf-8"))
        why = _marker_shape(marked)
    except (OSError, UnicodeDecodeError) as e:
        why = f"cannot read it: {e}"
    except json.JSONDecodeError as e:
        why = f"not valid JSON: {e.msg} at line {e.lineno}"
    except RecursionError:
        why = "not valid JSON: nested too deeply"
    if why:
        raise FacesketchError(f"{shown(path)}: unreadable marker ({why}); the {n_present} file(s) in {shown(out)} "
                              "are not vouched for, so nothing is written (choose a new or empty folder)")
    return marked


def _marker_shape(marked) -> str:
    """'' when `marked` is what write_synthetic writes, else what is wrong with it."""
    if not isinstance(marked, dict) or not {"n", "seed", "files"} <= marked.keys():
        return "expected a JSON object with n, seed and files"
    n, seed, files = marked["n"], marked["seed"], marked["files"]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (n, seed)) or n < 1 \
            or not 0 <= seed <= MAX_SEED:
        return f"n must be a positive integer and seed one from 0 to {MAX_SEED}, got n={n!r}, seed={seed!r}"
    if not isinstance(files, dict) or not all(isinstance(d, str) and re.fullmatch(r"[0-9a-f]{64}", d)
                                              for d in files.values()):
        return "files must map each file name to its SHA-256"
    # only the names a set of this n and seed holds: a crafted marker cannot point --overwrite elsewhere
    if len(files) != 2 * n or set(files) != set(_names(n, seed)):
        return f"files must list exactly the {2 * n} files of a set with n={n}, seed={seed}; it lists {len(files)}"
    return ""
