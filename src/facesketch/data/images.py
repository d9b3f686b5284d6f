"""Reading image files into arrays, and the square resize every model input goes through."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from facesketch import FacesketchError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
# Limits on the size a file declares in its header, checked before any pixel is decoded: a small
# file can declare a huge image (a decompression bomb: 436 KB declaring 13000x13000 took 2.7 GB).
MAX_SIDE = 8192          # px per side
MAX_PIXELS = 40_000_000  # width x height
MIN_SIDE = 32            # px per side; `data check` refuses smaller images (a 1x1 pair holds no face)
# Single-channel high-bit-depth modes and the value that means white: Pillow's own convert()
# clips them at 255, which turned 16-bit PNGs 99% white.
HIGH_BIT_WHITE = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535, "F": 1.0}


def shown(path: str | Path) -> str:
    """`path` printable on any UTF-8 stream: undecodable bytes in a file name become '\\xe9'."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def check_declared_size(path: Path, size: tuple[int, int]) -> None:
    """Raise FacesketchError when a header's (width, height) is above MAX_SIDE / MAX_PIXELS."""
    w, h = size
    if max(w, h) > MAX_SIDE or w * h > MAX_PIXELS:
        raise FacesketchError(f"{shown(path)}: declares {w}x{h} pixels, above the limit of {MAX_SIDE} px per side "
                              f"and {MAX_PIXELS / 1e6:g} megapixels; refused before decoding")


def read_image(path: Path, *, max_side: int | None = None) -> tuple[Image.Image, str]:
    """Fully decode `path` -> (image, the file's own mode), with EXIF orientation applied and
    alpha composited onto white. The image is 'RGB' or 'L'; high-bit-depth greyscale is scaled
    to 8 bits by its full range (65535 for 16-bit, 1.0 for float).

    max_side: a JPEG larger than this on its longer side is decoded at the smallest of its
    built-in reduced scales (1/2, 1/4, 1/8) that keeps at least max_side px there: a
    12-megapixel phone photo decodes about 4x faster, and a face crop never needs those pixels.

    Raises FacesketchError for a declared size above the limits or values outside that range,
    OSError/ValueError for unreadable files.
    """
    with warnings.catch_warnings():
        # our own, lower limit is checked first; Pillow's warning would only be noise
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(path)
        except Image.DecompressionBombError as e:  # Pillow's hard limit, far above ours
            raise FacesketchError(f"{shown(path)}: declares more than {MAX_PIXELS / 1e6:g} megapixels ({e}); "
                                  "refused before decoding") from None
        with im:
            mode = im.mode
            check_declared_size(path, im.size)
            if max_side and im.format == "JPEG" and max(im.size) > max_side:
                w, h = im.size
                im.draft(im.mode, (max(1, w * max_side // max(w, h)), max(1, h * max_side // max(w, h))))
            im.load()
            im = ImageOps.exif_transpose(im)
    if im.mode in HIGH_BIT_WHITE:
        im = _high_bit_to_l(im, path)
    elif im.mode in ("RGBA", "LA", "P", "PA"):
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im).convert("RGB")
    elif im.mode not in ("RGB", "L"):
        im = im.convert("RGB")
    return im, mode


def open_image(path: Path) -> Image.Image:
    """read_image without the mode: an 'RGB' or 'L' image."""
    return read_image(path)[0]


def _high_bit_to_l(im: Image.Image, path: Path) -> Image.Image:
    white = HIGH_BIT_WHITE[im.mode]
    arr = np.asarray(im, dtype=np.float64)
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if not (np.isfinite(arr).all() and 0 <= lo and hi <= white):
        # guessing a range (min-max, /255, ...) would silently change the numbers
        raise FacesketchError(f"{shown(path)}: mode {im.mode} image has values {lo:g}..{hi:g}, outside 0..{white:g} "
                              "(black..white); save it as an 8- or 16-bit image")
    return Image.fromarray(np.round(arr * (255.0 / white)).astype(np.uint8))


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
