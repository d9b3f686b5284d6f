"""Face finding and alignment to the CUFS framing (facesketch.data.align)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from facesketch.data.align import (CUFS_EYES, CUFS_SIZE, NoFaceError, align_face, already_framed, detect_faces,
                                   no_align)


def _same_framing(a: Image.Image, b: Image.Image) -> bool:
    """The face found again in two crops sits in the same place at the same size (within ~7%: a
    Haar box varies about 5% in size from one scale of the same picture to another)."""
    (ax, ay, aw, _), (bx, by, bw, _) = _eyes_after(a).box, _eyes_after(b).box
    return abs(ax - bx) <= 10 and abs(ay - by) <= 10 and 0.87 <= aw / bw <= 1.15


def _eyes_after(crop: Image.Image):
    faces = detect_faces(crop)
    assert faces, "the aligned crop itself must still show a face"
    return faces[0]


def _diff(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute grey difference over the face itself (eyes to mouth), 0..1."""
    box = (40, 90, 160, 220)
    a, b = (np.asarray(im.convert("L").crop(box), float) for im in (a, b))
    return float(np.abs(a - b).mean() / 255)


def test_a_real_photo_is_cropped_to_the_cufs_framing(face_photos):
    for path in face_photos.values():
        crop = align_face(Image.open(path).convert("RGB"), name=path.name)[0].image
        assert crop.size == CUFS_SIZE and crop.mode == "RGB"
        again = _eyes_after(crop)
        # found again where CUFS puts eyes, within the detectors' own noise (the box estimate is ~2 px)
        assert all(math.dist(p, q) < 8 for p, q in zip(again.eyes, CUFS_EYES)), again.eyes


@pytest.mark.parametrize("angle", [-20, 30])
def test_a_turned_photo_comes_out_upright(face_photos, angle):
    photo = Image.open(face_photos["astronaut"]).convert("RGB")
    upright = align_face(photo)[0].image
    turned = photo.rotate(angle, resample=Image.BICUBIC, fillcolor=(128, 128, 128))
    crop = align_face(turned)[0].image
    (lx, ly), (rx, ry) = _eyes_after(crop).eyes
    assert abs(math.degrees(math.atan2(ry - ly, rx - lx))) < 8
    assert _diff(crop, upright) < 0.08   # the same face in the same place; a wrong turn is ~0.2


def test_framing_size_and_position_do_not_matter(face_photos):
    photo = Image.open(face_photos["hopper"]).convert("RGB")
    reference = align_face(photo)[0].image
    canvas = Image.new("RGB", (3000, 2200), (40, 90, 30))
    canvas.paste(photo.resize((1100, 1289)), (1700, 600))   # 2.15x larger, far off centre, 6.6 megapixels
    crop = align_face(canvas)[0].image
    assert crop.size == CUFS_SIZE
    assert _same_framing(crop, reference)


def test_every_face_or_the_largest(face_photos):
    a = Image.open(face_photos["astronaut"]).convert("RGB")
    h = Image.open(face_photos["hopper"]).convert("RGB")
    both = Image.new("RGB", (1200, 700), "white")
    both.paste(a.resize((300, 300)), (40, 200))   # the astronaut small, Hopper large
    both.paste(h, (600, 50))
    largest = align_face(both)
    assert len(largest) == 1 and _same_framing(largest[0].image, align_face(h)[0].image)
    every = align_face(both, all_faces=True)
    assert len(every) == 2 and every[0].face.area > every[1].face.area
    assert _same_framing(every[1].image, align_face(a)[0].image)
    assert _diff(every[1].image, every[0].image) > 0.15   # two different people


def test_no_face_is_a_clear_error_naming_the_file():
    flat = Image.new("RGB", (300, 300), (128, 128, 128))
    with pytest.raises(NoFaceError, match=r"^wall\.png: no face found.*--no-align"):
        align_face(flat, name="wall.png")


def test_no_align_takes_the_picture_as_it_is():
    im = Image.new("RGB", (64, 80), "red")
    assert no_align(im).image is im and no_align(im).face is None


def test_cufs_eye_positions_are_what_the_module_states(cufs_dir):
    """Re-measures CUFS_EYES on the real set and checks that CUFS pictures are left untouched."""
    for kind in ("photos", "sketches"):
        files = sorted((cufs_dir / kind).iterdir())
        faces = [(f, detect_faces(Image.open(f))) for f in files]
        assert all(found for _, found in faces), "every CUFS picture has a face"
        detected = np.array([found[0].eyes for _, found in faces if found[0].eyes_detected]).reshape(-1, 4)
        if kind == "photos":   # Haar finds eye pairs in most photos, in few sketches
            assert len(detected) > 0.7 * len(files)   # measured: 144 of 188
            assert np.abs(np.median(detected, 0) - np.array(CUFS_EYES).ravel()).max() <= 2.0
        kept = sum(already_framed(Image.open(f), found[0]) for f, found in faces)
        assert kept >= 0.95 * len(files)   # all of them, with SNAP_PX the largest error seen
        f, found = faces[0]
        assert align_face(Image.open(f))[0].image.tobytes() == Image.open(f).tobytes() or not already_framed(
            Image.open(f), found[0])


def test_a_turned_face_on_a_wide_canvas_is_found_not_a_false_face_in_her_suit(face_photos):
    """Upright, the default detector misses the turned face and finds a 'face' in the orange suit;
    the second detector turns that down and the turned search finds her."""
    photo = Image.open(face_photos["astronaut"]).convert("RGB")
    canvas = Image.new("RGB", (1100, 700), (60, 70, 90))
    canvas.paste(photo.rotate(-18, resample=Image.BICUBIC, fillcolor=(60, 70, 90)), (420, 120))
    crop = align_face(canvas)[0].image
    assert _same_framing(crop, align_face(photo)[0].image)
    assert _diff(crop, align_face(photo)[0].image) < 0.08
