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


# --- a marker vouches only for what it lists (issue 8, item 14) --------------------------------

def _own_dataset(root, stems=("f-005-01", "f-006-01", "m-008-01")):
    """Someone's own CUFS-named pairs: photos/<stem>.jpg + sketches/<stem>-sz1.jpg."""
    for sub in ("photos", "sketches"):
        (root / sub).mkdir(parents=True)
    for i, stem in enumerate(stems):
        Image.new("RGB", (40, 50), (20 * i, 90, 120)).save(root / "photos" / f"{stem}.jpg")
        Image.new("L", (40, 50), 200 - 20 * i).save(root / "sketches" / f"{stem}-sz1.jpg")
    return root


@pytest.mark.parametrize("marker,why", [
    ('{"files": {}}', "expected a JSON object with n, seed and files"),
    ('{"n": 1, "seed": 0, "files": {}}', "files must list exactly the 2 files of a set with n=1, seed=0; it lists 0"),
    ('{"n": 1, "seed": 0, "files": {"photos/f-001-01.jpg": "x"}}', "files must map each file name to its SHA-256"),
    ('{"n": true, "seed": -1, "files": {}}', "n must be a positive integer"),
    ("{not json", "not valid JSON"),
    ("[]", "expected a JSON object"),
    ("[" * 100_000, "not valid JSON"),
])
def test_a_hand_written_marker_is_unreadable_and_changes_nothing(tmp_path, marker, why):
    root = _own_dataset(tmp_path / "mine")
    (root / ".facesketch-synthetic.json").write_text(marker)
    before = _tree(root)
    for extra in ([], ["--overwrite"]):
        r = runner.invoke(app, ["data", "synth", str(root), "--n", "3", *extra])
        assert r.exit_code == 2 and isinstance(r.exception, SystemExit), r.output
        assert f"error: {root / '.facesketch-synthetic.json'}: unreadable marker ({why}" in r.output
        assert "no .facesketch-synthetic.json" not in r.output
        assert _tree(root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no staging folder left behind


def test_a_genuine_marker_copied_beside_foreign_pairs_is_refused(tmp_path):
    donor = write_synthetic(tmp_path / "donor", n=2, seed=0, progress=False)
    root = _own_dataset(tmp_path / "mine")
    shutil.copy(donor / ".facesketch-synthetic.json", root)
    before = _tree(root)
    for overwrite in (False, True):
        with pytest.raises(FacesketchError) as e:
            write_synthetic(root, n=3, progress=False, overwrite=overwrite)
        assert str(e.value) == (f"{root} holds 6 image file(s) that `data synth` did not write and that pair up "
                                "as a dataset (e.g. photos/f-005-01.jpg); not adding synthetic faces to it "
                                "(move them away, or choose a new or empty folder)")
    assert _tree(root) == before


def test_a_pair_of_ones_own_inside_a_synthetic_set_is_refused(tmp_path):
    out = write_synthetic(tmp_path / "s", n=2, seed=0, progress=False)
    (out / "photos" / "anna.png").write_bytes(b"my photo")
    (out / "sketches" / "anna.png").write_bytes(b"my sketch")
    before = _tree(out)
    with pytest.raises(FacesketchError, match=r"holds 2 image file\(s\) that `data synth` did not write and that "
                                              r"pair up as a dataset \(e.g. photos/anna.png\)"):
        write_synthetic(out, n=2, seed=1, progress=False, overwrite=True)
    assert _tree(out) == before
    (out / "sketches" / "anna.png").unlink()  # a stray unpaired photo stays allowed (and is kept)
    write_synthetic(out, n=2, seed=1, progress=False, overwrite=True)
    assert (out / "photos" / "anna.png").read_bytes() == b"my photo"


def test_synth_on_a_real_dataset_with_a_hand_written_marker(cufs_dir, tmp_path):
    target = tmp_path / "cufs"
    shutil.copytree(cufs_dir, target)
    (target / ".facesketch-synthetic.json").write_text('{"n": 1, "seed": 0, "files": {}}')
    before = _tree(target)
    r = runner.invoke(app, ["data", "synth", str(target), "--n", "3", "--overwrite"])
    assert r.exit_code == 2 and "unreadable marker" in r.output and _tree(target) == before


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_synth_refuses_a_seed_out_of_range(tmp_path, seed):
    r = runner.invoke(app, ["data", "synth", str(tmp_path / "s"), "--n", "1", "--seed", str(seed)])
    assert r.exit_code == 2 and isinstance(r.exception, SystemExit), r.output
    assert f"error: --seed must be an integer from 0 to {2**32 - 1}, got {seed}" in r.output
    assert list(tmp_path.iterdir()) == []


def test_synth_into_a_folder_not_named_in_utf8_reports_without_a_traceback(tmp_path):
    import os
    out = os.fsdecode(os.fsencode(tmp_path) + b"/x\xff")
    r = runner.invoke(app, ["data", "synth", out, "--n", "1"])
    assert r.exit_code == 0 and r.exception is None, r.output
    assert f"wrote 1 pairs to {tmp_path}/x\\xff/photos" in r.output
