"""`facesketch data check`: validate a dataset and describe its split, for people and scripts."""

from __future__ import annotations

import math
from pathlib import Path

from facesketch import FacesketchError
from facesketch.config import MAX_SEED
from facesketch.data.images import shown
from facesketch.data.pairs import find_pairs
from facesketch.data.protocols import PROTOCOLS, make_split


def check_split_options(protocol: str | None, seed: int, test_fraction: float | None) -> None:
    """Raise FacesketchError naming the option (as the CLI spells it) when a split option is out of range;
    worded as `facesketch train` words them (RunConfig), so both commands refuse alike."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise FacesketchError(f"--seed must be an integer from 0 to {MAX_SEED}, got {seed}")
    if test_fraction is not None and (isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float))
                                      or not math.isfinite(test_fraction) or not 0 < test_fraction < 1):
        raise FacesketchError(f"--test-fraction must be between 0 and 1 (exclusive), got {test_fraction}")
    if protocol is not None and protocol not in PROTOCOLS:
        raise FacesketchError(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")


def check_dataset(root: str | Path, *, protocol: str = "paper", seed: int = 0,
                  test_fraction: float | None = None) -> dict:
    """Return {"pairs", "identities", "problems", "protocol", "train", "test", "layout", "notes", "sizes",
    "modes", "unread", "train_views", "test_views"}; "problems" is empty when the dataset is usable, and
    "unread" says in a few words why nothing was read when "layout" is "missing" (else "").

    Raises FacesketchError for an out-of-range option (check_split_options), before reading anything.
    """
    check_split_options(protocol, seed, test_fraction)
    found = find_pairs(root)
    problems = list(found.problems)
    train: list[str] = []
    test: list[str] = []
    views = {"train_views": [], "test_views": []}
    notes = list(found.notes)
    if found.pairs and not problems:
        try:
            split = make_split(found.pairs, protocol, seed=seed, test_fraction=test_fraction)
            train, test = [p.stem for p in split.train], [p.stem for p in split.test]
            views = {"train_views": list(split.train_views), "test_views": list(split.test_views)}
            notes += split.notes
            if not train or not test:
                problems.append(_empty_split(protocol, "train" if not train else "test", found))
        except FacesketchError as e:
            problems.append(str(e))
    return {"pairs": len(found.pairs), "identities": found.identities, "problems": problems, "protocol": protocol,
            "train": train, "test": test, "layout": found.layout, "notes": notes, "sizes": found.sizes,
            "modes": found.modes, "unread": found.unread, **views}


def _empty_split(protocol: str, side: str, found) -> str:
    """The problem of a split that leaves `side` empty, with the likely reason."""
    n, k = len(found.pairs), found.identities
    text = (f"protocol {protocol!r} leaves an empty {side} split ({n} pair{'s' * (n != 1)}, "
            f"{k} {'identity' if k == 1 else 'identities'})")
    if protocol == "manifest":
        return f"{text}: no row of the manifest has split {side!r}"
    if k < 2:
        return f"{text}: a split needs at least 2 identities (people), one for each side"
    if protocol == "cufs-standard":
        return f"{text}: every pair is {'outside' if side == 'train' else 'inside'} its 88 training identities " \
               "(f-005..f-038, m-008..m-062); use --protocol random or paper"
    return text


def format_check(report: dict, root: str | Path) -> str:
    """Human-readable summary of check_dataset's result."""
    if report["layout"] == "missing":  # nothing was read: the problem says why
        lines = [f"dataset   {shown(root)} (not read: {report['unread'] or 'see the problem below'})"]
    else:
        lines = [f"dataset   {shown(root)} ({report['layout']} layout)",
                 f"pairs     {report['pairs']} ({report['identities']} identities)"]
    if report["sizes"]:
        lines.append("sizes     " + ", ".join(f"{k} x{v}" for k, v in sorted(report["sizes"].items())))
        lines.append("modes     " + ", ".join(f"{k} x{v}" for k, v in sorted(report["modes"].items())))
    if report["train"] or report["test"]:  # one side may be empty: that is a problem, listed below
        n_tv, n_sv = len(report["train_views"]), len(report["test_views"])
        lines.append(f"protocol  {report['protocol']}: train {len(report['train'])} pairs x {n_tv} views "
                     f"= {len(report['train']) * n_tv}, test {len(report['test'])} pairs x {n_sv} views "
                     f"= {len(report['test']) * n_sv}")
        if report["test"]:
            lines.append(f"          test: {report['test'][0]} ... {report['test'][-1]}")
    lines += [f"note      {n}" for n in report["notes"]]
    lines += [f"PROBLEM   {p}" for p in report["problems"]]
    lines.append("usable" if not report["problems"] else f"NOT usable: {len(report['problems'])} problem(s)")
    return "\n".join(lines)
