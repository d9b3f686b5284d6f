import hashlib

import numpy as np
from PIL import Image

from facesketch.data.pairs import find_pairs
from facesketch.data.synthetic import synth_pair, write_synthetic


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
