"""The two translation directions, named once for the whole package (CLI, config, data, report)."""

from __future__ import annotations

from enum import Enum

from facesketch import FacesketchError


class Direction(str, Enum):
    photo2sketch = "photo2sketch"
    sketch2photo = "sketch2photo"


DIRECTIONS: tuple[str, ...] = tuple(d.value for d in Direction)


def parse_direction(value: str | Direction) -> Direction:
    """'photo2sketch' / 'sketch2photo' -> Direction; anything else is a one-line error."""
    try:
        return Direction(value)
    except ValueError:
        raise FacesketchError(f"direction must be {' or '.join(DIRECTIONS)}, got {value!r}") from None
