"""Reading image files into arrays, and the square resize every model input goes through."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def open_image(path: Path) -> Image.Image:
    """Fully decode `path` with EXIF orientation applied; alpha composited onto white.

    Returns an 'RGB' or 'L' image. Raises OSError/ValueError for unreadable files.
    """
    with Image.open(path) as im:
        im.load()
        im = ImageOps.exif_transpose(im)
    if im.mode in ("RGBA", "LA", "P", "PA"):
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im).convert("RGB")
    elif im.mode not in ("RGB", "L"):
        im = im.convert("RGB")
    return im


def resize_square(im: Image.Image, size: int, *, fit: str = "stretch") -> Image.Image:
    """Resize to size x size with bilinear interpolation.

    fit='stretch' (the report's protocol) scales straight to the square; fit='pad' keeps the
    aspect ratio and pads with the image's edge colour (white for sketches, background else).
    """
    if fit == "stretch":
        return im.resize((size, size), Image.BILINEAR)
    if fit != "pad":
        raise ValueError(f"fit must be 'stretch' or 'pad', got {fit!r}")
    w, h = im.size
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    inner = im.resize((nw, nh), Image.BILINEAR)
    corner = im.getpixel((0, 0))
    out = Image.new(im.mode, (size, size), corner)
    out.paste(inner, ((size - nw) // 2, (size - nh) // 2))
    return out


def load_array(path: Path, size: int, *, channels: int = 3, fit: str = "stretch") -> np.ndarray:
    """Load `path` as uint8 HxWxC (C = channels, 1 or 3) resized to a size x size square."""
    im = open_image(path)
    im = im.convert("RGB" if channels == 3 else "L")
    arr = np.asarray(resize_square(im, size, fit=fit), dtype=np.uint8)
    return arr[..., None] if arr.ndim == 2 else arr


def to_uint8_image(chw: np.ndarray) -> Image.Image:
    """float CxHxW in [0, 1] (C = 1 or 3) -> PIL image."""
    arr = np.clip(np.asarray(chw, dtype=np.float32), 0.0, 1.0)
    arr = (arr.transpose(1, 2, 0) * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
