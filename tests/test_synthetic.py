import hashlib
import shutil

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from facesketch import FacesketchError
from facesketch.cli import app
from facesketch.data.pairs import find_pairs
from facesketch.data.synthetic import synth_pair, write_synthetic

runner = CliRunner()


def _digests(root):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.jpg"))}


def test_same_seed_gives_byte_identical_files(tmp_path):
    a = write_synthetic(tmp_path / "a", n=3, seed=5, progress=False)
    b = write_synthetic(tmp_path / "b", n=3, seed=5, progress=False)
    c = write_synthetic(tmp_path / "c", n=3, seed=6, progress=False)
    assert _digests(a) == _digests(b) and len(_digests(a)) == 6
    assert _digests(a) != _digests(c)


def test_synthetic_set_is_a_valid_cufs_layout(synth_dir):
    found = find_pairs(synth_dir)
    assert found.layout == "cufs" and found.usable and len(found.pairs) == 12
    assert found.sizes == {"200x250": 24}


def _edges(im: Image.Image) -> np.ndarray:
    g = np.asarray(im.convert("L"), np.float32)
    return np.hypot(np.diff(g, axis=0)[:, :-1], np.diff(g, axis=1)[:-1, :])


def test_photo_and_sketch_are_aligned():
    _, photo, sketch = synth_pair(0, 0)
    _, other_photo, _ = synth_pair(0, 1)
    assert photo.size == sketch.size == (200, 250) and photo.mode == "RGB" and sketch.mode == "L"
    e_p, e_s = _edges(photo), _edges(sketch)
    corr = lambda a, b: float(np.corrcoef(a.ravel(), b.ravel())[0, 1])
    aligned = corr(e_p, e_s)
    assert aligned > 0.3
    assert aligned > 2 * corr(np.roll(e_p, 12, axis=1), e_s)  # shifting breaks the match
    assert aligned > corr(_edges(other_photo), e_s)  # and another face matches worse
    # the sketch is grey pencil on white paper: mostly light, with dark strokes
    s = np.asarray(sketch)
    assert np.median(s) > 200 and s.min() < 80


def _tree(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_synth_refuses_a_real_dataset_and_changes_no_byte(cufs_dir, tmp_path):
    target = tmp_path / "cufs"
    shutil.copytree(cufs_dir, target)
    before = _tree(target)
    for extra in ([], ["--overwrite"]):
        r = runner.invoke(app, ["data", "synth", str(target), "--n", "20", *extra])
        assert r.exit_code == 2 and isinstance(r.exception, SystemExit), r.output
        assert f"error: {target} already holds {len(before)} file(s) that `data synth` did not write" in r.output
        assert _tree(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cufs"]  # no staging folder left behind


def test_synth_refuses_a_folder_with_one_foreign_file(tmp_path):
    (tmp_path / "d" / "photos").mkdir(parents=True)
    (tmp_path / "d" / "photos" / "m-001-01.jpg").write_bytes(b"my own photo")
    for overwrite in (False, True):
        with pytest.raises(FacesketchError, match="did not write"):
            write_synthetic(tmp_path / "d", n=2, progress=False, overwrite=overwrite)
    assert (tmp_path / "d" / "photos" / "m-001-01.jpg").read_bytes() == b"my own photo"
    assert write_synthetic(tmp_path / "empty", n=1, progress=False)  # an existing empty folder is fine
    (tmp_path / "e" / "photos").mkdir(parents=True)
    assert len(_digests(write_synthetic(tmp_path / "e", n=2, progress=False))) == 4


def test_overwrite_replaces_only_the_set_it_wrote(tmp_path):
    out = write_synthetic(tmp_path / "s", n=3, seed=0, progress=False)
    old = _tree(out)
    with pytest.raises(FacesketchError, match=r"already holds a synthetic set \(n=3, seed=0\); pass --overwrite"):
        write_synthetic(out, n=2, seed=1, progress=False)
    assert _tree(out) == old
    (out / "photos" / "mine.png").write_bytes(b"mine")
    (out / "notes.txt").write_text("keep me")
    write_synthetic(out, n=2, seed=1, progress=False, overwrite=True)
    fresh = write_synthetic(tmp_path / "fresh", n=2, seed=1, progress=False)
    assert _digests(out) == _digests(fresh)  # the old set's third pair is gone, the new one is whole
    assert (out / "photos" / "mine.png").read_bytes() == b"mine" and (out / "notes.txt").read_text() == "keep me"


def test_overwrite_refuses_when_a_written_file_was_changed(tmp_path):
    out = write_synthetic(tmp_path / "s", n=2, seed=0, progress=False)
    victim = sorted((out / "sketches").iterdir())[0]
    victim.write_bytes(b"edited by hand")
    before = _tree(out)
    with pytest.raises(FacesketchError, match=f"{victim.name} changed since `data synth` wrote it"):
        write_synthetic(out, n=2, seed=5, progress=False, overwrite=True)
    assert _tree(out) == before


def test_an_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    import facesketch.data.synthetic as syn
    real = syn.synth_pair
    monkeypatch.setattr(syn, "synth_pair", lambda seed, i: real(seed, i) if i < 1 else 1 / 0)
    with pytest.raises(ZeroDivisionError):
        write_synthetic(tmp_path / "s", n=3, progress=False)
    assert list(tmp_path.iterdir()) == []
