"""`facesketch identify SKETCH --gallery DIR` (facesketch.gallery)."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from facesketch.cli import app
from facesketch.gallery import similarities

runner = CliRunner()


def test_similarity_is_cosine_after_centring_on_the_gallery():
    gallery = np.array([[1.0, 0.0, 5.0], [0.0, 1.0, 5.0], [1.0, 1.0, 5.0]])
    centred = gallery - gallery.mean(0)
    probe = np.array([2.0, 0.0, 5.0])
    p = probe - gallery.mean(0)
    expected = centred @ p / (np.linalg.norm(centred, axis=1) * np.linalg.norm(p))
    assert np.allclose(similarities(probe, gallery), expected)
    assert np.argmax(similarities(probe, gallery)) == 0
    # the shared offset (5.0) would make every raw cosine near 1: centring is what separates them
    raw = gallery @ probe / (np.linalg.norm(gallery, axis=1) * np.linalg.norm(probe))
    assert raw.min() > 0.9 and similarities(probe, gallery).min() < 0


@pytest.fixture
def gallery(tmp_path, face_photos):
    g = tmp_path / "gallery"
    (g / "more").mkdir(parents=True)
    shutil.copy(face_photos["astronaut"], g / "collins.png")
    shutil.copy(face_photos["hopper"], g / "more" / "hopper.png")
    flipped = Image.open(face_photos["hopper"]).convert("RGB").rotate(8, fillcolor=(20, 40, 90))
    flipped.resize((300, 352)).save(g / "hopper_small.jpg")
    Image.new("RGB", (200, 200), "grey").save(g / "wall.png")
    (g / "list.txt").write_text("x")
    return g


@pytest.mark.parametrize("via", ["photo", "sketch"])
def test_the_sketch_finds_its_person_and_a_contact_sheet_is_written(tmp_path, face_photos, gallery, via):
    # the query: a sketch of Collins drawn by the shipped photo2sketch weights
    assert runner.invoke(app, ["sketch", str(face_photos["astronaut"]), "--out", str(tmp_path / "q")]).exit_code == 0
    query = tmp_path / "q" / "astronaut_sketch.png"
    out = tmp_path / "found"
    r = runner.invoke(app, ["identify", str(query), "--gallery", str(gallery), "--top", "2", "--via", via,
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert f"against 3 photos of {gallery}" in r.output and "chance of rank 1: 0.333" in r.output
    assert f"skipped {gallery / 'wall.png'}: no face found" in r.output and "list.txt" in r.output
    rows = list(csv.DictReader((out / "matches.csv").open()))
    assert [row["rank"] for row in rows] == ["1", "2"]
    assert rows[0]["photo"].endswith("collins.png")
    assert float(rows[0]["score"]) > float(rows[1]["score"])
    sheet = Image.open(out / "contact.png")
    assert sheet.width == 200 * (3 + (via == "photo")) and sheet.height > 250
    assert "contact.png" in (out / "index.html").read_text()


@pytest.mark.parametrize("args, message", [
    (["--top", "0"], "--top must be at least 1"),
    (["--via", "x"], "--via must be sketch or photo"),
    (["--gallery", "nowhere"], "--gallery nowhere: not a folder of face photos"),
])
def test_bad_identify_options(tmp_path, face_photos, gallery, args, message):
    argv = ["identify", str(face_photos["hopper"])] + (["--gallery", str(gallery)] if "--gallery" not in args else [])
    r = runner.invoke(app, argv + args + ["--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and message in r.output


def test_a_gallery_without_faces_is_one_clear_error(tmp_path, face_photos):
    empty = tmp_path / "walls"
    empty.mkdir()
    Image.new("RGB", (200, 200), "grey").save(empty / "wall.png")
    r = runner.invoke(app, ["identify", str(face_photos["hopper"]), "--gallery", str(empty)])
    assert r.exit_code == 2 and "no usable face photo in it" in r.output
