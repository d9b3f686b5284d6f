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
from dataclasses import dataclass
from pathlib import Path

from facesketch import FacesketchError
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


def make_split(pairs: list[Pair], protocol: str, *, seed: int = 0, test_fraction: float = 0.2) -> Split:
    """Split `pairs` by `protocol`; raises FacesketchError when the protocol does not fit the data."""
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
    """Write the split as CSV (photo,sketch,split,views) with absolute paths."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["photo", "sketch", "split", "views"])
        for name, part, views in (("train", split.train, split.train_views), ("test", split.test, split.test_views)):
            for p in part:
                w.writerow([p.photo.resolve(), p.sketch.resolve(), name, " ".join(map(str, views))])
    tmp.replace(path)


def read_split_manifest(path: Path, protocol: str = "saved") -> Split:
    """Read a manifest written by write_split_manifest back into a Split."""
    if not path.is_file():
        raise FacesketchError(f"{path}: split manifest is missing")
    parts: dict[str, list[Pair]] = {"train": [], "test": []}
    views: dict[str, tuple[int, ...]] = {"train": ALL_VIEWS, "test": ALL_VIEWS}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            parts[row["split"]].append(Pair(Path(row["photo"]), Path(row["sketch"]), row["split"]))
            views[row["split"]] = tuple(int(v) for v in row["views"].split())
    return Split(protocol, parts["train"], parts["test"], views["train"], views["test"])
