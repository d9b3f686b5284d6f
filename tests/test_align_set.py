"""`facesketch data align RAW OUT`: a raw paired set of mixed sizes becomes a trainable, CUFS-framed one."""

from __future__ import annotations

import csv

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from facesketch.cli import app
from facesketch.data.align import CUFS_SIZE, detect_faces

runner = CliRunner()


def _raw_set(root, face_photos):
    """photos/ and sketches/ scanned at different sizes and offsets (the 'sketch' is the photo's
    greyscale, so a registered pair matches pixel for pixel); one pair whose sketch shows no face."""
    (root / "photos").mkdir(parents=True)
    (root / "sketches").mkdir()
    for name, path in face_photos.items():
        photo = Image.open(path).convert("RGB")
        photo.save(root / "photos" / f"{name}.jpg", quality=95)
        grey = photo.convert("L")
        page = Image.new("L", (900, 1000), int(np.asarray(grey)[0, 0]))
        page.paste(grey.resize((int(grey.width * 1.4), int(grey.height * 1.4))), (120, 90))
        page.save(root / "sketches" / f"{name}.png")
    Image.open(face_photos["hopper"]).convert("RGB").save(root / "photos" / "blank.jpg")
    Image.new("L", (400, 500), 255).save(root / "sketches" / "blank.png")


def test_raw_pairs_come_out_registered_and_trainable(tmp_path, face_photos):
    raw, out = tmp_path / "raw", tmp_path / "aligned"
    _raw_set(raw, face_photos)
    assert runner.invoke(app, ["data", "check", str(raw)]).exit_code == 1   # refused as it is: sizes differ
    r = runner.invoke(app, ["data", "align", str(raw), str(out)])
    assert r.exit_code == 0, r.output
    assert "aligned 2 of 3 pairs" in r.output and "not aligned blank:" in r.output and "no face found" in r.output
    assert [row["pair"] for row in csv.DictReader((out / "not_aligned.csv").open())] == ["blank"]
    def face_diff(a, b):   # mean grey difference from the eyes to the mouth, 0..1
        a, b = (np.asarray(Image.open(p).convert("L").crop((40, 90, 160, 220)), float) for p in (a, b))
        return np.abs(a - b).mean() / 255

    for name in face_photos:
        photo, sketch = out / "photos" / f"{name}.png", out / "sketches" / f"{name}.png"
        assert Image.open(photo).size == Image.open(sketch).size == CUFS_SIZE
        # the two scans now line up: the face is found again in the same place at the same size
        (px, py, pw, _), (sx, sy, sw, _) = (detect_faces(Image.open(p))[0].box for p in (photo, sketch))
        assert abs(px - sx) <= 8 and abs(py - sy) <= 8 and 0.9 <= pw / sw <= 1.1, name
    # with both eyes found (the astronaut; Hopper's glasses hide hers) pixel for pixel, far closer
    # than two different people in the same framing
    assert face_diff(out / "photos" / "astronaut.png", out / "sketches" / "astronaut.png") < 0.08
    assert face_diff(out / "photos" / "hopper.png", out / "sketches" / "astronaut.png") > 0.2
    check = runner.invoke(app, ["data", "check", str(out)])
    assert check.exit_code == 0, check.output


def test_out_must_be_new_and_outside_raw(tmp_path, face_photos):
    raw = tmp_path / "raw"
    _raw_set(raw, face_photos)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    r = runner.invoke(app, ["data", "align", str(raw), str(tmp_path / "full")])
    assert r.exit_code == 2 and "is not empty" in r.output and (tmp_path / "full" / "keep.txt").exists()
    r = runner.invoke(app, ["data", "align", str(raw), str(raw / "aligned")])
    assert r.exit_code == 2 and "lies inside RAW" in r.output
    r = runner.invoke(app, ["data", "align", str(tmp_path / "none"), str(tmp_path / "o")])
    assert r.exit_code == 2 and "no photo/sketch pairs found" in r.output
