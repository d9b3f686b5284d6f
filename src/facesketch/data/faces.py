"""Drawing the built-in synthetic faces: one identity's photo and sketch from a seeded generator.

Each identity draws its own geometry (face shape, hair style, eyes, brows, nose, mouth,
clothes); the photo renders it in colour with soft shading and noise, the sketch renders the
same geometry as grey pencil lines with hair hatching on white paper. Deterministic per
(seed, index).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

W, H = 200, 250   # CUFS image size
S = 2             # drawn at 2x, then downsampled: cheap anti-aliasing

SKIN = [(241, 204, 178), (226, 184, 150), (198, 150, 112), (160, 112, 80), (110, 74, 52), (236, 196, 160)]
HAIR = [(25, 20, 18), (60, 40, 28), (110, 72, 40), (170, 130, 80), (140, 140, 140), (90, 30, 20)]
CLOTHES = [(40, 60, 120), (150, 30, 40), (40, 110, 60), (220, 220, 220), (30, 30, 30), (120, 90, 150)]
HAIR_STYLES = ("short", "long", "bob", "buzz", "bun")


@dataclass
class Face:
    female: bool
    bg: tuple
    skin: tuple
    hair: tuple
    clothes: tuple
    style: str
    cx: float
    cy: float
    fw: float   # face half-width
    fh: float   # face half-height
    eye_dy: float
    eye_dx: float
    eye_w: float
    eye_h: float
    iris: tuple
    brow_lift: float
    brow_thick: float
    nose_len: float
    nose_w: float
    mouth_w: float
    mouth_y: float
    smile: float
    lips: tuple


def draw_face(rng: np.random.Generator, female: bool) -> Face:
    pick = lambda seq: seq[int(rng.integers(len(seq)))]
    u = lambda a, b: float(rng.uniform(a, b))
    styles = ("long", "bob", "bun", "short") if female else ("short", "buzz", "short", "bob")
    skin = pick(SKIN)
    return Face(
        female=female,
        bg=(int(u(40, 90)), int(u(90, 140)), int(u(170, 230))),
        skin=skin, hair=pick(HAIR), clothes=pick(CLOTHES), style=pick(styles),
        cx=u(96, 104), cy=u(112, 122), fw=u(44, 54), fh=u(58, 68),
        eye_dy=u(-10, -4), eye_dx=u(18, 23), eye_w=u(8, 11), eye_h=u(3.5, 5.5),
        iris=pick([(60, 40, 25), (40, 70, 110), (70, 90, 50), (30, 25, 20)]),
        brow_lift=u(9, 14), brow_thick=u(1.5, 3.5) if female else u(2.5, 4.5),
        nose_len=u(20, 28), nose_w=u(7, 11),
        mouth_w=u(14, 20), mouth_y=u(36, 44), smile=u(-1.5, 4),
        lips=tuple(int(c * u(0.7, 0.85)) for c in (skin[0], skin[1] * 0.8, skin[2] * 0.8)),
    )


def _ellipse(cx, cy, rx, ry):
    return [S * (cx - rx), S * (cy - ry), S * (cx + rx), S * (cy + ry)]


def _masks(f: Face) -> dict[str, Image.Image]:
    """Binary masks (L, 2x size) of the face parts, shared by the photo and sketch renderers."""
    m = {k: Image.new("L", (W * S, H * S), 0) for k in ("clothes", "neck", "face", "hair", "hair_back")}
    d = {k: ImageDraw.Draw(v) for k, v in m.items()}
    shoulder_y = f.cy + f.fh + 22
    d["clothes"].ellipse(_ellipse(f.cx, shoulder_y + 60, 95, 68), fill=255)
    d["neck"].rectangle([S * (f.cx - f.fw * 0.45), S * (f.cy + f.fh * 0.5),
                         S * (f.cx + f.fw * 0.45), S * (shoulder_y + 6)], fill=255)
    d["neck"].polygon([(S * (f.cx - 16), S * (shoulder_y - 4)), (S * (f.cx + 16), S * (shoulder_y - 4)),
                       (S * f.cx, S * (shoulder_y + 18))], fill=255)  # the collar's opening
    d["face"].ellipse(_ellipse(f.cx, f.cy, f.fw, f.fh), fill=255)
    for side in (-1, 1):  # ears
        d["face"].ellipse(_ellipse(f.cx + side * f.fw * 0.98, f.cy + 2, 7, 13), fill=255)
    top = f.cy - f.fh
    if f.style == "buzz":
        d["hair"].chord(_ellipse(f.cx, f.cy - 4, f.fw + 2, f.fh + 3), 180, 360, fill=255)
        d["hair"].ellipse(_ellipse(f.cx, f.cy + 10, f.fw - 3, f.fh - 8), fill=0)
    else:
        bulk = {"short": 8, "bob": 12, "long": 12, "bun": 6}[f.style]
        d["hair"].chord(_ellipse(f.cx, f.cy - 6, f.fw + bulk, f.fh + bulk), 170, 370, fill=255)
        # forehead: the hairline cut out of the hair cap
        d["hair"].ellipse(_ellipse(f.cx, f.cy + f.fh * 0.28, f.fw * 0.9, f.fh * 0.88), fill=0)
        if f.style in ("bob", "long"):
            for side in (-1, 1):
                d["hair"].rectangle([S * (f.cx + side * f.fw - 10 - (side < 0) * 4), S * (f.cy - 20),
                                     S * (f.cx + side * (f.fw + 4 + bulk) + 10 - (side > 0) * 14),
                                     S * (f.cy + (40 if f.style == "bob" else 0))], fill=255)
        if f.style == "long":
            d["hair_back"].rounded_rectangle([S * (f.cx - f.fw - 16), S * (top + 10), S * (f.cx + f.fw + 16),
                                              S * (f.cy + f.fh + 40)], radius=40 * S, fill=255)
        if f.style == "bun":
            d["hair"].ellipse(_ellipse(f.cx, top - 6, 18, 14), fill=255)
    return m


LAYERS = ("hair_back", "clothes", "neck", "face", "hair")  # painting order, back to front


def _labels(f: Face) -> np.ndarray:
    """Per-pixel index into LAYERS (+1; 0 = background) of the visible part, at 2x size."""
    m = _masks(f)
    lab = np.zeros((H * S, W * S), np.uint8)
    for k, key in enumerate(LAYERS, start=1):
        lab[np.asarray(m[key]) > 127] = k
    return lab


def _features(draw: ImageDraw.ImageDraw, f: Face, *, sketch: bool) -> None:
    """Eyes, brows, nose and mouth; in colour for the photo, as pencil lines for the sketch."""
    ink = (70, 70, 70)
    ey = f.cy + f.eye_dy
    for side in (-1, 1):
        ex = f.cx + side * f.eye_dx
        white = (235, 235, 230) if not sketch else (250, 250, 250)
        draw.ellipse(_ellipse(ex, ey, f.eye_w, f.eye_h), fill=white, outline=ink if sketch else None,
                     width=S * 1)
        draw.ellipse(_ellipse(ex, ey, f.eye_h * 0.95, f.eye_h * 0.95), fill=(40, 40, 40) if sketch else f.iris)
        draw.ellipse(_ellipse(ex, ey, f.eye_h * 0.4, f.eye_h * 0.4), fill=(10, 10, 10))
        # upper lid line, a touch heavier in both renderings
        draw.arc(_ellipse(ex, ey, f.eye_w, f.eye_h), 190, 350, fill=(30, 30, 30), width=int(S * 1.5))
        by = ey - f.brow_lift
        brow = f.hair if not sketch else (90, 90, 90)
        pts = [(S * (ex - side * f.eye_w * 1.1), S * (by + 2)), (S * ex, S * (by - 2)),
               (S * (ex + side * f.eye_w * 1.2), S * (by + 1))]
        draw.line(pts, fill=brow, width=int(S * f.brow_thick), joint="curve")
    nose_top, nose_bot = ey + 4, ey + f.nose_len
    shade = tuple(int(c * 0.78) for c in f.skin) if not sketch else (120, 120, 120)
    draw.line([(S * (f.cx - 3), S * nose_top), (S * (f.cx - f.nose_w * 0.45), S * (nose_bot - 2))],
              fill=shade, width=S * 1)
    for side in (-1, 1):
        draw.arc(_ellipse(f.cx + side * f.nose_w * 0.45, nose_bot, f.nose_w * 0.45, 3.5),
                 0 if side > 0 else 90, 180 if side > 0 else 270, fill=ink if sketch else shade, width=S * 1)
    my = f.cy + f.mouth_y
    lips = f.lips if not sketch else (200, 200, 200)
    draw.chord(_ellipse(f.cx, my, f.mouth_w, 5), 0, 180, fill=lips, outline=ink if sketch else None)
    draw.chord(_ellipse(f.cx, my + 0.5, f.mouth_w * 0.9, 3), 180, 360, fill=lips, outline=ink if sketch else None)
    draw.line([(S * (f.cx - f.mouth_w), S * (my - f.smile * 0.3)), (S * f.cx, S * (my + f.smile * 0.2)),
               (S * (f.cx + f.mouth_w), S * (my - f.smile * 0.3))], fill=(60, 40, 40) if not sketch else ink,
              width=S * 1, joint="curve")


def render_photo(f: Face, rng: np.random.Generator) -> Image.Image:
    lab = _labels(f)
    yy = np.linspace(0, 1, H * S, dtype=np.float32)[:, None, None]
    bg = np.array(f.bg, np.float32) * (1.1 - 0.25 * yy) * np.ones((1, W * S, 1), np.float32)
    colours = (f.hair, f.clothes, tuple(int(c * 0.9) for c in f.skin), f.skin, f.hair)
    for k, colour in enumerate(colours, start=1):
        bg[lab == k] = colour
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    _features(ImageDraw.Draw(img), f, sketch=False)
    # soft light from the upper left: a radial falloff, multiplied in after downsampling
    img = img.resize((W, H), Image.LANCZOS).filter(ImageFilter.GaussianBlur(0.7))
    y, x = np.ogrid[0:H, 0:W]
    light = 1.08 - 0.35 * np.hypot((x - (f.cx - 25)) / 110.0, (y - (f.cy - 40)) / 140.0)
    img = np.asarray(img, np.float32) * np.clip(light, 0.6, 1.1)[..., None]
    noisy = img + rng.normal(0, 3.0, (H, W, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def render_sketch(f: Face, rng: np.random.Generator) -> Image.Image:
    lab = _labels(f)
    paper = Image.new("L", (W * S, H * S), 250)
    # outlines where the visible part changes, except hair against hair
    hairless = np.where(lab == 5, 1, lab)
    boundary = np.zeros_like(lab, dtype=bool)
    boundary[1:] |= hairless[1:] != hairless[:-1]
    boundary[:, 1:] |= hairless[:, 1:] != hairless[:, :-1]
    boundary[:-1] |= boundary[1:]  # thicken to ~2 px (a 2x2 dilation)
    boundary[:, :-1] |= boundary[:, 1:]
    edges = Image.fromarray(boundary.astype(np.uint8) * 255)
    # hair hatching: many long slanted strokes, kept inside the hair masks
    hatch = Image.new("L", paper.size, 0)
    hd = ImageDraw.Draw(hatch)
    for _ in range(int(rng.integers(260, 360))):
        x0, y0 = rng.uniform(0, W * S), rng.uniform(0, H * S)
        ang = rng.normal(1.9 if x0 < S * f.cx else 1.25, 0.15)
        ln = rng.uniform(20, 60) * S
        hd.line([(x0, y0), (x0 + ln * np.cos(ang), y0 + ln * np.sin(ang))],
                fill=int(rng.integers(110, 200)), width=S)
    hair = Image.fromarray(((lab == 1) | (lab == 5)).astype(np.uint8) * 255)
    dark = sum(f.hair) < 250  # dark hair gets denser shading
    hatch = ImageChops.multiply(hatch, hair)
    if dark:
        hatch = ImageChops.lighter(hatch, hair.point(lambda v: v * 0.35))
    clothes = Image.fromarray((lab == 2).astype(np.uint8) * 255).point(lambda v: v * (0.25 if sum(f.clothes) < 400 else 0.06))
    ink = ImageChops.lighter(ImageChops.lighter(edges.point(lambda v: v * 0.75), hatch), clothes)
    img = ImageChops.subtract(paper, ink)
    rgb = img.convert("RGB")
    _features(ImageDraw.Draw(rgb), f, sketch=True)
    img = rgb.convert("L").resize((W, H), Image.LANCZOS).filter(ImageFilter.GaussianBlur(0.6))
    grain = np.asarray(img, np.float32) + rng.normal(0, 4.0, (H, W))
    return Image.fromarray(np.clip(grain, 0, 255).astype(np.uint8))


def _stem_and_rng(seed: int, index: int) -> tuple[str, bool, np.random.Generator]:
    rng = np.random.default_rng([seed, index])
    female = bool(rng.integers(2))
    return f"{'f' if female else 'm'}-{index + 1:03d}-01", female, rng


def synth_stem(seed: int, index: int) -> str:
    """The photo stem of identity `index` under `seed` ('f-001-01' / 'm-001-01'), without drawing it."""
    return _stem_and_rng(seed, index)[0]


def synth_pair(seed: int, index: int) -> tuple[str, Image.Image, Image.Image]:
    """(photo stem, photo RGB, sketch L) for identity `index` under `seed`."""
    stem, female, rng = _stem_and_rng(seed, index)
    face = draw_face(rng, female)
    return stem, render_photo(face, rng), render_sketch(face, rng)
