"""`facesketch data check`: validate a dataset and describe its split, for people and scripts."""

from __future__ import annotations

from pathlib import Path

from facesketch import FacesketchError
from facesketch.data.images import shown
from facesketch.data.pairs import find_pairs
from facesketch.data.protocols import make_split


def check_dataset(root: str | Path, *, protocol: str = "paper", seed: int = 0,
                  test_fraction: float | None = None) -> dict:
    """Return {"pairs", "identities", "problems", "protocol", "train", "test", "layout", "notes", "sizes",
    "modes", "train_views", "test_views"}; "problems" is empty when the dataset is usable."""
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
                problems.append(f"protocol {protocol!r} leaves an empty {'train' if not train else 'test'} split "
                                f"({len(found.pairs)} pairs)")
        except FacesketchError as e:
            problems.append(str(e))
    return {"pairs": len(found.pairs), "identities": found.identities, "problems": problems, "protocol": protocol,
            "train": train, "test": test, "layout": found.layout, "notes": notes, "sizes": found.sizes,
            "modes": found.modes, **views}


def format_check(report: dict, root: str | Path) -> str:
    """Human-readable summary of check_dataset's result."""
    lines = [f"dataset   {shown(root)} ({report['layout']} layout)",
             f"pairs     {report['pairs']} ({report['identities']} identities)"]
    if report["sizes"]:
        lines.append("sizes     " + ", ".join(f"{k} x{v}" for k, v in sorted(report["sizes"].items())))
        lines.append("modes     " + ", ".join(f"{k} x{v}" for k, v in sorted(report["modes"].items())))
    if report["train"]:
        n_tv, n_sv = len(report["train_views"]), len(report["test_views"])
        lines.append(f"protocol  {report['protocol']}: train {len(report['train'])} pairs x {n_tv} views "
                     f"= {len(report['train']) * n_tv}, test {len(report['test'])} pairs x {n_sv} views "
                     f"= {len(report['test']) * n_sv}")
        lines.append(f"          test: {report['test'][0]} ... {report['test'][-1]}")
    lines += [f"note      {n}" for n in report["notes"]]
    lines += [f"PROBLEM   {p}" for p in report["problems"]]
    lines.append("usable" if not report["problems"] else f"NOT usable: {len(report['problems'])} problem(s)")
    return "\n".join(lines)
