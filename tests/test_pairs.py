import hashlib
import shutil
from pathlib import Path

import pytest
from PIL import Image

from facesketch.data.pairs import cufs_photo_stem, find_pairs, natural_key


def test_natural_key_orders_like_the_spec():
    names = ["m-008-01.jpg", "f-043-01.jpg", "f1-015-01.jpg", "m1-041-01.jpg", "f1-001-01.jpg", "F-005-01.jpg",
             "m-101-01.jpg", "m-089-01.jpg", "f1-002-01.jpg"]
    assert sorted(names, key=natural_key) == [
        "f1-001-01.jpg", "f1-002-01.jpg", "f1-015-01.jpg", "F-005-01.jpg", "f-043-01.jpg",
        "m1-041-01.jpg", "m-008-01.jpg", "m-089-01.jpg", "m-101-01.jpg"]


@pytest.mark.parametrize("sketch,photo", [("F2-005-01-sz1", "f-005-01"), ("M2-062-01-sz1", "m-062-01"),
                                          ("f1-001-01-sz1", "f1-001-01"), ("m-089-01-sz1", "m-089-01")])
def test_cufs_sketch_names_map_to_photo_stems(sketch, photo):
    assert cufs_photo_stem(sketch) == photo


def test_cufs_pairs_all_188_by_key(cufs_dir):
    found = find_pairs(cufs_dir)
    assert found.layout == "cufs" and found.problems == [] and len(found.pairs) == 188
    for p in found.pairs:
        assert cufs_photo_stem(p.sketch.stem) == p.photo.stem
    assert found.sizes == {"200x250": 376}


def _tree_digest(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_broken_dataset_reports_every_problem_by_name_and_changes_nothing(synth_copy):
    photos, sketches = synth_copy / "photos", synth_copy / "sketches"
    stems = sorted(p.stem for p in photos.iterdir())
    renamed, deleted, corrupt, mismatch = stems[0], stems[1], stems[2], stems[3]
    (sketches / f"{renamed}-sz1.jpg").rename(sketches / "x-999-01-sz1.jpg")
    (sketches / f"{deleted}-sz1.jpg").unlink()
    data = (photos / f"{corrupt}.jpg").read_bytes()
    (photos / f"{corrupt}.jpg").write_bytes(data[: len(data) // 3])
    Image.open(sketches / f"{mismatch}-sz1.jpg").resize((180, 250)).save(sketches / f"{mismatch}-sz1.jpg")
    (photos / "notes.txt").write_text("not an image")
    before = _tree_digest(synth_copy)

    found = find_pairs(synth_copy)
    text = "\n".join(found.problems)
    assert not found.usable
    assert "x-999-01-sz1.jpg: sketch has no photo" in text
    assert f"{renamed}.jpg: photo has no sketch" in text
    assert f"{deleted}.jpg: photo has no sketch" in text
    assert f"{corrupt}.jpg: unreadable or corrupt image" in text
    assert f"{mismatch}-sz1.jpg: size 180x250 does not match its photo" in text
    assert len(found.problems) == 5
    assert any("notes.txt" in n for n in found.notes)
    assert _tree_digest(synth_copy) == before


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "photos").mkdir()
    found = find_pairs(tmp_path)
    text = "\n".join(found.problems)
    assert "photo folder has no images" in text and "sketches: sketch folder is missing" in text
    assert "no such file or folder" in find_pairs(tmp_path / "nope").problems[0]
    assert "expected photos/ + sketches/" in find_pairs(tmp_path / "photos").problems[0]


def test_two_sketches_claiming_one_photo(synth_copy):
    sketches = synth_copy / "sketches"
    first = sorted(sketches.iterdir())[0]
    stem = first.stem.replace("-sz1", "")
    prefix = "F2" if stem.startswith("f") else "M2"
    shutil.copy(first, sketches / f"{prefix}{stem[1:]}-sz1.jpg")
    text = "\n".join(find_pairs(synth_copy).problems)
    assert f"a second sketch for photo {stem!r}" in text


def test_generic_layout_with_A_B_and_mixed_formats(tmp_path, synth_dir):
    (tmp_path / "A").mkdir(), (tmp_path / "B").mkdir()
    for i, p in enumerate(sorted((synth_dir / "photos").iterdir())[:3]):
        Image.open(p).save(tmp_path / "A" / f"face{i}.png")
        Image.open(synth_dir / "sketches" / f"{p.stem}-sz1.jpg").save(tmp_path / "B" / f"face{i}.webp")
    found = find_pairs(tmp_path)
    assert found.layout == "generic" and found.usable and [p.stem for p in found.pairs] == ["face0", "face1", "face2"]


def test_manifest_csv_with_relative_paths_and_split(tmp_path, synth_dir):
    photos = sorted((synth_dir / "photos").iterdir())[:4]
    rows = ["photo,sketch,split"] + [f"{p},{synth_dir / 'sketches' / (p.stem + '-sz1.jpg')},{'test' if i == 3 else 'train'}"
                                     for i, p in enumerate(photos)]
    rows.append("missing.jpg,also-missing.jpg,train")
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
    found = find_pairs(tmp_path / "pairs.csv")
    assert found.layout == "manifest" and len(found.pairs) == 4
    assert found.problems == [f"{tmp_path / 'pairs.csv'}:6: missing file {tmp_path / 'missing.jpg'}, "
                              f"{tmp_path / 'also-missing.jpg'}"]
    assert [p.split for p in found.pairs].count("test") == 1


def test_exif_orientation_alpha_and_grey_are_normalised(tmp_path):
    from facesketch.data.images import load_array, open_image
    im = Image.new("RGB", (20, 10), (255, 0, 0))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 on display: stored 20x10 shows as 10x20
    im.save(tmp_path / "r.jpg", exif=exif)
    assert open_image(tmp_path / "r.jpg").size == (10, 20)
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(tmp_path / "a.png")
    assert load_array(tmp_path / "a.png", 4).min() == 255  # transparent -> white paper
    Image.new("L", (8, 8), 77).save(tmp_path / "g.png")
    arr = load_array(tmp_path / "g.png", 4)
    assert arr.shape == (4, 4, 3) and (arr == 77).all()
    assert load_array(tmp_path / "g.png", 4, channels=1).shape == (4, 4, 1)
