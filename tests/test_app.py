"""`facesketch serve`'s handlers, called as Gradio calls them (raw upload values), without a browser."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio")

from facesketch import FacesketchError  # noqa: E402
from facesketch.app import Handlers, build_app, model_sources  # noqa: E402

SHIPPED = "fsnet (shipped)"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    from skimage.data import astronaut
    d = tmp_path_factory.mktemp("uploads")
    Image.fromarray(astronaut()).save(d / "astronaut.png")          # a real face
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 50)
    (d / "notes.txt").write_text("not a picture\n")
    Image.new("RGB", (300, 300), (128, 128, 128)).save(d / "grey.png")
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((300, 300)) * 255).astype(np.uint8)).save(d / "noise.png")  # no face
    Image.new("1", (9000, 40)).save(d / "wide.png")                 # tiny file, declares 9000 px
    return {p.name: p for p in d.iterdir()}


@pytest.fixture(scope="module")
def handlers() -> Handlers:
    return Handlers()


def upload(path: Path) -> dict:
    """What Gradio hands a preprocess=False event for an uploaded file."""
    return {"path": str(path), "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def test_a_face_photo_gives_a_sketch_of_the_aligned_crop(handlers, files):
    crop, sketch, status = handlers.translate("photo2sketch", upload(files["astronaut.png"]), True, SHIPPED)
    assert crop.size == sketch.size == (200, 250)
    assert sketch.mode == "L" and np.asarray(sketch).std() > 10  # a picture, not a flat field
    assert "fsnet (shipped)" in status and "face aligned" in status and "Could not" not in status


def test_sketch_to_photo_from_a_drawing_without_alignment(handlers, files, tmp_path):
    drawing = Image.new("RGB", (400, 500), "white")
    drawing.paste((30, 30, 30), (150, 150, 250, 160))
    drawing.save(tmp_path / "composite.png")
    pad = {"background": None, "layers": [], "composite": upload(tmp_path / "composite.png")}
    crop, photo, status = handlers.translate("sketch2photo", pad, False, SHIPPED)
    assert crop.size == photo.size == (400, 500) and photo.mode == "RGB"
    assert "your drawing" in status and "not aligned" in status


@pytest.mark.parametrize("name, says", [
    ("corrupt.png", "not a picture this app can read"),
    ("notes.txt", "not a picture this app can read"),
    ("grey.png", "blank picture"),
    ("noise.png", 'no face found; if it is already a face crop or a drawing, untick "align face"'),
    ("wide.png", "declares 9000x40 pixels, above the limit"),
])
def test_a_bad_upload_is_a_message_not_an_exception(handlers, files, name, says):
    crop, out, status = handlers.translate("photo2sketch", upload(files[name]), True, SHIPPED)
    assert crop is None and out is None
    assert status.startswith("**Could not do it.**") and says in status.replace("\\", "")
    assert "/tmp" not in status  # the visitor's file name, not the server's copy


def test_limits_and_missing_inputs_are_messages(handlers, files, monkeypatch):
    assert "upload a photo first" in handlers.translate("photo2sketch", None, True, SHIPPED)[2]
    assert "draw a face first" in handlers.translate(
        "sketch2photo", {"composite": upload(files["grey.png"])}, False, SHIPPED)[2]
    assert "is not available" in handlers.translate("photo2sketch", upload(files["astronaut.png"]), True, "nope")[2]
    monkeypatch.setattr("facesketch.app.MAX_UPLOAD_BYTES", 1000)
    status = handlers.translate("photo2sketch", upload(files["astronaut.png"]), True, SHIPPED)[2]
    assert "MB, above the limit of" in status


def test_an_unexpected_error_is_logged_and_shown(handlers, files, monkeypatch, caplog):
    def boom(*a, **k):
        raise RuntimeError("disk on fire")
    monkeypatch.setattr("facesketch.app.read_upload", boom)
    status = handlers.translate("photo2sketch", upload(files["astronaut.png"]), True, SHIPPED)[2]
    assert "unexpected RuntimeError: disk on fire" in status and "disk on fire" in caplog.text


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    """A one-epoch conv_ae run on 8 synthetic pairs (about 10 s), and a run folder that cannot be read."""
    runs = tmp_path_factory.mktemp("runs")
    subprocess.run([sys.executable, "-m", "facesketch", "train", "-m", "conv_ae", "-d", "photo2sketch",
                    "--epochs", "1", "--views", "identity", "--synthetic-n", "8", "--device", "cpu",
                    "--layout", "channels_last", "--precision", "fp32",   # no timing of candidates
                    "--runs-dir", str(runs)], check=True, capture_output=True)
    broken = runs / "broken"
    broken.mkdir()
    (broken / "config.yaml").write_text("model: [unclosed\n")
    (broken / "model.safetensors").write_bytes(b"")
    return runs


def test_the_model_lists_hold_shipped_weights_and_matching_runs(runs_dir, files):
    p2s, s2p = model_sources("photo2sketch", runs_dir), model_sources("sketch2photo", runs_dir)
    assert list(p2s) == [SHIPPED, "conv_ae (conv_ae-photo2sketch-s0)"]   # "broken" is left out silently
    assert list(s2p) == [SHIPPED]
    h = Handlers(runs_dir=runs_dir)
    crop, sketch, status = h.translate("photo2sketch", upload(files["astronaut.png"]), True,
                                       "conv_ae (conv_ae-photo2sketch-s0)")
    assert sketch.size == (200, 250) and "conv\\_ae" in status
    assert h.translator("photo2sketch", SHIPPED) is h.translator("photo2sketch", SHIPPED)  # loaded once


def test_identify_ranks_the_gallery_and_caches_it(face_photos, tmp_path):
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    for name, path in face_photos.items():
        Image.open(path).save(gallery / f"{name}.png")
    (gallery / "readme.txt").write_text("not a photo")
    h = Handlers(gallery=gallery)
    label = "fsnet (shipped), via sketch"
    assert list(h.choices("identify")) == [label, "fsnet (shipped), via photo"]
    sketch = h.translate("photo2sketch", upload(face_photos["astronaut"]), True, SHIPPED)[1]
    sketch.save(tmp_path / "sketch.png")
    sheet, rows, status = h.identify(upload(tmp_path / "sketch.png"), False, label, 5)
    assert [r[0] for r in rows] == [1, 2] and [r[2] for r in rows] == ["astronaut.png", "hopper.png"]
    assert rows[0][1] > rows[1][1] and sheet.size == (3 * 200, 290)
    assert "2 photos" in status and "1 files skipped" in status and "via sketch" in status
    assert h.gallery(label) is h.gallery(label)
    assert "--gallery DIR" in Handlers().identify(upload(tmp_path / "sketch.png"), False, label, 5)[2]


def test_build_app_gives_blocks_and_refuses_a_missing_gallery(tmp_path):
    import gradio as gr
    assert isinstance(build_app(), gr.Blocks)
    with pytest.raises(FacesketchError, match="not a folder"):
        build_app(gallery=tmp_path / "missing")


def test_the_package_imports_without_gradio(monkeypatch):
    code = "import sys, facesketch.app, facesketch.cli; assert 'gradio' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    monkeypatch.setitem(sys.modules, "gradio", None)  # what `import gradio` meets when it is not installed
    with pytest.raises(FacesketchError, match=r"pip install -e '\.\[app\]'"):
        build_app()
