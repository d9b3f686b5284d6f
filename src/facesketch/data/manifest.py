"""CSV manifests: a dataset given as rows photo,sketch[,split][,identity].

Paths are relative to the CSV's folder (and must stay inside it) or absolute (a run's split.csv
uses those). The file may start with a UTF-8 byte-order mark, as spreadsheet programs write it.
Every problem is collected with its line number; nothing is written.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from facesketch.data.images import shown
from facesketch.data.pairs import Pair, PairSet

MANIFEST_COLUMNS = ("photo", "sketch", "split", "identity")


def read_manifest(path: Path) -> PairSet:
    """The pairs a CSV manifest lists, with every problem found in it (files are not decoded here)."""
    out = PairSet(path, "manifest")
    where = shown(path)
    try:
        # utf-8-sig: spreadsheet programs start their CSV files with a byte-order mark
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            rows = [(reader.line_num, r) for r in reader if any(c.strip() for c in r)]
    except UnicodeDecodeError as e:
        out.problems.append(f"{where}: not a UTF-8 text file ({e.reason} at byte {e.start}); save it as UTF-8 CSV")
        return out
    except (OSError, csv.Error) as e:
        out.problems.append(f"{where}: cannot read CSV ({e})")
        return out
    expected = "expected a header row photo,sketch[,split][,identity]"
    if not rows:
        out.problems.append(f"{where}: the manifest is empty; {expected} and one row per pair")
        return out
    header = [c.strip().lower() for c in rows[0][1]]
    if not {"photo", "sketch"} <= set(header):
        hint = " (is it separated by ';'? use ',')" if any(";" in c for c in header) else ""
        out.problems.append(f"{where}:{rows[0][0]}: header {','.join(header)!r} lacks "
                            f"{' and '.join(c for c in ('photo', 'sketch') if c not in header)}; {expected}{hint}")
        return out
    if len(rows) == 1:
        out.problems.append(f"{where}: the manifest has a header but no rows; expected one row per pair")
        return out
    ignored = [c for c in header if c not in MANIFEST_COLUMNS]
    if ignored:
        out.notes.append(f"{where}: ignored column(s) {', '.join(ignored)} (known: {', '.join(MANIFEST_COLUMNS)})")
    seen_photo: dict[Path, int] = {}
    seen_sketch: dict[Path, tuple[int, str]] = {}
    for i, cells in rows[1:]:
        extra = cells[len(header):]
        if len(cells) < len(header) or any(c.strip() for c in extra):
            out.problems.append(f"{where}:{i}: {len(cells)} field(s), expected {len(header)} "
                                f"({','.join(header)})")
            continue
        row = {k: c.strip() for k, c in zip(header, cells)}
        resolved = {}
        for col in ("photo", "sketch"):
            if not row[col]:
                out.problems.append(f"{where}:{i}: empty {col} cell")
            elif (p := _manifest_path(path.parent, row[col])) is None:
                out.problems.append(f"{where}:{i}: {col} {row[col]!r} leaves the manifest's folder; relative "
                                    "paths must stay inside it")
            else:
                resolved[col] = p
        split = (row.get("split") or "").lower() or None
        if split not in (None, "train", "test"):
            out.problems.append(f"{where}:{i}: split must be 'train' or 'test', got {split!r}")
        if len(resolved) < 2:
            continue
        photo, sketch = resolved["photo"], resolved["sketch"]
        bad = [shown(p) for p in (photo, sketch) if not p.is_file()]
        if bad:
            out.problems.append(f"{where}:{i}: missing file {', '.join(bad)}")
            continue
        rp, rs = photo.resolve(), sketch.resolve()
        if rp == rs:
            out.problems.append(f"{where}:{i}: photo and sketch are the same file {shown(photo.name)}")
            continue
        if rp in seen_photo:
            out.problems.append(f"{where}:{i}: photo {shown(photo.name)} is already paired on line {seen_photo[rp]}")
            continue
        if rs in seen_sketch:
            line, other = seen_sketch[rs]
            out.problems.append(f"{where}:{i}: sketch {shown(sketch.name)} is already paired with photo {other} "
                                f"on line {line}")
            continue
        seen_photo[rp], seen_sketch[rs] = i, (i, shown(photo.name))
        out.pairs.append(Pair(photo, sketch, split, row.get("identity") or None))
    return out


def _manifest_path(base: Path, cell: str) -> Path | None:
    """base/cell, or None when a relative cell climbs out of base; absolute paths are kept as written
    (a run's split.csv uses them)."""
    if Path(cell).is_absolute():
        return Path(cell)
    norm = os.path.normpath(cell)
    if norm == os.pardir or norm.startswith(os.pardir + os.sep):
        return None
    return base / norm
