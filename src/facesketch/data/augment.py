"""The report's 8-view augmentation: the dihedral group of the square, one view per index.

0 identity, 1 horizontal flip, 2 vertical flip, 3 rotation 180, 4 rotation 90 clockwise,
5 rotation 90 counter-clockwise, 6 = 4 then horizontal flip, 7 = 5 then horizontal flip.
Views act on the last two dims (..., H, W), so they work on single images and batches; a
pair gets the same view by calling `apply_view` on both with the same index.
"""

from __future__ import annotations

import torch

VIEW_NAMES = ("identity", "hflip", "vflip", "rot180", "rot90cw", "rot90ccw", "rot90cw_hflip", "rot90ccw_hflip")


def apply_view(x: torch.Tensor, view: int) -> torch.Tensor:
    """Return view `view` (0..7) of x (..., H, W). Rotations need square images."""
    if view == 0:
        return x
    if view == 1:
        return x.flip(-1)
    if view == 2:
        return x.flip(-2)
    if view == 3:
        return x.flip(-2, -1)
    if view in (4, 6):
        y = torch.rot90(x, k=-1, dims=(-2, -1))  # k<0 rotates clockwise
    elif view in (5, 7):
        y = torch.rot90(x, k=1, dims=(-2, -1))
    else:
        raise ValueError(f"view must be in 0..7, got {view}")
    return y.flip(-1) if view >= 6 else y


def invert_view(x: torch.Tensor, view: int) -> torch.Tensor:
    """Undo apply_view(., view)."""
    inverse = {4: 5, 5: 4}.get(view, view)  # flips, rot180 and the flipped rotations are involutions
    return apply_view(x, inverse)
