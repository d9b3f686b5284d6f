"""Train/test splits ('protocols'), always identity-disjoint, and their manifest files.

paper          the report's split: natural order of photo names, the last 7% of identities
               test (on CUFS: the first 175 train, m-089 ... m-101 test), all 8 views in both.
cufs-standard  the literature's CUFS split: 88 train (f-005..f-038, m-008..m-062), 100 test;
               training uses 8 views, testing the original view.
random         a seeded identity-disjoint split with a test fraction, for any dataset.
manifest       the split column of a CSV manifest.
"""

from __future__ import annotations

import csv
import random as _random
import re
from dataclasses import dataclass, replace
from pathlib import Path

from facesketch import FacesketchError
from facesketch.data.images import shown
from facesketch.data.pairs import Pair, natural_key

PROTOCOLS = ("paper", "cufs-standard", "random", "manifest")
ALL_VIEWS = tuple(range(8))
CUFS_STANDARD_SIZES = (88, 100)  # (train, test) pairs on the CUFS student set


@dataclass(frozen=True)
class Split:
    protocol: str
    train: list[Pair]
    test: list[Pair]
    train_views: tuple[int, ...] = ALL_VIEWS
    test_views: tuple[int, ...] = ALL_VIEWS
    notes: tuple[str, ...] = ()  # caveats a user should see (printed by `data check` and `train`)


def make_split(pairs: list[Pair], protocol: str, *, seed: int = 0, test_fraction: float | None = None) -> Split:
    """Split `pairs` by `protocol`; raises FacesketchError when the protocol does not fit the data.

    test_fraction is the test share of identities for 'random' (None: not given, 0.2); the other
    protocols fix their own test set, and a value given to them earns a note instead of silence.
    """
    split = _make_split(pairs, protocol, seed, 0.2 if test_fraction is None else test_fraction)
    notes = list(split.notes)
    if test_fraction is not None and protocol != "random":
        notes.append(f"--test-fraction {test_fraction:g} is ignored: protocol {protocol!r} fixes its own test set "
                     "(only --protocol random uses it)")
    if protocol != "manifest" and any(p.split for p in pairs):
        notes.append(f"the manifest's split column is ignored under protocol {protocol!r}; "
                     "use --protocol manifest to follow it")
    return replace(split, notes=tuple(notes))


def _make_split(pairs: list[Pair], protocol: str, seed: int, test_fraction: float) -> Split:
    pairs = sorted(pairs, key=lambda p: natural_key(p.photo.name))
    if protocol == "paper":
        ids = _ordered_identities(pairs)
        n_test = max(1, round(len(ids) * 0.07)) if len(ids) > 1 else 0
        test_ids = set(ids[len(ids) - n_test:])
        return _by_ids(pairs, protocol, test_ids, ALL_VIEWS)
    if protocol == "cufs-standard":
        train = [p for p in pairs if _cufs_standard_train(p.stem)]
        test = [p for p in pairs if not _cufs_standard_train(p.stem)]
        if not train or len(train) + len(test) != len(pairs) or not re.match(r"^[fm]1?-\d{3}", pairs[0].stem):
            raise FacesketchError("protocol 'cufs-standard' needs CUFS file names (f-005-01.jpg ...); "
                                  "use --protocol random or paper for other datasets")
        notes = () if (len(train), len(test)) == CUFS_STANDARD_SIZES else (
            f"cufs-standard is defined on the 188-pair CUFS student set (88 train / 100 test); this data gives "
            f"{len(train)} / {len(test)}, so its numbers are not comparable with published ones",)
        return Split(protocol, train, test, ALL_VIEWS, (0,), notes)
    if protocol == "random":
        if not 0.0 < test_fraction < 1.0:
            raise FacesketchError(f"test fraction must be between 0 and 1, got {test_fraction}")
        ids = _ordered_identities(pairs)
        _random.Random(seed).shuffle(ids)
        n_test = min(len(ids) - 1, max(1, round(len(ids) * test_fraction)))
        return _by_ids(pairs, protocol, set(ids[:n_test]), (0,))
    if protocol == "manifest":
        if any(p.split is None for p in pairs):
            raise FacesketchError("protocol 'manifest' needs a CSV manifest with a split column "
                                  "(train/test) on every row")
        split = Split(protocol, [p for p in pairs if p.split == "train"],
                      [p for p in pairs if p.split == "test"], ALL_VIEWS, (0,))
        overlap = {p.identity for p in split.train} & {p.identity for p in split.test}
        if overlap:
            raise FacesketchError(f"manifest puts identities in both train and test: {sorted(overlap)[:5]}")
        return split
    raise FacesketchError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")


def _ordered_identities(pairs: list[Pair]) -> list[str]:
    return list(dict.fromkeys(p.identity for p in pairs))


def _by_ids(pairs, protocol, test_ids, test_views) -> Split:
    return Split(protocol, [p for p in pairs if p.identity not in test_ids],
                 [p for p in pairs if p.identity in test_ids], ALL_VIEWS, test_views)


def _cufs_standard_train(stem: str) -> bool:
    m = re.match(r"^([fm])-(\d{3})", stem.lower())
    if not m:
        return False
    n = int(m.group(2))
    return (m.group(1) == "f" and 5 <= n <= 38) or (m.group(1) == "m" and 8 <= n <= 62)


def write_split_manifest(split: Split, path: Path) -> None:
    """Write the split as UTF-8 CSV (photo,sketch,split,views,identity) with absolute paths.

    Written to a .tmp file first and renamed, so `path` is whole or absent; the .tmp never stays.
    """
    rows = [[p.photo.resolve(), p.sketch.resolve(), name, " ".join(map(str, views)), p.identity]
            for name, part, views in (("train", split.train, split.train_views), ("test", split.test, split.test_views))
            for p in part]
    for row in rows:
        for cell in row[:2]:
            try:
                str(cell).encode("utf-8")
            except UnicodeEncodeError:  # undecodable bytes in a file name (find_pairs rejects these)
                raise FacesketchError(f"{path}: cannot store {shown(cell)} in UTF-8; rename the file") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["photo", "sketch", "split", "views", "identity"])
            w.writerows(rows)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_split_manifest(path: Path, protocol: str = "saved") -> Split:
    """Read a manifest written by write_split_manifest back into a Split; anything else (a
    missing column, a split other than train/test, bad views, no rows) is a one-line
    FacesketchError naming the file and line."""
    if not path.is_file():
        raise FacesketchError(f"{path}: split manifest is missing")
    parts: dict[str, list[Pair]] = {"train": [], "test": []}
    views: dict[str, tuple[int, ...] | None] = {"train": None, "test": None}
    try:
        # utf-8-sig: a split.csv saved again by a spreadsheet program starts with a byte-order mark
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames or []
            missing = [c for c in ("photo", "sketch", "split", "views") if c not in columns]
            if missing:
                raise FacesketchError(f"{path}: expected the columns photo,sketch,split,views; "
                                      f"missing {','.join(missing)}")
            for row in reader:
                where, part = f"{path}:{reader.line_num}", row["split"]
                # DictReader fills a short row with None and puts surplus fields under the key None
                surplus = row.get(None) or []
                fields = sum(row[c] is not None for c in columns) + len(surplus)
                if fields < len(columns) or any(c.strip() for c in surplus):
                    raise FacesketchError(f"{where}: {fields} field(s), expected {len(columns)} "
                                          f"({','.join(columns)})")
                if part not in parts:
                    raise FacesketchError(f"{where}: split must be 'train' or 'test', got {part!r}")
                if not row["photo"] or not row["sketch"]:
                    raise FacesketchError(f"{where}: expected a photo and a sketch path")
                try:
                    row_views = tuple(int(v) for v in row["views"].split())
                except (AttributeError, ValueError):
                    row_views = ()
                if not row_views or not set(row_views) <= set(ALL_VIEWS):
                    raise FacesketchError(f"{where}: views must be view numbers 0-7 separated by spaces, "
                                          f"got {row['views']!r}")
                if views[part] not in (None, row_views):  # one view list per part, as written
                    raise FacesketchError(f"{where}: views {row['views']!r} differ from the earlier {part} rows'")
                views[part] = row_views
                # identity: written since it can come from a manifest column; older files derive it
                parts[part].append(Pair(Path(row["photo"]), Path(row["sketch"]), part, row.get("identity") or None))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise FacesketchError(f"{path}: cannot read the split manifest ({e})") from None
    if not parts["train"] and not parts["test"]:
        raise FacesketchError(f"{path}: the split manifest lists no pairs")
    return Split(protocol, parts["train"], parts["test"], views["train"] or ALL_VIEWS, views["test"] or ALL_VIEWS)
