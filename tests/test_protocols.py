import pytest

from facesketch import FacesketchError
from facesketch.data.pairs import find_pairs
from facesketch.data.protocols import make_split, read_split_manifest, write_split_manifest


def test_paper_split_on_cufs(cufs_dir):
    split = make_split(find_pairs(cufs_dir).pairs, "paper")
    assert [p.stem for p in split.test] == [f"m-{i:03d}-01" for i in range(89, 102)]
    assert len(split.train) == 175 and len(split.test) * len(split.test_views) == 104
    assert split.train[0].stem == "f1-001-01" and split.train[15].stem == "f-005-01"


def test_cufs_standard_is_the_listed_88_100(cufs_dir):
    split = make_split(find_pairs(cufs_dir).pairs, "cufs-standard")
    train = {p.stem for p in split.train}
    expected = {f"f-{i:03d}-01" for i in range(5, 39)} | {f"m-{i:03d}-01" for i in range(8, 63) if i != 20}
    assert train == expected and len(train) == 88 and len(split.test) == 100
    # the standard training pairs are exactly the ones whose sketches carry the F2/M2 prefix
    assert all(p.sketch.name[:2] in ("F2", "M2") for p in split.train)
    assert not any(p.sketch.name[:2] in ("F2", "M2") for p in split.test)
    assert split.test_views == (0,) and split.notes == ()


def test_cufs_standard_on_other_data_says_it_is_not_comparable(synth_dir):
    # the synthetic set borrows CUFS file names, so the protocol applies, but not the published sizes
    split = make_split(find_pairs(synth_dir).pairs, "cufs-standard")
    assert len(split.train) + len(split.test) == 12
    assert len(split.notes) == 1 and "not comparable with published ones" in split.notes[0]
    assert f"{len(split.train)} / {len(split.test)}" in split.notes[0]


@pytest.mark.parametrize("protocol,seed", [("paper", 0), ("cufs-standard", 0), ("random", 0), ("random", 1),
                                           ("random", 7)])
def test_no_identity_in_both_splits(cufs_dir, protocol, seed):
    split = make_split(find_pairs(cufs_dir).pairs, protocol, seed=seed, test_fraction=0.3)
    assert not {p.identity for p in split.train} & {p.identity for p in split.test}
    assert len(split.train) + len(split.test) == 188


def test_random_split_is_seeded(synth_dir):
    pairs = find_pairs(synth_dir).pairs
    a, b, c = (make_split(pairs, "random", seed=s, test_fraction=0.25) for s in (1, 1, 2))
    assert [p.stem for p in a.test] == [p.stem for p in b.test]
    assert len(a.test) == 3 and not {p.identity for p in a.train} & {p.identity for p in a.test}
    assert [p.stem for p in a.test] != [p.stem for p in c.test]


def test_protocol_errors_are_clear(synth_dir):
    pairs = find_pairs(synth_dir).pairs
    with pytest.raises(FacesketchError, match="unknown protocol 'nope'; choose from paper"):
        make_split(pairs, "nope")
    with pytest.raises(FacesketchError, match="needs a CSV manifest with a split column"):
        make_split(pairs, "manifest")
    with pytest.raises(FacesketchError, match="test fraction must be between 0 and 1"):
        make_split(pairs, "random", test_fraction=1.5)


def test_split_manifest_round_trip(synth_dir, tmp_path):
    split = make_split(find_pairs(synth_dir).pairs, "random", seed=4)
    write_split_manifest(split, tmp_path / "split.csv")
    back = read_split_manifest(tmp_path / "split.csv")
    assert [p.stem for p in back.train] == [p.stem for p in split.train]
    assert [p.stem for p in back.test] == [p.stem for p in split.test]
    assert back.test_views == split.test_views and back.train_views == split.train_views


def test_test_fraction_is_noted_where_the_protocol_ignores_it(synth_dir):
    pairs = find_pairs(synth_dir).pairs
    for protocol in ("paper", "cufs-standard"):
        assert not any("test-fraction" in n for n in make_split(pairs, protocol).notes)
        (note,) = [n for n in make_split(pairs, protocol, test_fraction=0.3).notes if "test-fraction" in n]
        assert note.startswith(f"--test-fraction 0.3 is ignored: protocol {protocol!r}")
    assert make_split(pairs, "random", test_fraction=0.3).notes == ()
    # not given means 0.2 for random
    assert [p.stem for p in make_split(pairs, "random", seed=3).test] == \
        [p.stem for p in make_split(pairs, "random", seed=3, test_fraction=0.2).test]


def test_data_check_notes_an_ignored_test_fraction(synth_dir):
    from typer.testing import CliRunner
    from facesketch.cli import app
    run = lambda *a: CliRunner().invoke(app, ["data", "check", str(synth_dir), *a]).output
    assert "test-fraction" not in run()
    assert "note      --test-fraction 0.5 is ignored: protocol 'paper'" in run("--test-fraction", "0.5")
    assert "test-fraction" not in run("--protocol", "random", "--test-fraction", "0.5")


def test_split_manifest_keeps_identities(synth_dir, tmp_path):
    import csv
    split = make_split(find_pairs(synth_dir).pairs, "random", seed=4)
    write_split_manifest(split, tmp_path / "split.csv")
    rows = list(csv.DictReader((tmp_path / "split.csv").read_text(encoding="utf-8").splitlines()))
    assert [r["identity"] for r in rows] == [p.photo.stem[:-3] for p in split.train + split.test]


def test_split_manifest_failure_leaves_no_tmp(tmp_path, monkeypatch):
    import os
    from pathlib import Path
    from facesketch.data.pairs import Pair
    from facesketch.data.protocols import Split
    bad = Pair(Path(os.fsdecode(b"caf\xe9.jpg")), Path("s.jpg"))
    split = Split("random", [Pair(Path("a.jpg"), Path("b.jpg"))], [bad])
    with pytest.raises(FacesketchError, match=r"caf\\xe9.jpg in UTF-8; rename the file"):
        write_split_manifest(split, tmp_path / "run" / "split.csv")
    assert not (tmp_path / "run").exists() or list((tmp_path / "run").iterdir()) == []
    # a failure while writing, too
    class Full:
        def writerow(self, row):
            pass

        def writerows(self, rows):
            raise OSError(28, "No space left on device")
    monkeypatch.setattr("facesketch.data.protocols.csv.writer", lambda f: Full())
    with pytest.raises(OSError, match="No space left"):
        write_split_manifest(split=Split("random", [Pair(Path("a.jpg"), Path("b.jpg"))], []),
                             path=tmp_path / "run" / "split.csv")
    assert list((tmp_path / "run").iterdir()) == []
