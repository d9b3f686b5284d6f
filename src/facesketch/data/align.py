"""Find a face in any photo or sketch and align it to the CUFS framing, with OpenCV's own detectors.

CUFS pictures are 200x250 portraits of a frontal face with the eyes level. Measured on all 188
photos and 188 sketches of ../shared/data/cufs (Haar face, then Haar eyes in the face's upper
half; `tests/test_align.py` re-measures it): the eye centres lie at x = 73-74 and 124-125,
y = 125-125.5, with an interquartile range of 1-1.5 px, photos and sketches alike. So the
target framing is left eye (74, 125), right eye (125, 125) in a 200x250 image (`CUFS_EYES`).

Alignment is one similarity transform (rotation, uniform scale, shift) that puts the detected
eyes there; border pixels are repeated outward. When the eye detector does not give a
plausible pair (glasses, closed eyes, a drawing), the eyes are placed from the face box by the
ratios measured on CUFS: at 32% and 66% of its width and 39.5% of its height (standard
deviation 1.2-1.5% of the box, about 2 px at CUFS scale). Faces turned more than about 20 degrees
in the picture's plane are found by also searching the picture turned by +-12 and +-25 degrees.

The search runs on a copy scaled to at most 320 px per side (QUICK), then, if that finds
nothing, 640 px (`DETECT_SIDE`) with finer steps and turned copies: a 12-megapixel phone photo
would otherwise take seconds. Each face found there is looked at again in a window
resampled from the full-resolution picture at the scale of a CUFS face (`_refine`): a Haar box
found at 30 px is ~18% too large, and eyes are not found at all at that size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from facesketch import FacesketchError

CUFS_SIZE = (200, 250)                      # width, height
CUFS_EYES = ((74.0, 125.0), (125.0, 125.0))  # left and right eye centre, px, in the image
# eye centres relative to a Haar face box (x / w, y / h), medians over CUFS photos and sketches
BOX_EYES = ((0.320, 0.395), (0.663, 0.395))
DETECT_SIDE = 640       # px; the search only needs to find candidates, _refine places them
# The quick pass: (px per side, scale step, smallest face as a share of the shorter side). About
# 3x cheaper than the thorough pass; it finds the face of a portrait, not a small face in a crowd.
QUICK = (320, 1.2, 0.08)
MIN_FACE = 0.06          # smallest face side searched, as a share of the detection copy's shorter side
TILTS = (0.0, -12.0, 12.0, -25.0, 25.0)
REFINE_SIDE = 320        # px of the window each face is looked at again in (the face fills half of it)
REFINE_ROUNDS = 2
SECOND_OPINION = "haarcascade_frontalface_alt2.xml"
# A CUFS-sized picture whose face is found where CUFS faces are is kept as it is: re-warping by
# the detectors' noise would shift and blur a picture that is already framed. Over all 376 CUFS
# pictures (true eye positions vary by 1 px) the eyes placed from the face box lie a median
# 2.8-3.1 px, a 95th percentile 6.3-6.7 px and at most 9.7 px from CUFS_EYES; detected eye pairs
# read a 95th percentile of 3.4 degrees of tilt and at most 6.2. The limits are those maxima,
# rounded up with a margin: a picture is re-framed only when it is further off than CUFS itself
# ever reads.
SNAP_PX = 11.0
SNAP_DEGREES = 10.0


class NoFaceError(FacesketchError):
    """No face was found in a picture."""


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]   # x, y, w, h in the original picture's pixels
    eyes: tuple[tuple[float, float], tuple[float, float]]  # left, right eye centre (as seen), px
    eyes_detected: bool                        # False: placed from the box by BOX_EYES

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]


@dataclass(frozen=True)
class Aligned:
    image: Image.Image   # CUFS_SIZE, same mode as the input
    face: Face | None    # None: not aligned (--no-align)


@lru_cache(maxsize=None)
def _cascade(name: str):
    import cv2
    c = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    if c.empty():  # opencv-python-headless 5 no longer ships the Haar files
        raise FacesketchError(f"OpenCV's {name} is missing from {cv2.data.haarcascades}; "
                              "install opencv-python-headless<5")
    return c


def _grey(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.uint8)


def _eyes_in(grey: np.ndarray, box) -> tuple | None:
    """A plausible (left, right) eye pair inside the upper part of the face box, or None."""
    x, y, w, h = box
    roi = grey[y:y + int(h * 0.6), x:x + w]
    side = max(8, w // 8)
    found = _cascade("haarcascade_eye.xml").detectMultiScale(roi, 1.1, 5, minSize=(side, side))
    centres = [(x + ex + ew / 2, y + ey + eh / 2) for ex, ey, ew, eh in found]
    best, best_err = None, None
    for i in range(len(centres)):
        for j in range(i + 1, len(centres)):
            a, b = sorted((centres[i], centres[j]))
            dx, dy = b[0] - a[0], b[1] - a[1]
            # both eyes, one each side of the box's middle, level within 20 degrees, 25-55% of its width apart
            if not (a[0] < x + w / 2 < b[0] and 0.25 * w <= dx <= 0.55 * w and abs(dy) <= dx * math.tan(math.radians(20))):
                continue
            expected = [(x + ex * w, y + ey * h) for ex, ey in BOX_EYES]
            err = max(math.dist(p, q) for p, q in zip((a, b), expected))
            # the box ratios place eyes within ~2% of the box: further than 10% is another feature
            if err <= 0.1 * w and (best_err is None or err < best_err):
                best, best_err = (a, b), err
    return best


def _refine(full: np.ndarray, work_box, to_work: np.ndarray) -> Face | None:
    """Look again at one face found in the detection copy, at the scale CUFS faces have.

    A REFINE_SIDE square window, twice the box's side and upright in the (possibly turned)
    detection copy, is resampled from the full-resolution picture: a small face in a large photo
    gets the pixels it has, a large one is shrunk to the size the box ratios were measured at.
    The window is centred again on the face found in it (REFINE_ROUNDS times), so that where the
    first candidate box happened to lie hardly matters. The face and eyes found in the last window
    are mapped back to the picture's own coordinates; None when no face is found there again, or
    the second detector sees none (the search's false alarms)."""
    import cv2
    back = cv2.invertAffineTransform(to_work)            # detection copy -> picture
    lin, off = back[:, :2], back[:, 2]
    x, y, w, _ = work_box
    cx, cy = x + w / 2, y + w / 2                        # the face's centre and side, detection copy px
    side, centre = REFINE_SIDE / 2, REFINE_SIDE / 2
    for _ in range(REFINE_ROUNDS):
        k = 2.0 * w / REFINE_SIDE                        # detection copy px per window px
        t0 = np.array([cx - k * centre, cy - k * centre])
        window = np.hstack([lin * k, (lin @ t0 + off)[:, None]])   # window -> picture
        roi = cv2.equalizeHist(cv2.warpAffine(full, window, (REFINE_SIDE, REFINE_SIDE),
                                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                              borderMode=cv2.BORDER_REPLICATE))
        found = _cascade("haarcascade_frontalface_default.xml").detectMultiScale(
            roi, 1.1, 5, minSize=(int(side * 0.6), int(side * 0.6)), maxSize=(int(side * 1.5), int(side * 1.5)))
        box = min((tuple(int(v) for v in b) for b in found),
                  key=lambda b: math.hypot(b[0] + b[2] / 2 - centre, b[1] + b[3] / 2 - centre), default=None)
        if box is None:  # not found again at a face's own scale: most likely not a face
            return None
        bx, by, bw, _ = box
        cx, cy, w = k * (bx + bw / 2) + t0[0], k * (by + bw / 2) + t0[1], k * bw
    # a second opinion from OpenCV's other frontal-face detector, trained apart: it confirms 188 of
    # 188 CUFS photos and 187 of 188 sketches, and turns down the default detector's false faces
    # (an astronaut's suit, seen when her turned face itself was missed upright)
    if len(_cascade(SECOND_OPINION).detectMultiScale(roi, 1.1, 3, minSize=(int(side * 0.6), int(side * 0.6)),
                                                     maxSize=(int(side * 1.5), int(side * 1.5)))) == 0:
        return None
    eyes = _eyes_in(roi, box)
    detected = eyes is not None
    if not detected:
        eyes = tuple((bx + ex * bw, by + ey * bw) for ex, ey in BOX_EYES)
    to_pic = lambda px, py: tuple(window @ np.array([px, py, 1.0]))   # noqa: E731
    size = bw * math.hypot(*window[:, 0])
    px, py = to_pic(bx + bw / 2, by + bw / 2)
    return Face(box=(px - size / 2, py - size / 2, size, size), eyes=tuple(to_pic(*e) for e in eyes),
                eyes_detected=detected)


def _search(full: np.ndarray, side: int, step: float, min_share: float, tilts) -> list[Face]:
    """Haar faces on a copy scaled to at most `side` px, upright then turned by each tilt in turn;
    each candidate refined (and verified) at full resolution. The first tilt that finds any wins."""
    import cv2
    scale = min(1.0, side / max(full.shape))
    small = full if scale == 1.0 else cv2.resize(full, (round(full.shape[1] * scale), round(full.shape[0] * scale)),
                                                 interpolation=cv2.INTER_AREA)
    # no global equalisation: on a mostly flat picture it flattens the face (_refine equalises its window)
    h0, w0 = small.shape
    min_side = max(20, int(min_share * min(h0, w0)))
    for tilt in tilts:
        # picture -> detection copy: scaled, then turned by `tilt` about the copy's centre
        turn = cv2.getRotationMatrix2D((w0 / 2, h0 / 2), tilt, 1.0)
        to_work = np.hstack([turn[:, :2] * scale, turn[:, 2:]])
        work = small if not tilt else cv2.warpAffine(small, turn, (w0, h0), borderMode=cv2.BORDER_REPLICATE)
        boxes = _cascade("haarcascade_frontalface_default.xml").detectMultiScale(
            work, step, 5, minSize=(min_side, min_side))
        faces = [f for b in boxes if (f := _refine(full, tuple(int(v) for v in b), to_work)) is not None]
        if faces:
            return sorted(faces, key=lambda f: -f.area)
    return []


def detect_faces(image: Image.Image, *, thorough: bool = False) -> list[Face]:
    """Faces found, largest first, in the picture's own pixel coordinates.

    A quick upright pass (QUICK) comes first; when it finds nothing, the thorough one (DETECT_SIDE,
    smaller faces, finer steps, then turned copies). `thorough=True` (every face wanted) goes
    straight to the thorough pass, so that small faces beside a large one are found too."""
    full = _grey(image)
    if not thorough and (faces := _search(full, *QUICK, tilts=(0.0,))):
        return faces
    return _search(full, DETECT_SIDE, 1.1, MIN_FACE, TILTS)


def _transform(face: Face) -> np.ndarray:
    """The 2x3 similarity matrix that moves the face's eyes onto CUFS_EYES."""
    (lx, ly), (rx, ry) = face.eyes
    (tlx, tly), (trx, _) = CUFS_EYES
    scale = (trx - tlx) / max(math.hypot(rx - lx, ry - ly), 1e-6)
    angle = math.atan2(ry - ly, rx - lx)
    c, s = scale * math.cos(-angle), scale * math.sin(-angle)
    # x' = c*x - s*y + tx ; y' = s*x + c*y + ty, with the left eye landing on its target
    return np.array([[c, -s, tlx - (c * lx - s * ly)], [s, c, tly - (s * lx + c * ly)]], dtype=np.float64)


def already_framed(image: Image.Image, face: Face) -> bool:
    """True when `image` is already a CUFS-framed crop up to the detectors' own noise: CUFS_SIZE,
    the eyes placed from the face box within SNAP_PX of CUFS_EYES, and the detected eyes (if any)
    level within SNAP_DEGREES. Resampling it would only move and blur it."""
    if image.size != CUFS_SIZE:
        return False
    (x, y, w, h) = face.box
    from_box = [(x + ex * w, y + ey * h) for ex, ey in BOX_EYES]
    (lx, ly), (rx, ry) = face.eyes
    level = not face.eyes_detected or abs(math.degrees(math.atan2(ry - ly, rx - lx))) <= SNAP_DEGREES
    return level and all(math.dist(p, q) <= SNAP_PX for p, q in zip(from_box, CUFS_EYES))


def align_to(image: Image.Image, face: Face) -> Image.Image:
    """The CUFS-framed crop (CUFS_SIZE) of `face` in `image`: its eyes moved to CUFS_EYES."""
    import cv2
    if already_framed(image, face):
        return image.copy()
    m = _transform(face)
    scale = math.hypot(m[0, 0], m[1, 0])
    arr = np.asarray(image)
    # INTER_AREA is not for warps; shrinking a large photo by > 2x with bilinear would alias, so pre-shrink
    if scale < 0.5:
        factor = max(1, int(1 / scale / 2))
        small = image.reduce(factor)
        arr = np.asarray(small)
        m[:, :2] *= factor
    out = cv2.warpAffine(arr, m, CUFS_SIZE, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return Image.fromarray(out)


NO_ALIGN_HINT = "if it is already a face crop, use --no-align"


def align_face(image: Image.Image, *, all_faces: bool = False, name: str = "image",
               hint: str = NO_ALIGN_HINT) -> list[Aligned]:
    """The largest face (or every face, largest first) aligned to the CUFS framing.

    Raises NoFaceError naming `name` (and giving `hint`, when there is one) when no face is found."""
    faces = detect_faces(image, thorough=all_faces)
    if not faces:
        raise NoFaceError(f"{name}: no face found" + (f"; {hint}" if hint else ""))
    return [Aligned(align_to(image, f), f) for f in (faces if all_faces else faces[:1])]


def no_align(image: Image.Image) -> Aligned:
    """An input taken as it is (already a face crop); the model stretches it to its square, as it
    does CUFS pictures, and the output comes back at the input's size."""
    return Aligned(image, None)
