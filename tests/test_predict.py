"""`facesketch sketch` / `facesketch photo` on one's own pictures (facesketch.predict), through the CLI."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from facesketch.cli import app
from facesketch.data.align import CUFS_SIZE, align_face
from facesketch.predict import Translator

runner = CliRunner()


@pytest.fixture
def mixed_folder(tmp_path, face_photos):
    """A folder as users have them: two faces (one in a sub-folder, one greyscale), a cat (no human
    face), a blank page, a 20 px icon, a text file, a truncated JPEG and a PNG whose header declares
    9000 px."""
    from skimage.data import chelsea
    d = tmp_path / "mine"
    (d / "sub").mkdir(parents=True)
    shutil.copy(face_photos["astronaut"], d / "astronaut.png")
    Image.open(face_photos["hopper"]).convert("L").save(d / "sub" / "hopper grey.jpg")
    Image.fromarray(chelsea()).save(d / "cat.png")
    Image.new("RGB", (300, 300), (128, 128, 128)).save(d / "wall.png")
    Image.open(face_photos["astronaut"]).resize((20, 20)).save(d / "icon.png")
    (d / "notes.txt").write_text("not a picture")
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)
    Image.new("L", (9000, 40)).save(d / "huge.png")
    return d


def test_a_folder_with_bad_files_gets_done_and_each_bad_file_is_named(mixed_folder):
    r = runner.invoke(app, ["sketch", str(mixed_folder), "--recursive"])
    assert r.exit_code == 1, r.output  # some inputs were skipped
    for name, why in [("notes.txt", "not an image file"), ("broken.jpg", "cannot read it as an image"),
                      ("huge.png", "declares 9000x40 pixels, above the limit"), ("cat.png", "no face found"),
                      ("wall.png", "a blank picture"), ("icon.png", "20x20 pixels, below the 32 px")]:
        assert f"skipped {mixed_folder / name}: {why}" in r.output
    assert "--no-align" in r.output
    assert "greyscale photo" in r.output
    assert "wrote 2 image(s)" in r.output
    for out in (mixed_folder / "astronaut_sketch.png", mixed_folder / "sub" / "hopper grey_sketch.png"):
        im = Image.open(out)
        assert im.size == CUFS_SIZE and im.mode == "L"
        assert 0.1 < np.asarray(im).std() / 255 < 0.5   # a drawing, not a flat page


def test_two_inputs_never_share_an_output_and_a_file_given_twice_is_done_once(tmp_path, face_photos):
    d = tmp_path / "same"
    d.mkdir()
    shutil.copy(face_photos["astronaut"], d / "a.png")
    Image.open(face_photos["hopper"]).save(d / "a.jpg")
    r = runner.invoke(app, ["sketch", str(d), str(d / "a.png"), str(d / "." / "a.png")])
    assert r.exit_code == 1 and "wrote 1 image(s)" in r.output
    assert f"skipped {d / 'a.png'}: its output {d / 'a_sketch.png'} is already that of {d / 'a.jpg'}" in r.output


def test_empty_folders_say_so(tmp_path, face_photos):
    (tmp_path / "empty").mkdir()
    (tmp_path / "nested" / "sub").mkdir(parents=True)
    shutil.copy(face_photos["astronaut"], tmp_path / "nested" / "sub" / "a.png")
    r = runner.invoke(app, ["sketch", str(tmp_path / "empty"), str(tmp_path / "nested")])
    assert r.exit_code == 1 and "wrote 0 image(s)" in r.output
    assert f"skipped {tmp_path / 'empty'}: no picture to do in this folder\n" in r.output
    assert "no picture to do in this folder (sub-folders need -r)" in r.output


def test_outputs_are_never_overwritten_nor_taken_as_inputs(tmp_path, face_photos):
    d = tmp_path / "one"
    d.mkdir()
    shutil.copy(face_photos["astronaut"], d / "a.png")
    assert runner.invoke(app, ["sketch", str(d)]).exit_code == 0
    first = (d / "a_sketch.png").read_bytes()
    (d / "a_sketch.png").write_bytes(first + b"")  # untouched copy
    r = runner.invoke(app, ["sketch", str(d)])
    assert r.exit_code == 1 and "a_sketch.png exists; --overwrite replaces it" in r.output
    assert "earlier output of this command" in r.output and not (d / "a_sketch_sketch.png").exists()
    assert runner.invoke(app, ["sketch", str(d), "--overwrite"]).exit_code == 0
    assert (d / "a_sketch.png").read_bytes() == first   # deterministic, and rewritten in place


def test_out_folder_side_by_side_and_no_align(tmp_path, face_photos):
    out = tmp_path / "out"
    r = runner.invoke(app, ["sketch", str(face_photos["astronaut"]), "--out", str(out), "--side-by-side"])
    assert r.exit_code == 0, r.output
    pair = Image.open(out / "astronaut_sketch.png")
    assert pair.size == (2 * CUFS_SIZE[0], CUFS_SIZE[1])
    left = np.asarray(pair.convert("RGB").crop((0, 0, *CUFS_SIZE)), float)
    crop = np.asarray(align_face(Image.open(face_photos["astronaut"]).convert("RGB"))[0].image, float)
    assert np.abs(left - crop).mean() < 1.0   # the left half is the aligned input
    r = runner.invoke(app, ["sketch", str(face_photos["astronaut"]), "--out", str(out / "raw"), "--no-align"])
    assert r.exit_code == 0 and Image.open(out / "raw" / "astronaut_sketch.png").size == (512, 512)


def test_all_faces_writes_one_file_per_face(tmp_path, face_photos):
    both = Image.new("RGB", (1200, 700), "white")
    both.paste(Image.open(face_photos["astronaut"]).convert("RGB"), (20, 100))
    both.paste(Image.open(face_photos["hopper"]).convert("RGB"), (640, 50))
    both.save(tmp_path / "two.png")
    r = runner.invoke(app, ["sketch", str(tmp_path / "two.png"), "--all-faces", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["two_sketch_face1.png", "two_sketch_face2.png"]


def test_photo_turns_a_sketch_into_a_colour_face(tmp_path, face_photos):
    runner.invoke(app, ["sketch", str(face_photos["astronaut"]), "--out", str(tmp_path)])
    r = runner.invoke(app, ["photo", str(tmp_path / "astronaut_sketch.png"), "--out", str(tmp_path / "back")])
    assert r.exit_code == 0, r.output
    photo = np.asarray(Image.open(tmp_path / "back" / "astronaut_sketch_photo.png"), float)
    assert photo.shape == (CUFS_SIZE[1], CUFS_SIZE[0], 3)
    assert np.abs(photo[..., 0] - photo[..., 2]).mean() > 3   # colour, not grey


def test_batches_give_the_same_pictures_as_one_at_a_time(face_photos):
    t = Translator.shipped("fsnet", "photo2sketch")
    crops = [align_face(Image.open(p).convert("RGB"))[0].image for p in face_photos.values()]
    crops.append(crops[0].transpose(Image.FLIP_LEFT_RIGHT))
    together = t(crops, batch_size=3)
    alone = [t([c])[0] for c in crops]
    for a, b in zip(together, alone):
        assert np.abs(np.asarray(a, float) - np.asarray(b, float)).max() <= 1   # rounding only


@pytest.mark.parametrize("args, message", [
    (["--model", "conv_ae"], "no shipped weights for photo2sketch; these ship: fsnet"),
    (["--model", "fsnet", "--run", "x"], "give --run or --model, not both"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--device", "tpu"], "--device"),
])
def test_bad_options_are_one_line_errors(face_photos, args, message):
    r = runner.invoke(app, ["sketch", str(face_photos["astronaut"]), *args])
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output


def test_a_run_of_the_other_direction_is_refused(tmp_path, synth_dir, face_photos):
    # the mean-image baseline makes a real run folder in a second
    r = runner.invoke(app, ["train", "-m", "mean", "-d", "sketch2photo", "--data", str(synth_dir),
                            "--runs-dir", str(tmp_path), "--name", "r"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["sketch", str(face_photos["astronaut"]), "--run", str(tmp_path / "r")])
    assert r.exit_code == 2 and "it was trained for sketch2photo, this needs photo2sketch" in r.output
    r = runner.invoke(app, ["photo", str(face_photos["astronaut"]), "--run", str(tmp_path / "r"), "--out",
                            str(tmp_path / "o")])
    assert r.exit_code == 0 and "mean (r) sketch2photo: wrote 1 image(s)" in r.output


def test_large_jpegs_are_decoded_at_a_reduced_scale_but_never_below_the_side_asked(tmp_path):
    from facesketch.data.images import read_image
    Image.new("RGB", (4000, 3000), "tan").save(tmp_path / "phone.jpg")
    Image.new("RGB", (4000, 3000), "tan").save(tmp_path / "phone.png")
    assert read_image(tmp_path / "phone.jpg", max_side=1600)[0].size == (2000, 1500)   # 1/2: 1/4 would be 1000
    assert read_image(tmp_path / "phone.jpg", max_side=900)[0].size == (1000, 750)
    assert read_image(tmp_path / "phone.jpg")[0].size == (4000, 3000)
    assert read_image(tmp_path / "phone.png", max_side=900)[0].size == (4000, 3000)   # only JPEG can


def test_a_folder_job_lowers_its_own_priority_and_bad_values_are_refused(monkeypatch, face_photos, tmp_path):
    import os
    asked = []
    monkeypatch.setattr(os, "nice", lambda increment: asked.append(increment) or increment)
    r = runner.invoke(app, ["sketch", str(face_photos["astronaut"]), "--out", str(tmp_path / "a"), "--nice", "7"])
    assert r.exit_code == 0, r.output
    assert asked == [7]
    r = runner.invoke(app, ["sketch", str(face_photos["astronaut"]), "--out", str(tmp_path / "b"), "--nice", "25"])
    assert r.exit_code == 2 and "--nice must be 0-19, got 25" in r.output and asked == [7]
    r = runner.invoke(app, ["sketch", str(face_photos["astronaut"]), "--out", str(tmp_path / "c"),
                            "--precision", "fp16"])
    assert r.exit_code == 2 and "--precision must be auto, fp32 or bf16, got 'fp16'" in r.output
