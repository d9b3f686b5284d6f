"""Hostile and unusual inputs to the data layer: high bit depths, odd file names, decompression
bombs, tiny images, CSV manifests from spreadsheets, pictures of one person, size mismatches."""

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from facesketch import FacesketchError
from facesketch.cli import app
from facesketch.data.check import check_dataset
from facesketch.data.images import MAX_PIXELS, MAX_SIDE, MIN_SIDE, check_declared_size, load_array, read_image
from facesketch.data.pairs import Pair, find_pairs, identity_of
from facesketch.data.protocols import make_split

runner = CliRunner()


def _generic(root: Path, stems, size=(40, 50)) -> Path:
    """photos/ + sketches/ with one small grey PNG per stem in each."""
    for sub in ("photos", "sketches"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for i, stem in enumerate(stems):
            Image.new("L", size, 40 + 5 * i).save(root / sub / f"{stem}.png")
    return root


def _declaring(path: Path, w: int, h: int) -> Path:
    """A small valid 64x64 PNG whose header is rewritten to declare w x h (its pixel data is not)."""
    buf = io.BytesIO()
    Image.new("L", (64, 64), 255).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = bytes(data[16:29])  # after the 8-byte signature and the chunk's length and type
    ihdr = struct.pack(">II", w, h) + ihdr[8:]
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    path.write_bytes(bytes(data))
    return path


def _ok_exit(r, code):
    # a crash inside a command also exits 1 under CliRunner: require a deliberate exit
    assert r.exit_code == code and (r.exception is None or isinstance(r.exception, SystemExit)), r.output
    assert "Traceback" not in r.output


# --- item 4: high bit depths ---------------------------------------------------------------

@pytest.mark.parametrize("suffix,values,white", [
    ("png", np.array([0, 257, 4096, 32768, 65535], np.uint16), 65535),        # 16-bit PNG, mode I;16
    ("tif", np.array([0, 257, 4096, 32768, 65535], np.int32), 65535),         # 32-bit int TIFF, mode I
    ("tif", np.array([0.0, 0.1, 0.25, 0.5, 1.0], np.float32), 1.0),           # float TIFF, mode F
])
def test_high_bit_depth_greyscale_scales_by_its_full_range(tmp_path, suffix, values, white):
    img = np.tile(values, (5, 1))
    Image.fromarray(img).save(tmp_path / f"g.{suffix}")
    arr = load_array(tmp_path / f"g.{suffix}", 5, channels=1)  # 5x5 -> 5x5: no resampling
    expected = np.round(img.astype(np.float64) / white * 255)
    assert np.array_equal(arr[..., 0], expected)
    rgb = load_array(tmp_path / f"g.{suffix}", 5)
    assert all(np.array_equal(rgb[..., c], expected) for c in range(3))


def test_float_image_outside_0_1_is_refused_not_guessed(tmp_path):
    Image.fromarray(np.full((40, 40), 200.0, np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(FacesketchError, match=r"f.tif: mode F image has values 200..200, outside 0..1"):
        read_image(tmp_path / "f.tif")


def test_data_check_reports_the_files_own_mode(tmp_path):
    root = _generic(tmp_path / "d", ["a", "b"])
    Image.fromarray(np.full((50, 40), 30000, np.uint16)).save(root / "sketches" / "a.png")
    out = check_dataset(root)
    assert out["modes"] == {"photo L": 2, "sketch L": 1, "sketch I;16": 1}


# --- item 5: file names that are not UTF-8 -----------------------------------------------

@pytest.fixture
def latin1_named(tmp_path) -> Path:
    root = _generic(tmp_path / "d", ["anna", "bob", "carl", "dora"])
    for sub in ("photos", "sketches"):
        shutil.copy(root / sub / "anna.png", os.fsencode(root / sub) + b"/caf\xe9.png")
    (root / "photos" / os.fsdecode(b"notes\xe9.txt")).write_text("not an image")
    return root


def test_non_utf8_file_names_are_problems_named_with_escapes(latin1_named):
    found = find_pairs(latin1_named)
    assert not found.usable
    bad = [p for p in found.problems if "not valid UTF-8" in p]
    assert len(bad) == 2 and all("caf\\xe9.png" in p for p in bad)
    assert any("notes\\xe9.txt" in n for n in found.notes)
    "\n".join(found.problems + found.notes).encode("utf-8")  # printable on a strict UTF-8 stream


def test_data_check_names_them_under_strict_utf8_stdout(latin1_named):
    r = runner.invoke(app, ["data", "check", str(latin1_named)])
    _ok_exit(r, 1)
    assert "caf\\xe9.png: file name is not valid UTF-8" in r.output
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    p = subprocess.run([sys.executable, "-m", "facesketch", "data", "check", str(latin1_named)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    assert "caf\\xe9.png: file name is not valid UTF-8" in p.stdout and "NOT usable" in p.stdout


# --- item 11: declared sizes, decompression bombs, tiny images -----------------------------

def test_declared_size_limits():
    check_declared_size(Path("x.png"), (MAX_SIDE, MAX_PIXELS // MAX_SIDE))
    for size in ((MAX_SIDE + 1, 32), (32, MAX_SIDE + 1), (7000, 7000)):  # 7000^2 = 49 MP
        with pytest.raises(FacesketchError, match="x.png: declares"):
            check_declared_size(Path("x.png"), size)


@pytest.mark.parametrize("side", [13000, 20000])  # 20000^2 passes even Pillow's own hard limit
def test_a_decompression_bomb_is_refused_from_its_header(tmp_path, side):
    root = _generic(tmp_path / "d", ["anna", "bob"])
    (root / "photos" / "anna.png").unlink()
    _declaring(root / "photos" / "anna.png", side, side)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = find_pairs(root)
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    # decoding the rewritten file would have failed as corrupt: the header alone decided
    assert len(found.problems) == 1 and "anna.png: declares" in found.problems[0]
    assert "refused before decoding" in found.problems[0] and "corrupt" not in found.problems[0]


def test_data_check_refuses_a_bomb_in_one_line(tmp_path):
    root = _generic(tmp_path / "d", ["anna", "bob"])
    _declaring(root / "sketches" / "bob.png", 13000, 13000)
    r = runner.invoke(app, ["data", "check", str(root)])
    _ok_exit(r, 1)
    assert [ln for ln in r.output.splitlines() if "13000x13000" in ln] == [
        f"PROBLEM   {root / 'sketches' / 'bob.png'}: declares 13000x13000 pixels, above the limit of 8192 px "
        "per side and 40 megapixels; refused before decoding"]
    assert "Warning" not in r.output


def test_images_below_the_minimum_side_are_problems(tmp_path):
    root = _generic(tmp_path / "d", ["anna", "bob"], size=(MIN_SIDE, MIN_SIDE + 8))
    assert find_pairs(root).usable
    Image.new("L", (1, 1)).save(root / "photos" / "anna.png")
    Image.new("L", (1, 1)).save(root / "sketches" / "anna.png")
    problems = find_pairs(root).problems
    assert len(problems) == 2 and all("1x1 pixels, below the minimum of 32 px per side" in p for p in problems)


# --- item 12: CSV manifests -------------------------------------------------------------

@pytest.fixture
def manifest_dir(tmp_path) -> Path:
    return _generic(tmp_path / "m", ["anna_1", "anna_2", "bob_1", "carl_1"])


def _manifest(root: Path, text: str, **kw) -> Path:
    (root / "pairs.csv").write_text(text, **kw)
    return root / "pairs.csv"


def test_manifest_with_a_byte_order_mark(manifest_dir):
    path = _manifest(manifest_dir, "photo,sketch\nphotos/anna_1.png,sketches/anna_1.png\n", encoding="utf-8-sig")
    assert path.read_bytes()[:3] == b"\xef\xbb\xbf"
    found = find_pairs(path)
    assert found.usable and len(found.pairs) == 1


@pytest.mark.parametrize("text,message", [
    ("photo,sketch\n", "pairs.csv: the manifest has a header but no rows"),
    ("", "pairs.csv: the manifest is empty"),
    ("photo,sketch,split\nphotos/anna_1.png,sketches/anna_1.png,train\nphotos/bob_1.png\n",
     "pairs.csv:3: 1 field(s), expected 3 (photo,sketch,split)"),
    ("photo;sketch\nphotos/anna_1.png;sketches/anna_1.png\n", "lacks photo and sketch"),
    ("photo,sketch\nphotos/anna_1.png,sketches/anna_1.png\nphotos/bob_1.png,sketches/anna_1.png\n",
     "pairs.csv:3: sketch anna_1.png is already paired with photo anna_1.png on line 2"),
    ("photo,sketch\nphotos/anna_1.png,photos/anna_1.png\n", "pairs.csv:2: photo and sketch are the same file"),
    ("photo,sketch\nphotos/anna_1.png,\n", "pairs.csv:2: empty sketch cell"),
    ("photo,sketch\n../outside.png,sketches/anna_1.png\n",
     "pairs.csv:2: photo '../outside.png' leaves the manifest's folder"),
    ("photo,sketch\nphotos/../../outside.png,sketches/anna_1.png\n", "leaves the manifest's folder"),
])
def test_manifest_problems_are_precise(manifest_dir, text, message):
    Image.new("L", (40, 50)).save(manifest_dir.parent / "outside.png")  # exists: only the rule refuses it
    found = find_pairs(_manifest(manifest_dir, text))
    assert not found.usable
    assert any(message in p for p in found.problems), found.problems


def test_manifest_split_column_under_another_protocol_gets_a_note(manifest_dir):
    path = _manifest(manifest_dir, "photo,sketch,split\n" + "".join(
        f"photos/{s}.png,sketches/{s}.png,{'test' if s == 'carl_1' else 'train'}\n"
        for s in ("anna_1", "anna_2", "bob_1", "carl_1")))
    assert not [n for n in check_dataset(path, protocol="manifest")["notes"] if "split column" in n]
    notes = check_dataset(path, protocol="paper")["notes"]
    assert any("split column is ignored under protocol 'paper'" in n for n in notes)


# --- item 13: size mismatches within a pair ----------------------------------------------

def test_same_aspect_size_mismatch_is_a_note(tmp_path):
    root = _generic(tmp_path / "d", ["anna", "bob"], size=(200, 250))
    Image.new("L", (400, 500), 90).save(root / "sketches" / "anna.png")
    found = find_pairs(root)
    assert found.usable
    assert any("1 pair(s) differ in size, with aspect ratios within 5%" in n and "400x500" in n for n in found.notes)


def test_different_aspect_is_still_a_problem(tmp_path):
    root = _generic(tmp_path / "d", ["anna", "bob"], size=(200, 250))
    Image.new("L", (250, 200), 90).save(root / "sketches" / "anna.png")  # 1.25 vs 0.8
    (problem,) = find_pairs(root).problems
    assert "anna.png: size 250x200 does not match its photo anna.png (200x250)" in problem
    assert "aspect ratios differ by 56%" in problem and "probably not the same picture" in problem


# --- item 16: identities -------------------------------------------------------------------

@pytest.mark.parametrize("stem,identity", [
    ("anna_1", "anna"), ("anna_02", "anna"), ("anna-3", "anna"), ("f-005-01", "f-005"),
    ("f1-001-01", "f1-001"), ("img_001", "img_001"), ("face0", "face0"), ("_1", "_1"), ("2019", "2019")])
def test_identity_rule(stem, identity):
    assert identity_of(stem) == identity
    assert Pair(Path(f"{stem}.jpg"), Path("s.jpg")).identity == identity


def test_pair_stays_frozen_and_hashable():
    a, b = Pair(Path("anna_1.jpg"), Path("s1.jpg")), Pair(Path("anna_1.jpg"), Path("s1.jpg"), identity="x")
    assert len({a, a, b}) == 2 and a.identity == "anna" and b.identity == "x"
    with pytest.raises(AttributeError):
        a.identity = "y"


@pytest.mark.parametrize("seed", range(6))
def test_several_pictures_of_one_person_stay_on_one_side(tmp_path, seed):
    people = ["anna", "bob", "carl", "dora", "emil"]
    root = _generic(tmp_path / "d", [f"{p}_{k}" for p in people for k in (1, 2)])
    split = make_split(find_pairs(root).pairs, "random", seed=seed, test_fraction=0.4)
    person = lambda p: p.photo.name.split("_")[0]
    assert not {person(p) for p in split.train} & {person(p) for p in split.test}
    assert len({person(p) for p in split.test}) == 2


def test_data_check_counts_identities(tmp_path):
    root = _generic(tmp_path / "d", ["anna_1", "anna_2", "bob_1", "carl_01", "carl_02", "carl_03"])
    r = runner.invoke(app, ["data", "check", str(root), "--protocol", "random", "--json"])
    _ok_exit(r, 0)
    out = json.loads(r.stdout)
    assert out["pairs"] == 6 and out["identities"] == 3
    assert any("3 identities for 6 pairs: 2 have several pictures (e.g. anna: anna_1, anna_2)" in n
               for n in out["notes"])
    assert "pairs     6 (3 identities)" in runner.invoke(app, ["data", "check", str(root)]).output


def test_manifest_identity_column_overrides_the_rule(manifest_dir):
    _manifest(manifest_dir, "photo,sketch,identity\nphotos/anna_1.png,sketches/anna_1.png,p1\n"
                            "photos/bob_1.png,sketches/bob_1.png,p1\nphotos/carl_1.png,sketches/carl_1.png,\n")
    found = find_pairs(manifest_dir / "pairs.csv")
    assert found.usable and [p.identity for p in found.pairs] == ["p1", "p1", "carl"]
    assert found.identities == 2


# --- no tracebacks ---------------------------------------------------------------------------

def test_data_check_survives_everything_at_once(latin1_named):
    root = latin1_named
    _declaring(root / "photos" / "bob.png", 13000, 13000)
    Image.new("L", (1, 1)).save(root / "sketches" / "carl.png")
    Image.fromarray(np.full((50, 40), 7.0, np.float32)).save(root / "photos" / "dora.tif")
    (root / "photos" / "dora.png").unlink()
    for args in ([], ["--json"], ["--protocol", "random", "--test-fraction", "0.5"]):
        r = runner.invoke(app, ["data", "check", str(root), *args])
        _ok_exit(r, 1)
    assert "dora.tif: mode F image has values 7..7, outside 0..1" in r.output


# --- what `data check` says when it reads no dataset, or skips something (issue 8, item 16) -----

def test_a_data_folder_not_named_in_utf8_says_so(tmp_path):
    root = Path(os.fsdecode(os.fsencode(tmp_path) + b"/nu\xff"))
    _generic(root, ["anna", "bob"])
    r = runner.invoke(app, ["data", "check", str(root)])
    _ok_exit(r, 1)
    assert r.output.splitlines()[0] == f"dataset   {tmp_path}/nu\\xff (not read: its path is not valid UTF-8)"
    assert "missing" not in r.output


def test_a_folder_inside_photos_is_noted_as_a_skipped_folder(tmp_path):
    root = _generic(tmp_path / "d", ["anna", "bob"])
    (root / "photos" / "old").mkdir()
    (root / "photos" / os.fsdecode(b"vieux\xe9")).mkdir()
    (root / "photos" / "readme.txt").write_text("not an image")
    notes = find_pairs(root).notes
    assert f"skipped folder {root / 'photos' / 'old'} (folders inside the photo folder are not read)" in notes
    assert any(n.startswith(f"skipped folder {root / 'photos'}/vieux\\xe9 ") for n in notes)
    assert f"skipped {root / 'photos' / 'readme.txt'} (not an image file)" in notes
    assert len(notes) == 3  # each once, none also as "not an image file"


def test_several_csv_manifests_are_named(tmp_path):
    root = tmp_path / "d"
    _generic(root / "imgs", ["anna"])
    for name in ("b.csv", "a.csv"):
        (root / name).write_text("photo,sketch\nimgs/photos/anna.png,imgs/sketches/anna.png\n")
    r = runner.invoke(app, ["data", "check", str(root)])
    _ok_exit(r, 1)
    assert r.output.splitlines()[0] == f"dataset   {root} (not read: 2 CSV manifests and no photos/ + sketches/)"
    assert f"PROBLEM   {root}: found 2 CSV manifests (a.csv, b.csv) and no photos/ + sketches/ (or A/ + B/) " \
           f"folders; give the one to use as the dataset path, e.g. {root / 'a.csv'}" in r.output
    _ok_exit(runner.invoke(app, ["data", "check", str(root / "a.csv"), "--protocol", "random"]), 1)  # 1 pair


def test_a_missing_dataset_is_still_named_as_missing(tmp_path):
    r = runner.invoke(app, ["data", "check", str(tmp_path / "nope")])
    _ok_exit(r, 1)
    assert r.output.splitlines()[0] == f"dataset   {tmp_path / 'nope'} (not read: no such file or folder)"
    assert json.loads(runner.invoke(app, ["data", "check", str(tmp_path / "nope"), "--json"]).stdout)["layout"] \
        == "missing"
