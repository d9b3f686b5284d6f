"""`facesketch data align RAW OUT`: a raw paired set of mixed sizes becomes a trainable, CUFS-framed one."""

from __future__ import annotations

import csv

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from facesketch.cli import app
from facesketch.data.align import CUFS_SIZE

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
    for name in face_photos:
        photo, sketch = Image.open(out / "photos" / f"{name}.png"), Image.open(out / "sketches" / f"{name}.png")
        assert photo.size == sketch.size == CUFS_SIZE
        face = (40, 90, 160, 220)   # eyes to mouth
        diff = np.abs(np.asarray(photo.convert("L").crop(face), float) - np.asarray(sketch.convert("L").crop(face), float))
        assert diff.mean() / 255 < 0.08, name   # the two scans now line up
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
